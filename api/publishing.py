"""``serve --publish-bucket BUCKET``: the log published to a bucket (ledger/publish.py),
on the S3 server of the evidence store (``JIANZHENG_S3_*``)."""

from __future__ import annotations

import logging
import threading
import time

from minio import Minio

from api.errors import ApiLayerError
from ledger.publish import (
    CHECKPOINT_KEY,
    MAX_CHECKPOINT_BYTES,
    BucketPublisher,
    public_read_policy,
    published_size,
    read_object,
    tile_key,
)
from ledger.service import Ledger
from ledger.witnessing.leader import PG_PUBLISH_LOCK, FileLeaderLock, LeaderLock, PgLeaderLock
from ledger.witnessing.view import WitnessingView
from storage.s3 import S3Config
from verifier.note import Verifier

log = logging.getLogger("jianzheng.publish")

#: Where the evidence store keeps objects (storage/base.py ``object_key``).
EVIDENCE_PREFIX = "sha256/"
#: Bytes a tile or entry bundle may have (256 entries of a 2-byte length and at most
#: 64 KiB each is far more than any; tiles are 8 KiB): a bound on what one read holds.
MAX_TILE_BYTES = 1 << 24
#: Seconds a checkpoint read from the bucket (or its absence) is reused: at most one
#: bucket read per second whatever the load, well inside the object's max-age of 5.
CHECKPOINT_TTL = 1.0


def s3_client(config: S3Config) -> Minio:
    return Minio(
        config.endpoint,
        access_key=config.access_key,
        secret_key=config.secret_key,
        secure=config.secure,
    )


class BucketTiles:
    """``serve --log-from-bucket``: /log/tile/* and /log/checkpoint read from the published
    bucket, so these reads cost the database nothing; what is not (yet) published, or a
    bucket that does not answer, is read from the database.

    A reader of this process never sees the checkpoint move back: the bucket's is served
    only when it is at least as large as every checkpoint this process served before
    (from the bucket or the database); otherwise the database's head answers. The order
    of publishing already ensures every tile a bucket checkpoint covers is in the bucket.
    """

    def __init__(self, client: Minio, bucket: str, log_key: Verifier) -> None:
        self.client = client
        self.bucket = bucket
        self.log_key = log_key
        self._mu = threading.Lock()
        self._served = 0  # the largest checkpoint size this process served
        self._cached: tuple[float, int, bytes] | None = None  # (read at, size, note)

    def get(self, level: int | None, index: int, width: int) -> bytes | None:
        """The published object, or None (not published yet, or the bucket unreachable)."""
        return self._read(tile_key(level, index, width), MAX_TILE_BYTES)

    def _read(self, key: str, limit: int) -> bytes | None:
        try:
            return read_object(self.client, self.bucket, key, limit)
        except Exception as e:  # unreachable or refused: the database answers instead
            log.warning("bucket %s: %s reading %s", self.bucket, getattr(e, "code", None)
                        or type(e).__name__, key)  # fmt: skip
            return None

    def checkpoint(self) -> bytes | None:
        """The bucket's checkpoint (read at most every :data:`CHECKPOINT_TTL` seconds), or
        None: none published, the bucket unreachable, a note this log did not sign, or one
        smaller than a checkpoint this process already served."""
        now = time.monotonic()
        with self._mu:
            cached = self._cached
        if cached is None or now - cached[0] >= CHECKPOINT_TTL:
            data = self._read(CHECKPOINT_KEY, MAX_CHECKPOINT_BYTES)
            size = None if data is None else published_size(data, self.log_key, self.bucket)
            cached = (now, 0, b"") if data is None or size is None else (now, size, data)
            with self._mu:
                self._cached = cached
        _, size, note = cached
        with self._mu:
            if not note or size < self._served:
                return None
            self._served = size
        return note

    def served(self, size: int) -> None:
        """Note that this process served checkpoint ``size`` from the database."""
        with self._mu:
            self._served = max(self._served, size)


class NotAPublishBucket(ValueError, ApiLayerError):
    """A bucket the log must not be published to: making it readable by anyone would hand
    out what it holds besides the log (the message says which bucket and why)."""


def check_publish_bucket(client: Minio, bucket: str, config: S3Config) -> None:
    """Refuse to make the evidence bucket, or any bucket holding evidence objects
    (``sha256/...``: sealed bid files before the opening, complaint letters), readable by
    anyone. Raises :class:`NotAPublishBucket`."""
    if bucket == config.bucket:
        raise NotAPublishBucket(
            f"--publish-bucket {bucket} is the evidence bucket (JIANZHENG_S3_BUCKET): "
            "publishing the log there would let anyone read every evidence file; name a "
            "bucket of its own"
        )
    if client.bucket_exists(bucket):
        held = client.list_objects(bucket, prefix=EVIDENCE_PREFIX)
        if next(iter(held), None) is not None:
            raise NotAPublishBucket(
                f"--publish-bucket {bucket} holds evidence objects ({EVIDENCE_PREFIX}...): "
                "publishing the log there would let anyone read them; name a bucket of its own"
            )


def open_publisher(
    ledger: Ledger, bucket: str, config: S3Config, witnessing: WitnessingView | None = None
) -> BucketPublisher:
    """A started publisher of ``ledger`` to ``bucket`` on the S3 server of ``config``
    (created if missing, readable by anyone), elected among nodes and workers; never the
    evidence bucket nor one holding evidence (:func:`check_publish_bucket`). With
    ``witnessing`` (a log with witnesses), the checkpoint is published cosigned."""
    client = s3_client(config)
    check_publish_bucket(client, bucket, config)
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    client.set_bucket_policy(bucket, public_read_policy(bucket))
    engine = ledger.store.engine
    lock: LeaderLock = (
        PgLeaderLock(engine, PG_PUBLISH_LOCK)
        if engine.dialect.name == "postgresql"
        else FileLeaderLock(ledger.data_dir / "publish.lock")
    )
    publisher = BucketPublisher(ledger, client, bucket, lock, witnessing)
    publisher.start()
    return publisher
