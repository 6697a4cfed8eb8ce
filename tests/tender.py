"""A lawful engineering tender for the verifier's tests, and ways to break one rule at a time.

The tender is ``jianzheng demo``'s (``api/demo.py``): field names follow the event
catalogue, and dates are in 2026 and chosen so that every period of 招标投标法 and its
实施条例 holds, including 民法典 第203条: a period whose last day is a rest day runs to
the next working day.
"""

from __future__ import annotations

import hashlib
from typing import Any

from api import demo
from api.demo import BIDDERS, CST, EXPERTS, PLACE, at

__all__ = ["BIDDERS", "CST", "EXPERTS", "PLACE", "at", "bid_file", "breaking", "lawful_tender"]


def bid_file(i: int, size: int = 3000) -> bytes:
    """Deterministic bytes standing in for bidder i's encrypted bid file."""
    seed = hashlib.sha256(f"bid-{i}".encode()).digest()
    return (seed * (size // 32 + 1))[:size]


def lawful_tender(project: str, files: dict[str, bytes] | None = None) -> list[dict[str, Any]]:
    """The demo's lawful tender with small bid files; ``files`` gets them by hash."""
    data = [bid_file(i) for i in range(len(BIDDERS))]
    if files is not None:
        files.update((hashlib.sha256(d).hexdigest(), d) for d in data)
    return demo.lawful_tender(project, data)


def _find(evs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(e for e in evs if e["type"] == kind)


def breaking(rule: str, project: str) -> list[dict[str, Any]]:
    """The lawful tender with one rule broken."""
    evs = lawful_tender(project)
    if rule == "E01":
        # Documents issued only 13 days before the deadline (12 March to 25 March).
        notice = _find(evs, "tender_notice_published")
        notice["payload"]["issue_start"] = at(3, 12, 10)
        notice["occurred_at"] = at(3, 12, 10)
    elif rule == "E02":
        # Opened half an hour after the deadline, in another room.
        op = _find(evs, "bid_opening_started")
        op["payload"] = {"opening_at": at(3, 25, 10, 30), "place": "开标室5"}
        op["occurred_at"] = at(3, 25, 10, 30)
    elif rule == "E10":
        # Candidates published five days after the report (26 March to 31 March).
        pub = _find(evs, "candidates_published")
        pub["payload"]["publicity_start"] = at(3, 31)
        pub["payload"]["publicity_end"] = at(4, 3, 17)
        pub["occurred_at"] = at(3, 31)
    elif rule == "E12":
        # Contract signed 49 days after the award notice (the limit, with 劳动节, is 6 May).
        c = _find(evs, "contract_signed")
        c["payload"]["contract_at"] = at(5, 20, 10)
        c["occurred_at"] = at(5, 20, 10)
    else:
        raise ValueError(rule)
    return evs
