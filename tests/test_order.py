"""Process order, late entries and reply references, through the HTTP API.

An append-only ledger cannot correct what it accepted, so an event out of process order is
refused when posted (409 ``out_of_order``, naming the rule and the earlier record), and
nothing of the request is committed. A platform recording a fact late says so
(``late_entry``); the event is committed and the verifier flags it. A reply names what it
answers by idempotency key or log index; the record keeps the resolved index and seq.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from ledger.service import Ledger
from tests.conftest import example_payload, make_event, notice_event
from tests.tender import lawful_tender
from verifier.poster import sign_event, verify_record_signature
from verifier.rules.engine import Timeline, evaluate

T = "2026-03-25T10:00:00+08:00"


class Api:
    def __init__(self, c: TestClient, lg: Ledger, token: str) -> None:
        self.c = c
        self.lg = lg
        self.auth = {"Authorization": f"Bearer {token}"}

    def post(self, ev: dict[str, Any]) -> Any:
        return self.c.post("/v1/events", json=ev, headers=self.auth)

    def batch(self, evs: list[dict[str, Any]]) -> Any:
        return self.c.post("/v1/events:batch", json={"events": evs}, headers=self.auth)

    def ok(self, ev: dict[str, Any]) -> dict[str, Any]:
        r = self.post(ev)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    def records(self, project: str) -> list[dict[str, Any]]:
        return [json.loads(r) for _, _, r in self.lg.project_records(project, -1, 1000)]


@pytest.fixture
def api(ledger_factory: Any) -> Iterator[Api]:
    lg: Ledger = ledger_factory()
    _, token = create_token(lg.store, "platform")
    with TestClient(create_app(lg, rate_limit=0)) as c:
        yield Api(c, lg, token)


def ev(
    project: str, kind: str, payload: dict[str, Any] | None = None, **over: Any
) -> dict[str, Any]:
    """An event of ``kind``: the catalogue's example payload with ``payload`` over it."""
    body = example_payload(kind, **(payload or {}))
    return make_event(project, kind, payload=body, occurred_at=T, **over)


def opening(project: str) -> dict[str, Any]:
    return ev(project, "bid_opening_started", {"opening_at": T, "place": "开标室3"})


def refused(r: Any, rule: str, field: str = "type") -> dict[str, Any]:
    assert r.status_code == 409, r.text
    err: dict[str, Any] = r.json()["error"]
    assert err["code"] == "out_of_order" and err["field"] == field, err
    assert err["rule"]["id"] == rule and err["rule"]["sources"], err
    assert rule in err["message"] and "late_entry" in err["message"]
    assert err["message_zh"]
    return err


def test_an_opening_as_a_projects_first_event_is_refused(api: Api) -> None:
    size = api.lg.head().size
    err = refused(api.post(opening("P1")), "O01")
    assert "conflicts_with" not in err["rule"]  # nothing earlier: a notice is missing
    assert "tender_notice_published" in err["message"]
    assert api.lg.head().size == size and api.records("P1") == []


def test_a_notice_or_a_bid_after_the_opening_is_refused_naming_the_opening(api: Api) -> None:
    api.ok(notice_event("P1"))
    at = api.ok(opening("P1"))["index"]
    size = api.lg.head().size
    for late in (notice_event("P1"), ev("P1", "bid_submitted", {"bidder": "B1"})):
        err = refused(api.post(late), "O03")
        assert err["rule"]["conflicts_with"] == {
            "type": "bid_opening_started",
            "seq": 1,
            "index": at,
        }
        assert f"seq 1 (index {at})" in err["message"]
    assert api.lg.head().size == size


def test_a_contract_without_an_award_notice_is_refused(api: Api) -> None:
    api.ok(make_event("P1"))
    refused(api.post(ev("P1", "contract_signed", {"contract_at": T})), "O04")
    # Land has its own rule: the deal confirmation comes first (拍卖法 第五十二条).
    land = ev("L1", "contract_signed", {"contract_at": T}, trade_type="land")
    refused(api.post(land), "O05")
    assert api.records("P1")[-1]["type"] == "project_registered"
    assert api.records("L1") == []


