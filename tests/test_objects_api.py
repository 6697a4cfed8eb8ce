"""The evidence-object API over HTTP, on both backends: contract paths, ranges, chunk
proofs, legal holds, events citing attachments, and failures that must leave nothing."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token, make_scope
from ledger.service import Ledger
from storage.fs import FilesystemStore
from storage.service import EvidenceStore
from tests.conftest import make_event
from tests.servers import start_minio
from tests.test_storage import TEST_PART, LiveServer, everything_in, make_minio
from verifier.chunks import CHUNK_SIZE, verify_chunk

if TYPE_CHECKING:
    from tests.fixtures_servers import S3Server


def h(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Env:
    def __init__(self, client: TestClient, lg: Ledger, objects: EvidenceStore) -> None:
        self.c = client
        self.lg = lg
        self.objects = objects
        self.tok = {
            r: create_token(lg.store, r)[1] for r in ("platform", "reviewer", "archivist", "admin")
        }
        self.tok["scoped"] = create_token(lg.store, "reviewer", scope=make_scope(["P1"]))[1]

    def upload(self, data: bytes, **headers: str) -> httpx.Response:
        r: httpx.Response = self.c.post(
            "/v1/objects", content=data, headers=h(self.tok["platform"], **headers)
        )
        return r

    def cite(self, data: bytes, project: str = "P1") -> None:
        """Post an event citing the object: from then on it is the project's evidence."""
        ev = make_event(project=project, attachments=[attachment(data)])
        self.c.post("/v1/events", json=ev, headers=h(self.tok["platform"])).raise_for_status()


