"""The single sequencer: batches appends and commits each batch in one transaction.

One thread owns the append path. It takes whatever is queued (up to ``max_batch`` events,
waiting at most ``max_delay`` for more), completes the records, extends the tree with a
compact range, and writes records, widened tiles and the newly signed checkpoint in one
transaction under the writer lock. Only after that commit is any caller told its index,
so an acknowledged event is durable. If another process appended meanwhile (PostgreSQL
deployments may run several), the sequencer notices the head moved and reloads.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from ledger import metrics
from ledger.catalogue import Catalogue, load_catalogue
from ledger.checkpoints import SignedCheckpoint
from ledger.clock import Clock, rfc3339
from ledger.committer import Committer
from ledger.errors import LedgerError
from ledger.keys import HighWaterWriter
from ledger.order import (
    EMPTY_STATE,
    OrderState,
    OrderViolation,
    ProcessOrder,
    ReferenceProblem,
    posted_reference,
)
from ledger.records import (
    ACCESS_EVENT,
    ACCESS_SUFFIX,
    ALERT_EVENT,
    SEALED_SUFFIX,
    SUPERVISION_CHAIN,
    CommittedRecord,
    EventSubmission,
    citation_rows,
    complete_record,
    leaf_for_record,
)
from ledger.sealing import seal
from ledger.store import RecordValues, Store, StoreError
from ledger.tiles import HASH, TILE_HEIGHT, TILE_WIDTH, TreeReader
from verifier import merkle
from verifier.canonical import Canonical, canonicalize
from verifier.checkpoint import Checkpoint
from verifier.note import NoteSigner, sign_note

log = logging.getLogger("jianzheng.sequencer")


class IdempotencyConflict(ValueError, LedgerError):
    """The idempotency key was used before by this poster for a different event."""

    def __init__(self, key: str, position: int) -> None:
        super().__init__(
            f"events[{position}].idempotency_key: {key!r} was already used for a different event"
        )
        self.key = key
        self.position = position


class PosterKeyChanged(ValueError, LedgerError):
    """The poster's registered key changed after the API checked the event's signature.

    Checked again under the writer lock, because the committed record must carry the key
    registered at its log position: a record signed with a key just replaced would
    otherwise fail the offline verifier's registered-key check.
    """

    def __init__(self, position: int) -> None:
        super().__init__(
            f"events[{position}].signature: this poster's signing key changed while the "
            "event waited to be appended; sign it with the current key and post it again"
        )
        self.position = position


def stale_signature(
    events: list[EventSubmission], registered: tuple[bytes, bool] | None, skip: set[int]
) -> PosterKeyChanged | None:
    """The first event (not in ``skip``) whose signature no longer fits the poster's key."""
    for pos, ev in enumerate(events):
        if pos in skip:
            continue
        sig = ev.poster_signature
        if sig is None:
            bad = registered is not None and registered[1]
        else:
            bad = registered is None or base64.b64decode(sig["public_key"]) != registered[0]
        if bad:
            return PosterKeyChanged(pos)
    return None


class TradeTypeMismatch(ValueError, LedgerError):
    """An event's trade type is not its project's, which the project's first event fixed.

    Checked under the writer lock against committed state (and the events before it in
    the same batch), so two workers cannot bind one project to two trade types; the
    event's whole unit is refused (issue 10 §1: a scope by trade type must mean something).
    """

    def __init__(self, position: int, project: str, trade_type: str, declared: str) -> None:
        #: The refusal without the field's name, for the API to put its own in front.
        self.reason = (
            f"project {project} is a {trade_type} project (fixed by its first event); "
            f"this event says {declared}"
        )
        self.reason_zh = (
            f"项目 {project} 为 {trade_type} 项目（由其首个事件确定），本事件却为 {declared}"
        )
        super().__init__(f"events[{position}].trade_type: {self.reason}")
        self.position = position
        self.project = project
        self.trade_type = trade_type


class OutOfOrder(ValueError, LedgerError):
    """The event breaks a process-order rule (HTTP 409 ``out_of_order``); nothing committed."""

    def __init__(self, position: int, violation: OrderViolation) -> None:
        super().__init__(f"events[{position}].type: {violation.message}")
        self.position = position
        self.violation = violation


