"""Evidence storage: one contract, run against the filesystem and a real MinIO server.

The same test functions run on both backends (``store`` is parametrized). MinIO tests use
the session's real server (tests/fixtures_servers.py), a fresh bucket per test.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn
from minio import Minio
from minio.error import S3Error

from ledger.store import make_engine, migrate
from storage.base import (
    DigestMismatch,
    ObjectLocked,
    ObjectNotFound,
    ObjectTooLarge,
    StorageUnavailable,
    UploadInterrupted,
)
from storage.fs import FilesystemStore
from storage.s3 import MinioStore, S3Config
from storage.service import EvidenceStore, RetentionPeriod
from verifier import merkle
from verifier.chunks import CHUNK_SIZE, ChunkTree, verify_chunk

if TYPE_CHECKING:
    from tests.fixtures_servers import S3Server

#: The smallest part S3 allows, so that multipart uploads need only a few MiB of data.
TEST_PART = 5 << 20


def blocks(data: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def s3_client(s3: S3Server) -> Minio:
    return Minio(
        endpoint=s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=False
    )


def make_minio(s3: S3Server, bucket: str | None = None) -> MinioStore:
    return MinioStore(
        S3Config(
            endpoint=s3.endpoint,
            access_key=s3.access_key,
            secret_key=s3.secret_key,
            bucket=bucket or f"jz-{secrets.token_hex(6)}",
            secure=False,
            part_size=TEST_PART,
        )
    )


def everything_in(store: EvidenceStore) -> list[str]:
    """Every object, version, temporary file and pending multipart upload in the backend."""
    b = store.backend
    if isinstance(b, FilesystemStore):
        return sorted(str(p.relative_to(b.root)) for p in b.root.rglob("*") if p.is_file())
    assert isinstance(b, MinioStore)
    # The store creates its bucket on first use: a poll that comes before the first upload
    # reached MinIO finds no bucket, which holds nothing.
    if not b.client.bucket_exists(bucket_name=b.bucket):
        return []
    out = [
        f"{o.object_name}@{o.version_id}"
        for o in b.client.list_objects(bucket_name=b.bucket, recursive=True, include_version=True)
    ]
    uploads = b.client._list_multipart_uploads(bucket_name=b.bucket)
    out += [f"upload:{u.object_name}" for u in uploads.uploads]
    return sorted(out)


@pytest.fixture(params=["filesystem", "minio"])
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(request: pytest.FixtureRequest, backend_kind: str, tmp_path: Path) -> Iterator[Any]:
    """Builds evidence stores on the parametrized backend, sharing one SQLite database."""
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    migrate(engine)
    s3: S3Server | None = (
        request.getfixturevalue("minio_server") if backend_kind == "minio" else None
    )
    made: list[EvidenceStore] = []

    def make(**kw: Any) -> EvidenceStore:
        backend = (
            FilesystemStore(tmp_path / "objects")
            if s3 is None
            else make_minio(s3, kw.pop("bucket", None))
        )
        es = EvidenceStore(backend, engine, **kw)
        made.append(es)
        return es

    yield make
    for es in made:
        es.close()
    engine.dispose()


@pytest.fixture
def store(make_store: Any) -> EvidenceStore:
    es: EvidenceStore = make_store()
    return es


SIZES = [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, TEST_PART, TEST_PART + 3 * CHUNK_SIZE + 17]


@pytest.mark.parametrize("announce", [True, False], ids=["announced", "unannounced"])
def test_roundtrip_hashes_and_chunk_root(store: EvidenceStore, announce: bool) -> None:
    for size in SIZES:
        data = os.urandom(size)
        info, created = store.ingest(
            blocks(data, 333_333), sha(data) if announce else None, "video/mp4"
        )
        t = ChunkTree()
        t.update(data)
        digest, _, root, n = t.finish()
        assert created
        assert (info.sha256, info.size, info.chunk_root, info.chunk_count) == (
            digest.hex(),
            size,
            root,
            n,
        )
        assert info.media_type == "video/mp4"
        assert b"".join(store.read(info, 0, size)) == data
        assert store.present(info.sha256) == info
    assert store.present("0" * 64) is None


def test_pieces_of_any_size_and_reused_buffers(store: EvidenceStore) -> None:
    """Request bodies arrive in pieces of whatever size the server reads (about 250 KB).

    Pieces straddle chunks and parts; the stores keep bytes pieces by reference until a
    part is sent, so a piece in a buffer its owner fills again must be taken as it was.
    """
    data = os.urandom(2 * TEST_PART + 3 * CHUNK_SIZE + 12_345)
    reused = bytearray(262_147)

    def pieces() -> Iterator[bytes]:
        i, n = 0, 0
        while i < len(data):
            size = (250_001, 1, 262_147, 65_536)[n % 4]
            piece = data[i : i + size]
            if n % 3 == 2:
                reused[: len(piece)] = piece
                yield memoryview(reused)[: len(piece)]  # type: ignore[misc]
                reused[:] = bytes(len(reused))  # overwritten once handed over
            else:
                yield piece
            i, n = i + size, n + 1

    info, created = store.ingest(pieces(), sha(data), "video/mp4")
    assert created and info.size == len(data)
    assert info.chunk_root == merkle.tree_root(
        [merkle.leaf_hash(data[i : i + CHUNK_SIZE]) for i in range(0, len(data), CHUNK_SIZE)]
    )
    assert b"".join(store.read(info, 0, info.size)) == data


def test_identical_content_is_stored_once(store: EvidenceStore) -> None:
    data = os.urandom(TEST_PART + 100)
    first, created1 = store.ingest(blocks(data), sha(data), "application/pdf")
    again, created2 = store.ingest(blocks(data), sha(data), "application/pdf")
    third, created3 = store.ingest(blocks(data), None, "application/pdf")
    assert (created1, created2, created3) == (True, False, False)
    assert first == again == third
    assert everything_in(store) == (
        [f"sha256/{first.sha256}"]
        if store.backend.kind == "filesystem"
        else [f"sha256/{first.sha256}@{first.version_id}"]
    )


def test_range_reads(store: EvidenceStore) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 5)
    info, _ = store.ingest(blocks(data), None, "audio/ogg")
    for off, n in [(0, 1), (5, 100), (CHUNK_SIZE - 3, 10), (len(data) - 7, 7), (0, len(data))]:
        assert b"".join(store.read(info, off, n)) == data[off : off + n]
    assert b"".join(store.read(info, 10, 0)) == b""
    with pytest.raises(ValueError):
        store.read(info, len(data) - 1, 2)


def test_chunk_proofs_verify_against_chunk_root(store: EvidenceStore) -> None:
    data = os.urandom(5 * CHUNK_SIZE + 999)
    info, _ = store.ingest(blocks(data), sha(data), "video/mp4")
    for i in range(info.chunk_count):
        c = store.chunk(info.sha256, i)
        assert c.data == data[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE]
        verify_chunk(i, info.chunk_count, c.data, c.proof, info.chunk_root)
        j = c.to_json()
        assert set(j) == {"index", "chunk_count", "chunk_root", "data", "proof"}
    with pytest.raises(ObjectNotFound):
        store.chunk(info.sha256, info.chunk_count)
    empty, _ = store.ingest(iter([b""]), None, "text/plain")
    assert empty.chunk_count == 0 and empty.chunk_root == merkle.EMPTY_ROOT
    with pytest.raises(ObjectNotFound):
        store.chunk(empty.sha256, 0)


@pytest.mark.parametrize("size", [1000, TEST_PART * 2 + 1], ids=["one-part", "multipart"])
def test_digest_mismatch_leaves_nothing(store: EvidenceStore, size: int) -> None:
    data = os.urandom(size)
    wrong = sha(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(DigestMismatch):
        store.ingest(blocks(data), wrong, "application/pdf")
    assert everything_in(store) == []
    assert store.info(wrong) is None and store.info(sha(data)) is None


def test_interrupted_upload_leaves_nothing(store: EvidenceStore) -> None:
    data = os.urandom(TEST_PART * 2 + 10)

    def cut_off() -> Iterator[bytes]:
        yield from blocks(data[: TEST_PART + CHUNK_SIZE])
        raise UploadInterrupted("client went away")

    for announced in (sha(data), None):
        with pytest.raises(UploadInterrupted):
            store.ingest(cut_off(), announced, "video/mp4")
    assert everything_in(store) == []
    assert store.info(sha(data)) is None


def test_too_large_is_refused_and_leaves_nothing(make_store: Any) -> None:
    store = make_store(max_size=TEST_PART + 10)
    data = os.urandom(TEST_PART + 11)
    with pytest.raises(ObjectTooLarge):
        store.ingest(blocks(data), None, "video/mp4")
    assert everything_in(store) == []
    ok = data[:-1]
    info, _ = store.ingest(blocks(ok), sha(ok), "video/mp4")
    assert info.size == len(ok)


def test_retention_and_legal_hold_block_deletion(make_store: Any) -> None:
    store = make_store(retention="3s")
    data = os.urandom(2000)
    info, _ = store.ingest(blocks(data), sha(data), "application/pdf")
    until = datetime.fromisoformat(info.retain_until.replace("Z", "+00:00"))
    assert timedelta(seconds=2) < until - datetime.now(UTC) <= timedelta(seconds=3)
    with pytest.raises(ObjectLocked):
        store.delete(info.sha256)
    held = store.set_legal_hold(info.sha256, True)
    assert held.legal_hold
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 1.0)
    with pytest.raises(ObjectLocked, match="legal hold"):
        store.delete(info.sha256)
    assert not store.set_legal_hold(info.sha256, False).legal_hold
    store.delete(info.sha256)
    assert store.info(info.sha256) is None
    assert store.present(info.sha256) is None


def test_retention_default_is_fifteen_years(store: EvidenceStore) -> None:
    info, _ = store.ingest(iter([b"contract"]), None, "text/plain")
    created = datetime.fromisoformat(info.created_at.replace("Z", "+00:00"))
    until = datetime.fromisoformat(info.retain_until.replace("Z", "+00:00"))
    assert until.year - created.year == 15
    assert RetentionPeriod.parse("15y").until(datetime(2024, 2, 29, tzinfo=UTC)) == datetime(
        2039, 2, 28, tzinfo=UTC
    )
    with pytest.raises(ValueError):
        RetentionPeriod.parse("fifteen years")


# --- MinIO: what the server itself enforces ------------------------------------------------


def test_locked_object_cannot_be_deleted_or_overwritten_on_the_server(
    minio_server: S3Server, tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    migrate(engine)
    store = EvidenceStore(make_minio(minio_server), engine)
    data = os.urandom(TEST_PART + 5)
    info, _ = store.ingest(blocks(data), sha(data), "video/mp4")
    b = store.backend
    assert isinstance(b, MinioStore)
    key = f"sha256/{info.sha256}"
    raw = s3_client(minio_server)
    ret = raw.get_object_retention(
        bucket_name=b.bucket, object_name=key, version_id=info.version_id
    )
    assert ret is not None and ret.mode == "COMPLIANCE"
    assert ret.retain_until_date is not None
    assert ret.retain_until_date.year - datetime.now(UTC).year == 15
    # The root user cannot delete the locked version ...
    with pytest.raises(S3Error) as e:
        raw.remove_object(bucket_name=b.bucket, object_name=key, version_id=info.version_id)
    assert e.value.code in ("AccessDenied", "InvalidRequest")
    with pytest.raises(ObjectLocked):
        b.delete(info.sha256, info.version_id)
    # ... nor shorten its retention ...
    from minio.commonconfig import COMPLIANCE
    from minio.retention import Retention

    with pytest.raises(S3Error):
        raw.set_object_retention(
            bucket_name=b.bucket,
            object_name=key,
            config=Retention(COMPLIANCE, datetime.now(UTC) + timedelta(days=1)),
            version_id=info.version_id,
        )
    # ... and an "overwrite" or a delete marker only adds versions: the locked bytes stay,
    # and the service keeps serving exactly them.
    import io

    raw.put_object(bucket_name=b.bucket, object_name=key, data=io.BytesIO(b"forged"), length=6)
    assert b"".join(store.read(info, 0, info.size)) == data
    raw.remove_object(bucket_name=b.bucket, object_name=key)
    assert b"".join(store.read(info, 0, info.size)) == data
    assert store.present(info.sha256) == info
    # A legal hold is set on the server too.
    store.set_legal_hold(info.sha256, True)
    assert raw.is_object_legal_hold_enabled(
        bucket_name=b.bucket, object_name=key, version_id=info.version_id
    )
    engine.dispose()


def test_bucket_is_created_with_object_lock(minio_server: S3Server) -> None:
    store = make_minio(minio_server)
    store.ensure_ready()
    raw = s3_client(minio_server)
    assert raw.get_object_lock_config(bucket_name=store.bucket) is not None
    # A bucket without Object Lock is refused rather than used.
    plain = f"jz-plain-{secrets.token_hex(4)}"
    raw.make_bucket(bucket_name=plain)
    with pytest.raises(StorageUnavailable, match="Object Lock"):
        make_minio(minio_server, plain).ensure_ready()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_minio_is_unavailable_quickly(tmp_path: Path) -> None:
    cfg = S3Config(
        endpoint=f"127.0.0.1:{free_port()}",
        access_key="nobody",
        secret_key="nothing-here",
        bucket="jz-none",
        secure=False,
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    migrate(engine)
    store = EvidenceStore(MinioStore(cfg), engine)
    t = time.monotonic()
    with pytest.raises(StorageUnavailable, match="unreachable"):
        store.ingest(iter([b"x"]), None, "text/plain")
    assert time.monotonic() - t < 10
    engine.dispose()


def test_s3_config_from_env() -> None:
    assert S3Config.from_env({}) is None
    cfg = S3Config.from_env(
        {
            "JIANZHENG_S3_ENDPOINT": "http://127.0.0.1:9000/",
            "JIANZHENG_S3_ACCESS_KEY": "a",
            "JIANZHENG_S3_SECRET_KEY": "s",
            "JIANZHENG_S3_BUCKET": "evidence",
        }
    )
    assert cfg is not None and cfg.endpoint == "127.0.0.1:9000" and not cfg.secure
    cfg2 = S3Config.from_env(
        {
            "JIANZHENG_S3_ENDPOINT": "minio.internal:9000",
            "JIANZHENG_S3_ACCESS_KEY": "a",
            "JIANZHENG_S3_SECRET_KEY": "s",
            "JIANZHENG_S3_BUCKET": "evidence",
            "JIANZHENG_S3_SECURE": "false",
        }
    )
    assert cfg2 is not None and not cfg2.secure
    with pytest.raises(ValueError, match="JIANZHENG_S3_BUCKET"):
        S3Config.from_env(
            {
                "JIANZHENG_S3_ENDPOINT": "x:1",
                "JIANZHENG_S3_ACCESS_KEY": "a",
                "JIANZHENG_S3_SECRET_KEY": "s",
            }
        )


# --- a real HTTP server in this process, for tests that need a socket ------------------------


class LiveServer:
    """uvicorn serving ``app`` on a loopback port from a thread of this process."""

    def __init__(self, app: Any, **options: Any) -> None:
        """``options`` are more ``uvicorn.Config`` settings (a protocol class, limits)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            **{"log_level": "warning", "lifespan": "off", **options},
        )
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def test_parts_are_checked_by_crc32_on_the_server(minio_server: S3Server) -> None:
    """Part bodies go unsigned (see storage/s3.py), so MinIO must verify their CRC-32."""
    from storage.s3 import crc32_header

    store = make_minio(minio_server)
    store.ensure_ready()
    c = store.client
    key = "sha256/" + "ab" * 32
    upload_id = c._create_multipart_upload(bucket_name=store.bucket, object_name=key, headers={})
    part = os.urandom(TEST_PART)
    try:
        with pytest.raises(S3Error) as e:
            c._upload_part(
                bucket_name=store.bucket,
                object_name=key,
                data=part,
                headers={"x-amz-checksum-crc32": crc32_header(part[:-1] + bytes([part[-1] ^ 1]))},
                upload_id=upload_id,
                part_number=1,
            )
        assert e.value.code == "XAmzContentChecksumMismatch"
        etag = c._upload_part(
            bucket_name=store.bucket,
            object_name=key,
            data=part,
            headers={"x-amz-checksum-crc32": crc32_header(part)},
            upload_id=upload_id,
            part_number=1,
        )
        assert etag
    finally:
        c._abort_multipart_upload(bucket_name=store.bucket, object_name=key, upload_id=upload_id)
