"""Confidential fields (docs/formats.md, "Confidential fields"): the complainant of a
complaint (阿拉善 实施办法 第五十条) and the evaluation committee's members until the result
is determined (招标投标法 第三十七条).

Each is committed like a sealed bid, but the event stays in the process chain. Only the
readers of its class get the openings (listing, record, bundle, files); everyone else gets
commitments that verify offline and that no guess can be tested against, and the value
shows through no side door: not in a listing, a record, the access log, a bundle, a file
download, an error message or the public log.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.audit import audit
from ledger.catalogue import CatalogueError, load_catalogue, parse_catalogue
from ledger.service import Ledger
from storage.fs import FilesystemStore
from storage.service import EvidenceStore
from tests.procs import jianzheng
from tests.tender import EXPERTS, at
from tests.test_sealed import (
    CANDIDATES,
    PROJECT,
    READERS,
    Api,
    _rebuild,
    guesses_that_verify,
    tender,
)
from verifier import bundle as fmt
from verifier.bundle import verify_bundle
from verifier.canonical import canonicalize
from verifier.note import parse_vkey
from verifier.receipt import check_receipt
from verifier.sealed import open_record
from verifier.trust import TrustPolicy

#: A supplier who complains but did not bid: nothing else in the project names it.
COMPLAINANT = CANDIDATES[-1]
LETTER = "投诉书：对中标候选人公示结果的投诉。投诉人 91330100MA00027019。".encode()
INTEGRITY = ("records", "inclusion", "chain", "payloads", "poster_signatures", "attachments")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """tests/test_sealed.py's: a ledger with filesystem evidence storage, one token a role."""
    lg = Ledger.open(tmp_path / "data", f"sqlite:///{tmp_path / 'l.db'}", "confidential.test/log")
    objects = EvidenceStore(FilesystemStore(tmp_path / "data" / "objects"), lg.store.engine)
    try:
        with TestClient(create_app(lg, rate_limit=0, objects=objects)) as c:
            yield Api(c, lg)
    finally:
        objects.close()
        lg.close()


def complaint(project: str) -> dict[str, Any]:
    return {
        "project": project,
        "trade_type": "engineering",
        "type": "complaint_filed",
        "actor": {"id": COMPLAINANT, "role": "bidder"},
        "occurred_at": at(3, 31, 9),
        "payload": {
            "filed_at": at(3, 31, 9),
            "known_at": at(3, 30, 17),
            "complainant": COMPLAINANT,
        },
        "attachments": [
            {
                "sha256": hashlib.sha256(LETTER).hexdigest(),
                "size": len(LETTER),
                "media_type": "text/plain",
                "name": "complaint.txt",
            }
        ],
        "idempotency_key": f"{project}-complaint",
    }


def with_complaint(api: Api) -> tuple[list[dict[str, Any]], int]:
    """The lawful tender up to the winner's determination, then a complaint (posted alone,
    so its receipt is at hand); the complaint's log index."""
    evs, files = tender(PROJECT)
    cut = next(i for i, e in enumerate(evs) if e["type"] == "winner_determined")
    api.post(evs[:cut], {**files, "letter": LETTER})
    c = complaint(PROJECT)
    r = api.c.post("/v1/events", json=c, headers={"Authorization": f"Bearer {api.tok['platform']}"})
    assert r.status_code == 201, r.text
    receipt = r.json()
    # The poster can check its receipt offline: its salts rebuild the committed record,
    # which stays in the process chain.
    assert receipt["sealed_chain"] is False and set(receipt["sealed_salts"]) == {
        "actor.id",
        "attachments",
        "payload.complainant",
    }
    log = parse_vkey(api.c.get("/v1/log").json()["verifier_key"])
    assert check_receipt(receipt, c, log)
    # Its replay answers the same receipt members.
    again = api.c.post(
        "/v1/events", json=c, headers={"Authorization": f"Bearer {api.tok['platform']}"}
    ).json()
    assert again["sealed_salts"] == receipt["sealed_salts"] and again["sealed_chain"] is False
    return [*evs, c], receipt["index"]


