"""Prometheus metrics of the append path (issue 16): what one node does, never what is in
the log (no project, poster or event type is ever a label).

Counted per batch, not per event, so the append path pays a few additions per commit.
With ``serve --workers N`` the parent sets ``PROMETHEUS_MULTIPROC_DIR`` before the
workers start, and prometheus-client keeps each worker's values in a file there; the
``/metrics`` route (api/metrics.py) adds them up.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
_SECONDS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)

APPENDED = Counter("jianzheng_appended_events", "Events committed to the log by this node")
BATCHES = Counter("jianzheng_batches", "Batches committed (one signed checkpoint each)")
BATCH_EVENTS = Histogram(
    "jianzheng_batch_events", "Events per committed batch", buckets=_BATCH_BUCKETS
)
BATCH_SECONDS = Histogram(
    "jianzheng_batch_commit_seconds",
    "Seconds from taking the writer lock to the batch's commit",
    buckets=_SECONDS,
)
LOCK_WAIT = Histogram(
    "jianzheng_sequencer_lock_wait_seconds",
    "Seconds a batch waited for the writer lock (another worker or node appending)",
    buckets=_SECONDS,
)
HEAD_RELOADS = Counter(
    "jianzheng_head_reloads", "Batches that found the head moved by another worker or node"
)
APPEND_SECONDS = Histogram(
    "jianzheng_append_seconds",
    "Seconds from queueing an append request's unit to its commit (or refusal)",
    buckets=_SECONDS,
)
DB_ERRORS = Counter("jianzheng_database_errors", "Batches failed by a database error")
REFUSED_BEHIND = Counter(
    "jianzheng_appends_refused_behind", "Batches refused: the database is behind a checkpoint"
)
OBJECT_STORE_ERRORS = Counter(
    "jianzheng_object_store_errors", "Requests answered 503: the object store unavailable"
)
