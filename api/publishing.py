"""``serve --publish-bucket BUCKET``: the log published to a bucket (ledger/publish.py),
on the S3 server of the evidence store (``JIANZHENG_S3_*``)."""

from __future__ import annotations

import logging

from minio import Minio
from minio.error import S3Error

from api.errors import ApiLayerError
from ledger.publish import BucketPublisher, public_read_policy, tile_key
from ledger.service import Ledger
from ledger.witnessing.leader import PG_PUBLISH_LOCK, FileLeaderLock, LeaderLock, PgLeaderLock
from storage.s3 import S3Config

log = logging.getLogger("jianzheng.publish")

#: Where the evidence store keeps objects (storage/base.py ``object_key``).
EVIDENCE_PREFIX = "sha256/"
#: Bytes a tile or entry bundle may have (256 entries of a 2-byte length and at most
#: 64 KiB each is far more than any; tiles are 8 KiB): a bound on what one read holds.
MAX_TILE_BYTES = 1 << 24


def s3_client(config: S3Config) -> Minio:
    return Minio(
        config.endpoint,
        access_key=config.access_key,
        secret_key=config.secret_key,
        secure=config.secure,
    )


class BucketTiles:
    """``serve --log-from-bucket``: /log/tile/* read from the published bucket, so tile
    reads cost the database nothing; a tile not (yet) published is read from the database.
    """

    def __init__(self, client: Minio, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def get(self, level: int | None, index: int, width: int) -> bytes | None:
        """The published object, or None (not published yet, or the bucket unreachable)."""
        key = tile_key(level, index, width)
        try:
            resp = self.client.get_object(self.bucket, key)
        except S3Error as e:
            if e.code != "NoSuchKey":
                log.warning("bucket %s: %s reading %s", self.bucket, e.code, key)
            return None
        except Exception as e:  # unreachable: the database answers instead
            log.warning("bucket %s unreachable (%s) reading %s", self.bucket, type(e).__name__, key)
            return None
        try:
            data: bytes = resp.read(MAX_TILE_BYTES)
        finally:
            resp.close()
            resp.release_conn()
        return data


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


def open_publisher(ledger: Ledger, bucket: str, config: S3Config) -> BucketPublisher:
    """A started publisher of ``ledger`` to ``bucket`` on the S3 server of ``config``
    (created if missing, readable by anyone), elected among nodes and workers; never the
    evidence bucket nor one holding evidence (:func:`check_publish_bucket`)."""
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
    publisher = BucketPublisher(ledger, client, bucket, lock)
    publisher.start()
    return publisher
