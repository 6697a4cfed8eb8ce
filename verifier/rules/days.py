"""Counting legal periods: 民法典 第二百条至第二百零四条、第一千二百五十九条.

- 第200条: periods are counted in calendar years, months, days and hours; we count days,
  in Beijing time (China Standard Time, UTC+8), the time of the law.
- 第201条第一款: a period counted in days starts on the day after the starting event; the
  starting day itself is not counted.
- 第203条第一款: when the last day of a period is a statutory rest day, the period ends on
  the first day after the rest days. 第二款: the last day ends at 24:00, or, where there are
  business hours, when business stops. So a window (a sale, a publicity, a listing) must be
  open until that instant: :func:`window_lasts` compares instants, not dates.
- 第204条: this method applies unless a law provides otherwise. Rules that fix a point
  *before* a deadline ("截止时间至少15日前") are counted back plainly (:func:`latest_before`):
  第203条 extends a period for the party who must act, it does not move such a point.
- 第1259条: "以上、以下、以内、届满" include the stated number.

Working-day periods (工作日) and the rest days of 第203条 come from the State Council's
yearly holiday notices, shipped as data in ``holidays_cn.json`` (weekends, official breaks,
and the weekend days swapped into working days, 调休). A working-day period skips rest days
and counts 调休 days; 第203条 has nothing to move there, and explanations say which days
were skipped and counted. A date outside the years that file covers raises
:class:`OutsideCalendar`; the rule engine reports that as "cannot_evaluate", never as a pass.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from importlib import resources
from typing import Any, Literal

from verifier.errors import VerifierError

CST = timezone(timedelta(hours=8), "CST")
Unit = Literal["day", "workday"]
#: No official break is longer than this; a longer search means corrupt data.
_MAX_REST_RUN = 31


class CalendarError(ValueError, VerifierError):
    """The holiday calendar file is malformed."""


class OutsideCalendar(LookupError, VerifierError):
    """A date the shipped holiday calendar does not cover, so its status is unknown."""

    def __init__(self, day: date, span: str) -> None:
        super().__init__(
            f"{day.isoformat()} is outside the official holiday calendar shipped with the "
            f"verifier (it covers {span})"
        )
        self.day = day
        self.span = span


@dataclass(frozen=True)
class HolidayCalendar:
    """Official rest days and swapped working days, per covered year."""

    off: frozenset[date]
    work: frozenset[date]
    years: tuple[int, ...]
    notices: tuple[str, ...]

    @property
    def span(self) -> str:
        if not self.years:
            return "no year"
        return f"{self.years[0]}–{self.years[-1]}"

    def covers(self, day: date) -> bool:
        return day.year in self.years

    def is_workday(self, day: date) -> bool:
        """True on working days; raises :class:`OutsideCalendar` for uncovered years."""
        if not self.covers(day):
            raise OutsideCalendar(day, self.span)
        if day in self.work:
            return True
        if day in self.off:
            return False
        return day.weekday() < 5


def parse_calendar(obj: Any) -> HolidayCalendar:
    """Validate the calendar JSON: known years, ISO dates inside their year, no overlaps."""
    if not isinstance(obj, dict) or not isinstance(obj.get("years"), dict):
        raise CalendarError("holiday calendar must be an object with a 'years' object")
    off: set[date] = set()
    work: set[date] = set()
    years: list[int] = []
    notices: list[str] = []
    for key, spec in obj["years"].items():
        if not key.isdigit() or not isinstance(spec, dict):
            raise CalendarError(f"year {key!r}: want a four-digit year and an object")
        year = int(key)
        years.append(year)
        notices.append(_notice(year, spec))
        try:
            for first, last in spec["off"]:
                d, end = date.fromisoformat(first), date.fromisoformat(last)
                if d > end or d.year != year or end.year != year:
                    raise CalendarError(f"year {year}: bad range {first}..{last}")
                while d <= end:
                    off.add(d)
                    d += timedelta(days=1)
            for w in spec["work"]:
                d = date.fromisoformat(w)
                if d.year != year or d.weekday() < 5:
                    raise CalendarError(f"year {year}: swapped working day {w} is not a weekend")
                work.add(d)
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, CalendarError):
                raise
            raise CalendarError(f"year {year}: {e}") from None
    clash = off & work
    if clash:
        raise CalendarError(f"{min(clash)} is both a rest day and a working day")
    notices = [n for _, n in sorted(zip(years, notices, strict=True))]
    years.sort()
    if not years:
        raise CalendarError("the holiday calendar covers no year")
    if years != list(range(years[0], years[0] + len(years))):
        raise CalendarError("the calendar's years must be contiguous")
    return HolidayCalendar(frozenset(off), frozenset(work), tuple(years), tuple(notices))


_NOTICE_STATUSES = ("confirmed", "to-confirm")
_DOCUMENT_NO_RE = re.compile(r"国办发明电〔(\d{4})〕\d{1,3}号")


def _notice(year: int, spec: dict[str, Any]) -> str:
    """The State Council notice a year comes from (its title, number and date), checked:
    every year names one, so each rest day can be traced to its source."""
    title = spec.get("notice")
    if title != f"国务院办公厅关于{year}年部分节假日安排的通知":
        raise CalendarError(
            f"year {year}: 'notice' must be 国务院办公厅关于{year}年部分节假日安排的通知"
        )
    number = spec.get("document_no")
    status = spec.get("document_no_status")
    m = _DOCUMENT_NO_RE.fullmatch(number) if isinstance(number, str) else None
    if number is not None and m is None:
        raise CalendarError(
            f"year {year}: document_no {number!r} is not like 国办发明电〔2025〕7号"
        )
    if status not in _NOTICE_STATUSES:
        raise CalendarError(f"year {year}: document_no_status must be one of {_NOTICE_STATUSES}")
    try:
        issued = date.fromisoformat(str(spec.get("issued")))
    except ValueError:
        raise CalendarError(
            f"year {year}: 'issued' must be the notice's date, YYYY-MM-DD"
        ) from None
    if not year - 1 <= issued.year <= year:
        raise CalendarError(f"year {year}: a notice issued {issued} cannot be this year's")
    if m is not None and int(m[1]) != issued.year:
        raise CalendarError(f"year {year}: {number} does not match the issue date {issued}")
    no = number or "文号未载"
    if status != "confirmed":
        no += "，文号待核"
    return f"{title}（{no}，{issued}）"


@functools.cache
def load_calendar() -> HolidayCalendar:
    """The calendar shipped with the verifier (``holidays_cn.json``)."""
    text = resources.files("verifier.rules").joinpath("holidays_cn.json").read_text("utf-8")
    return parse_calendar(json.loads(text))


def local_date(instant: datetime) -> date:
    """The calendar date of an instant in China Standard Time."""
    return instant.astimezone(CST).date()


@dataclass(frozen=True)
class PeriodEnd:
    """The last day of a period and how it was reached.

    ``nominal`` is the start plus ``n`` calendar days; ``last`` the day the period really
    ends. For a period in days they differ only when 第203条 moved the end past rest days
    (``skipped``); for a period in working days ``last`` is the ``n``-th working day, and
    ``skipped`` lists the rest days passed over while counting and ``makeup`` the weekend
    days worked instead (调休) that were counted. 第203条 never applies to the latter: a
    working-day period cannot end on a rest day.
    """

    nominal: date
    last: date
    unit: Unit = "day"
    n: int = 0
    skipped: tuple[date, ...] = ()
    makeup: tuple[date, ...] = ()

    @property
    def extended(self) -> bool:
        """Whether 第203条 moved the end (periods in days only)."""
        return self.unit == "day" and self.last != self.nominal

    def describe_zh(self) -> str:
        if self.unit == "workday":
            parts = [f"第{self.n}个工作日"]
            if self.skipped:
                parts.append(f"不计休息日 {span_text(self.skipped, '至', '、')}")
            if self.makeup:
                parts.append(f"计入调休上班日 {span_text(self.makeup, '至', '、')}")
            return f"{self.last}（{'；'.join(parts)}）"
        if self.extended:
            rest = span_text(self.skipped, "至", "、")
            return f"{self.last}（{rest}为休息日，依《民法典》第203条顺延）"
        return str(self.last)

    def describe_en(self) -> str:
        if self.unit == "workday":
            parts = [f"working day {self.n}"]
            if self.skipped:
                parts.append(f"rest days skipped: {span_text(self.skipped, '–', ', ')}")
            if self.makeup:
                parts.append(f"make-up working days counted: {span_text(self.makeup, '–', ', ')}")
            return f"{self.last} ({'; '.join(parts)})"
        if self.extended:
            rest = span_text(self.skipped, "–", ", ")
            return f"{self.last} ({rest}: rest day(s); extended under Civil Code Art. 203)"
        return str(self.last)


def span_text(days: Sequence[date], dash: str, sep: str) -> str:
    """Sorted days written as runs: ``2026-10-01–2026-10-08, 2026-10-11``."""
    runs: list[list[date]] = []
    for d in sorted(days):
        if runs and d == runs[-1][1] + timedelta(days=1):
            runs[-1][1] = d
        else:
            runs.append([d, d])
    return sep.join(str(a) if a == b else f"{a}{dash}{b}" for a, b in runs)


def period_end(start: date, n: int, unit: Unit, cal: HolidayCalendar) -> PeriodEnd:
    """Last day of a period of ``n`` days or working days that starts on ``start``.

    The starting day is not counted (第201条第一款). A day-counted period whose last day is
    a rest day ends on the next working day (第203条第一款); a working-day period counts
    only working days, including 调休 weekend working days, so it always ends on one.
    """
    if n < 0:
        raise ValueError(f"a period of {n} days")
    nominal = start + timedelta(days=n)
    if unit == "day":
        last = nominal
        skipped: list[date] = []
        for _ in range(_MAX_REST_RUN):
            if cal.is_workday(last):
                return PeriodEnd(nominal, last, unit, n, tuple(skipped))
            skipped.append(last)
            last += timedelta(days=1)
        raise CalendarError(f"no working day within {_MAX_REST_RUN} days after {nominal}")
    day, counted = start, 0
    rest: list[date] = []
    makeup: list[date] = []
    while counted < n:
        day += timedelta(days=1)
        if cal.is_workday(day):
            counted += 1
            if day.weekday() >= 5:
                makeup.append(day)
        else:
            rest.append(day)
    return PeriodEnd(nominal, day, unit, n, tuple(rest), tuple(makeup))


def within(start: date, act: date, n: int, unit: Unit, cal: HolidayCalendar) -> PeriodEnd | None:
    """Check "``act`` within ``n`` (working) days of ``start``" (第1259条: the n-th day counts).

    Returns None when the act is on time, else the period's end; decides without the
    calendar when the answer does not depend on it (on or before ``start + n`` days is
    always on time, since the n-th working day is never earlier). Dates suffice: an act on
    the last day is before its 24:00 (第203条第二款) whatever the hour.
    """
    if act <= start + timedelta(days=n):
        return None
    end = period_end(start, n, unit, cal)
    return None if act <= end.last else end


def at_least(start: date, act: date, n: int, unit: Unit, cal: HolidayCalendar) -> PeriodEnd | None:
    """Check "at least ``n`` (working) days from ``start`` to ``act``", the act's day counting.

    Returns None when long enough, else the earliest lawful day; an act before
    ``start + n`` days is too early whatever the calendar says.
    """
    if act < start + timedelta(days=n):
        return _end_or_nominal(start, n, unit, cal)
    end = period_end(start, n, unit, cal)
    return None if act >= end.last else end


def _end_or_nominal(start: date, n: int, unit: Unit, cal: HolidayCalendar) -> PeriodEnd:
    """The period's end for an explanation; its plain end when the calendar lacks the year."""
    try:
        return period_end(start, n, unit, cal)
    except OutsideCalendar:
        nominal = start + timedelta(days=n)
        return PeriodEnd(nominal, nominal, "day", n)


