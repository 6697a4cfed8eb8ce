"""The ledger as one object: opens the store and key, runs the sequencer, answers queries.

This is the seam the API and the CLI use; it holds no HTTP and no argument parsing.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ledger import metrics
from ledger.catalogue import Catalogue, load_catalogue
from ledger.checkpoints import SignedCheckpoint
from ledger.clock import Clock, SystemClock
from ledger.errors import LedgerError
from ledger.keys import (
    HIGH_WATER_FILE,
    LogKeyError,
    load_log_key_file,
    load_or_create_log_key,
    read_high_water,
)
from ledger.records import SEALED_SUFFIX, EventSubmission
from ledger.sequencer import Appended, Sequencer
from ledger.store import Citation, Store, StoreError, make_engine, migrate
from ledger.tiles import HASH, TILE_WIDTH, TreeReader, tile_width_at
from verifier import merkle
from verifier.b64 import encode_b64
from verifier.note import NoteSigner
from verifier.receipt import ENTRY_VERSION, Receipt, receipt_json

#: Longest wait for a unit to be committed (then: not confirmed, retry with the same keys).
APPEND_TIMEOUT = 30.0

log = logging.getLogger("jianzheng.ledger")

RECENT_CHECKPOINTS = 4096
#: Distinct (project, event type) citations of one object considered for a read: far more
#: than any real file is cited by, and a bound on the work of one authorisation.
MAX_CITATIONS = 1000

#: Projects whose trade type is remembered (it never changes once stored).
TRADE_TYPES_KEPT = 100_000

#: Base64 proof nodes kept for the next receipts (about 10 MB at most).
PROOF_NODES_KEPT = 1 << 16

_T = TypeVar("_T")


class NotFound(LookupError, LedgerError):
    """The asked-for index, size or tile is not in the log (yet)."""


@dataclass(frozen=True)
class LogInfo:
    origin: str
    verifier_key: str
    size: int
    root: bytes
    checkpoint: str


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'ledger.db'}"


class Ledger:
    """Open with :meth:`open`; call :meth:`close` when done."""

    def __init__(
        self,
        store: Store,
        signer: NoteSigner,
        data_dir: Path,
        *,
        clock: Clock | None = None,
        catalogue: Catalogue | None = None,
        max_batch: int = 4096,
        max_delay: float = 0.002,
    ) -> None:
        self.store = store
        self.signer = signer
        self.data_dir = data_dir
        self.clock = clock or SystemClock()
        self.catalogue = catalogue or load_catalogue()
        self._edge: dict[tuple[int, int], bytes] = {}
        # Base64 of complete tree nodes already put in receipts: they never change, and
        # consecutive receipts (above all single-event ones) share most of their proofs.
        self._proof_b64: dict[int, str] = {}
        self.reader = TreeReader(self._get_tile, fresh=self._db_tile)
        self._recent_lock = threading.Lock()
        # Checkpoints this process signed, with the first index of each one's batch, so a
        # receipt names the checkpoint of the entry's own batch. Another worker process
        # may have signed the ones in between; those come from the database.
        self._recent_starts: list[int] = []
        self._recent_sizes: list[int] = []
        self._recent: list[SignedCheckpoint] = []
        self._listeners: list[Callable[[SignedCheckpoint], None]] = []
        # project -> stored trade type. Only found ones are kept: a project's trade type
        # never changes once its first record fixed it, while one not found yet may be
        # created by any append (here or in another worker process).
        self._trade_types: dict[str, str] = {}
        self.sequencer = Sequencer(
            store,
            signer,
            self.clock,
            self.reader,
            self._edge,
            data_dir=data_dir,
            max_batch=max_batch,
            max_delay=max_delay,
            on_checkpoint=self._remember,
            catalogue=self.catalogue,
        )

    # --- life cycle --------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        data_dir: Path,
        db_url: str | None = None,
        origin: str | None = None,
        *,
        log_key: Path | None = None,
        **kwargs: Any,
    ) -> Ledger:
        """Open (creating on first start) the ledger whose key lives in ``data_dir``, or
        in the file ``log_key`` (the same on every node)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        # The key first: a bad key file is named before the database is touched.
        signer: NoteSigner
        if log_key is not None:
            signer = load_log_key_file(log_key, origin)
        else:
            # Without an origin, the first start derives a unique one (ledger/keys.py).
            signer = load_or_create_log_key(data_dir, origin, derive=True)
        engine = make_engine(db_url or sqlite_url(data_dir))
        migrate(engine)
        store = Store(engine)
        ledger = cls(store, signer, data_dir, **kwargs)
        head = ledger._check_identity()
        # Seed the receipt cache so the first batch's receipts need no database lookup.
        size = head.size if head else 0
        ledger._remember(size, head or SignedCheckpoint(0, merkle.EMPTY_ROOT, ""))
        ledger.sequencer.start()
        return ledger

    def behind(self) -> str | None:
        """Why this node refuses to append now (its database is behind a checkpoint signed
        or cosigned), or None (issue 16)."""
        return self.sequencer.behind()

    def close(self) -> None:
        self.sequencer.stop()
        self.store.engine.dispose()

    def _check_identity(self) -> SignedCheckpoint | None:
        """Refuse to run a key against a database of another log, or one rolled back."""
        vkey = self.signer.verifier.vkey
        with self.store.writer() as conn:
            have = self.store.get_meta(conn, "verifier_key")
            if have is None:
                self.store.set_meta(conn, "origin", self.signer.name)
                self.store.set_meta(conn, "verifier_key", vkey)
            elif have != vkey:
                raise LogKeyError(
                    f"this database belongs to the log {have}, not to the key "
                    f"{self.signer.verifier.vkey}; use the matching --data directory or "
                    "--log-key"
                )
            head = self.store.head(conn)
            mark = self.store.high_water(conn)
        have_size = head.size if head else 0
        hw = read_high_water(self.data_dir)
        if hw is not None:
            self._check_local_mark(have_size, *hw)
        # The mark may trail the head (a node of an earlier release appended), never
        # lead it, and must lie on the same tree.
        if mark is not None and (
            mark[0] > have_size or (mark[0] and self.reader.root(mark[0]) != mark[1])
        ):
            raise LogKeyError(
                f"the database's high-water mark (size {mark[0]}) is not a checkpoint of "
                f"its tree (head size {have_size}): checkpoints were removed or the mark was "
                "changed by hand; signing now could fork the log. Run jianzheng audit"
            )
        return head

    def _check_local_mark(self, have_size: int, size: int, root: bytes) -> None:
        """The database against the newest checkpoint this node signed (its data dir).

        Behind it (a restored backup, a replica that lags), the node starts but appends
        nothing until the database holds that tree (:meth:`Sequencer.hold`); another tree
        at that size is a fork, and refused at once."""
        if have_size < size:
            reason = (
                f"this node already signed a checkpoint of size {size} "
                f"({self.data_dir / HIGH_WATER_FILE}): the database was rolled back or replaced"
            )
            log.error("%s; appends are refused until it holds size %d", reason, size)
            self.sequencer.hold(size, root, reason)
            return
        if self.reader.root(size) != root:
            raise LogKeyError(
                f"the database's tree at size {size} differs from the checkpoint this log "
                "signed: signing now would fork the log. Run jianzheng audit"
            )

    # --- tiles -------------------------------------------------------------------------
    def _get_tile(self, level: int, index: int) -> bytes:
        edge = self._edge.get((level, index))
        if edge is not None:
            return edge
        return self._db_tile(level, index)

    def _db_tile(self, level: int, index: int) -> bytes:
        """The stored tile, which another worker process may have widened past ours."""
        with self.store.reader() as conn:
            return self.store.get_tile(conn, level, index)

    def tile(self, level: int, index: int, width: int | None) -> bytes:
        """A tile as served under /log/tile (full when ``width`` is None)."""
        size = self.head().size
        have = tile_width_at(level, index, size)
        want = TILE_WIDTH if width is None else width
        if want < 1 or want > TILE_WIDTH or have < want:
            raise NotFound(f"tile {level}/{index} of width {want} does not exist yet")
        data = self._get_tile(level, index)
        if len(data) < want * HASH:
            raise StoreError(f"tile {level}/{index} is shorter than the tree says; run audit")
        return data[: want * HASH]

    def entry_bundle(self, index: int, width: int | None) -> bytes:
        """tlog-tiles entry bundle: each entry as a big-endian uint16 length then the bytes."""
        size = self.head().size
        have = tile_width_at(0, index, size)
        want = TILE_WIDTH if width is None else width
        if want < 1 or want > TILE_WIDTH or have < want:
            raise NotFound(f"entry bundle {index} of width {want} does not exist yet")
        start = index * TILE_WIDTH
        with self.store.reader() as conn:
            rows = self.store.entries(conn, start, start + want)
        if len(rows) != want:
            raise StoreError(f"entry bundle {index} is missing entries; run jianzheng audit")
        out = bytearray()
        for _, eh in rows:
            entry = ENTRY_VERSION + eh
            out += len(entry).to_bytes(2, "big") + entry
        return bytes(out)

    # --- appends and receipts ------------------------------------------------------------
    def append(
        self, events: list[EventSubmission], poster: str, *, dry: bool = False
    ) -> Future[list[Appended]]:
        """Queue events for the log (the sequencer seals sealed ones part by part).
        ``dry`` checks them as an append would be checked and commits nothing."""
        return self.sequencer.submit(events, poster, dry=dry)

    async def commit(
        self, events: list[EventSubmission], poster: str, *, dry: bool = False
    ) -> list[Appended]:
        """Queue ``events`` as one unit and wait, at most :data:`APPEND_TIMEOUT`, until it
        is durable (the last step of ``ledger.appending.append_events``). Raises what the
        sequencer raises (``SequencerBusy``, its refusals, ``StoreError``) and
        :class:`TimeoutError`."""
        t0 = time.perf_counter()
        fut = self.append(events, poster, dry=True) if dry else self.append(events, poster)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), APPEND_TIMEOUT)
        finally:
            metrics.APPEND_SECONDS.observe(time.perf_counter() - t0)

    def add_checkpoint_listener(self, fn: Callable[[SignedCheckpoint], None]) -> None:
        """Call ``fn(checkpoint)`` after each new checkpoint is committed.

        Listeners run on the sequencer thread after the batch's callers were answered;
        they must return quickly (hand slow work such as witnessing to another thread).
        """
        self._listeners.append(fn)

    def _remember(self, start: int, checkpoint: SignedCheckpoint) -> None:
        """The sequencer committed entries [start, checkpoint.size) under ``checkpoint``."""
        for fn in self._listeners:
            try:
                fn(checkpoint)
            except Exception:  # a listener must never stop the log
                log.exception("checkpoint listener failed")
        with self._recent_lock:
            self._recent_starts.append(start)
            self._recent_sizes.append(checkpoint.size)
            self._recent.append(checkpoint)
            if len(self._recent_sizes) > RECENT_CHECKPOINTS:
                del self._recent_starts[: RECENT_CHECKPOINTS // 2]
                del self._recent_sizes[: RECENT_CHECKPOINTS // 2]
                del self._recent[: RECENT_CHECKPOINTS // 2]

    def checkpoint_for(self, index: int) -> SignedCheckpoint:
        """The first checkpoint whose tree includes ``index`` (normally that of its batch)."""
        with self._recent_lock:
            # The first remembered checkpoint above ``index`` is its batch's when that
            # batch began at or before it (otherwise another process wrote the entry).
            i = bisect.bisect_right(self._recent_sizes, index)
            if i < len(self._recent_sizes) and self._recent_starts[i] <= index:
                return self._recent[i]
        with self.store.reader() as conn:
            cp = self.store.checkpoint_covering(conn, index)
        if cp is None:
            raise NotFound(f"index {index} is not in the log")
        return cp

    def receipt(
        self,
        index: int,
        event_hash: bytes | None = None,
        checkpoint: SignedCheckpoint | None = None,
    ) -> Receipt:
        """The receipt of ``index``: proof against the checkpoint of its own batch
        (``checkpoint``, when the caller already has it from :meth:`checkpoint_for`)."""
        cp = checkpoint or self.checkpoint_for(index)
        if event_hash is None:
            with self.store.reader() as conn:
                row = self.store.record_at(conn, index)
            if row is None:
                raise NotFound(f"index {index} is not in the log")
            event_hash = row[1]
        proof = tuple(self.reader.inclusion_proof(index, cp.size))
        return Receipt(index, event_hash, cp.note, proof)

    def receipts(self, done: Sequence[Appended]) -> list[Receipt]:
        """Receipts for a batch's results, sharing the work their proofs have in common.

        Proofs of neighbouring leaves against one checkpoint share most of their hashes
        (the right border above all), so each node is looked up once per call.
        """
        cps, proofs = self._proofs(done, bytes, {})
        return [
            Receipt(a.index, a.event_hash, cp.note, tuple(proof))
            for a, cp, proof in zip(done, cps, proofs, strict=True)
        ]

    def receipts_json(
        self, done: Sequence[Appended]
    ) -> list[tuple[SignedCheckpoint, dict[str, Any]]]:
        """Per result, its batch's checkpoint and ``receipt.to_json()`` (as
        :meth:`receipts` would give), base64-encoding each node once."""
        if len(self._proof_b64) > PROOF_NODES_KEPT:
            self._proof_b64.clear()
        cps, proofs = self._proofs(done, encode_b64, self._proof_b64)
        return [
            (cp, receipt_json(a.index, encode_b64(a.event_hash), cp.note, proof))
            for a, cp, proof in zip(done, cps, proofs, strict=True)
        ]

    def _proofs(
        self, done: Sequence[Appended], encode: Callable[[bytes], _T], known: dict[int, _T]
    ) -> tuple[list[SignedCheckpoint], list[list[_T]]]:
        """Per result: its batch's checkpoint, and its encoded inclusion proof.

        ``known`` holds encoded complete nodes (see :func:`merkle.inclusion_proofs`).
        """
        sizes: list[int] = []
        cps: list[SignedCheckpoint] = []
        cp, last = SignedCheckpoint(0, merkle.EMPTY_ROOT, ""), -1
        for a in done:
            i = a.index
            # An index above the previous one and below that one's checkpoint belongs to
            # the same batch, so the same checkpoint (usually: all results of one call).
            if not last < i < cp.size:
                cp = self.checkpoint_for(i)
            last = i
            sizes.append(cp.size)
            cps.append(cp)
        proofs: list[list[_T]] = [[] for _ in done]
        node = self.reader.batch_node()
        for size in dict.fromkeys(sizes):
            at = [pos for pos, s in enumerate(sizes) if s == size]
            indices = [done[pos].index for pos in at]
            for pos, proof in zip(
                at, merkle.inclusion_proofs(node, indices, size, encode, known), strict=True
            ):
                proofs[pos] = proof
        return cps, proofs

    # --- queries -----------------------------------------------------------------------
    def head(self) -> SignedCheckpoint:
        with self.store.reader() as conn:
            h = self.store.head(conn)
        return h or SignedCheckpoint(0, merkle.EMPTY_ROOT, "")

    def info(self) -> LogInfo:
        h = self.head()
        return LogInfo(self.signer.name, self.signer.verifier.vkey, h.size, h.root, h.note)

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        self._check_size(tree_size)
        if not 0 <= index < tree_size:
            raise NotFound(f"index {index} is not below tree_size {tree_size}")
        return self.reader.inclusion_proof(index, tree_size)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        self._check_size(second)
        if not 0 < first <= second:
            raise NotFound(
                f"no consistency proof from {first} to {second}: need 0 < first <= second"
            )
        return self.reader.consistency_proof(first, second)

    def _check_size(self, size: int) -> None:
        have = self.head().size
        if size > have:
            raise NotFound(f"tree size {size} is larger than the log ({have})")

    def checkpoint_at(self, size: int) -> SignedCheckpoint:
        with self.store.reader() as conn:
            cp = self.store.checkpoint_at(conn, size)
        if cp is None:
            raise NotFound(f"no checkpoint of size {size}")
        return cp

    def record(self, index: int) -> tuple[bytes, bytes]:
        """(canonical record bytes, event hash) at ``index``."""
        with self.store.reader() as conn:
            row = self.store.record_at(conn, index)
        if row is None:
            raise NotFound(f"index {index} is not in the log")
        return row

    def record_with_poster(self, index: int) -> tuple[bytes, bytes, str] | None:
        """(canonical record, event hash, poster token id) at ``index``, or None."""
        with self.store.reader() as conn:
            return self.store.record_with_poster(conn, index)

    def unsealed(self, project: str) -> bool:
        """Whether the project's sealed events may be read: its bid opening is recorded."""
        return self.reached(project, self.catalogue.sealed_until)

    def reached(self, project: str, event_type: str) -> bool:
        """Whether the project's process chain records an event of ``event_type``."""
        with self.store.reader() as conn:
            return self.store.project_has_type(conn, project, event_type)

    def project_trade_type(self, project: str) -> str | None:
        """The trade type the project's first record fixed; None if it has no records."""
        tt = self._trade_types.get(project)
        if tt is None:
            tt = self.project_trade_types([project]).get(project)
        return tt

    def project_trade_types(self, projects: Sequence[str]) -> dict[str, str]:
        """project -> stored trade type, for those of ``projects`` that have records."""
        known = self._trade_types
        out = {p: known[p] for p in projects if p in known}
        missing = [p for p in projects if p not in out]
        if missing:
            # Asked for every posted event (ledger.appending.check_events): no transaction.
            found = self.store.project_trade_types(None, missing)
            if len(known) + len(found) > TRADE_TYPES_KEPT:
                known.clear()
            known.update(found)
            out.update(found)
        return out

    def has_sealed(self, project: str) -> bool:
        """Whether the project has sealed events (its sealed chain is not empty)."""
        with self.store.reader() as conn:
            return self.store.has_records(conn, project + SEALED_SUFFIX)

    def merged_records(
        self, project: str, after_index: int, limit: int
    ) -> list[tuple[int, int, bytes]]:
        """(index, seq, canonical record) of the project's process and sealed chains, in log
        order, with log index above ``after_index``; at most ``limit``."""
        with self.store.reader() as conn:
            return self.store.chains_records(
                conn, (project, project + SEALED_SUFFIX), after_index, limit
            )

    def openings(self, indexes: Sequence[int]) -> dict[int, bytes]:
        """The stored openings of the sealed records among ``indexes`` (canonical JSON)."""
        with self.store.reader() as conn:
            return self.store.openings(conn, indexes)

    def project_records(
        self, project: str, after: int, limit: int, event_type: str | None = None
    ) -> list[tuple[int, int, bytes]]:
        """(index, seq, canonical record) with seq > ``after``, at most ``limit``."""
        with self.store.reader() as conn:
            return self.store.project_records(conn, project, after, limit, event_type)

    def project_object_citations(
        self, project: str, after: str, limit: int, hidden: Sequence[str] = ()
    ) -> dict[str, list[Citation]]:
        """The objects the project cites above SHA-256 ``after`` (at most ``limit``, in
        order), each with the project's citations of it; an object the project cites by an
        event type in ``hidden`` is left out."""
        with self.store.reader() as conn:
            return self.store.project_object_citations(conn, project, after, limit, hidden)

    def object_citations(self, sha256: str, limit: int = MAX_CITATIONS) -> list[Citation]:
        """The projects (and event types) whose records cite the object, earliest first."""
        with self.store.reader() as conn:
            return self.store.object_citations(conn, sha256, limit)
