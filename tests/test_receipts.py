"""Receipts a poster can use: rebuild the record from what it sent, and check it offline.

The 201 carries what the ledger added (``seq``, ``prev``, ``recorded_at``, ``salt``, the
checkpoint the record embeds, resolved references); ``GET /v1/receipts/{index}`` gives
the poster the newest receipt; ``jianzheng receipt verify`` checks one offline.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from ledger.service import Ledger
from tests.conftest import example_payload, make_event
from tests.procs import Server, jianzheng
from tests.tender import lawful_tender
from verifier.note import ALG_COSIGNATURE_V1, NoteSignature, Signer, parse_note
from verifier.receipt import record_from_event


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


T = "2026-03-25T10:00:00+08:00"


class Env:
    def __init__(self, c: TestClient, lg: Ledger, token: str, other: str) -> None:
        self.c = c
        self.lg = lg
        self.auth = {"Authorization": f"Bearer {token}"}
        self.other = {"Authorization": f"Bearer {other}"}

    def post(self, ev: dict[str, Any]) -> dict[str, Any]:
        r = self.c.post("/v1/events", json=ev, headers=self.auth)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    def record(self, index: int) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.lg.record(index)[0])
        return out


def _env(lg: Ledger) -> Iterator[Env]:
    _, token = create_token(lg.store, "platform")
    _, other = create_token(lg.store, "platform")
    with TestClient(create_app(lg, rate_limit=0)) as c:
        yield Env(c, lg, token, other)


@pytest.fixture
def env(ledger_factory: Any) -> Iterator[Env]:
    """On both databases (the record is built by the server)."""
    yield from _env(ledger_factory())


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[Env]:
    """SQLite only: the offline CLI checks do not depend on the database."""
    lg = Ledger.open(tmp_path / "data", None, "receipts.example/log")
    try:
        yield from _env(lg)
    finally:
        lg.close()


def events() -> list[dict[str, Any]]:
    return [
        make_event("P1", idempotency_key="reg-1"),
        make_event(
            "P1",
            "objection_filed",
            payload=example_payload("objection_filed"),
            idempotency_key="obj-1",
        ),
        make_event(
            "P1",
            "objection_answered",
            payload=example_payload("objection_answered", in_reply_to={"idempotency_key": "obj-1"}),
            late_entry={"reason": "系统故障后补录"},
        ),
    ]


def test_the_receipt_rebuilds_the_committed_record(env: Env) -> None:
    """record_from_event mirrors the ledger's record_json for every shape posted here."""
    for ev in events():
        receipt = env.post(ev)
        for k in ("seq", "prev", "recorded_at", "salt", "record_checkpoint"):
            assert k in receipt
        assert record_from_event(ev, receipt) == env.record(receipt["index"])
    assert receipt["resolved"] == {"in_reply_to": {"index": receipt["index"] - 1, "seq": 1}}
    # A replay answers the same completion fields.
    again = env.c.post("/v1/events", json=events()[0], headers=env.auth)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert record_from_event(events()[0], again.json()) == env.record(again.json()["index"])


def test_get_receipt_is_for_the_poster_only(env: Env) -> None:
    r = env.post(events()[0])
    got = env.c.get(f"/v1/receipts/{r['index']}", headers=env.auth)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["event_hash"] == r["event_hash"] and body["seq"] == r["seq"]
    assert body["salt"] == r["salt"] and "cosigned_checkpoint" in body
    for h, index in ((env.other, r["index"]), (env.auth, r["index"] + 1000)):
        nope = env.c.get(f"/v1/receipts/{index}", headers=h)
        assert nope.status_code == 404 and nope.json()["error"]["code"] == "not_found"
    assert env.c.get(f"/v1/receipts/{r['index']}").status_code == 401


def verify(tmp: Path, receipt: Any, event: Any, key: str, *extra: str) -> Any:
    (tmp / "r.json").write_text(json.dumps(receipt, ensure_ascii=False))
    (tmp / "e.json").write_text(json.dumps(event, ensure_ascii=False))
    return jianzheng(
        "receipt", "verify", str(tmp / "r.json"), "--event", str(tmp / "e.json"),
        "--log-key", key, *extra, check=False,
    )  # fmt: skip


