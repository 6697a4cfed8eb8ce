"""Re-hash stored evidence objects against what the records name (``jianzheng audit --objects``).

The records commit to each attachment's SHA-256, size and chunk root; the object store
holds the bytes. This reads every object a record names back from the store and recomputes
all three with :class:`verifier.chunks.ChunkTree` (the one chunk-tree implementation), so a
file swapped, truncated or rotted in the bucket or on disk shows up as a named problem.
Nothing is written.

The store is duck-typed (``info(sha256)`` and ``read(info, offset, length)``, as
``storage.service.EvidenceStore`` offers), so the ledger does not depend on the storage
package.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ledger.audit import ProblemList
from ledger.models import RecordRow
from ledger.store import Store
from verifier.chunks import ChunkTree

PAGE = 5000


@dataclass
class ObjectAuditReport(ProblemList):
    objects: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)


def _named_objects(store: Store) -> dict[str, tuple[int, str | None, int]]:
    """sha256 -> (size, chunk root, first log index) of every attachment the records name."""
    out: dict[str, tuple[int, str | None, int]] = {}
    after = -1
    while True:
        with store.reader() as conn:
            rows = conn.execute(
                select(RecordRow.idx, RecordRow.record)
                .where(RecordRow.idx > after)
                .order_by(RecordRow.idx)
                .limit(PAGE)
            ).all()
        if not rows:
            return out
        for idx, raw in rows:
            after = idx
            data = bytes(raw)
            if b'"attachments":[]' in data:
                continue  # most records cite no file; skip parsing them
            record = json.loads(data)
            if "attachments" not in record and "commitments" in record:
                # A sealed record's attachments are in its openings (verifier/sealed.py).
                with store.reader() as conn:
                    opened = store.openings(conn, [idx]).get(idx)
                sealed = json.loads(opened).get("attachments") if opened else None
                record = {"attachments": sealed["value"] if isinstance(sealed, dict) else []}
            for a in record.get("attachments") or []:
                if isinstance(a, dict) and a.get("sha256") not in out:
                    out[a["sha256"]] = (a.get("size", -1), a.get("chunk_root"), idx)


def audit_objects(
    store: Store, objects: Any, progress: Callable[[int], None] | None = None
) -> ObjectAuditReport:
    """Re-read and re-hash every object the records name; report every mismatch."""
    rep = ObjectAuditReport()
    for digest, (size, root, idx) in sorted(_named_objects(store).items()):
        rep.objects += 1
        where = f"object {digest} (first named by record {idx})"
        try:
            info = objects.info(digest)
        except Exception as e:  # the store's own errors: unavailable, corrupt metadata
            rep.problem(f"{where}: storage cannot say whether it holds it: {e}")
            continue
        if info is None:
            rep.problem(f"{where}: not in storage, although a record refers to it")
            continue
        if info.size != size:
            rep.problem(f"{where}: storage records {info.size} bytes, the record says {size}")
        stored_root = base64.b64encode(info.chunk_root).decode()
        if root is not None and stored_root != root:
            rep.problem(f"{where}: storage's chunk root differs from the record's")
        tree = ChunkTree()
        try:
            for piece in objects.read(info, 0, info.size):
                tree.update(piece)
        except Exception as e:
            rep.problem(f"{where}: cannot be read back: {e}")
            continue
        sha, got_size, got_root, _ = tree.finish()
        rep.bytes += got_size
        if sha.hex() != digest:
            rep.problem(f"{where}: the stored bytes hash to {sha.hex()}: replaced or altered")
        elif got_size != size:
            rep.problem(f"{where}: {got_size} bytes read back, the record says {size}")
        elif root is not None and base64.b64encode(got_root).decode() != root:
            rep.problem(f"{where}: the stored bytes' chunk root differs from the record's")
        if progress is not None:
            progress(rep.objects)
    return rep
