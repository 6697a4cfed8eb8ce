"""Event catalogue: the event types the ledger accepts, kept as data in ``catalogue.json``.

The JSON is the single source of truth (codes, names, trade types, legal sources,
sealing and the payload fields the verifier's rules read); this module only loads
and validates it, so changing the taxonomy never needs a code change.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

from ledger.errors import LedgerError
from ledger.json_shape import expect_keys, expect_object, expect_text
from ledger.order import OrderCatalogueError, ProcessOrder, parse_process_order
from verifier.payload import (
    EXTENSIONS,
    FIELD_TYPES,
    TRADE_TYPES,
    FieldSpec,
    PayloadChecker,
    parse_field_spec,
)

__all__ = [
    "FIELD_TYPES",
    "PHASES",
    "STATUSES",
    "TRADE_TYPES",
    "Catalogue",
    "CatalogueError",
    "Confidential",
    "ConfidentialClass",
    "EventType",
    "FieldSpec",
    "TradeType",
    "UnknownEventType",
    "UnknownTradeType",
    "load_catalogue",
    "load_catalogue_file",
    "parse_catalogue",
]

PHASES: tuple[str, ...] = (
    "setup",
    "notice",
    "dispute",
    "bidding",
    "opening",
    "evaluation",
    "award",
    "contract",
    "complaint",
    "land_mining_property",
    "archive",
    "access",
)
STATUSES: tuple[str, ...] = ("confirmed", "to-confirm")
#: The catalogue version this code reads. Every record carries the version it was committed
#: under (``catalogue_version``); records without it were committed under version 1.
CATALOGUE_VERSION = 3
_RESOURCE = "catalogue.json"
_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_TRADE_TYPE_KEYS = frozenset({"letter", "name_zh", "name_en"})
_EVENT_KEYS = frozenset(
    {
        "code",
        "name_zh",
        "name_en",
        "phase",
        "trade_types",
        "sources",
        "status",
        "sealed_fields",
        "sealed_attachments",
        "fields",
    }
)
#: Optional event keys: groups of optional fields of which at least one must be given, and
#: the event's confidential parts (``confidential``, see :class:`Confidential`).
_OPTIONAL_EVENT_KEYS = frozenset({"one_of_required", "confidential"})
_CONFIDENTIAL_KEYS = frozenset({"class", "fields"})
_CONFIDENTIAL_OPTIONAL = frozenset({"actor", "attachments"})
_CLASS_KEYS = frozenset(
    {"name_zh", "name_en", "sources", "status", "readers", "opened_by", "readers_after"}
)
_HOW_TO_LIST = (
    "valid codes are the 'code' entries in ledger/catalogue.json, "
    "or call ledger.catalogue.load_catalogue().codes()"
)


#: The order of a catalogue without a ``process_order`` section: no rules.
_NO_ORDER: ProcessOrder = parse_process_order({"rules": []}, {}, {}, "process_order")


class CatalogueError(ValueError, LedgerError):
    """The catalogue file is malformed."""


# The name is part of the agreed API, hence no "Error" suffix.
class UnknownEventType(KeyError, LedgerError):
    """An event type code that is not in the catalogue."""

    def __init__(self, code: str, suggestions: tuple[str, ...] = ()) -> None:
        hint = f"; did you mean {', '.join(map(repr, suggestions))}?" if suggestions else ""
        self.code = code
        self.suggestions = suggestions
        self.message = f"unknown event type {code!r}{hint} ({_HOW_TO_LIST})"
        super().__init__(self.message)

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message, wrapping it in quotes.
        return self.message


class UnknownTradeType(KeyError, LedgerError):
    """A trade type code that is not one of TRADE_TYPES."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.message = f"unknown trade type {code!r}; valid trade types: {', '.join(TRADE_TYPES)}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class TradeType:
    """One of the five trade types (交易类型)."""

    code: str
    letter: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class ConfidentialClass:
    """Who may read a kind of confidential field, and from when (docs/formats.md,
    "Confidential fields").

    ``readers`` may read the values from the moment they are recorded; once the project
    records ``opened_by`` (when it names an event), ``readers_after`` may too. Nobody else,
    admin included, ever reads them through the ledger: records and bundles carry their
    commitments only.
    """

    name: str
    name_zh: str
    name_en: str
    sources: tuple[str, ...]
    status: str
    readers: tuple[str, ...]
    opened_by: str | None
    readers_after: tuple[str, ...]

    def may_read(self, role: str, *, opened: bool) -> bool:
        return role in self.readers or (opened and role in self.readers_after)


