"""Expert draws anyone can recompute (issue 17): the pure derivation in verifier/draw.py."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

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
