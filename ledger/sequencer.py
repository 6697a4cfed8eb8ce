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
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from ledger.clock import Clock, rfc3339
from ledger.keys import LogKeyError, write_high_water
from ledger.records import (
    ACCESS_SUFFIX,
    EventSubmission,
    citation_rows,
    complete_record,
    leaf_for_record,
)
from ledger.store import RecordValues, Store, StoreError
from ledger.tiles import HASH, TILE_HEIGHT, TILE_WIDTH, TreeReader
from verifier import merkle
from verifier.checkpoint import Checkpoint
from verifier.note import Signer, sign_note

log = logging.getLogger("jianzheng.sequencer")


class IdempotencyConflict(ValueError):
    """The idempotency key was used before by this poster for a different event."""

    def __init__(self, key: str, position: int) -> None:
        super().__init__(
            f"events[{position}].idempotency_key: {key!r} was already used for a different event"
        )
        self.key = key
        self.position = position


class PosterKeyChanged(ValueError):
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


class TradeTypeMismatch(ValueError):
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


class SequencerBusy(RuntimeError):
    """The append queue is full; the caller should retry later."""


@dataclass(frozen=True, slots=True)
class Appended:
    """Where one event landed: its log index and event hash; ``replayed`` if already there."""

    index: int
    event_hash: bytes
    replayed: bool = False


@dataclass
class _Unit:
    events: list[EventSubmission]
    poster: str
    future: Future[list[Appended]] = field(default_factory=Future)


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


#: A chain's tail: (next seq, hash of its newest record, the project's stored trade type).
#: The trade type is None for a project without records, and for access chains.
Tail = tuple[int, bytes, str | None]