def everything(api: Api, role: str, size: int, letter: str) -> list[Any]:
    """Every answer a reader gets about the project."""
    got: list[Any] = []
    for i in range(size):
        got.append(api.get(role, f"/v1/events/{i}").json())
    for path in (f"/v1/projects/{PROJECT}/events", f"/v1/projects/{PROJECT}/access"):
        r = api.get(role, path, limit=1000)
        got.append(r.json())
    # A file this reader may not touch answers exactly as a file that is not stored.
    r = api.get(role, f"/v1/objects/{letter}")
    got.append([r.status_code, r.text.replace(letter, "<sha256>")])
    got.append(api.get(role, f"/v1/projects/{PROJECT}/bundle", files="true").content.hex())
    got.append(api.c.get("/log/tile/entries/000.p/" + str(size)).content.hex())
    return got


def test_the_complainant_is_seen_only_by_those_handling_the_complaint(api: Api) -> None:
    evs, idx = with_complaint(api)
    letter = hashlib.sha256(LETTER).hexdigest()
    size = api.lg.head().size
    # The reviewer (the supervising department handling it) reads it, and the letter.
    one = api.get("reviewer", f"/v1/events/{idx}").json()
    assert one["opened"]["payload"]["complainant"] == COMPLAINANT
    assert one["opened"]["actor"]["id"] == COMPLAINANT
    assert one["opened"] == open_record(one["record"], one["openings"])
    listing = api.get("reviewer", f"/v1/projects/{PROJECT}/events", limit=1000).json()
    assert str(idx) in listing["openings"]
    assert api.get("reviewer", f"/v1/objects/{letter}").content == LETTER
    # The reviewer holds the letter; the hold is recorded naming the complaint, not the file.
    held = api.c.post(
        f"/v1/objects/{letter}/legal-hold",
        json={"hold": True, "reason": "投诉处理中"},
        headers={"Authorization": f"Bearer {api.tok['reviewer']}"},
    )
    assert held.status_code == 200 and held.json()["legal_hold"] is True, held.text
    hold = api.get("archivist", f"/v1/projects/{PROJECT}/events", limit=1000).json()["records"][-1]
    assert hold["type"] == "legal_hold_set" and hold["payload"] == {
        "index": idx,
        "reason": "投诉处理中",
    }
    # Others may not hold it: it is as absent to them as to a read.
    assert (
        api.c.post(
            f"/v1/objects/{letter}/legal-hold",
            json={"hold": False},
            headers={"Authorization": f"Bearer {api.tok['admin']}"},
        ).status_code
        == 404
    )
    size = api.lg.head().size
    # Everyone else: the event (a complaint was filed, and when), no complainant.
    for role in ("archivist", "admin"):
        rec = api.get(role, f"/v1/events/{idx}").json()
        assert "opened" not in rec and "openings" not in rec
        record = rec["record"]
        assert record["project"] == PROJECT and record["type"] == "complaint_filed"
        assert "complainant" not in record["payload"] and "id" not in record["actor"]
        assert "attachments" not in record and "poster_signature" not in record
        assert set(record["commitments"]) == {"actor.id", "attachments", "payload.complainant"}
        # The committed record is the logged one: its hash is the event hash.
        assert (
            base64.b64encode(hashlib.sha256(canonicalize(record)).digest()).decode()
            == (rec["event_hash"])
        )
        r = api.get(role, f"/v1/objects/{letter}")
        unknown = api.get(role, f"/v1/objects/{'0' * 64}")
        assert (r.status_code, r.text.replace(letter, "0" * 64)) == (404, unknown.text)
        got = everything(api, role, size, letter)
        text = json.dumps(got, ensure_ascii=False)
        assert COMPLAINANT not in text and letter not in text, role
        assert LETTER.hex() not in text
        # No candidate can be tested against the commitments under any salt in sight.
        assert COMPLAINANT not in guesses_that_verify(got, evs), role
    # The poster gets its receipt back; no reader role does (GET /v1/receipts is the poster's).
    assert api.get("platform", f"/v1/receipts/{idx}").status_code == 200


