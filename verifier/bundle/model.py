"""A bundle opened for verification, and the parsed pieces the checks share.

:class:`EvidenceBundle` is the zip with its manifest read and accepted; :class:`Record` a
line of ``records.jsonl`` parsed, canonicalized and hashed; :class:`BundleCheckpoint` the
bundle's checkpoint as a signed note.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from verifier.bundle.format import (
    DEFAULT_LIMITS,
    FORMAT,
    MANIFEST,
    RECORDS,
    VERSION,
    BundleFormatError,
    Limits,
)
from verifier.bundle.reader import ZIP_ERRORS, BundleZip, read_lines
from verifier.canonical import CanonicalError, parse_strict_json
from verifier.checkpoint import Checkpoint
from verifier.note import Note
from verifier.report_model import MAX_DETAILS, AttachmentRef, Problems, TimelineEntry
from verifier.sealed import is_sealed_chain


@dataclass
class Record:
    """A line of ``records.jsonl``: its bytes, the parsed record and its event hash."""

    line: int
    raw: bytes
    obj: dict[str, Any]
    event_hash: bytes
    #: The record as posted: ``obj``, or for a sealed record with its openings checked,
    #: the opened record (verifier/sealed.py). The process rules and signatures read this.
    view: dict[str, Any] = field(default_factory=dict)
    #: A record of the sealed chain whose openings are not (validly) in the bundle.
    unopened: bool = False

    @property
    def sealed(self) -> bool:
        return is_sealed_chain(self.obj.get("project"))


@dataclass
class BundleCheckpoint:
    """The bundle's checkpoint as a signed note; ``verified`` once the log key's signature is."""

    checkpoint: Checkpoint
    note: Note
    text: str
    verified: bool = False


class EvidenceBundle:
    """An evidence bundle opened for verification; use as a context manager or close()."""

    def __init__(
        self, source: str | os.PathLike[str] | IO[bytes] | bytes, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self.archive = BundleZip(source, limits)
        try:
            raw = self.archive.read_small(MANIFEST)
        except KeyError:
            self.archive.close()
            raise BundleFormatError(f"the zip has no {MANIFEST}: not an evidence bundle") from None
        except BundleFormatError:
            self.archive.close()
            raise
        try:
            manifest = parse_strict_json(raw)
        except CanonicalError as e:
            self.archive.close()
            raise BundleFormatError(f"{MANIFEST} is not valid JSON: {e}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            self.archive.close()
            raise BundleFormatError(f"{MANIFEST} does not describe a {FORMAT}")
        if manifest.get("version") != VERSION:
            self.archive.close()
            raise BundleFormatError(
                f"bundle format version {manifest.get('version')!r} is not supported "
                f"(this verifier reads version {VERSION})"
            )
        self.manifest: dict[str, Any] = manifest

    def __enter__(self) -> EvidenceBundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.archive.close()

    @property
    def project(self) -> str:
        return str(self.manifest.get("project", ""))

    def member(self, name: str) -> bytes:
        """A small member's bytes (records, proofs, notes); raises KeyError if absent."""
        return self.archive.read_small(name)

    def member_lines(self, name: str, problems: Problems) -> Iterator[bytes | None]:
        """The member's lines; a damaged member (bad CRC or deflate data) ends them with a
        problem named, instead of an exception."""
        try:
            with self.archive.open(name) as f:
                yield from read_lines(f)
        except ZIP_ERRORS as e:
            problems.append(f"{name} is damaged and could not be read to the end: {e}")


def record_place(r: Record) -> str:
    """Where a record is: its seq, log index and line, for messages."""
    return (
        f"record seq {r.obj.get('seq')} (log index {r.obj.get('index')}, {RECORDS} line {r.line})"
    )


def failure_of(r: Record, e: Exception) -> dict[str, Any]:
    """A failure as data: the record, and the error's type and reason."""
    return {
        "seq": r.obj.get("seq"),
        "index": r.obj.get("index"),
        "line": r.line,
        "error": type(e).__name__,
        "reason": str(e),
    }


def timeline_entry(r: Record) -> TimelineEntry:
    """The record as a line of the report's timeline: its facts and the files it cites."""
    o = r.view
    actor = o.get("actor") if isinstance(o.get("actor"), dict) else {}
    atts = o.get("attachments")
    files = [
        AttachmentRef(
            str(a.get("name", "")),
            str(a.get("sha256", "")),
            a["size"] if isinstance(a.get("size"), int) else 0,
        )
        for a in (atts if isinstance(atts, list) else [])[:MAX_DETAILS]
        if isinstance(a, dict)
    ]
    payload = o.get("payload")
    late = o.get("late_entry")
    return TimelineEntry(
        seq=int(o.get("seq", -1)) if isinstance(o.get("seq"), int) else -1,
        index=int(o.get("index", -1)) if isinstance(o.get("index"), int) else -1,
        type=str(o.get("type", "")),
        occurred_at=str(o.get("occurred_at", "")),
        recorded_at=str(o.get("recorded_at", "")),
        actor=f"{actor.get('id', '')} ({actor.get('role', '')})" if actor else "",
        attachments=len(atts) if isinstance(atts, list) else 0,
        facts=dict(payload) if isinstance(payload, dict) else {},
        files=files,
        sealed=r.unopened,
        sealed_chain=r.sealed,
        late_entry=str(late.get("reason", "")) if isinstance(late, dict) else None,
    )
