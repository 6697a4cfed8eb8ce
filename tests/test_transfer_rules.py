"""Process rules of land, mining-rights and state-property transfers (L01–L05, M01, P01,
P02; domain-rules §2): each on a lawful scenario, the scenario with the rule broken, and
the boundaries of its period."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.catalogue import load_catalogue
from ledger.records import validate_event
from tests.tender import at
from tests.test_rules import records
from tests.transfer import breaking, lawful_auction, lawful_listing, lawful_property
from verifier.rules import evaluate, load_rules
from verifier.rules.engine import RuleResult

NEW = ("L01", "L02", "L03", "L04", "L05", "M01", "P01", "P02")
TO_CONFIRM = {"L01", "L02", "L03", "P02"}


def results(events: list[dict[str, Any]]) -> dict[str, RuleResult]:
    return {r.rule.id: r for r in evaluate(records(events))}


def scenarios() -> list[list[dict[str, Any]]]:
    return [
        lawful_listing("L-1"),
        lawful_auction("L-2"),
        lawful_listing("M-1", "mining"),
        lawful_auction("M-2", "mining"),
        lawful_property("P-1"),
    ]


def _find(evs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(e for e in evs if e["type"] == kind)


def test_each_rule_names_its_source_confidence_and_trade_types() -> None:
    rules = {r.id: r for r in load_rules()}
    for rid in NEW:
        r = rules[rid]
        assert r.source_zh and r.source_en and r.trade_types
        assert r.status == ("to-confirm" if rid in TO_CONFIRM else "confirmed"), rid
        assert set(r.trade_types) <= {"land", "mining", "property"}, rid
    ids = [r.id for r in load_rules()]
    assert ids == sorted(ids)


@pytest.mark.parametrize("evs", scenarios(), ids=lambda evs: evs[0]["project"])
def test_lawful_transfers_pass_and_follow_the_catalogue(evs: list[dict[str, Any]]) -> None:
    cat = load_catalogue()
    for e in evs:
        validate_event(e, cat)
    res = results(evs)
    # A rule whose events are not recorded is not applicable: not tested, never a pass.
    lawful = ("pass", "not_applicable")
    bad = {k: (v.status, v.message_en) for k, v in res.items() if v.status not in lawful}
    assert not bad
    assert all((v.status == "not_applicable") == (not v.applicable) for v in res.values())
    # Every trade type gets process checks now.
    assert any(v.applicable and v.checked for k, v in res.items() if k in NEW)


def test_which_rules_apply_to_which_trade_type() -> None:
    def applied(evs: list[dict[str, Any]]) -> set[str]:
        return {k for k, v in results(evs).items() if v.applicable and k in NEW}

    assert applied(lawful_listing("L")) == {"L01", "L02", "L03", "L05"}
    assert applied(lawful_auction("L")) == {"L01", "L03", "L04", "L05"}
    assert applied(lawful_listing("M", "mining")) == {"M01"}
    assert applied(lawful_property("P")) == {"L04", "P01", "P02"}


@pytest.mark.parametrize("rule", NEW)
def test_breaking_one_rule_fails_that_rule_only(rule: str) -> None:
    res = results(breaking(rule, "X-1"))
    # Unconfirmed legal text only warns (tests/test_rules.py); so does L05, which cannot
    # know whether an agreement was allowed.
    want = "warn" if rule in TO_CONFIRM | {"L05"} else "fail"
    assert res[rule].status == want, res[rule].message_en
    assert res[rule].findings[0].kind == "violation"
    others = {
        k: v.status
        for k, v in res.items()
        if k != rule and v.status not in ("pass", "not_applicable")
    }
    assert not others


def test_l01_notice_counts_twenty_days_before_the_start() -> None:
    evs = lawful_listing("L")
    notice = _find(evs, "transfer_notice_published")
    notice["occurred_at"] = at(5, 12, 23)  # 1 June is the 20th day after 12 May
    assert results(evs)["L01"].status == "pass"
    notice["occurred_at"] = at(5, 13, 0, 30)
    res = results(evs)["L01"]
    # Counted back plainly from 1 June (第203条 does not move it): 12 May at the latest.
    assert res.status == "warn" and "2026-05-12" in res.message_en
    # A start on Sunday 31 May, notice on Monday 11 May: 20 days back is the 11th, lawful,
    # although counting forward the 20th day (31 May, a rest day) would move to 1 June.
    notice["occurred_at"] = at(5, 11, 9)
    notice["payload"]["activity_start"] = at(5, 31, 9)
    assert results(evs)["L01"].status == "pass"


def test_l02_listing_boundaries_around_midnight_of_the_last_day() -> None:
    evs = lawful_listing("L")
    listing = _find(evs, "listing_opened")["payload"]
    # The 10th day after 1 June is 11 June: a close at 01:00 on the 12th is after its end.
    listing["listing_end"] = at(6, 12, 1)
    assert results(evs)["L02"].status == "pass"
    # A close at 23:00 on 10 June is a whole day short.
    listing["listing_end"] = at(6, 10, 23)
    res = results(evs)["L02"]
    assert res.status == "warn" and "2026-06-11" in res.message_en


def test_l03_ten_working_days_skip_the_dragon_boat_break() -> None:
    evs = lawful_listing("L")
    r = _find(evs, "result_published")
    r["payload"]["published_at"] = r["occurred_at"] = at(6, 29, 23)
    assert results(evs)["L03"].status == "pass"
    r["payload"]["published_at"] = r["occurred_at"] = at(6, 30, 1)
    res = results(evs)["L03"]
    assert res.status == "warn" and "2026-06-29" in res.message_en
    # Not published at all, and the records run past the period: a missing step.
    evs = [e for e in lawful_listing("L") if e["type"] != "result_published"]
    res = results(evs)["L03"]
    assert res.status == "warn" and res.findings[0].kind == "missing"


def test_l04_auction_notice_record_and_retention() -> None:
    # The auction notice seven days ahead (拍卖法 第四十五条): 18 May is the 7th day after
    # 11 May. For land, 39号令's 20 days (L01) fail instead.
    evs = lawful_auction("L")
    notice = _find(evs, "transfer_notice_published")
    notice["payload"]["activity_start"] = _find(evs, "onsite_auction_started")["occurred_at"] = at(
        5, 18, 9
    )
    res = results(evs)
    assert (res["L04"].status, res["L01"].status) == ("pass", "warn")
    notice["occurred_at"] = at(5, 12)
    assert results(evs)["L04"].status == "fail"
    # The deal confirmed before any auction record is signed.
    evs = lawful_auction("L")
    rec = _find(evs, "auction_record_signed")
    evs.remove(rec)
    evs.append(rec)
    res = results(evs)["L04"]
    assert res.status == "fail" and "deal_confirmed" in res.message_en
    # No record yet, and no deal: a step not recorded yet (warn).
    evs = [e for e in lawful_auction("L") if e["type"] != "auction_record_signed"]
    evs = evs[: next(i for i, e in enumerate(evs) if e["type"] == "deal_confirmed")]
    res = results(evs)["L04"]
    assert res.status == "warn" and res.findings[0].kind == "missing"
    # Auction records are kept five years from the deal (拍卖法 第五十四条).
    evs = lawful_auction("L")
    arch = _find(evs, "archive_package_created")["payload"]
    arch["retention_until"] = "2031-06-15"  # five years from the contract (16 June) - 1 day
    assert results(evs)["L04"].status == "fail"
    arch["retention_until"] = "2031-06-16"
    assert results(evs)["L04"].status == "pass"
    # A listing that never went to auction is not an auction.
    evs = lawful_listing("L")
    _find(evs, "archive_package_created")["payload"]["retention_until"] = "2027-01-01"
    assert not results(evs)["L04"].applicable


def test_l05_tender_auction_and_listing_are_lawful() -> None:
    for method in ("open_tender", "auction", "listing"):
        evs = lawful_listing("L")
        _find(evs, "project_registered")["payload"]["method"] = method
        assert results(evs)["L05"].status == "pass"
    evs = lawful_listing("L")
    _find(evs, "project_registered")["payload"]["method"] = "other"
    assert results(evs)["L05"].status == "warn"


def test_m01_an_auction_needs_a_prior_notice_an_agreement_is_not_judged() -> None:
    evs = lawful_auction("M", "mining")
    notice = _find(evs, "transfer_notice_published")
    evs.remove(notice)
    evs.insert(5, notice)  # after the auction started
    assert results(evs)["M01"].status == "fail"
    evs = [
        e
        for e in lawful_listing("M", "mining")
        if e["type"] not in {"transfer_notice_published", "listing_opened", "listing_bid_placed"}
    ]
    assert not results(evs)["M01"].applicable


def test_p01_one_transferee_may_sign_by_agreement() -> None:
    evs = breaking("P01", "P")
    evs.remove(next(e for e in evs if e["type"] == "transferee_registered"))
    res = results(evs)["P01"]
    assert res.status == "pass" and res.checked == 1
    # The same transferee registered twice is one transferee.
    evs = breaking("P01", "P")
    regs = [e for e in evs if e["type"] == "transferee_registered"]
    regs[1]["payload"]["transferee"] = regs[0]["payload"]["transferee"]
    assert results(evs)["P01"].status == "pass"


@pytest.mark.parametrize(
    ("kind", "short", "enough"),
    [
        # 20 working days from Monday 11 May end on Monday 8 June.
        ("equity_transfer", at(6, 5, 17), at(6, 9, 1)),
        # 40 working days from 11 May (端午节 19 June off) end on Tuesday 7 July; the
        # disclosure runs to 24:00 of that day (民法典 第203条第二款).
        ("capital_increase", at(7, 7, 17), at(7, 8, 1)),
        # 10 working days from 11 May end on Monday 25 May.
        ("asset_transfer", at(5, 22, 17), at(5, 26, 1)),
    ],
)
def test_p02_disclosure_periods_by_transaction_kind(kind: str, short: str, enough: str) -> None:
    evs = lawful_property("P")
    d = _find(evs, "info_disclosed")["payload"]
    d["transaction_kind"] = kind
    d["disclosure_end"] = short
    assert results(evs)["P02"].status == "warn"
    d["disclosure_end"] = enough
    assert results(evs)["P02"].status == "pass"


def test_p02_pre_disclosure_within_ten_working_days_of_the_approval() -> None:
    evs = lawful_property("P")
    pre = _find(evs, "info_pre_disclosed")["payload"]
    pre["approved_at"] = at(4, 20)
    pre["disclosure_start"] = at(5, 7)  # 10 working days from 20 April (劳动节 1-5 May off)
    assert results(evs)["P02"].status == "pass"
    pre["disclosure_start"] = at(5, 8)
    res = results(evs)["P02"]
    assert res.status == "warn" and "pre-disclosure" in res.message_en
