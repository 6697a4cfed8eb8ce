"""Ledger benchmark (issue: the Merkle-chained event ledger; issue 18: append speed).

Measures, on this machine, with durable commits (SQLite WAL + synchronous=FULL):
  1. single-event appends/s over HTTP, separately for events that each open a new project
     and events into existing projects, as a ratio to a trivial FastAPI + pydantic app
     (bench/trivial_app.py) taking the same body with the same number of workers, run
     beside it in interleaved rounds; and p50/p99 time from POST to receipt;
  2. batched events/s over HTTP (1000-event batches);
  3. the in-process append rate as a ratio to raw SQLite inserts of the same rows with the
     same durability and the same transaction sizes;
  4. inclusion-proof latency in a log of --proof-entries entries (default 1,000,000),
     in process (cold and warm tile cache) and over HTTP.
Every figure comes with a baseline measured in the same run, because the machine is
shared and noisy: the trivial app for HTTP rates, raw SQLite for the append path, and a
primary-key row read from the same database for proof latency.

HTTP load comes from wrk (Debian: ``apt-get install -y wrk``), which costs the shared
cores far less than a Python load generator.

    python bench/bench_ledger.py [--seconds 10] [--rounds 3] [--http-only] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import build_request, run_load  # noqa: E402
from bench.report import write_section  # noqa: E402
from bench.wrkload import WrkResult, have_wrk, run_wrk  # noqa: E402
from ledger.records import validate_event  # noqa: E402
from ledger.sequencer import Appended  # noqa: E402
from ledger.service import Ledger  # noqa: E402
from tests.conftest import make_event  # noqa: E402
from tests.procs import Server, free_port  # noqa: E402

HOST = "127.0.0.1"


def start_server(data: Path, workers: int = 1) -> Server:
    """``jianzheng serve`` on a free port (tests/procs.py), rate limit off, ``workers``."""
    extra = ("--rate-limit", "0", "--workers", str(workers))
    return Server(data, None, *extra, origin="bench.example/log")


class Baseline:
    """bench/trivial_app.py under ``uvicorn --workers N`` on a free loopback port."""

    def __init__(self, workers: int, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.trivial_app:app",
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"baseline exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("baseline did not start in 60 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def token(data: Path, role: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "api.cli", "token", "create", "--data", str(data), "--role", role],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return out.stdout.strip().splitlines()[-1]


#: Stands for the project code in the event body the load generator fills in per request.
MARK = "PROJECTCODE"


def http_section(
    seconds: float, conns: int, workers: int, batch_conns: int, rounds: int
) -> dict[str, Any]:
    """Single appends (new projects, existing projects), batches and the baseline.

    Each round runs, one after the other for ``seconds`` each: the trivial app, events
    that each open a new project, events into one of 200 existing projects, and
    1000-event batches; the ratios are per round and their medians are reported, so a
    burst of other work on the machine moves numerator and denominator together.
    """
    if not have_wrk():
        raise SystemExit("bench_ledger needs wrk: apt-get install -y wrk")
    body = json.dumps(make_event(project=MARK), ensure_ascii=False)
    prefix, suffix = body.split(MARK)
    batch_body = json.dumps(
        {"events": [make_event(project=f"B{i % 50}") for i in range(1000)]}, ensure_ascii=False
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        srv = start_server(data, workers)
        base = Baseline(workers, Path(tmp) / "baseline.log")
        try:
            tok = token(data, "platform")

            def single(url: str, mode: str, tag: str, secs: float = seconds) -> WrkResult:
                return run_wrk(
                    url,
                    "/v1/events",
                    prefix=prefix,
                    suffix=suffix,
                    mode=mode,
                    tag=tag,
                    token=tok,
                    connections=conns,
                    seconds=secs,
                )

            def batch(secs: float = seconds) -> WrkResult:
                return run_wrk(
                    srv.url,
                    "/v1/events:batch",
                    prefix=batch_body,
                    token=tok,
                    connections=batch_conns,
                    seconds=secs,
                )

            # Warm up both servers; the existing projects' first events are written here.
            single(base.url, "new", "W", 2)
            single(srv.url, "new", "W", 2)
            single(srv.url, "existing", "X", 3)
            batch(2)
            per_round = []
            for r in range(rounds):
                b = single(base.url, "new", f"T{r}-")
                n = single(srv.url, "new", f"N{r}-")
                e = single(srv.url, "existing", "X")
                m = batch()
                runs = (("new", n), ("existing", e), ("batch", m))
                bad = {k: (x.non2xx, x.errors) for k, x in runs}
                if any(v != (0, 0) for v in bad.values()):
                    raise RuntimeError(f"errors (non-2xx, socket) in round {r}: {bad}")
                per_round.append((b, n, e, m))
                print(
                    f"  round {r + 1}: trivial {b.rate:,.0f}/s, new {n.rate:,.0f}/s "
                    f"(p99 {n.p99_ms:.1f} ms), existing {e.rate:,.0f}/s "
                    f"(p99 {e.p99_ms:.1f} ms), batch {m.rate * 1000:,.0f} events/s",
                    flush=True,
                )
        finally:
            srv.stop()
            base.stop()
        Path(srv.log.name).unlink(missing_ok=True)

    def med(f: Any) -> float:
        return statistics.median(f(*row) for row in per_round)

    return {
        "rounds": rounds,
        "baseline_rps": med(lambda b, n, e, m: b.rate),
        "new_rps": med(lambda b, n, e, m: n.rate),
        "existing_rps": med(lambda b, n, e, m: e.rate),
        "new_ratio": med(lambda b, n, e, m: n.rate / b.rate),
        "existing_ratio": med(lambda b, n, e, m: e.rate / b.rate),
        "new_p50_ms": med(lambda b, n, e, m: n.p50_ms),
        "new_p99_ms": med(lambda b, n, e, m: n.p99_ms),
        "existing_p50_ms": med(lambda b, n, e, m: e.p50_ms),
        "existing_p99_ms": med(lambda b, n, e, m: e.p99_ms),
        "worst_p99_ms": max(max(n.p99_ms, e.p99_ms) for _, n, e, _ in per_round),
        "baseline_p99_ms": med(lambda b, n, e, m: b.p99_ms),
        "batch_events_ps": med(lambda b, n, e, m: m.rate * 1000),
        "batch_p99_ms": med(lambda b, n, e, m: m.p99_ms),
        "connections": conns,
        "batch_connections": batch_conns,
        "workers": workers,
    }


def append_events(lg: Ledger, n: int, unit: int, projects: int = 500) -> float:
    """Append n events in units of ``unit`` through the sequencer; returns seconds."""
    evs = [
        validate_event(make_event(project=f"P{i % projects:05d}"), lg.catalogue)
        for i in range(min(n, 20_000))
    ]
    t0 = time.perf_counter()
    pending: list[Future[list[Appended]]] = []
    done = 0
    while done < n:
        k = min(unit, n - done)
        start = done % len(evs)
        chunk = (evs + evs)[start : start + k]
        pending.append(lg.append(chunk, "bench"))
        done += k
        if len(pending) >= 64:  # keep a bounded number of units in flight
            pending.pop(0).result(timeout=300)
    for f in pending:
        f.result(timeout=300)
    return time.perf_counter() - t0


def raw_sqlite_rate(rows: list[tuple[Any, ...]], batch: int, path: Path) -> float:
    """The same rows, inserted with sqlite3 directly: WAL, synchronous=FULL, same batches."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute(
        "CREATE TABLE records (idx INTEGER PRIMARY KEY, project TEXT, seq INTEGER, "
        "type TEXT, event_hash BLOB, record BLOB, poster TEXT, idempotency_key TEXT, "
        "request_digest BLOB, UNIQUE(project, seq), UNIQUE(poster, idempotency_key))"
    )
    t0 = time.perf_counter()
    for i in range(0, len(rows), batch):
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?)", rows[i : i + batch])
        con.execute("COMMIT")
    dt = time.perf_counter() - t0
    con.close()
    return len(rows) / dt


