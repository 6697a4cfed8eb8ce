"""Process order: which event may follow which, kept as data in ``catalogue.json``.

An append-only ledger cannot take back what it accepted, so an event out of process order
(a bid opening before any notice, a bid after the opening, a contract before the award
notice) is refused when it is posted. The rules live in the catalogue's ``process_order``
section; this module parses them, keeps the little a project's history must say for them
(:class:`OrderState`: the first record of each event type a rule names, the suspensions
still open), and checks one event against that state. The sequencer runs the check under
the writer lock against the project's committed tail, so two workers cannot race past it.

Four rule kinds:

``requires``
    ``events`` need an earlier record of one of ``after_any`` (招标投标法 第三十四条: the
    opening follows a notice or an invitation).
``not_after``
    ``events`` are refused once one of ``once_any`` is recorded (第二十八条: no bid after
    the deadline and opening).
``only_after``
    once ``once`` is recorded, only ``allowed`` may follow (实施条例 第三十一条: after a
    termination, disputes, deposit refunds and archiving).
``while_open``
    between ``opened_by`` and the ``closed_by`` event naming it, only ``allowed`` may
    follow (实施条例 第二十二、五十四、六十二条: a suspended activity).

A platform that must record a fact late (after a system fault, say) marks the event
``late_entry``; it is committed anyway, and the verifier shows it as a warning.

The catalogue's fields of type ``reference`` name the event types a reply may answer: a
reply names what it answers by that event's ``idempotency_key`` or its log ``index``; the
sequencer resolves it (:meth:`Sequencer._resolve`) and the record keeps the resolved
``index`` and ``seq`` beside the posted member.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "EMPTY_STATE",
    "KINDS",
    "Mark",
    "OrderRule",
    "OrderState",
    "OrderViolation",
    "ProcessOrder",
    "ReferenceProblem",
    "parse_process_order",
    "posted_reference",
]

from ledger.errors import LedgerError
from ledger.json_shape import expect_keys, expect_object, expect_text

KINDS = ("requires", "not_after", "only_after", "while_open")
_RULE_KEYS = frozenset(
    {"id", "kind", "title_zh", "title_en", "sources", "status", "trade_types", "note"}
)
_KIND_KEYS: dict[str, frozenset[str]] = {
    "requires": frozenset({"events", "after_any"}),
    "not_after": frozenset({"events", "once_any"}),
    "only_after": frozenset({"once", "allowed"}),
    "while_open": frozenset({"opened_by", "closed_by", "closing_field", "allowed"}),
}


class OrderCatalogueError(ValueError, LedgerError):
    """The ``process_order`` section is malformed."""


@dataclass(frozen=True, slots=True)
class Mark:
    """Where an earlier record sits: its type, per-project ``seq`` and log ``index``."""

    type: str
    seq: int
    index: int


@dataclass(frozen=True, slots=True)
class OrderState:
    """What the order rules need to know of a project's committed history."""

    #: First record of each event type some rule looks back for.
    seen: Mapping[str, Mark]
    #: Intervals still open (e.g. suspensions not yet resumed), oldest first.
    open: tuple[Mark, ...] = ()


EMPTY_STATE = OrderState(MappingProxyType({}))


@dataclass(frozen=True)
class OrderRule:
    """One entry of ``process_order.rules``."""

    id: str
    kind: Literal["requires", "not_after", "only_after", "while_open"]
    title_zh: str
    title_en: str
    sources: tuple[str, ...]
    status: str
    trade_types: tuple[str, ...]
    #: requires / not_after: the events the rule is about.
    events: frozenset[str] = frozenset()
    #: requires: one of these must come first; not_after: none of these may come first.
    earlier: tuple[str, ...] = ()
    #: only_after: the event after which only ``allowed`` may follow.
    once: str = ""
    #: while_open: the events that open and close the interval, and the closing
    #: event's reference field naming the interval it closes.
    opened_by: str = ""
    closed_by: str = ""
    closing_field: str = ""
    allowed: frozenset[str] = frozenset()
    note: str = ""

    def cited(self) -> str:
        return "; ".join(self.sources)


