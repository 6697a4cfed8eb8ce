"""Sealed means sealed (issue 10 §2): no guess can be tested, no bid counted, before the
opening; afterwards the sealed readers get the values, and every opening verifies offline.

The attacker is a reader holding a valid token (reviewer, archivist, admin) and a list of
candidate credit codes (统一社会信用代码): everything the API gives them before the
opening is collected and every candidate is tried against every hash and commitment in it.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from ledger.bundle import plan_bundle, write_bundle
from ledger.records import validate_event
from ledger.sealing import seal
from ledger.service import Ledger
from storage.fs import FilesystemStore
from storage.service import EvidenceStore
from tests.procs import jianzheng
from tests.tender import BIDDERS, lawful_tender
from verifier import bundle as fmt
from verifier.bundle import verify_bundle
from verifier.canonical import canonicalize
from verifier.note import parse_vkey
from verifier.report import render_text
from verifier.sealed import OpeningError, commit, open_record
from verifier.trust import TrustPolicy

PROJECT = "E330100000077"
SMALL = "E330100000078"  # the same tender with a single bid
CANDIDATES = [f"91330100MA{n:08d}" for n in range(26990, 27020)]
READERS = ("reviewer", "archivist", "admin")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def opening_at(evs: list[dict[str, Any]]) -> int:
    return next(i for i, e in enumerate(evs) if e["type"] == "bid_opening_started")


class Api:
    def __init__(self, c: TestClient, lg: Ledger) -> None:
        self.c = c
        self.lg = lg
        self.tok = {r: create_token(lg.store, r)[1] for r in ("platform", *READERS)}

    def post(self, evs: list[dict[str, Any]], files: dict[str, bytes] | None = None) -> None:
        for data in (files or {}).values():
            r = self.c.post("/v1/objects", content=data, headers=auth(self.tok["platform"]))
            assert r.status_code in (200, 201), r.text
        r = self.c.post(
            "/v1/events:batch", json={"events": evs}, headers=auth(self.tok["platform"])
        )
        assert r.status_code == 201, r.text

    def get(self, role: str, url: str, **params: Any) -> Any:
        return self.c.get(url, params=params, headers=auth(self.tok[role]))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    lg = Ledger.open(tmp_path / "data", f"sqlite:///{tmp_path / 'l.db'}", "sealed.test/log")
    objects = EvidenceStore(FilesystemStore(tmp_path / "data" / "objects"), lg.store.engine)
    try:
        with TestClient(create_app(lg, rate_limit=0, objects=objects)) as c:
            yield Api(c, lg)
    finally:
        objects.close()
        lg.close()


def tender(project: str, bids: int = 5) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """The demo-like tender of tests/tender.py, with its first ``bids`` bidders only."""
    files: dict[str, bytes] = {}
    evs = lawful_tender(project, files)
    keep = set(BIDDERS[:bids])
    out = []
    dropped: set[str] = set()
    for e in evs:
        if e["type"] in ("bid_deposit_paid", "bid_submitted") and e["actor"]["id"] not in keep:
            dropped.add(e["idempotency_key"])
            continue
        # A decryption names its bid by idempotency key, and the ledger refuses a
        # reference to a bid that was never posted.
        if e["payload"].get("bid_ref", {}).get("idempotency_key") in dropped:
            continue
        if e["type"] == "bid_deadline_reached":
            e["payload"]["bid_count"] = bids
        out.append(e)
    cited = {a["sha256"] for e in out for a in e.get("attachments", [])}
    return out, {k: v for k, v in files.items() if k in cited}


def everything_before_the_opening(api: Api, role: str, project: str, size: int) -> list[Any]:
    """Every answer a reader gets about the project: each log index below ``size`` (the
    log as posted), the listing, the access chain, the bundle, the public log entries."""
    got: list[Any] = []
    for i in range(size):
        r = api.get(role, f"/v1/events/{i}")
        got.append(r.json())
    for path in (f"/v1/projects/{project}/events", f"/v1/projects/{project}/access"):
        r = api.get(role, path, limit=1000)
        got.append(r.json() if r.status_code != 403 else {})
    got.append(api.get(role, f"/v1/projects/{project}/bundle").text)
    got.append(api.c.get("/log/tile/entries/000.p/" + str(size)).content.hex())
    return got


def _strings(x: Any) -> Iterator[str]:
    if isinstance(x, str):
        yield x
    elif isinstance(x, dict):
        for k, v in x.items():
            yield k
            yield from _strings(v)
    elif isinstance(x, list):
        for v in x:
            yield from _strings(v)


def _records(x: Any) -> Iterator[dict[str, Any]]:
    if isinstance(x, dict):
        if "type" in x and "project" in x and "seq" in x:
            yield x
        for v in x.values():
            yield from _records(v)
    elif isinstance(x, list):
        for v in x:
            yield from _records(v)


def guesses_that_verify(got: list[Any], posted: list[dict[str, Any]]) -> set[str]:
    """The candidates a reader can confirm from what they got (the attack of issue 10).

    The attacker is as strong as can be: they know every posted value (``posted``: the
    price, the file, the account) except who the bidder is.
    """
    text = json.dumps(got, ensure_ascii=False)
    known: set[str] = set(re.findall(r"[A-Za-z0-9+/]{43}=", text))  # every base64 hash
    known |= {base64.b64encode(bytes.fromhex(h)).decode() for h in re.findall("[0-9a-f]{64}", text)}
    salts = [base64.b64decode(s) for s in known]
    confirmed: set[str] = set()
    for rec in _records(got):
        ev = next(
            (
                e
                for e in posted
                if (e["type"], e["occurred_at"]) == (rec["type"], rec["occurred_at"])
            ),
            None,
        )
        for cand in CANDIDATES:
            # 1. Fill in what the record withholds, the candidate as the bidder; hash; compare.
            if ev is not None and isinstance(rec.get("sealed"), list):
                guess = {k: v for k, v in rec.items() if k != "sealed"}
                guess["actor"] = {**ev["actor"], "id": cand}
                guess["payload"] = {**ev["payload"], "bidder": cand}
                guess["attachments"] = ev.get("attachments", [])
                digest = base64.b64encode(hashlib.sha256(canonicalize(guess)).digest()).decode()
                if digest in known:
                    confirmed.add(cand)
            # 2. Test the candidate against each commitment under any salt in sight.
            for path, c in (rec.get("commitments") or {}).items():
                for salt in salts:
                    if base64.b64encode(commit(path, salt, cand)).decode() == c:
                        confirmed.add(cand)
    # 3. The plain value anywhere in an answer.
    strings = set(_strings(got))
    confirmed |= {c for c in CANDIDATES if any(c in s for s in strings)}
    return confirmed


def test_guessing_the_bidders_before_the_opening_fails(api: Api) -> None:
    evs, files = tender(PROJECT)
    api.post(evs[: opening_at(evs)], files)
    size = api.lg.head().size
    for role in READERS:
        got = everything_before_the_opening(api, role, PROJECT, size)
        assert guesses_that_verify(got, evs) == set(), role
        # Nothing identifies a bid file either: its hash is nowhere in the answers.
        text = json.dumps(got)
        assert not any(h in text for h in files), role


def test_the_number_of_bids_cannot_be_told_before_the_opening(api: Api) -> None:
    """Two tenders, five bids and one: every reader gets the same from both, seq for seq."""
    big, big_files = tender(PROJECT, 5)
    small, small_files = tender(SMALL, 1)
    api.post(big[: opening_at(big)], big_files)
    api.post(small[: opening_at(small)], small_files)
    size = api.lg.head().size  # the reads below add access records after these

    def shape(role: str, project: str) -> Any:
        listing = api.get(role, f"/v1/projects/{project}/events").json()
        recs = listing["records"]
        # The process chain is whole: seq 0..n-1, each prev the hash of the record before.
        prev = base64.b64encode(bytes(32)).decode()
        for n, r in enumerate(recs):
            assert r["seq"] == n and r["prev"] == prev
            prev = base64.b64encode(hashlib.sha256(canonicalize(r)).digest()).decode()
        readable = [
            api.get(role, f"/v1/events/{i}").json()["record"]["project"]
            for i in range(size)
            if api.get(role, f"/v1/events/{i}").status_code == 200
        ]
        bundle = api.get(role, f"/v1/projects/{project}/bundle")
        return (
            [(r["type"], r["seq"], r["actor"], r["payload"]) for r in recs],
            listing["sealed_withheld"],
            readable.count(project),
            bundle.status_code,
            bundle.json()["error"]["message"].replace(project, "P"),
        )

    for role in READERS:
        assert shape(role, PROJECT) == shape(role, SMALL), role
    # No sealed type, not even the count at the deadline or the receipts, shows.
    listing = api.get("reviewer", f"/v1/projects/{PROJECT}/events").json()
    types = {r["type"] for r in listing["records"]}
    assert types.isdisjoint({"bid_submitted", "bid_deposit_paid", "bid_deadline_reached"})
    assert listing["sealed_withheld"] is True


def test_after_the_opening_sealed_readers_get_the_values_and_the_openings_verify(
    api: Api, tmp_path: Path
) -> None:
    evs, files = tender(PROJECT)
    api.post(evs, files)
    listing = api.get("reviewer", f"/v1/projects/{PROJECT}/events", limit=1000).json()
    recs = listing["records"]
    # Both chains, merged in log order; the sealed records with their openings.
    assert [r["index"] for r in recs] == sorted(r["index"] for r in recs)
    assert len(recs) == len(evs) and listing["next_after_index"] is None
    sealed = [r for r in recs if r["project"] == PROJECT + "~sealed"]
    assert [r["seq"] for r in sealed] == list(range(11))
    bidders = []
    for r in sealed:
        opened = open_record(r, listing["openings"][str(r["index"])])
        if opened["type"] == "bid_submitted":
            bidders.append(opened["actor"]["id"])
            assert opened["payload"]["ciphertext_hash"] == opened["attachments"][0]["sha256"]
    assert bidders == BIDDERS
    # Paging by log index gives the same, a page at a time.
    seen: list[int] = []
    after: int | None = -1
    while after is not None:
        page = api.get(
            "archivist", f"/v1/projects/{PROJECT}/events", limit=7, after_index=after
        ).json()
        seen += [r["index"] for r in page["records"]]
        after = page["next_after_index"]
    assert seen == [r["index"] for r in recs]
    # One record: committed form (its hash is the event hash), openings and the opened view.
    bid = next(r for r in sealed if r["type"] == "bid_submitted")
    one = api.get("reviewer", f"/v1/events/{bid['index']}").json()
    assert (
        base64.b64encode(hashlib.sha256(canonicalize(one["record"])).digest()).decode()
        == (one["event_hash"])
    )
    assert one["opened"]["payload"]["bidder"] == BIDDERS[0]
    assert one["opened"] == open_record(one["record"], one["openings"])
    # Admin is no sealed reader: the sealed chain stays hidden from it.
    assert api.get("admin", f"/v1/events/{bid['index']}").status_code == 404
    admin = api.get("admin", f"/v1/projects/{PROJECT}/events", limit=1000).json()
    assert len(admin["records"]) == len(evs) - 11 and admin["sealed_withheld"] is True

    # The bundle verifies, openings included, with the command-line verifier.
    r = api.get("reviewer", f"/v1/projects/{PROJECT}/bundle", files="true")
    assert r.status_code == 200, r.text
    out = tmp_path / "b.zip"
    out.write_bytes(r.content)
    trust = tmp_path / "trust.txt"
    trust.write_text(f"log {api.c.get('/v1/log').json()['verifier_key']}\n")
    v = jianzheng("verify", str(out), "--trust", str(trust), "--format", "json", check=False)
    checks = {c["id"]: c for c in json.loads(v.stdout)["checks"]}
    assert v.returncode == 0, v.stdout
    assert checks["sealed_openings"]["status"] == "pass"
    assert checks["poster_keys"]["status"] == "pass"
    assert "5 file(s)" in checks["attachments"]["message"]


def _rebuild(m: dict[str, bytes], out: Path) -> Path:
    man = json.loads(m[fmt.MANIFEST])
    man["members"] = {n: fmt.manifest_member(d) for n, d in m.items() if n != fmt.MANIFEST}
    m = {**m, fmt.MANIFEST: canonicalize(man)}
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in m.items():
            zf.writestr(name, data)
    return out


def test_a_backend_that_lies_about_an_opened_value_is_caught(api: Api, tmp_path: Path) -> None:
    evs, files = tender(PROJECT)
    api.post(evs, files)
    r = api.get("reviewer", f"/v1/projects/{PROJECT}/bundle")
    assert r.status_code == 200, r.text
    trust = TrustPolicy(parse_vkey(api.c.get("/v1/log").json()["verifier_key"]))
    with zipfile.ZipFile(__import__("io").BytesIO(r.content)) as zf:
        m = {n: zf.read(n) for n in zf.namelist()}
    assert verify_bundle(r.content, trust).ok

    # The server swaps the winning bidder's price for another: same salt, other value.
    lines = m[fmt.OPENINGS].splitlines()
    for n, line in enumerate(lines):
        doc = json.loads(line)
        if "payload.price" in doc["openings"]:
            doc["openings"]["payload.price"]["value"] -= 100_000_000
            lines[n] = canonicalize(doc)
            break
    lied = _rebuild({**m, fmt.OPENINGS: b"".join(x + b"\n" for x in lines)}, tmp_path / "a.zip")
    rep = verify_bundle(lied, trust)
    assert not rep.ok
    check = rep.check("sealed_openings")
    assert check.status == "fail" and "payload.price" in check.message
    assert "does not match the commitment" in check.message
    # ...and on the command line.
    (tmp_path / "trust.txt").write_text(f"log {trust.log.vkey}\n")
    v = jianzheng("verify", str(lied), "--trust", str(tmp_path / "trust.txt"), check=False)
    assert v.returncode == 1 and "sealed_openings" in v.stdout

    # Leaving an opening out, or opening a record twice, fails too.
    honest = m[fmt.OPENINGS].splitlines()
    short = _rebuild({**m, fmt.OPENINGS: b"".join(x + b"\n" for x in honest[1:])}, tmp_path / "b")
    assert "not opened" in verify_bundle(short, trust).check("sealed_openings").message
    # Without openings at all, the records still verify as commitments (a warning).
    bare = _rebuild({k: v for k, v in m.items() if k != fmt.OPENINGS}, tmp_path / "c.zip")
    rep = verify_bundle(bare, trust)
    assert rep.check("sealed_openings").status == "warn"
    assert all(rep.check(c).status == "pass" for c in ("records", "inclusion", "chain"))


def test_commitments_bind_path_salt_and_value() -> None:
    salt = bytes(range(32))
    c = commit("payload.bidder", salt, BIDDERS[0])
    assert c != commit("payload.bidder", salt, BIDDERS[1])
    assert c != commit("actor.id", salt, BIDDERS[0])
    assert c != commit("payload.bidder", bytes(32), BIDDERS[0])
    # Fixed vector: SHA-256("jianzheng/sealed-commitment/v1\n" || JCS(path) || salt || JCS(v)).
    want = hashlib.sha256(
        b"jianzheng/sealed-commitment/v1\n"
        + b'"payload.bidder"'
        + salt
        + json.dumps(BIDDERS[0]).encode()
    ).digest()
    assert c == want
    record = {
        "project": "P~sealed",
        "actor": {"role": "bidder"},
        "payload": {},
        "commitments": {"payload.bidder": base64.b64encode(c).decode()},
    }
    good = {"payload.bidder": {"salt": base64.b64encode(salt).decode(), "value": BIDDERS[0]}}
    assert open_record(record, good)["payload"] == {"bidder": BIDDERS[0]}
    with pytest.raises(OpeningError, match="does not match"):
        open_record(record, {"payload.bidder": {**good["payload.bidder"], "value": BIDDERS[1]}})
    with pytest.raises(OpeningError, match="shows the sealed value"):
        open_record({**record, "payload": {"bidder": BIDDERS[0]}}, good)


def test_records_of_the_old_form_still_verify_and_leak_no_salt(api: Api, tmp_path: Path) -> None:
    """A bid committed before per-part commitments (values in place, in the process
    chain): the bundle still verifies, and before the opening its salt is withheld."""
    evs, _ = tender(PROJECT, 3)
    evs = [{k: v for k, v in e.items() if k != "attachments"} for e in evs]
    lg = api.lg
    subs = [validate_event(e, lg.catalogue) for e in evs]
    at = opening_at(evs)
    # The old path: a sequencer whose catalogue seals nothing, as before the scheme.
    seals = lg.sequencer.catalogue
    lg.sequencer.catalogue = dataclasses.replace(
        seals,
        events={
            c: dataclasses.replace(e, sealed_fields=(), sealed_attachments=False, confidential=None)
            for c, e in seals.events.items()
        },
    )
    lg.sequencer.submit(subs[:at], "old-poster").result(timeout=30)
    bid = next(i for i, e in enumerate(evs) if e["type"] == "bid_submitted")
    rec = api.get("reviewer", f"/v1/events/{bid}").json()["record"]
    assert rec["salt"] == "[sealed]" and rec["actor"]["id"] == "[sealed]"
    after = api.get("reviewer", f"/v1/events/{bid + 1}").json()
    assert guesses_that_verify([rec, after], evs) == set()
    lg.sequencer.submit(subs[at:], "old-poster").result(timeout=30)
    lg.sequencer.catalogue = seals
    plan = plan_bundle(lg, PROJECT)
    write_bundle(plan, tmp_path / "old.zip")
    rep = verify_bundle(tmp_path / "old.zip", TrustPolicy(lg.signer.verifier))
    assert rep.ok, render_text(rep)
    assert "sealed_openings" not in {c.id for c in rep.checks}


def test_seal_commits_every_part_that_could_identify_a_bid(api: Api) -> None:
    evs, _ = tender(PROJECT, 1)
    bid = next(e for e in evs if e["type"] == "bid_submitted")
    # Platform data the catalogue does not declare is as secret as the bid.
    bid["payload"]["extensions"] = {"cn.gov.hz.ggzy/ciphertext_sha256": "ab" * 32}
    ev = seal(validate_event(bid, api.lg.catalogue), api.lg.catalogue)
    assert ev.sealing is not None
    assert set(ev.sealing.commitments) == {
        "actor.id",
        "attachments",
        "payload.bidder",
        "payload.price",
        "payload.bid_file",
        "payload.ciphertext_hash",
        "payload.extensions",
    }
    assert json.loads(ev.sealing.payload) == {"submit_at": bid["payload"]["submit_at"]}


def test_the_openings_table_is_not_dropped_while_it_holds_openings(api: Api) -> None:
    evs, files = tender(PROJECT, 1)
    api.post(evs[: opening_at(evs)], files)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path("ledger/migrations").resolve()))
    with pytest.raises(RuntimeError, match="only copy"):
        with api.lg.store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0007")
