"""Counting legal periods: 民法典 第二百零一条、第二百零三条、第一千二百五十九条.

- 第201条: a period counted in days starts on the day after the starting event; the starting
  day itself is not counted.
- 第203条: when the last day of a period is a statutory rest day, the period ends on the
  first day after the rest days; the last day ends at 24:00.
- 第1259条: "以上、以下、以内、届满" include the stated number.

Working-day periods (工作日) and the rest days of 第203条 come from the State Council's
yearly holiday notices, shipped as data in ``holidays_cn.json`` (weekends, official breaks,
and the weekend days swapped into working days, 调休). A date outside the years that file
covers raises :class:`OutsideCalendar`; the rule engine reports that as "cannot_evaluate",
never as a pass. Dates are taken in China Standard Time (UTC+8), the time of the law.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
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
        notices.append(str(spec.get("notice", "")))
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
    years.sort()
    if not years:
        raise CalendarError("the holiday calendar covers no year")
    if years != list(range(years[0], years[0] + len(years))):
        raise CalendarError("the calendar's years must be contiguous")
    return HolidayCalendar(frozenset(off), frozenset(work), tuple(years), tuple(notices))


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
    """The last day of a period: ``nominal`` by plain counting, ``last`` after 第203条."""

    nominal: date
    last: date

    @property
    def extended(self) -> bool:
        return self.last != self.nominal

    def describe_zh(self) -> str:
        if self.extended:
            return f"{self.last}（{self.nominal}为休息日，依第203条顺延）"
        return str(self.last)

    def describe_en(self) -> str:
        if self.extended:
            return f"{self.last} ({self.nominal} is a rest day; extended under Art. 203)"
        return str(self.last)


def period_end(start: date, n: int, unit: Unit, cal: HolidayCalendar) -> PeriodEnd:
    """Last day of a period of ``n`` days or working days that starts on ``start``.

    The starting day is not counted (第201条). A day-counted period whose last day is a rest
    day ends on the next working day (第203条); a working-day period always ends on one.
    """
    if n < 0:
        raise ValueError(f"a period of {n} days")
    if unit == "day":
        nominal = start + timedelta(days=n)
        last = nominal
        for _ in range(_MAX_REST_RUN):
            if cal.is_workday(last):
                return PeriodEnd(nominal, last)
            last += timedelta(days=1)
        raise CalendarError(f"no working day within {_MAX_REST_RUN} days after {nominal}")
    day, counted = start, 0
    while counted < n:
        day += timedelta(days=1)
        if cal.is_workday(day):
            counted += 1
    return PeriodEnd(start + timedelta(days=n), day)


def within(start: date, act: date, n: int, unit: Unit, cal: HolidayCalendar) -> PeriodEnd | None:
    """Check "``act`` within ``n`` (working) days of ``start``" (第1259条: the n-th day counts).

    Returns None when the act is on time, else the period's end; decides without the
    calendar when the answer does not depend on it (on or before ``start + n`` days is
    always on time, since the n-th working day is never earlier).
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
        try:
            return period_end(start, n, unit, cal)
        except OutsideCalendar:
            nominal = start + timedelta(days=n)
            return PeriodEnd(nominal, nominal)
    end = period_end(start, n, unit, cal)
    return None if act >= end.last else end


Comparison = Literal["within", "at_least"]