#: A window end recorded at 23:59:59 (many systems cannot write 24:00) stands for 24:00.
END_OF_DAY_SLACK = timedelta(seconds=1)
_HOURS_RE = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])")


def parse_business_hours(value: object) -> tuple[time, time]:
    """A notice's ``business_hours``, ``"HH:MM-HH:MM"`` in Beijing time, opening before
    closing (ValueError otherwise)."""
    m = _HOURS_RE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"{value!r} is not business hours written HH:MM-HH:MM, e.g. 08:30-17:30")
    opens = time(int(m[1]), int(m[2]))
    closes = time(int(m[3]), int(m[4]))
    if closes <= opens:
        raise ValueError(f"business hours {value!r} close before they open")
    return opens, closes


def day_end(day: date, close: time | None = None) -> datetime:
    """The instant a period's last day ends (民法典 第203条第二款): 24:00 Beijing time, or
    the close of business where business hours are set."""
    if close is None:
        return datetime.combine(day + timedelta(days=1), time(0), CST)
    return datetime.combine(day, close, CST)


def window_lasts(
    start: date, end_at: datetime, n: int, unit: Unit, cal: HolidayCalendar, close: time | None
) -> PeriodEnd | None:
    """Check that a window opened on ``start`` (sale, publicity, listing, disclosure) and
    closing at the instant ``end_at`` lasts at least ``n`` (working) days.

    The window must stay open to the end of its last day (第201条 for the first day,
    第203条 for the last): 24:00, or ``close`` of business hours; a window that closes in
    the morning of its last day is short. Returns None when it lasts, else its end.
    """

    def due(day: date) -> datetime:
        return day_end(day, close) - (END_OF_DAY_SLACK if close is None else timedelta(0))

    if end_at < due(start + timedelta(days=n)):
        # Short whatever the calendar says: the last day is never before the n-th.
        return _end_or_nominal(start, n, unit, cal)
    end = period_end(start, n, unit, cal)
    return None if end_at >= due(end.last) else end


def latest_before(deadline: date, n: int, unit: Unit, cal: HolidayCalendar) -> date:
    """The last day an act may happen "at least ``n`` (working) days before ``deadline``"
    ("截止时间至少15日前", "10日前").

    Counted back plainly, as 第201条 counts forward (the act's day is not counted, the
    deadline's is). 第203条 is not applied: it extends a period for the party who must act
    within it; it does not move a point fixed before a deadline (第204条: the method of the
    law applies unless a law provides otherwise; see docs/bundle-format.md). Counting back
    in days needs no calendar.
    """
    if unit == "day" or n == 0:
        return deadline - timedelta(days=n)
    day, counted = deadline, 0
    for _ in range(n * 7 + _MAX_REST_RUN):
        if cal.is_workday(day):
            counted += 1
        day -= timedelta(days=1)
        if counted == n:
            return day
    raise CalendarError(f"{n} working days before {deadline} not found")


Comparison = Literal["within", "at_least"]
