"""Receipts: what the ledger hands back for each event, and their offline verification.

A receipt carries the log index, the event hash, the signed checkpoint of the batch that
committed the event, and the RFC 9162 inclusion proof of the entry ``0x01 || event hash``
in that checkpoint's tree, twice: as a list of hashes and as a C2SP tlog-proof text.
Verifying needs nothing but the log's verifier key.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from verifier import merkle
from verifier.canonical import canonicalize
from verifier.checkpoint import (
    CheckpointError,
    SignedCheckpoint,
    TlogProof,
    open_checkpoint,
    tlog_proof_text,
)
from verifier.note import Verifier

ENTRY_VERSION = b"\x01"


class ReceiptError(ValueError):
    """A receipt is malformed or does not verify."""


def entry_leaf_hash(event_hash: bytes) -> bytes:
    """Leaf hash of the public log entry ``0x01 || event hash``."""
    return merkle.leaf_hash(ENTRY_VERSION + event_hash)


def event_hash_of(record: dict[str, Any]) -> bytes:
    """SHA-256 of a record's RFC 8785 canonical form."""
    return hashlib.sha256(canonicalize(record)).digest()


def _b64d(v: object, what: str) -> bytes:
    if not isinstance(v, str):
        raise ReceiptError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(v, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        raise ReceiptError(f"{what} is not valid base64") from None


def receipt_json(
    index: int, event_hash_b64: str, checkpoint: str, proof_b64: list[str]
) -> dict[str, Any]:
    """The JSON form of a receipt (:meth:`Receipt.to_json`), from already base64 hashes.

    The ledger encodes each proof node once for a whole batch of receipts and builds
    their JSON here, so both paths give the same fields in the same order.
    """
    return {
        "index": index,
        "event_hash": event_hash_b64,
        "checkpoint": checkpoint,
        "inclusion_proof": proof_b64,
        "tlog_proof": tlog_proof_text(index, proof_b64, checkpoint),
    }


@dataclass(frozen=True)
class Receipt:
    """Proof that one event is in the log, verifiable offline."""

    index: int
    event_hash: bytes
    checkpoint: str
    inclusion_proof: tuple[bytes, ...]

    @property
    def tlog_proof(self) -> str:
        return TlogProof(self.index, self.inclusion_proof, self.checkpoint).to_text()

    def to_json(self) -> dict[str, Any]:
        return receipt_json(
            self.index,
            base64.b64encode(self.event_hash).decode(),
            self.checkpoint,
            [base64.b64encode(h).decode() for h in self.inclusion_proof],
        )

    @classmethod
    def from_json(cls, obj: object) -> Receipt:
        if not isinstance(obj, dict):
            raise ReceiptError("a receipt must be a JSON object")
        index = obj.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ReceiptError("receipt index must be a non-negative integer")
        cp = obj.get("checkpoint")
        if not isinstance(cp, str):
            raise ReceiptError("receipt checkpoint must be the signed note text")
        proof = obj.get("inclusion_proof")
        if not isinstance(proof, list):
            raise ReceiptError("receipt inclusion_proof must be a list")
        r = cls(
            index,
            _b64d(obj.get("event_hash"), "event_hash"),
            cp,
            tuple(_b64d(h, f"inclusion_proof[{i}]") for i, h in enumerate(proof)),
        )
        tp = obj.get("tlog_proof")
        if tp is not None and tp != r.tlog_proof:
            raise ReceiptError("receipt tlog_proof does not agree with its other fields")
        return r

    def verify(self, log: Verifier, record: dict[str, Any] | None = None) -> SignedCheckpoint:
        """Check the log's signature, the inclusion proof and (if given) the record's hash.

        Raises :class:`ReceiptError`; returns the verified checkpoint.
        """
        if record is not None:
            got = event_hash_of(record)
            if got != self.event_hash:
                raise ReceiptError("the record's canonical hash is not the receipt's event_hash")
            if record.get("index") != self.index:
                raise ReceiptError("the record's index is not the receipt's index")
        try:
            sc = open_checkpoint(self.checkpoint, log)
            merkle.verify_inclusion(
                self.index,
                sc.checkpoint.size,
                entry_leaf_hash(self.event_hash),
                self.inclusion_proof,
                sc.checkpoint.root,
            )
        except (CheckpointError, merkle.ProofError) as e:
            raise ReceiptError(str(e)) from None
        return sc