@dataclass(frozen=True)
class OrderViolation:
    """An event that breaks a process-order rule, and the earlier record it conflicts with."""

    rule: OrderRule
    type: str
    #: The earlier record the event conflicts with; None when a required one is missing.
    conflicts_with: Mark | None

    @property
    def message(self) -> str:
        r = self.rule
        c = self.conflicts_with
        if r.kind == "requires":
            need = " or ".join(r.earlier)
            what = f"{self.type} needs an earlier {need} in this project, and none is recorded"
        elif c is None:  # not reached: the other kinds always name the earlier record
            what = f"{self.type} is out of order"
        elif r.kind == "while_open":
            what = (
                f"{self.type} may not be recorded while the {c.type} at seq {c.seq} "
                f"(index {c.index}) is open; allowed meanwhile: {', '.join(sorted(r.allowed))}"
            )
        else:
            what = f"{self.type} may not follow the {c.type} at seq {c.seq} (index {c.index})"
        return (
            f"{what} (rule {r.id}: {r.title_en}; {r.cited()}). If the fact really happened "
            'and is recorded late, mark the event "late_entry": {"reason": "..."}'
        )

    @property
    def message_zh(self) -> str:
        r = self.rule
        c = self.conflicts_with
        if r.kind == "requires":
            what = f"本项目此前未记录 {'、'.join(r.earlier)}，不能记录 {self.type}"
        elif c is None:
            what = f"{self.type} 不符合流程顺序"
        elif r.kind == "while_open":
            what = f"{c.type}（seq {c.seq}，index {c.index}）尚未结束，期间不能记录 {self.type}"
        else:
            what = f"{self.type} 不能在 {c.type}（seq {c.seq}，index {c.index}）之后记录"
        return (
            f"{what}（规则 {r.id}：{r.title_zh}；{r.cited()}）。如确属事后补录，"
            '请在事件中注明 "late_entry": {"reason": "..."}'
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.rule.id,
            "kind": self.rule.kind,
            "title_zh": self.rule.title_zh,
            "title_en": self.rule.title_en,
            "sources": list(self.rule.sources),
        }
        c = self.conflicts_with
        if c is not None:
            out["conflicts_with"] = {"type": c.type, "seq": c.seq, "index": c.index}
        return out


class ReferenceProblem(ValueError, LedgerError):
    """A reference field that is malformed or names no event it may answer (HTTP 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def posted_reference(value: object, where: str) -> tuple[str, str | int]:
    """The posted member of a reference: ``("idempotency_key", key)`` or ``("index", n)``."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ReferenceProblem(
            where,
            'must be an object with exactly one of {"idempotency_key": "<key>"} or '
            '{"index": <log index>} naming the event it answers',
        )
    [(name, v)] = value.items()
    if name == "idempotency_key":
        if not isinstance(v, str) or not v or len(v) > 128:
            raise ReferenceProblem(f"{where}.idempotency_key", "must be a non-empty string")
        return name, v
    if name == "index":
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ReferenceProblem(f"{where}.index", "must be a non-negative integer")
        return name, v
    raise ReferenceProblem(
        f"{where}.{name}", "unknown member; a reference holds idempotency_key or index"
    )


