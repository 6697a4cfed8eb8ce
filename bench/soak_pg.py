"""Soak on PostgreSQL (issue 16): append towards 10 million entries, resumably.

Appends through the ledger's own batch path (``Ledger.append`` units of 1,000 events, the
sequencer's batches up to 8,192, as ``POST /v1/events:batch`` does) into a PostgreSQL
database, and at each milestone (--milestones, default 1M and 10M) records:

- the append rate over the last stretch (events/s);
- inclusion-proof latency, p50 and p99 over --samples random indexes, in a freshly opened
  ledger (a cold tile cache) and again warm; and a primary-key read of the record at the
  same index as the baseline, in the same run;
- stored bytes per event: ``pg_database_size`` over the log size.

Stop it at any time (Ctrl-C, kill): the log is durable and the next run continues from
its head, so the soak can go on later. Results are appended to ``STATE/results.jsonl``.

Without --db, the script keeps its own PostgreSQL cluster in STATE/pg (initdb on first
run, started and stopped by each run; default durability: fsync and synchronous_commit
on). With --db it uses that database.

    python bench/soak_pg.py [--state /var/tmp/jianzheng-soak] [--target 10000000]

(Under root, PostgreSQL runs as ``postgres``, which must be able to reach STATE: not under
a private home directory.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_ledger import append_events
from ledger.service import Ledger
from tests.cluster import PgNode, _chown, _pg_user
from tests.servers import PG_DATABASE, PG_SUPERUSER, _run, find_pg_bindir

ORIGIN = "soak.example/log"
STRETCH = 200_000  # events appended between progress lines


def own_postgres(state: Path) -> PgNode:
    """The soak's PostgreSQL in STATE/pg, created on first use, started now."""
    bindir = find_pg_bindir()
    if bindir is None:
        raise SystemExit("no PostgreSQL server binaries found")
    user = _pg_user()
    root = state / "pg"
    if not (root / "data" / "PG_VERSION").exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        (root / "sock").mkdir()
        for p in (root, root / "sock"):
            _chown(p, user)
        _run(
            [str(bindir / "initdb"), "-D", str(root / "data"), "-U", PG_SUPERUSER,
             "--auth=trust", "--encoding=UTF8", "--locale=C"],
            "initdb", cwd=root, user=user,
        )  # fmt: skip
    node = PgNode(
        root, "data", bindir, user,
        {"max_wal_size": "4GB", "shared_buffers": "512MB", "checkpoint_timeout": "15min"},
    )  # fmt: skip
    node.start()
    if not node.sql(f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"):
        node.sql(f"CREATE DATABASE {PG_DATABASE}")
    return node


def measure(data: Path, db: str, samples: int) -> dict[str, Any]:
    """Proof latency (cold, warm) and the record read baseline, at the current head."""
    lg = Ledger.open(data, db, ORIGIN)
    try:
        size = lg.head().size
        rnd = random.Random(size)
        idx = [rnd.randrange(size) for _ in range(samples)]

        def timed(fn: Any) -> list[float]:
            out = []
            for i in idx:
                t0 = time.perf_counter()
                fn(i)
                out.append((time.perf_counter() - t0) * 1000)
            return sorted(out)

        cold = timed(lambda i: lg.inclusion_proof(i, size))
        warm = timed(lambda i: lg.inclusion_proof(i, size))
        row = timed(lambda i: lg.record(i))
        with lg.store.engine.connect() as conn:
            db_bytes = int(
                conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one()
            )
    finally:
        lg.close()

    def p(xs: list[float], q: float) -> float:
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    return {
        "size": size,
        "proof_cold_p50_ms": p(cold, 0.5),
        "proof_cold_p99_ms": p(cold, 0.99),
        "proof_warm_p50_ms": p(warm, 0.5),
        "proof_warm_p99_ms": p(warm, 0.99),
        "record_read_p99_ms": p(row, 0.99),
        "record_read_median_ms": statistics.median(row),
        "db_bytes": db_bytes,
        "bytes_per_event": db_bytes / size,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state", type=Path, default=Path("/var/tmp/jianzheng-soak"))
    ap.add_argument("--db", help="use this PostgreSQL database instead of STATE/pg")
    ap.add_argument("--target", type=int, default=10_000_000)
    ap.add_argument("--milestones", default="1000000,10000000")
    ap.add_argument("--samples", type=int, default=2000)
    args = ap.parse_args()
    state: Path = args.state
    state.mkdir(parents=True, exist_ok=True)
    node = None if args.db else own_postgres(state)
    db = args.db or f"postgresql+psycopg://{PG_SUPERUSER}@127.0.0.1:{node.port}/{PG_DATABASE}"  # type: ignore[union-attr]
    data = state / "data"
    results = state / "results.jsonl"
    milestones = sorted(int(x) for x in args.milestones.split(","))
    try:
        lg = Ledger.open(data, db, ORIGIN, max_batch=8192)
        try:
            size = lg.head().size if lg.head() else 0
            print(f"log at {size} entries; target {args.target}", flush=True)
            while size < args.target:
                nxt = min(args.target, size + STRETCH)
                for m in milestones:
                    if size < m < nxt:
                        nxt = m
                t = append_events(lg, nxt - size, 1000)
                rate = (nxt - size) / t
                size = lg.head().size
                print(f"{size:>10} entries  {rate:8.0f} events/s", flush=True)
                with results.open("a") as f:
                    f.write(json.dumps({"size": size, "stretch_events_per_s": rate}) + "\n")
                if size in milestones:
                    lg.close()
                    got = measure(data, db, args.samples) | {"append_events_per_s": rate}
                    print(json.dumps(got), flush=True)
                    with results.open("a") as f:
                        f.write(json.dumps({"milestone": got}) + "\n")
                    lg = Ledger.open(data, db, ORIGIN, max_batch=8192)
        finally:
            lg.close()
    finally:
        if node is not None:
            node.stop()
    os.sync()


if __name__ == "__main__":
    main()
