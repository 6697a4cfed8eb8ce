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
from verifier.b64 import decode_b64
from verifier.canonical import canonicalize
from verifier.checkpoint import (
    CheckpointError,
    SignedCheckpoint,
    TlogProof,
    open_checkpoint,
    tlog_proof_text,
)
from verifier.errors import VerifierError
from verifier.note import Verifier

ENTRY_VERSION = b"\x01"


class ReceiptError(ValueError, VerifierError):
    """A receipt is malformed or does not verify."""


def entry_leaf_hash(event_hash: bytes) -> bytes:
    """Leaf hash of the public log entry ``0x01 || event hash``."""
    return merkle.leaf_hash(ENTRY_VERSION + event_hash)


def event_hash_of(record: dict[str, Any]) -> bytes:
    """SHA-256 of a record's RFC 8785 canonical form."""
    return hashlib.sha256(canonicalize(record)).digest()


def _b64d(v: object, what: str) -> bytes:
    return decode_b64(v, what, ReceiptError)


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


# --- a poster's own check: rebuild the record from the event it posted ------------------------

#: Receipt members (beside ``index``) that carry what the ledger added to the posted event.
COMPLETION_FIELDS = ("seq", "prev", "recorded_at", "salt", "record_checkpoint")
_POSTED = ("project", "trade_type", "type", "actor", "occurred_at")
_ATTACHMENT = ("sha256", "size", "media_type", "name")


def record_from_event(event: dict[str, Any], receipt: dict[str, Any]) -> dict[str, Any]:
    """The record the ledger committed, rebuilt from the posted event and its receipt.

    Mirrors ``ledger.records.record_json`` (tests/test_receipts.py holds the two equal):
    the posted members, the payload's references with their resolved ``index`` and
    ``seq``, the attachments with their chunk roots, and the receipt's ``seq``, ``prev``,
    ``index``, ``recorded_at``, ``salt``, ``record_checkpoint`` and ``catalogue_version``.
    A sealed event's receipt also carries ``sealed_salts`` (path -> base64 salt, for the
    poster's eyes only): each sealed part is then taken out and committed to, and the
    record joins the sealed chain, as the ledger committed it (verifier.sealed.seal_record);
    with ``"sealed_chain": false`` (confidential fields) it stays in the process chain.
    """
    record = _posted_record(event, receipt)
    salts = receipt.get("sealed_salts")
    if salts is None:
        return record
    from verifier.sealed import OpeningError, seal_record

    # Confidential fields (``"sealed_chain": false``) leave the record in its chain.
    sealed_chain = receipt.get("sealed_chain", True)
    if not isinstance(sealed_chain, bool):
        raise ReceiptError("sealed_chain must be true or false")
    try:
        return seal_record(record, salts, sealed_chain=sealed_chain)
    except OpeningError as e:
        raise ReceiptError(f"the receipt's sealed_salts do not fit the event: {e}") from None


def _posted_record(event: dict[str, Any], receipt: dict[str, Any]) -> dict[str, Any]:
    """The record with every sealed part in place, as the poster posted and signed it."""
    from verifier.references import resolved_payload

    missing = [k for k in _POSTED if k not in event]
    if missing:
        raise ReceiptError(f"the event lacks {', '.join(missing)}")
    absent = [k for k in COMPLETION_FIELDS if k not in receipt]
    if absent:
        raise ReceiptError(
            f"the receipt lacks {', '.join(absent)}: it predates receipts a poster can check; "
            "fetch the current one with GET /v1/receipts/{index}"
        )
    record: dict[str, Any] = {k: event[k] for k in _POSTED}
    payload = event.get("payload", {})
    resolved = receipt.get("resolved") or {}
    if not isinstance(payload, dict) or not isinstance(resolved, dict):
        raise ReceiptError("payload and resolved must be JSON objects")
    try:
        record["payload"] = resolved_payload(payload, resolved)
    except (ValueError, KeyError, TypeError) as e:
        raise ReceiptError(f"the receipt's resolved references do not fit the event: {e}") from None
    posted = event.get("attachments", [])
    roots = receipt.get("chunk_roots") or [None] * len(posted)
    if not isinstance(posted, list) or not isinstance(roots, list) or len(roots) != len(posted):
        raise ReceiptError("the receipt's chunk_roots do not match the event's attachments")
    atts = []
    for a, root in zip(posted, roots, strict=True):
        if not isinstance(a, dict):
            raise ReceiptError("each attachment must be an object")
        one = {k: a[k] for k in _ATTACHMENT if k in a}
        if root is not None:
            one["chunk_root"] = root
        atts.append(one)
    record["attachments"] = atts
    record.update(
        seq=receipt["seq"],
        prev=receipt["prev"],
        index=receipt.get("index"),
        recorded_at=receipt["recorded_at"],
        salt=receipt["salt"],
        checkpoint=receipt["record_checkpoint"],
    )
    if "signature" in event:
        record["poster_signature"] = {
            "public_key": receipt.get("poster_key"),
            "signature": event["signature"],
        }
    if "late_entry" in event:
        record["late_entry"] = event["late_entry"]
    if "catalogue_version" in receipt:
        record["catalogue_version"] = receipt["catalogue_version"]
    return record


