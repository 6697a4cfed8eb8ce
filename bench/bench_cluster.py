"""Cluster benchmark (issue 16): 1, 2 and 3 ``jianzheng serve`` nodes behind HAProxy.

One PostgreSQL primary with a synchronous streaming standby (tests/cluster.py, the same
set-up as the fault tests), n nodes on its multi-host URL, HAProxy round-robin in front.
A closed-loop client (bench/loadgen.py) posts single events, each with its own
idempotency key, for ``--seconds`` after a warm-up. Reported per n:

- appends/s and p50/p99 from POST to receipt, with the ratio to n = 1 (the baseline,
  measured in the same run);
- from every node's /metrics, the coordination cost: events per batch, the sequencer
  lock wait per batch and per event, head reloads (a batch that found another node had
  moved the head and re-read the tails and frontier) per batch, and the batch commit
  time (lock held).

Everything shares the machine's cores: PostgreSQL and its standby, HAProxy, the nodes and
the client. More nodes cannot add cores; they add processes competing for the same two,
and contention on the one writer lock.

    python bench/bench_cluster.py [--seconds 15] [--connections 16] [--nodes 1,2,3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loadgen import build_request, run_load
from tests.cluster import HAProxy, Nodes, PgPair
from tests.conftest import make_event

#: The counters and histogram sums read from each node's /metrics.
_SERIES = (
    "jianzheng_appended_events_total",
    "jianzheng_batches_total",
    "jianzheng_head_reloads_total",
    "jianzheng_sequencer_lock_wait_seconds_sum",
    "jianzheng_batch_commit_seconds_sum",
)


def scrape(nodes: Nodes) -> dict[str, float]:
    """The sum over the nodes of each series in :data:`_SERIES`."""
    total = dict.fromkeys(_SERIES, 0.0)
    for srv in nodes.servers:
        assert srv is not None
        text = httpx.get(
            srv.url + "/metrics", headers={"Authorization": f"Bearer {nodes.token}"}, timeout=30
        ).text
        for name in _SERIES:
            m = re.search(rf"^{name} (\S+)$", text, re.M)
            if m:
                total[name] += float(m.group(1))
    return total


def run(n: int, seconds: float, connections: int, base: Path) -> dict[str, float]:
    pair = PgPair(base / f"pg{n}")
    try:
        nodes = Nodes(base / f"n{n}", pair.url, {}, n)
        try:
            proxy = HAProxy(base / f"haproxy{n}", nodes.ports)
            try:
                head = {"Authorization": f"Bearer {nodes.token}"}
                prefix = secrets.token_hex(4)
                host = f"127.0.0.1:{proxy.port}"

                def request(i: int) -> bytes:
                    ev = make_event(project=f"B{i % 64}", idempotency_key=f"{prefix}-{i}")
                    return build_request("POST", "/v1/events", host, json.dumps(ev).encode(), head)

                before = scrape(nodes)
                res = asyncio.run(
                    run_load("127.0.0.1", proxy.port, request, connections, seconds, warmup=2.0)
                )
                after = scrape(nodes)
            finally:
                proxy.stop()
        finally:
            nodes.stop()
    finally:
        pair.stop()
    d = {k: after[k] - before[k] for k in _SERIES}
    batches = max(d["jianzheng_batches_total"], 1.0)
    events = max(d["jianzheng_appended_events_total"], 1.0)
    return {
        "nodes": n,
        "appends_per_s": res.rate,
        "errors": res.errors,
        "p50_ms": res.percentile(50) * 1000,
        "p99_ms": res.percentile(99) * 1000,
        "events_per_batch": events / batches,
        "lock_wait_ms_per_batch": d["jianzheng_sequencer_lock_wait_seconds_sum"] / batches * 1e3,
        "lock_wait_ms_per_event": d["jianzheng_sequencer_lock_wait_seconds_sum"] / events * 1e3,
        "commit_ms_per_batch": d["jianzheng_batch_commit_seconds_sum"] / batches * 1e3,
        "head_reloads_per_batch": d["jianzheng_head_reloads_total"] / batches,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--nodes", default="1,2,3")
    args = ap.parse_args()
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')}, {args.connections} connections")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        for n in (int(x) for x in args.nodes.split(",")):
            rows.append(run(n, args.seconds, args.connections, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    print()
    print(
        "| nodes | appends/s | × n=1 | p50 ms | p99 ms | events/batch | lock wait ms/batch "
        "| lock wait ms/event | commit ms/batch | head reloads/batch | errors |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['nodes']:.0f} | {r['appends_per_s']:.0f} | "
            f"{r['appends_per_s'] / base['appends_per_s']:.2f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['events_per_batch']:.1f} | "
            f"{r['lock_wait_ms_per_batch']:.2f} | {r['lock_wait_ms_per_event']:.3f} | "
            f"{r['commit_ms_per_batch']:.2f} | {r['head_reloads_per_batch']:.2f} | "
            f"{r['errors']:.0f} |"
        )


if __name__ == "__main__":
    main()
