"""What the console's pages show of records: pure functions, records in, view models out.

Times are shown in Beijing time (UTC+8, 北京时间); amounts the catalogue gives in fen
(分) are shown in yuan; a sealed value (``"[sealed]"`` in a redacted record, or a part the
record holds only a commitment to) is shown as :data:`SEALED_MARK`, which the templates
render as 密封至开标 / "sealed until the opening". Nothing here reads the database.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from ledger.catalogue import Catalogue, FieldSpec
from ledger.sealing import SEALED
from verifier.sealed import OpeningError, open_record

BEIJING = timezone(timedelta(hours=8), "CST")
#: Marks a value withheld until the opening (the templates translate it).
SEALED_MARK = object()
#: Marks a confidential value this reader may not see (a complainant, the committee before
#: the result): held as a commitment, but not sealed until the opening.
CONFIDENTIAL_MARK = object()
_SEALED_KINDS = ("bid_submitted", "bid_modified", "auction_bid", "listing_bid_placed")


def beijing(ts: object) -> str:
    """An RFC 3339 instant as ``YYYY-MM-DD HH:MM:SS`` Beijing time; other text as is."""
    if not isinstance(ts, str):
        return str(ts)
    return _beijing(ts)


@functools.lru_cache(maxsize=8192)
def _beijing(ts: str) -> str:
    # A timeline repeats its instants (a batch's recorded_at, a day's occurred_at).
    try:
        dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts
    if dt.tzinfo is None:
        return ts
    return dt.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def beijing_date(ts: object) -> str:
    return beijing(ts)[:10]


def yuan(fen: int) -> str:
    """Fen as yuan with thousands separators, exactly (no float): 4650100000 -> 46,501,000.00."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d} 元"


def size_text(n: object) -> str:
    if not isinstance(n, int):
        return str(n)
    for unit, step in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= step:
            return f"{n / step:.1f} {unit} ({n:,} B)"
    return f"{n:,} B"


def _in_fen(spec: FieldSpec | None) -> bool:
    return spec is not None and spec.type == "int" and "单位：分" in spec.zh


def label(spec: FieldSpec | None, name: str) -> tuple[str, str]:
    """A field's Chinese and English label; for an amount shown in yuan, without the note
    that the catalogue's value is in fen."""
    if spec is None:
        return name, name
    if _in_fen(spec):
        return spec.zh.replace("（单位：分）", ""), spec.en.replace(", in fen (0.01 yuan)", "")
    return spec.zh, spec.en


def value_text(value: object, spec: FieldSpec | None) -> object:
    """A payload value as shown: :data:`SEALED_MARK`, or text."""
    if value == SEALED:
        return SEALED_MARK
    if isinstance(value, bool):
        return "✓" if value else "✗"  # the same in both languages
    if spec is not None:
        if spec.type == "instant":
            return beijing(value)
        if _in_fen(spec) and isinstance(value, int) and not isinstance(value, bool):
            return yuan(value)
        if spec.type == "reference" and isinstance(value, dict):
            if "index" in value:
                return f"#{value['index']}"
            return str(value.get("idempotency_key", value))
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


@dataclass(slots=True)
class Fact:
    label_zh: str
    label_en: str
    value: object  # text, or SEALED_MARK


@dataclass(slots=True)
class Attachment:
    name: object
    media_type: object
    size: object
    sha256: object


@dataclass(slots=True)
class EventView:
    """One record as a timeline row."""

    index: int
    seq: int
    type: str
    name_zh: str
    name_en: str
    phase: str
    occurred: str
    recorded: str
    actor: object
    sealed: bool
    facts: list[Fact] = field(default_factory=list)
    attachments: list[Attachment | object] = field(default_factory=list)


