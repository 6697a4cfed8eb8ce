"""The one value along the append path: a checkpoint this log signed (issue 14 §5).

The sequencer emits a :class:`SignedCheckpoint` when it commits a batch; the ledger keeps
it for receipts, announces it to its listeners (the log side of witnessing), and the store
reads its stored checkpoints back as the same type. Size and root travel as values, so
nothing on the way re-parses the log's own note to learn them (C2SP tlog-checkpoint).
Notes from outside (a witness's cosignatures) are still parsed and verified where they
arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from verifier.note import Note, parse_note


@dataclass(frozen=True)
class SignedCheckpoint:
    """Tree ``size``, its ``root`` hash, and the signed checkpoint ``note`` (text)."""

    size: int
    root: bytes
    note: str
    _signed: Note | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, size: int, root: bytes, signed: Note) -> SignedCheckpoint:
        """The checkpoint whose note the sequencer just signed (no parse needed later)."""
        return cls(size, root, signed.to_text(), signed)

    @property
    def signed(self) -> Note:
        """The note split into its text and signature lines (parsed once, if at all)."""
        if self._signed is None:
            # Our own note, written by the sequencer: only read back from the database
            # does it need splitting, and then once per value.
            object.__setattr__(self, "_signed", parse_note(self.note))
        assert self._signed is not None
        return self._signed
