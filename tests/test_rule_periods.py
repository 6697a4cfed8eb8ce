"""Periods read as a court reads them (issue 12): 民法典 第201、203、204条.

- A window (document sale, publicity, listing, disclosure) lasts until its last day ends:
  24:00 Beijing time, or the close of the business hours its notice sets (第203条第二款),
  compared as instants: the boundary tests sit one hour either side of that instant.
- Points fixed before a deadline ("截止时间至少15日前", "10日前") are counted back plainly:
  第203条 does not move them.
- Working-day periods are explained in working days: the rest days skipped and the 调休
  days counted, never 第203条; and the Chinese text says whatever the English one says.
- A period that reaches into a year the holiday calendar lacks cannot be evaluated.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from datetime import date, datetime, time, timedelta
from importlib import resources
from typing import Any

import pytest

from ledger.catalogue import CATALOGUE_VERSION, load_catalogue
from verifier.payload import PayloadError, load_payload_catalogues
from verifier.rules import RuleResult, evaluate, load_calendar, load_rules
from verifier.rules.days import (
    CST,
    CalendarError,
    latest_before,
    parse_business_hours,
    parse_calendar,
    period_end,
)
from verifier.rules.engine import BUSINESS_HOURS, WINDOW_ENDS

CAL = load_calendar()


def cst(d: date, hour: int = 10, minute: int = 0, second: int = 0) -> str:
    """An instant on day ``d`` in Beijing time; hour 24 is the next day's 00:00."""
    if hour == 24:
        return datetime.combine(d + timedelta(days=1), time(0), CST).isoformat()
    return datetime.combine(d, time(hour, minute, second), CST).isoformat()


class Project:
    """Events appended in log order, recorded when they occurred. An engineering project is
    one that must be tendered by law (E01, E10 apply only to those): its registration is
    recorded last, so the scenario's own events keep seq 0, 1, ..."""

    def __init__(self, trade_type: str = "engineering") -> None:
        self.trade_type = trade_type
        self.events: list[dict[str, Any]] = []

    @property
    def records(self) -> list[dict[str, Any]]:
        if self.trade_type != "engineering":
            return self.events
        n = len(self.events)
        registered = {
            "project": "P12",
            "trade_type": self.trade_type,
            "type": "project_registered",
            "actor": {"id": "X", "role": "platform"},
            "occurred_at": cst(date(2026, 1, 5)),
            "recorded_at": cst(date(2026, 1, 5)),
            "seq": n,
            "index": n,
            "payload": {"method": "open_tender", "estimate": 1, "must_tender": True},
        }
        return [*self.events, registered]

    def add(self, type_: str, occurred_at: str, **payload: Any) -> Project:
        seq = len(self.events)
        self.events.append(
            {
                "project": "P12",
                "trade_type": self.trade_type,
                "type": type_,
                "actor": {"id": "X", "role": "platform"},
                "occurred_at": occurred_at,
                "recorded_at": occurred_at,
                "seq": seq,
                "index": seq,
                "payload": payload,
            }
        )
        return self


def check(rid: str, i: int, p: Project) -> RuleResult:
    """Check ``i`` of rule ``rid`` alone over the project."""
    rule = next(r for r in load_rules() if r.id == rid)
    only = dataclasses.replace(rule, checks=(rule.checks[i],))
    [res] = evaluate(p.records, [only], CAL)
    return res


def status(rid: str, i: int, p: Project) -> str:
    return check(rid, i, p).status


# --- 第203条第二款: a window runs to 24:00 of its last day, or to the close of business ------


def publicity(start: date, end: str, **hours: str) -> Project:
    """Candidates published on ``start``; the publicity closes at ``end`` (E10 check 1)."""
    p = Project()
    return p.add(
        "candidates_published",
        cst(start),
        candidates=["A", "B"],
        publicity_start=cst(start),
        publicity_end=end,
        **hours,
    )


def test_a_three_day_publicity_that_ends_in_the_morning_of_its_third_day_fails() -> None:
    # Published Monday 16 March 2026: the three days are 17, 18 and 19 March (第201条).
    start, last = date(2026, 3, 16), date(2026, 3, 19)
    assert status("E10", 1, publicity(start, cst(last, 9))) == "fail"
    res = check("E10", 1, publicity(start, cst(last, 9)))
    assert "2026-03-19 at 24:00" in res.message_en and "Art. 203(2)" in res.message_en
    assert "2026-03-19 24时" in res.message_zh and "第203条第二款" in res.message_zh
    # The old date comparison passed it; the day before is short in any reading.
    assert status("E10", 1, publicity(start, cst(last - timedelta(days=1), 24))) == "fail"


