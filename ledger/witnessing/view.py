"""What the ledger's readers need of witnessing, as a typed interface.

Receipts, ``GET /v1/log``, ``/log/checkpoint``, the timestamp routes and evidence bundles
all read cosignatures and RFC 3161 tokens gathered by the log side of witnessing. They
depend on :class:`WitnessingView` only; the composition root (``api/serving.py``) builds
the implementation and hands it to the app explicitly. ``None`` stands for a log that
runs without witnessing (and without a timestamp authority).
"""

from __future__ import annotations

from typing import Any, Protocol

from ledger.checkpoints import SignedCheckpoint
from verifier.witnessing import WitnessPolicy


class WitnessingView(Protocol):
    """Cosignatures, tokens and the witness policy of one log, as its readers see them."""

    @property
    def policy(self) -> WitnessPolicy:
        """The k-of-n witness policy the log submits under."""
        ...

    def cosigned_checkpoint(self, size: int) -> str:
        """The checkpoint note of ``size`` with every cosignature gathered so far.

        Raises :class:`ledger.service.NotFound` when the log signed no checkpoint of that size.
        """
        ...

    def timestamp_reply(self, size: int) -> bytes | None:
        """The stored RFC 3161 TimeStampResp (DER) over checkpoint ``size``'s note body."""
        ...

    def tsa_ca_pem(self) -> bytes:
        """The PEM CA certificate tokens chain to; :class:`NotFound` without a TSA."""
        ...

    def receipt_fields(self, checkpoint: SignedCheckpoint) -> dict[str, Any]:
        """Receipt fields ``cosigned_by``, ``cosigned_checkpoint`` and ``timestamp`` of a
        receipt made against ``checkpoint``."""
        ...

    def log_fields(self) -> dict[str, Any]:
        """``GET /v1/log`` fields: the witness policy, each witness, the witnessed size."""
        ...


def receipt_fields_for(w: WitnessingView | None, checkpoint: SignedCheckpoint) -> dict[str, Any]:
    """:meth:`WitnessingView.receipt_fields`, or the fields of an unwitnessed log."""
    if w is None:
        return {"cosigned_by": [], "cosigned_checkpoint": checkpoint.note, "timestamp": None}
    return w.receipt_fields(checkpoint)


def log_fields(w: WitnessingView | None) -> dict[str, Any]:
    """:meth:`WitnessingView.log_fields`, or those of a log without witnesses."""
    if w is None:
        return {
            "witnessed_size": 0,
            "witnessed_checkpoint": None,
            "witness_quorum": 0,
            "witnesses": [],
        }
    return w.log_fields()