@dataclass(frozen=True)
class ProcessOrder:
    """The parsed ``process_order`` section."""

    rules: tuple[OrderRule, ...]
    #: event type -> its reference fields -> the event types each may name.
    references: Mapping[str, Mapping[str, tuple[str, ...]]]
    #: (trade type, event type) -> the rules to check, precomputed once.
    _applicable: Mapping[tuple[str, str], tuple[OrderRule, ...]] = field(repr=False)
    #: Event types whose first record some rule looks back for.
    tracked: frozenset[str] = frozenset()
    #: opened_by -> the while_open rule (one per opening type).
    _intervals: Mapping[str, OrderRule] = field(default_factory=dict, repr=False)
    _closers: Mapping[str, OrderRule] = field(default_factory=dict, repr=False)
    #: Event types some reference field may name.
    answerable: frozenset[str] = frozenset()

    def check(self, state: OrderState, trade_type: str, etype: str) -> OrderViolation | None:
        """The first rule ``etype`` breaks after ``state``, or None."""
        rules = self._applicable.get((trade_type, etype))
        if not rules:
            return None
        seen = state.seen
        for r in rules:
            kind = r.kind
            if kind == "requires":
                if not any(t in seen for t in r.earlier):
                    return OrderViolation(r, etype, None)
            elif kind == "not_after":
                marks = [seen[t] for t in r.earlier if t in seen]
                if marks:
                    return OrderViolation(r, etype, min(marks, key=lambda m: m.seq))
            elif kind == "only_after":
                m = seen.get(r.once)
                if m is not None and etype not in r.allowed:
                    return OrderViolation(r, etype, m)
            elif state.open and etype not in r.allowed:  # while_open
                opened = [m for m in state.open if m.type == r.opened_by]
                if opened:
                    return OrderViolation(r, etype, opened[-1])
        return None

    def advance(
        self, state: OrderState, etype: str, seq: int, index: int, closes: int | None = None
    ) -> OrderState:
        """The state after a record of ``etype`` at (seq, index).

        ``closes`` is the ``seq`` a closing event (e.g. ``activity_resumed``) names in its
        reference field; without one it closes the newest open interval it may close.
        """
        if etype not in self.tracked:
            return state
        seen = state.seen
        if etype not in seen:
            seen = MappingProxyType({**seen, etype: Mark(etype, seq, index)})
        opened = state.open
        if etype in self._intervals:
            opened = (*opened, Mark(etype, seq, index))
        rule = self._closers.get(etype)
        if rule is not None:
            mine = [m for m in opened if m.type == rule.opened_by]
            if closes is None:
                target = mine[-1] if mine else None
            else:
                target = next((m for m in mine if m.seq == closes), None)
            if target is not None:
                opened = tuple(m for m in opened if m is not target)
        if seen is state.seen and opened is state.open:
            return state
        return OrderState(seen, opened)

    def closing_field(self, etype: str) -> str | None:
        """The reference field by which ``etype`` names the interval it closes, if any."""
        rule = self._closers.get(etype)
        return rule.closing_field if rule is not None else None

    def closing_fields(self) -> Mapping[str, str]:
        """closing event type -> its reference field naming the interval it closes."""
        return {t: r.closing_field for t, r in self._closers.items()}

    def replay(self, rows: Iterable[tuple[str, int, int, int | None]]) -> OrderState:
        """The state after committed records (type, seq, index, closed seq) in seq order."""
        state = EMPTY_STATE
        for etype, seq, index, closes in rows:
            state = self.advance(state, etype, seq, index, closes)
        return state


def parse_process_order(
    raw: object,
    events: Mapping[str, tuple[str, ...]],
    references: Mapping[str, Mapping[str, tuple[str, ...]]],
    where: str,
) -> ProcessOrder:
    """Validate the ``process_order`` section against the catalogue's event codes.

    ``events`` maps each event code to the trade types it applies to; ``references``
    each event code to its reference fields and the event types each may name (the
    catalogue's fields of type ``reference``).
    """
    obj = _object(raw, where)
    _keys(obj, frozenset({"rules"}), frozenset(), where)
    raw_rules = obj["rules"]
    if not isinstance(raw_rules, list):
        raise OrderCatalogueError(f"{where}.rules: expected a list")
    rules: list[OrderRule] = []
    ids: set[str] = set()
    for i, rr in enumerate(raw_rules):
        r = _parse_rule(rr, events, f"{where}.rules[{i}]")
        if r.id in ids:
            raise OrderCatalogueError(f"{where}.rules[{i}]: duplicate rule id {r.id!r}")
        ids.add(r.id)
        rules.append(r)
    references = {code: MappingProxyType(dict(fs)) for code, fs in references.items()}

    intervals: dict[str, OrderRule] = {}
    closers: dict[str, OrderRule] = {}
    tracked: set[str] = set()
    for r in rules:
        if r.kind in ("requires", "not_after"):
            tracked.update(r.earlier)
        elif r.kind == "only_after":
            tracked.add(r.once)
        else:
            if r.opened_by in intervals or r.closed_by in closers:
                raise OrderCatalogueError(
                    f"{where}: {r.id} opens or closes an interval another rule already does"
                )
            ref = references.get(r.closed_by, {}).get(r.closing_field)
            if ref is None or r.opened_by not in ref:
                raise OrderCatalogueError(
                    f"{where}: {r.id}: {r.closed_by}.{r.closing_field} must be a field of "
                    f"type reference naming {r.opened_by}"
                )
            intervals[r.opened_by] = r
            closers[r.closed_by] = r
            tracked.update((r.opened_by, r.closed_by))

    applicable: dict[tuple[str, str], tuple[OrderRule, ...]] = {}
    for code, tts in events.items():
        for tt in tts:
            mine = tuple(
                r
                for r in rules
                if tt in r.trade_types
                and (
                    code in r.events
                    if r.kind in ("requires", "not_after")
                    else code not in r.allowed
                )
            )
            if mine:
                applicable[(tt, code)] = mine
    return ProcessOrder(
        rules=tuple(rules),
        references=MappingProxyType(references),
        _applicable=MappingProxyType(applicable),
        tracked=frozenset(tracked),
        _intervals=MappingProxyType(intervals),
        _closers=MappingProxyType(closers),
        answerable=frozenset(t for fs in references.values() for to in fs.values() for t in to),
    )