@pytest.mark.parametrize(
    ("end", "want"),
    [
        ((date(2026, 3, 19), 23), "fail"),  # one hour before 24:00 of the last day
        ((date(2026, 3, 19), 24), "pass"),  # 24:00 itself
        ((date(2026, 3, 20), 1), "pass"),  # one hour after
        # A record of 23:59:59 stands for 24:00 (systems that cannot write 24:00); one
        # second earlier does not.
        ((date(2026, 3, 19), 23, 59, 59), "pass"),
        ((date(2026, 3, 19), 23, 59, 58), "fail"),
    ],
)
def test_publicity_one_hour_either_side_of_24_00(end: tuple[Any, ...], want: str) -> None:
    assert status("E10", 1, publicity(date(2026, 3, 16), cst(*end))) == want


@pytest.mark.parametrize(
    ("hour", "minute", "want"),
    [(16, 30, "fail"), (17, 29, "fail"), (17, 30, "pass"), (18, 30, "pass")],
)
def test_publicity_either_side_of_the_close_of_business(hour: int, minute: int, want: str) -> None:
    """With business hours 08:30-17:30 the last day ends at 17:30 (第203条第二款)."""
    end = cst(date(2026, 3, 19), hour, minute)
    p = publicity(date(2026, 3, 16), end, business_hours="08:30-17:30")
    assert status("E10", 1, p) == want
    if want == "fail":
        res = check("E10", 1, p)
        assert "at 17:30 (close of business, seq 0)" in res.message_en
        assert "17:30（营业时间截止，seq 0）" in res.message_zh


def test_business_hours_set_by_the_tender_notice_govern_later_windows() -> None:
    """The notice's business hours hold for the project's later windows; a window's own
    event may set others."""

    def project(end_hour: int, own: str | None = None) -> Project:
        p = Project().add(
            "tender_notice_published",
            cst(date(2026, 3, 2)),
            issue_start=cst(date(2026, 3, 2)),
            bid_deadline=cst(date(2026, 3, 25)),
            business_hours="09:00-17:00",
        )
        extra = {} if own is None else {"business_hours": own}
        return p.add(
            "candidates_published",
            cst(date(2026, 3, 16)),
            candidates=["A"],
            publicity_start=cst(date(2026, 3, 16)),
            publicity_end=cst(date(2026, 3, 19), end_hour),
            **extra,
        )

    assert status("E10", 1, project(16)) == "fail"
    assert status("E10", 1, project(17)) == "pass"
    assert status("E10", 1, project(17, own="08:00-18:00")) == "fail"
    assert status("E10", 1, project(18, own="08:00-18:00")) == "pass"


def test_the_last_day_of_a_window_moved_by_article_203_ends_at_24_00() -> None:
    """Published Thursday 26 March: day 3 is Sunday 29 March, a rest day, so the publicity
    runs to the end of Monday 30 March (第203条第一款), and that day ends at 24:00."""
    start = date(2026, 3, 26)
    got = {
        hours: status("E10", 1, publicity(start, cst(*hours)))
        for hours in [(date(2026, 3, 29), 24), (date(2026, 3, 30), 23), (date(2026, 3, 31), 1)]
    }
    assert list(got.values()) == ["fail", "fail", "pass"]
    res = check("E10", 1, publicity(start, cst(date(2026, 3, 30), 23)))
    assert "2026-03-29" in res.message_en and "Art. 203(1)" in res.message_en


def sale(opened: date, closed: str, trade_type: str = "engineering", **hours: str) -> Project:
    """A document sale (E03 check 0, G02 check 0), optionally under the notice's hours."""
    p = Project(trade_type)
    if hours:
        p.add(
            "tender_notice_published",
            cst(opened),
            issue_start=cst(opened),
            bid_deadline=cst(opened + timedelta(days=30)),
            **hours,
        )
    p.add("documents_issue_opened", cst(opened), issue_open=cst(opened))
    return p.add("documents_issue_closed", closed, issue_close=closed)


