"""The log side of witnessing: gather cosignatures and RFC 3161 tokens for new checkpoints.

:class:`Witnessing` is registered as a checkpoint listener of the :class:`Ledger`. The
listener runs on the append path, so it only notes the newest checkpoint and wakes the
background threads; nothing it does can make an append or a receipt wait for a witness.

- One thread per witness submits checkpoints with C2SP tlog-witness add-checkpoint
  (§add-checkpoint), each request bounded by a timeout, and on 409 retries from the size
  the witness reports, with a consistency proof from that size. Submissions go in rounds:
  all witnesses are asked about the same checkpoint, and the next round (the newest
  checkpoint by then) starts once the quorum cosigned or every witness that is up has
  answered. That way the k fastest witnesses cosign the same checkpoints, so a k-of-n
  policy is met, and a burst of checkpoints costs each witness one request, not one each.
  A witness that fails is retried with a doubling back-off and never holds up a round.
- One thread asks the TSA for a token over each checkpoint's note body, newest first;
  checkpoints it skipped under load are backfilled when it is idle. Its CPU use is capped
  (it sleeps nine times as long as each token took: at most a tenth of the time), since
  it shares the process, and Python's GIL, with appends.

Every cosignature is verified with the witness's key before it is published or stored
(``cosignatures``); tokens are checked against the TSA's CA certificate (see
``witness/tsa.py``) and stored in ``checkpoint_timestamps``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ledger.checkpoints import SignedCheckpoint
from ledger.clock import rfc3339
from ledger.committer import Committer
from ledger.errors import LedgerError
from ledger.service import Ledger, NotFound
from ledger.witnessing.leader import FileLeaderLock, LeaderLock, PgLeaderLock
from ledger.witnessing.records import WitnessRecords
from ledger.witnessing.timestamper import Timestamper, TsaError
from verifier.checkpoint import CheckpointError
from verifier.note import NoteError, NoteSignature, Verifier, parse_vkey
from verifier.timestamp import TimestampError
from verifier.witnessing import (
    SIZE_CONTENT_TYPE,
    AddCheckpointFormatError,
    AddCheckpointRequest,
    WitnessError,
    WitnessPolicy,
    cosigners,
    parse_cosignatures,
    parse_size,
)

log = logging.getLogger("jianzheng.witnessing")

DEFAULT_TIMEOUT = 5.0
MAX_BACKOFF = 30.0
#: A round ends at the latest this long after it began, even if a witness is still busy.
ROUND_LIMIT = 10.0
#: The timestamp thread sleeps this many times as long as each token took (CPU cap).
TSA_DUTY_FACTOR = 9.0
#: The timestamp thread waits at most this long for a witness round to finish first.
TSA_YIELD = 0.5
CACHE_SIZES = 1024
#: Cosignatures gathered but not yet written; beyond this they stay in memory only.
STORE_QUEUE = 100_000
#: Cosignatures written per transaction, at most.
STORE_BATCH = 256
MAX_REPLY_BYTES = 64 << 10


class WitnessConfigError(ValueError, LedgerError):
    """A ``--witness VKEY@URL`` or quorum setting cannot be used."""


#: What ``GET /v1/log`` says of a witness that answers 404 (no URL in it: the status is
#: public). tlog-witness answers 404 for an unknown origin too, hence the second half.
NOT_FOUND_HINT = (
    "the witness answered 404 Not Found: check that the URL given with --witness is the "
    "witness's submission prefix (the log posts to <prefix>/add-checkpoint; a Jianzheng "
    "witness's prefix is http://host:port/witness), and that the witness was set up to "
    "witness this log's origin"
)


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness the log submits to: its cosignature key and its submission prefix.

    tlog-witness §HTTP Interface: a witness is named by its *submission prefix*; the log
    posts to ``<prefix>/add-checkpoint`` (:attr:`url`).
    """

    verifier: Verifier
    prefix: str

    @property
    def url(self) -> str:
        """The add-checkpoint URL."""
        return self.prefix + "/add-checkpoint"

    @classmethod
    def parse(cls, spec: str) -> WitnessEndpoint:
        """``VKEY@URL``; URL is the witness's submission prefix, taken as given.

        A URL ending in ``/add-checkpoint`` is refused rather than guessed at: before
        tlog-witness prefixes, ``--witness`` took such a URL whole, and appending
        ``/add-checkpoint`` to it again would only fail later, at every submission.
        """
        vkey, sep, url = spec.partition("@")
        if not sep or not url:
            raise WitnessConfigError(f"--witness {spec!r}: want VKEY@URL")
        try:
            v = parse_vkey(vkey)
        except NoteError as e:
            raise WitnessConfigError(f"--witness: {e}") from None
        if not url.startswith(("http://", "https://")):
            raise WitnessConfigError(f"--witness {spec!r}: the URL must be http(s)://...")
        if any(c in url for c in "?# \t\n"):
            raise WitnessConfigError(
                f"--witness {spec!r}: the URL must be a plain prefix, without query or fragment"
            )
        url = url.rstrip("/")
        if url.endswith("/add-checkpoint"):
            raise WitnessConfigError(
                f"--witness {spec!r}: give the witness's submission prefix, without "
                f"'/add-checkpoint' (the log appends it): {url.removesuffix('/add-checkpoint')}"
            )
        return cls(v, url)


