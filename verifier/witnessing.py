"""Witness cosignatures, k-of-n witness policies, and the tlog-witness wire formats.

Pure: text and bytes in, values or typed exceptions out.

- Cosignatures are C2SP tlog-cosignature v1 signatures (key type 0x04) on a checkpoint
  note; :func:`cosigners` lists the trusted witnesses whose cosignature verifies, with the
  time each one claims.
- :class:`WitnessPolicy` says when a checkpoint counts as witnessed: at least ``quorum``
  of the given witnesses cosigned it.
- :class:`AddCheckpointRequest` and the response helpers are the bodies of C2SP
  tlog-witness ``POST <prefix>/add-checkpoint`` (§add-checkpoint): the request, the 200
  reply of signature lines, and the 409 reply ``<size>\\n`` (``text/x.tlog.size``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from verifier import merkle
from verifier.errors import VerifierError
from verifier.note import (
    ALG_COSIGNATURE_V1,
    Note,
    NoteError,
    NoteSignature,
    Verifier,
    cosignature_time,
    parse_note,
    verified_by,
)

#: tlog-witness: a client MUST NOT send more than 63 consistency proof lines.
MAX_PROOF_LINES = 63
#: A request is an old-size line, <= 63 hashes and one checkpoint note; 64 KiB is ample.
MAX_REQUEST_BYTES = 64 << 10
SIZE_CONTENT_TYPE = "text/x.tlog.size"
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


class WitnessError(ValueError, VerifierError):
    """A cosignature, policy or add-checkpoint message is malformed or unmet."""


class AddCheckpointFormatError(WitnessError):
    """An add-checkpoint request or reply does not follow tlog-witness (HTTP 400)."""


class QuorumError(WitnessError):
    """Fewer than ``quorum`` of the policy's witnesses cosigned the checkpoint."""

    def __init__(self, have: Sequence[str], quorum: int, of: int) -> None:
        names = ", ".join(have) or "none"
        super().__init__(
            f"checkpoint has {len(have)} valid witness cosignature(s) ({names}); "
            f"the policy needs {quorum} of {of}"
        )
        self.have = tuple(have)
        self.quorum = quorum


def _check_witness_keys(witnesses: Sequence[Verifier]) -> None:
    for w in witnesses:
        if w.alg != ALG_COSIGNATURE_V1:
            raise WitnessError(
                f"witness key {w.name} has type {w.alg:#04x}; "
                "tlog-cosignature v1 witness keys have type 0x04"
            )


def cosigners(note: Note, witnesses: Sequence[Verifier]) -> list[tuple[Verifier, int]]:
    """The given witnesses whose cosignature on ``note`` verifies, each with its claimed time.

    tlog-cosignature v1: the signed message is ``cosignature/v1``, ``time <t>`` and the
    checkpoint body; the time is the signature's first eight bytes. Signatures by other
    keys are ignored; a signature naming a given witness's key that does not verify raises
    :class:`verifier.note.NoteError` (tampering, not ignorance), as in ``verified_by``.
    """
    _check_witness_keys(witnesses)
    valid = verified_by(note, witnesses)
    out: list[tuple[Verifier, int]] = []
    for w in valid:
        sig = next(s for s in note.signatures if s.name == w.name and s.key_id == w.key_id)
        out.append((w, cosignature_time(sig.sig)))
    return out


@dataclass(frozen=True)
class WitnessPolicy:
    """A checkpoint is witnessed when at least ``quorum`` of ``witnesses`` cosigned it."""

    witnesses: tuple[Verifier, ...]
    quorum: int

    def __init__(self, witnesses: Iterable[Verifier], quorum: int) -> None:
        ws = tuple(witnesses)
        _check_witness_keys(ws)
        if len({(w.name, w.key_id) for w in ws}) != len(ws):
            raise WitnessError("a witness key is listed twice")
        if ws and not 1 <= quorum <= len(ws):
            raise WitnessError(f"quorum {quorum} must be between 1 and {len(ws)} witnesses")
        if not ws and quorum != 0:
            raise WitnessError("a quorum needs witnesses")
        object.__setattr__(self, "witnesses", ws)
        object.__setattr__(self, "quorum", quorum)

    def check(self, note: Note) -> list[tuple[Verifier, int]]:
        """The valid cosignatures (witness, time); :class:`QuorumError` when too few.

        A policy without witnesses requires nothing and returns an empty list.
        """
        found = cosigners(note, self.witnesses)
        if len(found) < self.quorum:
            raise QuorumError([w.name for w, _ in found], self.quorum, len(self.witnesses))
        return found

    def met_by(self, cosigned: Iterable[Verifier]) -> bool:
        """Whether cosignatures already verified from ``cosigned`` meet the quorum."""
        keys = {(w.name, w.key_id) for w in self.witnesses}
        return len({(v.name, v.key_id) for v in cosigned} & keys) >= self.quorum


