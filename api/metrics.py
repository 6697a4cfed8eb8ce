"""``GET /metrics``: Prometheus text exposition of this node (issue 16).

What it shows: the append path's counters and histograms (ledger/metrics.py), and, read
at scrape time, the log's size, each witness's lag (entries signed and not yet cosigned
by it) and the timestamp lag (entries signed after the newest timestamped checkpoint).
Nothing per project, poster or event type, and nothing sealed.

It needs a valid bearer token (any role; Prometheus sends one with
``authorization: {credentials_file: ...}``): counts of a public log are not secret, but an
unauthenticated client must not be able to make the node read the database. A token's
scrapes are rate-limited like any request, and the answer is reused for
:data:`SCRAPE_EVERY` seconds per process; a scrape never waits for another one's database
reads (503 ``busy`` only before the first answer is built).
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

from api.deps import get_principal
from api.errors import ApiError
from api.reused import Reused
from ledger.access import Principal
from ledger.service import Ledger
from ledger.witnessing.records import WitnessRecords
from ledger.witnessing.view import WitnessingView, log_fields

router = APIRouter()

#: Seconds one scrape's answer is reused by this process.
SCRAPE_EVERY = 1.0


class LogCollector(Collector):
    """Gauges read at scrape time from the ledger and its witnessing."""

    def __init__(self, ledger: Ledger, witnessing: WitnessingView | None) -> None:
        self.ledger = ledger
        self.witnessing = witnessing
        self.records = WitnessRecords(ledger.store.engine)

    def collect(self) -> list[Metric]:
        size = self.ledger.head().size
        g_size = GaugeMetricFamily("jianzheng_log_size", "Entries in the log (its head)")
        g_size.add_metric([], size)
        lag = GaugeMetricFamily(
            "jianzheng_witness_lag_entries",
            "Entries signed and not yet cosigned by the witness",
            labels=["witness"],
        )
        fields = log_fields(self.witnessing)
        for w in fields.get("witnesses", []):
            lag.add_metric([str(w["name"])], max(0, size - int(w["cosigned_size"])))
        witnessed = GaugeMetricFamily(
            "jianzheng_witnessed_lag_entries", "Entries signed beyond the witnessed size"
        )
        witnessed.add_metric([], max(0, size - int(fields.get("witnessed_size") or 0)))
        ts = self.records.max_timestamped_size()
        ts_lag = GaugeMetricFamily(
            "jianzheng_timestamp_lag_entries",
            "Entries signed after the newest checkpoint with a trusted timestamp",
        )
        ts_lag.add_metric([], max(0, size - (ts or 0)))
        behind = GaugeMetricFamily(
            "jianzheng_sequencer_behind", "1 while appends are refused: the database is behind"
        )
        behind.add_metric([], 1 if self.ledger.behind() else 0)
        return [g_size, lag, witnessed, ts_lag, behind]


class Exposition(Reused[bytes]):
    """The text answer, built at most once per :data:`SCRAPE_EVERY` seconds."""

    def __init__(self, ledger: Ledger, witnessing: WitnessingView | None) -> None:
        super().__init__(SCRAPE_EVERY)
        self.registry = CollectorRegistry(auto_describe=False)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # serve --workers N: every worker's counters, added up from their files.
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
            self._own: Collector | None = None
        else:
            self._own = REGISTRY
        self.log = LogCollector(ledger, witnessing)

    def text(self) -> bytes | None:
        """The exposition, built anew when older than ``every``; None while another request
        is building the first one (:class:`api.reused.Reused`: a scrape never waits for
        another's database reads)."""
        return self._reused(self._build)

    def _build(self) -> bytes:
        parts = [generate_latest(self.registry)] if self._own is None else []
        if self._own is not None:
            parts.append(generate_latest(REGISTRY))
        one = CollectorRegistry(auto_describe=False)
        one.register(self.log)
        parts.append(generate_latest(one))
        return b"".join(parts)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, _: Annotated[Principal, Depends(get_principal)]) -> Response:
    """Prometheus metrics (any valid token)."""
    expo: Exposition = request.app.state.metrics
    text = expo.text()
    if text is None:
        raise ApiError(
            503, "busy", "the metrics are being read; try again", headers={"Retry-After": "1"}
        )
    return Response(text, media_type=CONTENT_TYPE_LATEST)
