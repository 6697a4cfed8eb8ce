"""Sealed parts of a record: one salted commitment per part, and checking their openings.

Before the bid opening nobody may learn who bid, how many bid, or what they offered
(招标投标法 第二十二条、第三十六条). A committed record of a sealed event type (a bid, a bid
deposit, a bid receipt...) therefore carries no sealed value at all: each sealed *part*
is replaced by a commitment in the record's ``commitments`` member, keyed by its path:

- ``payload.<name>``: a sealed payload field (and any field the catalogue does not declare);
- ``actor.id``: the bidder;
- ``attachments``: the attachment list (bid files: their hashes identify them);
- ``poster_signature``: the poster's signature, which covers the sealed values and so would
  let anyone with the poster's public key test a guess.

Records of open events with *confidential* fields (a complainant, the evaluation
committee's members) are committed the same way but stay in the project's process chain;
their openings go only to the readers the catalogue names (docs/formats.md).

Commitment (32 bytes, base64 in the record)::

    SHA-256( "jianzheng/sealed-commitment/v1" || 0x0A || JCS(path) || salt || JCS(value) )

``salt`` is 32 random bytes of its own per part; ``JCS`` is the RFC 8785 canonical form
(the project's integer-only profile, :mod:`verifier.canonical`) of the path, a JSON string
and so self-delimiting, and of the value. The path binds
an opening to its place, so a bidder's opening cannot be passed off as a price. The record
hash covers only the commitments, so the committed record verifies against its event
hash, and until the salts are revealed a candidate value cannot be tested against it.

An *opening* is ``{"salt": base64, "value": JSON}``; :func:`open_record` checks every
opening against its commitment and returns the record as posted; :func:`seal_record` goes
the other way, from the record as posted and the salts (which only the poster's receipt
carries before the opening) to the committed record. Pure code: bytes and JSON in, a
value or :class:`OpeningError` out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from verifier.b64 import decode_b64, encode_b64
from verifier.canonical import CanonicalError, canonicalize
from verifier.errors import VerifierError

__all__ = [
    "COMMITMENT_CONTEXT",
    "SALT_BYTES",
    "SEALED_SUFFIX",
    "OpeningError",
    "base_project",
    "commit",
    "commitments_of",
    "is_sealed_chain",
    "leave_out",
    "open_record",
    "seal_record",
]

COMMITMENT_CONTEXT = b"jianzheng/sealed-commitment/v1\n"
SALT_BYTES = 32
#: Sealed events of project P are chained apart, in ``P~sealed``: where they sat in the
#: process chain, its seq numbers and prev links would count the bids.
SEALED_SUFFIX = "~sealed"
#: The parts that may be sealed; payload fields are snake_case (the catalogue's names, or
#: undeclared fields of a sealed event, which are sealed too).
_PATH = re.compile(r"actor\.id|attachments|poster_signature|payload\..+", re.DOTALL)


class OpeningError(ValueError, VerifierError):
    """An opening is malformed, or does not match its commitment."""


def is_sealed_chain(project: object) -> bool:
    return isinstance(project, str) and project.endswith(SEALED_SUFFIX)


def base_project(project: str) -> str:
    """The project a chain belongs to (``P~sealed`` -> ``P``)."""
    return project.removesuffix(SEALED_SUFFIX)


def commit(path: str, salt: bytes, value: object) -> bytes:
    """The commitment to ``value`` at ``path`` under ``salt`` (see the module docstring)."""
    if len(salt) != SALT_BYTES:
        raise OpeningError(f"{path}: the salt must be {SALT_BYTES} bytes, not {len(salt)}")
    if not _PATH.fullmatch(path):
        raise OpeningError(f"{path[:60]!r} is not a sealable part of a record")
    try:
        name = canonicalize(path)
        body = canonicalize(value)
    except CanonicalError as e:
        raise OpeningError(f"{path[:60]!r}: cannot be committed: {e}") from None
    h = hashlib.sha256(COMMITMENT_CONTEXT)
    h.update(name)
    h.update(salt)
    h.update(body)
    return h.digest()


def _b64(v: object, what: str, size: int) -> bytes:
    raw = decode_b64(v, what, OpeningError)
    if len(raw) != size:
        raise OpeningError(f"{what} must be {size} bytes, not {len(raw)}")
    return raw


def commitments_of(record: Mapping[str, Any]) -> dict[str, bytes]:
    """The record's commitments, path -> 32 bytes; {} for a record without any."""
    raw = record.get("commitments")
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        raise OpeningError("commitments must be a non-empty object")
    out: dict[str, bytes] = {}
    for path, c in raw.items():
        if not _PATH.fullmatch(path):
            raise OpeningError(f"commitments: {path[:60]!r} is not a sealable part")
        out[path] = _b64(c, f"commitments.{path}", 32)
    return out