class UnresolvedReference(ValueError, LedgerError):
    """A reply's reference names no event it may answer (HTTP 422); nothing committed."""

    def __init__(self, position: int, problem: ReferenceProblem) -> None:
        super().__init__(f"events[{position}].{problem.field}: {problem.message}")
        self.position = position
        self.problem = problem


class SequencerBusy(RuntimeError, LedgerError):
    """The append queue is full; the caller should retry later."""


class LogBehind(RuntimeError, LedgerError):
    """The database is behind a checkpoint this log already signed: appending now would
    sign a second history (issue 16). HTTP 503 ``behind``; nothing is committed."""


@dataclass(frozen=True, slots=True)
class Floor:
    """A size the database must reach before this node appends again, and why.

    ``root`` is known when the size is a checkpoint this node signed (its data dir's
    mark): reached, the tree at that size must have it, or the log forked.
    """

    size: int
    root: bytes | None
    reason: str


@dataclass(frozen=True, slots=True)
class Completion:
    """What the ledger added to a posted event to make its record (see the receipt)."""

    seq: int
    prev: bytes
    recorded_at: str
    salt: bytes
    checkpoint_size: int
    checkpoint_root: bytes
    #: The event as committed: its payload's references resolved, attachments' chunk roots.
    event: EventSubmission
    #: The record's canonical bytes.
    record: CommittedRecord


@dataclass(frozen=True, slots=True)
class Appended:
    """Where one event landed: its log index and event hash; ``replayed`` if already there."""

    index: int
    event_hash: bytes
    replayed: bool = False
    #: What the ledger added, for the receipt; None for a replay (it is in the record).
    completion: Completion | None = field(default=None, compare=False)


@dataclass
class _Unit:
    events: list[EventSubmission]
    poster: str
    #: A dry run (POST /v1/events:validate): checked like an append, never committed.
    dry: bool = False
    future: Future[list[Appended]] = field(default_factory=Future)


@dataclass(frozen=True, slots=True)
class ProjectTail:
    """What the sequencer keeps of a project's committed tail: to append, to hold the
    project to its trade type, and to check process order."""

    next_seq: int
    #: Event hash of the newest record (the next record's ``prev``).
    prev: bytes
    #: What the process-order rules need of the history; None until loaded (a tail adopted
    #: from another worker's appends is loaded from the store when next needed).
    order: OrderState | None
    #: The project's stored trade type; None for a project without records, and for
    #: access chains.
    trade_type: str | None = None


_NEW_PROJECT = ProjectTail(0, bytes(32), EMPTY_STATE, None)


class SaltPool:
    """32-byte record salts from the OS's CSPRNG, drawn 32 KiB at a time.

    ``os.urandom`` releases the GIL around its system call; once per event, the sequencer
    thread would hand the GIL to the HTTP thread thousands of times a second and wait up
    to a switch interval (5 ms) to get it back each time.
    """

    SALT = 32
    DRAW = 1024

    def __init__(self) -> None:
        self._buf = b""
        self._at = 0

    def __call__(self) -> bytes:
        if self._at >= len(self._buf):
            self._buf, self._at = os.urandom(self.SALT * self.DRAW), 0
        self._at += self.SALT
        return self._buf[self._at - self.SALT : self._at]


