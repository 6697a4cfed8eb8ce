"""A standalone C2SP tlog-witness: cosigns checkpoints that extend what it saw before.

Spec: c2sp.org/tlog-witness (§add-checkpoint) and c2sp.org/tlog-cosignature (v1, key
type 0x04). One committer thread owns every state change: it takes the queued requests,
decides each against the stored state inside one write transaction, compare-and-swaps
the new state, commits, and only then signs and answers. Requests that arrive together
share one commit (and one fsync), which is what lets one witness answer thousands of
requests a second; the order they are decided in is the order they were queued.

HTTP interface, under the witness's *submission prefix* (tlog-witness §HTTP Interface;
``/witness`` by default, so the prefix is ``http://host:port/witness``):

- ``POST <prefix>/add-checkpoint``: 200 with cosignature lines; 400 malformed or old size
  above the checkpoint's; 403 no valid signature by the log's key (or, with
  ``refuse_after_equivocation``, a log that equivocated); 404 unknown origin; 409 old size
  is not the stored one (body ``<size>\\n``, ``text/x.tlog.size``), also for a same-size
  checkpoint with another root; 422 the consistency proof does not verify.
- ``GET <prefix>/``: the submission prefix, the verifier key, the latest checkpoint per log
  and the alarm counters (``metrics``).
- ``GET <prefix>/evidence?after=&limit=``: contradictions kept for auditors.

A fork (two checkpoints of one size, both signed by the log) is kept as evidence and
raises the alarm (the log, the counters, the webhook); the witness then goes on cosigning
checkpoints that extend the one it cosigned before, as the spec requires of every request
that passes its checks.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from ledger.committer import Committer
from ledger.http import ApiError, answer_head, install_error_handlers, read_body
from ledger.keys import host_name, load_or_create_key
from verifier import merkle
from verifier.checkpoint import Checkpoint, CheckpointError
from verifier.note import (
    ALG_COSIGNATURE_V1,
    Note,
    NoteError,
    NoteSignature,
    Signer,
    parse_note,
    verified_by,
)
from verifier.witnessing import (
    MAX_REQUEST_BYTES,
    SIZE_CONTENT_TYPE,
    AddCheckpointFormatError,
    AddCheckpointRequest,
    format_cosignatures,
    format_size,
)
from witness.errors import WitnessServiceError
from witness.state import (
    FORK,
    INCONSISTENT,
    MAX_EVIDENCE_PAGE,
    OPEN_FORKS,
    ConcurrentUpdate,
    LogState,
    WitnessStore,
)

log = logging.getLogger("jianzheng.witness")

KEY_FILE = "witness.key"
#: The path the witness serves under unless told otherwise: its submission prefix is
#: ``http://host:port`` followed by this.
DEFAULT_PREFIX = "/witness"
#: Counters in ``GET <prefix>/`` (``metrics``): every fork kept as evidence since the
#: witness was set up, every failed consistency proof, and the forks not yet cleared.
EQUIVOCATIONS_METRIC = "jianzheng_witness_equivocations_total"
INCONSISTENT_METRIC = "jianzheng_witness_inconsistent_proofs_total"
OPEN_EQUIVOCATIONS_METRIC = "jianzheng_witness_open_equivocations"
REPLY_TIMEOUT = 10.0
#: Alarms waiting for the webhook, at most.
WEBHOOK_QUEUE = 1000
TEXT = "text/plain; charset=utf-8"


class WitnessKeyError(RuntimeError, WitnessServiceError):
    """The witness key file is missing, unreadable or not a cosignature key."""


def default_name() -> str:
    """``<host name>/witness``: a key name (no spaces, no '+') for a witness not given one."""
    return f"{host_name()}/witness"


def load_or_create_witness_key(data_dir: Path, name: str | None) -> Signer:
    """The witness's cosignature/v1 key in ``data_dir``; created on first use as ``name``

    (default :func:`default_name`). The name is part of every cosignature line.
    """

    def create() -> Signer:
        try:
            return Signer.generate(name or default_name(), ALG_COSIGNATURE_V1)
        except NoteError as e:
            raise WitnessKeyError(str(e)) from None

    path = data_dir / KEY_FILE
    signer = load_or_create_key(path, create, "witness key", WitnessKeyError)
    if signer.alg != ALG_COSIGNATURE_V1:
        raise WitnessKeyError(f"{path} is not a cosignature/v1 (type 0x04) key")
    if name and name != signer.name:
        raise WitnessKeyError(f"the witness key in {path} is named {signer.name!r}, not {name!r}")
    return signer


@dataclass(frozen=True)
class Reply:
    """The answer to one add-checkpoint request; ``body`` is text for 200/409, else a message."""

    status: int
    body: str
    code: str = ""


@dataclass
class _Pending:
    request: AddCheckpointRequest
    checkpoint: Checkpoint
    note: Note
    future: Future[Reply] = field(default_factory=Future)


_ACCEPT = Reply(200, "")


class WitnessCore:
    """The add-checkpoint logic and its committer thread (no HTTP here)."""

    def __init__(
        self,
        store: WitnessStore,
        signer: Signer,
        *,
        clock: Callable[[], float] = time.time,
        max_batch: int = 512,
        queue_limit: int = 10_000,
        refuse_after_equivocation: bool = False,
        on_equivocation: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """``refuse_after_equivocation``: answer 403 to a log once it forked, until an
        operator runs ``jianzheng witness clear`` (the default cosigns on, as the spec
        asks). ``on_equivocation`` is called with each new fork's evidence, once it is
        stored (the webhook); it must not block.
        """
        if signer.alg != ALG_COSIGNATURE_V1:
            raise WitnessKeyError("a witness signs with a cosignature/v1 (type 0x04) key")
        self.store = store
        self.signer = signer
        self.clock = clock
        self.refuse_after_equivocation = refuse_after_equivocation
        self.on_equivocation = on_equivocation
        self._committer: Committer[_Pending] = Committer(
            self._commit, name="witness-committer", max_batch=max_batch, maxsize=queue_limit
        )
        self.batches = 0

    def start(self) -> None:
        self._committer.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._committer.stop(timeout)

    # --- intake --------------------------------------------------------------------------
    def submit(self, body: bytes) -> Future[Reply]:
        """Queue one request; malformed ones are answered at once (400)."""
        try:
            req = AddCheckpointRequest.parse(body)
            note = parse_note(req.checkpoint)
            cp = Checkpoint.parse_body(note.text)
        except (AddCheckpointFormatError, CheckpointError, NoteError) as e:
            return _done(Reply(400, str(e), "malformed"))
        except ValueError as e:  # any other parse failure is still the sender's
            return _done(Reply(400, f"malformed request: {e}", "malformed"))
        if req.old_size > cp.size:
            return _done(
                Reply(
                    400,
                    f"old size {req.old_size} is above the checkpoint size {cp.size}",
                    "bad_size",
                )
            )
        p = _Pending(req, cp, note)
        try:
            self._committer.put_nowait(p)
        except queue.Full:
            return _done(Reply(503, "the witness is overloaded; retry shortly", "busy"))
        return p.future

    def add_checkpoint(self, body: bytes, timeout: float = REPLY_TIMEOUT) -> Reply:
        """Synchronous form of :meth:`submit`."""
        return self.submit(body).result(timeout)

    # --- the committer -------------------------------------------------------------------
    def _commit(self, batch: list[_Pending]) -> None:
        """Decide a batch (taken without waiting for more, up to ``max_batch``)."""
        try:
            self._process(batch)
        except Exception:  # never leave a caller waiting, never kill the committer
            log.exception("witness batch failed")
            for p in batch:
                if not p.future.done():
                    p.future.set_result(Reply(503, "internal error; retry", "unavailable"))
        self.batches += 1

    def _process(self, batch: list[_Pending]) -> None:
        decisions: list[Reply] = []
        forks: list[int] = []
        for attempt in range(3):
            forks = []
            try:
                with self.store.writer() as conn:
                    decisions = self._decide(conn, batch, forks)
                break
            except ConcurrentUpdate:
                forks = []  # rolled back: nothing was stored, so nothing to report
                # Another process moved a log's state between our read and our write (it
                # should not happen under BEGIN IMMEDIATE): decide again from the new state.
                if attempt == 2:
                    decisions = [Reply(503, "state changed concurrently; retry", "conflict")] * len(
                        batch
                    )
            except SQLAlchemyError as e:
                forks = []
                log.error("witness database error: %s", e)
                decisions = [
                    Reply(503, "the witness database is unavailable", "unavailable")
                ] * len(batch)
                break
        if forks:
            self._alarm(forks)  # stored: raise the alarm before anyone hears back
        # Persisted: only now may a cosignature leave the witness (tlog-witness §add-checkpoint).
        ts = int(self.clock())
        for p, d in zip(batch, decisions, strict=True):
            if d is _ACCEPT:
                sig = self.signer.sign(p.note.text.encode(), ts)
                line = NoteSignature(self.signer.name, self.signer.verifier.key_id, sig)
                p.future.set_result(Reply(200, format_cosignatures([line])))
            else:
                p.future.set_result(d)

    def _alarm(self, evidence_ids: list[int]) -> None:
        """Report new fork evidence (committed): the service log, then the webhook.

        Never raises: the decisions are committed and their answers must still go out.
        """
        try:
            items = self.store.evidence_by_id(evidence_ids)
        except SQLAlchemyError:
            log.exception("EQUIVOCATION: evidence #%s stored but not readable", evidence_ids)
            return
        for item in items:
            log.error(
                "EQUIVOCATION: the log %s signed two checkpoints of size %d with different "
                "roots (evidence #%d)",
                item["origin"],
                item["stored_size"],
                item["id"],
            )
            if self.on_equivocation is not None:
                try:
                    self.on_equivocation(item)
                except Exception:
                    log.exception("the equivocation alarm failed")

    def _decide(self, conn: Connection, batch: list[_Pending], forks: list[int]) -> list[Reply]:
        states = self.store.load(conn, {p.checkpoint.origin for p in batch})
        out = [self._decide_one(conn, states.get(p.checkpoint.origin), p, forks) for p in batch]
        self.store.save(conn, list(states.values()))
        return out

    def _decide_one(
        self, conn: Connection, st: LogState | None, p: _Pending, forks: list[int]
    ) -> Reply:
        """tlog-witness §add-checkpoint, check by check; appends new fork evidence ids."""
        cp, req = p.checkpoint, p.request
        if st is None:
            return Reply(404, f"this witness does not witness the log {cp.origin!r}", "unknown_log")
        try:
            ok = verified_by(p.note, [st.verifier])
        except NoteError as e:
            return Reply(403, f"checkpoint signature does not verify: {e}", "bad_signature")
        if not ok:
            return Reply(
                403, f"checkpoint is not signed by the key of {cp.origin}", "bad_signature"
            )
        if st.refused and self.refuse_after_equivocation:
            return Reply(403, f"this witness refuses {cp.origin}: {st.refused}", "log_refused")
        if req.old_size != st.size:
            return Reply(409, format_size(st.size))
        if cp.size == st.size and st.root is not None:
            if req.proof:
                return Reply(
                    422, "trees of equal size need an empty consistency proof", "bad_proof"
                )
            if cp.root != st.root:
                # Two checkpoints of one size with different roots, both signed by the log:
                # proof of a fork. Keep it, raise the alarm (after the commit), answer 409
                # (tlog-witness). The stored checkpoint stays: what extends it is cosigned.
                eid, new = self.store.add_evidence(
                    conn, st, FORK, req.old_size, req.proof, req.checkpoint
                )
                if new:
                    forks.append(eid)
                if self.refuse_after_equivocation and not st.refused:
                    st.refused = (
                        f"equivocation at size {cp.size} (evidence #{eid}); "
                        "an operator must run 'jianzheng witness clear'"
                    )
                    st.changed = True
                return Reply(409, format_size(st.size))
            return _ACCEPT  # the same checkpoint again: cosign, state unchanged
        if req.old_size == 0:
            # "The proof MUST be empty if the old size is zero": the empty tree is a prefix
            # of every tree, so there is nothing to check, whether this witness never
            # cosigned the log (trust on first use) or cosigned only its empty tree.
            if req.proof:
                return Reply(
                    422, "the consistency proof from old size 0 must be empty", "bad_proof"
                )
        else:
            assert st.root is not None  # size > 0 was only ever stored with its root
            try:
                merkle.verify_consistency(st.size, cp.size, req.proof, st.root, cp.root)
            except merkle.ProofError as e:
                self.store.add_evidence(
                    conn, st, INCONSISTENT, req.old_size, req.proof, req.checkpoint
                )
                return Reply(422, f"consistency proof does not verify: {e}", "bad_proof")
        st.size, st.root, st.checkpoint, st.changed = cp.size, cp.root, req.checkpoint, True
        return _ACCEPT

    # --- reads -----------------------------------------------------------------------------
    def info(self, submission_prefix: str | None = None) -> dict[str, Any]:
        """The witness's status: who it is, where logs submit, each log, the counters."""
        out: dict[str, Any] = {"name": self.signer.name}
        if submission_prefix is not None:
            out["submission_prefix"] = submission_prefix
        out["verifier_key"] = self.signer.verifier.vkey
        out["refuse_after_equivocation"] = self.refuse_after_equivocation
        out["logs"] = self.store.logs()
        counts = self.store.evidence_counts()
        # Counters for alerting, named as a Prometheus exporter would name them.
        out["metrics"] = {
            EQUIVOCATIONS_METRIC: counts.get(FORK, 0),
            INCONSISTENT_METRIC: counts.get(INCONSISTENT, 0),
            OPEN_EQUIVOCATIONS_METRIC: counts.get(OPEN_FORKS, 0),
        }
        return out


