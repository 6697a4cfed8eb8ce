"""The public read path in a bucket (issue 16): the log as C2SP tlog-tiles objects.

Witnesses, monitors and anonymous readers can follow the log from object storage (or a
CDN in front of it) without touching the database: ``checkpoint``, ``tile/<L>/<N>`` and
``tile/entries/<N>``, with ``.p/<W>`` for partial tiles (c2sp.org/tlog-tiles), the same
bytes as the API's ``/log/...``.

- Tiles and entry bundles never change once written (a partial tile of width W is the
  same forever; a wider one is another object): ``Cache-Control: public, max-age=31536000,
  immutable``. The checkpoint moves: ``public, max-age=5``.
- The checkpoint is written only after every tile and bundle it covers, one publisher
  thread writing in that order, so a reader never finds a checkpoint whose tiles are
  missing.
- With witnessing, the checkpoint is the cosigned note ``GET /log/checkpoint`` serves
  (C2SP tlog-witness cosignatures added to the log's signed note). Cosignatures arrive
  after the checkpoint is first written, so each wake-up also asks the witnessing view
  once for the published size and rewrites the object when it holds more cosignatures
  (never fewer, never a smaller size).
- One node publishes: the holder of a leader lock (a PostgreSQL session advisory lock
  across nodes, a file lock in the data directory on SQLite), so the checkpoint never
  moves back because a slower node wrote an older one.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from typing import Any

from ledger.service import Ledger
from ledger.tiles import TILE_HEIGHT, index_path, tile_width_at
from ledger.witnessing.leader import LeaderLock
from ledger.witnessing.view import WitnessingView
from verifier.checkpoint import CheckpointError, open_checkpoint
from verifier.note import Verifier

log = logging.getLogger("jianzheng.publish")

IMMUTABLE = "public, max-age=31536000, immutable"
CHECKPOINT_CACHE = "public, max-age=5"
CHECKPOINT_KEY = "checkpoint"
CHECKPOINT_TYPE = "text/plain; charset=utf-8"
#: Bytes a published checkpoint may have (a note of at most 100 signatures is far less).
MAX_CHECKPOINT_BYTES = 1 << 16


def read_object(client: Any, bucket: str, key: str, limit: int) -> bytes | None:
    """At most ``limit`` bytes of object ``key``, or None when there is no such object;
    any other failure (the bucket unreachable, refused) raises."""
    try:
        resp = client.get_object(bucket, key)
    except Exception as e:
        if getattr(e, "code", None) == "NoSuchKey":  # minio's S3Error, duck-typed here
            return None
        raise
    try:
        data: bytes = resp.read(limit)
    finally:
        resp.close()
        resp.release_conn()
    return data


def published_size(data: bytes, log_key: Verifier, bucket: str) -> int | None:
    """The tree size of ``data``, the checkpoint read from ``bucket``, if this log signed
    it; None (logged) if not: anyone who can write the bucket could have put it there."""
    try:
        return open_checkpoint(data, log_key).checkpoint.size
    except CheckpointError as e:
        log.warning("bucket %s: not this log's checkpoint: %s", bucket, e)
        return None


def adds_cosignatures(old: str, new: str) -> bool:
    """Whether note ``new`` (of the same checkpoint) has every signature line of ``old``
    and more: rewriting the published note must never take a cosignature away."""
    have, want = set(old.splitlines()), set(new.splitlines())
    return want > have


def tile_key(level: int | None, index: int, width: int) -> str:
    """The object key of a tile (``level`` None: an entry bundle) of ``width`` hashes."""
    where = "entries" if level is None else str(level)
    suffix = "" if width == 1 << TILE_HEIGHT else f".p/{width}"
    return f"tile/{where}/{index_path(index)}{suffix}"


def changed_tiles(old: int, new: int) -> list[tuple[int, int, int]]:
    """(level, index, width) of every tile whose width at tree size ``new`` differs from
    its width at ``old``, lowest level first (level 0's also name the entry bundles)."""
    out: list[tuple[int, int, int]] = []
    level = 0
    while new >> (TILE_HEIGHT * level):
        first = (old >> (TILE_HEIGHT * level)) >> TILE_HEIGHT
        last = ((new >> (TILE_HEIGHT * level)) - 1) >> TILE_HEIGHT
        for n in range(first, last + 1):
            w = tile_width_at(level, n, new)
            if w and w != tile_width_at(level, n, old):
                out.append((level, n, w))
        level += 1
    return out


class BucketPublisher:
    """Publishes ``ledger``'s head to ``bucket`` (a minio client) whenever it leads."""

    #: Seconds between looks at the head (a new checkpoint of this node wakes it sooner).
    POLL = 0.5

    def __init__(
        self,
        ledger: Ledger,
        client: Any,
        bucket: str,
        lock: LeaderLock,
        witnessing: WitnessingView | None = None,
    ) -> None:
        self.ledger = ledger
        self.client = client
        self.bucket = bucket
        self.lock = lock
        #: The cosignatures to publish with each checkpoint (None: the log's note alone).
        self.witnessing = witnessing
        #: The tree size this process wrote every tile and bundle of since it leads.
        self.published = 0
        #: The checkpoint note in the bucket and its size (read once on taking the lead,
        #: then as this process wrote it); None until read.
        self.note: str | None = None
        self.note_size = 0
        self._synced = False
        self.leading = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.ledger.add_checkpoint_listener(lambda _cp: self._wake.set())
        self._thread = threading.Thread(target=self._run, name="bucket-publisher", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.lock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.leading:
                    self.leading = self.lock.try_acquire()
                    if self.leading:
                        self.published = 0  # another node wrote meanwhile: start over
                        self._synced = False
                elif not self.lock.still_held():
                    self.leading = False
                if self.leading:
                    self.publish()
            except Exception:  # an unreachable bucket must not stop the log; retried
                log.exception("cannot publish the log to bucket %s", self.bucket)
            self._wake.wait(self.POLL)
            self._wake.clear()

    def publish(self) -> int:
        """Write the tiles and bundles the head adds, then the head's checkpoint (cosigned
        as far as witnessing has got); or, the head unchanged, the published checkpoint
        again if it gained cosignatures. Returns the size of the checkpoint in the bucket.

        Each call asks the head, and the witnessing view once, whatever happened: the
        work of a wake-up is the new tiles and at most one checkpoint object.
        """
        if not self._synced:  # taking the lead: what did the last leader leave?
            self.note_size, self.note = self._bucket_checkpoint()
            self._synced = True
        head = self.ledger.head()
        if not head.note:
            return self.note_size
        if head.size > self.published:
            for level, index, width in changed_tiles(self.published, head.size):
                self._put(tile_key(level, index, width), self.ledger.tile(level, index, width))
                if level == 0:
                    bundle = self.ledger.entry_bundle(index, width)
                    self._put(tile_key(None, index, width), bundle)
            self.published = head.size
        # Last: every tile the checkpoint covers is in the bucket before it is. A head
        # older than the bucket's (a takeover by a node that lags) is never written.
        if head.size < self.note_size:
            return self.note_size
        note = head.note
        if self.witnessing is not None:
            note = self.witnessing.cosigned_checkpoint(head.size)
        if head.size == self.note_size and self.note is not None:
            if not adds_cosignatures(self.note, note):
                return self.note_size
        self._put(CHECKPOINT_KEY, note.encode(), CHECKPOINT_CACHE)
        self.note, self.note_size = note, head.size
        return head.size

    def _bucket_checkpoint(self) -> tuple[int, str | None]:
        """The size and note of the checkpoint in the bucket; (0, None) if there is none
        or it is not this log's (its signature is checked: the bucket is overwritten)."""
        data = read_object(self.client, self.bucket, CHECKPOINT_KEY, MAX_CHECKPOINT_BYTES)
        if data is None:
            return 0, None
        size = published_size(data, self.ledger.signer.verifier, self.bucket)
        return (0, None) if size is None else (size, data.decode())

    def _put(self, key: str, data: bytes, cache: str = IMMUTABLE) -> None:
        self.client.put_object(
            self.bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=CHECKPOINT_TYPE if key == CHECKPOINT_KEY else "application/octet-stream",
            metadata={"Cache-Control": cache},
        )


def public_read_policy(bucket: str) -> str:
    """An S3 bucket policy letting anyone read the bucket's objects (not list or write)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ["*"]},
                    "Action": ["s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
    )
