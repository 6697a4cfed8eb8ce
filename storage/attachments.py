"""The attachments of posted events, checked against the evidence store.

An event may cite only an object that is stored, with the size it states; the record then
carries the object's chunk root (from the store), so a verifier can check any chunk of the
file against the signed log. Refusals are :class:`AttachmentRefused`\\ s naming the field;
``api/errors.py`` answers them.
"""

from __future__ import annotations

import base64
import dataclasses

from ledger.records import EventSubmission
from storage.base import StorageError
from storage.service import EvidenceStore


class AttachmentRefused(StorageError):
    """An attachment the store cannot confirm; ``field`` names it, ``reason`` says why."""

    def __init__(self, reason: str, field: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.reason = reason
        self.field = field


class AttachmentNotStored(AttachmentRefused):
    """No stored object has the attachment's SHA-256."""


class AttachmentSizeMismatch(AttachmentRefused):
    """The stored object has another size than the attachment states."""


def resolve_attachments(
    objects: EvidenceStore, events: list[EventSubmission], prefixes: list[str]
) -> list[EventSubmission]:
    """``events`` with each attachment's chunk root added; ``prefixes`` name each event's
    fields (``events[i].`` in a batch). Blocking: the store is asked once per attachment
    (``StorageUnavailable`` when it cannot answer, so no event cites an object nobody can
    confirm is there)."""
    out = []
    for ev, prefix in zip(events, prefixes, strict=True):
        if not ev.attachments:
            out.append(ev)
            continue
        enriched = []
        for i, a in enumerate(ev.attachments):
            where = f"{prefix}attachments[{i}]"
            info = objects.present(a.sha256)
            if info is None:
                raise AttachmentNotStored(
                    f"no stored object has SHA-256 {a.sha256}; "
                    "upload it first with POST /v1/objects",
                    f"{where}.sha256",
                )
            if info.size != a.size:
                raise AttachmentSizeMismatch(
                    f"is {a.size} but the stored object is {info.size} bytes", f"{where}.size"
                )
            chunk_root = base64.b64encode(info.chunk_root).decode()
            enriched.append(dataclasses.replace(a, chunk_root=chunk_root))
        out.append(dataclasses.replace(ev, attachments=tuple(enriched)))
    return out