@dataclass(frozen=True)
class Confidential:
    """The parts of an event type kept confidential under one :class:`ConfidentialClass`:
    payload ``fields``, the ``actor``'s id, the ``attachments``. Unlike a sealed event, the
    event itself stays in the process chain: that it happened is not secret."""

    cls: ConfidentialClass
    fields: tuple[str, ...]
    actor: bool = False
    attachments: bool = False


@dataclass(frozen=True)
class EventType:
    """One catalogued event type and what the ledger and verifier need to know about it."""

    code: str
    name_zh: str
    name_en: str
    phase: str
    trade_types: tuple[str, ...]
    sources: tuple[str, ...]
    status: str
    # Payload field names kept confidential until the project's bid_opening_started.
    sealed_fields: tuple[str, ...]
    # True when the event's attachment objects are sealed until opening.
    sealed_attachments: bool
    #: The payload's fields, in catalogue order; nothing else may be posted (but
    #: ``extensions``).
    fields: Mapping[str, FieldSpec] = field(hash=False)
    #: Groups of optional fields of which a payload gives at least one.
    one_of_required: tuple[tuple[str, ...], ...] = ()
    #: The parts kept confidential under a reader class (None: none).
    confidential: Confidential | None = None

    @functools.cached_property
    def checker(self) -> PayloadChecker:
        """The compiled check of a posted payload (verifier.payload)."""
        return PayloadChecker(self.fields, one_of_required=self.one_of_required)

    def example_payload(self) -> dict[str, Any]:
        """A valid payload built from each field's example (documentation and tests)."""
        return {n: f.example for n, f in self.fields.items()}

    @property
    def confirmed(self) -> bool:
        """True when every cited source was checked against the primary text."""
        return self.status == "confirmed"

    @property
    def sealed(self) -> bool:
        """True when any part of this event is confidential until bid opening."""
        return bool(self.sealed_fields) or self.sealed_attachments


@dataclass(frozen=True)
class Catalogue:
    """The validated catalogue; build it with load_catalogue() or parse_catalogue()."""

    version: int
    #: Roles that may read sealed fields and objects once the project's ``sealed_until``
    #: event (the bid opening, 招标投标法 第三十六条) is recorded; before it, nobody may.
    sealed_readers: tuple[str, ...]
    sealed_until: str
    trade_types: Mapping[str, TradeType] = field(hash=False)
    events: Mapping[str, EventType] = field(hash=False)
    #: Which event may follow which, and the reply fields naming earlier events
    #: (the catalogue's ``process_order`` section; see :mod:`ledger.order`).
    order: ProcessOrder = field(hash=False, default_factory=lambda: _NO_ORDER)
    #: The reader classes of confidential fields (``confidential_classes``), by name.
    confidential_classes: Mapping[str, ConfidentialClass] = field(
        hash=False, default_factory=lambda: MappingProxyType({})
    )

    def get(self, code: str) -> EventType:
        """Return the event type for ``code`` or raise UnknownEventType."""
        try:
            return self.events[code]
        except (KeyError, TypeError):
            close = difflib.get_close_matches(str(code), self.events, n=3)
            raise UnknownEventType(str(code), tuple(close)) from None

    def allows(self, code: str, trade_type: str) -> bool:
        """Whether ``code`` may be recorded in a project of ``trade_type``.

        Unknown codes and trade types raise rather than return False, so a typo is
        reported as a typo and not as a disallowed event.
        """
        if trade_type not in self.trade_types:
            raise UnknownTradeType(trade_type)
        return trade_type in self.get(code).trade_types

    def codes(self) -> tuple[str, ...]:
        """All event codes, in catalogue order."""
        return tuple(self.events)

    def for_trade_type(self, trade_type: str) -> tuple[EventType, ...]:
        """The event types allowed for ``trade_type``, in catalogue order."""
        if trade_type not in self.trade_types:
            raise UnknownTradeType(trade_type)
        return tuple(e for e in self.events.values() if trade_type in e.trade_types)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code in self.events

    def __iter__(self) -> Iterator[EventType]:
        return iter(self.events.values())

    def __len__(self) -> int:
        return len(self.events)


