"""C2SP tlog-checkpoint bodies and C2SP tlog-proof offline inclusion proofs.

A checkpoint body is: origin line, decimal tree size, base64 root hash, then optional
extension lines (c2sp.org/tlog-checkpoint). A tlog-proof is ``c2sp.org/tlog-proof@v1``,
optional ``extra``, ``index``, one proof hash per line, a blank line, then the signed
checkpoint (c2sp.org/tlog-proof).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from verifier import merkle
from verifier.b64 import decode_b64
from verifier.errors import VerifierError
from verifier.note import Note, NoteError, Verifier, open_note, parse_note

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES = 63


class CheckpointError(ValueError, VerifierError):
    """A checkpoint or tlog-proof is malformed, unsigned, or does not verify."""


def _b64(s: str, what: str) -> bytes:
    return decode_b64(s, what, CheckpointError)


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed commitment to its tree of ``size`` leaves with root ``root``."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @classmethod
    def parse_body(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint body must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint body needs origin, size and root lines")
        origin, size, root = lines[:3]
        if not origin:
            raise CheckpointError("checkpoint origin is empty")
        if not _DECIMAL.fullmatch(size) or int(size) >= 1 << 64:
            raise CheckpointError(f"checkpoint size {size!r} is not a decimal uint64")
        raw = _b64(root, "checkpoint root")
        if len(raw) != merkle.HASH_SIZE:
            raise CheckpointError(f"checkpoint root is {len(raw)} bytes, want 32")
        if any(not ext for ext in lines[3:]):
            raise CheckpointError("checkpoint has an empty extension line")
        return cls(origin, int(size), raw, tuple(lines[3:]))


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint together with the signed note that carries it."""

    checkpoint: Checkpoint
    note: Note

    def to_text(self) -> str:
        return self.note.to_text()


def open_checkpoint(data: bytes | str, log: Verifier) -> SignedCheckpoint:
    """Parse a signed checkpoint and require the log's signature; origin = key name."""
    try:
        note = open_note(data, log)
    except NoteError as e:
        raise CheckpointError(f"checkpoint: {e}") from None
    cp = Checkpoint.parse_body(note.text)
    if cp.origin != log.name:
        raise CheckpointError(f"checkpoint origin {cp.origin!r} is not the log key's {log.name!r}")
    return SignedCheckpoint(cp, note)


def parse_signed_checkpoint(data: bytes | str) -> SignedCheckpoint:
    """Parse without checking any signature (for tools that check them separately)."""
    try:
        note = parse_note(data)
    except NoteError as e:
        raise CheckpointError(f"checkpoint: {e}") from None
    return SignedCheckpoint(Checkpoint.parse_body(note.text), note)


@dataclass(frozen=True)
class InclusionProof:
    """Proof that the leaf at ``index`` is in the tree of ``tree_size`` leaves."""

    index: int
    tree_size: int
    hashes: tuple[bytes, ...]

    def verify(self, leaf_hash: bytes, root: bytes) -> None:
        """RFC 9162 §2.1.3.2; raises :class:`verifier.merkle.ProofError`."""
        merkle.verify_inclusion(self.index, self.tree_size, leaf_hash, self.hashes, root)


def tlog_proof_text(
    index: int, hashes_b64: Sequence[str], checkpoint_text: str, extra: bytes | None = None
) -> str:
    """Format a c2sp.org/tlog-proof from already base64-encoded proof hashes."""
    head = PROOF_HEADER
    if extra is not None:
        head += "\nextra " + base64.b64encode(extra).decode()
    if not hashes_b64:
        return f"{head}\nindex {index}\n\n{checkpoint_text}"
    return f"{head}\nindex {index}\n" + "\n".join(hashes_b64) + "\n\n" + checkpoint_text


@dataclass(frozen=True)
class TlogProof:
    """A C2SP tlog-proof: an inclusion proof bundled with its signed checkpoint."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint_text: str
    extra: bytes | None = None

    def to_text(self) -> str:
        hashes = [base64.b64encode(h).decode() for h in self.hashes]
        return tlog_proof_text(self.index, hashes, self.checkpoint_text, self.extra)

    @classmethod
    def parse(cls, data: bytes | str) -> TlogProof:
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise CheckpointError("tlog-proof is not valid UTF-8") from None
        head, sep, cp_text = data.partition("\n\n")
        if not sep:
            raise CheckpointError("tlog-proof has no blank line before its checkpoint")
        lines = head.split("\n")
        if lines[0] != PROOF_HEADER:
            raise CheckpointError(f"tlog-proof must start with {PROOF_HEADER!r}")
        pos = 1
        extra = None
        if pos < len(lines) and lines[pos].startswith("extra "):
            extra = _b64(lines[pos][6:], "tlog-proof extra")
            pos += 1
        if pos >= len(lines) or not lines[pos].startswith("index "):
            raise CheckpointError("tlog-proof has no index line")
        idx = lines[pos][6:]
        if not _DECIMAL.fullmatch(idx):
            raise CheckpointError(f"tlog-proof index {idx!r} is not a decimal number")
        hashes = tuple(_b64(h, f"tlog-proof hash {i}") for i, h in enumerate(lines[pos + 1 :]))
        if len(hashes) > MAX_PROOF_HASHES:
            raise CheckpointError(f"tlog-proof has more than {MAX_PROOF_HASHES} hashes")
        return cls(int(idx), hashes, cp_text, extra)

    def verify(self, leaf_hash: bytes, log: Verifier) -> SignedCheckpoint:
        """Check the checkpoint's log signature and the inclusion of ``leaf_hash``."""
        sc = open_checkpoint(self.checkpoint_text, log)
        cp = sc.checkpoint
        InclusionProof(self.index, cp.size, self.hashes).verify(leaf_hash, cp.root)
        return sc
