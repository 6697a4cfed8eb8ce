"""Collusion indicators (issue 17; 招标投标法实施条例 第四十条): scenarios and threshold edges.

Pure tests of ``verifier.indicators`` over records as posted. The lawful tender with
every bidder's own data raises none; each planted pattern raises its indicator, naming the
bidders and the records it rests on. The served and offline paths are tested in
test_indicators_api.py and test_bundle.py.
"""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any

import pytest

from tests.tender import BIDDERS, COLLUSION, bid_metadata, colluding, lawful_tender
from verifier.indicators import (
    KINDS,
    MAX_EVIDENCE,
    NOTICE_EN,
    NOTICE_ZH,
    NotOpened,
    Thresholds,
    compute,
)

P = "E3301-2026-0017"


def records(evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events as committed records would read once opened: each with a log index and seq."""
    out = []
    for n, e in enumerate(evs):
        r = copy.deepcopy(e)
        r.update(index=100 + n, seq=n)
        out.append(r)
    return out


def lawful() -> list[dict[str, Any]]:
    evs = lawful_tender(P)
    for i, b in enumerate(e for e in evs if e["type"] == "bid_submitted"):
        b["payload"].update(bid_metadata(i))
    return records(evs)


def by_type(recs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in recs if r["type"] == kind]


def test_lawful_bids_with_their_own_data_raise_none() -> None:
    found = compute(lawful())
    assert found.items == ()
    assert found.records == 10 and found.unopened == 0
    j = found.to_json()
    assert j["indicators"] == [] and j["notice"] == NOTICE_EN and j["notice_zh"] == NOTICE_ZH


def test_nothing_is_computed_before_the_opening() -> None:
    """Until the bid opening the bids are sealed: compute refuses, whatever they hold."""
    recs = records(colluding("same_device", P))
    before = [r for r in recs if r["index"] < by_type(recs, "bid_opening_started")[0]["index"]]
    with pytest.raises(NotOpened):
        compute(before)
    with pytest.raises(NotOpened):
        compute([])


@pytest.mark.parametrize("kind", COLLUSION)
def test_each_collusion_pattern_raises_its_indicator_with_its_evidence(kind: str) -> None:
    recs = records(colluding(kind, P))
    found = compute(recs)
    assert [i.kind.name for i in found.items] == [kind], found.to_json()
    [ind] = found.items
    assert ind.id == KINDS[kind].id and "第四十条" in ind.kind.article_zh
    j = ind.to_json()
    assert {"id", "kind", "article", "article_zh", "strength", "evidence", "bidders"} <= set(j)
    if kind.startswith("price_"):
        # Every standing price is the evidence, and the test is stated with its threshold.
        assert sorted(ind.bidders) == sorted(BIDDERS)
        assert {e.field for e in ind.evidence} == {"payload.price"}
        assert j["test"]["threshold"] == 0.01 and j["test"]["n"] == 5
        assert j["test"]["statistic"] <= 0.01
        return
    # Bidders 1 and 2 share it; the evidence names their records and the shared value.
    assert set(ind.bidders) == {BIDDERS[1], BIDDERS[2]}
    named = {r["index"]: r for r in recs}
    for e in ind.evidence:
        rec = named[e.index]
        assert rec["seq"] == e.seq and rec["payload"]["bidder"] == e.bidder
        assert rec["type"] == e.type
    values = {str(e.value) for e in ind.evidence}
    assert len(values) == 1 or kind == "same_file_creator"


def test_strengths_and_articles() -> None:
    strength = {kind: compute(records(colluding(kind, P))).items[0].strength for kind in COLLUSION}
    assert strength == {
        "same_deposit_account": "strong",
        "identical_bid_files": "strong",
        "same_client_ip": "medium",
        "same_device": "strong",
        "same_project_manager": "strong",
        "same_file_creator": "medium",
        "price_progression": "medium",
        "price_narrow_band": "medium",
    }
    assert KINDS["same_deposit_account"].article_zh.endswith("第四十条（六）")
    assert KINDS["identical_bid_files"].article_zh.endswith("第四十条（四）（五）")
    assert KINDS["same_project_manager"].article_zh.endswith("第四十条（三）")


def test_a_shared_private_address_is_a_weak_sign() -> None:
    """192.168.1.10 sits behind countless home routers: it names a network, not an office."""
    recs = records(colluding("same_client_ip", P))
    for b in by_type(recs, "bid_submitted")[1:3]:
        b["payload"]["client_ip"] = "192.168.1.10"
    [ind] = compute(recs).items
    assert ind.strength == "weak"


def test_identical_files_are_found_by_attachment_alone() -> None:
    recs = lawful()
    bids = by_type(recs, "bid_submitted")
    bids[4]["attachments"] = copy.deepcopy(bids[0]["attachments"])
    [ind] = compute(recs).items
    assert ind.kind.name == "identical_bid_files"
    assert set(ind.bidders) == {BIDDERS[0], BIDDERS[4]}
    # Bidder 0's ciphertext hash names the file too; bidder 4 shows it by attachment only.
    fields = {(e.bidder, e.field) for e in ind.evidence}
    assert (BIDDERS[4], "attachments[0].sha256") in fields
    assert (BIDDERS[4], "payload.ciphertext_hash") not in fields


def test_one_bidder_reusing_its_own_data_raises_nothing() -> None:
    """A bidder that modifies its bid from the same machine is not colluding with itself."""
    recs = lawful()
    first = by_type(recs, "bid_submitted")[0]
    again = copy.deepcopy(first)
    again.update(type="bid_modified", index=999, seq=999)
    recs.append(again)
    assert compute(recs).items == ()


def test_a_withdrawn_bid_has_no_standing_price_but_its_address_still_counts() -> None:
    recs = records(colluding("price_progression", P))
    bids = by_type(recs, "bid_submitted")
    withdrawn = {
        "type": "bid_withdrawn",
        "index": 998,
        "seq": 998,
        "payload": {
            "bidder": BIDDERS[4],
            "withdrawn_at": "2026-03-21T09:00:00+08:00",
            "client_ip": bids[0]["payload"]["client_ip"],
        },
    }
    recs.append(withdrawn)
    kinds = {i.kind.name: i for i in compute(recs).items}
    # Four standing prices remain, still in progression; the withdrawal shares bidder 0's IP.
    assert kinds["price_progression"].test == {
        "test": "constant_difference",
        "statistic": 0.0,
        "threshold": 0.01,
        "n": 4,
    }
    assert set(kinds["same_client_ip"].bidders) == {BIDDERS[0], BIDDERS[4]}
    assert 998 in kinds["same_client_ip"].events


def test_sealed_records_not_opened_are_counted_not_read() -> None:
    recs = records(colluding("same_device", P))
    for b in by_type(recs, "bid_submitted"):
        b["commitments"] = {"payload.device_id": "x"}
    found = compute(recs)
    assert found.items == () and found.unopened == 5


def test_evidence_is_bounded() -> None:
    recs = lawful()
    first = by_type(recs, "bid_submitted")[0]
    for n in range(MAX_EVIDENCE + 20):
        extra = copy.deepcopy(first)
        extra["payload"]["bidder"] = f"X{n:04d}"
        extra["payload"]["price"] = 1_000_000 + 7919 * n * n  # no pattern
        extra.update(type="bid_submitted", index=2000 + n, seq=2000 + n)
        recs.append(extra)
    inds = {i.kind.name: i for i in compute(recs).items}
    dev = inds["same_device"]
    assert len(dev.evidence) == MAX_EVIDENCE and dev.more == 21
    assert dev.to_json()["evidence_left_out"] == 21


# --- the price tests at their thresholds -----------------------------------------------------


def priced(prices: list[int]) -> list[dict[str, Any]]:
    recs = lawful()
    bids = by_type(recs, "bid_submitted")
    for b in bids[len(prices) :]:
        b["type"] = "bid_rejected_late"  # not a bid event: leaves len(prices) bids
    for b, p in zip(bids, prices, strict=False):
        b["payload"]["price"] = p
    return recs


def kinds(prices: list[int], th: Thresholds | None = None) -> set[str]:
    return {i.kind.name for i in compute(priced(prices), th).items}


def test_cv_exactly_at_the_threshold_raises_and_just_above_does_not() -> None:
    # 985, 1005, 1005, 1005: mean 1000, s² = (15² + 3·5²) / 3 = 100, CV = 1 % exactly.
    assert kinds([985, 1005, 1005, 1005]) == {"price_narrow_band"}
    # 984, 1005, 1005, 1006: mean 1000, s² = 342 / 3 = 114, CV = 1.07 %.
    assert kinds([984, 1005, 1005, 1006]) == set()
    # A centre that calibrates a tighter threshold.
    assert kinds([985, 1005, 1005, 1005], Thresholds(cv_max=Fraction(99, 10_000))) == set()
    # The default threshold stated in the indicator: 1 %.
    [ind] = [
        i
        for i in compute(priced([9_950, 10_000, 10_020, 9_990])).items
        if i.kind.name == "price_narrow_band"
    ]
    assert ind.test is not None and ind.test["threshold"] == 0.01


def test_a_wide_spread_is_no_band() -> None:
    assert kinds([4_650_100_000, 4_832_600_000, 5_014_350_000, 4_680_100_000]) == set()


def test_constant_difference_within_the_tolerance_raises_and_beyond_does_not() -> None:
    # Gaps 100 and 101: mean 100.5, largest deviation 0.5 = 0.4975 % of it (within 1 %).
    assert "price_progression" in kinds([1_000_000, 1_000_100, 1_000_201])
    # Gaps 100 and 103: deviation 1.5 / 101.5 = 1.48 % (beyond 1 %); ratios no better.
    assert "price_progression" not in kinds([1_000_000, 1_000_100, 1_000_203])
    # Exactly at the tolerance: gaps 99 and 101, deviation 1 / 100 = 1 %.
    assert "price_progression" in kinds([1_000_000, 1_000_099, 1_000_200])
    assert "price_progression" not in kinds(
        [1_000_000, 1_000_099, 1_000_200], Thresholds(tolerance=Fraction(99, 10_000))
    )


def test_constant_ratio_progression() -> None:
    """Each price 5 % above the last: the differences grow, the ratios are constant."""
    prices = [8_000_000, 8_400_000, 8_820_000, 9_261_000]
    found = [i for i in compute(priced(prices)).items if i.kind.name == "price_progression"]
    assert found and found[0].test is not None and found[0].test["test"] == "constant_ratio"


def test_progression_strength_and_minimum_number_of_bids() -> None:
    three = [i for i in compute(priced([100_000, 110_000, 120_000])).items]
    assert [(i.kind.name, i.strength) for i in three] == [("price_progression", "weak")]
    assert kinds([100_000, 110_000]) == set()  # two bids: no test
    assert kinds([100_000, 100_000, 100_000]) == {"price_narrow_band"}  # equal: no progression
