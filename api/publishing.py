"""``serve --publish-bucket BUCKET``: the log published to a bucket (ledger/publish.py),
on the S3 server of the evidence store (``JIANZHENG_S3_*``)."""

from __future__ import annotations

from minio import Minio

from ledger.publish import BucketPublisher, public_read_policy
from ledger.service import Ledger
from ledger.witnessing.leader import PG_PUBLISH_LOCK, FileLeaderLock, LeaderLock, PgLeaderLock
from storage.s3 import S3Config


def open_publisher(ledger: Ledger, bucket: str, config: S3Config) -> BucketPublisher:
    """A started publisher of ``ledger`` to ``bucket`` on the S3 server of ``config``
    (created if missing, readable by anyone), elected among nodes and workers."""
    client = Minio(
        config.endpoint,
        access_key=config.access_key,
        secret_key=config.secret_key,
        secure=config.secure,
    )
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