def test_receipt_verify_accepts_a_real_receipt_and_rejects_tampering(
    cli_env: Env, tmp_path: Path
) -> None:
    env = cli_env
    key = env.lg.signer.verifier.vkey
    posted = events()
    receipts = [env.post(ev) for ev in posted]
    event, receipt = posted[2], receipts[2]
    out = verify(tmp_path, receipt, event, key)
    assert out.returncode == 0, out.stderr
    assert "VERIFIED" in out.stderr and "recomputed from the event" in out.stdout

    changed = json.loads(json.dumps(event))
    changed["payload"]["in_reply_to"] = {"idempotency_key": "obj-2"}
    out = verify(tmp_path, receipt, changed, key)
    assert out.returncode == 1 and "NOT VERIFIED" in out.stderr
    assert "not the one posted" in out.stderr

    for member, value in (("seq", receipt["seq"] + 1), ("salt", receipts[0]["salt"])):
        out = verify(tmp_path, {**receipt, member: value}, event, key)
        assert out.returncode == 1 and "event hash" in out.stderr, (member, out.stderr)
    proof = list(receipt["inclusion_proof"])
    if proof:
        proof[0] = receipts[0]["event_hash"]
        out = verify(
            tmp_path, {**receipt, "inclusion_proof": proof, "tlog_proof": None}, event, key
        )
        assert out.returncode == 1, out.stderr

    other = Signer.generate("other.example/log").verifier.vkey
    out = verify(tmp_path, receipt, event, other)
    assert out.returncode == 1 and "NOT VERIFIED" in out.stderr

    out = verify(tmp_path, receipt, event, "not-a-key")
    assert out.returncode == 2 and "--log-key" in out.stderr
    (tmp_path / "bad.json").write_text("{")
    out = jianzheng(
        "receipt", "verify", str(tmp_path / "bad.json"), "--event", str(tmp_path / "bad.json"),
        "--log-key", key, check=False,
    )  # fmt: skip
    assert out.returncode == 2 and "not JSON" in out.stderr


def test_receipt_verify_counts_cosignatures_per_the_trust_file(
    cli_env: Env, tmp_path: Path
) -> None:
    env = cli_env
    log = env.lg.signer.verifier
    event = events()[0]
    receipt = env.post(event)
    witness = Signer.generate("w1.example/witness", ALG_COSIGNATURE_V1)
    trust = tmp_path / "trust.txt"
    trust.write_text(f"log {log.vkey}\nwitness {witness.verifier.vkey}\nquorum 1\n")
    out = verify(tmp_path, receipt, event, log.vkey, "--trust", str(trust))
    assert out.returncode == 1 and "only 0 of the required 1" in out.stderr, out.stderr

    note = parse_note(receipt["checkpoint"])
    sig = witness.sign(note.text.encode(), 1_774_000_000)
    assert struct.unpack(">Q", sig[:8])[0] == 1_774_000_000
    cosigned = note.add(NoteSignature(witness.name, witness.verifier.key_id, sig)).to_text()
    out = verify(
        tmp_path,
        {**receipt, "cosigned_checkpoint": cosigned},
        event,
        log.vkey,
        "--trust",
        str(trust),
    )
    assert out.returncode == 0, out.stderr
    assert "1 witness cosignature(s)" in out.stdout


# --- sealed events: the poster's receipt carries the salts, and only the poster's ---------


