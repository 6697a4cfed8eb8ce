"""Exporting a project's evidence bundle: the I/O side of :mod:`verifier.bundle`.

The format (member names, the project-head note, the manifest) is defined once, in
``verifier/bundle/format.py``; this module gathers what goes in it from the database and the
optional providers, and streams the zip. Export runs in two steps:

1. :func:`plan_bundle` reads everything that can fail cheaply (the project's records, the
   checkpoint, its cosignatures and timestamp, every inclusion proof's inputs) and signs
   the project head, so that an unknown project or a missing piece is refused before a
   single byte is sent;
2. :func:`iter_bundle` yields the zip in pieces: records and proofs line by line, files in
   1 MiB blocks, hashing every member as it goes and writing ``manifest.json`` last. Memory
   stays bounded by the project's records, never by the size of its files.

Cosigned checkpoints, RFC 3161 replies and the object store arrive as optional providers
in :class:`BundleSources` (see :func:`sources_for`), so that a log without them still
exports a valid bundle (without cosignatures, timestamp or files).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select

from ledger.clock import rfc3339
from ledger.errors import LedgerError
from ledger.models import CheckpointRow
from ledger.service import Ledger
from ledger.witnessing.view import WitnessingView
from verifier.bundle import format as fmt
from verifier.canonical import canonicalize
from verifier.checkpoint import Checkpoint, TlogProof
from verifier.note import NoteError, parse_note, parse_vkey, sign_note
from verifier.sealed import SEALED_SUFFIX, OpeningError, is_sealed_chain, open_record
from verifier.witnessing import cosigners

PAGE = 1000
#: How many older checkpoints are tried when looking for one the witnesses cosigned.
MAX_CANDIDATE_CHECKPOINTS = 64
YIELD_BYTES = 256 << 10
FILE_BLOCK = 1 << 20


class BundleExportError(RuntimeError, LedgerError):
    """The bundle cannot be produced (a provider failed, an object is missing or altered)."""


class ProjectNotFound(LookupError, LedgerError):
    """The project has no committed records."""


class BundleTooLarge(ValueError, LedgerError):
    """The project has more records than a bundle may hold."""


ObjectOpener = Callable[[str], "IO[bytes] | Iterable[bytes]"]


@dataclass(frozen=True)
class BundleSources:
    """Optional providers: the log side of witnessing and the evidence store.

    Each is None when that part is not installed or not configured; the bundle then leaves
    the corresponding member out, and the verifier says so.
    """

    #: size -> the checkpoint note of that size with every cosignature gathered so far.
    cosigned_checkpoint: Callable[[int], str | None] | None = None
    #: size -> the RFC 3161 TimeStampResp over that checkpoint's body, if one was obtained.
    timestamp_reply: Callable[[int], bytes | None] | None = None
    #: the PEM of the CA that issued the TSA's certificate.
    tsa_ca_pem: Callable[[], bytes | None] | None = None
    #: (witness verifier keys, quorum) of the log's witness policy.
    witness_policy: Callable[[], tuple[Sequence[str], int]] | None = None
    #: sha256 hex -> a binary stream (or iterable of bytes) of that object's content.
    open_object: ObjectOpener | None = None


def sources_for(
    witnessing: WitnessingView | None = None, open_object: ObjectOpener | None = None
) -> BundleSources:
    """Providers from the running service's witnessing and evidence store.

    Both are passed in by the composition root (``api/serving.py``): ``witnessing`` is
    the log side of witnessing as :class:`~ledger.witnessing.view.WitnessingView`, and
    ``open_object`` is the evidence store's ``open_object`` (``storage.service``).
    """
    if witnessing is None:
        return BundleSources(open_object=open_object)
    w = witnessing

    def tsa_ca_pem() -> bytes | None:
        # None when the log has no timestamp authority (NotFound is a LookupError).
        try:
            return w.tsa_ca_pem()
        except LookupError:
            return None

    def witness_policy() -> tuple[Sequence[str], int]:
        policy = w.policy
        return [v.vkey for v in policy.witnesses], policy.quorum

    return BundleSources(
        cosigned_checkpoint=w.cosigned_checkpoint,
        timestamp_reply=w.timestamp_reply,
        tsa_ca_pem=tsa_ca_pem,
        witness_policy=witness_policy,
        open_object=open_object,
    )


@dataclass
class BundlePlan:
    """Everything a bundle holds except the files' bytes, gathered and signed up front."""

    project: str
    trade_type: str
    origin: str
    verifier_key: str
    checkpoint: Checkpoint
    checkpoint_note: str
    head_note: str
    #: (log index, seq, canonical record bytes), in seq order.
    records: list[tuple[int, int, bytes]]
    proofs: Callable[[int], list[bytes]]
    witness_keys: list[str]
    quorum: int
    timestamp: bytes | None
    tsa_ca: bytes | None
    attachments: list[dict[str, Any]]
    #: ``posters.json`` as written (its SHA-256 is signed in the project head).
    posters: bytes
    #: ``openings.jsonl`` lines: the openings of the sealed records, by log index.
    openings: list[bytes]
    #: ``draw-heads.jsonl`` lines: the tree head at each draw's checkpoint_size, with its
    #: consistency proof to the bundle's checkpoint.
    draw_heads: list[bytes]
    with_files: bool
    exported_at: str
    #: The event types the bundle holds (to apply sealing rules before handing it out).
    event_types: frozenset[str] = frozenset()
    sizes: dict[str, int] = field(default_factory=dict)


