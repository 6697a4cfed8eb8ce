"""Faults survived with real processes (issue 16): the PostgreSQL primary dies, a node
dies behind HAProxy, a MinIO drive is lost.

Each test starts its own PostgreSQL primary with a synchronous streaming standby, MinIO
with 4 erasure-coded drives, and ``jianzheng serve`` nodes on one database and one bucket
(``tests/cluster.py``). Client threads post events with idempotency keys, retrying a
failed request with the same key, and keep every receipt; afterwards every acknowledged
entry is in the log with the same hash at the same index, every checkpoint a client saw
is consistent with the new head, and each key names exactly one entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster import (
    HAProxy,
    Load,
    MinioCluster,
    Nodes,
    PgPair,
    check_log,
    minio4,  # noqa: F401  (the fixture)
)
from tests.conftest import make_event
from tests.fixtures_servers import _unavailable
from tests.procs import jianzheng
from tests.servers import ServerError

pytestmark = [pytest.mark.cluster, pytest.mark.postgres]


@pytest.fixture
def pg_pair(tmp_path: Path) -> Iterator[PgPair]:
    try:
        pair = PgPair(tmp_path / "pg")
    except (ServerError, OSError) as e:
        _unavailable("PostgreSQL with a streaming standby", str(e))
    try:
        yield pair
    finally:
        pair.stop()


@pytest.fixture
def balanced(
    tmp_path: Path,
    pg_pair: PgPair,
    minio4: MinioCluster,  # noqa: F811
) -> Iterator[tuple[Nodes, HAProxy]]:
    """3 nodes behind HAProxy, on the pair's multi-host URL and the 4-drive bucket."""
    nodes = Nodes(tmp_path, pg_pair.url, minio4.env("evidence"), 3)
    try:
        try:
            proxy = HAProxy(tmp_path / "haproxy", nodes.ports)
        except ServerError as e:
            _unavailable("HAProxy", str(e))
        try:
            yield nodes, proxy
        finally:
            proxy.stop()
    finally:
        nodes.stop()


def audit(nodes: Nodes, *flags: str) -> str:
    out = jianzheng(
        "audit",
        "--data",
        str(nodes.dirs[0]),
        "--db",
        nodes.db,
        *flags,
        env=nodes.env,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_the_primary_dies_under_load(pg_pair: PgPair, balanced: tuple[Nodes, HAProxy]) -> None:
    nodes, proxy = balanced
    load = Load(proxy.url, nodes.token, threads=4, per_thread=250)
    load.wait_for(200)
    pg_pair.kill_primary()  # kill -9, every backend with it: the host is gone
    before = load.count()
    pg_pair.promote()
    load.finish()
    assert load.refused == []
    assert len(load.acked) == 1000
    assert load.errors > 0, "the failover went unnoticed: the test did not test it"
    assert len(load.acked) > before  # appends resumed on the promoted standby
    size = check_log(proxy.url, nodes.reviewer, nodes.db, load.acked)
    assert size >= 1000
    # Every node appends again, through its own reconnected pool.
    for srv in nodes.servers:
        assert srv is not None
        r = httpx.post(
            srv.url + "/v1/events",
            json=make_event(project="AFTER"),
            headers={"Authorization": f"Bearer {nodes.token}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
    assert "audit: OK" in audit(nodes)


def test_a_node_dies_behind_the_balancer(balanced: tuple[Nodes, HAProxy]) -> None:
    nodes, proxy = balanced
    load = Load(proxy.url, nodes.token, threads=4, per_thread=250)
    load.wait_for(200)
    nodes.kill(1)  # SIGKILL mid-load: requests in flight on it are lost to their clients
    load.finish()
    assert load.refused == []
    assert len(load.acked) == 1000
    check_log(proxy.url, nodes.reviewer, nodes.db, load.acked)
    assert "audit: OK" in audit(nodes)


def test_a_minio_drive_is_lost(
    tmp_path: Path,
    minio4: MinioCluster,  # noqa: F811
    balanced: tuple[Nodes, HAProxy],
) -> None:
    nodes, proxy = balanced
    reader = nodes.cli("token", "create", "--role", "archivist")
    stored: dict[str, bytes] = {}
    for i in range(6):
        path = tmp_path / f"recording-{i}.mp4"
        content = os.urandom((i + 1) * 700_000 + i)
        path.write_bytes(content)
        up = jianzheng("upload", str(path), "--url", proxy.url, "--token", nodes.token)
        body = json.loads(up.stdout)
        attachment = {k: body[k] for k in ("sha256", "size", "media_type")}
        r = httpx.post(
            proxy.url + "/v1/events",
            json=make_event(attachments=[{**attachment, "name": path.name}]),
            headers={"Authorization": f"Bearer {nodes.token}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        stored[body["sha256"]] = content

    minio4.lose_drive(2)

    with httpx.Client(
        base_url=proxy.url, timeout=60, headers={"Authorization": f"Bearer {reader}"}
    ) as http:
        for digest, content in stored.items():
            r = http.get(f"/v1/objects/{digest}")
            assert r.status_code == 200, r.text
            assert hashlib.sha256(r.content).hexdigest() == digest
            assert r.content == content
    assert "audit: OK" in audit(nodes, "--objects")