@pytest.mark.parametrize(
    ("closed", "hours", "want"),
    [
        # Opened Monday 9 March: five days end on Saturday 14 March, a rest day, so the sale
        # runs to the end of Monday 16 March.
        ((date(2026, 3, 16), 23), {}, "fail"),
        ((date(2026, 3, 17), 1), {}, "pass"),
        ((date(2026, 3, 16), 16, 0), {"business_hours": "08:30-17:00"}, "fail"),
        ((date(2026, 3, 16), 18, 0), {"business_hours": "08:30-17:00"}, "pass"),
    ],
)
def test_document_sale_to_the_instant(
    closed: tuple[Any, ...], hours: dict[str, str], want: str
) -> None:
    assert status("E03", 0, sale(date(2026, 3, 9), cst(*closed), **hours)) == want


@pytest.mark.parametrize(
    ("closed", "hours", "want"),
    [
        # Procurement: five working days from Friday 6 March are 9-13 March.
        ((date(2026, 3, 13), 23), {}, "fail"),
        ((date(2026, 3, 14), 1), {}, "pass"),
        ((date(2026, 3, 13), 16, 30), {"business_hours": "08:30-17:30"}, "fail"),
        ((date(2026, 3, 13), 18, 30), {"business_hours": "08:30-17:30"}, "pass"),
    ],
)
def test_working_day_window_to_the_instant(
    closed: tuple[Any, ...], hours: dict[str, str], want: str
) -> None:
    p = sale(date(2026, 3, 6), cst(*closed), "procurement", **hours)
    assert status("G02", 0, p) == want


def test_unreadable_business_hours_cannot_be_evaluated() -> None:
    for bad in ("17:30-08:30", "8:30-17:30", "all day"):
        res = check(
            "E10", 1, publicity(date(2026, 3, 16), cst(date(2026, 3, 20)), business_hours=bad)
        )
        assert res.status == "cannot_evaluate" and "business_hours" in res.message_en, bad


def test_every_window_end_field_is_in_the_catalogue_and_compared_as_an_instant() -> None:
    events = load_catalogue().events
    carried = {f for e in events.values() for f in e.fields}
    assert WINDOW_ENDS <= carried
    for r in load_rules():
        for c in r.checks:
            if c["kind"] == "period" and c["to"].get("field") in WINDOW_ENDS:
                assert c["compare"] == "at_least" and not c.get("backward"), r.id


def test_business_hours_format_is_checked_at_the_door() -> None:
    """Strict ``HH:MM-HH:MM``: the catalogue's pattern and the engine's reader agree."""
    cats = load_payload_catalogues()
    holders = [c for c, e in load_catalogue().events.items() if BUSINESS_HOURS in e.fields]
    assert {"tender_notice_published", "candidates_published", "listing_opened"} <= set(holders)
    for code in holders:
        spec = load_catalogue().events[code].fields[BUSINESS_HOURS]
        assert not spec.required, code
    got = cats.checker(CATALOGUE_VERSION, "candidates_published")
    assert got is not None
    checker = got[0]
    base = {"candidates": ["A"], "publicity_start": cst(date(2026, 3, 16))}
    base["publicity_end"] = cst(date(2026, 3, 19), 24)
    checker.check({**base, "business_hours": "08:30-17:30"})
    for bad in ("8:30-17:30", "08:30–17:30", "08:30-24:00", "08:30-17:30 ", "0830-1730", ""):
        with pytest.raises(PayloadError) as e:
            checker.check({**base, "business_hours": bad})
        assert e.value.field == BUSINESS_HOURS
        with pytest.raises(ValueError):
            parse_business_hours(bad)
    assert parse_business_hours("08:30-17:30") == (time(8, 30), time(17, 30))
    with pytest.raises(ValueError, match="close before they open"):
        parse_business_hours("17:30-08:30")


# --- backward periods: counted back plainly ---------------------------------------------------


def before_deadline(rid: str, i: int, act: date, deadline: str) -> Project:
    """A clarification (E04) or an objection to the documents (E05) on ``act``."""
    p = Project()
    p.add(
        "tender_notice_published",
        cst(date(2026, 2, 27)),
        issue_start=cst(date(2026, 2, 27)),
        bid_deadline=deadline,
    )
    if rid == "E04":
        p.add("clarification_issued", cst(act), clarif_at=cst(act), applies_to="tender_documents")
    else:
        p.add("objection_filed", cst(act), filed_at=cst(act), target="tender_documents")
    return p