def test_bundles_carry_the_complainant_committed_unless_the_reader_may_see_it(
    api: Api, tmp_path: Path
) -> None:
    with_complaint(api)
    trust = TrustPolicy(parse_vkey(api.c.get("/v1/log").json()["verifier_key"]))
    r = api.get("archivist", f"/v1/projects/{PROJECT}/bundle", files="true")
    assert r.status_code == 200, r.text
    assert COMPLAINANT.encode() not in r.content and LETTER not in r.content
    rep = verify_bundle(r.content, trust)
    for cid in INTEGRITY:
        assert rep.check(cid).status == "pass", (cid, rep.check(cid).message)
    check = rep.check("sealed_openings")
    assert check.status == "pass" and "withheld from this reader" in check.message
    # Committed: the complaint and, before the result, the committee (8 records).
    assert check.extra["withheld"] == 9
    # The reviewer's bundle opens it, and the letter comes along.
    r = api.get("reviewer", f"/v1/projects/{PROJECT}/bundle", files="true")
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        m = {n: zf.read(n) for n in zf.namelist()}
    assert COMPLAINANT.encode() in m[fmt.OPENINGS]
    assert LETTER in m.values()
    rep = verify_bundle(r.content, trust)
    assert rep.check("sealed_openings").extra["withheld"] == 8  # the committee, still
    assert all(rep.check(c).status == "pass" for c in INTEGRITY)
    # A backend that opens another complainant is caught offline.
    lines = m[fmt.OPENINGS].splitlines()
    lied = b"".join(x.replace(COMPLAINANT.encode(), CANDIDATES[0].encode()) + b"\n" for x in lines)
    bad = _rebuild({**m, fmt.OPENINGS: lied}, tmp_path / "lied.zip")
    check = verify_bundle(bad, trust).check("sealed_openings")
    assert check.status == "fail" and "does not match the commitment" in check.message


def test_committee_members_are_sealed_until_the_result_is_determined(
    api: Api, tmp_path: Path
) -> None:
    evs, files = tender(PROJECT)
    cut = next(i for i, e in enumerate(evs) if e["type"] == "winner_determined")
    api.post(evs[:cut], files)
    size = api.lg.head().size
    formed = next(
        r
        for r in api.get("reviewer", f"/v1/projects/{PROJECT}/events", limit=1000).json()["records"]
        if r["type"] == "committee_formed"
    )
    assert "expert_ids" not in formed["payload"] and "payload.expert_ids" in formed["commitments"]
    # Before the result nobody reads the names: not the reviewer, not admin.
    for role in READERS:
        got = everything(api, role, size, "0" * 64)
        text = json.dumps(got, ensure_ascii=False)
        assert not any(x in text for x in EXPERTS), role
        assert "opened" not in api.get(role, f"/v1/events/{formed['index']}").json()
    # A bundle of that moment verifies as commitments; the rule that compares the
    # committee with the report's signers cannot be evaluated, and says so.
    r = api.get("reviewer", f"/v1/projects/{PROJECT}/bundle")
    trust = TrustPolicy(parse_vkey(api.c.get("/v1/log").json()["verifier_key"]))
    rep = verify_bundle(r.content, trust)
    assert all(rep.check(c).status == "pass" for c in INTEGRITY)
    assert rep.check("sealed_openings").extra["withheld"] == 8
    assert rep.check("E09").status == "cannot_evaluate"
    # The result is determined: the reviewer and the archivist read the committee now.
    api.post(evs[cut:])
    for role in ("reviewer", "archivist"):
        one = api.get(role, f"/v1/events/{formed['index']}").json()
        assert one["opened"]["payload"]["expert_ids"] == EXPERTS, role
    assert "opened" not in api.get("admin", f"/v1/events/{formed['index']}").json()
    admin = json.dumps(api.get("admin", f"/v1/projects/{PROJECT}/events", limit=1000).json())
    assert not any(x in admin for x in EXPERTS)
    # The archivist's bundle is whole again and passes every check, from the command line.
    r = api.get("archivist", f"/v1/projects/{PROJECT}/bundle")
    out = tmp_path / "b.zip"
    out.write_bytes(r.content)
    (tmp_path / "trust.txt").write_text(f"log {trust.log.vkey}\n")
    v = jianzheng(
        "verify", str(out), "--trust", str(tmp_path / "trust.txt"), "--format", "json", check=False
    )
    checks = {c["id"]: c for c in json.loads(v.stdout)["checks"]}
    assert v.returncode == 0, v.stdout
    assert checks["E09"]["status"] == "pass"
    assert "0 record(s) keep" in checks["sealed_openings"]["message"]


def test_the_audit_finds_lost_openings_of_a_confidential_record(api: Api) -> None:
    _, idx = with_complaint(api)
    log = api.lg.signer.verifier
    assert audit(api.lg.store, log).ok
    with api.lg.store.engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM sealed_openings WHERE idx = {int(idx)}")
    rep = audit(api.lg.store, log)
    assert not rep.ok
    assert any(f"record {idx}" in p and "openings are missing" in p for p in rep.problems)


