"""Access control from the client's side: scopes (OWASP API1), auth (API2), limits (API4),
function-level authorization (API5), token lifecycle."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token, make_scope
from ledger.service import Ledger
from tests.conftest import example_payload, make_event, notice_event


@pytest.fixture
def setup(ledger_factory: Any) -> Iterator[tuple[TestClient, Ledger, dict[str, str]]]:
    lg: Ledger = ledger_factory()
    tok = {role: create_token(lg.store, role)[1] for role in ("platform", "admin")}
    tok["rev_a"] = create_token(lg.store, "reviewer", scope=make_scope(["PA"]))[1]
    tok["rev_land"] = create_token(lg.store, "reviewer", scope=make_scope([], ["land"]))[1]
    tok["rev_all"] = create_token(lg.store, "reviewer")[1]
    with TestClient(create_app(lg, rate_limit=0)) as c:
        h = {"Authorization": f"Bearer {tok['platform']}"}
        c.post("/v1/events", json=make_event(project="PA"), headers=h).raise_for_status()
        c.post("/v1/events", json=make_event(project="PB"), headers=h).raise_for_status()
        land = make_event(project="PL", trade_type="land", type_="project_registered")
        c.post("/v1/events", json=land, headers=h).raise_for_status()
        yield c, lg, tok


def h(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


def test_bola_scoped_reviewer_gets_404_for_other_projects(setup: Any) -> None:
    c, _, tok = setup
    assert c.get("/v1/events/0", headers=h(tok["rev_a"])).status_code == 200
    other = c.get("/v1/events/1", headers=h(tok["rev_a"]))
    absent = c.get("/v1/events/99", headers=h(tok["rev_a"]))
    assert other.status_code == absent.status_code == 404
    # Out of scope reads exactly like absent: same body shape, no project named.
    assert "PB" not in other.text
    assert other.json()["error"]["code"] == absent.json()["error"]["code"]
    assert c.get("/v1/projects/PB/events", headers=h(tok["rev_a"])).status_code == 404
    assert c.get("/v1/projects/PA/events", headers=h(tok["rev_a"])).status_code == 200
    # A trade-type scope (a supervising department's sector).
    assert c.get("/v1/events/2", headers=h(tok["rev_land"])).status_code == 200
    assert c.get("/v1/events/0", headers=h(tok["rev_land"])).status_code == 404
    assert c.get("/v1/projects/NEW/events", headers=h(tok["rev_land"])).status_code == 404
    assert c.get("/v1/projects/PA/events", headers=h(tok["rev_all"])).status_code == 200


def test_scoped_poster_cannot_post_elsewhere(setup: Any) -> None:
    c, lg, _ = setup
    t = create_token(lg.store, "platform", scope=make_scope(["PA"]))[1]
    assert c.post("/v1/events", json=make_event(project="PA"), headers=h(t)).status_code == 201
    r = c.post("/v1/events", json=make_event(project="PB"), headers=h(t))
    assert r.status_code == 403 and r.json()["error"]["field"] == "project"


def test_function_level_authorization(setup: Any) -> None:
    c, _, tok = setup
    for t in (tok["platform"], tok["rev_all"]):
        assert c.get("/v1/tokens", headers=h(t)).status_code == 403
        assert c.post("/v1/tokens", json={"role": "admin"}, headers=h(t)).status_code == 403
    assert c.get("/v1/tokens", headers=h(tok["admin"])).status_code == 200


def test_token_lifecycle_and_no_secret_in_listing(setup: Any) -> None:
    c, _, tok = setup
    ad = h(tok["admin"])
    r = c.post("/v1/tokens", json={"role": "reviewer", "projects": ["PA"]}, headers=ad)
    assert r.status_code == 201
    new = r.json()
    assert c.get("/v1/events/0", headers=h(new["token"])).status_code == 200
    listing = c.get("/v1/tokens", headers=ad)
    assert new["token"] not in listing.text and "token_hash" not in listing.text
    assert any(
        t["id"] == new["id"] and t["scope"]["projects"] == ["PA"] for t in listing.json()["tokens"]
    )
    assert c.delete(f"/v1/tokens/{new['id']}", headers=ad).status_code == 200
    assert c.get("/v1/events/0", headers=h(new["token"])).status_code == 401
    assert c.delete("/v1/tokens/nope", headers=ad).status_code == 404
    bad = c.post("/v1/tokens", json={"role": "reviewer", "trade_types": ["lottery"]}, headers=ad)
    assert bad.status_code == 422


def test_expired_token_is_refused(setup: Any) -> None:
    c, _, tok = setup
    r = c.post(
        "/v1/tokens",
        json={"role": "reviewer", "expires_at": "2020-01-01T00:00:00Z"},
        headers=h(tok["admin"]),
    )
    assert c.get("/v1/events/0", headers=h(r.json()["token"])).status_code == 401


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Basic abc", "Bearer jz_short", "Bearer " + "jz_" + "A" * 43, "bearer  jz_x y"],
)
def test_broken_authentication_is_401(setup: Any, header: str) -> None:
    c, _, _ = setup
    r = c.get("/v1/events/0", headers={"Authorization": header} if header else {})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_rate_limit_answers_429_with_retry_after(ledger_factory: Any) -> None:
    lg: Ledger = ledger_factory()
    t = create_token(lg.store, "reviewer")[1]
    with TestClient(create_app(lg, rate_limit=5)) as c:
        codes = [c.get("/v1/projects/X/events", headers=h(t)).status_code for _ in range(30)]
    # Answered (X has no records: 404) until the token's rate is spent.
    assert 429 in codes and codes[0] == 404
    with TestClient(create_app(lg, rate_limit=5)) as c:
        for _ in range(30):
            r = c.get("/v1/projects/X/events", headers=h(t))
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
                break


def test_sealed_bids_are_hidden_until_opening_then_only_from_allowed_roles(setup: Any) -> None:
    c, lg, tok = setup
    post = {"Authorization": f"Bearer {tok['platform']}"}
    bid = make_event(
        project="PA",
        type_="bid_submitted",
        payload=example_payload(
            "bid_submitted",
            bidder="91330100MA00027001",
            price=4_650_100_000,
            extensions={"cn.gov.hz.ggzy/round": 1},
        ),
        actor={"id": "91330100MA00027001", "role": "bidder"},
    )
    c.post("/v1/events", json=notice_event("PA"), headers=post).raise_for_status()
    idx = c.post("/v1/events", json=bid, headers=post).json()["index"]
    archivist = create_token(lg.store, "archivist")[1]
    for t in (tok["rev_all"], tok["admin"], archivist):
        # Before the opening a sealed record is not there for anyone: 404 like no record.
        r = c.get(f"/v1/events/{idx}", headers=h(t))
        absent = c.get("/v1/events/999", headers=h(t)).json()
        assert r.status_code == 404
        assert r.json()["error"]["message"] == absent["error"]["message"].replace("999", str(idx))
        listing = c.get("/v1/projects/PA/events", headers=h(t)).json()
        assert all(r["type"] != "bid_submitted" for r in listing["records"])
        assert listing["sealed_withheld"] is True
    opening = make_event(
        project="PA",
        type_="bid_opening_started",
        payload={"opening_at": "2026-03-25T10:00:00+08:00", "place": "开标室3"},
    )
    c.post("/v1/events", json=opening, headers=post).raise_for_status()
    got = c.get(f"/v1/events/{idx}", headers=h(tok["rev_all"])).json()
    rec, opened = got["record"], got["opened"]
    # Sealed fields, and fields the catalogue does not declare, are only committed to.
    assert set(rec["payload"]) <= {"submit_at"} and "id" not in rec["actor"]
    assert opened["payload"]["price"] == 4_650_100_000
    assert opened["payload"]["extensions"] == {"cn.gov.hz.ggzy/round": 1}
    assert "commitments" not in opened
    assert set(got["openings"]) == set(rec["commitments"])
    # Admin is not among the catalogue's sealed readers.
    assert c.get(f"/v1/events/{idx}", headers=h(tok["admin"])).status_code == 404


def test_every_read_of_evidence_is_recorded_and_listed(setup: Any) -> None:
    c, lg, tok = setup
    reader = h(tok["rev_all"])
    before = lg.head().size
    c.get("/v1/events/0", headers=reader).raise_for_status()
    c.get("/v1/projects/PA/events", headers=reader).raise_for_status()
    assert lg.head().size == before + 2  # both reads were committed before being served
    access = c.get("/v1/projects/PA/access", headers=reader).json()["access"]
    assert [a["payload"]["what"] for a in access] == ["record", "records"]
    assert all(
        a["type"] == "evidence_accessed" and a["actor"]["role"] == "reviewer" for a in access
    )
    ids = {
        t["id"]
        for t in c.get("/v1/tokens", headers=h(tok["admin"])).json()["tokens"]
        if t["role"] == "reviewer" and t["scope"]["projects"] is None
    }
    assert {a["actor"]["id"] for a in access} <= ids
    # The process chain is untouched by reads; nobody may post access records.
    assert [
        r["type"] for r in c.get("/v1/projects/PA/events", headers=reader).json()["records"]
    ] == ["project_registered"]
    fake = make_event(project="PA", type_="evidence_accessed")
    r = c.post("/v1/events", json=fake, headers=h(tok["platform"]))
    assert r.status_code == 422 and r.json()["error"]["field"] == "type"
    fake = make_event(project="PA~access")
    assert c.post("/v1/events", json=fake, headers=h(tok["platform"])).status_code == 422
    # Out-of-scope readers cannot see the access list either.
    assert c.get("/v1/projects/PB/access", headers=h(tok["rev_a"])).status_code == 404


def test_poster_signatures_are_checked_committed_and_verifiable(setup: Any) -> None:
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from verifier.poster import sign_event, verify_record_signature

    c, lg, tok = setup
    t = create_token(lg.store, "platform")[1]
    key = Ed25519PrivateKey.generate()
    pub = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    assert c.put("/v1/poster-key", json={"public_key": pub}, headers=h(t)).status_code == 200
    # The platform cannot swap its key or turn signing off; only an admin can.
    assert (
        c.put(
            "/v1/poster-key", json={"public_key": pub, "required": False}, headers=h(t)
        ).status_code
        == 409
    )
    unsigned = make_event(project="PS")
    r = c.post("/v1/events", json=unsigned, headers=h(t))
    assert r.status_code == 422 and r.json()["error"]["field"] == "signature"
    ev = make_event(project="PS", idempotency_key="s-1")
    ev["signature"] = sign_event(ev, key)
    r = c.post("/v1/events", json=ev, headers=h(t))
    assert r.status_code == 201, r.text
    rec = c.get(f"/v1/events/{r.json()['index']}", headers=h(tok["rev_all"])).json()["record"]
    assert rec["poster_signature"]["public_key"] == pub
    assert verify_record_signature(rec)
    # A signature over other content is refused, naming the field.
    forged = make_event(project="PS", payload={"method": "open_tender", "estimate": 1})
    forged["signature"] = ev["signature"]
    r = c.post("/v1/events:batch", json={"events": [forged]}, headers=h(t))
    assert r.status_code == 422 and r.json()["error"]["field"] == "events[0].signature"
    # Tampering with the committed record is caught offline.
    rec["payload"]["estimate"] += 1
    from verifier.poster import PosterSignatureError

    with pytest.raises(PosterSignatureError):
        verify_record_signature(rec)