def _done(r: Reply) -> Future[Reply]:
    f: Future[Reply] = Future()
    f.set_result(r)
    return f


def normalize_prefix(prefix: str) -> str:
    """``/witness``, ``witness/`` -> ``/witness``; ``/`` or ``""`` -> ``""`` (the root)."""
    p = prefix.strip().strip("/")
    if any(c in p for c in "?#% ") or "//" in p:
        raise ValueError(f"--prefix {prefix!r}: want a plain URL path such as /witness")
    return f"/{p}" if p else ""


def create_witness_app(core: WitnessCore, prefix: str = DEFAULT_PREFIX) -> FastAPI:
    """The witness's HTTP interface around a started :class:`WitnessCore`, under ``prefix``.

    The submission prefix (tlog-witness §HTTP Interface) is the service's URL followed by
    ``prefix``; it doubles as the monitoring prefix of the status and evidence reads.
    """
    prefix = normalize_prefix(prefix)
    app = FastAPI(title="Jianzheng witness", version="1", description=__doc__)
    app.state.witness = core
    install_error_handlers(app)
    answer_head(app)

    def submission_prefix(request: Request) -> str:
        return str(request.base_url).rstrip("/") + prefix

    @app.post(prefix + "/add-checkpoint", tags=["witness"])
    async def add_checkpoint(request: Request) -> Response:
        """C2SP tlog-witness §add-checkpoint."""
        body = await read_body(request, MAX_REQUEST_BYTES)
        try:
            reply = await asyncio.wait_for(asyncio.wrap_future(core.submit(body)), REPLY_TIMEOUT)
        except TimeoutError:
            raise ApiError(503, "timeout", "the witness did not decide in time; retry") from None
        if reply.status == 200:
            return Response(reply.body, media_type=TEXT)
        if reply.status == 409:
            # tlog-witness: exactly this media type, without a charset parameter.
            return Response(
                reply.body, status_code=409, headers={"Content-Type": SIZE_CONTENT_TYPE}
            )
        headers = {"Retry-After": "1"} if reply.status == 503 else None
        raise ApiError(reply.status, reply.code, reply.body, headers=headers)

    if prefix:

        @app.post("/add-checkpoint", include_in_schema=False)
        def misplaced(request: Request) -> Response:
            # A log configured with this witness's bare URL: say where to submit instead.
            raise ApiError(
                404,
                "not_the_submission_prefix",
                "this witness's submission prefix is "
                f"{submission_prefix(request)}: give that URL to the log (--witness VKEY@URL)",
            )

    @app.get(prefix + "/", tags=["witness"])
    def witness_info(request: Request) -> dict[str, Any]:
        """The submission prefix, name, verifier key, each log's latest cosigned checkpoint
        and the alarm counters (``metrics``)."""
        return core.info(submission_prefix(request))

    @app.get(prefix + "/evidence", tags=["witness"])
    def evidence(
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_EVIDENCE_PAGE)] = MAX_EVIDENCE_PAGE,
    ) -> dict[str, Any]:
        """Checkpoints that contradicted the stored state, oldest first; page with ``after``."""
        items = core.store.evidence(after, limit)
        nxt = items[-1]["id"] if len(items) == limit else None
        return {"evidence": items, "next_after": nxt}

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve(
    data_dir: Path,
    host: str,
    port: int,
    name: str | None,
    log_level: str = "warning",
    *,
    prefix: str = DEFAULT_PREFIX,
    refuse_after_equivocation: bool = False,
    webhook: str | None = None,
) -> None:
    """Run the witness until interrupted (the ``jianzheng witness serve`` command)."""
    import uvicorn

    prefix = normalize_prefix(prefix)
    signer = load_or_create_witness_key(data_dir, name)
    store = WitnessStore.open(data_dir)
    hook = Webhook(webhook) if webhook else None
    core = WitnessCore(
        store,
        signer,
        refuse_after_equivocation=refuse_after_equivocation,
        on_equivocation=hook.post if hook else None,
    )
    core.start()
    try:
        url_host = f"[{host}]" if ":" in host else host
        print(f"jianzheng witness: serving http://{url_host}:{port}{prefix}/", flush=True)
        print(f"submission prefix: http://{url_host}:{port}{prefix}", flush=True)
        print(f"name: {signer.name}", flush=True)
        print(f"verifier key: {signer.verifier.vkey}", flush=True)
        logs = store.logs()
        print(f"data: {data_dir.resolve()}  logs witnessed: {len(logs)}", flush=True)
        if refuse_after_equivocation:
            print("a log that equivocates is refused (403) until cleared", flush=True)
        uvicorn.run(
            create_witness_app(core, prefix),
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    finally:
        core.stop()
        if hook is not None:
            hook.close()
        store.close()


class Webhook:
    """Posts each new piece of fork evidence as JSON to one URL, from its own thread.

    Bounded: at most :data:`WEBHOOK_QUEUE` posts wait; beyond that they are dropped with a
    log line (the evidence itself stays in the database). Each post has a timeout.
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue(WEBHOOK_QUEUE)
        self._thread = threading.Thread(target=self._run, name="witness-webhook", daemon=True)
        self._thread.start()

    def post(self, evidence: dict[str, Any]) -> None:
        try:
            self._q.put_nowait(evidence)
        except queue.Full:
            log.error("webhook queue full: evidence #%s not posted", evidence.get("id"))

    def _run(self) -> None:
        from witness.monitor import post_webhook

        while (item := self._q.get()) is not None:
            post_webhook(self.url, {"alarm": "equivocation", "evidence": item}, self.timeout)

    def close(self, timeout: float = 10.0) -> None:
        try:
            self._q.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)