def plan_bundle(
    ledger: Ledger,
    project: str,
    sources: BundleSources | None = None,
    *,
    with_files: bool = False,
    now: datetime | None = None,
    max_records: int = fmt.MAX_RECORDS,
    opens: Callable[[Mapping[str, Any]], bool] | None = None,
) -> BundlePlan:
    """Read and sign what a project's bundle needs; raises before anything is written.

    The bundle holds the project's process chain and its sealed chain, merged by log
    index, with the sealed records' openings: the caller hands it out only to those who
    may read sealed events (after the opening). Records with confidential fields are
    opened only where ``opens`` admits them (the reader's class, ledger.sealing.
    record_opener); the others stay committed. None opens them all (the operator's export).
    """
    src = sources or BundleSources()
    if with_files and src.open_object is None:
        raise BundleExportError(
            "this service has no object storage configured, so files cannot be included; "
            "export without files"
        )
    head = ledger.head()
    records = _records(ledger, project, head.size, max_records)
    if not records:
        raise ProjectNotFound(f"project {project!r} has no committed records")
    last_index = records[-1][0]
    witness_keys, quorum = _policy(src)
    size, note = _choose_checkpoint(ledger, src, last_index, witness_keys, quorum)
    cp = Checkpoint.parse_body(parse_note(note).text)
    if cp.size != size or cp.origin != ledger.signer.name:
        raise BundleExportError(f"the checkpoint note for size {size} names another tree")
    # Records committed after the chosen checkpoint are left out: the bundle is the project
    # as of that checkpoint, and the signed project head says so.
    records = [r for r in records if r[0] < size]
    parsed = [json.loads(raw) for _, _, raw in records]
    process = [
        raw for (_, _, raw), r in zip(records, parsed, strict=True) if r["project"] == project
    ]
    sealed = [
        raw for (_, _, raw), r in zip(records, parsed, strict=True) if r["project"] != project
    ]
    if not process:
        raise ProjectNotFound(f"project {project!r} has no committed records")
    openings, views = _openings(ledger, parsed, opens)
    posters = canonicalize({"posters": _posters(ledger, project, size)})
    head_body = fmt.ProjectHead(
        ledger.signer.name,
        project,
        len(process),
        hashlib.sha256(process[-1]).digest(),
        cp.size,
        cp.root,
        hashlib.sha256(posters).digest(),
        (len(sealed), hashlib.sha256(sealed[-1]).digest()) if sealed else None,
    ).body()
    head_note = sign_note(head_body, [ledger.signer]).to_text()
    timestamp = src.timestamp_reply(size) if src.timestamp_reply else None
    tsa_ca = src.tsa_ca_pem() if (timestamp and src.tsa_ca_pem) else None
    if timestamp and not tsa_ca:
        raise BundleExportError("a timestamp exists but the TSA's CA certificate is unavailable")
    trade_type = parsed[0].get("trade_type", "")
    clock_now = now or ledger.clock.now()
    return BundlePlan(
        project=project,
        trade_type=str(trade_type),
        origin=ledger.signer.name,
        verifier_key=ledger.signer.verifier.vkey,
        checkpoint=cp,
        checkpoint_note=note,
        head_note=head_note,
        records=records,
        proofs=lambda index: ledger.reader.inclusion_proof(index, size),
        witness_keys=list(witness_keys),
        quorum=quorum,
        timestamp=timestamp,
        tsa_ca=tsa_ca,
        attachments=_attachments(parsed, views, with_files),
        posters=posters,
        openings=openings,
        draw_heads=_draw_heads(ledger, parsed, project, cp.size),
        with_files=with_files,
        exported_at=rfc3339(clock_now),
        event_types=frozenset(str(r.get("type")) for r in parsed),
    )


