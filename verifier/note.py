"""C2SP signed-note v1: notes, Ed25519 signer and verifier keys, key IDs.

Spec: c2sp.org/signed-note. A note is UTF-8 text ending in a newline, then a blank line,
then one signature line per signer: ``— <name> <base64(key ID || signature)>``. The key ID
is the first four bytes of SHA-256(name || 0x0A || type || public key).

Also: C2SP tlog-cosignature v1 (type 0x04), the timestamped signatures witnesses add.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from verifier.errors import VerifierError

#: Signature algorithm bytes from the signed-note spec.
ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04


_DASH = "\u2014 "
#: Verifiers must accept at least this many signatures; more is a malformed note.
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 1 << 20


class NoteError(ValueError, VerifierError):
    """A note, key or signature is malformed or does not verify."""


class UnverifiedNoteError(NoteError):
    """No signature by a trusted key verified."""


def _check_name(name: str) -> None:
    # signed-note: a key name is non-empty and has no Unicode spaces or plus signs.
    if not name or "+" in name or any(c.isspace() for c in name):
        raise NoteError(f"invalid key name {name!r}: it must be non-empty, without spaces or '+'")


def key_id(name: str, alg: int, public: bytes) -> bytes:
    """Key ID = SHA-256(name || "\\n" || alg || public key)[:4] (signed-note §Signatures)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    """A named public key that checks signatures on notes."""

    name: str
    alg: int
    public: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.alg, self.public)

    @property
    def vkey(self) -> str:
        """The verifier key string: ``name+hex(key ID)+base64(alg || public key)``."""
        blob = base64.b64encode(bytes([self.alg]) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{blob}"

    def _ed25519(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public)

    def verify(self, message: bytes, sig: bytes) -> None:
        """Raise :class:`NoteError` unless ``sig`` is this key's signature on ``message``.

        For cosignature/v1 keys ``message`` is the checkpoint body and ``sig`` carries the
        8-byte timestamp first (tlog-cosignature §Format).
        """
        try:
            if self.alg == ALG_ED25519:
                self._ed25519().verify(sig, message)
                return
            if self.alg == ALG_COSIGNATURE_V1:
                if len(sig) != 72:
                    raise NoteError(f"cosignature by {self.name} is {len(sig)} bytes, want 72")
                (ts,) = struct.unpack(">Q", sig[:8])
                self._ed25519().verify(sig[8:], cosignature_message(message, ts))
                return
        except InvalidSignature:
            raise NoteError(f"signature by {self.name} does not verify") from None
        raise NoteError(f"unsupported signature algorithm {self.alg:#04x} for {self.name}")


def cosignature_message(body: bytes, timestamp: int) -> bytes:
    """tlog-cosignature v1: ``cosignature/v1\\ntime <unix seconds>\\n`` then the checkpoint."""
    return b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + body


def cosignature_time(sig: bytes) -> int:
    """The Unix time a cosignature/v1 signature claims (its first eight bytes)."""
    if len(sig) != 72:
        raise NoteError(f"cosignature is {len(sig)} bytes, want 72")
    return int(struct.unpack(">Q", sig[:8])[0])


def parse_vkey(vkey: str) -> Verifier:
    """Parse ``name+keyid+base64(alg||key)``; the key ID must match the key."""
    parts = vkey.strip().split("+", 2)  # the base64 key may hold "+"
    if len(parts) != 3:
        raise NoteError(f"verifier key {vkey!r} must have the form name+keyid+key")
    name, hexid, blob = parts
    _check_name(name)
    try:
        raw = base64.b64decode(blob, validate=True)
        kid = bytes.fromhex(hexid)
    except (binascii.Error, ValueError):
        raise NoteError(f"verifier key {vkey!r}: bad hex key ID or base64 key") from None
    if len(kid) != 4 or len(raw) != 33:
        raise NoteError(f"verifier key {vkey!r}: want a 4-byte key ID and a 32-byte key")
    v = Verifier(name, raw[0], raw[1:])
    if v.alg not in (ALG_ED25519, ALG_COSIGNATURE_V1):
        raise NoteError(f"verifier key {vkey!r}: unsupported algorithm {v.alg:#04x}")
    if v.key_id != kid:
        raise NoteError(f"verifier key {vkey!r}: key ID does not match the key")
    return v


class NoteSigner(Protocol):
    """What signs a note: a name, the verifier key that checks its signatures, and a
    ``sign`` that never shows the private key (a key in memory, :class:`Signer`; or one
    held by an HSM through PKCS#11, docs/operations.md "Key handling")."""

    @property
    def name(self) -> str: ...

    @property
    def verifier(self) -> Verifier: ...

    def sign(self, message: bytes, timestamp: int | None = None) -> bytes:
        """The signature on ``message`` (for cosignature/v1: timestamp then signature)."""
        ...


class Signer:
    """A named Ed25519 private key that signs notes (log key) or cosigns checkpoints."""

    def __init__(self, name: str, private: Ed25519PrivateKey, alg: int = ALG_ED25519) -> None:
        _check_name(name)
        if alg not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise NoteError(f"unsupported signature algorithm {alg:#04x}")
        self.name = name
        self.alg = alg
        self._private = private
        from cryptography.hazmat.primitives import serialization

        self.public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.verifier = Verifier(name, alg, self.public)

    @classmethod
    def generate(cls, name: str, alg: int = ALG_ED25519) -> Signer:
        return cls(name, Ed25519PrivateKey.generate(), alg)

    def sign(self, message: bytes, timestamp: int | None = None) -> bytes:
        """Sign a note body; cosigners add the 8-byte timestamp before the signature."""
        if self.alg == ALG_COSIGNATURE_V1:
            if timestamp is None:
                raise NoteError("a cosignature needs a timestamp")
            sig = self._private.sign(cosignature_message(message, timestamp))
            return struct.pack(">Q", timestamp) + sig
        return self._private.sign(message)

    @property
    def skey(self) -> str:
        """Private key string ``PRIVATE+KEY+name+hex(keyid)+base64(alg||seed)``; keep secret."""
        from cryptography.hazmat.primitives import serialization

        seed = self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        blob = base64.b64encode(bytes([self.alg]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{blob}"

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        parts = skey.strip().split("+", 4)  # the base64 key may hold "+"
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("private key must have the form PRIVATE+KEY+name+keyid+key")
        try:
            raw = base64.b64decode(parts[4], validate=True)
        except ValueError:  # binascii.Error, or non-ASCII text
            raise NoteError("private key: bad base64") from None
        if len(raw) != 33:
            raise NoteError("private key: want one algorithm byte and a 32-byte seed")
        signer = cls(parts[2], Ed25519PrivateKey.from_private_bytes(raw[1:]), raw[0])
        if signer.verifier.key_id.hex() != parts[3]:
            raise NoteError("private key: key ID does not match the key")
        return signer


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    sig: bytes

    def line(self) -> str:
        return f"{_DASH}{self.name} {base64.b64encode(self.key_id + self.sig).decode()}\n"


@dataclass(frozen=True)
class Note:
    """A parsed note: the signed text and its signature lines (unverified)."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def to_text(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def add(self, sig: NoteSignature) -> Note:
        """This note with one more signature, unless that key has signed it already."""
        if any(s.name == sig.name and s.key_id == sig.key_id for s in self.signatures):
            return self
        return Note(self.text, (*self.signatures, sig))


def _check_text(text: str, what: str) -> None:
    if not text.endswith("\n"):
        raise NoteError(f"{what} must end with a newline")
    for c in text:
        if (ord(c) < 0x20 and c != "\n") or c == "\x7f":
            raise NoteError(f"{what} contains a control character {ord(c):#04x}")


def parse_note(data: bytes | str) -> Note:
    """Split a signed note into text and signature lines, checking the syntax only."""
    if isinstance(data, bytes):
        if len(data) > MAX_NOTE_BYTES:
            raise NoteError(f"note is larger than {MAX_NOTE_BYTES} bytes")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not valid UTF-8") from None
    split = data.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, sigtext = data[: split + 1], data[split + 2 :]
    _check_text(text, "note text")
    if not sigtext.endswith("\n"):
        raise NoteError("note signatures must end with a newline")
    sigs: list[NoteSignature] = []
    for line in sigtext[:-1].split("\n"):
        if not line.startswith(_DASH):
            raise NoteError(f"malformed signature line {line[:80]!r}")
        fields = line[len(_DASH) :].split(" ")
        if len(fields) != 2:
            raise NoteError(f"malformed signature line {line[:80]!r}")
        name, blob = fields
        _check_name(name)
        try:
            raw = base64.b64decode(blob, validate=True)
        except ValueError:  # binascii.Error, or non-ASCII text
            raise NoteError(f"signature by {name} is not valid base64") from None
        if len(raw) < 5:
            raise NoteError(f"signature by {name} is too short")
        sigs.append(NoteSignature(name, raw[:4], raw[4:]))
        if len(sigs) > MAX_SIGNATURES:
            raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    if not sigs:
        raise NoteError("note has no signatures")
    return Note(text, tuple(sigs))


def sign_note(text: str, signers: Iterable[NoteSigner], timestamp: int | None = None) -> Note:
    _check_text(text, "note text")
    sigs = tuple(
        NoteSignature(s.name, s.verifier.key_id, s.sign(text.encode(), timestamp)) for s in signers
    )
    return Note(text, sigs)


def verified_by(note: Note, verifiers: Sequence[Verifier]) -> list[Verifier]:
    """The known verifiers whose signature on the note is valid.

    Signatures by unknown keys are ignored (signed-note §Verifying); a signature that names
    a known key but does not verify is an error, since it means tampering, not ignorance.
    """
    found: list[Verifier] = []
    by_id = {(v.name, v.key_id): v for v in verifiers}
    for s in note.signatures:
        v = by_id.get((s.name, s.key_id))
        if v is None:
            continue
        v.verify(note.text.encode(), s.sig)
        if v not in found:
            found.append(v)
    return found


def open_note(data: bytes | str, verifier: Verifier) -> Note:
    """Parse a note and require a valid signature by ``verifier``."""
    note = parse_note(data)
    if verifier not in verified_by(note, [verifier]):
        raise UnverifiedNoteError(
            f"note is not signed by {verifier.name} ({verifier.key_id.hex()})"
        )
    return note
