"""The verifier's report: its checks, the project's timeline, and how they are collected.

:mod:`verifier.bundle` fills a :class:`VerificationReport`; :mod:`verifier.report` renders
it as text, JSON or HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

CheckStatus = Literal["pass", "fail", "warn", "cannot_evaluate"]
#: At most this many details per check, so a broken bundle cannot flood the report.
MAX_DETAILS = 100


@dataclass
class Check:
    """One verification step: its id, result, reason (English and Chinese) and details."""

    id: str
    title_zh: str
    title_en: str
    status: CheckStatus
    message: str
    message_zh: str
    required: bool = True
    details: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "message": self.message,
            "message_zh": self.message_zh,
            "title": self.title_en,
            "title_zh": self.title_zh,
            "required": self.required,
        }
        if self.details:
            out["details"] = self.details
        out.update(self.extra)
        return out


@dataclass
class TimelineEntry:
    """One record in the project's timeline, as the report shows it."""

    seq: int
    index: int
    type: str
    occurred_at: str
    recorded_at: str
    actor: str
    attachments: int


@dataclass
class VerificationReport:
    """Everything the verifier found, ready to render as text, JSON or HTML."""

    checks: list[Check]
    project: str = ""
    trade_type: str = ""
    trusted: bool = False
    exported_at: str = ""
    log_origin: str = ""
    checkpoint_size: int = 0
    records: int = 0
    timeline: list[TimelineEntry] = field(default_factory=list)
    rules: list[Any] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True only when no check failed and every required check passed."""
        return all(c.status != "fail" for c in self.checks) and all(
            c.status == "pass" for c in self.checks if c.required
        )

    def check(self, check_id: str) -> Check:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "trusted": self.trusted,
            "project": self.project,
            "trade_type": self.trade_type,
            "log_origin": self.log_origin,
            "checkpoint_size": self.checkpoint_size,
            "records": self.records,
            "exported_at": self.exported_at,
            "checks": [c.to_json() for c in self.checks],
        }


class CheckList:
    """Collects checks in order; details are bounded so a broken bundle cannot flood."""

    def __init__(self) -> None:
        self.items: list[Check] = []

    def add(
        self,
        cid: str,
        title: tuple[str, str],
        status: CheckStatus,
        en: str,
        zh: str,
        *,
        required: bool = True,
        details: Sequence[str] = (),
        **extra: Any,
    ) -> Check:
        d = list(details[:MAX_DETAILS])
        if len(details) > MAX_DETAILS:
            d.append(f"... and {len(details) - MAX_DETAILS} more")
        c = Check(cid, title[0], title[1], status, en, zh, required, d, dict(extra))
        self.items.append(c)
        return c

    def passed(self, cid: str, title: tuple[str, str], en: str, zh: str, **extra: Any) -> Check:
        return self.add(cid, title, "pass", en, zh, **extra)

    def failed_on(
        self,
        cid: str,
        title: tuple[str, str],
        problems: Problems,
        en: str,
        zh: str,
        **extra: Any,
    ) -> Check:
        """A failing check over ``problems``: ``en``/``zh`` lead its message, which ends by
        naming the first problem; all of them (bounded) are its details."""
        return self.add(
            cid,
            title,
            "fail",
            en + problems[0],
            zh + problems.zh[0],
            details=problems,
            details_zh=problems.zh[:MAX_DETAILS],
            **extra,
        )


class Problems(list[str]):
    """Problems found by one check: English in the list, Chinese alongside (same order)."""

    def __init__(self) -> None:
        super().__init__()
        self.zh: list[str] = []

    def append(self, en: str) -> None:
        self.add(en, en)

    def add(self, en: str, zh: str) -> None:
        super().append(en)
        self.zh.append(zh)
