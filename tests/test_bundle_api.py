"""Bundles through the service: the HTTP contract, and the CLI as a reviewer uses it.

The HTTP tests run the real app with a real object store (files uploaded through
``POST /v1/objects``, so the records carry chunk roots); the CLI tests run ``jianzheng
serve``, ``bundle export``, ``verify`` and ``audit --objects`` as separate processes.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token, make_scope
from ledger.service import Ledger
from storage.fs import FilesystemStore
from storage.service import EvidenceStore
from tests.procs import Server, jianzheng
from tests.tender import lawful_tender
from verifier import bundle as fmt
from verifier.bundle import verify_bundle
from verifier.note import parse_vkey
from verifier.report import render_text
from verifier.trust import TrustPolicy

PROJECT = "E330100000042"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Api:
    def __init__(self, client: TestClient, lg: Ledger) -> None:
        self.c = client
        self.lg = lg
        self.tok = {
            r: create_token(lg.store, r)[1] for r in ("platform", "reviewer", "archivist", "admin")
        }
        self.tok["other"] = create_token(lg.store, "reviewer", scope=make_scope(["P-OTHER"]))[1]

    def post_tender(self, project: str, upto: int | None = None) -> None:
        files: dict[str, bytes] = {}
        evs = lawful_tender(project, files)
        for data in files.values():
            r = self.c.post("/v1/objects", content=data, headers=auth(self.tok["platform"]))
            assert r.status_code in (200, 201), r.text
        r = self.c.post(
            "/v1/events:batch", json={"events": evs[:upto]}, headers=auth(self.tok["platform"])
        )
        assert r.status_code == 201, r.text


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    lg = Ledger.open(tmp_path / "data", f"sqlite:///{tmp_path / 'l.db'}", "api.test/log")
    objects = EvidenceStore(FilesystemStore(tmp_path / "data" / "objects"), lg.store.engine)
    try:
        with TestClient(create_app(lg, rate_limit=0, objects=objects)) as c:
            yield Api(c, lg)
    finally:
        objects.close()
        lg.close()


def test_bundle_endpoint_streams_a_verifiable_zip(api: Api, tmp_path: Path) -> None:
    api.post_tender(PROJECT)
    url = f"/v1/projects/{PROJECT}/bundle"
    r = api.c.get(url, params={"files": "true"}, headers=auth(api.tok["archivist"]))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert f'filename="{PROJECT}.evidence.zip"' in r.headers["content-disposition"]
    out = tmp_path / "b.zip"
    out.write_bytes(r.content)
    vkey = api.c.get("/v1/log").json()["verifier_key"]
    rep = verify_bundle(out, TrustPolicy(parse_vkey(vkey)))
    assert rep.ok, render_text(rep)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        recs = [json.loads(x) for x in zf.read(fmt.RECORDS).splitlines()]
    # Chunk roots come from storage, and the files are in the bundle under their hashes.
    assert all(a.get("chunk_root") for x in recs for a in x.get("attachments", []))
    assert sum(n.startswith(fmt.FILES_PREFIX) for n in names) == 5
    assert "5 file(s)" in rep.check("attachments").message
    # Without files: the same proofs, smaller.
    r2 = api.c.get(url, headers=auth(api.tok["reviewer"]))
    assert r2.status_code == 200 and len(r2.content) < len(r.content)
    # Each export is itself recorded, in the project's access chain, before it is served.
    acc = api.c.get(f"/v1/projects/{PROJECT}/access", headers=auth(api.tok["reviewer"]))
    what = [a["payload"] for a in acc.json()["access"] if a["payload"].get("what") == "bundle"]
    assert [w["files"] for w in what] == [True, False]
    assert all(w["records"] == len(recs) for w in what)


def test_bundle_endpoint_refusals(api: Api) -> None:
    api.post_tender(PROJECT)
    url = f"/v1/projects/{PROJECT}/bundle"
    assert api.c.get(url).status_code == 401
    r = api.c.get(url, headers=auth(api.tok["platform"]))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = api.c.get("/v1/projects/NOPE-1/bundle", headers=auth(api.tok["reviewer"]))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    # Outside the token's scope looks exactly like absent.
    r = api.c.get(url, headers=auth(api.tok["other"]))
    assert r.status_code == 404 and r.json()["error"]["message"] == "no such project"
    r = api.c.get("/v1/projects/%20bad/bundle", headers=auth(api.tok["reviewer"]))
    assert r.status_code == 422 and r.json()["error"]["field"] == "project"
    r = api.c.get(url, params={"files": "maybe"}, headers=auth(api.tok["reviewer"]))
    assert r.status_code == 422


def test_sealed_bids_are_not_exported_before_the_opening(api: Api) -> None:
    # Everything up to the bid deadline: bids submitted, not yet opened.
    api.post_tender(PROJECT, upto=16)
    url = f"/v1/projects/{PROJECT}/bundle"
    r = api.c.get(url, headers=auth(api.tok["reviewer"]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "sealed"
    assert "bid_opening_started" in r.json()["error"]["message"]
    acc = api.c.get(f"/v1/projects/{PROJECT}/access", headers=auth(api.tok["reviewer"]))
    assert not any(a["payload"].get("what") == "bundle" for a in acc.json()["access"])


def test_a_legal_hold_is_in_the_projects_bundle(api: Api, tmp_path: Path) -> None:
    """Holds are records of the project's own chain (issue 10 §2), so the bundle a
    reviewer takes to court shows them, and still verifies."""
    files: dict[str, bytes] = {}
    lawful_tender(PROJECT, files)
    api.post_tender(PROJECT)
    held = sorted(files)[0]
    r = api.c.post(
        f"/v1/objects/{held}/legal-hold",
        json={"hold": True, "reason": "complaint 2026-017"},
        headers=auth(api.tok["reviewer"]),
    )
    assert r.status_code == 200, r.text
    r = api.c.get(f"/v1/projects/{PROJECT}/bundle", headers=auth(api.tok["archivist"]))
    assert r.status_code == 200, r.text
    out = tmp_path / "held.zip"
    out.write_bytes(r.content)
    vkey = api.c.get("/v1/log").json()["verifier_key"]
    rep = verify_bundle(out, TrustPolicy(parse_vkey(vkey)))
    assert rep.ok, render_text(rep)
    with zipfile.ZipFile(out) as zf:
        recs = [json.loads(x) for x in zf.read(fmt.RECORDS).splitlines()]
    [hold] = [x for x in recs if x["type"] == "legal_hold_set"]
    assert hold["payload"] == {"sha256": held, "reason": "complaint 2026-017"}
    assert hold["actor"]["role"] == "reviewer" and hold["trade_type"] == "engineering"


# --- the command line ---------------------------------------------------------------------


def test_cli_export_verify_and_audit_objects(tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = Server(data, None, origin="cli.test/log")
    try:
        platform = jianzheng("token", "create", "--data", str(data), "--role", "platform")
        reviewer = jianzheng("token", "create", "--data", str(data), "--role", "reviewer")
        ptok, rtok = platform.stdout.split()[-1], reviewer.stdout.split()[-1]
        files: dict[str, bytes] = {}
        evs = lawful_tender(PROJECT, files)
        with httpx.Client(base_url=srv.url, headers=auth(ptok), timeout=30) as http:
            for blob in files.values():
                assert http.post("/v1/objects", content=blob).status_code in (200, 201)
            r = http.post("/v1/events:batch", json={"events": evs})
            assert r.status_code == 201, r.text
            vkey = http.get("/v1/log").json()["verifier_key"]
        out = tmp_path / "bundle.zip"
        jianzheng(
            "bundle", "export", "--url", srv.url, "--token", rtok,
            "--project", PROJECT, "--with-files", "-o", str(out),
        )  # fmt: skip
        bad = jianzheng(
            "bundle", "export", "--url", srv.url, "--token", rtok,
            "--project", "NOPE-2", "-o", str(tmp_path / "nope.zip"), check=False,
        )  # fmt: skip
        assert bad.returncode == 2 and "404 not_found" in bad.stderr
        assert not (tmp_path / "nope.zip").exists() and not list(tmp_path.glob(".bundle-*"))
    finally:
        srv.stop()

    trust = tmp_path / "trust.txt"
    trust.write_text(f"# the log, as published by the supervising department\nlog {vkey}\n")
    ok = jianzheng("verify", str(out), "--trust", str(trust))
    assert "Integrity and authenticity: 成立 / HOLDS" in ok.stdout
    assert "[PASS           ] E01" in ok.stdout

    report = tmp_path / "report.json"
    jianzheng("verify", str(out), "--trust", str(trust), "--format", "json", "-o", str(report))
    j = json.loads(report.read_text())
    assert j["ok"] is True and {c["id"] for c in j["checks"]} >= {"inclusion", "E12"}
    page = tmp_path / "report.html"
    jianzheng("verify", str(out), "--trust", str(trust), "--format", "html", "-o", str(page))
    assert "证据包验证报告" in page.read_text()

    # No trust file: says so, and fails unless the reviewer accepts internal checks only.
    loose = jianzheng("verify", str(out), check=False)
    assert loose.returncode == 1 and "only internal consistency was checked" in loose.stderr
    assert jianzheng("verify", str(out), "--no-trust", check=False).returncode == 0
    # A tampered bundle fails with exit 1; unreadable input and bad trust files with 2.
    with zipfile.ZipFile(out) as zf:
        m = {n: zf.read(n) for n in zf.namelist()}
    victim = next(n for n in m if n.startswith(fmt.FILES_PREFIX))
    m[victim] = m[victim][::-1]
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as zf:
        for n, b in m.items():
            zf.writestr(n, b)
    t = jianzheng("verify", str(tampered), "--trust", str(trust), check=False)
    assert t.returncode == 1 and "Integrity and authenticity: 不成立 / FAILS" in t.stdout
    assert jianzheng("verify", str(trust), "--trust", str(trust), check=False).returncode == 2
    (tmp_path / "bad-trust.txt").write_text("log nonsense\n")
    bt = jianzheng("verify", str(out), "--trust", str(tmp_path / "bad-trust.txt"), check=False)
    assert bt.returncode == 2 and "line 1" in bt.stderr

    # The operator's side: audit --objects re-hashes what storage holds.
    clean = jianzheng("audit", "--data", str(data), "--objects")
    assert "audit --objects: OK" in clean.stdout and "objects: 5" in clean.stdout
    digest = next(iter(files))
    stored = [p for p in (data / "objects").rglob("*") if p.is_file() and digest in str(p)]
    assert stored, list((data / "objects").rglob("*"))
    stored[0].chmod(0o644)
    stored[0].write_bytes(b"x" * len(files[digest]))
    dirty = jianzheng("audit", "--data", str(data), "--objects", check=False)
    assert dirty.returncode == 1
    assert f"object {digest}" in dirty.stdout and "replaced or altered" in dirty.stdout
    assert hashlib.sha256(b"x" * len(files[digest])).hexdigest() in dirty.stdout


def test_bundle_from_a_witnessed_log_verifies_against_the_witness_policy(
    tmp_path: Path,
) -> None:
    """One log and three real witness processes, 2 of 3: the bundle carries their
    cosignatures and the log's RFC 3161 token, and verifies against a pinned TSA CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from tests.test_witness_e2e import Cluster
    from tests.witness_procs import wait_until

    c = Cluster(tmp_path)
    try:
        h = auth(c.token)
        # Without the bid files: no bids, so no decryption naming one either.
        evs = [
            e
            for e in lawful_tender(PROJECT)
            if "attachments" not in e and "bid_ref" not in e["payload"]
        ]
        r = c.http.post("/v1/events:batch", json={"events": evs}, headers=h)
        assert r.status_code == 201, r.text
        c.wait_witnessed()
        size = c.log_info()["size"]
        wait_until(
            lambda: c.http.get(f"/v1/checkpoints/{size}/timestamp").status_code == 200,
            30,
            "the head was not timestamped",
        )
        pem = c.http.get("/v1/tsa/certificate").content
        out = tmp_path / "bundle.zip"
        jianzheng(
            "bundle", "export", "--url", c.log.url, "--token", c.reader,
            "--project", PROJECT, "-o", str(out),
        )  # fmt: skip
    finally:
        c.close()
    ca = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    trust = tmp_path / "trust.txt"
    trust.write_text(
        f"log {c.log_key.verifier.vkey}\n"
        + "".join(f"witness {k.vkey}\n" for k in c.witness_keys)
        + f"quorum 2\ntsa-ca {hashlib.sha256(ca).hexdigest()}\n"
    )
    v = jianzheng("verify", str(out), "--trust", str(trust), "--format", "json", check=False)
    j = json.loads(v.stdout)
    checks = {x["id"]: x for x in j["checks"]}
    assert checks["witnesses"]["status"] == "pass", checks["witnesses"]
    assert len(checks["witnesses"]["cosigners"]) >= 2
    assert checks["timestamp"]["status"] == "pass", checks["timestamp"]
    assert checks["log_signature"]["status"] == "pass"
    # Demanding all three witnesses, when the log's bundle may carry fewer, is the
    # reviewer's call: a stricter trust file than the log's policy is honoured.
    strict = trust.read_text().replace("quorum 2", "quorum 3")
    (tmp_path / "strict.txt").write_text(strict)
    s = jianzheng(
        "verify", str(out), "--trust", str(tmp_path / "strict.txt"), "--format", "json", check=False
    )
    sj = {x["id"]: x for x in json.loads(s.stdout)["checks"]}
    n = len(checks["witnesses"]["cosigners"])
    assert sj["witnesses"]["status"] == ("pass" if n == 3 else "fail")