@dataclass(frozen=True)
class _Target:
    """A checkpoint to submit, and since when (a round's start, or when announced)."""

    checkpoint: SignedCheckpoint
    started: float

    @property
    def size(self) -> int:
        return self.checkpoint.size


class _Worker:
    """One witness: its HTTP client and what the log knows of its state."""

    def __init__(self, endpoint: WitnessEndpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self.verifier = endpoint.verifier
        self.http = httpx.Client(timeout=timeout)
        self.done_size = -1  # the newest round target it finished with
        self.known_size: int | None = None  # the witness's stored size, when known
        self.cosigned_size = 0
        self.failures = 0
        self.backoff_until = 0.0
        self.last_error: str | None = None
        #: What ``GET /v1/log`` may show of the last error (never a URL or a reply body).
        self.problem: str | None = None
        self.busy = False
        self.thread: threading.Thread | None = None


def witness_policy(witnesses: Sequence[WitnessEndpoint], quorum: int | None) -> WitnessPolicy:
    """The k-of-n policy over ``witnesses`` (all of them when ``quorum`` is None)."""
    try:
        return WitnessPolicy(
            [w.verifier for w in witnesses], len(witnesses) if quorum is None else quorum
        )
    except WitnessError as e:
        raise WitnessConfigError(str(e)) from None


class Witnessing:
    """Cosignatures, witnessed size and trusted time for one ledger; see the module docstring.

    It implements :class:`ledger.witnessing.view.WitnessingView`; whoever starts it (the
    composition root, ``api/serving.py``) passes it to the readers explicitly.
    """

    def __init__(
        self,
        ledger: Ledger,
        witnesses: Sequence[WitnessEndpoint] = (),
        quorum: int | None = None,
        timestamper: Timestamper | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        poll: float | None = None,
        status_file: Path | None = None,
    ) -> None:
        self.policy = witness_policy(witnesses, quorum)
        self.ledger = ledger
        self.records = WitnessRecords(ledger.store.engine)
        self.timestamper = timestamper
        self._workers = [_Worker(w, timeout) for w in witnesses]
        self._keys = {(w.verifier.name, w.verifier.key_id) for w in witnesses}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._latest: _Target | None = None
        self._target: _Target | None = None
        self._sigs: OrderedDict[int, dict[tuple[str, bytes], NoteSignature]] = OrderedDict()
        self._max_cosigned = 0
        self._proofs: OrderedDict[tuple[int, int], list[bytes]] = OrderedDict()
        self._witnessed = 0
        self._ts_event = threading.Event()
        self._ts_max = -1
        self._ts_floor = 0
        self._ts_thread: threading.Thread | None = None
        self._to_store: Committer[tuple[int, NoteSignature, int]] = Committer(
            self._store, name="cosignature-store", max_batch=STORE_BATCH, maxsize=STORE_QUEUE
        )
        self._store_failures = 0  # consecutive failed writes (the back-off grows with them)
        #: Set by bench/bench_witness.py: record (size, announced, witnessed) monotonic times.
        self.record_latency = False
        self.latencies: list[tuple[int, float, float]] = []
        self._announced: OrderedDict[int, float] = OrderedDict()
        #: With several worker processes: how often to look for checkpoints the others
        #: signed, and where to tell them which witnesses are reachable.
        self._poll = poll
        self._poll_thread: threading.Thread | None = None
        self._status_file = status_file

    # --- life cycle ----------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        ledger: Ledger,
        witnesses: Sequence[WitnessEndpoint] = (),
        quorum: int | None = None,
        timestamper: Timestamper | None = None,
        **kwargs: Any,
    ) -> Witnessing:
        """Create, listen to ``ledger``'s checkpoints and start the threads."""
        w = cls(ledger, witnesses, quorum, timestamper, **kwargs)
        w._start()
        return w

    def _start(self) -> None:
        self._max_cosigned = self.records.max_cosigned_size()
        self._witnessed = self.records.witnessed_size(sorted(self._keys), self.policy.quorum)
        for wk in self._workers:
            v = wk.verifier
            have = self.records.latest_cosigned_by(v.name, v.key_id)
            wk.cosigned_size = have or 0
        head = self.ledger.head()
        ts_max = self.records.max_timestamped_size()
        self._ts_max = ts_max if ts_max is not None else -1
        # Backfill only what this log produced since its last token; checkpoints older
        # than that predate trusted time here and would only get a meaningless "now".
        self._ts_floor = ts_max if ts_max is not None else max(head.size - 1, 0)
        self.ledger.add_checkpoint_listener(self.on_checkpoint)
        if head.note:
            self.on_checkpoint(head)
        for wk in self._workers:
            wk.thread = threading.Thread(
                target=self._worker_loop,
                args=(wk,),
                name=f"witness-{wk.verifier.name}",
                daemon=True,
            )
            wk.thread.start()
        if self.timestamper is not None:
            self._ts_thread = threading.Thread(target=self._ts_loop, name="tsa", daemon=True)
            self._ts_thread.start()
        self._to_store.start()
        if self._poll is not None:
            self._poll_thread = threading.Thread(
                target=self._poll_loop, name="checkpoint-poll", daemon=True
            )
            self._poll_thread.start()
        self._publish_status()

    def _poll_loop(self) -> None:
        """Announce checkpoints that other worker processes committed (see ``poll``)."""
        assert self._poll is not None
        while not self._stop.wait(self._poll):
            try:
                head = self.ledger.head()
            except Exception:
                log.exception("cannot read the log's head")
                continue
            latest = self._latest
            if head.note and (latest is None or head.size > latest.size):
                self.on_checkpoint(head)

    def _publish_status(self) -> None:
        """Write which witnesses answer, for worker processes that do not submit."""
        if self._status_file is None:
            return
        with self._cond:
            status = {
                wk.verifier.name: {"reachable": wk.last_error is None, "message": wk.problem}
                for wk in self._workers
            }
        tmp = self._status_file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(status))
            os.replace(tmp, self._status_file)
        except OSError:
            log.exception("cannot write %s", self._status_file)

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._ts_event.set()
        with self._cond:
            self._cond.notify_all()
        for wk in self._workers:
            if wk.thread is not None:
                wk.thread.join(timeout)
            wk.http.close()
        if self._ts_thread is not None:
            self._ts_thread.join(timeout)
        self._to_store.stop(timeout)  # after the workers stopped: nothing is left behind
        if self._poll_thread is not None:
            self._poll_thread.join(timeout)

    # --- the listener (append path: must stay cheap) ------------------------------------
    def on_checkpoint(self, checkpoint: SignedCheckpoint) -> None:
        """Ledger checkpoint listener: note the newest checkpoint and wake the threads."""
        if self._stop.is_set():
            return
        now = time.monotonic()
        size = checkpoint.size
        with self._cond:
            if self._latest is None or size > self._latest.size:
                self._latest = _Target(checkpoint, now)
                if self.record_latency:
                    self._announced[size] = now
                    while len(self._announced) > 100_000:
                        self._announced.popitem(last=False)
                self._cond.notify_all()
        self._ts_event.set()

    # --- rounds --------------------------------------------------------------------------
    def _quorum_met(self, size: int) -> bool:
        have = self._sigs.get(size)
        if have is None or not self.policy.quorum:
            return False
        return sum(1 for k in have if k in self._keys) >= self.policy.quorum

    def _advance_locked(self, now: float) -> None:
        latest, target = self._latest, self._target
        if latest is None:
            return
        if target is None:
            self._target = _Target(latest.checkpoint, now)
            return
        if latest.size <= target.size:
            return
        live_done = all(
            wk.done_size >= target.size or (not wk.busy and wk.backoff_until > now)
            for wk in self._workers
        )
        if self._quorum_met(target.size) or live_done or now - target.started > ROUND_LIMIT:
            self._target = _Target(latest.checkpoint, now)
            self._cond.notify_all()

    def _next_target(self, wk: _Worker) -> _Target | None:
        with self._cond:
            while not self._stop.is_set():
                now = time.monotonic()
                self._advance_locked(now)
                t = self._target
                if t is not None and wk.done_size < t.size and wk.backoff_until <= now:
                    wk.busy = True
                    return t
                wait = 1.0
                if wk.backoff_until > now:
                    wait = min(wait, wk.backoff_until - now)
                self._cond.wait(wait)
        return None

    def _worker_loop(self, wk: _Worker) -> None:
        while True:
            t = self._next_target(wk)
            if t is None:
                return
            was_up = wk.last_error is None
            try:
                ok = self._submit(wk, t)
            except Exception as e:  # a bug or a lying witness must not kill the thread
                log.exception("witness %s: submission failed", wk.verifier.name)
                wk.last_error = f"internal error: {e}"
                wk.problem = "internal error (see the service log)"
                ok = False
            with self._cond:
                wk.busy = False
                if ok:
                    wk.done_size = max(wk.done_size, t.size)
                    wk.failures = 0
                    wk.last_error = wk.problem = None
                else:
                    # Not done: after the back-off it tries again (the newest checkpoint by
                    # then), so a witness that comes back catches up even if the log is idle.
                    wk.failures += 1
                    wk.backoff_until = time.monotonic() + min(
                        MAX_BACKOFF, 0.25 * 2 ** min(wk.failures - 1, 10)
                    )
                self._cond.notify_all()
                changed = was_up != (wk.last_error is None)
            if changed:
                self._publish_status()

    def _submit(self, wk: _Worker, t: _Target) -> bool:
        """Get ``wk``'s cosignature on ``t``; True when done with it (cosigned or superseded)."""
        name = wk.verifier.name
        if wk.known_size is None:
            wk.known_size = wk.cosigned_size
        for _ in range(3):
            old = wk.known_size
            if old > t.size:
                # The witness already holds a newer checkpoint of ours. If the database
                # does not (a restored backup), appending would fork the log: the
                # sequencer refuses until it does (a no-op when it already does).
                self.ledger.sequencer.hold(
                    old, None, f"the witness {name} has cosigned a checkpoint of size {old}"
                )
                return True
            proof: list[bytes] = []
            if 0 < old < t.size:
                try:
                    proof = self._proof(old, t.size)
                except NotFound:
                    # The witness claims a size this log does not have: a fork elsewhere,
                    # or a witness that lost its state. Say so loudly; it cannot be fixed here.
                    wk.last_error = f"witness holds size {old}, beyond this log"
                    wk.problem = wk.last_error
                    log.error("witness %s reports size %d, larger than the log", name, old)
                    self.ledger.sequencer.hold(
                        old, None, f"the witness {name} has cosigned a checkpoint of size {old}"
                    )
                    return False
            body = AddCheckpointRequest(old, tuple(proof), t.checkpoint.note).to_text().encode()
            try:
                r = wk.http.post(wk.endpoint.url, content=body)
            except httpx.HTTPError as e:
                wk.last_error = f"{type(e).__name__}: {e}"
                wk.problem = f"unreachable ({type(e).__name__})"
                log.warning("witness %s unreachable: %s", name, wk.last_error)
                wk.known_size = None
                return False
            if r.status_code == 409 and r.headers.get("content-type", "").startswith(
                SIZE_CONTENT_TYPE
            ):
                try:
                    wk.known_size = parse_size(r.content[:64])
                except AddCheckpointFormatError as e:
                    wk.last_error = f"bad 409 reply: {e}"
                    wk.problem = "the witness's 409 reply is not a tlog-witness size"
                    return False
                if wk.known_size == old:
                    # Same size, yet refused: it holds another root for this size.
                    wk.last_error = f"witness refuses size {old}: it holds another checkpoint"
                    wk.problem = wk.last_error
                    log.error("witness %s: %s", name, wk.last_error)
                    return False
                continue
            if r.status_code != 200:
                wk.last_error = f"HTTP {r.status_code}: {r.text[:200]}"
                wk.problem = _problem(r.status_code)
                log.warning("witness %s refused checkpoint %d: %s", name, t.size, wk.last_error)
                if r.status_code == 404:
                    log.warning("witness %s at %s: %s", name, wk.endpoint.url, NOT_FOUND_HINT)
                return False
            return self._accept(wk, t, r.content[:MAX_REPLY_BYTES])
        wk.last_error = wk.problem = "the witness's size kept changing"
        return False

    def _proof(self, old: int, size: int) -> list[bytes]:
        """RFC 9162 §2.1.4 PROOF(old, size); the witnesses of a round share one."""
        key = (old, size)
        with self._cond:
            have = self._proofs.get(key)
        if have is None:
            have = self.ledger.consistency_proof(old, size)
            with self._cond:
                self._proofs[key] = have
                while len(self._proofs) > 64:
                    self._proofs.popitem(last=False)
        return have

    def _accept(self, wk: _Worker, t: _Target, reply: bytes) -> bool:
        try:
            # The reply comes from outside: parsed and verified; our own note is not re-read.
            note = parse_cosignatures(reply, t.checkpoint.signed)
            found = cosigners(note, [wk.verifier])
        except (WitnessError, NoteError) as e:
            wk.last_error = f"bad cosignature reply: {e}"
            wk.problem = "the witness's reply is not a valid cosignature"
            log.error("witness %s: %s", wk.verifier.name, wk.last_error)
            return False
        if not found:
            wk.last_error = wk.problem = "the reply holds no cosignature by this witness's key"
            return False
        v, ts = found[0]
        sig = next(s for s in note.signatures if s.name == v.name and s.key_id == v.key_id)
        wk.known_size = t.size
        wk.cosigned_size = max(wk.cosigned_size, t.size)
        # Publish first, store after: a verified cosignature is valid whether or not it is
        # on disk yet, and the writes, batched by one thread, stay off the witnessing path
        # and take the database's write lock less often from the sequencer.
        self._remember_sig(t.size, sig)
        try:
            self._to_store.put_nowait((t.size, sig, ts))
        except queue.Full:
            log.warning(
                "cosignature store queue full: %s on %d kept in memory only", v.name, t.size
            )
        return True

    def _store(self, batch: list[tuple[int, NoteSignature, int]]) -> None:
        """Write gathered cosignatures to the database, many per transaction."""
        while True:
            try:
                self.records.put_cosignatures(batch)
                self._store_failures = 0
                return
            except Exception:
                self._store_failures += 1
                failures = self._store_failures
                log.exception("cannot store %d cosignature(s); retrying", len(batch))
                if self._stop.wait(min(MAX_BACKOFF, 0.25 * 2 ** min(failures - 1, 10))):
                    if failures > 3:
                        return  # shutting down: they can be gathered again

    # --- cosignature cache ---------------------------------------------------------------
    def _sigs_for_locked(self, size: int) -> dict[tuple[str, bytes], NoteSignature]:
        have = self._sigs.get(size)
        if have is None:
            have = {}
            if size <= self._max_cosigned:
                for s in self.records.cosignatures_at(size):
                    have[(s.name, s.key_id)] = s
            self._sigs[size] = have
            while len(self._sigs) > CACHE_SIZES:
                self._sigs.popitem(last=False)
        return have

    def _remember_sig(self, size: int, sig: NoteSignature) -> None:
        with self._cond:
            self._sigs_for_locked(size)[(sig.name, sig.key_id)] = sig
            self._max_cosigned = max(self._max_cosigned, size)
            if size > self._witnessed and self._quorum_met(size):
                self._witnessed = size
                if self.record_latency:
                    now = time.monotonic()
                    for s in [s for s in self._announced if s <= size]:
                        self.latencies.append((s, self._announced.pop(s), now))
            self._cond.notify_all()

    def _signatures(self, size: int) -> list[NoteSignature]:
        with self._cond:
            if size > self._max_cosigned and size not in self._sigs:
                return []
            have = self._sigs_for_locked(size)
            return sorted(have.values(), key=lambda s: (s.name, s.key_id))

    # --- timestamps ----------------------------------------------------------------------
    def _ts_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            # Clear before looking, so a checkpoint announced meanwhile still wakes us.
            self._ts_event.clear()
            with self._cond:
                latest = self._latest
            job: SignedCheckpoint | None = None
            backfill = False
            if latest is not None and latest.size > self._ts_max:
                job = latest.checkpoint  # the newest checkpoint first
            elif latest is not None and self._ts_floor < latest.size:
                try:
                    page = self.records.untimestamped(self._ts_floor, latest.size)
                except Exception:
                    log.exception("cannot list checkpoints without a token")
                    page = []
                if page:
                    job, backfill = page[0], True
                else:
                    self._ts_floor = latest.size
            if job is None:
                self._ts_event.wait(5.0)
                continue
            # Let the witness round go first: building a token holds the GIL for
            # milliseconds, and the witness threads need it to handle their replies.
            with self._cond:
                self._cond.wait_for(lambda: not any(wk.busy for wk in self._workers), TSA_YIELD)
            started = time.monotonic()
            try:
                self._timestamp(job)
            except Exception as e:
                failures += 1
                if isinstance(e, TsaError | TimestampError | NoteError | CheckpointError):
                    log.warning("timestamp for checkpoint %d failed: %s", job.size, e)
                else:
                    log.exception("timestamp for checkpoint %d failed", job.size)
                self._stop.wait(min(MAX_BACKOFF, 0.25 * 2 ** min(failures - 1, 10)))
                continue
            failures = 0
            if backfill:
                # The page is oldest first: everything below this size has its token.
                self._ts_floor = max(self._ts_floor, job.size)
            self._stop.wait((time.monotonic() - started) * TSA_DUTY_FACTOR)

    def _timestamp(self, checkpoint: SignedCheckpoint) -> None:
        assert self.timestamper is not None
        # The token covers the note's body (the checkpoint text, without signatures).
        body = checkpoint.signed.text.encode()
        reply, when = self.timestamper.issue(body)
        size = checkpoint.size
        self.records.put_timestamp(size, reply, rfc3339(when), self.timestamper.source)
        self._ts_max = max(self._ts_max, size)

    # --- what the API and evidence bundles read -------------------------------------------
    def cosigned_checkpoint(self, size: int) -> str:
        """The log's checkpoint of ``size`` with every cosignature gathered so far (note text).

        Raises :class:`ledger.service.NotFound` when the log signed no checkpoint of that size.
        """
        with self._cond:
            latest = self._latest
        if latest is not None and latest.size == size:
            cp = latest.checkpoint
        else:
            cp = self.ledger.checkpoint_at(size)
        return _with_cosignatures(cp, self._signatures(size))

    def cosigned_by(self, size: int) -> list[str]:
        """Names of the witnesses whose cosignature on checkpoint ``size`` the log holds."""
        return sorted({s.name for s in self._signatures(size)})

    def witnessed_size(self) -> int:
        """The largest checkpoint size cosigned by at least the quorum (0 if none)."""
        with self._cond:
            return self._witnessed

    def witnessed_checkpoint(self) -> str | None:
        size = self.witnessed_size()
        if size == 0 or not self.policy.quorum:
            return None
        try:
            return self.cosigned_checkpoint(size)
        except NotFound:
            return None

    def timestamp_reply(self, size: int) -> bytes | None:
        """The stored RFC 3161 TimeStampResp (DER) over checkpoint ``size``'s note body."""
        if size > self._ts_max:
            return None
        return self.records.timestamp_at(size)

    def timestamp_covering(self, size: int) -> tuple[int, bytes] | None:
        """(size', reply) of the first timestamped checkpoint at or above ``size``.

        A token over a later checkpoint bounds the time of every entry below it too (a
        consistency proof links the two), for checkpoints the TSA thread skipped under load.
        """
        return self.records.timestamp_covering(size)

    def tsa_ca_pem(self) -> bytes:
        """The PEM CA certificate that timestamp tokens chain to."""
        if self.timestamper is None:
            raise NotFound("this log has no timestamp authority configured")
        return self.timestamper.ca_pem

    def status(self) -> list[dict[str, Any]]:
        """Per configured witness: name, verifier key, newest size it cosigned, health.

        Public (``GET /v1/log``), so it leaves out URLs and error texts, which may name
        internal hosts; those go to the service's log. ``message`` says what went wrong in
        words of this service's own (e.g. :data:`NOT_FOUND_HINT`), or is null.
        """
        with self._cond:
            return [
                {
                    "name": wk.verifier.name,
                    "verifier_key": wk.verifier.vkey,
                    "cosigned_size": wk.cosigned_size,
                    "reachable": wk.last_error is None,
                    "message": wk.problem,
                }
                for wk in self._workers
            ]

    def receipt_fields(self, checkpoint: SignedCheckpoint) -> dict[str, Any]:
        """Receipt fields ``cosigned_by``, ``cosigned_checkpoint`` and ``timestamp``.

        ``cosigned_by`` names the witnesses whose cosignature on the receipt's checkpoint
        the log held when the receipt was made (often none yet for a fresh receipt:
        witnessing runs after the reply); ``cosigned_checkpoint`` is that checkpoint with
        those cosignatures; ``timestamp`` is the base64 DER RFC 3161 TimeStampResp over its
        body, or null.
        """
        size = checkpoint.size
        sigs = self._signatures(size)
        reply = self.timestamp_reply(size)
        return {
            "cosigned_by": sorted({s.name for s in sigs}),
            "cosigned_checkpoint": _with_cosignatures(checkpoint, sigs),
            "timestamp": base64.b64encode(reply).decode() if reply is not None else None,
        }

    def log_fields(self) -> dict[str, Any]:
        """``GET /v1/log`` fields: the witness policy, each witness, and the witnessed size."""
        return {
            "witnessed_size": self.witnessed_size(),
            "witnessed_checkpoint": self.witnessed_checkpoint(),
            "witness_quorum": self.policy.quorum,
            "witnesses": self.status(),
        }


