"""Re-derive the whole log from the database and compare it with what the log signed.

Like Tessera's fsck: every record is re-hashed, every per-project chain re-linked, every
tile and every checkpoint root recomputed from the records alone, and every checkpoint's
signature checked. A row edited, dropped or inserted directly in the database shows up
as a named problem; nothing here trusts a stored hash it can recompute.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from ledger.models import CheckpointRow, RecordRow, TileRow
from ledger.store import Store
from ledger.tiles import HASH, TILE_HEIGHT
from verifier import merkle
from verifier.checkpoint import CheckpointError, open_checkpoint
from verifier.note import Verifier
from verifier.receipt import entry_leaf_hash
from verifier.sealed import SEALED_SUFFIX, OpeningError, open_record

MAX_PROBLEMS = 1000
PAGE = 5000


class ProblemList:
    """What an audit report shares: its named problems, at most MAX_PROBLEMS of them."""

    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


@dataclass
class AuditReport(ProblemList):
    records: int = 0
    checkpoints: int = 0
    tiles: int = 0
    problems: list[str] = field(default_factory=list)


def audit(
    store: Store, log: Verifier, progress: Callable[[int], None] | None = None
) -> AuditReport:
    """Check the database against itself and the log's signatures; never writes."""
    rep = AuditReport()
    with store.reader() as conn:
        cps = conn.execute(
            select(CheckpointRow.size, CheckpointRow.root, CheckpointRow.note).order_by(
                CheckpointRow.size
            )
        ).all()
    signed: dict[int, bytes] = {}
    for size, root, note in cps:
        rep.checkpoints += 1
        try:
            sc = open_checkpoint(note, log)
        except CheckpointError as e:
            rep.problem(f"checkpoint {size}: {e}")
            continue
        if sc.checkpoint.size != size or sc.checkpoint.root != bytes(root):
            rep.problem(f"checkpoint {size}: the row's size/root differ from its signed note")
        signed[sc.checkpoint.size] = sc.checkpoint.root
    last_size = max(signed) if signed else 0

    cr = merkle.CompactRange()
    derived: dict[tuple[int, int], bytearray] = {}

    def visit(level: int, index: int, h: bytes) -> None:
        if level % TILE_HEIGHT == 0:
            derived.setdefault((level // TILE_HEIGHT, index >> TILE_HEIGHT), bytearray()).extend(h)

    tails: dict[str, tuple[int, bytes]] = {}
    expected = 0
    while True:
        with store.reader() as conn:
            rows = conn.execute(
                select(
                    RecordRow.idx,
                    RecordRow.project,
                    RecordRow.seq,
                    RecordRow.event_hash,
                    RecordRow.record,
                )
                .where(RecordRow.idx >= expected)
                .order_by(RecordRow.idx)
                .limit(PAGE)
            ).all()
        if not rows:
            break
        committed = {r[0] for r in rows if _committed(r[1], bytes(r[4]))}
        with store.reader() as conn:
            opened = store.openings(conn, sorted(committed))
        for idx, project, seq, event_hash, record in rows:
            if idx in opened or project.endswith(SEALED_SUFFIX):
                _check_openings(rep, idx, bytes(record), opened.get(idx))
            elif idx in committed:
                rep.problem(
                    f"record {idx}: has confidential fields, and their openings are missing"
                )
            if idx != expected:
                rep.problem(f"records {expected}..{idx - 1} are missing")
                # Keep going with the records we have, so later problems are still named.
                expected = idx
            _check_record(rep, idx, project, seq, bytes(event_hash), bytes(record), tails, signed)
            cr.append(entry_leaf_hash(hashlib.sha256(bytes(record)).digest()), visit)
            expected += 1
            rep.records += 1
            if cr.size in signed and cr.root() != signed[cr.size]:
                rep.problem(
                    f"the tree rebuilt from the records at size {cr.size} does not "
                    "match the signed checkpoint of that size"
                )
        if progress is not None:
            progress(rep.records)
    if cr.size != last_size:
        rep.problem(
            f"the records make a tree of size {cr.size}, the newest signed checkpoint "
            f"says {last_size}"
        )

    with store.reader() as conn:
        for level, idx, hashes in conn.execute(select(TileRow.level, TileRow.idx, TileRow.hashes)):
            rep.tiles += 1
            want = derived.pop((level, idx), None)
            if want is None:
                rep.problem(f"tile {level}/{idx} exists but the records do not make it")
            elif bytes(hashes) != bytes(want):
                rep.problem(f"tile {level}/{idx} differs from the one rebuilt from the records")
    for level, idx in sorted(derived):
        rep.problem(f"tile {level}/{idx} is missing")
    return rep


def _committed(project: str, record: bytes) -> bool:
    """Whether a record carries commitments: every sealed one, and those of open events
    with confidential fields (the key is looked for first, the record parsed only then)."""
    if project.endswith(SEALED_SUFFIX):
        return True
    if b'"commitments"' not in record:
        return False
    try:
        return "commitments" in json.loads(record)
    except ValueError:
        return False  # _check_record names a record that does not parse


def _check_openings(rep: AuditReport, idx: int, record: bytes, openings: bytes | None) -> None:
    """A sealed record's stored openings must open every commitment it carries."""
    if openings is None:
        rep.problem(f"record {idx}: sealed, and its openings are missing")
        return
    try:
        open_record(json.loads(record), json.loads(openings))
    except (ValueError, OpeningError) as e:
        rep.problem(f"record {idx}: its stored openings do not open its commitments: {e}")


def _check_record(
    rep: AuditReport,
    idx: int,
    project: str,
    seq: int,
    event_hash: bytes,
    record: bytes,
    tails: dict[str, tuple[int, bytes]],
    signed: dict[int, bytes],
) -> None:
    if hashlib.sha256(record).digest() != event_hash:
        rep.problem(f"record {idx}: its bytes do not hash to the stored event hash")
    try:
        r = json.loads(record)
    except ValueError:
        rep.problem(f"record {idx}: not valid JSON")
        return
    if r.get("index") != idx or r.get("project") != project or r.get("seq") != seq:
        rep.problem(f"record {idx}: index, project or seq inside differ from its row")
    want_seq, want_prev = tails.get(project, (0, bytes(HASH)))
    if r.get("seq") != want_seq:
        rep.problem(f"record {idx}: project {project} seq {r.get('seq')} where {want_seq} was due")
    if r.get("prev") != base64.b64encode(want_prev).decode():
        rep.problem(f"record {idx}: prev does not link to project {project}'s previous record")
    tails[project] = (want_seq + 1, hashlib.sha256(record).digest())
    cp = r.get("checkpoint") or {}
    size, root = cp.get("size"), cp.get("root")
    if size == 0:
        if root != base64.b64encode(merkle.EMPTY_ROOT).decode():
            rep.problem(f"record {idx}: refers to an empty tree with a non-empty root")
    elif not isinstance(size, int) or size not in signed or size > idx:
        rep.problem(f"record {idx}: refers to checkpoint {size}, which was not signed before it")
    elif root != base64.b64encode(signed[size]).decode():
        rep.problem(f"record {idx}: the root it quotes for checkpoint {size} is not the signed one")