@functools.cache
def load_catalogue() -> Catalogue:
    """Load and validate the packaged ``ledger/catalogue.json`` (cached)."""
    text = resources.files(__package__ or "ledger").joinpath(_RESOURCE).read_text("utf-8")
    return _parse_text(text, f"ledger/{_RESOURCE}")


def load_catalogue_file(path: str | os.PathLike[str]) -> Catalogue:
    """Load and validate a catalogue from a JSON file (not cached)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return _parse_text(text, os.fspath(path))


def parse_catalogue(data: object, origin: str = "<catalogue>") -> Catalogue:
    """Validate an already-decoded catalogue (the JSON object) and build a Catalogue."""
    top = _object(data, origin)
    _exact_keys(
        {k: v for k, v in top.items() if k not in ("process_order", "confidential_classes")},
        frozenset({"version", "sealed_readers", "sealed_until", "trade_types", "events"}),
        origin,
    )
    readers = _text_list(top["sealed_readers"], f"{origin}.sealed_readers")
    sealed_until = _text(top["sealed_until"], f"{origin}.sealed_until")

    version = top["version"]
    # bool is an int subclass; "version": true must not pass as 1.
    if isinstance(version, bool) or version != CATALOGUE_VERSION:
        raise CatalogueError(f"{origin}.version: expected {CATALOGUE_VERSION}, got {version!r}")

    trade_types = _parse_trade_types(top["trade_types"], f"{origin}.trade_types")

    raw_events = top["events"]
    if not isinstance(raw_events, list) or not raw_events:
        raise CatalogueError(f"{origin}.events: expected a non-empty list")
    classes = _parse_classes(top.get("confidential_classes", {}), f"{origin}.confidential_classes")
    events: dict[str, EventType] = {}
    for i, raw in enumerate(raw_events):
        ev = _parse_event(raw, f"{origin}.events[{i}]", classes)
        if ev.code in events:
            raise CatalogueError(f"{origin}.events[{i}]: duplicate event code {ev.code!r}")
        events[ev.code] = ev

    for ev in events.values():
        for f in ev.fields.values():
            for target in f.to:
                if target not in events:
                    raise CatalogueError(
                        f"{origin}: {ev.code}.fields.{f.name}.to: {target!r} is not an event code"
                    )
    if sealed_until not in events:
        raise CatalogueError(f"{origin}.sealed_until: {sealed_until!r} is not an event code")
    if events[sealed_until].sealed:
        # The opening unseals the sealed chain; hidden in it, it could never be seen.
        raise CatalogueError(f"{origin}.sealed_until: {sealed_until!r} must not be sealed itself")
    for c in classes.values():
        opener = events.get(c.opened_by) if c.opened_by is not None else None
        if c.opened_by is not None and (opener is None or opener.sealed or opener.confidential):
            # The opening event must be in the process chain and wholly readable.
            raise CatalogueError(
                f"{origin}.confidential_classes.{c.name}.opened_by: {c.opened_by!r} is not "
                "an event code of an event that is neither sealed nor confidential"
            )
    # The reference fields (type "reference", with the event types each may name) are
    # what the sequencer resolves; the process order's intervals are closed through them.
    references = {
        ev.code: refs
        for ev in events.values()
        if (refs := {f.name: f.to for f in ev.fields.values() if f.type == "reference"})
    }
    try:
        order = parse_process_order(
            top.get("process_order", {"rules": []}),
            {code: ev.trade_types for code, ev in events.items()},
            references,
            f"{origin}.process_order",
        )
    except OrderCatalogueError as e:
        raise CatalogueError(str(e)) from None
    return Catalogue(
        version=version,
        sealed_readers=readers,
        sealed_until=sealed_until,
        trade_types=MappingProxyType(trade_types),
        events=MappingProxyType(events),
        order=order,
        confidential_classes=MappingProxyType(classes),
    )


def _parse_text(text: str, origin: str) -> Catalogue:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CatalogueError(f"{origin}: not valid JSON: {e}") from e
    return parse_catalogue(data, origin)


def _parse_trade_types(raw: object, where: str) -> dict[str, TradeType]:
    obj = _object(raw, where)
    for code in obj:
        if code not in TRADE_TYPES:
            raise CatalogueError(
                f"{where}: unknown trade type {code!r}; expected exactly {', '.join(TRADE_TYPES)}"
            )
    missing = [c for c in TRADE_TYPES if c not in obj]
    if missing:
        raise CatalogueError(f"{where}: missing trade type(s) {', '.join(missing)}")
    out: dict[str, TradeType] = {}
    for code in TRADE_TYPES:
        entry = _object(obj[code], f"{where}.{code}")
        _exact_keys(entry, _TRADE_TYPE_KEYS, f"{where}.{code}")
        out[code] = TradeType(
            code=code,
            letter=_text(entry["letter"], f"{where}.{code}.letter"),
            name_zh=_text(entry["name_zh"], f"{where}.{code}.name_zh"),
            name_en=_text(entry["name_en"], f"{where}.{code}.name_en"),
        )
    return out


def _parse_classes(raw: object, where: str) -> dict[str, ConfidentialClass]:
    out: dict[str, ConfidentialClass] = {}
    for name, entry in _object(raw, where).items():
        w = f"{where}.{name}"
        if not _SNAKE.fullmatch(name):
            raise CatalogueError(f"{w}: a class name is snake_case")
        obj = _object(entry, w)
        _exact_keys(obj, _CLASS_KEYS, w)
        status = _text(obj["status"], f"{w}.status")
        if status not in STATUSES:
            raise CatalogueError(f"{w}.status: {status!r} is not one of {STATUSES}")
        opened_by = obj["opened_by"]
        if opened_by is not None:
            opened_by = _text(opened_by, f"{w}.opened_by")
        after = _text_list(obj["readers_after"], f"{w}.readers_after")
        if opened_by is None and after:
            raise CatalogueError(f"{w}.readers_after: nothing opens this class (opened_by null)")
        out[name] = ConfidentialClass(
            name=name,
            name_zh=_text(obj["name_zh"], f"{w}.name_zh"),
            name_en=_text(obj["name_en"], f"{w}.name_en"),
            sources=_text_list(obj["sources"], f"{w}.sources"),
            status=status,
            readers=_text_list(obj["readers"], f"{w}.readers"),
            opened_by=opened_by,
            readers_after=after,
        )
    return out


def _parse_confidential(
    raw: object,
    where: str,
    fields: Mapping[str, FieldSpec],
    classes: Mapping[str, ConfidentialClass],
    sealed: bool,
) -> Confidential:
    obj = _object(raw, where)
    _exact_keys(obj, _CONFIDENTIAL_KEYS, where, _CONFIDENTIAL_OPTIONAL)
    if sealed:
        # A sealed event is hidden whole until the opening; one scheme per event.
        raise CatalogueError(f"{where}: a sealed event cannot also have confidential fields")
    name = _text(obj["class"], f"{where}.class")
    cls = classes.get(name)
    if cls is None:
        raise CatalogueError(f"{where}.class: {name!r} is not in confidential_classes")
    names = _text_list(obj["fields"], f"{where}.fields")
    for n in names:
        if n not in fields:
            raise CatalogueError(f"{where}.fields: {n!r} is not declared in fields")
    flags = {}
    for key in ("actor", "attachments"):
        v = obj.get(key, False)
        if not isinstance(v, bool):
            raise CatalogueError(f"{where}.{key}: expected true or false")
        flags[key] = v
    if not names and not any(flags.values()):
        raise CatalogueError(f"{where}: names no confidential part")
    return Confidential(cls, names, flags["actor"], flags["attachments"])


def _parse_event(
    raw: object, where: str, classes: Mapping[str, ConfidentialClass] | None = None
) -> EventType:
    obj = _object(raw, where)
    code = obj.get("code")
    if isinstance(code, str):
        where = f"{where} ({code})"
    _exact_keys(obj, _EVENT_KEYS, where, _OPTIONAL_EVENT_KEYS)

    code = _text(obj["code"], f"{where}.code")
    if not _SNAKE.fullmatch(code):
        raise CatalogueError(f"{where}.code: {code!r} is not snake_case")

    phase = _text(obj["phase"], f"{where}.phase")
    if phase not in PHASES:
        raise CatalogueError(f"{where}.phase: unknown phase {phase!r}; expected one of {PHASES}")

    trade_types = _text_list(obj["trade_types"], f"{where}.trade_types")
    if not trade_types:
        raise CatalogueError(f"{where}.trade_types: must list at least one trade type")
    for tt in trade_types:
        if tt not in TRADE_TYPES:
            # "all" is shorthand in the domain notes; the catalogue spells it out.
            hint = " (write the five codes out instead of 'all')" if tt == "all" else ""
            raise CatalogueError(
                f"{where}.trade_types: unknown trade type {tt!r}{hint}; "
                f"expected some of {', '.join(TRADE_TYPES)}"
            )

    sources = _text_list(obj["sources"], f"{where}.sources")
    status = _text(obj["status"], f"{where}.status")
    if status not in STATUSES:
        raise CatalogueError(f"{where}.status: {status!r} is not one of {STATUSES}")
    if status == "confirmed" and not sources:
        raise CatalogueError(f"{where}.status: 'confirmed' needs at least one source")

    fields = _parse_fields(obj["fields"], f"{where}.fields")
    sealed_fields = _text_list(obj["sealed_fields"], f"{where}.sealed_fields")
    for name in sealed_fields:
        # A sealed name absent from fields is almost surely a typo, which would leave
        # the real field unsealed.
        if name not in fields:
            raise CatalogueError(f"{where}.sealed_fields: {name!r} is not declared in fields")

    sealed_attachments = obj["sealed_attachments"]
    if not isinstance(sealed_attachments, bool):
        raise CatalogueError(f"{where}.sealed_attachments: expected true or false")

    groups: list[tuple[str, ...]] = []
    raw_groups = obj.get("one_of_required", [])
    if not isinstance(raw_groups, list):
        raise CatalogueError(f"{where}.one_of_required: expected a list of lists of field names")
    for i, g in enumerate(raw_groups):
        group = _text_list(g, f"{where}.one_of_required[{i}]")
        for name in group:
            spec = fields.get(name)
            if spec is None or spec.required:
                raise CatalogueError(
                    f"{where}.one_of_required[{i}]: {name!r} is not an optional field"
                )
        groups.append(group)

    confidential = None
    if "confidential" in obj:
        confidential = _parse_confidential(
            obj["confidential"],
            f"{where}.confidential",
            fields,
            classes or {},
            bool(sealed_fields) or sealed_attachments,
        )

    return EventType(
        code=code,
        name_zh=_text(obj["name_zh"], f"{where}.name_zh"),
        name_en=_text(obj["name_en"], f"{where}.name_en"),
        phase=phase,
        trade_types=trade_types,
        sources=sources,
        status=status,
        sealed_fields=sealed_fields,
        sealed_attachments=sealed_attachments,
        fields=fields,
        one_of_required=tuple(groups),
        confidential=confidential,
    )


def _parse_fields(raw: object, where: str) -> Mapping[str, FieldSpec]:
    obj = _object(raw, where)
    out: dict[str, FieldSpec] = {}
    for name, rawspec in obj.items():
        if not _SNAKE.fullmatch(name) or name == EXTENSIONS:
            raise CatalogueError(
                f"{where}: field name {name!r} is not snake_case (or is the reserved "
                f"{EXTENSIONS!r})"
            )
        out[name] = _parse_field(name, rawspec, f"{where}.{name}")
    return MappingProxyType(out)


def _parse_field(name: str, raw: object, where: str) -> FieldSpec:
    try:
        return parse_field_spec(name, raw)
    except ValueError as e:
        raise CatalogueError(f"{where}: {e}") from None


def _object(raw: object, where: str) -> dict[str, object]:
    return expect_object(raw, where, CatalogueError)


def _exact_keys(
    obj: Mapping[str, object],
    expected: frozenset[str],
    where: str,
    optional: frozenset[str] = frozenset(),
) -> None:
    expect_keys(obj, expected, where, CatalogueError, optional)


def _text(raw: object, where: str) -> str:
    return expect_text(raw, where, CatalogueError)


def _text_list(raw: object, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise CatalogueError(f"{where}: expected a list of strings")
    items = tuple(_text(item, f"{where}[{i}]") for i, item in enumerate(raw))
    if len(set(items)) != len(items):
        raise CatalogueError(f"{where}: duplicate entries")
    return items