# --- tlog-witness add-checkpoint bodies --------------------------------------------------


def _decimal(s: str, what: str) -> int:
    if not _DECIMAL.fullmatch(s) or int(s) >= 1 << 64:
        raise AddCheckpointFormatError(f"{what} {s[:40]!r} is not a decimal uint64")
    return int(s)


@dataclass(frozen=True)
class AddCheckpointRequest:
    """tlog-witness §add-checkpoint request: ``old <size>``, proof lines, blank, checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: str

    def to_text(self) -> str:
        if self.old_size < 0:
            raise AddCheckpointFormatError("old size must be non-negative")
        if len(self.proof) > MAX_PROOF_LINES:
            raise AddCheckpointFormatError(f"more than {MAX_PROOF_LINES} proof lines")
        lines = [f"old {self.old_size}", *(base64.b64encode(h).decode() for h in self.proof)]
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def parse(cls, data: bytes | str) -> AddCheckpointRequest:
        """Parse and check the syntax; the checkpoint note is parsed, not verified."""
        if isinstance(data, bytes):
            if len(data) > MAX_REQUEST_BYTES:
                raise AddCheckpointFormatError(f"request is larger than {MAX_REQUEST_BYTES} bytes")
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise AddCheckpointFormatError("request is not valid UTF-8") from None
        head, sep, checkpoint = data.partition("\n\n")
        if not sep:
            raise AddCheckpointFormatError("request has no blank line before the checkpoint")
        lines = head.split("\n")
        if not lines[0].startswith("old "):
            raise AddCheckpointFormatError("request must start with an 'old <size>' line")
        old = _decimal(lines[0][4:], "old size")
        if len(lines) - 1 > MAX_PROOF_LINES:
            raise AddCheckpointFormatError(f"more than {MAX_PROOF_LINES} proof lines")
        proof: list[bytes] = []
        for i, line in enumerate(lines[1:]):
            try:
                h = base64.b64decode(line, validate=True)
            except ValueError:  # binascii.Error, or non-ASCII text
                raise AddCheckpointFormatError(f"proof line {i} is not base64") from None
            if len(h) != merkle.HASH_SIZE:
                raise AddCheckpointFormatError(f"proof line {i} is {len(h)} bytes, want 32")
            proof.append(h)
        try:
            parse_note(checkpoint)
        except NoteError as e:
            raise AddCheckpointFormatError(f"checkpoint: {e}") from None
        return cls(old, tuple(proof), checkpoint)


def format_cosignatures(sigs: Iterable[NoteSignature]) -> str:
    """The 200 reply: one note signature line per cosignature."""
    out = "".join(s.line() for s in sigs)
    if not out:
        raise AddCheckpointFormatError("a 200 reply needs at least one signature line")
    return out


def parse_cosignatures(text: str | bytes, checkpoint: Note) -> Note:
    """The checkpoint with the signature lines of a 200 reply added (unverified).

    tlog-witness: the client may append the reply to the checkpoint and verify the result
    as a note with the witness keys it trusts; see :func:`cosigners`.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise AddCheckpointFormatError("reply is not valid UTF-8") from None
    if not text or not text.endswith("\n") or not text.startswith("\u2014 "):
        raise AddCheckpointFormatError("reply must be signature lines, each ending in a newline")
    try:
        extra = parse_note("x\n\n" + text).signatures
    except NoteError as e:
        raise AddCheckpointFormatError(f"reply: {e}") from None
    note = checkpoint
    for s in extra:
        note = note.add(s)
    return note


def format_size(size: int) -> str:
    """The 409 reply body: the witness's latest cosigned size in decimal, then a newline."""
    return f"{size}\n"


def parse_size(text: str | bytes) -> int:
    """Parse a ``text/x.tlog.size`` body."""
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    if not text.endswith("\n"):
        raise AddCheckpointFormatError("a tlog size body must end with a newline")
    return _decimal(text[:-1], "tlog size")