class _ProjectTails:
    """LRU of project -> :class:`ProjectTail`, read through to the store.

    Only ever read inside the writer transaction, so what it holds is committed state (or
    this process's batch just committed); a failed batch clears it.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._d: OrderedDict[str, ProjectTail] = OrderedDict()
        self._limit = limit

    def prefetch(self, store: Store, conn: Connection, chains: set[str]) -> None:
        """Load the tails of the ``chains`` not held yet, in one query for the batch.

        A chain without records is held too (as :data:`_NEW_PROJECT`): what this holds is
        the committed state as of the batch's head, like any tail. It stays true until a
        record joins the chain, and every record that does is one this process committed
        (:meth:`update`) or one another worker committed, which the next batch adopts
        before reading a tail (:meth:`adopt`, from the records between the two heads); a
        failed batch or a restart clears it all.
        """
        missing = [c for c in chains if c not in self._d]
        if not missing:
            return
        found = store.project_tails(conn, missing)
        for c in missing:
            tail = found.get(c)
            self._d[c] = (
                _NEW_PROJECT if tail is None else ProjectTail(tail[0] + 1, tail[1], None, tail[2])
            )
        self._trim()

    def get(self, store: Store, conn: Connection, project: str, order: ProcessOrder) -> ProjectTail:
        v = self._d.get(project)
        if v is None:
            self.prefetch(store, conn, {project})
            v = self._d[project]
        if v.order is None and (
            project.endswith((SEALED_SUFFIX, ACCESS_SUFFIX)) or project == SUPERVISION_CHAIN
        ):
            v = dataclasses.replace(v, order=EMPTY_STATE)
        if v.order is None:
            rows = store.order_history(conn, project, order.tracked, order.closing_fields())
            v = ProjectTail(v.next_seq, v.prev, order.replay(rows), v.trade_type)
            # Remembered, so access records of an old project cost no query each.
            self.update({project: v})
        return v

    def update(self, changes: dict[str, ProjectTail]) -> None:
        for k, v in changes.items():
            self._d[k] = v
            self._d.move_to_end(k)
        self._trim()

    def _trim(self) -> None:
        while len(self._d) > self._limit:
            self._d.popitem(last=False)

    def adopt(self, moved: dict[str, tuple[int, bytes, str | None]], reload: set[str]) -> None:
        """Another worker appended: take its tails; reload the order state of ``reload``."""
        for k, (seq, eh, tt) in moved.items():
            old = self._d.get(k)
            keep = old.order if old is not None and k not in reload else None
            self._d[k] = ProjectTail(seq + 1, eh, keep, tt)
            self._d.move_to_end(k)
        self._trim()

    def clear(self) -> None:
        self._d.clear()


class Sequencer:
    """Owns the append path; see the module docstring."""

    def __init__(
        self,
        store: Store,
        signer: NoteSigner,
        clock: Clock,
        reader: TreeReader,
        edge_tiles: dict[tuple[int, int], bytes],
        *,
        data_dir: Path | None = None,
        max_batch: int = 4096,
        max_delay: float = 0.002,
        queue_limit: int = 200_000,
        salt: Callable[[], bytes] | None = None,
        on_checkpoint: Callable[[int, SignedCheckpoint], None] | None = None,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.store = store
        self.catalogue = catalogue or load_catalogue()
        self.order = self.catalogue.order
        self.signer = signer
        self.clock = clock
        self.reader = reader
        #: The newest version of every tile this process wrote; the reader consults it first.
        self.edge_tiles = edge_tiles
        self.data_dir = data_dir
        self._salt = salt or SaltPool()
        self._seal_pool = SaltPool()
        self._on_checkpoint = on_checkpoint
        self._committer: Committer[_Unit] = Committer(
            self._commit_units,
            name="jianzheng-sequencer",
            max_batch=max_batch,
            max_delay=max_delay,
            weight=lambda u: len(u.events),
        )
        self._queued_events = 0
        self._queue_limit = queue_limit
        self._lock = threading.Lock()
        self._tails = _ProjectTails()
        self._frontier: merkle.CompactRange | None = None
        self._high_water: HighWaterWriter | None = None
        self.batches = 0
        #: While set, no batch is committed: the database is behind it (see :meth:`hold`).
        self.floor: Floor | None = None

    def _seal_salt(self, n: int) -> bytes:
        """The salt of one sealed part (``n`` = 32), from a pool of the OS's CSPRNG."""
        assert n == SaltPool.SALT
        return self._seal_pool()

    # --- public ------------------------------------------------------------------------
    def start(self) -> None:
        if self.data_dir is not None and self._high_water is None:
            self._high_water = HighWaterWriter(self.data_dir)
        self._committer.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._committer.stop(timeout)
        if self._high_water is not None:
            # After the last batch: a log closed cleanly leaves the mark at its head.
            self._high_water.close(timeout)
            self._high_water = None

    def hold(self, size: int, root: bytes | None, reason: str) -> None:
        """Append nothing until the database holds a tree of ``size`` (with ``root``, when
        given): it is behind a checkpoint that was signed or cosigned (``reason``).

        Checked by each batch against the head it reads anyway, so it costs nothing per
        event, and lifts by itself once the database has caught up (a lagging replica).
        """
        with self._lock:
            if self.floor is None or size > self.floor.size:
                self.floor = Floor(size, root, reason)

    def behind(self) -> str | None:
        """Why appends are refused now, or None."""
        f = self.floor
        return None if f is None else f.reason

    def submit(
        self, events: list[EventSubmission], poster: str, *, dry: bool = False
    ) -> Future[list[Appended]]:
        """Queue one all-or-nothing unit of events; the future resolves after commit.

        ``dry``: check the unit exactly as an append would be checked, under the writer
        lock against the committed tails, and answer what would be appended; commit nothing.
        """
        unit = _Unit(events, poster, dry)
        with self._lock:
            if self._queued_events + len(events) > self._queue_limit:
                raise SequencerBusy(f"more than {self._queue_limit} events are waiting")
            self._queued_events += len(events)
        self._committer.put(unit)
        return unit.future

    # --- the loop (a Committer: up to max_batch events, max_delay for more) ----------
    def _commit_units(self, units: list[_Unit]) -> None:
        with self._lock:
            self._queued_events -= sum(len(u.events) for u in units)
        try:
            results, committed = self._commit(units)
        except Exception as e:  # the whole batch failed: nothing was committed
            if isinstance(e, LogBehind):
                log.warning("append refused: %s", e)
            else:
                log.exception("append batch failed")
            self._frontier = None  # reload from the database on the next batch
            self._tails.clear()
            err: Exception = (
                e if isinstance(e, (StoreError, LogBehind)) else StoreError(f"append failed: {e}")
            )
            for u in units:
                if not u.future.done():
                    u.future.set_exception(err)
            return
        self.batches += 1
        # Announce the checkpoint before answering, so receipts find it in memory.
        if committed is not None and self._on_checkpoint is not None:
            self._on_checkpoint(*committed)
        for u, r in zip(units, results, strict=True):
            if isinstance(r, Exception):
                u.future.set_exception(r)
            else:
                u.future.set_result(r)
        if committed is not None and self._high_water is not None:
            # Written by its own thread: its fsync no longer holds up the next batch.
            self._high_water.advance(committed[1].size, committed[1].root)

    def _commit(
        self, units: list[_Unit]
    ) -> tuple[list[list[Appended] | Exception], tuple[int, SignedCheckpoint] | None]:
        asked = time.perf_counter()
        try:
            with self.store.writer() as conn:
                locked = time.perf_counter()
                metrics.LOCK_WAIT.observe(locked - asked)
                self._join_queued(units)
                results, staged = self._stage(conn, units)
        except SQLAlchemyError as e:
            metrics.DB_ERRORS.inc()
            raise StoreError(f"database error while appending: {e.__class__.__name__}") from e
        except LogBehind:
            metrics.REFUSED_BEHIND.inc()
            raise
        metrics.BATCH_SECONDS.observe(time.perf_counter() - locked)
        if staged is None:
            return results, None
        # Committed: adopt the new frontier, tiles and project tails.
        frontier, tiles, tails, checkpoint, start = staged
        metrics.BATCHES.inc()
        metrics.APPENDED.inc(checkpoint.size - start)
        metrics.BATCH_EVENTS.observe(checkpoint.size - start)
        self._frontier = frontier
        for key, buf in tiles.items():
            # Tiles only grow, so the reader's cached narrower copy stays valid: it widens
            # the copy the next time a proof needs more.
            self.edge_tiles[key] = bytes(buf)
        # Keep only the newest tile of each level in memory; older ones are full.
        newest: dict[int, int] = {}
        for lv, i in self.edge_tiles:
            newest[lv] = max(newest.get(lv, -1), i)
        for key in [k for k in self.edge_tiles if k[1] != newest[k[0]]]:
            del self.edge_tiles[key]
        self._tails.update(tails)
        return results, (start, checkpoint)

    def _join_queued(self, units: list[_Unit]) -> None:
        """Add to ``units`` (in place: the caller answers every unit in it) what was queued
        while this batch waited for the writer lock.

        With several worker processes the lock is taken in turns, and a batch gathered
        before the wait would leave what arrived meanwhile for the next turn, a whole round
        later; joined now, it is committed (and acknowledged) with this batch, and each
        turn's fixed costs (the other worker's records adopted, the checkpoint signed, the
        commit's fsync) are shared by more events (issue 18).
        """
        more = self._committer.take_more(sum(len(u.events) for u in units))
        if more:
            with self._lock:
                self._queued_events -= sum(len(u.events) for u in more)
            units += more

    def _stage(
        self, conn: Connection, units: list[_Unit]
    ) -> tuple[list[list[Appended] | Exception], _Staged | None]:
        """Write the batch inside the open transaction; return what to adopt on commit."""
        head = self.store.head(conn)
        size0 = head.size if head else 0
        root0 = head.root if head else merkle.EMPTY_ROOT
        if self.floor is not None:
            self._check_floor(size0)
        frontier = self._frontier
        if frontier is None or frontier.size != size0:
            # First batch, a failed batch, or another writer appended: trust only the store.
            metrics.HEAD_RELOADS.inc()
            for key in list(self.edge_tiles):
                self.reader.forget(*key)
            self.edge_tiles.clear()
            if frontier is not None and frontier.size < size0:
                # Another worker process appended [ours, size0): adopt the project tails
                # it moved rather than forget them all; a project that gained an event
                # the order rules look back for reloads its order state from the store.
                moved = self.store.tails_between(conn, frontier.size, size0)
                reload = self.store.projects_with_types(
                    conn, frontier.size, size0, self.order.tracked
                )
                self._tails.adopt(moved, reload)
                # Our frontier extended by the other worker's leaves: a few records read,
                # where rebuilding it reads a node from the tiles for each level.
                frontier = frontier.copy()
                for _, event_hash in self.store.entries(conn, frontier.size, size0):
                    frontier.append(leaf_for_record(event_hash))
            else:
                self._tails.clear()
            if frontier is None or frontier.size != size0 or frontier.root() != root0:
                frontier = self.reader.frontier(size0)
            if frontier.root() != root0:
                raise StoreError(
                    f"tiles do not match the signed checkpoint at size {size0}; run jianzheng audit"
                )
        frontier = frontier.copy()

        tiles: dict[tuple[int, int], bytearray] = {}
        existed: dict[tuple[int, int], bool] = {}

        def visit(level: int, index: int, h: bytes) -> None:
            if level % TILE_HEIGHT:
                return
            key = (level // TILE_HEIGHT, index >> TILE_HEIGHT)
            buf = tiles.get(key)
            if buf is None:
                old = self.edge_tiles.get(key)
                if old is None:
                    old = self.store.get_tile(conn, *key)
                existed[key] = bool(old)
                buf = tiles[key] = bytearray(old)
            if len(buf) != (index & (TILE_WIDTH - 1)) * HASH:
                raise StoreError(
                    f"tile {key} has {len(buf) // HASH} hashes, expected "
                    f"{index & (TILE_WIDTH - 1)}; run jianzheng audit"
                )
            buf += h

        recorded_at = rfc3339(self.clock.now())
        rows: list[RecordValues] = []
        cites: list[dict[str, Any]] = []
        tails: dict[str, ProjectTail] = {}
        projects: list[dict[str, Any]] = []
        openings: list[tuple[int, str, bytes]] = []
        results: list[list[Appended] | Exception] = []
        # (poster, key) -> (index, digest, event hash) for keys seen in this batch or stored.
        known: dict[tuple[str, str], tuple[int, bytes | None, bytes]] = {}
        # index -> (project, seq, type, poster) of the records staged in this batch, which
        # a later reply in the batch may name.
        placed: dict[int, _Placed] = {}
        registered = self.store.current_poster_keys(conn, sorted({u.poster for u in units}))
        # Every chain the batch may touch, its tail read in one query rather than one each.
        self._tails.prefetch(self.store, conn, self._chains(units))
        for unit in units:
            keys: list[str] = [e.idempotency_key for e in unit.events if e.idempotency_key]
            missing = [k for k in keys if (unit.poster, k) not in known]
            if missing:
                for found, v in self.store.find_idempotent(conn, unit.poster, missing).items():
                    known[(unit.poster, found)] = v
            # First pass: refuse the whole unit on a conflicting key, before appending any of it.
            digests: dict[str, bytes | None] = {}
            conflict: Exception | None = None
            for pos, ev in enumerate(unit.events):
                ikey = ev.idempotency_key
                if ikey is None:
                    continue
                prior = known.get((unit.poster, ikey))
                want = prior[1] if prior is not None else digests.get(ikey, ev.digest)
                if want != ev.digest:
                    conflict = IdempotencyConflict(ikey, pos)
                    break
                digests[ikey] = ev.digest
            if conflict is None:
                replays = {
                    pos
                    for pos, ev in enumerate(unit.events)
                    if ev.idempotency_key is not None and (unit.poster, ev.idempotency_key) in known
                }
                conflict = stale_signature(
                    unit.events, registered.get(unit.poster), replays
                ) or self._mismatch(conn, tails, unit.events, replays)
            if conflict is not None:
                results.append(conflict)
                continue
            # Second pass: order, references and the records themselves, still without
            # touching the batch, so a refused unit leaves nothing behind.
            ctx = _Batch(conn, tails, known, placed, recorded_at, size0, root0)
            planned = self._plan(unit, frontier.size, ctx)
            if isinstance(planned, Exception):
                results.append(planned)
                continue
            items, unit_tails, unit_placed, unit_projects = planned
            if unit.dry:
                results.append(items)
                continue
            out: list[Appended] = []
            for item in items:
                c = item.completion
                if c is None:  # a replay
                    out.append(item)
                    continue
                ev, rec = c.event, c.record
                frontier.append(leaf_for_record(rec.event_hash), visit)
                k = ev.idempotency_key
                if k is not None:
                    known[(unit.poster, k)] = (rec.index, ev.digest, rec.event_hash)
                if ev.sealing is not None:
                    openings.append((rec.index, ev.project, ev.sealing.openings))
                rows.append(
                    (
                        rec.index,
                        ev.chain,
                        c.seq,
                        ev.type,
                        rec.event_hash,
                        rec.canonical,
                        unit.poster,
                        k,
                        ev.digest if k is not None else None,
                    )
                )
                cites += citation_rows(ev, rec.index)
                out.append(item)
            tails.update(unit_tails)
            placed.update(unit_placed)
            projects += unit_projects
            results.append(out)

        if not rows:
            return results, None
        size1 = frontier.size
        root1 = frontier.root()
        body = Checkpoint(self.signer.name, size1, root1).body()
        checkpoint = SignedCheckpoint.of(size1, root1, sign_note(body, [self.signer]))
        self.store.add_records(conn, rows)
        self.store.add_citations(conn, cites)
        self.store.add_projects(conn, projects)
        self.store.add_openings(conn, openings)
        self.store.put_tiles(conn, {k: (bytes(v), existed[k]) for k, v in tiles.items()})
        self.store.add_checkpoint(conn, size1, root1, checkpoint.note, recorded_at)
        # Once per checkpoint, not per event: the mark moves only from the head this batch
        # extends, so no two nodes ever sign two trees of one size (issue 16).
        self.store.advance_high_water(conn, size0, size1, root1)
        return results, (frontier, tiles, tails, checkpoint, size0)

    def _check_floor(self, size0: int) -> None:
        """Refuse the batch while the database (head ``size0``) is behind the floor."""
        f = self.floor
        assert f is not None
        if size0 < f.size:
            raise LogBehind(
                f"this node refuses to append: its database holds {size0} entries, but "
                f"{f.reason}. Signing now would fork the log; restore the newest backup or "
                "let the database catch up (docs/operations.md, restore without a fork)"
            )
        if f.root is not None and self.reader.root(f.size) != f.root:
            raise LogBehind(
                f"this node refuses to append: the database's tree at size {f.size} differs "
                f"from the checkpoint it signed ({f.reason}); run jianzheng audit"
            )
        with self._lock:
            if self.floor is f:
                self.floor = None
        log.info("the database holds size %d (%s): appending", f.size, f.reason)

    def _chains(self, units: list[_Unit]) -> set[str]:
        """The chains the units' events join or look up: each event's project (an access
        record's own chain and its project's), and the sealed chain of a sealed type."""
        out: set[str] = set()
        events = self.catalogue.events
        for u in units:
            for ev in u.events:
                out.add(ev.project)
                base = ev.project.removesuffix(ACCESS_SUFFIX)
                out.add(base)
                et = events.get(ev.type)
                if et is not None and et.sealed:
                    out.add(base + SEALED_SUFFIX)
        return out

    def _mismatch(
        self,
        conn: Connection,
        tails: dict[str, ProjectTail],
        events: list[EventSubmission],
        skip: set[int],
    ) -> TradeTypeMismatch | None:
        """The first event (not in ``skip``: replays) whose trade type is not its project's:
        the stored one, or the one an earlier event of the unit gives a new project. An
        access record belongs to its project (``<project>~access``)."""
        fixed: dict[str, str] = {}
        for pos, ev in enumerate(events):
            if pos in skip:
                continue
            if ev.project == SUPERVISION_CHAIN:
                continue  # alerts of every sector share the chain; it binds no trade type
            project = ev.project.removesuffix(ACCESS_SUFFIX)
            have = fixed.get(project)
            if have is None:
                tail = tails.get(project) or self._tails.get(self.store, conn, project, self.order)
                have = tail.trade_type
                if have is None:
                    if project == ev.project:
                        fixed[project] = ev.trade_type
                    continue
                fixed[project] = have
            if have != ev.trade_type:
                return TradeTypeMismatch(pos, project, have, ev.trade_type)
        return None

    def _plan(
        self, unit: _Unit, start: int, b: _Batch
    ) -> (
        tuple[list[Appended], dict[str, ProjectTail], dict[int, _Placed], list[dict[str, Any]]]
        | Exception
    ):
        """Place a unit's events from log index ``start``: check their process order and
        resolve their references against the committed tails and what this batch and
        unit placed before them, and complete their records. Changes nothing shared.
        """
        order = self.order
        poster = unit.poster
        unit_tails: dict[str, ProjectTail] = {}
        unit_placed: dict[int, _Placed] = {}
        unit_keys: dict[str, Appended] = {}
        unit_projects: list[dict[str, Any]] = []
        items: list[Appended] = []
        index = start
        for pos, ev in enumerate(unit.events):
            k = ev.idempotency_key
            if k is not None:
                prior = b.known.get((poster, k))
                if prior is not None:
                    items.append(Appended(prior[0], prior[2], replayed=True))
                    continue
                again = unit_keys.get(k)
                if again is not None:  # the same event twice in one unit: once appended
                    items.append(Appended(again.index, again.event_hash, replayed=True))
                    continue
            p = ev.project
            # The project's tail holds its order state and trade type.
            ptail = (
                unit_tails.get(p) or b.tails.get(p) or self._tails.get(self.store, b.conn, p, order)
            )
            assert ptail.order is not None
            closes: int | None = None
            refs = order.references.get(ev.type)
            if refs:
                try:
                    ev, closes = self._resolve(ev, refs, poster, b, unit_placed, unit_keys)
                except ReferenceProblem as e:
                    return UnresolvedReference(pos, e)
            # Sealed here, after resolution, so that a sealed reference is committed with
            # what it resolved to (ledger/sealing.py); a sealed event joins the project's
            # sealed chain, which has its own seq and prev.
            ev = seal(ev, self.catalogue, self._seal_salt)
            chain = ev.chain
            tail = ptail
            if chain != p:
                tail = (
                    unit_tails.get(chain)
                    or b.tails.get(chain)
                    or self._tails.get(self.store, b.conn, chain, order)
                )
            if ev.type not in (ACCESS_EVENT, ALERT_EVENT):
                violation = order.check(ptail.order, ev.trade_type, ev.type)
                if violation is not None and ev.late_entry is None:
                    return OutOfOrder(pos, violation)
            seq = tail.next_seq
            salt = self._salt()
            rec = complete_record(
                ev,
                index=index,
                seq=seq,
                prev=tail.prev,
                recorded_at=b.recorded_at,
                salt=salt,
                checkpoint_size=b.size0,
                checkpoint_root=b.root0,
            )
            # Only the process chain moves the order state: the sealed chain is hidden until
            # the opening, and its records' types must not show through a refusal.
            state = (
                order.advance(ptail.order, ev.type, seq, index, closes)
                if chain == p
                else ptail.order
            )
            bound = ptail.trade_type
            if bound is None and not p.endswith(ACCESS_SUFFIX) and p != SUPERVISION_CHAIN:
                # The project's first event fixes its trade type, in this transaction.
                bound = ev.trade_type
                unit_projects.append({"project": p, "trade_type": bound, "first_index": index})
            if chain == p:
                unit_tails[p] = ProjectTail(seq + 1, rec.event_hash, state, bound)
            else:
                # The sealed chain binds nothing of its own; its records' types are not
                # ones the order rules look back for (their state would be a side door).
                unit_tails[chain] = ProjectTail(seq + 1, rec.event_hash, EMPTY_STATE, bound)
                if state is not ptail.order or bound != ptail.trade_type:
                    unit_tails[p] = dataclasses.replace(ptail, order=state, trade_type=bound)
            if ev.type in order.answerable:
                unit_placed[index] = (chain, seq, ev.type, poster)
            done = Appended(
                index,
                rec.event_hash,
                completion=Completion(
                    seq, tail.prev, b.recorded_at, salt, b.size0, b.root0, ev, rec
                ),
            )
            if k is not None:
                unit_keys[k] = done
            items.append(done)
            index += 1
        return items, unit_tails, unit_placed, unit_projects

    def _resolve(
        self,
        ev: EventSubmission,
        refs: Mapping[str, tuple[str, ...]],
        poster: str,
        b: _Batch,
        unit_placed: dict[int, _Placed],
        unit_keys: dict[str, Appended],
    ) -> tuple[EventSubmission, int | None]:
        """The event with its reference fields resolved to ``index`` and ``seq``, and the
        ``seq`` it closes (an ``activity_resumed`` naming its suspension), if any.

        A reference names an earlier event of the same project, of a type the field may
        answer, by the poster's own ``idempotency_key`` or by its log ``index``. Anything
        else is one refusal, worded the same whether the event is missing, in another
        project or of another type, so that a reference cannot probe the log.

        A reference from an open record to a sealed one (in the sealed chain) resolves to
        the ``index`` only: the sealed chain's ``seq`` would count the sealed events before
        it, and the open record is read before the opening and by readers who may never
        read sealed events (docs/formats.md, "Sealed events").
        """
        payload = json.loads(ev.payload)
        hidden = not self.catalogue.events[ev.type].sealed
        closing = self.order.closing_field(ev.type)
        closes: int | None = None
        changed = False
        for name, targets in refs.items():
            if name not in payload:
                continue
            where = f"payload.{name}"
            how, value = posted_reference(payload[name], where)
            found: _Placed | None = None
            at: int | None = None
            if how == "idempotency_key":
                assert isinstance(value, str)
                mine = unit_keys.get(value)
                if mine is not None:
                    at = mine.index
                else:
                    kn = b.known.get((poster, value))
                    at = kn[0] if kn is not None else None
                if at is None:
                    hit = self.store.reference_target(b.conn, poster=poster, key=value)
                    if hit is not None:
                        at, found = hit[0], hit[1:]
                desc = f"with idempotency_key {value!r} posted by this token"
            else:
                assert isinstance(value, int)
                at = value
                desc = f"at index {value}"
            if at is not None and found is None:
                found = unit_placed.get(at) or b.placed.get(at)
                if found is None:
                    hit = self.store.reference_target(b.conn, index=at)
                    found = hit[1:] if hit is not None else None
            if (
                found is None
                or at is None
                or found[0].removesuffix(SEALED_SUFFIX) != ev.project
                or found[2] not in targets
                or (found[3] != poster and self.catalogue.events[found[2]].sealed)
            ):
                raise ReferenceProblem(
                    where,
                    f"no event {desc} in project {ev.project} that {ev.type} may name "
                    f"({', '.join(targets)})",
                )
            if hidden and found[0].endswith(SEALED_SUFFIX):
                payload[name] = {how: value, "index": at}
            else:
                payload[name] = {how: value, "index": at, "seq": found[1]}
            changed = True
            if name == closing:
                closes = found[1]
        if not changed:
            return ev, None
        resolved = Canonical(canonicalize(payload).decode())
        return dataclasses.replace(ev, payload=resolved), closes


#: (chain, seq, type, poster) of a record a reference may name: its chain is the
#: project's, or the project's sealed chain.
_Placed = tuple[str, int, str, str]


@dataclass(frozen=True, slots=True)
class _Batch:
    """What a unit is placed against: the open transaction and the batch so far."""

    conn: Connection
    tails: dict[str, ProjectTail]
    known: dict[tuple[str, str], tuple[int, bytes | None, bytes]]
    placed: dict[int, _Placed]
    recorded_at: str
    size0: int
    root0: bytes


_Staged = tuple[
    merkle.CompactRange,
    dict[tuple[int, int], bytearray],
    dict[str, ProjectTail],
    SignedCheckpoint,
    int,
]