def test_earlier_events_of_a_batch_count_and_a_violation_commits_nothing(api: Api) -> None:
    size = api.lg.head().size
    r = api.batch([notice_event("P1"), opening("P1"), notice_event("P1", idempotency_key="n2")])
    err = refused(r, "O03", "events[2].type")
    assert err["rule"]["conflicts_with"]["seq"] == 1
    assert api.lg.head().size == size and api.records("P1") == []
    # In order, the same batch is fine: the notice of events[0] admits the opening.
    r = api.batch([notice_event("P1"), opening("P1")])
    assert r.status_code == 201, r.text
    assert [x["seq"] for x in r.json()["receipts"]] == [0, 1]


def test_a_suspension_admits_only_what_the_law_allows_until_it_is_resumed(api: Api) -> None:
    api.ok(notice_event("P1"))
    s = api.ok(ev("P1", "activity_suspended", {"reason": "异议"}, idempotency_key="susp-1"))
    err = refused(api.post(ev("P1", "expert_drawn", {"expert_ids": ["E1"]})), "O07")
    assert err["rule"]["conflicts_with"] == {
        "type": "activity_suspended",
        "seq": 1,
        "index": s["index"],
    }
    api.ok(ev("P1", "objection_filed", {"filed_at": T}))
    resumed = ev("P1", "activity_resumed", {"suspension_ref": {"idempotency_key": "susp-1"}})
    api.ok(resumed)
    rec = api.records("P1")[-1]
    assert rec["payload"]["suspension_ref"] == {
        "idempotency_key": "susp-1",
        "index": s["index"],
        "seq": 1,
    }
    api.ok(ev("P1", "expert_drawn", {"expert_ids": ["E1"]}))


def test_after_a_termination_only_disputes_refunds_and_archiving(api: Api) -> None:
    api.ok(notice_event("P1"))
    t = api.ok(ev("P1", "activity_terminated", {"reason": "投标人不足3个"}))
    err = refused(api.post(opening("P1")), "O06")
    assert err["rule"]["conflicts_with"]["index"] == t["index"]
    api.ok(ev("P1", "deposit_refunded", {"bidder": "B1", "amount": 1}))
    api.ok(ev("P1", "archive_package_created", {"retention_until": "2056-05-08"}))


def test_a_late_entry_is_committed_shown_in_the_record_and_flagged(api: Api) -> None:
    api.ok(make_event("P1"))
    late = ev(
        "P1",
        "contract_signed",
        {"contract_at": T},
        late_entry={"reason": "平台故障，2026-04-20 补录"},
    )
    r = api.ok(late)
    rec = api.records("P1")[-1]
    assert rec["late_entry"] == {"reason": "平台故障，2026-04-20 补录"}
    assert rec["index"] == r["index"]
    [x10] = [res for res in evaluate(api.records("P1")) if res.rule.id == "X10"]
    assert x10.status == "warn" and x10.events == [1]
    assert "recorded late" in x10.message_en and "补录" in x10.message_zh
    bad = ev("P1", "contract_signed", {}, late_entry={"reason": ""})
    r2 = api.post(bad)
    assert r2.status_code == 422 and r2.json()["error"]["field"] == "late_entry.reason"


def test_the_lawful_tender_has_no_late_entry_warning() -> None:
    [x10] = [r for r in evaluate(Timeline(lawful_tender("P1"))) if r.rule.id == "X10"]
    assert x10.status == "not_applicable" and not x10.applicable


def test_replies_name_what_they_answer_by_key_or_index(api: Api) -> None:
    p = "G1"

    def g(kind: str, payload: dict[str, Any], **over: Any) -> dict[str, Any]:
        return ev(p, kind, payload, trade_type="procurement", **over)

    api.ok(g("project_registered", {}))
    first = api.ok(g("challenge_filed", {"filed_at": T}, idempotency_key="c-1"))
    second = api.ok(g("challenge_filed", {"filed_at": T}))
    api.ok(g("challenge_answered", {"in_reply_to": {"idempotency_key": "c-1"}}))
    api.ok(g("challenge_answered", {"in_reply_to": {"index": second["index"]}}))
    answers = [r["payload"]["in_reply_to"] for r in api.records(p)[-2:]]
    assert answers == [
        {"idempotency_key": "c-1", "index": first["index"], "seq": 1},
        {"index": second["index"], "seq": 2},
    ]