def _records(
    ledger: Ledger, project: str, below: int, max_records: int
) -> list[tuple[int, int, bytes]]:
    """The project's records (both chains) with log index below ``below``, in log order,
    bounded."""
    out: list[tuple[int, int, bytes]] = []
    after = -1
    while True:
        page = ledger.merged_records(project, after, PAGE)
        for idx, seq, raw in page:
            if idx >= below:
                return out
            out.append((idx, seq, raw))
            if len(out) > max_records:
                raise BundleTooLarge(
                    f"project {project!r} has more than {max_records} records, the most one "
                    "bundle holds"
                )
        if len(page) < PAGE:
            return out
        after = page[-1][0]


def _openings(
    ledger: Ledger,
    records: list[dict[str, Any]],
    opens: Callable[[Mapping[str, Any]], bool] | None = None,
) -> tuple[list[bytes], list[dict[str, Any]]]:
    """``openings.jsonl`` lines, and each record as posted (committed ones opened, where
    the reader may: every sealed one, and confidential ones that ``opens`` admits).

    Every opening is checked against its commitment before it goes out: a bundle must
    never carry a value its record does not commit to.
    """

    def opened(r: Mapping[str, Any]) -> bool:
        if is_sealed_chain(r["project"]):
            return True
        return "commitments" in r and (opens is None or opens(r))

    sealed = [r["index"] for r in records if opened(r)]
    found = ledger.openings(sealed) if sealed else {}
    lines: list[bytes] = []
    views: list[dict[str, Any]] = []
    for r in records:
        if not opened(r):
            views.append(r)
            continue
        raw = found.get(r["index"])
        if raw is None:
            raise BundleExportError(
                f"the openings of the sealed record at index {r['index']} are missing; "
                "run jianzheng audit"
            )
        openings = json.loads(raw)
        try:
            views.append(open_record(r, openings))
        except OpeningError as e:
            raise BundleExportError(
                f"the stored openings of the record at index {r['index']} do not match its "
                f"commitments ({e}); run jianzheng audit"
            ) from None
        lines.append(canonicalize({"index": r["index"], "openings": openings}) + b"\n")
    return lines, views


def _draw_heads(
    ledger: Ledger, records: list[dict[str, Any]], project: str, size: int
) -> list[bytes]:
    """``draw-heads.jsonl``: for each draw the project committed to whose checkpoint_size
    the bundle's checkpoint reaches, the log's root at that size and the RFC 9162
    consistency proof from it to the checkpoint (docs/bundle-format.md), so the verifier
    can check each draw's ``checkpoint_root`` offline."""
    sizes = set()
    for r in records:
        if r["project"] == project and r.get("type") == "draw_committed":
            n = r.get("payload", {}).get("checkpoint_size")
            if isinstance(n, int) and 0 < n <= size:
                sizes.add(n)
    lines = []
    for n in sorted(sizes):
        proof = ledger.reader.consistency_proof(n, size) if n < size else []
        doc = {
            "size": n,
            "root": base64.b64encode(ledger.reader.root(n)).decode(),
            "consistency_proof": [base64.b64encode(h).decode() for h in proof],
        }
        lines.append(canonicalize(doc) + b"\n")
    return lines


