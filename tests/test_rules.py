"""Process rules: 民法典 day counting, the holiday calendar, the catalogue, and scenarios."""

from __future__ import annotations

import copy
import json
from datetime import date
from importlib import resources
from typing import Any

import pytest

from ledger.catalogue import load_catalogue
from tests.tender import BIDDERS, at, breaking, lawful_tender
from verifier.rules import evaluate, load_calendar, load_rules, parse_rules
from verifier.rules.days import (
    CalendarError,
    OutsideCalendar,
    at_least,
    parse_calendar,
    period_end,
    within,
)
from verifier.rules.engine import RuleCatalogueError, parse_instant


def records(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events as committed records (seq and index filled, recorded when they occurred)."""
    out = []
    for i, e in enumerate(events):
        r = {k: v for k, v in e.items() if k != "idempotency_key"}
        r.update(seq=i, index=i, recorded_at=e["occurred_at"])
        out.append(r)
    return out


def results(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {r.rule.id: r for r in evaluate(records(events))}


# --- day counting -------------------------------------------------------------------------


def test_civil_code_day_counting() -> None:
    cal = load_calendar()
    # 第201条: the starting day is not counted; 20 days from Mon 2 March end on Sun 22 March,
    # a rest day, so under 第203条 the period runs to Mon 23 March.
    end = period_end(date(2026, 3, 2), 20, "day", cal)
    assert (end.nominal, end.last, end.extended) == (date(2026, 3, 22), date(2026, 3, 23), True)
    # The 2026 Spring Festival break (15-23 February) pushes a period ending inside it.
    end = period_end(date(2026, 2, 10), 5, "day", cal)
    assert end.last == date(2026, 2, 24)
    # A swapped working day (调休 Saturday 14 February) is a working day.
    assert cal.is_workday(date(2026, 2, 14)) and not cal.is_workday(date(2026, 2, 16))
    assert cal.is_workday(date(2024, 2, 4)) and not cal.is_workday(date(2024, 2, 10))
    # 1259条: "within 3 days" includes the third day; that day being a Sunday (29 March),
    # 第203条 gives until Monday.
    assert within(date(2026, 3, 26), date(2026, 3, 29), 3, "day", cal) is None
    assert within(date(2026, 3, 26), date(2026, 3, 30), 3, "day", cal) is None
    late = within(date(2026, 3, 26), date(2026, 3, 31), 3, "day", cal)
    assert late is not None and late.last == date(2026, 3, 30)
    assert within(date(2026, 3, 23), date(2026, 3, 27), 3, "day", cal) is not None
    # At least 5 days from Mon 2 March: Sat 7 March is a rest day, so Mon 9 March.
    assert at_least(date(2026, 3, 2), date(2026, 3, 9), 5, "day", cal) is None
    short = at_least(date(2026, 3, 2), date(2026, 3, 8), 5, "day", cal)
    assert short is not None and short.last == date(2026, 3, 9)


def test_working_days_skip_weekends_and_breaks() -> None:
    cal = load_calendar()
    # 3 working days from Fri 30 April 2026: 1-5 May is 劳动节, 9 May (Sat) is worked.
    assert period_end(date(2026, 4, 30), 3, "workday", cal).last == date(2026, 5, 8)
    assert period_end(date(2026, 5, 6), 3, "workday", cal).last == date(2026, 5, 9)
    # 30 working days from 1 September 2025 cross the 8-day National Day break and count
    # the two swapped Saturdays/Sundays (28 September, 11 October).
    assert period_end(date(2025, 9, 1), 30, "workday", cal).last == date(2025, 10, 17)


def test_dates_outside_the_calendar_cannot_be_evaluated_never_pass() -> None:
    cal = load_calendar()
    with pytest.raises(OutsideCalendar, match="2031-03-03 is outside"):
        cal.is_workday(date(2031, 3, 3))
    with pytest.raises(OutsideCalendar):
        period_end(date(2030, 12, 30), 3, "workday", cal)
    # Decided without the calendar when it cannot matter: far too early is too early.
    assert at_least(date(2031, 3, 2), date(2031, 3, 5), 20, "day", cal) is not None
    assert within(date(2031, 3, 2), date(2031, 3, 3), 3, "workday", cal) is None
    # A whole tender in 2031: periods that need the calendar are reported, not passed.
    evs = lawful_tender("P2031")
    for e in evs:
        e["occurred_at"] = e["occurred_at"].replace("2026-", "2031-")
        for k, v in list(e["payload"].items()):
            if isinstance(v, str) and v.startswith("2026-"):
                e["payload"][k] = v.replace("2026-", "2031-")
    res = results(evs)
    assert any(r.status == "cannot_evaluate" for r in res.values())
    for r in res.values():
        for f in r.findings:
            if f.kind == "unknown":
                assert "outside the official holiday calendar" in f.en


def test_calendar_data_is_checked() -> None:
    good = json.loads(resources.files("verifier.rules").joinpath("holidays_cn.json").read_text())
    assert load_calendar().years == (2023, 2024, 2025, 2026)
    bad = copy.deepcopy(good)
    bad["years"]["2025"]["work"].append("2025-01-02")  # a Thursday cannot be "swapped"
    with pytest.raises(CalendarError, match="not a weekend"):
        parse_calendar(bad)
    bad = copy.deepcopy(good)
    del bad["years"]["2024"]
    with pytest.raises(CalendarError, match="contiguous"):
        parse_calendar(bad)


def test_instants_need_an_offset() -> None:
    assert parse_instant("2026-03-25T10:00:00.123456789+08:00").microsecond == 123456
    assert parse_instant("2026-03-25T02:00:00Z") == parse_instant("2026-03-25T10:00:00+08:00")
    with pytest.raises(ValueError, match="offset"):
        parse_instant("2026-03-25T10:00:00")


# --- the catalogue --------------------------------------------------------------------------


def test_rule_catalogue_is_complete_and_names_real_events_and_fields() -> None:
    rules = load_rules()
    ids = [r.id for r in rules]
    assert {"E01", "E02", "E10", "E12"} <= set(ids) and len(ids) == len(set(ids))
    events = load_catalogue().events
    for r in rules:
        assert r.text_zh and r.text_en and r.source_zh and r.source_en and r.on_failure_zh
        assert r.status in ("confirmed", "to-confirm") and r.severity in ("fail", "warn")
        for etype, names in r.fields.items():
            assert etype in events, (r.id, etype)
            for n in names:
                assert n in events[etype].fields, (r.id, etype, n)
        for etype in r.events:
            assert etype in events, (r.id, etype)
        # Unconfirmed legal text never fails a verification on its own.
        if r.status == "to-confirm":
            assert r.severity == "warn", r.id


def test_rule_catalogue_errors_are_named() -> None:
    raw = json.loads(resources.files("verifier.rules").joinpath("rules.json").read_text())
    bad = copy.deepcopy(raw)
    bad["rules"][0]["checks"][0]["kind"] = "vibes"
    with pytest.raises(RuleCatalogueError, match="E01: unknown check kind 'vibes'"):
        parse_rules(bad)
    bad = copy.deepcopy(raw)
    bad["rules"][1]["id"] = "E01"
    with pytest.raises(RuleCatalogueError, match="not a new rule id"):
        parse_rules(bad)
    bad = copy.deepcopy(raw)
    bad["rules"][0]["severity"] = "maybe"
    with pytest.raises(RuleCatalogueError, match="severity"):
        parse_rules(bad)


# --- scenarios ------------------------------------------------------------------------------


def test_lawful_tender_passes_every_rule() -> None:
    res = results(lawful_tender("P1"))
    bad = {
        k: (r.status, r.message_en)
        for k, r in res.items()
        if r.status != ("pass" if r.applicable else "not_applicable")
    }
    assert not bad
    # A rule whose events the project never recorded was not tested: never a pass.
    for rid in ("E05", "E14"):
        assert res[rid].applicable is False and res[rid].status == "not_applicable"
        assert res[rid].message_zh.startswith("不适用") and "not applicable" in res[rid].message_en
    assert res["E01"].checked == 1 and res["E06"].checked >= 5


@pytest.mark.parametrize("rule", ["E01", "E02", "E10", "E12"])
def test_each_broken_rule_is_flagged_with_its_id_source_and_events(rule: str) -> None:
    res = results(breaking(rule, "P1"))
    r = res[rule]
    assert r.status == "fail", r.message_en
    assert r.events, "a violation names the events involved"
    assert r.rule.source_zh and r.findings[0].kind == "violation"
    others = {k for k, x in res.items() if x.status == "fail"} - {rule}
    assert not others, others


def test_violation_messages_name_the_dates_and_the_law() -> None:
    res = results(breaking("E01", "P1"))
    msg = res["E01"].message_en
    assert "seq 1" in msg and "2026-03-12" in msg and "20 days" in msg
    assert "seq 1" in res["E01"].message_zh and "20日" in res["E01"].message_zh
    res = results(breaking("E12", "P1"))
    assert "2026-05-06" in res["E12"].message_en  # 30 days end on 1 May (劳动节): moved on


def test_fewer_than_three_bids_and_late_bids() -> None:
    evs = lawful_tender("P1")
    late = next(e for e in evs if e["type"] == "bid_submitted")
    late["payload"]["submit_at"] = at(3, 25, 10, 5)
    r = results(evs)["E06"]
    assert r.status == "fail" and "after the bid deadline" in r.message_en
    evs = [e for e in lawful_tender("P1") if e["type"] != "bid_submitted"][:]
    evs.insert(10, next(e for e in lawful_tender("P1") if e["type"] == "bid_submitted"))
    r = results(evs)["E06"]
    assert r.status == "fail" and "only 1 bid(s)" in r.message_en


def test_missing_fields_cannot_be_evaluated() -> None:
    evs = lawful_tender("P1")
    del next(e for e in evs if e["type"] == "committee_formed")["payload"]["expert_ids"]
    r = results(evs)["E09"]
    assert r.status == "cannot_evaluate" and "expert_ids" in r.message_en


def test_an_unrecorded_step_after_its_period_warns() -> None:
    evs = [e for e in lawful_tender("P1") if e["type"] != "tender_report_filed"]
    r = results(evs)["E12"]
    assert r.status == "warn" and "not recorded within 15 days" in r.message_en


def test_a_committee_member_who_neither_signed_nor_dissented() -> None:
    evs = lawful_tender("P1")
    rep = next(e for e in evs if e["type"] == "evaluation_report_signed")
    rep["payload"]["signers"] = rep["payload"]["signers"][:-1]
    r = results(evs)["E09"]
    # 实施条例 第五十三条: deemed to agree, so a warning, never a failure.
    assert r.status == "warn" and "EXP-1530" in r.message_en and "deemed to agree" in r.message_en
    rep["payload"]["dissenters"] = ["EXP-1530"]
    assert results(evs)["E09"].status == "pass"


def test_objection_rules_pair_replies_by_seq() -> None:
    evs = lawful_tender("P1")
    evs.insert(
        5,
        {
            "project": "P1",
            "trade_type": "engineering",
            "type": "objection_filed",
            "actor": {"id": BIDDERS[0], "role": "bidder"},
            "occurred_at": at(3, 12),
            "payload": {"filed_at": at(3, 12), "target": "tender_documents"},
        },
    )
    evs.insert(
        6,
        {
            "project": "P1",
            "trade_type": "engineering",
            "type": "objection_answered",
            "actor": {"id": "AG-330100-018", "role": "tender_agent"},
            "occurred_at": at(3, 18),
            "payload": {"answered_at": at(3, 18), "in_reply_to": "5"},
        },
    )
    r = results(evs)["E05"]
    assert r.status == "fail" and "later than 3 days" in r.message_en  # 12 -> 18 March
    evs[6]["payload"]["answered_at"] = at(3, 14)
    evs[6]["occurred_at"] = at(3, 14)
    assert results(evs)["E05"].status == "pass"


def test_procurement_rules_use_working_days() -> None:
    evs = [
        {
            "project": "G1",
            "trade_type": "procurement",
            "type": kind,
            "actor": {"id": "CG-1", "role": "purchaser"},
            "occurred_at": when,
            "payload": payload,
        }
        for kind, when, payload in [
            ("winner_determined", at(4, 29, 10), {"winner": "S1"}),
            # 2 working days from Wed 29 April: 30 April, then 劳动节 (1-5 May), then 6 May.
            ("award_notice_issued", at(5, 6, 10), {"notice_at": at(5, 6, 10)}),
            ("award_result_published", at(5, 7, 10), {"published_at": at(5, 7, 10)}),
        ]
    ]
    res = results(evs)
    assert res["G06"].status == "fail" and "award_result" not in res["G06"].message_en
    assert "the result announcement" in res["G06"].message_en
    assert "2026-05-06" in res["G06"].message_en