@pytest.mark.parametrize(("rid", "n"), [("E04", 15), ("E05", 10)])
def test_points_before_a_deadline_are_counted_back_plainly(rid: str, n: int) -> None:
    """A deadline on Sunday 22 March 2026. Counting forward with 第203条 would move the
    n-th day (a Sunday) to Monday and call the deadline too early; counted back plainly
    the latest lawful day is the deadline's day minus n."""
    deadline = cst(date(2026, 3, 22), 9, 30)
    latest = date(2026, 3, 22) - timedelta(days=n)
    assert status(rid, 0, before_deadline(rid, 0, latest, deadline)) == "pass"
    res = check(rid, 0, before_deadline(rid, 0, latest + timedelta(days=1), deadline))
    assert res.status == "fail"
    assert f"the latest lawful day was {latest}" in res.message_en
    assert "Art. 203 does not move it" in res.message_en
    assert f"最迟应在 {latest}" in res.message_zh and "不适用第203条" in res.message_zh
    assert "extended" not in res.message_en


def test_backward_counting_in_working_days_and_without_the_calendar() -> None:
    # 5 working days before Wednesday 25 March: 19, 20, 23, 24, 25 March; the act's day
    # is not counted, so the latest day is 18 March.
    assert latest_before(date(2026, 3, 25), 5, "workday", CAL) == date(2026, 3, 18)
    # Counting back in days needs no calendar, even outside it.
    assert latest_before(date(2031, 3, 25), 15, "day", CAL) == date(2031, 3, 10)


def test_backward_checks_are_the_ones_the_law_counts_back() -> None:
    back = {(r.id, i) for r in load_rules() for i, c in enumerate(r.checks) if c.get("backward")}
    # Notices "N days before" the activity (39号令 第十条, 拍卖法 第四十五条) count back too.
    notices = {("L01", 0), ("L04", 0)}
    assert back == {("E04", 0), ("E04", 1), ("E05", 0), ("E05", 1), ("G02", 2)} | notices
    for rid, i in back:
        c = next(r for r in load_rules() if r.id == rid).checks[i]
        assert ("deadline" in c["to"] or (rid, i) in notices) and c["compare"] == "at_least"


# --- working-day explanations -----------------------------------------------------------------


def challenge(filed: date, answered: date) -> Project:
    p = Project("procurement")
    p.add("challenge_filed", cst(filed), filed_at=cst(filed), known_at=cst(filed))
    return p.add("challenge_answered", cst(answered), answered_at=cst(answered), in_reply_to="0")


def test_seven_working_days_from_19_october_never_blame_article_203() -> None:
    """7 working days from Monday 19 October 2026 are 20-23 and 26-28 October. Monday 26
    October is a working day: it must not be named a rest day, nor 第203条 invoked."""
    end = period_end(date(2026, 10, 19), 7, "workday", CAL)
    assert end.last == date(2026, 10, 28) and not end.extended
    assert end.skipped == (date(2026, 10, 24), date(2026, 10, 25)) and end.makeup == ()
    res = check("G09", 2, challenge(date(2026, 10, 19), date(2026, 10, 29)))
    assert res.status == "fail"
    en, zh = res.message_en, res.message_zh
    assert "2026-10-28 (working day 7; rest days skipped: 2026-10-24–2026-10-25)" in en
    assert "2026-10-28（第7个工作日；不计休息日 2026-10-24至2026-10-25）" in zh
    for text in (en, zh):
        assert "203" not in text and "2026-10-26" not in text


def test_make_up_working_days_are_named() -> None:
    """From Monday 28 September 2026: 29, 30 September, then the National Day break (1-7
    October), 8, 9 and Saturday 10 October (调休), then 12 and 13 October."""
    res = check("G09", 2, challenge(date(2026, 9, 28), date(2026, 10, 14)))
    assert res.status == "fail"
    assert (
        "2026-10-13 (working day 7; rest days skipped: 2026-10-01–2026-10-07, 2026-10-11; "
        "make-up working days counted: 2026-10-10)"
    ) in res.message_en
    assert "计入调休上班日 2026-10-10" in res.message_zh
    assert status("G09", 2, challenge(date(2026, 9, 28), date(2026, 10, 13))) == "pass"


def test_a_short_working_day_window_is_explained_in_working_days() -> None:
    """A procurement document period of 5 working days from Monday 19 October 2026 (G02)
    that closes on Monday 26 October at noon: short, and not because of 第203条."""
    res = check("G02", 0, sale(date(2026, 10, 19), cst(date(2026, 10, 26), 12), "procurement"))
    assert res.status == "fail"
    assert "2026-10-26 (working day 5; rest days skipped: 2026-10-24–2026-10-25) at 24:00" in (
        res.message_en
    )
    assert "Art. 203(1)" not in res.message_en and "第一款" not in res.message_zh