def _policy(src: BundleSources) -> tuple[list[str], int]:
    if src.witness_policy is None:
        return [], 0
    keys, quorum = src.witness_policy()
    return list(keys), int(quorum)


def _choose_checkpoint(
    ledger: Ledger,
    src: BundleSources,
    last_index: int,
    witness_keys: Sequence[str],
    quorum: int,
) -> tuple[int, str]:
    """The newest checkpoint covering ``last_index``, preferring one the witnesses cosigned.

    Cosignatures arrive after a checkpoint is signed, so the newest checkpoint may not be
    witnessed yet while an older one that still covers the project's last record is.
    """
    with ledger.store.reader() as conn:
        rows = conn.execute(
            select(CheckpointRow.size, CheckpointRow.note)
            .where(CheckpointRow.size > last_index)
            .order_by(CheckpointRow.size.desc())
            .limit(MAX_CANDIDATE_CHECKPOINTS)
        ).all()
    if not rows:
        raise BundleExportError(f"no signed checkpoint covers log index {last_index} yet")
    newest_size, newest_note = int(rows[0][0]), str(rows[0][1])
    if src.cosigned_checkpoint is None:
        return newest_size, newest_note
    witnesses = []
    if quorum > 0:
        try:
            witnesses = [parse_vkey(k) for k in witness_keys]
        except NoteError as e:
            raise BundleExportError(f"the witness policy holds a bad key: {e}") from None
    # Newest first: the first that meets the quorum and has a timestamp wins; failing
    # that, the first that meets the quorum; failing that, the newest as it is.
    fallback: tuple[int, str] | None = None
    for size, _ in rows:
        size = int(size)
        note = src.cosigned_checkpoint(size)
        if not note:
            continue
        if quorum > 0:
            try:
                if len(cosigners(parse_note(note), witnesses)) < quorum:
                    continue
            except NoteError:
                continue
        if src.timestamp_reply is None or src.timestamp_reply(size) is not None:
            return size, note
        if fallback is None:
            fallback = (size, note)
        if quorum == 0:
            break
    if fallback is not None:
        return fallback
    return newest_size, src.cosigned_checkpoint(newest_size) or newest_note


def _posters(ledger: Ledger, project: str, below: int) -> list[dict[str, Any]]:
    """Who posted each record (by seq; ``sealed_records`` for the sealed chain), and every
    signing key each poster registered."""
    with ledger.store.reader() as conn:
        by_record = ledger.store.record_posters(conn, project, below)
        by_sealed = ledger.store.record_posters(conn, project + SEALED_SUFFIX, below)
        spans = ledger.store.poster_key_spans(
            conn, [p for _, p in by_record] + [p for _, p in by_sealed]
        )
    out: dict[str, dict[str, Any]] = {}
    for seq, poster in by_record:
        out.setdefault(poster, {"poster": poster, "records": [], "keys": []})["records"].append(seq)
    for seq, poster in by_sealed:
        entry = out.setdefault(poster, {"poster": poster, "records": [], "keys": []})
        entry.setdefault("sealed_records", []).append(seq)
    for k in spans:
        out[k.token_id]["keys"].append(
            {
                "public_key": base64.b64encode(k.public_key).decode(),
                "required": k.required,
                "from_index": k.from_index,
                "until_index": k.until_index,
            }
        )
    return [out[p] for p in sorted(out)]


def _attachments(
    records: list[dict[str, Any]], views: list[dict[str, Any]], with_files: bool
) -> list[dict[str, Any]]:
    """One entry per distinct attachment: hash, size, chunk root and the seqs that cite it
    (``sealed_events``: seqs in the sealed chain), from the records as posted."""
    found: dict[str, dict[str, Any]] = {}
    for record, r in zip(records, views, strict=True):
        seq = r["seq"]
        cited_by = "sealed_events" if is_sealed_chain(record["project"]) else "events"
        for a in r.get("attachments") or []:
            entry = found.get(a["sha256"])
            if entry is None:
                if len(found) >= fmt.MAX_ATTACHMENTS:
                    raise BundleTooLarge(
                        f"the project cites more than {fmt.MAX_ATTACHMENTS} distinct files"
                    )
                entry = {"sha256": a["sha256"], "size": a["size"], "events": []}
                if a.get("chunk_root") is not None:
                    entry["chunk_root"] = a["chunk_root"]
                if with_files:
                    entry["file"] = fmt.FILES_PREFIX + a["sha256"]
                found[a["sha256"]] = entry
            entry.setdefault(cited_by, []).append(seq)
    return [found[k] for k in sorted(found)]