def test_a_sealed_bid_and_a_sealed_reply_verify_for_their_poster_only(tmp_path: Path) -> None:
    """On a served ledger: the receipts of a bid and of its (sealed) bid receipt verify with
    ``jianzheng receipt verify``; nobody else gets the salts; after the opening the sealed
    reply holds the resolved index and seq, the decryption (an open record) names the bid
    by index alone, and the bundle verifies."""
    project = "E330100000091"
    data = tmp_path / "data"
    srv = Server(data, None, origin="receipts.test/log")
    try:
        tok = {
            role: jianzheng("token", "create", "--data", str(data), "--role", role).stdout.split()[
                -1
            ]
            for role in ("platform", "reviewer")
        }
        other = jianzheng("token", "create", "--data", str(data), "--role", "platform")
        tok["other"] = other.stdout.split()[-1]
        files: dict[str, bytes] = {}
        evs = lawful_tender(project, files)
        at = next(i for i, e in enumerate(evs) if e["type"] == "bid_submitted")
        bid = evs[at]
        reply = {
            **{k: bid[k] for k in ("project", "trade_type", "occurred_at")},
            "type": "bid_receipt_issued",
            "actor": {"id": "centre", "role": "centre"},
            "payload": {"in_reply_to": {"idempotency_key": bid["idempotency_key"]}},
            "idempotency_key": "receipt-of-bid-1",
        }
        evs.insert(at + 1, reply)
        opening = next(i for i, e in enumerate(evs) if e["type"] == "bid_opening_started")
        http = {
            k: httpx.Client(base_url=srv.url, headers=auth(t), timeout=30) for k, t in tok.items()
        }
        for blob in files.values():
            assert http["platform"].post("/v1/objects", content=blob).status_code in (200, 201)
        r = http["platform"].post("/v1/events:batch", json={"events": evs[:opening]})
        assert r.status_code == 201, r.text
        receipts = r.json()["receipts"]
        key = http["platform"].get("/v1/log").json()["verifier_key"]

        # The poster verifies both sealed receipts offline, from what it posted.
        for i in (at, at + 1):
            assert set(receipts[i]["sealed_salts"]) >= {"actor.id"}
            out = verify(tmp_path, receipts[i], evs[i], key)
            assert out.returncode == 0, out.stderr
        assert set(receipts[at]["sealed_salts"]) >= {"payload.price", "attachments"}
        assert receipts[at + 1]["resolved"] == {
            "in_reply_to": {"index": receipts[at]["index"], "seq": receipts[at]["seq"]}
        }
        # So does the newest receipt, and a replay's.
        idx = receipts[at]["index"]
        newest = http["platform"].get(f"/v1/receipts/{idx}")
        assert (
            newest.status_code == 200
            and newest.json()["sealed_salts"] == (receipts[at]["sealed_salts"])
        )
        assert verify(tmp_path, newest.json(), bid, key).returncode == 0
        again = http["platform"].post("/v1/events", json=evs[at + 1])
        assert again.status_code == 200 and again.json()["replayed"] is True
        assert verify(tmp_path, again.json(), evs[at + 1], key).returncode == 0

        # Nobody else gets a receipt of it, nor a salt anywhere.
        salts = {s for rc in receipts for s in rc.get("sealed_salts", {}).values()}
        assert len(salts) > 10
        seen = [
            http["other"].get(f"/v1/receipts/{idx}"),
            http["reviewer"].get(f"/v1/receipts/{idx}"),
            http["reviewer"].get(f"/v1/projects/{project}/events", params={"limit": 1000}),
        ] + [http["reviewer"].get(f"/v1/events/{rc['index']}") for rc in receipts]
        assert seen[0].status_code == 404 and seen[1].status_code in (403, 404)
        assert not any(s in r.text for r in seen for s in salts)

        r = http["platform"].post("/v1/events:batch", json={"events": evs[opening:]})
        assert r.status_code == 201, r.text
        # After the opening the sealed reader sees the reply's resolved reference...
        got = http["reviewer"].get(f"/v1/events/{receipts[at + 1]['index']}").json()
        assert got["opened"]["payload"]["in_reply_to"] == {
            "idempotency_key": bid["idempotency_key"],
            "index": idx,
            "seq": receipts[at]["seq"],
        }
        # ...and an open record names a sealed one by its index only (no sealed seq).
        records = (
            http["reviewer"]
            .get(f"/v1/projects/{project}/events", params={"limit": 1000})
            .json()["records"]
        )
        decrypted = [r["payload"]["bid_ref"] for r in records if r["type"] == "bid_decrypted"]
        assert decrypted[0] == {"idempotency_key": bid["idempotency_key"], "index": idx}
        out = tmp_path / "bundle.zip"
        jianzheng(
            "bundle", "export", "--url", srv.url, "--token", tok["reviewer"],
            "--project", project, "-o", str(out),
        )  # fmt: skip
        for c in http.values():
            c.close()
    finally:
        srv.stop()
    trust = tmp_path / "trust.txt"
    trust.write_text(f"log {key}\n")
    v = jianzheng("verify", str(out), "--trust", str(trust), "--format", "json", check=False)
    assert v.returncode == 0, v.stdout
    checks = {c["id"]: c["status"] for c in json.loads(v.stdout)["checks"]}
    assert checks["sealed_openings"] == "pass" and checks["records"] == "pass"
