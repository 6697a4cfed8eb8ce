"""Witness benchmark (issue: witnessing and trusted time).

Measures, on this machine:
  1. add-checkpoint requests/s that one ``jianzheng witness serve`` process sustains, each
     one durable (SQLite WAL + synchronous=FULL) before its reply: ``--logs`` logs, one
     keep-alive connection per log, each submitting its next checkpoint with a consistency
     proof as soon as the previous one was cosigned (closed loop);
  2. the latency a log adds from a new checkpoint to its k-th cosignature (k=2 of 3
     witness processes on loopback), for a steady trickle of appends and for a burst
     (sizes: --seconds for each phase).
Every figure comes with a baseline measured in the same run: GET /healthz on the same
witness under the same load for (1), and the in-process rate of one Ed25519 verify plus
one cosignature (the cryptography every add-checkpoint needs); a keep-alive GET /healthz
round trip to a witness for (2).

    python bench/bench_witness.py [--seconds 10] [--logs 32] [--checkpoints 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.loadgen import LoadResult, _read_response, build_request, run_load  # noqa: E402
from bench.report import write_section  # noqa: E402
from ledger.records import validate_event  # noqa: E402
from ledger.service import Ledger  # noqa: E402
from ledger.witnessing.submitter import WitnessEndpoint, Witnessing  # noqa: E402
from tests.conftest import make_event  # noqa: E402
from tests.servers import free_port  # noqa: E402
from verifier import merkle  # noqa: E402
from verifier.checkpoint import Checkpoint  # noqa: E402
from verifier.note import ALG_COSIGNATURE_V1, Signer, sign_note  # noqa: E402
from verifier.witnessing import AddCheckpointRequest  # noqa: E402
from witness.server import load_or_create_witness_key  # noqa: E402
from witness.state import WitnessStore  # noqa: E402
from witness.tsa import BuiltinTimestamper, TimestampAuthority  # noqa: E402

HOST = "127.0.0.1"


def start_witness(data: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.cli",
            "witness",
            "serve",
            "--data",
            str(data),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("witness did not start")


class Tree:
    """A synthetic tree with every node kept, so consistency proofs cost nothing to make."""

    def __init__(self, n: int) -> None:
        level = [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(n)]
        self.levels = [level]
        while len(level) > 1:
            level = [merkle.node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            self.levels.append(level)

    def node(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def root(self, size: int) -> bytes:
        return merkle.subtree_hash(self.node, 0, size)


def make_requests(logs: list[Signer], tree: Tree, n: int) -> list[list[bytes]]:
    """Per log, the HTTP requests 0->1, 1->2, ... n-1->n, each with its consistency proof."""
    proofs = [
        merkle.consistency_proof(tree.node, k - 1, k) if k > 1 else [] for k in range(1, n + 1)
    ]
    roots = [tree.root(k) for k in range(1, n + 1)]
    out = []
    for key in logs:
        reqs = []
        for k in range(1, n + 1):
            note = sign_note(Checkpoint(key.name, k, roots[k - 1]).body(), [key]).to_text()
            body = AddCheckpointRequest(k - 1, tuple(proofs[k - 1]), note).to_text().encode()
            reqs.append(build_request("POST", "/witness/add-checkpoint", HOST, body))
        out.append(reqs)
    return out


async def drive(port: int, per_log: list[list[bytes]], seconds: float, warmup: float) -> LoadResult:
    """One connection per log, closed loop: the next checkpoint once the last was cosigned."""
    res = LoadResult()
    t_measure = time.perf_counter() + warmup
    t_end = t_measure + seconds

    async def worker(reqs: list[bytes]) -> None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 10)
        try:
            for req in reqs:
                if time.perf_counter() >= t_end:
                    return
                t0 = time.perf_counter()
                writer.write(req)
                status, _ = await asyncio.wait_for(_read_response(reader), 30)
                t1 = time.perf_counter()
                if t0 >= t_measure and t1 <= t_end:
                    res.requests += 1
                    res.latencies.append(t1 - t0)
                    res.statuses[status] = res.statuses.get(status, 0) + 1
                    res.errors += status != 200
        finally:
            writer.close()

    await asyncio.gather(*(worker(r) for r in per_log))
    res.seconds = min(time.perf_counter(), t_end) - t_measure
    return res


def crypto_baseline(seconds: float = 2.0) -> float:
    """In-process rate of one Ed25519 verify (the log's signature) + one cosignature."""
    log = Signer.generate("bench.example/log")
    w = Signer.generate("bench.example/w", ALG_COSIGNATURE_V1)
    body = Checkpoint(log.name, 12345, bytes(32)).body().encode()
    sig = log.sign(body)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        log.verifier.verify(body, sig)
        w.sign(body, 1_700_000_000)
        n += 1
    return n / (time.perf_counter() - t0)


def throughput_section(seconds: float, nlogs: int, checkpoints: int) -> dict[str, Any]:
    logs = [Signer.generate(f"bench.example/log{i}") for i in range(nlogs)]
    tree = Tree(checkpoints)
    per_log = make_requests(logs, tree, checkpoints)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "w"
        load_or_create_witness_key(data, "bench.example/witness")
        store = WitnessStore.open(data)
        for k in logs:
            store.add_log(k.verifier.vkey)
        store.close()
        port = free_port()
        proc = start_witness(data, port)
        try:
            health = build_request("GET", "/healthz", HOST)
            base = asyncio.run(run_load(HOST, port, lambda i: health, nlogs, seconds))
            add = asyncio.run(drive(port, per_log, seconds, 1.0))
        finally:
            proc.terminate()
            proc.wait(30)
    if add.errors:
        raise RuntimeError(f"add-checkpoint errors: {add.statuses}")
    if add.requests >= nlogs * (checkpoints - 1):
        print("warning: a connection ran out of checkpoints; raise --checkpoints", flush=True)
    crypto = crypto_baseline()
    return {
        "logs": nlogs,
        "add_rps": add.rate,
        "add_p50_ms": add.percentile(50) * 1e3,
        "add_p99_ms": add.percentile(99) * 1e3,
        "healthz_rps": base.rate,
        "crypto_pairs_ps": crypto,
    }


def latency_section(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        tmpp = Path(tmp)
        lg = Ledger.open(tmpp / "log", None, "bench.example/log")
        procs, eps = [], []
        try:
            for i in range(3):
                data = tmpp / f"w{i}"
                key = load_or_create_witness_key(data, f"w{i}.bench.example")
                store = WitnessStore.open(data)
                store.add_log(lg.signer.verifier.vkey)
                store.close()
                port = free_port()
                procs.append(start_witness(data, port))
                eps.append(
                    WitnessEndpoint.parse(f"{key.verifier.vkey}@http://{HOST}:{port}/witness")
                )
            rtt = []
            with httpx.Client() as c:
                for _ in range(200):
                    t0 = time.perf_counter()
                    c.get(eps[0].url.replace("/witness/add-checkpoint", "/healthz"))
                    rtt.append(time.perf_counter() - t0)
            tsa = BuiltinTimestamper(TimestampAuthority.load_or_create(tmpp / "log", "bench"))
            w = Witnessing.start(lg, eps, 2, tsa)
            w.record_latency = True
            try:
                ev = validate_event(make_event(project="LAT"), lg.catalogue)
                # A steady trickle: one event every 20 ms, each its own checkpoint.
                t_end = time.perf_counter() + seconds
                while time.perf_counter() < t_end:
                    lg.append([ev], "bench").result(timeout=30)
                    time.sleep(0.02)
                time.sleep(1.0)
                trickle = [b - a for _, a, b in w.latencies]
                n_trickle = len(trickle)
                w.latencies.clear()
                # A burst: 8 threads appending as fast as the ledger takes them.
                stop = time.perf_counter() + seconds
                count = [0]

                def burst() -> None:
                    while time.perf_counter() < stop:
                        lg.append([ev], "bench").result(timeout=30)
                        count[0] += 1

                threads = [threading.Thread(target=burst) for _ in range(8)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                time.sleep(2.0)
                burst_lat = [b - a for _, a, b in w.latencies]
                witnessed = w.witnessed_size() == lg.head().size
            finally:
                w.close()
        finally:
            for p in procs:
                p.terminate()
                p.wait(30)
            lg.close()

    def pct(xs: list[float], p: float) -> float:
        return sorted(xs)[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1e3 if xs else float("nan")

    return {
        "trickle_checkpoints": n_trickle,
        "trickle_p50_ms": pct(trickle, 50),
        "trickle_p99_ms": pct(trickle, 99),
        "burst_events_ps": count[0] / seconds,
        "burst_checkpoints": len(burst_lat),
        "burst_p50_ms": pct(burst_lat, 50),
        "burst_p99_ms": pct(burst_lat, 99),
        "rtt_p50_ms": pct(rtt, 50),
        "rtt_p99_ms": pct(rtt, 99),
        "head_witnessed_at_end": witnessed,
        "mean_trickle_ms": statistics.mean(trickle) * 1e3 if trickle else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--logs", type=int, default=32, help="logs (= connections) for the rate")
    ap.add_argument("--checkpoints", type=int, default=2000, help="checkpoints per log")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args()

    print("add-checkpoint throughput ...", flush=True)
    t = throughput_section(args.seconds, args.logs, args.checkpoints)
    print(json.dumps(t, indent=1), flush=True)
    print("checkpoint -> k-th cosignature latency ...", flush=True)
    lat = latency_section(args.seconds)
    print(json.dumps(lat, indent=1), flush=True)

    def ok(v: float, target: float, higher: bool = True) -> str:
        return "meets" if (v >= target if higher else v <= target) else "**misses**"

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    host = platform.node() or "this machine"
    cmd = (
        f"python bench/bench_witness.py --seconds {args.seconds:g} --logs {args.logs} "
        f"--checkpoints {args.checkpoints}"
    )
    rows = [
        (
            "add-checkpoint requests/s, one witness",
            f"{t['add_rps']:,.0f}/s (p50 {t['add_p50_ms']:.1f} ms, p99 {t['add_p99_ms']:.1f} ms)",
            f"GET /healthz, same server and load: {t['healthz_rps']:,.0f}/s",
            f"{t['add_rps'] / t['healthz_rps']:.2f}",
            f"≥ 1,000/s: {ok(t['add_rps'], 1000)}",
        ),
        (
            "the same against its cryptography",
            f"{t['add_rps']:,.0f}/s",
            f"in-process Ed25519 verify + cosign pairs: {t['crypto_pairs_ps']:,.0f}/s",
            f"{t['add_rps'] / t['crypto_pairs_ps']:.2f}",
            "",
        ),
        (
            "new checkpoint → 2nd of 3 cosignatures, trickle "
            f"(1 event / 20 ms, {lat['trickle_checkpoints']} checkpoints)",
            f"p50 {lat['trickle_p50_ms']:.1f} ms, p99 {lat['trickle_p99_ms']:.1f} ms",
            f"keep-alive GET /healthz round trip to a witness: p50 {lat['rtt_p50_ms']:.2f} ms, "
            f"p99 {lat['rtt_p99_ms']:.2f} ms",
            f"p99 {lat['trickle_p99_ms'] / lat['rtt_p99_ms']:.1f}×",
            f"p99 ≤ 50 ms: {ok(lat['trickle_p99_ms'], 50, False)}",
        ),
        (
            f"same, burst ({lat['burst_events_ps']:,.0f} appends/s from 8 threads, "
            f"{lat['burst_checkpoints']} checkpoints)",
            f"p50 {lat['burst_p50_ms']:.1f} ms, p99 {lat['burst_p99_ms']:.1f} ms",
            "",
            "",
            f"p99 ≤ 50 ms: {ok(lat['burst_p99_ms'], 50, False)}",
        ),
    ]
    table = "\n".join("| " + " | ".join(r) + " |" for r in rows)
    md = f"""Run {when} on {host} ({os.cpu_count()} cores), Python {platform.python_version()}.
Command: `{cmd}`.
Witness = one `jianzheng witness serve` process; every cosignature is written (SQLite WAL +
`synchronous=FULL`, compare-and-swap) before it is sent. Load on the same 2 cores:
{t["logs"]} keep-alive connections, one log each, closed loop, each request extending the
last with a consistency proof.

| measure | value | baseline in the same run | ratio | target |
|---|---|---|---|---|
{table}

The latency is measured in the log process, for every checkpoint, from the checkpoint
listener to the moment the log holds (verified, published at `/log/checkpoint`) the 2nd
cosignature of that checkpoint or of a later one that covers it: under a burst, each round
submits only the newest checkpoint. Cosignatures are written to the ledger's database in
batches right after. The log runs its built-in TSA meanwhile, as `jianzheng serve` does.
"""
    print(md)
    if not args.no_write:
        title = "Witnessing: add-checkpoint rate, cosignature latency"
        write_section(ROOT / "docs" / "benchmarks.md", "witness", title, md)


if __name__ == "__main__":
    main()
