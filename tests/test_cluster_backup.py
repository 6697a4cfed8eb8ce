"""Backups (issue 16): a base backup plus the WAL archive in MinIO, restored into a fresh
data directory; and a restore from 1,000 events ago that must not fork the log.

PostgreSQL archives its WAL into a bucket through ``deploy/postgres/wal-s3.sh`` (curl,
``archive_command``); the base backup (``pg_basebackup -Ft -X none``) is uploaded beside
it. The drill downloads both into an empty directory, recovers, and ``jianzheng audit``
passes on the result.
"""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import httpx
import pytest
from minio import Minio

from tests.cluster import (
    MinioCluster,
    Nodes,
    PgNode,
    PgPair,
    WalArchive,
    _chown,
    minio4,  # noqa: F401  (the fixture)
)
from tests.conftest import make_event
from tests.fixtures_servers import _unavailable
from tests.procs import jianzheng
from tests.servers import PG_DATABASE, PG_SUPERUSER, ServerError, _run

pytestmark = [pytest.mark.cluster, pytest.mark.postgres]

WAL_BUCKET = "pg-wal"


def s3(m: MinioCluster) -> Minio:
    return Minio(m.endpoint, m.access_key, m.secret_key, secure=False)


def base_backup(pair: PgPair, m: MinioCluster, name: str) -> None:
    """pg_basebackup as a tar without WAL (the archive has it), uploaded to the bucket."""
    out = pair.root / f"backup-{name}"
    _run(
        [
            str(pair.bindir / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(pair.primary.port),
            "-U",
            PG_SUPERUSER,
            "-D",
            str(out),
            "-Ft",
            "-X",
            "none",
            "--checkpoint=fast",
            "--no-sync",
        ],
        "pg_basebackup",
        cwd=pair.root,
        user=pair.user,
    )
    for f in ("base.tar", "backup_manifest"):
        s3(m).fput_object(WAL_BUCKET, f"base/{name}/{f}", str(out / f))


def archive_now(pair: PgPair) -> None:
    """Switch to a new WAL segment and wait (bounded) until the full one is archived."""
    seg = pair.primary.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = pair.primary.sql("SELECT last_archived_wal, failed_count FROM pg_stat_archiver")
        if done[0][0] is not None and str(done[0][0]) >= str(seg):
            return
        time.sleep(0.1)
    raise AssertionError(f"{seg} not archived within 60 s: {done} {pair.primary.log_tail()}")


def restore(
    pair: PgPair, m: MinioCluster, name: str, into: str, *target: tuple[str, str]
) -> PgNode:
    """The base backup ``name`` into an empty directory, recovered from the WAL archive."""
    data = pair.root / into
    data.mkdir(mode=0o700)
    body = s3(m).get_object(WAL_BUCKET, f"base/{name}/base.tar")
    try:
        with tarfile.open(fileobj=io.BytesIO(body.read())) as tar:
            tar.extractall(data, filter="data")
    finally:
        body.close()
        body.release_conn()
    (data / "recovery.signal").touch()
    for p in [data, *data.rglob("*")]:
        _chown(p, pair.user)
    data.chmod(0o700)
    node = PgNode(
        pair.root,
        into,
        pair.bindir,
        pair.user,
        {
            "fsync": "off",
            "max_connections": "200",
            "restore_command": f"{pair.script} fetch %f %p",
            "recovery_target_action": "promote",
            # The backup carries the primary's synchronous_standby_names (ALTER SYSTEM):
            # restored alone, every commit would wait for a standby that is not there.
            "synchronous_standby_names": "",
            **dict(target),
        },
        pair.archive.env() if pair.archive else None,
    )
    node.start()
    deadline = time.monotonic() + 120
    while node.sql("SELECT pg_is_in_recovery()") != [(False,)]:
        assert time.monotonic() < deadline, node.log_tail()
        time.sleep(0.2)
    return node


def post_batches(url: str, token: str, n: int, project: str) -> None:
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as h:
        for b in range(n // 100):
            evs = [
                make_event(project=project, idempotency_key=f"{project}-{b}-{i}")
                for i in range(100)
            ]
            r = h.post("/v1/events:batch", json={"events": evs})
            assert r.status_code == 201, r.text


def size_of(url: str) -> int:
    return int(httpx.get(url + "/v1/log", timeout=30).json()["size"])


def test_backup_restore_drill_and_no_fork_from_an_old_backup(
    tmp_path: Path,
    minio4: MinioCluster,  # noqa: F811
) -> None:
    s3(minio4).make_bucket(WAL_BUCKET)
    archive = WalArchive(minio4.url, minio4.access_key, minio4.secret_key, WAL_BUCKET)
    try:
        pair = PgPair(tmp_path / "pg", archive)
    except (ServerError, OSError) as e:
        _unavailable("PostgreSQL with a streaming standby", str(e))
    try:
        nodes = Nodes(tmp_path, pair.url, minio4.env("evidence"), 1)
        srv = nodes.servers[0]
        assert srv is not None
        post_batches(srv.url, nodes.token, 300, "BK-A")
        base_backup(pair, minio4, "b1")
        old_size = size_of(srv.url)
        post_batches(srv.url, nodes.token, 1000, "BK-B")  # 1,000 events after the backup
        new_size = size_of(srv.url)
        assert new_size == old_size + 1000
        nodes.stop()  # its log.head now records size new_size
        archive_now(pair)
        for node in (pair.primary, pair.standby):
            node.kill()

        # 1. The backup as it was when taken: the database is 1,000 events behind what
        #    the node signed, and the node refuses to sign on it.
        old = restore(pair, minio4, "b1", "restored-old", ("recovery_target", "immediate"))
        try:
            db_old = f"postgresql+psycopg://{PG_SUPERUSER}@127.0.0.1:{old.port}/{PG_DATABASE}"
            behind = Nodes.__new__(Nodes)
            behind.__dict__.update(nodes.__dict__, db=db_old, servers=[None])
            srv1 = behind.start(0)  # it starts and serves reads...
            try:
                assert size_of(srv1.url) == old_size
                r = httpx.post(
                    srv1.url + "/v1/events",
                    json=make_event(project="BK-FORK"),
                    headers={"Authorization": f"Bearer {nodes.token}"},
                    timeout=30,
                )
                # ...but signs nothing on a database behind what it signed.
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "behind"
                assert f"checkpoint of size {new_size}" in r.json()["error"]["message"]
                assert size_of(srv1.url) == old_size
            finally:
                behind.stop()
            # What it holds is itself consistent: an older state, not another history.
            out = jianzheng(
                "audit", "--data", str(nodes.dirs[0]), "--db", db_old, env=nodes.env, timeout=300
            )
            assert "audit: OK" in out.stdout
        finally:
            old.stop()

        # 2. The drill: base backup plus every archived WAL segment.
        full = restore(pair, minio4, "b1", "restored-full")
        try:
            db = f"postgresql+psycopg://{PG_SUPERUSER}@127.0.0.1:{full.port}/{PG_DATABASE}"
            out = jianzheng(
                "audit", "--data", str(nodes.dirs[0]), "--db", db, env=nodes.env, timeout=300
            )
            assert "audit: OK" in out.stdout
            restored = Nodes.__new__(Nodes)
            restored.__dict__.update(nodes.__dict__, db=db, servers=[None])
            srv2 = restored.start(0)
            try:
                assert size_of(srv2.url) == new_size
                r = httpx.post(
                    srv2.url + "/v1/events",
                    json=make_event(project="BK-C"),
                    headers={"Authorization": f"Bearer {nodes.token}"},
                    timeout=30,
                )
                assert r.status_code == 201 and r.json()["index"] == new_size, r.text
            finally:
                restored.stop()
        finally:
            full.stop()
    finally:
        pair.stop()