class WitnessingFollower(Witnessing):
    """Witnessing as a worker process that does not submit sees it (``serve --workers``).

    One worker process, the leader, gathers cosignatures and tokens and stores them; the
    others answer the same questions from the database, refreshed at most every
    :data:`REFRESH` seconds, and learn which witnesses answer from the leader's status
    file. A fresh receipt's checkpoint is above every stored cosignature, so the append
    path asks the database nothing.
    """

    REFRESH = 0.5

    def _start(self) -> None:
        self._refreshed = float("-inf")

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._refreshed < self.REFRESH:
            return
        self._refreshed = now
        try:
            max_cosigned = self.records.max_cosigned_size()
            witnessed = self.records.witnessed_size(sorted(self._keys), self.policy.quorum)
            ts_max = self.records.max_timestamped_size()
            per = [
                self.records.latest_cosigned_by(wk.verifier.name, wk.verifier.key_id)
                for wk in self._workers
            ]
        except Exception:
            log.exception("cannot read witnessing state")
            return
        up: dict[str, Any] = {}
        if self._status_file is not None:
            try:
                up = json.loads(self._status_file.read_text())
            except (OSError, ValueError):
                up = {}
        with self._cond:
            self._max_cosigned = max_cosigned
            self._sigs.clear()  # a stored set may have grown since it was read
            self._witnessed = witnessed
            self._ts_max = ts_max if ts_max is not None else -1
            for wk, have in zip(self._workers, per, strict=True):
                wk.cosigned_size = have or 0
                seen = up.get(wk.verifier.name, True)
                if isinstance(seen, dict):
                    reachable = seen.get("reachable") is not False
                    message = seen.get("message")
                    wk.problem = message if isinstance(message, str) else None
                else:  # a leader of a release before messages: a bare boolean
                    reachable = seen is not False
                    wk.problem = None if reachable else "unreachable"
                wk.last_error = None if reachable else "unreachable (reported by the leader)"

    def _signatures(self, size: int) -> list[NoteSignature]:
        self._refresh()
        return super()._signatures(size)

    def witnessed_size(self) -> int:
        self._refresh()
        return super().witnessed_size()

    def timestamp_reply(self, size: int) -> bytes | None:
        self._refresh()
        return super().timestamp_reply(size)

    def status(self) -> list[dict[str, Any]]:
        self._refresh()
        return super().status()


