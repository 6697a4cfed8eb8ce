"""Reply references: a reply names the event it answers, and the ledger resolves the name.

A poster writes a reference field (e.g. ``in_reply_to``) as exactly one of
``{"idempotency_key": "<key>"}`` or ``{"index": <log index>}``. The ledger checks that it
names an earlier event of the same project of a type the field may answer, and commits the
posted member together with the resolved ``index`` and ``seq``::

    {"idempotency_key": "k1", "index": 1234, "seq": 7}

so the offline verifier needs nothing else to pair a reply with what it answers. A
reference in an open record (one in the project's process chain) to a sealed record (in
its sealed chain) is resolved to the ``index`` only: the sealed chain's ``seq`` would
count the sealed events before it (docs/formats.md, "Sealed events")::

    {"idempotency_key": "k1", "index": 1234}

What the
poster signed, and what it recomputes its record from, is the posted form: these helpers
go from one form to the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The members the ledger adds to a posted reference.
RESOLVED = ("index", "seq")
_RESOLVED_SHAPES = (
    frozenset({"idempotency_key", "index", "seq"}),
    frozenset({"index", "seq"}),
    # A reference to a sealed record from an open one; resolved ``{"index"}`` alone is the
    # posted form itself.
    frozenset({"idempotency_key", "index"}),
)


def is_resolved(value: object) -> bool:
    """Whether ``value`` is a reference as the ledger commits it."""
    return isinstance(value, dict) and frozenset(value) in _RESOLVED_SHAPES


def as_posted(value: Mapping[str, Any]) -> dict[str, Any]:
    """The posted member of a resolved reference."""
    if "idempotency_key" in value:
        return {"idempotency_key": value["idempotency_key"]}
    return {"index": value["index"]}


def posted_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A committed record's payload as the poster wrote it: references unresolved.

    Only a resolved reference has an ``index`` or ``seq`` beside its posted member; no
    posted payload member has that shape (the ledger refuses any other shape for a
    reference field, and typed fields are never such objects), so this needs no catalogue.
    """
    return {k: as_posted(v) if is_resolved(v) else v for k, v in payload.items()}


def resolved_payload(
    payload: Mapping[str, Any], resolved: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """A posted payload with the receipt's ``resolved`` ``index`` and ``seq`` (when the
    ledger committed one) filled in."""
    out = dict(payload)
    for name, r in resolved.items():
        posted = out.get(name)
        if not isinstance(posted, dict):
            raise ValueError(f"the receipt resolves payload.{name}, which the event lacks")
        out[name] = {**posted, **{k: r[k] for k in RESOLVED if k in r}}
    return out
