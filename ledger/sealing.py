"""Sealed bids: how sealed events are committed, and what a reader may see of them.

Who bid, how many bid, and what they offered must stay secret until the opening
(招标投标法 第二十二条、第三十六条). The event catalogue marks the sealed payload fields and
whether an event's attachments are sealed, which event unseals them (``sealed_until``),
and which roles may read them afterwards (``sealed_readers``). Before the opening nobody
sees them, admin included.

- **Values.** :func:`seal` commits each sealed part of an event separately, under its own
  random salt (verifier/sealed.py): the record carries only the commitments, its hash
  covers only them, and the openings (salt and value) are stored apart, in
  ``sealed_openings``, handed only to sealed readers after the opening.
- **Number.** A sealed event's record joins the project's sealed chain ``<project>~sealed``,
  not its process chain, so the process chain's seq numbers and prev links count nothing.
  Before the opening the sealed chain is not shown at all (reads of its records answer
  404 like a missing index); afterwards sealed readers see both chains merged by log index.

- **Confidential fields.** Some facts of open events stay secret from most readers: the
  complainant of a complaint (阿拉善 实施办法 第五十条), the evaluation committee's members
  until the result is determined (招标投标法 第三十七条). The catalogue names them per event
  type (``confidential``) under a reader class (``confidential_classes``: who reads them at
  once, which event opens them, to whom). They are committed in the same way, but the
  event stays in the process chain: that a complaint was filed is not secret. Their
  openings go only to the class's readers (:func:`may_open`); everyone else, and every
  bundle exported for them, gets the commitments alone.

Records committed before this scheme (sealed events in the process chain, values in
place) are shown with the sealed values, and the salt that would let one test a guess
against the event hash, replaced by ``"[sealed]"`` (:func:`redact`).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from ledger.catalogue import Catalogue, Confidential
from ledger.records import EventSubmission, Sealing
from verifier.canonical import Canonical, canonicalize
from verifier.sealed import SALT_BYTES, commit, is_sealed_chain

SEALED = "[sealed]"


def seal(
    ev: EventSubmission, catalogue: Catalogue, random: Callable[[int], bytes] = os.urandom
) -> EventSubmission:
    """The event with its sealed parts committed (``ev.sealing``); others as they are.

    Sealed parts: the catalogue's ``sealed_fields`` and every payload field it does not
    declare (an undeclared field of a bid, such as a file hash, is as secret as the bid),
    the actor's id (the bidder), the attachment list when the type seals attachments
    (their hashes identify the bid files), and the poster's signature (it covers the
    sealed values, so with the poster's public key it would test a guess).
    """
    et = catalogue.events.get(ev.type)
    if et is None or ev.sealing is not None:
        return ev
    if et.confidential is not None:
        return _seal_confidential(ev, et.confidential, random)
    if not et.sealed:
        return ev
    payload: dict[str, Any] = json.loads(ev.payload)
    parts: dict[str, object] = {}
    for name in list(payload):
        if name in et.sealed_fields or name not in et.fields:
            parts["payload." + name] = payload.pop(name)
    parts["actor.id"] = ev.actor["id"]
    if et.sealed_attachments:
        parts["attachments"] = [a.to_json() for a in ev.attachments]
    if ev.poster_signature is not None:
        parts["poster_signature"] = ev.poster_signature
    return _committed(ev, payload, parts, random, sealed_chain=True)


def _seal_confidential(
    ev: EventSubmission, conf: Confidential, random: Callable[[int], bytes]
) -> EventSubmission:
    """The event with its confidential parts committed; it stays in the process chain.

    Committed: each confidential payload field it carries, the actor's id and the
    attachment list where the catalogue says so (a complaint's letter names the
    complainant), and the poster's signature, which covers them all. An event that
    carries no confidential value is committed as it is.
    """
    payload: dict[str, Any] = json.loads(ev.payload)
    parts: dict[str, object] = {}
    for name in conf.fields:
        if name in payload:
            parts["payload." + name] = payload.pop(name)
    if conf.actor:
        parts["actor.id"] = ev.actor["id"]
    if conf.attachments and ev.attachments:
        parts["attachments"] = [a.to_json() for a in ev.attachments]
    if not parts:
        return ev
    if ev.poster_signature is not None:
        parts["poster_signature"] = ev.poster_signature
    return _committed(ev, payload, parts, random, sealed_chain=False)


def _committed(
    ev: EventSubmission,
    payload: dict[str, Any],
    parts: dict[str, object],
    random: Callable[[int], bytes],
    *,
    sealed_chain: bool,
) -> EventSubmission:
    """``ev`` with ``parts`` committed under fresh salts and left out of ``payload``."""
    commitments: dict[str, str] = {}
    openings: dict[str, dict[str, Any]] = {}
    for path, value in parts.items():
        salt = random(SALT_BYTES)
        commitments[path] = base64.b64encode(commit(path, salt, value)).decode()
        openings[path] = {"salt": base64.b64encode(salt).decode(), "value": value}
    sealing = Sealing(
        commitments,
        Canonical(canonicalize(payload).decode()),
        canonicalize(openings),
        sealed_chain,
    )
    return dataclasses.replace(ev, sealing=sealing)


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


def may_open(
    catalogue: Catalogue,
    event_type: str,
    *,
    sealed_chain: bool,
    role: str,
    reached: Callable[[str], bool],
) -> bool:
    """Whether ``role`` may read the committed parts of a record of ``event_type`` now.

    ``reached(code)`` tells whether the project has recorded an event of type ``code``
    (asked only when it decides). A sealed record (in the sealed chain) opens after the bid
    opening to the sealed readers; a record with confidential fields, to its class's
    ``readers`` at once and to its ``readers_after`` once the class's ``opened_by`` event
    is recorded. Nobody else, ever.
    """
    if sealed_chain:
        return role in catalogue.sealed_readers and reached(catalogue.sealed_until)
    et = catalogue.events.get(event_type)
    if et is None or et.confidential is None:
        return False
    cls = et.confidential.cls
    if role in cls.readers:
        return True
    return cls.opened_by is not None and role in cls.readers_after and reached(cls.opened_by)


def record_opener(
    catalogue: Catalogue, role: str, reached: Callable[[str], bool]
) -> Callable[[Mapping[str, Any]], bool]:
    """``may_open`` for committed records (those with ``commitments``) of one project,
    asking ``reached`` at most once per event type."""
    seen: dict[str, bool] = {}

    def cached(code: str) -> bool:
        if code not in seen:
            seen[code] = reached(code)
        return seen[code]

    def opens(record: Mapping[str, Any]) -> bool:
        return "commitments" in record and may_open(
            catalogue,
            str(record.get("type")),
            sealed_chain=is_sealed_chain(record.get("project")),
            role=role,
            reached=cached,
        )

    return opens


def attachments_confidential(catalogue: Catalogue, event_type: str) -> bool:
    """Whether the files attached to events of this type are confidential (a complaint's)."""
    et = catalogue.events.get(event_type)
    return et is not None and et.confidential is not None and et.confidential.attachments


def redact(
    record: dict[str, Any], catalogue: Catalogue, *, opened: bool, role: str
) -> dict[str, Any]:
    """A sealed record of the old form as ``role`` may see it; sealed parts, and the salt,
    replaced by ``"[sealed]"``.

    Redacted records carry ``"sealed": [paths]`` so that a reader knows the record was
    withheld in part and will not match its event hash. Records with ``commitments``
    need no redaction: they hold no sealed value.
    """
    et = catalogue.events.get(str(record.get("type")))
    if (
        et is None
        or not et.sealed
        or "commitments" in record
        or may_read_sealed(catalogue, opened=opened, role=role)
    ):
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
    # With the salt, anyone could hash the record with each candidate bidder and compare
    # with the event hash (or the next record's prev).
    for name in ("salt", "poster_signature"):
        if name in out:
            out[name] = SEALED
            hidden.append(name)
    out["sealed"] = hidden
    return out
