"""The evidence bundle's format: member names, the project head, bounds, format errors.

Shared by the exporter (``ledger/bundle.py``) and the verifier, so that both name the
same members and hold to the same bounds (``docs/bundle-format.md``). Pure: nothing here
reads a zip.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

from verifier.errors import VerifierError

FORMAT = "jianzheng-evidence-bundle"
VERSION = 1

MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
PROOFS = "proofs.jsonl"
CHECKPOINT = "checkpoint.txt"
PROJECT_HEAD = "project-head.txt"
TIMESTAMP = "timestamp.tsr"
TSA_CA = "tsa-ca.pem"
ATTACHMENTS = "attachments.json"
#: Optional (bundles before it lack it): posters of the records and their registered keys.
POSTERS = "posters.json"
#: The openings of the sealed records (verifier/sealed.py), one canonical line per record.
OPENINGS = "openings.jsonl"
#: The tree heads the project's expert draws use (optional: only with a draw_committed
#: whose checkpoint_size the bundle's checkpoint reaches), each pinned to the bundle's
#: checkpoint by a consistency proof (docs/formats.md, "Expert draws").
DRAW_HEADS = "draw-heads.jsonl"
FILES_PREFIX = "files/sha256/"
REQUIRED_MEMBERS = (RECORDS, PROOFS, CHECKPOINT, PROJECT_HEAD, ATTACHMENTS)

#: First line of the project-head note; never a log origin, so never a checkpoint.
PROJECT_HEAD_HEADER = "jianzheng.evidence/project-head/v1"

#: Bounds that keep a hostile bundle from exhausting memory or time.
MAX_RECORDS = 100_000
MAX_MEMBERS = 4 * MAX_RECORDS
MAX_ATTACHMENTS = MAX_MEMBERS - 16
MAX_RECORD_LINE = 1 << 20
MAX_SMALL_MEMBER = 64 << 20
MAX_RECORDS_BYTES = 4 << 30
#: All members but the attachment files together, uncompressed: what the checks may
#: inflate at most, however a zip bomb declares its members.
MAX_INFLATED_BYTES = 3 * MAX_RECORDS_BYTES + 16 * MAX_SMALL_MEMBER
READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """The bounds the reader holds a zip to (the format's by default).

    Passed in rather than read from globals, so that a caller (a test of the guards, a
    deployment with less memory) can hold a bundle to smaller ones.
    """

    members: int = MAX_MEMBERS
    #: A member with a line per record (records, proofs, openings).
    records_bytes: int = MAX_RECORDS_BYTES
    #: Any other member but the attachment files.
    small_member: int = MAX_SMALL_MEMBER
    #: All members but the attachment files together, uncompressed.
    inflated_bytes: int = MAX_INFLATED_BYTES


DEFAULT_LIMITS = Limits()


class BundleError(ValueError, VerifierError):
    """The bundle cannot be read as an evidence bundle at all."""


class BundleFormatError(BundleError):
    """Not a zip, no manifest, an unknown format version, or a structure out of bounds."""


@dataclass(frozen=True)
class ProjectHead:
    """What the log signs about a project at export: its record count and newest record,
    (optional line ``posters``) the SHA-256 of the bundle's ``posters.json``, and
    (optional line ``sealed``) the count and newest record of its sealed chain."""

    origin: str
    project: str
    records: int
    last_event_hash: bytes
    checkpoint_size: int
    checkpoint_root: bytes
    posters_sha256: bytes | None = None
    #: (records, SHA-256 of the newest) of the sealed chain ``<project>~sealed``.
    sealed: tuple[int, bytes] | None = None

    def body(self) -> str:
        posters = ""
        if self.posters_sha256 is not None:
            posters = f"posters {base64.b64encode(self.posters_sha256).decode()}\n"
        if self.sealed is not None:
            posters += f"sealed {self.sealed[0]} {base64.b64encode(self.sealed[1]).decode()}\n"
        return (
            f"{PROJECT_HEAD_HEADER}\n"
            f"origin {self.origin}\n"
            f"project {self.project}\n"
            f"records {self.records}\n"
            f"last {base64.b64encode(self.last_event_hash).decode()}\n"
            f"checkpoint {self.checkpoint_size} {base64.b64encode(self.checkpoint_root).decode()}\n"
            f"{posters}"
        )

    @classmethod
    def parse_body(cls, text: str) -> ProjectHead:
        lines = text.split("\n")
        if len(lines) not in (7, 8, 9) or lines[-1] != "" or lines[0] != PROJECT_HEAD_HEADER:
            raise BundleError(f"project head must be the 6 to 8 lines of {PROJECT_HEAD_HEADER}")
        kv: dict[str, str] = {}
        for line in lines[1:-1]:
            key, _, value = line.partition(" ")
            if key in kv:
                raise BundleError(f"project head has two {key!r} lines")
            if key not in _HEAD_KEYS:
                raise BundleError("project head has an unknown line")
            kv[key] = value
        try:
            size, root = kv["checkpoint"].split(" ")
            posters = kv.get("posters")
            sealed = None
            if "sealed" in kv:
                count, last = kv["sealed"].split(" ")
                sealed = (int(count), base64.b64decode(last, validate=True))
            head = cls(
                kv["origin"],
                kv["project"],
                int(kv["records"]),
                base64.b64decode(kv["last"], validate=True),
                int(size),
                base64.b64decode(root, validate=True),
                base64.b64decode(posters, validate=True) if posters is not None else None,
                sealed,
            )
        except (KeyError, ValueError, binascii.Error):
            raise BundleError("project head has a malformed line") from None
        if len(head.last_event_hash) != 32 or len(head.checkpoint_root) != 32:
            raise BundleError("project head hashes must be 32 bytes")
        if head.posters_sha256 is not None and len(head.posters_sha256) != 32:
            raise BundleError("project head hashes must be 32 bytes")
        if head.sealed is not None and (len(head.sealed[1]) != 32 or head.sealed[0] < 1):
            raise BundleError("project head: the sealed line needs a count and a 32-byte hash")
        return head


_HEAD_KEYS = frozenset({"origin", "project", "records", "last", "checkpoint", "posters", "sealed"})


def manifest_member(data: bytes) -> dict[str, Any]:
    """The manifest entry (SHA-256 hex and size) of a member's bytes."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