def test_a_reference_in_the_same_batch_resolves(api: Api) -> None:
    r = api.batch(
        [
            ev("P1", "objection_filed", {"filed_at": T}, idempotency_key="o-1"),
            ev("P1", "objection_answered", {"in_reply_to": {"idempotency_key": "o-1"}}),
        ]
    )
    assert r.status_code == 201, r.text
    ref = api.records("P1")[1]["payload"]["in_reply_to"]
    assert ref == {"idempotency_key": "o-1", "index": r.json()["receipts"][0]["index"], "seq": 0}


def test_a_reference_to_nothing_answerable_is_refused_and_nothing_committed(api: Api) -> None:
    api.ok(make_event("P1", idempotency_key="reg"))
    other = api.ok(ev("P2", "objection_filed", {"filed_at": T}, idempotency_key="o-2"))
    size = api.lg.head().size

    def answer(ref: object) -> Any:
        return api.post(ev("P1", "objection_answered", {"in_reply_to": ref}))

    for ref in (
        {"idempotency_key": "nope"},  # no such event
        {"idempotency_key": "reg"},  # not an objection
        {"idempotency_key": "o-2"},  # another project's
        {"index": other["index"]},  # the same, by index
        {"index": 10**6},  # not in the log
    ):
        r = answer(ref)
        assert r.status_code == 422, (ref, r.text)
        err = r.json()["error"]
        assert err["code"] == "invalid_reference" and err["field"] == "payload.in_reply_to"
        assert "objection_filed" in err["message"]
    for ref in ({}, {"index": -1}, {"index": 1, "idempotency_key": "x"}, "5", {"seq": 0}):
        r = answer(ref)
        assert r.status_code == 422, (ref, r.text)
        assert r.json()["error"]["field"].startswith("payload.in_reply_to"), r.text
    # In a batch: the whole batch is refused, naming the event.
    r = api.batch([make_event("P1"), ev("P1", "objection_answered", {"in_reply_to": {"index": 0}})])
    assert r.status_code == 422 and r.json()["error"]["field"] == "events[1].payload.in_reply_to"
    assert api.lg.head().size == size


def test_a_signed_reply_verifies_with_its_references_resolved(api: Api) -> None:
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    r = api.c.put(
        "/v1/poster-key",
        json={"public_key": base64.b64encode(pub).decode(), "required": False},
        headers=api.auth,
    )
    assert r.status_code in (200, 201), r.text
    api.ok(ev("P1", "objection_filed", {"filed_at": T}, idempotency_key="o-1"))
    reply = ev("P1", "objection_answered", {"in_reply_to": {"idempotency_key": "o-1"}})
    reply["signature"] = sign_event(reply, key)
    api.ok(reply)
    rec = api.records("P1")[-1]
    assert rec["payload"]["in_reply_to"]["seq"] == 0
    assert verify_record_signature(rec)