class _ProjectTails:
    """LRU of project -> :data:`Tail`, read through to the store.

    Only ever read inside the writer transaction, so what it holds is committed state (or
    this process's batch just committed); a failed batch clears it.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._d: OrderedDict[str, Tail] = OrderedDict()
        self._limit = limit

    def get(self, store: Store, conn: Connection, project: str) -> Tail:
        v = self._d.get(project)
        if v is None:
            tail = store.project_tail(conn, project)
            v = (tail[0] + 1, tail[1], tail[2]) if tail else (0, bytes(32), None)
            if tail:
                # Remembered, so access records of an old project cost no query each.
                self.update({project: v})
        return v

    def update(self, changes: dict[str, Tail]) -> None:
        for k, v in changes.items():
            self._d[k] = v
            self._d.move_to_end(k)
        while len(self._d) > self._limit:
            self._d.popitem(last=False)

    def clear(self) -> None:
        self._d.clear()


class Sequencer:
    """Owns the append path; see the module docstring."""

    def __init__(
        self,
        store: Store,
        signer: Signer,
        clock: Clock,
        reader: TreeReader,
        edge_tiles: dict[tuple[int, int], bytes],
        *,
        data_dir: Path | None = None,
        max_batch: int = 4096,
        max_delay: float = 0.002,
        queue_limit: int = 200_000,
        salt: Callable[[], bytes] | None = None,
        on_checkpoint: Callable[[int, int, bytes, str], None] | None = None,
    ) -> None:
        self.store = store
        self.signer = signer
        self.clock = clock
        self.reader = reader
        #: The newest version of every tile this process wrote; the reader consults it first.
        self.edge_tiles = edge_tiles
        self.data_dir = data_dir
        self.max_batch = max_batch
        self.max_delay = max_delay
        self._salt = salt or SaltPool()
        self._on_checkpoint = on_checkpoint
        self._queue: queue.Queue[_Unit | None] = queue.Queue()
        self._queued_events = 0
        self._queue_limit = queue_limit
        self._lock = threading.Lock()
        self._tails = _ProjectTails()
        self._frontier: merkle.CompactRange | None = None
        self._thread: threading.Thread | None = None
        self.batches = 0

    # --- public ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="jianzheng-sequencer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def submit(self, events: list[EventSubmission], poster: str) -> Future[list[Appended]]:
        """Queue one all-or-nothing unit of events; the future resolves after commit."""
        unit = _Unit(events, poster)
        with self._lock:
            if self._queued_events + len(events) > self._queue_limit:
                raise SequencerBusy(f"more than {self._queue_limit} events are waiting")
            self._queued_events += len(events)
        self._queue.put(unit)
        return unit.future

    # --- the loop ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            units = [first]
            count = len(first.events)
            deadline = time.monotonic() + self.max_delay
            stop = False
            while count < self.max_batch:
                wait = deadline - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                units.append(nxt)
                count += len(nxt.events)
            with self._lock:
                self._queued_events -= count
            self._commit_units(units)
            if stop:
                return

    def _commit_units(self, units: list[_Unit]) -> None:
        try:
            results, head = self._commit(units)
        except Exception as e:  # the whole batch failed: nothing was committed
            log.exception("append batch failed")
            self._frontier = None  # reload from the database on the next batch
            self._tails.clear()
            err: Exception = e if isinstance(e, StoreError) else StoreError(f"append failed: {e}")
            for u in units:
                if not u.future.done():
                    u.future.set_exception(err)
            return
        self.batches += 1
        # Announce the checkpoint before answering, so receipts find it in memory.
        if head is not None and self._on_checkpoint is not None:
            self._on_checkpoint(*head)
        for u, r in zip(units, results, strict=True):
            if isinstance(r, Exception):
                u.future.set_exception(r)
            else:
                u.future.set_result(r)
        if head is not None and self.data_dir is not None:
            try:
                write_high_water(self.data_dir, head[1], head[2])
            except (OSError, LogKeyError):
                # The mark only guards restarts; losing one update must not stop appends.
                log.exception("cannot record the high-water mark %d", head[1])

    def _commit(
        self, units: list[_Unit]
    ) -> tuple[list[list[Appended] | Exception], tuple[int, int, bytes, str] | None]:
        try:
            with self.store.writer() as conn:
                results, staged = self._stage(conn, units)
        except SQLAlchemyError as e:
            raise StoreError(f"database error while appending: {e.__class__.__name__}") from e
        if staged is None:
            return results, None
        # Committed: adopt the new frontier, tiles and project tails.
        frontier, tiles, tails, note, start = staged
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
        return results, (start, frontier.size, frontier.root(), note)

    def _stage(
        self, conn: Connection, units: list[_Unit]
    ) -> tuple[list[list[Appended] | Exception], _Staged | None]:
        """Write the batch inside the open transaction; return what to adopt on commit."""
        head = self.store.head(conn)
        size0 = head.size if head else 0
        root0 = head.root if head else merkle.EMPTY_ROOT
        frontier = self._frontier
        if frontier is None or frontier.size != size0:
            # First batch, a failed batch, or another writer appended: trust only the store.
            for key in list(self.edge_tiles):
                self.reader.forget(*key)
            self.edge_tiles.clear()
            if frontier is not None and frontier.size < size0:
                # Another worker process appended [ours, size0): adopt the project tails
                # it moved rather than forget them all.
                moved = self.store.tails_between(conn, frontier.size, size0)
                self._tails.update({p: (seq + 1, eh, tt) for p, (seq, eh, tt) in moved.items()})
            else:
                self._tails.clear()
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
        tails: dict[str, Tail] = {}
        projects: list[dict[str, Any]] = []
        openings: list[tuple[int, str, bytes]] = []
        results: list[list[Appended] | Exception] = []
        # (poster, key) -> (index, digest, event hash) for keys seen in this batch or stored.
        known: dict[tuple[str, str], tuple[int, bytes | None, bytes]] = {}
        registered = self.store.current_poster_keys(conn, sorted({u.poster for u in units}))
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
            out: list[Appended] = []
            for ev in unit.events:
                k = ev.idempotency_key
                if k is not None and (unit.poster, k) in known:
                    idx, _, eh = known[(unit.poster, k)]
                    out.append(Appended(idx, eh, replayed=True))
                    continue
                index = frontier.size
                # Sealed events join the project's sealed chain (ledger/sealing.py).
                chain = ev.chain
                seq, prev, bound = tails.get(chain) or self._tails.get(self.store, conn, chain)
                if chain != ev.project:
                    # The trade type is the project's (checked in _mismatch); the sealed
                    # chain binds nothing of its own.
                    bound = (
                        tails.get(ev.project) or self._tails.get(self.store, conn, ev.project)
                    )[2] or ev.trade_type
                rec = complete_record(
                    ev,
                    index=index,
                    seq=seq,
                    prev=prev,
                    recorded_at=recorded_at,
                    salt=self._salt(),
                    checkpoint_size=size0,
                    checkpoint_root=root0,
                )
                if bound is None and not ev.project.endswith(ACCESS_SUFFIX):
                    # The project's first event fixes its trade type, in this transaction.
                    bound = ev.trade_type
                    projects.append(
                        {"project": ev.project, "trade_type": bound, "first_index": index}
                    )
                tails[chain] = (seq + 1, rec.event_hash, bound)
                frontier.append(leaf_for_record(rec.event_hash), visit)
                if k is not None:
                    known[(unit.poster, k)] = (index, ev.digest, rec.event_hash)
                if ev.sealing is not None:
                    openings.append((index, ev.project, ev.sealing.openings))
                rows.append(
                    (
                        index,
                        chain,
                        seq,
                        ev.type,
                        rec.event_hash,
                        rec.canonical,
                        unit.poster,
                        k,
                        ev.digest if k is not None else None,
                    )
                )
                cites += citation_rows(ev, index)
                out.append(Appended(index, rec.event_hash))
            results.append(out)

        if not rows:
            return results, None
        size1 = frontier.size
        root1 = frontier.root()
        body = Checkpoint(self.signer.name, size1, root1).body()
        note = sign_note(body, [self.signer]).to_text()
        self.store.add_records(conn, rows)
        self.store.add_citations(conn, cites)
        self.store.add_projects(conn, projects)
        self.store.add_openings(conn, openings)
        self.store.put_tiles(conn, {k: (bytes(v), existed[k]) for k, v in tiles.items()})
        self.store.add_checkpoint(conn, size1, root1, note, recorded_at)
        return results, (frontier, tiles, tails, note, size0)

    def _mismatch(
        self,
        conn: Connection,
        tails: dict[str, Tail],
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
            project = ev.project.removesuffix(ACCESS_SUFFIX)
            have = fixed.get(project)
            if have is None:
                have = (tails.get(project) or self._tails.get(self.store, conn, project))[2]
                if have is None:
                    if project == ev.project:
                        fixed[project] = ev.trade_type
                    continue
                fixed[project] = have
            if have != ev.trade_type:
                return TradeTypeMismatch(pos, project, have, ev.trade_type)
        return None


_Staged = tuple[merkle.CompactRange, dict[tuple[int, int], bytearray], dict[str, Tail], str, int]