class WorkerWitnessing:
    """Leader or follower witnessing for one of several worker processes or nodes.

    A :class:`~ledger.witnessing.view.WitnessingView` whose answers come from the role
    this process holds now (it changes when the leader exits).

    The process holding the leader lock (:mod:`ledger.witnessing.leader`: a file lock in
    the data directory on SQLite, a PostgreSQL session advisory lock across nodes) is the
    leader: it submits every checkpoint (its own, announced at once, and the others', found
    by polling the head every :data:`POLL` seconds). The others follow; a follower waits
    for the lock in a thread and takes over when the leader is gone. A leader that loses
    its lock (its database session ended) steps down to follow and waits again.
    """

    POLL = 0.02
    LOCK_FILE = "witnessing.lock"
    STATUS_FILE = "witnessing.status"

    def __init__(
        self,
        ledger: Ledger,
        witnesses: Sequence[WitnessEndpoint],
        quorum: int | None,
        timestamper: Timestamper | None,
        lock: LeaderLock | None = None,
    ) -> None:
        self._args = (ledger, witnesses, quorum, timestamper)
        self._status = ledger.data_dir / self.STATUS_FILE
        self._lock = lock or FileLeaderLock(ledger.data_dir / self.LOCK_FILE)
        self._mu = threading.Lock()
        self._stop = threading.Event()
        self.leading = False
        if self._lock.try_acquire():
            self.current: Witnessing = self._lead()
            self.leading = True
        else:
            self.current = WitnessingFollower.start(*self._args, status_file=self._status)
        threading.Thread(target=self._watch, name="witnessing-leader", daemon=True).start()

    def _lead(self) -> Witnessing:
        return Witnessing.start(*self._args, poll=self.POLL, status_file=self._status)

    def _watch(self) -> None:
        """Follow until the lock is ours, then lead while it stays ours; again, until closed."""
        while not self._stop.is_set():
            if not self.leading:
                if not self._lock.wait(self._stop):
                    return
                with self._mu:
                    if self._stop.is_set():
                        return
                    self.current.close()
                    self.current = self._lead()
                    self.leading = True
                log.warning("this process now gathers cosignatures and timestamps")
                continue
            if self._stop.wait(PgLeaderLock.POLL):
                return
            if self._lock.still_held():
                continue
            with self._mu:
                if self._stop.is_set():
                    return
                self.current.close()
                self.current = WitnessingFollower.start(*self._args, status_file=self._status)
                self.leading = False
            log.error("lost the witnessing leader lock: following until it is free again")

    def close(self, timeout: float = 10.0) -> None:
        with self._mu:
            self._stop.set()
            self.current.close(timeout)
        self._lock.close()

    # --- WitnessingView: the current role answers --------------------------------------
    @property
    def policy(self) -> WitnessPolicy:
        return self.current.policy

    def cosigned_checkpoint(self, size: int) -> str:
        return self.current.cosigned_checkpoint(size)

    def timestamp_reply(self, size: int) -> bytes | None:
        return self.current.timestamp_reply(size)

    def tsa_ca_pem(self) -> bytes:
        return self.current.tsa_ca_pem()

    def receipt_fields(self, checkpoint: SignedCheckpoint) -> dict[str, Any]:
        return self.current.receipt_fields(checkpoint)

    def log_fields(self) -> dict[str, Any]:
        return self.current.log_fields()


def _problem(status: int) -> str:
    """The public words for a witness's refusal with HTTP ``status``."""
    if status == 404:
        return NOT_FOUND_HINT
    if status == 403:
        return (
            "the witness answered 403 Forbidden: it does not trust this log's key for this "
            "origin, or refuses the log"
        )
    if status == 422:
        return "the witness answered 422: it did not accept the consistency proof"
    return f"the witness answered HTTP {status}"


def _with_cosignatures(checkpoint: SignedCheckpoint, sigs: Sequence[NoteSignature]) -> str:
    """The checkpoint's note text with ``sigs`` added (each already verified)."""
    if not sigs:
        return checkpoint.note
    note = checkpoint.signed
    for s in sigs:
        note = note.add(s)
    return note.to_text()
