"""The verifier's report: its checks, its two verdicts, the timeline, and how they are collected.

:mod:`verifier.bundle` fills a :class:`VerificationReport`; :mod:`verifier.report` renders
it as text, JSON or HTML.

Two questions, two verdicts (issue 12): **integrity** (完整性/真实性: is this what the log
committed, signed, witnessed and timestamped, with its files?) and **compliance** (合规性:
did the recorded process follow the rules?). A genuine bundle of a process that broke a
rule is genuine evidence of that breach; the verdicts never blur the two. Indicators
(e.g. collusion indicators, issue 17) are shown under compliance as warnings for a person to
examine; they change neither verdict nor the exit code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

#: ``not_applicable``: the check had nothing to judge (a rule whose events the project never
#: recorded). It is never a pass, and never counts against a verdict.
CheckStatus = Literal["pass", "fail", "warn", "cannot_evaluate", "not_applicable"]
#: A verdict: ``holds``; ``fails``; ``warns`` (compliance only: a warning, no failure);
#: ``cannot_evaluate`` (what the verdict rests on could not be established).
VerdictStatus = Literal["holds", "fails", "warns", "cannot_evaluate"]
Aspect = Literal["integrity", "compliance"]
#: Process exit codes of ``jianzheng verify`` (also ``python -m verifier``); documented in
#: docs/bundle-format.md and the README.
EXIT_OK = 0
EXIT_INTEGRITY = 1
EXIT_USAGE = 2
EXIT_COMPLIANCE = 3
#: The id of the check standing for the rule engine itself, when it could not run at all.
RULES_CHECK = "rules"
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

    @property
    def aspect(self) -> Aspect:
        """Which verdict this check counts towards: the process rules are compliance."""
        return "compliance" if self.extra.get("rule") or self.id == RULES_CHECK else "integrity"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "message": self.message,
            "message_zh": self.message_zh,
            "title": self.title_en,
            "title_zh": self.title_zh,
            "required": self.required,
            "aspect": self.aspect,
        }
        if self.details:
            out["details"] = self.details
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class AttachmentRef:
    """An attachment a record cites: its name and SHA-256 (hex)."""

    name: str
    sha256: str
    size: int = 0


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
    #: The payload's fields as recorded (sealed values only when opened), for key facts.
    facts: dict[str, Any] = field(default_factory=dict)
    files: list[AttachmentRef] = field(default_factory=list)
    #: A sealed record (a bid, a deposit) whose openings the bundle lacks: its sealed
    #: values are not among the facts.
    sealed: bool = False
    #: A record of the project's sealed chain (``<project>~sealed``), numbered apart.
    sealed_chain: bool = False
    late_entry: str | None = None


@dataclass
class Reason:
    """One reason behind a verdict: the check it comes from and what it said."""

    check: str
    status: CheckStatus
    message: str
    message_zh: str
    title: str = ""
    title_zh: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "title": self.title,
            "title_zh": self.title_zh,
            "message": self.message,
            "message_zh": self.message_zh,
        }


_VERDICT_WORDS: dict[tuple[Aspect, VerdictStatus], tuple[str, str]] = {
    ("integrity", "holds"): ("成立", "HOLDS"),
    ("integrity", "fails"): ("不成立", "FAILS"),
    ("integrity", "cannot_evaluate"): ("无法确认", "NOT ESTABLISHED"),
    ("compliance", "holds"): ("符合", "HOLDS"),
    ("compliance", "fails"): ("不符合", "FAILS"),
    ("compliance", "warns"): ("有警示", "WARNINGS"),
    ("compliance", "cannot_evaluate"): ("无法判断", "CANNOT BE EVALUATED"),
}
_ASPECT_TITLES: dict[Aspect, tuple[str, str]] = {
    "integrity": ("完整性与真实性", "Integrity and authenticity"),
    "compliance": ("合规性", "Compliance"),
}


@dataclass
class Verdict:
    """One of the report's two verdicts, with the reasons a reader needs to trust it."""

    aspect: Aspect
    status: VerdictStatus
    reasons: list[Reason] = field(default_factory=list)
    #: Said first, before the reasons: what the verdict covers (or why it cannot be relied on).
    notes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return self.status == "holds"

    @property
    def title(self) -> tuple[str, str]:
        """(Chinese, English) name of the question, e.g. 合规性 / Compliance."""
        return _ASPECT_TITLES[self.aspect]

    @property
    def word(self) -> tuple[str, str]:
        """(Chinese, English) answer, e.g. 成立 / HOLDS."""
        return _VERDICT_WORDS[(self.aspect, self.status)]

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "holds": self.holds,
            "title": self.title[1],
            "title_zh": self.title[0],
            "verdict": self.word[1],
            "verdict_zh": self.word[0],
            "notes": [en for _, en in self.notes],
            "notes_zh": [zh for zh, _ in self.notes],
            "reasons": [r.to_json() for r in self.reasons],
        }