#: Caveats the English text may carry, each with what the Chinese text must then carry.
CAVEATS = [
    (r"Art\. 203\b(?!\()", "第203条"),
    (r"203\(1\)", "第203条第一款"),
    (r"203\(2\)", "第203条第二款"),
    (r"\b201\b", "第201条"),
    (r"rest days skipped", "不计休息日"),
    (r"make-up working days", "调休上班日"),
    (r"at 24:00", "24时"),
    (r"close of business", "营业时间截止"),
    (r"counted back plainly", "倒数"),
    (r"does not move it", "不适用第203条"),
    (r"outside the official holiday calendar", "不在随附的法定节假日日历内"),
    (r"working day \d+", "个工作日"),
    (r"not recorded", "未记录"),
]
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def explained() -> list[Project]:
    """Projects whose findings carry each kind of caveat."""
    return [
        publicity(date(2026, 3, 16), cst(date(2026, 3, 19), 9)),
        publicity(date(2026, 3, 26), cst(date(2026, 3, 30), 9)),
        publicity(date(2026, 3, 16), cst(date(2026, 3, 19), 9), business_hours="08:30-17:30"),
        before_deadline("E05", 0, date(2026, 3, 13), cst(date(2026, 3, 22), 9)),
        challenge(date(2026, 9, 28), date(2026, 10, 14)),
        challenge(date(2026, 12, 28), date(2027, 1, 12)),
        sale(date(2026, 10, 19), cst(date(2026, 10, 26), 12), "procurement"),
        Project("procurement")
        .add("challenge_filed", cst(date(2026, 9, 28)), filed_at=cst(date(2026, 9, 28)))
        .add("contract_signed", cst(date(2026, 11, 30)), contract_at=cst(date(2026, 11, 30))),
    ]


def test_the_chinese_text_carries_every_caveat_of_the_english_one() -> None:
    seen: set[str] = set()
    for p in explained():
        for res in evaluate(p.records, None, CAL):
            texts = [(res.message_en, res.message_zh)]
            texts += [(f.en, f.zh) for f in res.findings]
            for en, zh in texts:
                assert sorted(set(DATE.findall(en))) == sorted(set(DATE.findall(zh))), (en, zh)
                for pattern, needed in CAVEATS:
                    if re.search(pattern, en):
                        seen.add(pattern)
                        assert needed in zh, (res.rule.id, pattern, en, zh)
    assert seen == {p for p, _ in CAVEATS}, {p for p, _ in CAVEATS} - seen


# --- the calendar ---------------------------------------------------------------------------


def test_a_period_reaching_into_a_year_the_calendar_lacks_cannot_be_evaluated() -> None:
    """A challenge on 28 December 2026 answered on 12 January 2027: the 7 working days run
    into 2027, which the shipped calendar does not cover."""
    assert 2027 not in CAL.years
    res = check("G09", 2, challenge(date(2026, 12, 28), date(2027, 1, 12)))
    assert res.status == "cannot_evaluate", res.message_en
    assert "2027-01-0" in res.message_en and "outside the official holiday calendar" in (
        res.message_en
    )
    # A tender whose 20 days to the deadline reach into 2027 (E01), and a publicity whose
    # last day would be moved by 第203条 only if 2027's rest days were known.
    p = Project().add(
        "tender_notice_published",
        cst(date(2026, 12, 18)),
        issue_start=cst(date(2026, 12, 18)),
        bid_deadline=cst(date(2027, 1, 8), 9, 30),
    )
    assert status("E01", 0, p) == "cannot_evaluate"
    assert status("E10", 1, publicity(date(2026, 12, 30), cst(date(2027, 1, 3), 24))) == (
        "cannot_evaluate"
    )
    # Never a pass, whatever the result would be: but plainly too short is still a fail.
    assert status("E10", 1, publicity(date(2026, 12, 30), cst(date(2027, 1, 1), 24))) == "fail"


