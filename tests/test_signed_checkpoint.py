"""One value along the append path (issue 14 §5): the checkpoint the sequencer signs
reaches the listeners and the receipts as one typed :class:`SignedCheckpoint`, whose size
and root are the signed ones, and nothing on the way re-reads the log's own note."""

from __future__ import annotations

from typing import Any

from ledger.checkpoints import SignedCheckpoint
from ledger.service import Ledger
from ledger.witnessing.view import receipt_fields_for
from tests.conftest import make_event
from tests.test_ledger import post
from verifier.checkpoint import Checkpoint
from verifier.note import Signer, sign_note, verified_by


def test_the_signed_checkpoint_flows_to_listeners_and_receipts(ledger_factory: Any) -> None:
    lg: Ledger = ledger_factory()
    heard: list[SignedCheckpoint] = []
    lg.add_checkpoint_listener(heard.append)
    done = post(lg, [make_event(project="P1") for _ in range(3)])
    done += post(lg, [make_event(project="P2")])
    assert [cp.size for cp in heard] == [3, 4]
    for cp in heard:
        assert isinstance(cp, SignedCheckpoint)
        # The typed size and root are those the note signs, under the log's key.
        body = Checkpoint.parse_body(cp.signed.text)
        assert (body.size, body.root) == (cp.size, cp.root)
        assert verified_by(cp.signed, [lg.signer.verifier]) == [lg.signer.verifier]
        assert cp.signed.to_text() == cp.note
    assert heard[-1] == lg.head()  # the same value as read back from the database
    # Receipts name the very value the sequencer emitted: of each entry's own batch.
    for a in done:
        cp = lg.checkpoint_for(a.index)
        assert cp is heard[0 if a.index < 3 else 1]
        assert lg.receipt(a.index, a.event_hash, cp).checkpoint == cp.note
    for (cp, j), a in zip(lg.receipts_json(done), done, strict=True):
        assert cp is lg.checkpoint_for(a.index) and j["checkpoint"] == cp.note
    # Without witnessing, the receipt's fields carry the note as it was signed.
    fields = receipt_fields_for(None, heard[0])
    assert fields == {"cosigned_by": [], "cosigned_checkpoint": heard[0].note, "timestamp": None}


def test_a_stored_checkpoint_is_split_once_when_asked() -> None:
    signer = Signer.generate("example.test/log")
    root = bytes(range(32))
    note = sign_note(Checkpoint("example.test/log", 7, root).body(), [signer])
    fresh = SignedCheckpoint.of(7, root, note)
    assert fresh.signed is note  # the sequencer's own parse, kept
    stored = SignedCheckpoint(7, root, note.to_text())  # as the store reads it back
    assert stored == fresh
    assert stored.signed == note and stored.signed is stored.signed