def inprocess_section(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        lg = Ledger.open(Path(tmp) / "data", None, "bench.example/log")
        try:
            append_events(lg, 2000, 100)  # warm up
            b0, s0 = lg.sequencer.batches, lg.head().size
            dt = append_events(lg, n, 100)
            batches = lg.sequencer.batches - b0
            rate = n / dt
            with lg.store.reader() as conn:
                rows = [
                    tuple(r)
                    for r in conn.exec_driver_sql(
                        "SELECT idx, project, seq, type, event_hash, record, poster, "
                        "idempotency_key, request_digest FROM records WHERE idx >= ? ORDER BY idx",
                        (s0,),
                    )
                ]
        finally:
            lg.close()
        avg_batch = max(1, round(len(rows) / max(1, batches)))
        raw = raw_sqlite_rate(rows, avg_batch, Path(tmp) / "raw.db")
    return {
        "events": n,
        "ledger_eps": rate,
        "raw_sqlite_eps": raw,
        "ratio": rate / raw,
        "avg_batch": avg_batch,
    }


def proof_section(entries: int, cache: Path, samples: int) -> dict[str, Any]:
    data = cache / f"proof-log-{entries}"
    if not (data / "done").exists():
        import shutil

        shutil.rmtree(data, ignore_errors=True)
        lg = Ledger.open(data, None, "bench.example/log", max_batch=8192)
        t0 = time.perf_counter()
        append_events(lg, entries, 1000)
        lg.close()
        (data / "done").write_text(f"built in {time.perf_counter() - t0:.0f} s\n")
    rnd = random.Random(7)
    idx = [rnd.randrange(entries) for _ in range(samples)]

    def timed(fn: Any, args: list[Any]) -> list[float]:
        out = []
        for a in args:
            t0 = time.perf_counter()
            fn(a)
            out.append(time.perf_counter() - t0)
        return out

    lg = Ledger.open(data, None, "bench.example/log")
    try:
        size = lg.head().size
        cold = timed(lambda i: lg.inclusion_proof(i, size), idx)
        warm = timed(lambda i: lg.inclusion_proof(i, size), idx)
        row = timed(lambda i: lg.record(i), idx)
    finally:
        lg.close()
    srv = start_server(data)
    port = srv.port
    try:
        auth = {"Authorization": f"Bearer {token(data, 'reviewer')}"}
        reqs = [
            build_request(
                "GET", f"/v1/proofs/inclusion?index={i}&tree_size={size}", HOST, headers=auth
            )
            for i in idx
        ]
        http = asyncio.run(run_load(HOST, port, lambda k: reqs[k % len(reqs)], 1, 5, 0.5))
        health = asyncio.run(
            run_load(HOST, port, lambda k: build_request("GET", "/healthz", HOST), 1, 5, 0.5)
        )
    finally:
        srv.stop()
        Path(srv.log.name).unlink(missing_ok=True)

    def pct(xs: list[float], p: float) -> float:
        return sorted(xs)[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1e3

    return {
        "entries": size,
        "cold_p50_ms": pct(cold, 50),
        "cold_p99_ms": pct(cold, 99),
        "warm_p50_ms": pct(warm, 50),
        "warm_p99_ms": pct(warm, 99),
        "row_read_p50_ms": pct(row, 50),
        "http_p50_ms": http.percentile(50) * 1e3,
        "http_p99_ms": http.percentile(99) * 1e3,
        "http_healthz_p50_ms": health.percentile(50) * 1e3,
        "mean_warm_ms": statistics.mean(warm) * 1e3,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of HTTP load")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--batch-connections", type=int, default=16)
    ap.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="jianzheng serve --workers and the baseline's (default: one per core)",
    )
    ap.add_argument("--one-worker", action="store_true", help="also measure with --workers 1")
    ap.add_argument("--http-only", action="store_true", help="skip in-process and proofs")
    ap.add_argument("--inprocess-events", type=int, default=50_000)
    ap.add_argument("--proof-entries", type=int, default=1_000_000)
    ap.add_argument("--proof-samples", type=int, default=2000)
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("JIANZHENG_CACHE", Path.home() / ".cache" / "jianzheng"))
        / "bench",
    )
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    load0 = os.getloadavg()[0]
    print(f"HTTP appends, --workers {args.workers} ...", flush=True)
    h = http_section(
        args.seconds, args.connections, args.workers, args.batch_connections, args.rounds
    )
    print(json.dumps(h, indent=1), flush=True)
    one_worker: dict[str, Any] | None = None
    if args.one_worker and args.workers != 1:
        print("HTTP appends, one worker ...", flush=True)
        one_worker = http_section(
            args.seconds, args.connections, 1, args.batch_connections, args.rounds
        )
        print(json.dumps(one_worker, indent=1), flush=True)
    ip: dict[str, Any] | None = None
    pr: dict[str, Any] | None = None
    if not args.http_only:
        print("in-process append vs raw SQLite ...", flush=True)
        ip = inprocess_section(args.inprocess_events)
        print(json.dumps(ip, indent=1), flush=True)
        print(f"inclusion proofs at {args.proof_entries} entries ...", flush=True)
        pr = proof_section(args.proof_entries, args.cache, args.proof_samples)
        print(json.dumps(pr, indent=1), flush=True)

    def ok(v: float, target: float, higher: bool = True) -> str:
        return "meets" if (v >= target if higher else v <= target) else "**misses**"

    def http_rows(h: dict[str, Any], label: str) -> list[tuple[str, ...]]:
        base = f"trivial FastAPI app {h['baseline_rps']:,.0f}/s"
        w = h["workers"]
        return [
            (
                f"{label}single appends, each opening a new project",
                f"{h['new_rps']:,.0f}/s",
                base,
                f"{h['new_ratio']:.2f}",
                f"≥ 0.5: {ok(h['new_ratio'], 0.5)}" if w > 1 else "",
            ),
            (
                f"{label}single appends into 200 existing projects",
                f"{h['existing_rps']:,.0f}/s",
                base,
                f"{h['existing_ratio']:.2f}",
                f"≥ 0.5: {ok(h['existing_ratio'], 0.5)}" if w > 1 else "",
            ),
            (
                f"{label}POST → receipt latency (new / existing projects)",
                f"p50 {h['new_p50_ms']:.1f} / {h['existing_p50_ms']:.1f} ms, "
                f"p99 {h['new_p99_ms']:.1f} / {h['existing_p99_ms']:.1f} ms "
                f"(worst round {h['worst_p99_ms']:.1f} ms)",
                f"trivial app p99 {h['baseline_p99_ms']:.1f} ms",
                "",
                f"p99 ≤ 50 ms: {ok(max(h['new_p99_ms'], h['existing_p99_ms']), 50, False)}"
                if w > 1
                else "",
            ),
            (
                f"{label}batched events (1000/batch)",
                f"{h['batch_events_ps']:,.0f}/s (p99 {h['batch_p99_ms']:.0f} ms per batch)",
                base,
                f"{h['batch_events_ps'] / h['baseline_rps']:.1f}",
                f"≥ 40,000/s: {ok(h['batch_events_ps'], 40000)}" if w > 1 else "",
            ),
        ]

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = http_rows(h, "")
    if one_worker is not None:
        rows += http_rows(one_worker, "one worker: ")
    if ip is not None:
        rows.append(
            (
                f"in-process appends ({ip['events']:,} events, ~{ip['avg_batch']}/commit)",
                f"{ip['ledger_eps']:,.0f}/s",
                f"raw SQLite insert of the same rows {ip['raw_sqlite_eps']:,.0f}/s",
                f"{ip['ratio']:.2f}",
                "",
            )
        )
    if pr is not None:
        rows += [
            (
                f"inclusion proof, {pr['entries']:,} entries, in process, cold cache",
                f"p50 {pr['cold_p50_ms']:.2f} ms, p99 {pr['cold_p99_ms']:.2f} ms",
                f"PK row read p50 {pr['row_read_p50_ms']:.2f} ms",
                f"{pr['cold_p50_ms'] / pr['row_read_p50_ms']:.1f}",
                f"≤ 2 ms: {ok(pr['cold_p99_ms'], 2, False)}",
            ),
            (
                "inclusion proof, warm cache",
                f"p50 {pr['warm_p50_ms']:.3f} ms, p99 {pr['warm_p99_ms']:.3f} ms",
                "",
                "",
                f"≤ 2 ms: {ok(pr['warm_p99_ms'], 2, False)}",
            ),
            (
                "inclusion proof over HTTP (1 connection)",
                f"p50 {pr['http_p50_ms']:.2f} ms, p99 {pr['http_p99_ms']:.2f} ms",
                f"GET /healthz p50 {pr['http_healthz_p50_ms']:.2f} ms",
                f"{pr['http_p50_ms'] / pr['http_healthz_p50_ms']:.1f}",
                "",
            ),
        ]
    table = "\n".join("| " + " | ".join(r) + " |" for r in rows)
    node = platform.node() or "this machine"
    flags = f" --rounds {args.rounds} --workers {args.workers}"
    flags += " --one-worker" if args.one_worker else ""
    flags += " --http-only" if args.http_only else f" --proof-entries {args.proof_entries}"
    md = (
        f"Run {when} on {node} ({os.cpu_count()} cores), Python {platform.python_version()}; "
        f"load average {load0:.2f} when it started.\n"
        f"Command: `python bench/bench_ledger.py --seconds {args.seconds:g}{flags}`.\n"
        "Durable commits: SQLite WAL + `synchronous=FULL`; server = "
        f"`jianzheng serve --workers {h['workers']}`; baseline = `bench/trivial_app.py` "
        f"(FastAPI + pydantic, same body) under `uvicorn --workers {h['workers']}`, "
        "running beside it. Load = wrk (`apt-get install -y wrk`) on the same machine, "
        f"{h['connections']} keep-alive connections for single events, "
        f"{h['batch_connections']} for batches; {h['rounds']} rounds of "
        f"{args.seconds:g} s, each running trivial app, new projects, existing projects "
        "and batches in turn; figures are medians over the rounds, ratios the median of "
        "each round's ratio.\n\n"
        "| measure | value | baseline in the same run | ratio | target |\n"
        "|---|---|---|---|---|\n" + table + "\n"
    )
    print(md)
    if not args.no_write:
        title = "Ledger: appends, receipts, proofs"
        write_section(ROOT / "docs" / "benchmarks.md", "ledger", title, md)


if __name__ == "__main__":
    main()