def _absent(record: Mapping[str, Any], path: str) -> bool:
    """Whether the committed record leaves the part out (a sealed value must not show)."""
    if path == "actor.id":
        actor = record.get("actor")
        return isinstance(actor, dict) and "id" not in actor
    if path.startswith("payload."):
        payload = record.get("payload")
        return isinstance(payload, dict) and path[len("payload.") :] not in payload
    return path not in record


def leave_out(record: dict[str, Any], path: str) -> object:
    """Take the sealed part at ``path`` out of ``record`` (in place) and return its value.

    The record's ``actor`` and ``payload`` are replaced by copies first, so that objects
    the record shares with others are not changed.
    """
    if path == "actor.id":
        actor = dict(record["actor"])
        value = actor.pop("id")
        record["actor"] = actor
        return value
    if path.startswith("payload."):
        payload = dict(record["payload"])
        value = payload.pop(path[len("payload.") :])
        record["payload"] = payload
        return value
    return record.pop(path)


def seal_record(
    record: Mapping[str, Any], salts: object, *, sealed_chain: bool = True
) -> dict[str, Any]:
    """The committed form of a record as posted, given the salt of each sealed part.

    ``salts`` maps each sealed path to its base64 salt; each part is taken out of the
    record and committed to under its salt, and the record joins the project's sealed
    chain (unless ``sealed_chain`` is False: a record with confidential fields stays in
    the process chain). The inverse of :func:`open_record`:
    ``open_record(seal_record(r, s), o) == r`` for the openings ``o`` of those salts and
    the values of ``r``.
    """
    if not isinstance(salts, dict) or not salts:
        raise OpeningError("sealed_salts must be an object, one salt per sealed part")
    out = dict(record)
    commitments: dict[str, str] = {}
    for path in sorted(salts):
        salt = _b64(salts[path], f"sealed_salts.{path[:60]}", SALT_BYTES)
        if not _PATH.fullmatch(path):
            raise OpeningError(f"{path[:60]!r} is not a sealable part of a record")
        try:
            value = leave_out(out, path)
        except (KeyError, TypeError):
            raise OpeningError(f"{path}: the record has no such part to commit") from None
        commitments[path] = encode_b64(commit(path, salt, value))
    project = out.get("project")
    if not isinstance(project, str):
        raise OpeningError("the record names no project")
    out["project"] = project + SEALED_SUFFIX if sealed_chain else project
    out["commitments"] = commitments
    return out


def open_record(record: Mapping[str, Any], openings: object) -> dict[str, Any]:
    """The record as posted: every commitment checked against its opening, values put back.

    ``openings`` maps each path of the record's ``commitments`` to ``{"salt", "value"}``;
    exactly those paths, no more, no fewer. The result drops ``commitments`` and names the
    project (not its sealed chain), so it is what the poster posted and signed.
    """
    commitments = commitments_of(record)
    if not commitments:
        raise OpeningError("the record has no commitments to open")
    if not isinstance(openings, dict):
        raise OpeningError("openings must be an object, one entry per commitment")
    missing = sorted(set(commitments) - set(openings))
    extra = sorted(set(openings) - set(commitments))
    if missing or extra:
        raise OpeningError(
            "the openings do not match the commitments"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; not committed {', '.join(x[:60] for x in extra)}" if extra else "")
        )
    out = {k: v for k, v in record.items() if k != "commitments"}
    out["actor"] = dict(out.get("actor") or {})
    out["payload"] = dict(out.get("payload") or {})
    project = out.get("project")
    if isinstance(project, str):
        out["project"] = base_project(project)
    for path in sorted(commitments):
        o = openings[path]
        if not isinstance(o, dict) or set(o) != {"salt", "value"}:
            raise OpeningError(f"{path}: an opening is exactly {{salt, value}}")
        if not _absent(record, path):
            raise OpeningError(f"{path}: the committed record shows the sealed value itself")
        salt = _b64(o["salt"], f"{path}.salt", SALT_BYTES)
        if not hmac.compare_digest(commit(path, salt, o["value"]), commitments[path]):
            raise OpeningError(
                f"{path}: the opened value does not match the commitment in the record"
            )
        if path == "actor.id":
            out["actor"]["id"] = o["value"]
        elif path.startswith("payload."):
            out["payload"][path[len("payload.") :]] = o["value"]
        else:
            out[path] = o["value"]
    return out
