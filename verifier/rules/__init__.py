"""Process rules as data (``rules.json``), the holiday calendar, and the engine that applies them.

See :mod:`verifier.rules.engine` for the check kinds and :mod:`verifier.rules.days` for
day counting under 民法典 第201、203条.
"""

from verifier.rules.days import HolidayCalendar, OutsideCalendar, load_calendar
from verifier.rules.engine import (
    Finding,
    Rule,
    RuleCatalogueError,
    RuleResult,
    Timeline,
    evaluate,
    load_rules,
    parse_rules,
)

__all__ = [
    "Finding",
    "HolidayCalendar",
    "OutsideCalendar",
    "Rule",
    "RuleCatalogueError",
    "RuleResult",
    "Timeline",
    "evaluate",
    "load_calendar",
    "load_rules",
    "parse_rules",
]