def test_two_workers_cannot_race_a_bid_past_the_opening(tmp_path: Any) -> None:
    """``serve --workers 2``: bids stream in on fresh connections (both workers) while the
    opening is posted. The check runs under the writer lock against the committed tail,
    so no bid lands after the opening, whichever worker took it."""
    import threading
    import time

    import httpx

    from tests.procs import jianzheng
    from tests.test_workers import serve_workers

    data = tmp_path / "data"
    tok = jianzheng("token", "create", "--data", str(data), "--role", "platform").stdout.split()[-1]
    srv, _ = serve_workers(data, None)
    auth = {"Authorization": f"Bearer {tok}"}
    statuses: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def bids(n: int) -> None:
        fresh = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=srv.url, headers=auth, timeout=20, limits=fresh) as http:
            for i in range(30):
                if stop.is_set() and i > 5:
                    break
                b = ev("R1", "bid_submitted", {"bidder": f"B{n}-{i}"})
                s = http.post("/v1/events", json=b).status_code
                with lock:
                    statuses.append(s)

    try:
        httpx.post(srv.url + "/v1/events", json=notice_event("R1"), headers=auth).raise_for_status()
        threads = [threading.Thread(target=bids, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if len(statuses) >= 12:
                    break
            time.sleep(0.01)
        r = httpx.post(srv.url + "/v1/events", json=opening("R1"), headers=auth, timeout=20)
        assert r.status_code == 201, r.text
        stop.set()
        for t in threads:
            t.join(60)
        assert set(statuses) <= {201, 409}, statuses
        # Afterwards every worker refuses a bid: each adopted the other's opening.
        fresh = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=srv.url, headers=auth, timeout=20, limits=fresh) as http:
            for i in range(12):
                late = http.post("/v1/events", json=ev("R1", "bid_submitted", {"bidder": f"L{i}"}))
                assert late.status_code == 409 and late.json()["error"]["rule"]["id"] == "O03"
        rev = jianzheng("token", "create", "--data", str(data), "--role", "reviewer")
        reviewer = {"Authorization": f"Bearer {rev.stdout.split()[-1]}"}
        page = httpx.get(
            srv.url + "/v1/projects/R1/events?limit=1000", headers=reviewer, timeout=20
        ).json()
        types = [rec["type"] for rec in page["records"]]
        opened = types.index("bid_opening_started")
        assert "bid_submitted" not in types[opened:], types
        assert types.count("bid_submitted") == statuses.count(201)
    finally:
        srv.stop()


def test_the_dry_run_answers_what_a_post_would_and_commits_nothing(api: Api) -> None:
    def dry(body: Any) -> Any:
        return api.c.post("/v1/events:validate", json=body, headers=api.auth)

    api.ok(notice_event("P1"))
    api.ok(opening("P1"))
    size = api.lg.head().size
    for body in (
        notice_event("P1"),  # 409 out of order
        {"events": [make_event("P1"), notice_event("P1")]},  # the same inside a batch
        make_event("P1", payload=[]),  # 422
        {"events": [ev("P1", "objection_answered", {"in_reply_to": {"index": 10**6}})]},
        {"events": []},
    ):
        single = "events" not in body
        got = dry(body)
        want = (
            api.post(body)
            if single
            else api.c.post("/v1/events:batch", json=body, headers=api.auth)
        )
        assert got.status_code == want.status_code and got.status_code in (409, 422), got.text
        assert got.json() == want.json()
    assert api.lg.head().size == size
    # Accepted: ok, and the verifier's warnings on the project with these events.
    short = notice_event(
        "P2",
        payload={
            "issue_start": "2026-03-09T10:00:00+08:00",
            "bid_deadline": "2026-03-25T10:00:00+08:00",
            "place": "开标室3",
        },
    )
    got = dry({"events": [make_event("P2"), short, opening("P2")]})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["ok"] is True
    e01 = [w for w in body["warnings"] if w["rule"] == "E01"]
    assert e01 and e01[0]["status"] == "fail" and e01[0]["message"].startswith("E01: ")
    assert e01[0]["project"] == "P2" and e01[0]["message_zh"].startswith("E01：")
    assert api.lg.head().size == size and api.records("P2") == []
    # A single event: the project so far plus this one; a lawful step, no E01.
    one = dry(notice_event("P3"))
    assert one.status_code == 200 and not [w for w in one.json()["warnings"] if w["rule"] == "E01"]
    assert api.lg.head().size == size


def test_an_explicit_null_for_an_optional_member_is_refused(api: Api) -> None:
    """The schema says string (or object): null is invalid input, refused like any other
    (schemathesis' negative pass over /v1/events:validate found it)."""
    for member in ("late_entry", "signature", "idempotency_key"):
        for path in ("/v1/events", "/v1/events:validate"):
            r = api.c.post(path, json={**make_event("P1"), member: None}, headers=api.auth)
            assert r.status_code == 422 and r.json()["error"]["field"] == member, r.text