def test_each_year_names_the_state_council_notice_it_comes_from() -> None:
    raw = json.loads(resources.files("verifier.rules").joinpath("holidays_cn.json").read_text())
    assert len(CAL.notices) == len(CAL.years)
    for year, notice in zip(CAL.years, CAL.notices, strict=True):
        assert notice.startswith(f"国务院办公厅关于{year}年部分节假日安排的通知（国办发明电〔")
    assert "国办发明电〔2024〕12号" in CAL.notices[CAL.years.index(2025)]
    assert "文号待核" in CAL.notices[CAL.years.index(2026)]
    for mutate, message in [
        (lambda y: y.pop("notice"), "'notice' must be"),
        (lambda y: y.update(document_no="国办发〔2025〕7号"), "is not like"),
        (lambda y: y.update(document_no="国办发明电〔2023〕7号"), "does not match the issue date"),
        (lambda y: y.update(document_no_status="maybe"), "document_no_status"),
        (lambda y: y.update(issued="2020-01-01"), "cannot be this year's"),
        (lambda y: y.pop("issued"), "'issued' must be"),
    ]:
        bad = copy.deepcopy(raw)
        mutate(bad["years"]["2026"])
        with pytest.raises(CalendarError, match=message):
            parse_calendar(bad)
    ok = copy.deepcopy(raw)
    ok["years"]["2026"]["document_no"] = None
    assert "文号未载" in parse_calendar(ok).notices[-1]


# --- real-time witnessing (阿拉善 实施办法 第二十三条) ------------------------------------------


def witnessed(delays_minutes: list[int], late: int | None = None) -> Project:
    """Opening-session events recorded ``delays`` minutes after they occurred; event
    ``late`` is marked late_entry."""
    p = Project()
    t = datetime(2026, 3, 25, 10, 0, tzinfo=CST)
    for k, delay in enumerate(delays_minutes):
        at = t + timedelta(minutes=k)
        p.add("av_recording_started", at.isoformat(), session=f"S{k}")
        p.events[-1]["recorded_at"] = (at + timedelta(minutes=delay)).isoformat()
        if k == late:
            p.events[-1]["late_entry"] = {"reason": "网络中断后补录"}
    return p


def x11(p: Project, bound: int | None = 3600) -> RuleResult:
    """X11 over the project, its bound configured (the shipped catalogue sets none)."""
    rule = next(r for r in load_rules() if r.id == "X11")
    configured = {**rule.checks[0], "max_delay_seconds": bound}
    [res] = evaluate(p.records, [dataclasses.replace(rule, checks=(configured,))], CAL)
    return res


def test_real_time_witnessing_warns_on_events_recorded_late_unless_marked() -> None:
    rule = next(r for r in load_rules() if r.id == "X11")
    assert rule.status == "to-confirm" and rule.severity == "warn"
    assert "第二十三条" in rule.source_zh and "Art. 23" in rule.source_en
    assert set(rule.trade_types) == {"engineering", "procurement", "land", "mining", "property"}
    # Shipped without a bound: not applicable, and says why (never a pass).
    res = check("X11", 0, witnessed([0, 185, 2]))
    assert res.status == "not_applicable" and "max_delay_seconds" in res.message_en
    assert "max_delay_seconds" in res.message_zh
    # Configured (e.g. one hour): an event recorded 3 h 5 min late warns.
    assert x11(witnessed([0, 5, 59])).status == "pass"
    res = x11(witnessed([0, 185, 2]))
    assert res.status == "warn" and res.events == [1]
    assert "3 h 5 min later" in res.message_en and "not marked late_entry" in res.message_en
    assert "迟延 3小时5分" in res.message_zh and "late_entry" in res.message_zh
    assert sorted(DATE.findall(res.message_en)) == sorted(DATE.findall(res.message_zh))
    # Marked late_entry: exempt here (X10 reports it, with its reason).
    assert x11(witnessed([0, 185, 2], late=1)).status == "pass"
    [x10] = evaluate(
        witnessed([0, 185, 2], late=1).records, [r for r in load_rules() if r.id == "X10"], CAL
    )
    assert x10.status == "warn" and "网络中断后补录" in x10.message_zh


def test_a_window_closing_at_24_00_ends_on_that_day_for_what_is_counted_from_it() -> None:
    """G09: without known_at, the day a supplier should have known of the result is the end
    of its announcement (政府采购法实施条例 第五十三条). An announcement that closes at 24:00
    of Monday 30 March 2026 (recorded as 31 March 00:00) ends on 30 March: 7 working days
    from it are 31 March-3 April and 7-9 April (清明 4-6 April), so 10 April is late."""

    def challenged(on: date) -> str:
        p = Project("procurement")
        p.add(
            "award_result_published",
            cst(date(2026, 3, 27)),
            published_at=cst(date(2026, 3, 27)),
            publicity_end=cst(date(2026, 3, 30), 24),
        )
        p.add("challenge_filed", cst(on), filed_at=cst(on), challenge_target="award_result")
        return status("G09", 1, p)

    assert challenged(date(2026, 4, 9)) == "pass"
    assert challenged(date(2026, 4, 10)) == "fail"
