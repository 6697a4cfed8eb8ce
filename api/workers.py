"""``jianzheng serve --workers N``: several HTTP worker processes over one database.

One Python process appends at most as fast as one core runs it (the GIL), so the service
can run N worker processes. Each has its own sequencer; they take turns through the
database's writer lock (``Store.writer``: a lock file, then ``BEGIN IMMEDIATE`` on
SQLite; ``pg_advisory_xact_lock`` on PostgreSQL), and a sequencer that finds the head
moved reloads it before appending, so the log stays one chain of consistent checkpoints.
One worker at a time also gathers cosignatures and timestamps
(:class:`ledger.witnessing.submitter.WorkerWitnessing`).

Each worker listens on its own socket bound with ``SO_REUSEPORT``, so the kernel spreads
connections across them; with one shared socket, the first worker to wake accepts a
burst of connections alone and the others idle. The parent only starts the workers,
restarts one that dies, and stops them all on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from api import limits

log = logging.getLogger("jianzheng.serve")

#: Seconds a worker has to finish its requests and close after SIGTERM, before SIGKILL.
STOP_TIMEOUT = 15.0
#: A worker that dies is started again after this many seconds...
RESTART_DELAY = 1.0
#: ...unless workers died within QUICK_EXIT seconds of starting more than this many times.
QUICK_EXIT = 10.0
MAX_QUICK_EXITS = 5


def shared_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) that the other workers may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def listen_socket(host: str, port: int) -> socket.socket:
    """A worker's listening socket on (host, port), beside the other workers' ones."""
    sock = shared_port_socket(host, port)
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def worker_app(args: argparse.Namespace) -> FastAPI:
    """The app of one worker: its own ledger handle, sequencer and witnessing role."""
    from api.serving import open_serving_ledger, serving_app

    ledger = open_serving_ledger(args)
    return serving_app(ledger, args, workers=args.workers, owns_ledger=True)


def settle_heap() -> None:
    """Move what start-up allocated out of the garbage collector's sight.

    The catalogue, the app and the imported modules live as long as the process; left in
    the collector's generations, every full collection scans them again (about 10 µs of
    each appended event, measured).
    """
    gc.collect()
    gc.freeze()


#: prctl(2) option: the signal this process gets when its parent dies (Linux).
PR_SET_PDEATHSIG = 1
#: How often a worker checks for its parent where the kernel cannot tell it.
PARENT_POLL = 0.5


def _stop(reason: str) -> None:
    log.warning("worker %s stops: %s", os.getpid(), reason)
    os.kill(os.getpid(), signal.SIGTERM)


def _exit_with_parent(parent: int) -> None:
    """Stop this worker the moment its parent is gone (killed with SIGKILL, say).

    On Linux the kernel sends SIGTERM as the parent dies (prctl PR_SET_PDEATHSIG; strictly,
    as the parent's thread that started the worker ends, and :func:`supervise` starts them
    all from its main thread). A thread polls the parent id as well, for other systems and
    for a parent that died before the request. Workers without their parent must not go on
    answering: nobody would restart or stop them, and they would hold the port (issue 10 §4).
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_PDEATHSIG): %s", os.strerror(ctypes.get_errno()))
        except (OSError, AttributeError) as e:  # no libc to load, or no prctl in it
            log.warning("prctl(PR_SET_PDEATHSIG) unavailable: %s", e)
    if os.getppid() != parent:
        _stop("the parent died while it started")
        return

    def poll() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        _stop("the parent is gone")

    threading.Thread(target=poll, name="parent-watch", daemon=True).start()


class WorkerServer(uvicorn.Server):
    """uvicorn's server that stops accepting connections as soon as it is told to stop.

    uvicorn notices SIGTERM on its next tick (up to 0.1 s later) and only then closes its
    listening sockets; until then the kernel would still hand this worker new
    connections. The handler closes them at once, through the event loop (it runs in the
    loop's thread, but may interrupt the loop anywhere).
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not serving yet, or done: nothing listens
            return
        loop.call_soon_threadsafe(self._stop_listening)

    def _stop_listening(self) -> None:
        for server in getattr(self, "servers", ()):
            server.close()  # idempotent; uvicorn's own shutdown closes them again


def worker_main(argv: list[str], parent: int) -> None:
    """Entry point of a worker process (spawned, so it imports everything afresh)."""
    from api.serve_options import parse_serve_argv

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    args = parse_serve_argv(argv)
    _exit_with_parent(parent)
    sock = listen_socket(args.host, args.port)
    app = worker_app(args)
    settle_heap()
    config = uvicorn.Config(
        app,
        # Request bodies without uvicorn's two copies, under the limits of api/limits.py.
        **limits.uvicorn_options(limits.from_args(args)),
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    WorkerServer(config).run(sockets=[sock])


def prepare_metrics_dir(data: Path) -> None:
    """Give the workers prometheus-client's multiprocess directory (``/metrics`` adds up
    every worker's values from it), emptied of a previous run's files.

    Set in the environment before the workers are spawned, which is when prometheus-client
    reads it. An operator's own ``PROMETHEUS_MULTIPROC_DIR`` is kept as it is.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    d = data / "metrics"
    d.mkdir(mode=0o700, exist_ok=True)
    for f in d.glob("*.db"):
        f.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(d)


def supervise(argv: list[str], host: str, port: int, workers: int) -> int:
    """Run ``workers`` worker processes until SIGINT or SIGTERM; returns the exit code."""
    # Hold the port (bound, not listening: the kernel gives connections only to the
    # workers' listening sockets) so that nothing else takes it while a worker restarts.
    try:
        guard = shared_port_socket(host, port)
    except OSError as e:
        print(f"jianzheng: cannot listen on {host}:{port}: {e.strerror}", file=sys.stderr)
        return 2
    if port == 0:
        # One port for all: the one the kernel chose for the guard (the last --port wins).
        argv = [*argv, "--port", str(guard.getsockname()[1])]
        print(f"jianzheng: listening on port {guard.getsockname()[1]}", flush=True)
    ctx = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def start() -> BaseProcess:
        p = ctx.Process(target=worker_main, args=(argv, os.getpid()), name="jianzheng-worker")
        p.start()
        return p

    procs = [start() for _ in range(workers)]
    started = {p.pid: time.monotonic() for p in procs}
    quick_exits = 0
    code = 0
    try:
        while not stop.wait(0.5):
            for i, p in enumerate(procs):
                if p.is_alive() or stop.is_set():
                    continue
                log.warning("worker %s exited with %s; starting another", p.pid, p.exitcode)
                # A worker that cannot start (database gone, say) would otherwise be
                # restarted forever; one that ran a while and died is simply replaced.
                quick = time.monotonic() - started.pop(p.pid, 0.0) < QUICK_EXIT
                quick_exits = quick_exits + 1 if quick else 0
                if quick_exits > MAX_QUICK_EXITS:
                    print("jianzheng: workers keep exiting at start; stopping", file=sys.stderr)
                    code = 1
                    stop.set()
                    break
                time.sleep(RESTART_DELAY)
                procs[i] = start()
                started[procs[i].pid] = time.monotonic()
    finally:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(5)
        guard.close()
    return code