@dataclass
class Indicator:
    """A warning for a person to examine, shown under compliance (e.g. a collusion
    indicator, 招标投标法实施条例 第四十条, issue 17). Never a verdict: indicators change
    neither the compliance verdict nor the exit code."""

    id: str
    title_zh: str
    title_en: str
    message_zh: str
    message: str
    source_zh: str = ""
    source: str = ""
    #: How strong the sign is, in the indicator's own terms (e.g. "strong", "weak").
    strength: str = ""
    events: list[int] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title_en,
            "title_zh": self.title_zh,
            "message": self.message,
            "message_zh": self.message_zh,
            "source": self.source,
            "source_zh": self.source_zh,
            "strength": self.strength,
            "events": self.events,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class TrustKeys:
    """The keys the integrity verdict rests on, in full, and where they came from."""

    log: str
    witnesses: tuple[str, ...] = ()
    quorum: int = 0
    tsa_ca_sha256: str | None = None
    #: True: from the reviewer's trust file; False: taken from the bundle itself.
    from_trust_file: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "witnesses": list(self.witnesses),
            "quorum": self.quorum,
            "tsa_ca_sha256": self.tsa_ca_sha256,
            "from_trust_file": self.from_trust_file,
        }


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
    #: Warnings for a person to examine, under compliance; they change no verdict.
    indicators: list[Indicator] = field(default_factory=list)
    #: What the indicators were computed from (verifier.indicators: records read, sealed
    #: records left unopened, thresholds), or why they were not (``computed`` false).
    indicators_about: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    #: SHA-256 (hex) of the bundle file as verified; "" when it was read from a stream.
    bundle_sha256: str = ""
    verifier_version: str = ""
    #: When the verification ran (RFC 3339, UTC).
    verified_at: str = ""
    trust_keys: TrustKeys | None = None

    @property
    def ok(self) -> bool:
        """True only when no check failed and every required check passed (or had nothing
        to judge). Kept for callers of the single verdict; see :attr:`integrity` and
        :attr:`compliance`."""
        return all(c.status != "fail" for c in self.checks) and all(
            c.status in ("pass", "not_applicable") for c in self.checks if c.required
        )

    @property
    def integrity(self) -> Verdict:
        """Signatures, witness quorum, timestamp, inclusion, chains, files, payloads and
        sealed commitments: fails on any failure; not established when a required check
        could not be made; otherwise holds, with every caveat (advisory warnings, no
        trust file) said in its notes."""
        checks = [c for c in self.checks if c.aspect == "integrity"]
        failed = [c for c in checks if c.status == "fail"]
        # A failed required check is a reason once, under failed, not again under unsure.
        unsure = [
            c for c in checks if c.required and c.status not in ("pass", "not_applicable", "fail")
        ]
        notes: list[tuple[str, str]] = []
        if not self.trusted:
            notes.append(
                (
                    "未提供信任文件：仅检查了内部一致性，日志与见证人密钥取自证据包本身。",
                    "No trust file: internal consistency only; the log and witness keys "
                    "were taken from the bundle itself.",
                )
            )
        if failed:
            return Verdict("integrity", "fails", [_reason(c) for c in failed + unsure], notes)
        if unsure:
            return Verdict("integrity", "cannot_evaluate", [_reason(c) for c in unsure], notes)
        caveats = [c for c in checks if c.status not in ("pass", "not_applicable")]
        held = [c for c in checks if c.status == "pass"]
        return Verdict("integrity", "holds", [_reason(c) for c in caveats + held], notes)

    @property
    def compliance(self) -> Verdict:
        """The process rules: fails when a rule fails; warns when one warns; cannot be
        evaluated when one could not be judged or no rule covers the project. Rules that
        do not apply are listed as such, never as passes; indicators do not count."""
        checks = [c for c in self.checks if c.aspect == "compliance"]
        notes: list[tuple[str, str]] = []
        if not self.integrity.holds:
            notes.append(
                (
                    "完整性不成立：以下合规性结论所依据的记录不可采信。",
                    "Integrity does not hold: the records this verdict reads cannot be relied on.",
                )
            )
        if not checks:
            notes.append(
                (
                    f"没有适用于交易类型“{self.trade_type or '未知'}”的程序规则，未作合规性检查。",
                    f"No process rules cover trade type {self.trade_type or '(unknown)'!r}: "
                    "compliance was not checked.",
                )
            )
            return Verdict("compliance", "cannot_evaluate", [], notes)
        by = {s: [c for c in checks if c.status == s] for s in ("fail", "warn", "cannot_evaluate")}
        status: VerdictStatus = (
            "fails"
            if by["fail"]
            else "warns"
            if by["warn"]
            else "cannot_evaluate"
            if by["cannot_evaluate"]
            else "holds"
        )
        if status == "holds" and not any(c.status == "pass" for c in checks):
            # Nothing any rule is about was recorded: nothing was judged.
            status = "cannot_evaluate"
            notes.append(
                (
                    "项目未记录任何规则涉及的事件，无从判断。",
                    "The project records none of the events the rules are about: nothing "
                    "was judged.",
                )
            )
        shown = by["fail"] + by["warn"] + by["cannot_evaluate"]
        shown += [c for c in checks if c.status == "pass"]
        shown += [c for c in checks if c.status == "not_applicable"]
        return Verdict("compliance", status, [_reason(c) for c in shown], notes)

    @property
    def exit_code(self) -> int:
        """0 both verdicts hold; 1 integrity does not; 3 integrity holds, compliance not."""
        if not self.integrity.holds:
            return EXIT_INTEGRITY
        return EXIT_OK if self.compliance.holds else EXIT_COMPLIANCE

    def check(self, check_id: str) -> Check:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "integrity": self.integrity.to_json(),
            "compliance": self.compliance.to_json(),
            "exit_code": self.exit_code,
            "trusted": self.trusted,
            "project": self.project,
            "trade_type": self.trade_type,
            "log_origin": self.log_origin,
            "checkpoint_size": self.checkpoint_size,
            "records": self.records,
            "exported_at": self.exported_at,
            "bundle_sha256": self.bundle_sha256,
            "verifier_version": self.verifier_version,
            "verified_at": self.verified_at,
            "trust_keys": self.trust_keys.to_json() if self.trust_keys else None,
            "checks": [c.to_json() for c in self.checks],
            "indicators": [i.to_json() for i in self.indicators],
            "indicators_about": self.indicators_about,
        }


def _reason(c: Check) -> Reason:
    return Reason(c.id, c.status, c.message, c.message_zh, c.title_en, c.title_zh)


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