def _parse_rule(raw: object, events: Mapping[str, tuple[str, ...]], where: str) -> OrderRule:
    obj = _object(raw, where)
    kind = obj.get("kind")
    if kind not in KINDS:
        raise OrderCatalogueError(f"{where}.kind: expected one of {', '.join(KINDS)}")
    _keys(obj, _RULE_KEYS - {"note"} | _KIND_KEYS[kind], frozenset({"note"}), where)
    rid = _text(obj["id"], f"{where}.id")
    where = f"{where} ({rid})"
    status = _text(obj["status"], f"{where}.status")
    if status not in ("confirmed", "to-confirm"):
        raise OrderCatalogueError(f"{where}.status: expected confirmed or to-confirm")
    sources = _codes(obj["sources"], f"{where}.sources", None)
    if not sources:
        raise OrderCatalogueError(f"{where}.sources: cite at least one source")
    trade_types = _codes(obj["trade_types"], f"{where}.trade_types", None)
    known_tt = {tt for tts in events.values() for tt in tts}
    for tt in trade_types:
        if tt not in known_tt:
            raise OrderCatalogueError(f"{where}.trade_types: unknown trade type {tt!r}")
    common: dict[str, Any] = {
        "id": rid,
        "kind": kind,
        "title_zh": _text(obj["title_zh"], f"{where}.title_zh"),
        "title_en": _text(obj["title_en"], f"{where}.title_en"),
        "sources": sources,
        "status": status,
        "trade_types": trade_types,
        "note": _text(obj["note"], f"{where}.note") if "note" in obj else "",
    }
    if kind in ("requires", "not_after"):
        earlier_key = "after_any" if kind == "requires" else "once_any"
        return OrderRule(
            **common,
            events=frozenset(_codes(obj["events"], f"{where}.events", events)),
            earlier=_codes(obj[earlier_key], f"{where}.{earlier_key}", events),
        )
    allowed = frozenset(_codes(obj["allowed"], f"{where}.allowed", events))
    if kind == "only_after":
        once = _text(obj["once"], f"{where}.once")
        _codes([once], f"{where}.once", events)
        return OrderRule(**common, once=once, allowed=allowed)
    opened_by = _text(obj["opened_by"], f"{where}.opened_by")
    closed_by = _text(obj["closed_by"], f"{where}.closed_by")
    _codes([opened_by, closed_by], f"{where}.opened_by/closed_by", events)
    return OrderRule(
        **common,
        opened_by=opened_by,
        closed_by=closed_by,
        closing_field=_text(obj["closing_field"], f"{where}.closing_field"),
        allowed=allowed | {closed_by},
    )


def _object(raw: object, where: str) -> dict[str, object]:
    return expect_object(raw, where, OrderCatalogueError)


def _keys(obj: Mapping[str, object], need: frozenset[str], may: frozenset[str], where: str) -> None:
    expect_keys(obj, need, where, OrderCatalogueError, may)


def _text(raw: object, where: str) -> str:
    return expect_text(raw, where, OrderCatalogueError)


def _codes(
    raw: object,
    where: str,
    events: Mapping[str, Sequence[str]] | None,
    *,
    nonempty: bool = False,
) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise OrderCatalogueError(f"{where}: expected a list of strings")
    items = tuple(_text(x, f"{where}[{i}]") for i, x in enumerate(raw))
    if len(set(items)) != len(items):
        raise OrderCatalogueError(f"{where}: duplicate entries")
    if nonempty and not items:
        raise OrderCatalogueError(f"{where}: must name at least one event type")
    if events is not None:
        for code in items:
            if code not in events:
                raise OrderCatalogueError(f"{where}: {code!r} is not an event code")
    return items
