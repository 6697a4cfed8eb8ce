"""Poster signatures: a platform service signs each event it posts (Ed25519).

The signed message is the RFC 8785 canonical form of the event's *signed content*: the
fields the poster wrote, ``project``, ``trade_type``, ``type``, ``actor``, ``occurred_at``,
``payload`` and ``attachments`` (each as ``sha256``, ``size``, ``media_type``, ``name``),
and ``late_entry`` when posted, prefixed by a context string so the signature cannot be
replayed as any other message. Left out: ``idempotency_key`` (a transport detail) and
whatever the ledger adds, including the ``index`` and ``seq`` it resolves into a reply's
reference fields (:func:`verifier.references.as_posted`). The
committed record carries ``poster_signature: {"public_key", "signature"}`` (base64), so
anyone holding the record can check it offline.

Which key a poster *should* have used is a separate fact: the keys it registered, each due
on a span of log indexes (:class:`RegisteredKey`, carried in evidence bundles).
:func:`check_registered_key` compares the two.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from verifier.b64 import decode_b64
from verifier.canonical import canonicalize
from verifier.errors import VerifierError
from verifier.references import posted_payload

#: Domain separation: what the signature is over, and which version of that.
CONTEXT = b"jianzheng/poster-signature/v1\n"
SIGNED_FIELDS = ("project", "trade_type", "type", "actor", "occurred_at", "payload", "late_entry")
ATTACHMENT_FIELDS = ("sha256", "size", "media_type", "name")


class PosterSignatureError(ValueError, VerifierError):
    """A poster signature is malformed or does not verify."""


class UnregisteredPosterKey(PosterSignatureError):
    """The record is signed with a key its poster had not registered for that log index."""


class MissingPosterSignature(PosterSignatureError):
    """The record is unsigned although its poster's registered key required signatures."""


@dataclass(frozen=True)
class RegisteredKey:
    """A key a poster registered, due on the records at log indexes [from, until)."""

    public_key: bytes
    required: bool
    from_index: int
    until_index: int | None

    def covers(self, index: int) -> bool:
        return self.from_index <= index and (self.until_index is None or index < self.until_index)


def signed_content(event: dict[str, Any]) -> bytes:
    """The message a poster signs, from a posted event or a committed record."""
    content = {k: event[k] for k in SIGNED_FIELDS if k in event}
    payload = event.get("payload", {})
    if "seq" in event and isinstance(payload, dict):
        # A committed record: its references carry the index and seq the ledger resolved.
        payload = posted_payload(payload)
    content["payload"] = payload
    content["attachments"] = [
        {k: a[k] for k in ATTACHMENT_FIELDS if k in a} for a in event.get("attachments", [])
    ]
    return CONTEXT + canonicalize(content)


def sign_event(event: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """Base64 signature a poster puts in the event's ``signature`` field."""
    return base64.b64encode(key.sign(signed_content(event))).decode()


def _b64(v: object, what: str, size: int) -> bytes:
    raw = decode_b64(v, what, PosterSignatureError)
    if len(raw) != size:
        raise PosterSignatureError(f"{what} must be {size} bytes, got {len(raw)}")
    return raw


def verify_event_signature(event: dict[str, Any], public_key: bytes, signature: str) -> None:
    """Raise :class:`PosterSignatureError` unless ``signature`` signs the event's content."""
    sig = _b64(signature, "signature", 64)
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(sig, signed_content(event))
    except InvalidSignature:
        raise PosterSignatureError("the poster's signature does not match the event") from None


def verify_record_signature(record: dict[str, Any]) -> bool:
    """Check a committed record's ``poster_signature``; False if it has none."""
    ps = record.get("poster_signature")
    if ps is None:
        return False
    if not isinstance(ps, dict):
        raise PosterSignatureError("poster_signature must be an object")
    sig = ps.get("signature")
    if not isinstance(sig, str):
        raise PosterSignatureError("poster_signature.signature must be a base64 string")
    verify_event_signature(record, _b64(ps.get("public_key"), "public_key", 32), sig)
    return True


def check_registered_key(record: dict[str, Any], keys: Sequence[RegisteredKey]) -> None:
    """Raise unless the record's signing key is the one its poster registered for the
    record's log index (or the record is unsigned and no registered key required it).

    ``keys`` are the poster's registrations. The signature itself is checked by
    :func:`verify_record_signature`; this compares only the key.
    """
    index = record.get("index")
    due = [k for k in keys if isinstance(index, int) and k.covers(index)]
    ps = record.get("poster_signature")
    if ps is None:
        if any(k.required for k in due):
            raise MissingPosterSignature(
                "the record is unsigned, but its poster's registered key required a signature"
            )
        return
    public = _b64(ps.get("public_key") if isinstance(ps, dict) else None, "public_key", 32)
    if not any(k.public_key == public for k in due):
        want = ", ".join(base64.b64encode(k.public_key).decode() for k in due) or "none"
        raise UnregisteredPosterKey(
            f"signed with key {base64.b64encode(public).decode()}, but the key its poster had "
            f"registered at log index {index} was {want}"
        )