@pytest.fixture(params=["filesystem", "minio"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    lg = Ledger.open(tmp_path / "data", f"sqlite:///{tmp_path / 'ledger.db'}", "objects.test/log")
    if request.param == "minio":
        s3: S3Server = request.getfixturevalue("minio_server")
        backend: Any = make_minio(s3)
    else:
        backend = FilesystemStore(tmp_path / "data" / "objects")
    objects = EvidenceStore(backend, lg.store.engine)
    try:
        with TestClient(create_app(lg, rate_limit=0, objects=objects)) as c:
            yield Env(c, lg, objects)
    finally:
        objects.close()
        lg.close()


def test_upload_then_download_whole_and_ranges(env: Env) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 321)
    r = env.upload(data, **{"Content-Type": "video/mp4", "X-Content-SHA256": sha(data)})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["sha256"] == sha(data) and body["size"] == len(data)
    assert body["media_type"] == "video/mp4" and body["chunk_count"] == 3
    assert r.headers["location"] == f"/v1/objects/{sha(data)}"
    again = env.upload(data)
    assert again.status_code == 200 and again.json()["chunk_root"] == body["chunk_root"]
    env.cite(data)

    url = f"/v1/objects/{sha(data)}"
    reader = env.tok["archivist"]
    full = env.c.get(url, headers=h(reader))
    assert full.status_code == 200 and full.content == data
    assert full.headers["content-type"] == "video/mp4"
    assert full.headers["accept-ranges"] == "bytes"
    assert full.headers["x-content-sha256"] == sha(data)
    cases = {
        "bytes=0-9": (0, 9),
        "bytes=100-": (100, len(data) - 1),
        "bytes=-50": (len(data) - 50, len(data) - 1),
        f"bytes={len(data) - 5}-{len(data) + 100}": (len(data) - 5, len(data) - 1),
        "bytes=10-19, 30-39": (10, 39),  # coalesced into one span (RFC 9110 §14.2)
    }
    for rng, (a, b) in cases.items():
        part = env.c.get(url, headers=h(reader, Range=rng))
        assert part.status_code == 206, rng
        assert part.content == data[a : b + 1], rng
        assert part.headers["content-range"] == f"bytes {a}-{b}/{len(data)}"
    bad = env.c.get(url, headers=h(reader, Range=f"bytes={len(data)}-"))
    assert bad.status_code == 416
    assert bad.headers["content-range"] == f"bytes */{len(data)}"
    assert bad.json()["error"]["code"] == "range_not_satisfiable"
    # Another unit, or nonsense, is ignored (RFC 9110 §14.2): the whole object.
    assert env.c.get(url, headers=h(reader, Range="items=0-1")).status_code == 200
    assert env.c.get(url, headers=h(reader, Range="bytes=9-3")).status_code == 200


def test_head_on_an_object_has_the_get_headers_and_no_body(env: Env) -> None:
    """HEAD (issue 13): the GET's status and headers, through the same authorization."""
    data = os.urandom(3 * CHUNK_SIZE + 5)
    env.upload(data, **{"Content-Type": "application/pdf"})
    env.cite(data)
    url = f"/v1/objects/{sha(data)}"
    srv = LiveServer(env.c.app)  # through uvicorn too, not only the test transport
    live = httpx.Client(timeout=30)
    try:
        for client, base in ((env.c, ""), (live, srv.url)):
            for headers in (h(env.tok["archivist"]), h(env.tok["archivist"], Range="bytes=5-9")):
                get = client.get(base + url, headers=headers)
                head = client.head(base + url, headers=headers)
                assert head.status_code == get.status_code in (200, 206)
                assert head.content == b""
                for name in ("content-length", "content-type", "etag", "content-range"):
                    assert head.headers.get(name) == get.headers.get(name), name
            # Without a token, or for a reader the object is hidden from: as for GET.
            assert client.head(base + url).status_code == 401
            other = h(env.tok["scoped"])
            assert client.head(base + url, headers=other).status_code == (
                client.get(base + url, headers=other).status_code
            )
        # The server is still sound after HEADs cut streams short.
        assert live.get(srv.url + url, headers=h(env.tok["archivist"])).content == data
    finally:
        live.close()
        srv.stop()


def test_chunk_endpoint_proves_one_chunk(env: Env) -> None:
    data = os.urandom(4 * CHUNK_SIZE + 10)
    root = base64.b64decode(env.upload(data).json()["chunk_root"])
    env.cite(data)
    for i in (0, 2, 4):
        r = env.c.get(f"/v1/objects/{sha(data)}/chunks/{i}", headers=h(env.tok["reviewer"]))
        assert r.status_code == 200, r.text
        j = r.json()
        assert set(j) == {"index", "chunk_count", "chunk_root", "data", "proof"}
        assert (j["index"], j["chunk_count"]) == (i, 5)
        chunk = base64.b64decode(j["data"])
        assert chunk == data[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE]
        verify_chunk(
            i,
            5,
            chunk,
            [base64.b64decode(p) for p in j["proof"]],
            base64.b64decode(j["chunk_root"]),
        )
        assert base64.b64decode(j["chunk_root"]) == root
    rv = h(env.tok["reviewer"])
    assert env.c.get(f"/v1/objects/{sha(data)}/chunks/5", headers=rv).status_code == 404
    assert env.c.get(f"/v1/objects/{sha(data)}/chunks/-1", headers=rv).status_code == 422
    assert env.c.get(f"/v1/objects/{'0' * 64}/chunks/0", headers=rv).status_code == 404
    assert env.c.get("/v1/objects/XYZ/chunks/0", headers=rv).status_code == 422


def test_announced_digest_mismatch_is_refused_and_leaves_nothing(env: Env) -> None:
    data = os.urandom(TEST_PART + 7)
    other = sha(data + b"!")
    r = env.upload(data, **{"X-Content-SHA256": other})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "digest_mismatch" and err["field"] == "X-Content-SHA256"
    digest = base64.b64encode(bytes.fromhex(other)).decode()
    r2 = env.upload(data, Digest=f"sha-256={digest}")
    assert r2.status_code == 422 and r2.json()["error"]["field"] == "Digest"
    assert everything_in(env.objects) == []
    for d in (sha(data), other):
        assert env.c.get(f"/v1/objects/{d}", headers=h(env.tok["admin"])).status_code == 404
    # The right digest, in either header, is accepted.
    ok = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert env.upload(data, Digest=f"md5=abc, SHA-256={ok}").status_code == 201


def test_upload_refusals(env: Env) -> None:
    p = env.tok["platform"]
    bad = {
        "X-Content-SHA256": "abc",
        "Digest": "md5=xyz",
    }
    for k, v in bad.items():
        r = env.c.post("/v1/objects", content=b"x", headers=h(p, **{k: v}))
        assert r.status_code == 400 and r.json()["error"]["field"] == k
    r = env.c.post("/v1/objects", content=b"x", headers=h(p, **{"Content-Type": "not a type"}))
    assert r.status_code == 422 and r.json()["error"]["field"] == "Content-Type"
    env.objects.max_size = 100
    r = env.c.post("/v1/objects", content=b"x" * 101, headers=h(p))
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit applies while streaming
        for _ in range(5):
            yield b"y" * 50

    r = env.c.post("/v1/objects", content=chunked(), headers=h(p))
    assert r.status_code == 413
    assert everything_in(env.objects) == []
    # Roles: platforms upload; nobody anonymous.
    assert (
        env.c.post("/v1/objects", content=b"x", headers=h(env.tok["reviewer"])).status_code == 403
    )
    assert env.c.post("/v1/objects", content=b"x").status_code == 401
    env.objects.max_size = 1 << 30
    d = env.upload(b"bid").json()["sha256"]
    # No record cites it yet, so it is nobody's evidence: the platform may check its own
    # upload, readers see nothing yet.
    assert env.c.get(f"/v1/objects/{d}", headers=h(p)).content == b"bid"
    for t in ("reviewer", "archivist", "scoped"):
        assert env.c.get(f"/v1/objects/{d}", headers=h(env.tok[t])).status_code == 404
    env.cite(b"bid", project="P1")
    # Cited, it is evidence of P1: its readers read it, the platform no longer does.
    assert env.c.get(f"/v1/objects/{d}", headers=h(env.tok["scoped"])).content == b"bid"
    assert env.c.get(f"/v1/objects/{d}", headers=h(p)).status_code == 404


def test_legal_hold_endpoint(env: Env) -> None:
    d = env.upload(b"complaint evidence").json()["sha256"]
    url = f"/v1/objects/{d}/legal-hold"
    # Not evidence of any project yet: no project's chain could record a hold on it.
    assert env.c.post(url, json={"hold": True}, headers=h(env.tok["admin"])).status_code == 404
    env.cite(b"complaint evidence")
    r = env.c.post(url, json={"hold": True}, headers=h(env.tok["reviewer"]))
    assert r.status_code == 200 and r.json()["legal_hold"] is True
    assert env.objects.require(d).legal_hold
    assert env.c.post(url, json={"hold": False}, headers=h(env.tok["archivist"])).status_code == 403
    assert env.c.post(url, json={"hold": "yes"}, headers=h(env.tok["admin"])).status_code == 422
    r = env.c.post(url, json={"hold": False}, headers=h(env.tok["admin"]))
    assert r.status_code == 200 and r.json()["legal_hold"] is False
    missing = f"/v1/objects/{'1' * 64}/legal-hold"
    assert env.c.post(missing, json={"hold": True}, headers=h(env.tok["admin"])).status_code == 404


def attachment(data: bytes, **over: Any) -> dict[str, Any]:
    a = {"sha256": sha(data), "size": len(data), "media_type": "application/pdf", "name": "bid.pdf"}
    a.update(over)
    return a


def test_events_cite_only_stored_attachments_and_record_chunk_root(env: Env) -> None:
    p = h(env.tok["platform"])
    data = os.urandom(CHUNK_SIZE + 3)
    up = env.upload(data).json()
    size0 = env.lg.head().size
    r = env.c.post(
        "/v1/events", json=make_event(attachments=[attachment(b"never stored")]), headers=p
    )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "attachments[0].sha256"
    r = env.c.post(
        "/v1/events", json=make_event(attachments=[attachment(data, size=len(data) + 1)]), headers=p
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "attachments[0].size"
    batch = {"events": [make_event(), make_event(attachments=[attachment(b"nope")])]}
    r = env.c.post("/v1/events:batch", json=batch, headers=p)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "events[1].attachments[0].sha256"
    assert env.lg.head().size == size0
    r = env.c.post("/v1/events", json=make_event(attachments=[attachment(data)]), headers=p)
    assert r.status_code == 201, r.text
    rec = env.c.get(f"/v1/events/{r.json()['index']}", headers=h(env.tok["admin"])).json()["record"]
    assert rec["attachments"] == [{**attachment(data), "chunk_root": up["chunk_root"]}]


def test_minio_down_means_503_and_no_event(tmp_path: Path) -> None:
    """A real MinIO that goes away: uploads, reads and events citing objects get 503."""
    server = start_minio(tmp_path / "minio")
    s3 = type("S3", (), {})()
    s3.endpoint, s3.access_key, s3.secret_key = (
        server.endpoint,
        server.access_key,
        server.secret_key,
    )
    lg = Ledger.open(tmp_path / "data", f"sqlite:///{tmp_path / 'ledger.db'}", "down.test/log")
    objects = EvidenceStore(make_minio(s3), lg.store.engine)
    try:
        with TestClient(create_app(lg, rate_limit=0, objects=objects)) as c:
            env = Env(c, lg, objects)
            data = os.urandom(1000)
            assert env.upload(data).status_code == 201
            server.stop()
            size0 = lg.head().size
            r = c.post(
                "/v1/events",
                json=make_event(attachments=[attachment(data)]),
                headers=h(env.tok["platform"]),
            )
            assert r.status_code == 503, r.text
            err = r.json()["error"]
            assert err["code"] == "storage_unavailable" and "MinIO" in err["message"]
            assert lg.head().size == size0
            assert env.upload(os.urandom(10)).status_code == 503
            # No event cites it (that post failed), so only the admin may try to read it.
            reader = h(env.tok["admin"])
            assert c.get(f"/v1/objects/{sha(data)}", headers=reader).status_code == 503
            assert c.get(f"/v1/objects/{sha(data)}/chunks/0", headers=reader).status_code == 503
            # Events without attachments do not depend on the object store.
            assert (
                c.post("/v1/events", json=make_event(), headers=h(env.tok["platform"])).status_code
                == 201
            )
    finally:
        server.stop()
        objects.close()
        lg.close()


def _send_partial(
    url: str, token: str, total: int, sent: int, digest: str | None, before_hangup: Any
) -> None:
    """POST a body announced as ``total`` bytes, send ``sent`` of them, and hang up."""
    host, port = url.removeprefix("http://").split(":")
    announce = f"X-Content-SHA256: {digest}\r\n" if digest else ""
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            (
                f"POST /v1/objects HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: {total}\r\n"
                f"Content-Type: video/mp4\r\n{announce}\r\n"
            ).encode()
        )
        piece = os.urandom(1 << 20)
        left = sent
        while left > 0:
            s.sendall(piece[: min(len(piece), left)])
            left -= len(piece)
        before_hangup()


@pytest.mark.parametrize("announce", [True, False], ids=["announced", "unannounced"])
def test_interrupted_http_upload_leaves_no_object(env: Env, announce: bool) -> None:
    srv = LiveServer(env.c.app)
    try:
        # An announced digest makes the upload go straight to the object's own key.
        digest = secrets.token_hex(32) if announce else None
        sent = TEST_PART + 3 * CHUNK_SIZE
        seen: list[str] = []

        def partly_written() -> None:
            # Parts already reached the store (a pending multipart upload or a temporary
            # file), none of it visible as an object.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not seen:
                seen.extend(everything_in(env.objects))
                time.sleep(0.05)

        _send_partial(srv.url, env.tok["platform"], 3 * TEST_PART, sent, digest, partly_written)
        assert seen and not any(x.startswith("sha256/") for x in seen), seen
        # The upload thread notices the disconnect and aborts; then its slot is free.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if env.objects.upload_slots.in_use() == 0:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the interrupted upload never finished")
        assert everything_in(env.objects) == []
    finally:
        srv.stop()


def test_postgres_records_object_metadata(fresh_pg_url: str, tmp_path: Path) -> None:
    lg = Ledger.open(tmp_path / "data", fresh_pg_url, "pg.test/log")
    objects = EvidenceStore(FilesystemStore(tmp_path / "objects"), lg.store.engine)
    try:
        data = os.urandom(CHUNK_SIZE * 2 + 1)
        info, created = objects.ingest(iter([data]), sha(data), "video/mp4")
        assert created and objects.require(info.sha256) == info
        c = objects.chunk(info.sha256, 2)
        verify_chunk(2, 3, c.data, c.proof, info.chunk_root)
        assert objects.set_legal_hold(info.sha256, True).legal_hold
    finally:
        objects.close()
        lg.close()


def test_default_store_comes_from_the_environment(tmp_path: Path, monkeypatch: Any) -> None:
    for k in list(os.environ):
        if k.startswith("JIANZHENG_S3_"):
            monkeypatch.delenv(k)
    lg = Ledger.open(tmp_path / "data", None, "env.test/log")
    try:
        app = create_app(lg)
        assert isinstance(app.state.objects.backend, FilesystemStore)
        assert app.state.objects.backend.root == tmp_path / "data" / "objects"
        monkeypatch.setenv("JIANZHENG_S3_ENDPOINT", "127.0.0.1:1")
        monkeypatch.setenv("JIANZHENG_S3_ACCESS_KEY", "a")
        monkeypatch.setenv("JIANZHENG_S3_SECRET_KEY", "b")
        monkeypatch.setenv("JIANZHENG_S3_BUCKET", f"jz-{secrets.token_hex(3)}")
        monkeypatch.setenv("JIANZHENG_S3_SECURE", "false")
        assert create_app(lg).state.objects.backend.kind == "minio"
    finally:
        lg.close()