def test_the_catalogue_names_each_class_and_refuses_mistakes() -> None:
    cat = load_catalogue()
    complainant = cat.events["complaint_filed"].confidential
    assert complainant is not None and complainant.cls.readers == ("reviewer",)
    assert complainant.cls.opened_by is None and complainant.actor and complainant.attachments
    committee = cat.events["committee_formed"].confidential
    assert committee is not None and committee.cls.opened_by == "winner_determined"
    assert committee.cls.readers == () and "admin" not in committee.cls.readers_after
    for code in ("expert_drawn", "expert_replaced", "score_submitted", "evaluation_report_signed"):
        assert cat.events[code].confidential is not None, code
    raw = json.loads(Path("ledger/catalogue.json").read_text("utf-8"))

    def broken(edit: Any) -> str:
        data = json.loads(json.dumps(raw))
        edit(data)
        with pytest.raises(CatalogueError) as e:
            parse_catalogue(data)
        return str(e.value)

    def ev(data: dict[str, Any], code: str) -> dict[str, Any]:
        return next(e for e in data["events"] if e["code"] == code)

    assert "cannot also have confidential" in broken(
        lambda d: ev(d, "bid_submitted").update(confidential={"class": "committee", "fields": []})
    )
    assert "not in confidential_classes" in broken(
        lambda d: ev(d, "complaint_filed")["confidential"].update({"class": "nobody"})
    )
    assert "not declared in fields" in broken(
        lambda d: ev(d, "complaint_filed")["confidential"].update({"fields": ["name"]})
    )
    assert "opened_by" in broken(
        lambda d: d["confidential_classes"]["committee"].update(opened_by="bid_submitted")
    )


def test_an_event_without_a_confidential_value_is_committed_as_it_is(api: Api) -> None:
    c = complaint(PROJECT)
    del c["payload"]["complainant"]
    c["actor"] = {"id": "PRTC-HZ", "role": "platform"}
    del c["attachments"]
    evs, files = tender(PROJECT)
    api.post(evs, files)
    # complaint_filed commits the actor whatever it is: the poster may file for a bidder.
    r = api.c.post(
        "/v1/events", json=c, headers={"Authorization": f"Bearer {api.tok['platform']}"}
    ).json()
    rec = api.get("archivist", f"/v1/events/{r['index']}").json()["record"]
    assert set(rec["commitments"]) == {"actor.id"}
    assert (
        base64.b64decode(r["event_hash"])
        == hashlib.sha256(
            __import__("verifier.canonical", fromlist=["canonicalize"]).canonicalize(rec)
        ).digest()
    )


def test_a_backend_that_withholds_other_parts_of_an_open_event_is_caught(
    api: Api, tmp_path: Path
) -> None:
    """Commitments verify against the event hash whatever they hide; the verifier holds
    an open event's commitments to the catalogue's confidential parts, so a backend cannot
    withhold the winner and pass it off as the law's secret."""
    evs, files = tender(PROJECT)
    seals = api.lg.sequencer.catalogue
    committee = seals.events["committee_formed"].confidential
    assert committee is not None
    lying = dataclasses.replace(
        seals.events["winner_determined"],
        confidential=dataclasses.replace(committee, fields=("winner",)),
    )
    api.lg.sequencer.catalogue = dataclasses.replace(
        seals, events={**seals.events, "winner_determined": lying}
    )
    try:
        api.post(evs, files)
    finally:
        api.lg.sequencer.catalogue = seals
    r = api.get("admin", f"/v1/projects/{PROJECT}/events", limit=1000).json()
    won = next(x for x in r["records"] if x["type"] == "winner_determined")
    assert "winner" not in won["payload"] and "payload.winner" in won["commitments"]
    bundle = api.get("archivist", f"/v1/projects/{PROJECT}/bundle")
    trust = TrustPolicy(parse_vkey(api.c.get("/v1/log").json()["verifier_key"]))
    rep = verify_bundle(bundle.content, trust)
    assert rep.check("inclusion").status == "pass"  # the log did commit to it
    check = rep.check("payloads")
    assert check.status == "fail" and "commits payload.winner" in check.message
    assert "does not make confidential" in check.message