def opened_view(record: dict[str, Any], openings: Any) -> dict[str, Any]:
    """The record as posted when its openings are at hand (after the opening, for sealed
    readers); the record itself otherwise or when they do not match."""
    if openings is None:
        return record
    try:
        return open_record(record, openings)
    except OpeningError:
        return record


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def event_view(record: dict[str, Any], catalogue: Catalogue, openings: Any = None) -> EventView:
    """The timeline row of ``record`` (opened with ``openings`` when given)."""
    shown = opened_view(record, openings)
    et = catalogue.events.get(str(shown.get("type")))
    commitments = shown.get("commitments") if openings is None else None
    committed = set(commitments) if isinstance(commitments, dict) else set()
    payload = _obj(shown.get("payload"))
    actor = _obj(shown.get("actor"))
    actor_id: object = actor.get("id", "")
    hidden = SEALED_MARK if et is None or et.sealed else CONFIDENTIAL_MARK
    if actor_id == SEALED:
        actor_id = SEALED_MARK
    elif "actor.id" in committed:
        actor_id = hidden
    facts: list[Fact] = []
    specs = et.fields if et is not None else {}
    for name, value in payload.items():
        spec = specs.get(name)
        facts.append(Fact(*label(spec, name), value_text(value, spec)))
    for path in sorted(committed):
        if path.startswith("payload."):
            name = path.removeprefix("payload.")
            spec = specs.get(name)
            facts.append(Fact(*label(spec, name), hidden))
    atts: list[Attachment | object] = []
    raw_atts = shown.get("attachments")
    if "attachments" in committed:
        atts.append(hidden)
    elif isinstance(raw_atts, list):
        for a in raw_atts:
            if isinstance(a, dict):
                atts.append(
                    Attachment(
                        a.get("name", ""),
                        a.get("media_type", ""),
                        size_text(a.get("size")),
                        a.get("sha256", ""),
                    )
                )
            else:
                atts.append(SEALED_MARK)
    return EventView(
        index=int(record.get("index", -1)),
        seq=int(record.get("seq", -1)),
        type=str(shown.get("type")),
        name_zh=et.name_zh if et else str(shown.get("type")),
        name_en=et.name_en if et else str(shown.get("type")),
        phase=et.phase if et else "",
        occurred=beijing(shown.get("occurred_at")),
        recorded=beijing(shown.get("recorded_at")),
        actor=actor_id,
        sealed=bool(et and et.sealed),
        facts=facts,
        attachments=atts,
    )


@dataclass
class KeyFacts:
    """The facts a reviewer looks for first, gathered from a page of the timeline."""

    opening: str = ""
    places: list[str] = field(default_factory=list)
    deadlines: list[Fact] = field(default_factory=list)
    bids: list[tuple[object, object]] = field(default_factory=list)  # (bidder, price)
    winners: list[str] = field(default_factory=list)


def key_facts(records: list[dict[str, Any]], catalogue: Catalogue, openings: Any) -> KeyFacts:
    """Opening time and place, deadlines (newest value of each), bidders with prices (as
    far as the reader may see them) and the winner."""
    kf = KeyFacts()
    deadlines: dict[str, Fact] = {}
    for rec in records:
        shown = opened_view(rec, openings.get(rec.get("index")) if openings else None)
        payload = _obj(shown.get("payload"))
        et = catalogue.events.get(str(shown.get("type")))
        specs = et.fields if et else {}
        if shown.get("type") == catalogue.sealed_until and "opening_at" in payload:
            kf.opening = beijing(payload["opening_at"])
        place = payload.get("place")
        if isinstance(place, str) and place != SEALED and place not in kf.places:
            kf.places.append(place)
        for name, value in payload.items():
            spec = specs.get(name)
            if name.endswith("deadline") and spec is not None:
                deadlines[name] = Fact(*label(spec, name), value_text(value, spec))
        if shown.get("type") in _SEALED_KINDS:
            bidder = payload.get("bidder", _obj(shown.get("actor")).get("id"))
            price = payload.get("price")
            kf.bids.append(
                (
                    SEALED_MARK if bidder in (None, SEALED) else bidder,
                    SEALED_MARK
                    if price in (None, SEALED)
                    else value_text(price, specs.get("price")),
                )
            )
        winner = payload.get("winner")
        if isinstance(winner, str) and winner not in kf.winners:
            kf.winners.append(winner)
    kf.deadlines = list(deadlines.values())
    return kf


def now_utc() -> datetime:
    return datetime.now(UTC)