def check_receipt(
    receipt: object,
    event: object,
    log: Verifier,
    *,
    witnesses: tuple[Verifier, ...] = (),
    quorum: int = 0,
    tsa_ca_pem: bytes | None = None,
    tsa_required: bool = False,
) -> list[str]:
    """Verify a receipt for the event a poster sent, offline; what held, line by line.

    Recomputes the record from the event and the receipt's completion fields, its event
    hash, the inclusion proof against the log-signed checkpoint, the poster signature
    (when the event is signed), then the witnesses' cosignatures on that checkpoint (at
    least ``quorum`` of ``witnesses``) and its RFC 3161 timestamp (when a CA is given or
    one is required). Raises :class:`ReceiptError` naming the first thing that fails.
    """
    if not isinstance(receipt, dict) or not isinstance(event, dict):
        raise ReceiptError("the receipt and the event must be JSON objects")
    r = Receipt.from_json(receipt)
    record = record_from_event(event, receipt)
    # The poster signed the event as posted; a sealed record commits to its signature.
    posted = _posted_record(event, receipt) if "commitments" in record else record
    got = event_hash_of(record)
    if got != r.event_hash:
        raise ReceiptError(
            "the event hash recomputed from the event and the receipt is "
            f"{base64.b64encode(got).decode()}, not the receipt's event_hash: the event is "
            "not the one posted, or the receipt was altered"
        )
    held = [f"event hash {base64.b64encode(got).decode()} recomputed from the event"]
    sc = r.verify(log, record)
    cp = sc.checkpoint
    held.append(f"included at index {r.index} in checkpoint {cp.size} signed by {log.name}")
    if "signature" in event:
        from verifier.poster import PosterSignatureError, verify_record_signature

        try:
            verify_record_signature(posted)
        except PosterSignatureError as e:
            raise ReceiptError(f"poster signature: {e}") from None
        held.append("poster signature verifies")
    if witnesses or quorum:
        from verifier.note import NoteError, parse_note
        from verifier.witnessing import cosigners

        text = receipt.get("cosigned_checkpoint", r.checkpoint)
        if not isinstance(text, str):
            raise ReceiptError("cosigned_checkpoint must be the signed note text")
        try:
            note = parse_note(text)
            if note.text != sc.note.text:
                raise ReceiptError("cosigned_checkpoint is not the receipt's checkpoint")
            found = cosigners(note, list(witnesses))
        except NoteError as e:
            raise ReceiptError(f"a cosignature does not verify: {e}") from None
        if len(found) < quorum:
            raise ReceiptError(
                f"only {len(found)} of the required {quorum} witness cosignatures on "
                f"checkpoint {cp.size}; fetch the newest receipt with GET /v1/receipts/"
                f"{r.index} once the witnesses have cosigned"
            )
        held.append(
            f"{len(found)} witness cosignature(s) (quorum {quorum}): "
            + ", ".join(v.name for v, _ in found)
        )
    stamp = receipt.get("timestamp")
    if tsa_required and not stamp:
        raise ReceiptError(
            "the receipt has no RFC 3161 timestamp yet, and one is required; fetch the newest "
            f"receipt with GET /v1/receipts/{r.index}"
        )
    if stamp and (tsa_ca_pem is not None or tsa_required):
        from verifier.timestamp import TimestampError, verify_timestamp

        if tsa_ca_pem is None:
            raise ReceiptError("a timestamp is required: give the TSA's CA certificate")
        try:
            when = verify_timestamp(_b64d(stamp, "timestamp"), sc.note.text.encode(), tsa_ca_pem)
        except TimestampError as e:
            raise ReceiptError(f"timestamp: {e}") from None
        held.append(f"RFC 3161 timestamp over checkpoint {cp.size}: {when:%Y-%m-%dT%H:%M:%SZ}")
    return held