# --- writing the zip ---------------------------------------------------------------------------


class _Sink:
    """A write-only, tell-able buffer: zipfile writes into it, the generator drains it.

    It has no ``seek``, so zipfile streams (data descriptors after each member) and never
    needs the whole archive in memory.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0

    def write(self, data: bytes) -> int:
        self._buf += data
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def pending(self) -> int:
        return len(self._buf)

    def drain(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        return out


def _info(name: str, when: datetime, stored: bool, size: int = 0) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
    zi.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    zi.file_size = size  # lets zipfile choose zip64 up front for large files
    zi.external_attr = 0o644 << 16
    return zi


@dataclass
class ExportProgress:
    """How far :func:`iter_bundle` has got, for a progress bar read from another thread.

    Counts only go up. The totals a plan promises are :meth:`totals`.
    """

    records_done: int = 0
    files_done: int = 0
    file_bytes_done: int = 0
    #: Zip bytes yielded so far.
    zip_bytes: int = 0

    @staticmethod
    def totals(plan: BundlePlan) -> tuple[int, int, int]:
        """(records, files, file bytes) the bundle of ``plan`` holds."""
        files = plan.attachments if plan.with_files else []
        return len(plan.records), len(files), sum(int(a["size"]) for a in files)


def iter_bundle(
    plan: BundlePlan,
    sources: BundleSources | None = None,
    progress: ExportProgress | None = None,
) -> Iterator[bytes]:
    """Yield the bundle's zip bytes, member by member, hashing each for the manifest;
    ``progress``, when given, is kept up to date as records and files go in."""
    for piece in _iter_bundle(plan, sources, progress or ExportProgress()):
        if progress is not None:
            progress.zip_bytes += len(piece)
        yield piece


def _iter_bundle(
    plan: BundlePlan, sources: BundleSources | None, progress: ExportProgress
) -> Iterator[bytes]:
    src = sources or BundleSources()
    sink = _Sink()

    def counted(blocks: Iterator[bytes]) -> Iterator[bytes]:
        for block in blocks:
            yield block
            progress.file_bytes_done += len(block)

    members: dict[str, dict[str, Any]] = {}
    when = datetime.fromisoformat(plan.exported_at.replace("Z", "+00:00"))
    if when.year < 1980:  # zip timestamps start in 1980
        when = when.replace(year=1980)
    with zipfile.ZipFile(sink, "w", compresslevel=6) as zf:

        def member(
            name: str, pieces: Iterable[bytes], stored: bool = False, size: int = 0
        ) -> Iterator[bytes]:
            h = hashlib.sha256()
            n = 0
            with zf.open(_info(name, when, stored, size), "w", force_zip64=size > 1 << 31) as w:
                for piece in pieces:
                    h.update(piece)
                    n += len(piece)
                    w.write(piece)
                    if sink.pending() >= YIELD_BYTES:
                        yield sink.drain()
            members[name] = {"sha256": h.hexdigest(), "size": n}

        # Sizes known or bounded up front, so that zipfile picks zip64 before writing.
        records_size = sum(len(raw) + 1 for _, _, raw in plan.records)
        proofs_bound = len(plan.records) * (len(plan.checkpoint_note) + 64 * 46 + 128)

        def record_lines() -> Iterator[bytes]:
            for _, _, raw in plan.records:
                yield raw + b"\n"
                progress.records_done += 1

        yield from member(fmt.RECORDS, record_lines(), size=records_size)
        yield from member(fmt.PROOFS, _proof_lines(plan), size=proofs_bound)
        yield from member(fmt.CHECKPOINT, [plan.checkpoint_note.encode()])
        yield from member(fmt.PROJECT_HEAD, [plan.head_note.encode()])
        if plan.timestamp is not None and plan.tsa_ca is not None:
            yield from member(fmt.TIMESTAMP, [plan.timestamp])
            yield from member(fmt.TSA_CA, [plan.tsa_ca])
        yield from member(fmt.ATTACHMENTS, [canonicalize({"attachments": plan.attachments})])
        yield from member(fmt.POSTERS, [plan.posters])
        if plan.openings:
            yield from member(fmt.OPENINGS, plan.openings)
        if plan.draw_heads:
            yield from member(fmt.DRAW_HEADS, plan.draw_heads)
        if plan.with_files:
            if src.open_object is None:
                raise BundleExportError("files were asked for but no object store is available")
            for a in plan.attachments:
                name = fmt.FILES_PREFIX + a["sha256"]
                yield from member(
                    name, counted(_object_blocks(src.open_object, a)), True, a["size"]
                )
                progress.files_done += 1
        manifest = {
            "format": fmt.FORMAT,
            "version": fmt.VERSION,
            "project": plan.project,
            "trade_type": plan.trade_type,
            "exported_at": plan.exported_at,
            "log": {"origin": plan.origin, "verifier_key": plan.verifier_key},
            "witnesses": {"verifier_keys": plan.witness_keys, "quorum": plan.quorum},
            "checkpoint": {
                "size": plan.checkpoint.size,
                "root": base64.b64encode(plan.checkpoint.root).decode(),
            },
            "records": len(plan.records),
            "files_included": plan.with_files,
            "timestamp": plan.timestamp is not None,
            "members": members,
        }
        yield from member(fmt.MANIFEST, [canonicalize(manifest)])
        plan.sizes = {k: v["size"] for k, v in members.items()}
    yield sink.drain()


def _proof_lines(plan: BundlePlan) -> Iterator[bytes]:
    for idx, seq, _ in plan.records:
        text = TlogProof(idx, tuple(plan.proofs(idx)), plan.checkpoint_note).to_text()
        yield canonicalize({"seq": seq, "index": idx, "tlog_proof": text}) + b"\n"


def _object_blocks(open_object: ObjectOpener, a: dict[str, Any]) -> Iterator[bytes]:
    """Stream one object, checking it is exactly what the records name before it is used.

    A store that returns other bytes (swapped, truncated, rotten) stops the export: the
    bundle must never carry a file that does not match its record.
    """
    digest, size = a["sha256"], a["size"]
    try:
        stream = open_object(digest)
    except Exception as e:  # any store error: missing, unavailable, locked
        raise BundleExportError(f"object {digest} cannot be read from storage: {e}") from None
    h = hashlib.sha256()
    n = 0
    try:
        for block in _read_blocks(stream):
            h.update(block)
            n += len(block)
            if n > size:
                break
            yield block
    finally:
        close = getattr(stream, "close", None)
        if callable(close):
            close()
    if n != size or h.hexdigest() != digest:
        raise BundleExportError(
            f"object {digest} in storage is not what the records name "
            f"({n} bytes, SHA-256 {h.hexdigest()}): run jianzheng audit"
        )


def _read_blocks(stream: IO[bytes] | Iterable[bytes]) -> Iterator[bytes]:
    read = getattr(stream, "read", None)
    if callable(read):
        while True:
            block = read(FILE_BLOCK)
            if not block:
                return
            yield bytes(block)
    else:
        for block in stream:
            yield bytes(block)


def write_bundle(
    plan: BundlePlan,
    path: Path,
    sources: BundleSources | None = None,
    progress: ExportProgress | None = None,
) -> int:
    """Write the bundle to ``path`` atomically (a temporary file renamed into place).

    A failure part-way leaves no file at ``path``; returns the bundle's size in bytes.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".bundle-", suffix=".zip.tmp", dir=path.parent or ".")
    total = 0
    try:
        with os.fdopen(fd, "wb") as f:
            for piece in iter_bundle(plan, sources, progress):
                f.write(piece)
                total += len(piece)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return total
