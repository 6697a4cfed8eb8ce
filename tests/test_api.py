"""The HTTP API from a client's point of view: contract paths, errors, auth, tiles."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from ledger.service import Ledger
from tests.conftest import example_payload, make_event
from verifier import merkle
from verifier.checkpoint import TlogProof, open_checkpoint
from verifier.note import parse_vkey
from verifier.receipt import ENTRY_VERSION, Receipt


@pytest.fixture
def api(ledger_factory: Any) -> Iterator[tuple[TestClient, dict[str, str]]]:
    lg: Ledger = ledger_factory()
    tokens = {
        role: create_token(lg.store, role)[1]
        for role in ("platform", "reviewer", "archivist", "admin")
    }
    with TestClient(create_app(lg)) as client:
        yield client, tokens


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_post_event_receipt_verifies_with_public_key_only(api: Any) -> None:
    client, tokens = api
    r = client.post("/v1/events", json=make_event(), headers=auth(tokens["platform"]))
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) >= {"index", "event_hash", "checkpoint", "inclusion_proof", "tlog_proof"}
    log = client.get("/v1/log").json()
    assert {"origin", "verifier_key", "size", "root"} <= set(log)
    vkey = parse_vkey(log["verifier_key"])
    Receipt.from_json(body).verify(vkey)
    proof = TlogProof.parse(body["tlog_proof"])
    proof.verify(merkle.leaf_hash(ENTRY_VERSION + base64.b64decode(body["event_hash"])), vkey)
    # The committed record is served to readers and hashes to the receipt's event hash.
    rec = client.get(f"/v1/events/{body['index']}", headers=auth(tokens["reviewer"])).json()
    Receipt.from_json(body).verify(vkey, rec["record"])
    assert rec["record"]["seq"] == 0 and rec["record"]["checkpoint"]["size"] == 0


def test_batch_and_project_listing_pages(api: Any) -> None:
    client, tokens = api
    evs = [make_event(project="PG1") for _ in range(25)]
    r = client.post("/v1/events:batch", json={"events": evs}, headers=auth(tokens["platform"]))
    assert r.status_code == 201, r.text
    assert [x["index"] for x in r.json()["receipts"]] == list(range(25))
    seen, after = [], -1
    while True:
        page = client.get(
            f"/v1/projects/PG1/events?limit=10&after={after}", headers=auth(tokens["archivist"])
        ).json()
        seen += [x["seq"] for x in page["records"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen == list(range(25))
    r = client.get("/v1/projects/PG1/events?limit=100000", headers=auth(tokens["archivist"]))
    assert r.status_code == 422 and r.json()["error"]["field"] == "limit"


def test_proof_endpoints(api: Any) -> None:
    client, tokens = api
    client.post(
        "/v1/events:batch",
        json={"events": [make_event() for _ in range(10)]},
        headers=auth(tokens["platform"]),
    )
    h = auth(tokens["reviewer"])
    log = client.get("/v1/log").json()
    root = base64.b64decode(log["root"])
    p = client.get("/v1/proofs/inclusion?index=3&tree_size=10", headers=h).json()
    assert p["index"] == 3 and p["tree_size"] == 10
    ev = client.get("/v1/events/3", headers=h).json()
    leaf = merkle.leaf_hash(ENTRY_VERSION + base64.b64decode(ev["event_hash"]))
    merkle.verify_inclusion(3, 10, leaf, [base64.b64decode(x) for x in p["hashes"]], root)
    c = client.get("/v1/proofs/consistency?first=4&second=10", headers=h).json()
    assert c["first"] == 4 and c["second"] == 10 and c["hashes"]
    assert client.get("/v1/proofs/inclusion?index=3&tree_size=1000", headers=h).status_code == 404
    assert client.get("/v1/proofs/inclusion?index=-1&tree_size=5", headers=h).status_code == 422


@pytest.mark.parametrize(
    ("mutate", "status", "field"),
    [
        (lambda e: e.update(occurred_at="2026-03-02T09:00:00"), 422, "occurred_at"),
        (lambda e: e["payload"].update(amount=12.5), 422, None),
        (lambda e: e.update(trade_type="lottery"), 422, "trade_type"),
        (lambda e: e.update(type="no_such_event"), 422, "type"),
        (lambda e: e.update(type="candidates_published", trade_type="land"), 422, "type"),
        (lambda e: e.update(seq=5), 422, "seq"),
        (lambda e: e.update(project="has space"), 422, "project"),
        (lambda e: e["actor"].pop("role"), 422, "actor.role"),
        (
            lambda e: e.update(
                attachments=[{"sha256": "xyz", "size": 1, "media_type": "a/b", "name": "n"}]
            ),
            422,
            "attachments[0].sha256",
        ),
        (lambda e: e.update(payload=[1]), 422, "payload"),
    ],
)
def test_bad_events_are_refused_naming_the_field(
    api: Any, mutate: Any, status: int, field: str | None
) -> None:
    client, tokens = api
    ev = make_event()
    mutate(ev)
    r = client.post("/v1/events", json=ev, headers=auth(tokens["platform"]))
    assert r.status_code == status, r.text
    err = r.json()["error"]
    if field is not None:
        assert err["field"] == field
    assert err["message"]
    assert client.get("/v1/log").json()["size"] == 0  # nothing was appended


def test_malformed_too_large_and_batch_errors(api: Any) -> None:
    client, tokens = api
    h = auth(tokens["platform"])
    r = client.post("/v1/events", content=b"{not json", headers=h)
    assert r.status_code == 400
    r = client.post("/v1/events", content=b'{"a": 1, "a": 2}', headers=h)
    assert r.status_code in (400, 422) and "a" in r.json()["error"]["message"]
    r = client.post("/v1/events", content=b"x" * (1 << 20 + 1), headers=h)
    assert r.status_code == 413
    r = client.post("/v1/events:batch", json={"events": [make_event()] * 1001}, headers=h)
    assert r.status_code == 413
    bad = [make_event(), make_event(occurred_at="yesterday")]
    r = client.post("/v1/events:batch", json={"events": bad}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "events[1].occurred_at"
    assert client.get("/v1/log").json()["size"] == 0


def test_roles_are_enforced(api: Any) -> None:
    client, tokens = api
    assert client.post("/v1/events", json=make_event()).status_code == 401
    r = client.post("/v1/events", json=make_event(), headers=auth("jz_nope"))
    assert r.status_code == 401
    r = client.post("/v1/events", json=make_event(), headers=auth(tokens["reviewer"]))
    assert r.status_code == 403
    r = client.post("/v1/events", json=make_event(), headers=auth(tokens["admin"]))
    assert r.status_code == 201
    assert client.get("/v1/events/0", headers=auth(tokens["platform"])).status_code == 403
    assert client.get("/v1/events/0").status_code == 401
    assert client.get("/v1/events/0", headers=auth(tokens["archivist"])).status_code == 200


def test_idempotent_post_returns_the_original_receipt(api: Any) -> None:
    client, tokens = api
    h = auth(tokens["platform"])
    ev = make_event(idempotency_key="abc")
    a = client.post("/v1/events", json=ev, headers=h)
    b = client.post("/v1/events", json=ev, headers=h)
    assert a.status_code == 201 and b.status_code == 200
    assert a.json()["index"] == b.json()["index"]
    assert a.json()["checkpoint"] == b.json()["checkpoint"]
    c = client.post(
        "/v1/events",
        json=make_event(
            idempotency_key="abc", payload=example_payload("project_registered", estimate=1)
        ),
        headers=h,
    )
    assert c.status_code == 409
    assert client.get("/v1/log").json()["size"] == 1


def test_tiles_and_checkpoint_are_public_and_immutable(api: Any) -> None:
    client, tokens = api
    client.post(
        "/v1/events:batch",
        json={"events": [make_event() for _ in range(300)]},
        headers=auth(tokens["platform"]),
    )
    cp = client.get("/log/checkpoint")
    assert cp.status_code == 200
    log = client.get("/v1/log").json()
    sc = open_checkpoint(cp.text, parse_vkey(log["verifier_key"]))
    assert sc.checkpoint.size == 300
    full = client.get("/log/tile/0/000")
    assert full.status_code == 200 and len(full.content) == 256 * 32
    assert "immutable" in full.headers["cache-control"]
    part = client.get("/log/tile/0/001.p/44")
    assert len(part.content) == 44 * 32
    assert client.get("/log/tile/0/001.p/45").status_code == 404
    assert client.get("/log/tile/0/001").status_code == 404
    assert client.get("/log/tile/1/000.p/1").content == merkle.tree_root(
        [full.content[i : i + 32] for i in range(0, 8192, 32)]
    )
    ents = client.get("/log/tile/entries/000").content
    assert len(ents) == 256 * 35
    assert client.get("/log/tile/0/1").status_code == 404  # non-canonical index


def test_openapi_lists_the_contract_paths(api: Any) -> None:
    client, _ = api
    paths = set(client.get("/openapi.json").json()["paths"])
    assert {
        "/v1/events",
        "/v1/events:batch",
        "/v1/events/{index}",
        "/v1/projects/{project}/events",
        "/v1/proofs/inclusion",
        "/v1/proofs/consistency",
        "/v1/log",
    } <= paths


def test_head_answers_wherever_get_does_with_the_same_headers(api: Any) -> None:
    """Mirrors and CDNs probe with HEAD (RFC 9110 §9.3.2): same status and headers, no body."""
    client, tokens = api
    client.post(
        "/v1/events:batch",
        json={"events": [make_event() for _ in range(300)]},
        headers=auth(tokens["platform"]),
    )
    reader = auth(tokens["reviewer"])
    cases: list[tuple[str, dict[str, str], int]] = [
        ("/log/checkpoint", {}, 200),
        ("/log/tile/0/000", {}, 200),
        ("/log/tile/0/001.p/44", {}, 200),
        ("/log/tile/1/000.p/1", {}, 200),
        ("/log/tile/entries/000", {}, 200),
        ("/log/tile/entries/001.p/44", {}, 200),
        ("/log/tile/0/001", {}, 404),  # not there yet: 404 both ways
        ("/v1/log", {}, 200),
        ("/v1/catalogue", {}, 200),
        ("/v1/proofs/consistency?first=10&second=300", reader, 200),
        ("/v1/proofs/inclusion?index=3&tree_size=300", reader, 200),
        ("/v1/proofs/inclusion?index=3&tree_size=300", {}, 401),  # no token: 401 both ways
        ("/v1/events/7", reader, 200),
        ("/v1/receipts/7", reader, 403),  # a reviewer may not: refused both ways
        ("/v1/receipts/7", auth(tokens["platform"]), 200),
        ("/healthz", {}, 200),
    ]
    for path, headers, want in cases:
        get = client.get(path, headers=headers)
        head = client.head(path, headers=headers)
        assert (head.status_code, get.status_code) == (want, want), (path, get.text)
        assert head.content == b"", path
        for name in ("content-type", "content-length", "cache-control", "etag"):
            assert head.headers.get(name) == get.headers.get(name), (path, name)
    # Paths with no GET still refuse HEAD as they refuse GET.
    assert client.head("/v1/events:batch").status_code == client.get("/v1/events:batch").status_code
