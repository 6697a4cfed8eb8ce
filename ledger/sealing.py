"""Sealed bids: what a reader may see of a record before and after the bid opening.

Who bid, how many bid, and what they offered must stay secret until the opening
(招标投标法 第二十二条、第三十六条). The event catalogue marks the sealed payload fields and
whether an event's attachments are sealed, which event unseals them (``sealed_until``),
and which roles may read them afterwards (``sealed_readers``). Before the opening nobody
sees them, admin included. The ledger still commits to the full record: the receipt's
event hash covers what is withheld.
"""

from __future__ import annotations

from typing import Any

from ledger.catalogue import Catalogue

SEALED = "[sealed]"


def is_sealed_type(catalogue: Catalogue, event_type: str) -> bool:
    et = catalogue.events.get(event_type)
    return et is not None and et.sealed


def seals_attachments(catalogue: Catalogue, event_type: str) -> bool:
    """Whether the files attached to events of this type are sealed (e.g. bid files)."""
    et = catalogue.events.get(event_type)
    return et is not None and et.sealed_attachments


def may_read_sealed(catalogue: Catalogue, *, opened: bool, role: str) -> bool:
    """Sealed parts open only after the project's opening, and only to the sealed readers."""
    return opened and role in catalogue.sealed_readers


def redact(
    record: dict[str, Any], catalogue: Catalogue, *, opened: bool, role: str
) -> dict[str, Any]:
    """The record as ``role`` may see it; sealed parts replaced by ``"[sealed]"``.

    Redacted records carry ``"sealed": [paths]`` so that a reader knows the record was
    withheld in part and will not match its event hash.
    """
    et = catalogue.events.get(str(record.get("type")))
    if et is None or not et.sealed or may_read_sealed(catalogue, opened=opened, role=role):
        return record
    out = dict(record)
    hidden: list[str] = []
    payload = dict(out.get("payload") or {})
    for name in et.sealed_fields:
        if name in payload:
            payload[name] = SEALED
            hidden.append(f"payload.{name}")
    out["payload"] = payload
    # The actor of a bid event is the bidder: who bid is as secret as the bid.
    actor = dict(out.get("actor") or {})
    if "id" in actor:
        actor["id"] = SEALED
        hidden.append("actor.id")
    out["actor"] = actor
    if et.sealed_attachments and out.get("attachments"):
        out["attachments"] = [SEALED for _ in out["attachments"]]
        hidden.append("attachments")
    out["sealed"] = hidden
    return out
