"""Expert draws anyone can recompute (issue 17): the pure derivation in verifier/draw.py."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.service import Ledger
from storage.fs import FilesystemStore
from storage.service import EvidenceStore
from tests.tender import EXPERTS, lawful_tender
from tests.test_sealed import PROJECT, Api, tender
from verifier.bundle import DRAW_HEADS, MANIFEST, verify_bundle
from verifier.draw import (
    Candidate,
    DrawError,
    DrawTerms,
    check_result,
    derive,
    parse_pool,
    seed_commitment,
    terms_from_record,
)
from verifier.note import parse_vkey
from verifier.rules import RuleResult, evaluate
from verifier.trust import TrustPolicy

POOL = parse_pool([f"EXP-{i:04d}|U{i % 4}|{'B1,B2' if i == 3 else ''}" for i in range(20)])
P_SEED, D_SEED = b"\x01" * 32, b"\x02" * 32
ROOT = hashlib.sha256(b"root at 64").digest()


def terms(**kw: object) -> DrawTerms:
    base = DrawTerms(
        draw_id="D-1",
        count=5,
        checkpoint_size=64,
        excluded_units=("U0",),
        excluded_relations=("B1",),
        seed_commitments={
            "platform": seed_commitment("D-1", "platform", P_SEED),
            "department": seed_commitment("D-1", "department", D_SEED),
        },
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def order(t: DrawTerms | None = None, p: bytes = P_SEED, d: bytes = D_SEED) -> list[str]:
    return derive(POOL, t or terms(), {"platform": p, "department": d}, 64, ROOT)


def test_derivation_is_deterministic_and_respects_recusals() -> None:
    o = order()
    assert o == order()
    assert len(o) == len(set(o)) == 20 - 5 - 1  # unit U0 (5 experts) and EXP-0003 recused
    assert "EXP-0003" not in o and all(int(x[-4:]) % 4 for x in o)
    assert check_result(o, 5, o[:5], [(o[0], o[5]), (o[5], o[6])]) == []


def test_record_round_trip() -> None:
    t = terms()
    rec = {
        "draw_id": "D-1",
        "count": 5,
        "checkpoint_size": 64,
        "excluded_units": ["U0"],
        "excluded_relations": ["B1"],
        **{f"{p}_seed_commitment": c.hex() for p, c in t.seed_commitments.items()},
    }
    assert terms_from_record(rec) == t
    with pytest.raises(DrawError, match="malformed"):
        terms_from_record({"draw_id": "D-1"})


def test_tampered_pool_changes_hash_and_order() -> None:
    tampered = list(POOL)
    tampered[1] = Candidate("EXP-0001", "U9")  # the platform moves an expert's unit
    other = derive(tampered, terms(), {"platform": P_SEED, "department": D_SEED}, 64, ROOT)
    assert other != order()
    with pytest.raises(DrawError, match="sorted"):
        parse_pool(["B|u|", "A|u|"])
    with pytest.raises(DrawError, match="must be"):
        parse_pool(["A|u"])


def test_tampered_seed_is_rejected() -> None:
    with pytest.raises(DrawError, match="platform's seed does not open"):
        order(p=b"\x03" * 32)
    with pytest.raises(DrawError, match="department's seed does not open"):
        order(d=b"\x03" * 32)
    # copying the other party's commitment does not help: commitments bind the party
    t = terms(
        seed_commitments={
            "platform": seed_commitment("D-1", "department", D_SEED),
            "department": seed_commitment("D-1", "department", D_SEED),
        }
    )
    with pytest.raises(DrawError, match="platform's seed"):
        order(t, p=D_SEED)


def test_tampered_result_and_replacements_are_reported() -> None:
    o = order()
    bad = [*o[:4], o[7]]
    assert check_result(o, 5, bad, [])
    # a replacement that skips the next candidate in the derived order
    assert check_result(o, 5, o[:5], [(o[0], o[6])])
    assert check_result(o, 5, o[:5], [("EXP-9999", o[5])])


def test_checkpoint_is_fixed_in_advance_and_only_size_and_root_count() -> None:
    with pytest.raises(DrawError, match="size 64, not 65"):
        derive(POOL, terms(), {"platform": P_SEED, "department": D_SEED}, 65, ROOT)
    other_root = hashlib.sha256(b"other").digest()
    assert (
        derive(POOL, terms(), {"platform": P_SEED, "department": D_SEED}, 64, other_root) != order()
    )


def test_withheld_reveal_gives_a_veto_not_a_choice() -> None:
    # Without the department's reveal there is no result at all.
    with pytest.raises(DrawError, match="department has not revealed"):
        derive(POOL, terms(), {"platform": P_SEED}, 64, ROOT)
    # Having committed, the department cannot pick another seed to steer the outcome:
    # every other seed fails its commitment, so its only options are this result or a
    # failed draw, re-run with fresh commitments it cannot predict either.
    for i in range(50):
        with pytest.raises(DrawError):
            order(d=i.to_bytes(32, "big"))


def test_a_withholder_gains_one_veto_not_a_choice() -> None:
    """A department that wants EXP-0001 on the committee and withholds whenever the first
    draw leaves it out (it sees the platform's seed first, so it knows) gets the re-run's
    result instead: fresh seeds it committed blind and a later root. Over 400 such
    projects (deterministic seeds) its success rate stays near 1 - (1 - p)^2, the chance
    of two independent draws, far from a choice; it cannot make any other outcome."""
    want, trials = "EXP-0001", 400

    def seed(*parts: object) -> bytes:
        return hashlib.sha256(repr(parts).encode()).digest()

    def outcome(t: int, run: int) -> list[str]:
        draw_id = f"D-{t}-{run}"
        seeds = {"platform": seed("p", t, run), "department": seed("d", t, run)}
        tm = terms(
            draw_id=draw_id,
            seed_commitments={p: seed_commitment(draw_id, p, s) for p, s in seeds.items()},
        )
        return derive(POOL, tm, seeds, 64, seed("root", t, run))[:5]

    plain = vetoed = 0
    for t in range(trials):
        first = outcome(t, 1)
        plain += want in first
        final = first if want in first else outcome(t, 2)  # withheld: the re-run's result
        assert final in (first, outcome(t, 2))
        vetoed += want in final
    p = 5 / 14  # 5 drawn of the 14 eligible
    assert abs(plain / trials - p) < 0.08
    assert abs(vetoed / trials - (1 - (1 - p) ** 2)) < 0.08
    assert vetoed / trials < 0.7


# --- the rules engine recomputes the draw from the records (E08, check draw_derived) -------

RECORD_POOL = [f"EXP-{2000 + i}|U{i % 3}|{'B9' if i == 4 else ''}" for i in range(20)]


D2_SEEDS = {"platform": b"\x05" * 32, "department": b"\x06" * 32}


def _commit_fields(
    draw_id: str, seeds: dict[str, bytes], size: int, deadline: str
) -> dict[str, Any]:
    return {
        "draw_id": draw_id,
        "pool": RECORD_POOL,
        "count": len(EXPERTS),
        "excluded_units": ["U2"],
        "excluded_relations": ["B9"],
        **{f"{p}_seed_commitment": seed_commitment(draw_id, p, s).hex() for p, s in seeds.items()},
        "checkpoint_size": size,
        "reveal_deadline": deadline,
    }


def _shift(when: str, minutes: int) -> str:
    return (datetime.fromisoformat(when) + timedelta(minutes=minutes)).isoformat()


def _drawn_tender(
    tamper: str | None = None,
    tender: list[dict[str, Any]] | None = None,
    root: bytes = ROOT,
    base: int = 0,
    deadline: str = "2026-03-26T09:00:00+08:00",
) -> tuple[list[dict[str, Any]], list[str]]:
    """The demo's lawful tender (or ``tender``) with its experts drawn under a recorded
    commitment; ``tamper`` breaks one part of the draw. ``base`` is the log index of the
    tender's first event (the commitment fixes ``checkpoint_size`` just past its own index,
    so the reveals right after it follow the tree head); ``root`` the log's root there.

    ``withheld*`` tampers put a failed first draw D-0 before D-1: the department withholds
    its reveal, the draw fails after its deadline and D-1 re-runs it (lawful as such)."""
    evs: list[dict[str, Any]] = json.loads(
        json.dumps(lawful_tender("T1") if tender is None else tender)
    )
    i = next(n for n, e in enumerate(evs) if e["type"] == "expert_drawn")
    template = evs[i]
    when = template["occurred_at"]
    added: list[dict[str, Any]] = []

    def event(type_: str, payload: dict[str, Any], at: str = when) -> dict[str, Any]:
        e = dict(template, type=type_, payload=payload, occurred_at=at)
        added.append(e)
        return e

    if tamper is not None and tamper.startswith("withheld"):
        # D-0: committed, the platform reveals, the department withholds; failed after the
        # deadline. Its tree head is fixed just past its commitment too.
        d0 = {"platform": b"\x03" * 32, "department": b"\x04" * 32}
        at0 = _shift(when, -180)
        deadline0 = _shift(when, -120)
        event("draw_committed", _commit_fields("D-0", d0, base + i + 1, deadline0), at0)
        event(
            "draw_seed_revealed",
            {"draw_id": "D-0", "party": "platform", "seed": d0["platform"].hex()},
            at0,
        )
        if tamper == "withheld_both_revealed":
            event(
                "draw_seed_revealed",
                {"draw_id": "D-0", "party": "department", "seed": d0["department"].hex()},
                at0,
            )
        failed = {"draw_id": "D-0", "reason": "reveal_withheld", "missing_party": "department"}
        if tamper == "withheld_names_revealer":
            failed["missing_party"] = "platform"
        early = tamper == "withheld_before_deadline"
        event("draw_failed", failed, _shift(when, -150 if early else -60))
    size = base + i + len(added) + 1
    if tamper == "early_reveal":
        size += 2  # the reveals at the next two indexes then precede the tree head
    if tamper == "late_reveal":
        deadline = _shift(when, -1)
    seeds = (
        dict(D2_SEEDS)
        if tamper and tamper.startswith("withheld")
        else {"platform": P_SEED, "department": D_SEED}
    )
    did = "D-0" if tamper == "withheld_same_id" else "D-1"
    fields = _commit_fields(did, seeds, size, deadline)
    t = terms_from_record(fields)
    used_root = hashlib.sha256(b"not the log's root").digest() if tamper == "root" else root
    derived = derive(parse_pool(RECORD_POOL), t, seeds, size, used_root)
    if tamper == "withheld_reused_commitment":
        fields["department_seed_commitment"] = seed_commitment(
            "D-0", "department", b"\x04" * 32
        ).hex()
    if tamper == "late_checkpoint":
        fields["checkpoint_size"] = 3  # a size the log had passed at the commitment
    if tamper == "pool":
        fields["pool"] = [*RECORD_POOL[:1], "EXP-2001|U9|", *RECORD_POOL[2:]]
    event("draw_committed", fields)
    revealed = dict(seeds)
    if tamper == "seed":
        revealed["department"] = b"\x09" * 32
    if tamper == "missing_reveal":
        del revealed["department"]  # the result is recorded all the same
    for p, sd in revealed.items():
        event("draw_seed_revealed", {"draw_id": did, "party": p, "seed": sd.hex()})
    if tamper == "failed_in_time":
        event(
            "draw_failed",
            {"draw_id": did, "reason": "reveal_withheld", "missing_party": "department"},
        )
    text = json.dumps(evs)
    for old, new in zip(EXPERTS, derived, strict=False):
        text = text.replace(old, new)
    evs = json.loads(text)
    drawn = evs[i]
    drawn["payload"].update(draw_id=did, checkpoint_root=used_root.hex())
    if tamper == "result":
        drawn["payload"]["expert_ids"] = [*derived[:4], derived[6]]
    if tamper == "undrawn":
        del drawn["payload"]["draw_id"]
    for n, e in enumerate(added):
        e["idempotency_key"] = f"{template.get('idempotency_key', 'draw')}-draw-{n}"
    evs[i:i] = added
    return evs, derived


def _records(evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        dict(
            {k: v for k, v in e.items() if k != "idempotency_key"},
            seq=i,
            index=i,
            recorded_at=e["occurred_at"],
        )
        for i, e in enumerate(evs)
    ]


def _e08(evs: list[dict[str, Any]]) -> RuleResult:
    return next(r for r in evaluate(_records(evs)) if r.rule.id == "E08")


def test_a_withheld_reveal_fails_the_draw_and_a_fresh_one_is_lawful() -> None:
    """The department withholds its D-0 reveal: D-0 fails after its deadline naming it, and
    D-1, with a fresh draw_id, fresh commitments and a later tree head, draws the experts."""
    evs, derived = _drawn_tender("withheld")
    r = _e08(evs)
    assert r.status == "pass", [f.en for f in r.findings]
    failed = next(e for e in evs if e["type"] == "draw_failed")
    assert failed["payload"]["missing_party"] == "department"
    drawn = next(e for e in evs if e["type"] == "expert_drawn")
    assert drawn["payload"]["draw_id"] == "D-1" and drawn["payload"]["expert_ids"] == derived[:5]


def test_rules_recompute_a_lawful_draw() -> None:
    evs, derived = _drawn_tender()
    r = _e08(evs)
    assert r.status == "pass", [f.en for f in r.findings]
    assert "EXP-2004" not in derived[:5]  # related to B9: recused


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("result", "differs from its derivation"),
        ("seed", "department's seed does not open its commitment"),
        ("undrawn", "names no draw committed"),
        ("late_checkpoint", "is not beyond the commitment's log index"),
        ("missing_reveal", "the department revealed no valid seed before the result"),
        ("early_reveal", "before the tree head at checkpoint_size"),
        ("late_reveal", "after the reveal deadline"),
        ("failed_in_time", "while the seeds could still be revealed"),
        ("withheld_before_deadline", "before the reveal deadline"),
        ("withheld_both_revealed", "both parties revealed valid seeds in time"),
        ("withheld_names_revealer", "names platform as the party that did not reveal"),
        ("withheld_reused_commitment", "reuses the department's seed commitment of draw D-0"),
        ("withheld_same_id", "reuses draw_id D-0"),
    ],
)
def test_rules_detect_a_tampered_draw(tamper: str, message: str) -> None:
    r = _e08(_drawn_tender(tamper)[0])
    assert r.status == "fail"
    assert any(message in f.en for f in r.findings), [f.en for f in r.findings]


def test_rules_detect_a_tampered_pool() -> None:
    # The pool changed after the commitment: the derivation binds the pool's hash, so the
    # experts recorded no longer come out of it.
    r = _e08(_drawn_tender("pool")[0])
    assert r.status == "fail"
    assert any("differs from its derivation" in f.en for f in r.findings)


def _replace(evs: list[dict[str, Any]], old: str, new: str) -> list[dict[str, Any]]:
    formed = next(n for n, e in enumerate(evs) if e["type"] == "committee_formed")
    rep = dict(
        evs[formed],
        type="expert_replaced",
        payload={"expert_id": old, "replacement_id": new, "draw_id": "D-1"},
    )
    text = json.dumps(evs[formed + 1 :]).replace(old, new)
    return [*evs[: formed + 1], rep, *json.loads(text)]


def test_replacements_follow_the_derived_order() -> None:
    evs, derived = _drawn_tender()
    r = _e08(_replace(evs, derived[1], derived[5]))
    assert r.status == "pass", [f.en for f in r.findings]
    r = _e08(_replace(evs, derived[1], derived[6]))  # skips the next in the order
    assert r.status == "fail"
    assert any("does not follow the derived order" in f.en for f in r.findings)


# --- through the HTTP API, and offline from the bundle ------------------------------------


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """A ledger on SQLite with filesystem evidence storage (tests/test_confidential.py's)."""
    lg = Ledger.open(tmp_path / "data", f"sqlite:///{tmp_path / 'l.db'}", "draw.test/log")
    objects = EvidenceStore(FilesystemStore(tmp_path / "data" / "objects"), lg.store.engine)
    try:
        with TestClient(create_app(lg, rate_limit=0, objects=objects)) as c:
            yield Api(c, lg)
    finally:
        objects.close()
        lg.close()


LATER = "2099-01-01T09:00:00+08:00"


def _post_drawn(api: Api, tamper: str | None) -> None:
    """The tender with its draw posted through POST /v1/events:batch in two steps: up to
    the reveals, then (the root at checkpoint_size now known) the result and the rest."""
    evs0, files = tender(PROJECT)
    # The ledger records the reveals at the clock's time: a deadline it has not passed.
    evs, _ = _drawn_tender(tamper, evs0, deadline=LATER)
    cut = next(n for n, e in enumerate(evs) if e["type"] == "expert_drawn")
    api.post(evs[:cut], files)
    size = next(e for e in evs if e["type"] == "draw_committed")["payload"]["checkpoint_size"]
    assert api.lg.head().size == cut >= size  # the log holds the tender from index 0
    full, _ = _drawn_tender(tamper, evs0, root=api.lg.reader.root(size), deadline=LATER)
    assert full[:cut] == evs[:cut]
    api.post(full[cut:])


@pytest.mark.parametrize("tamper", [None, "result", "seed", "root"])
def test_bundle_recomputes_the_draw_offline(api: Api, tamper: str | None) -> None:
    """Posted through POST /v1/events, the draw is recomputed by the offline verifier from
    the reviewer's bundle (the pool is opened to the reviewer once the winner is known):
    a lawful draw passes E08, a tampered result or seed fails compliance, never integrity;
    a result derived from a root that is not the log's at checkpoint_size fails integrity
    (the bundle pins that root by a consistency proof to its checkpoint)."""
    _post_drawn(api, tamper)
    trust = TrustPolicy(parse_vkey(api.c.get("/v1/log").json()["verifier_key"]))
    r = api.get("reviewer", f"/v1/projects/{PROJECT}/bundle", files="true")
    assert r.status_code == 200, r.text
    rep = verify_bundle(r.content, trust)
    heads = next(c for c in rep.checks if c.id == "draw_heads")
    e08 = next(x for x in rep.rules if x.rule.id == "E08")
    if tamper == "root":
        assert rep.integrity.status == "fails" and heads.status == "fail"
        assert "is not the log's tree head" in heads.message, heads.message
        assert e08.status == "pass"  # consistent in itself: only the log can tell
        return
    assert rep.integrity.status == "holds", [c.message for c in rep.checks if c.status == "fail"]
    assert heads.status == "pass", heads.message
    if tamper is None:
        assert e08.status == "pass", [f.en for f in e08.findings]
    else:
        assert e08.status == "fail" and rep.compliance.status == "fails"
        assert any("draw" in f.en for f in e08.findings)


def test_a_bundle_stripped_of_its_draw_heads_fails_integrity(api: Api) -> None:
    """Without draw-heads.jsonl (taken out of the zip and the manifest, which nobody signs)
    the draw's root cannot be pinned to the log: integrity fails, naming the missing head."""
    _post_drawn(api, None)
    trust = TrustPolicy(parse_vkey(api.c.get("/v1/log").json()["verifier_key"]))
    r = api.get("reviewer", f"/v1/projects/{PROJECT}/bundle")
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    assert DRAW_HEADS in members
    del members[DRAW_HEADS]
    manifest = json.loads(members[MANIFEST])
    del manifest["members"][DRAW_HEADS]
    members[MANIFEST] = json.dumps(manifest).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    rep = verify_bundle(buf.getvalue(), trust)
    heads = next(c for c in rep.checks if c.id == "draw_heads")
    assert heads.status == "fail" and "carries no tree head" in heads.message, heads.message
    assert rep.integrity.status == "fails"
    assert all(c.status != "fail" for c in rep.checks if c.id == "manifest")


def test_post_draws_fixes_the_checkpoint_size(api: Api) -> None:
    """POST /v1/projects/{p}/draws commits a draw; the ledger, not the poster, fixes
    checkpoint_size beyond the log's head; a pool out of order is refused naming the field."""
    evs, files = tender(PROJECT)
    evs, _ = _drawn_tender(None, evs)
    commit = next(e for e in evs if e["type"] == "draw_committed")
    cut = evs.index(commit)
    api.post(evs[:cut], files)
    auth = {"Authorization": f"Bearer {api.tok['platform']}"}
    url = f"/v1/projects/{PROJECT}/draws"
    body = json.loads(json.dumps(commit))
    del body["project"], body["type"]
    r = api.c.post(url, json=body, headers=auth)
    assert r.status_code == 422 and r.json()["error"]["field"] == "payload.checkpoint_size"
    del body["payload"]["checkpoint_size"]
    bad = json.loads(json.dumps(body))
    bad["payload"]["pool"] = list(reversed(RECORD_POOL))
    r = api.c.post(url, json=bad, headers=auth)
    assert r.status_code == 422 and r.json()["error"]["field"] == "payload.pool"
    head = api.c.get("/v1/log").json()
    r = api.c.post(url, json=body, headers=auth)
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["checkpoint_size"] > receipt["index"]
    assert receipt["checkpoint_size"] >= head.get("size", head.get("tree_size", 0))
    r = api.c.post(f"/v1/projects/{PROJECT}/draws", json=body)
    assert r.status_code == 401
