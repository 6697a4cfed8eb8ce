"""The ledger's one clock: every ``recorded_at`` and checkpoint time comes from here."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC; tests inject their own :class:`Clock`."""

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time(), UTC)


def rfc3339(dt: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision, e.g. ``2026-11-24T09:31:05.123Z``."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
