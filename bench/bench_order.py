"""Micro-benchmark: what the process-order check costs the sequencer (issue 11).

Two figures, each beside its baseline from the same run:
  1. the check alone: ``ProcessOrder.check`` + ``advance`` per event, over a lawful
     tender's event types, in microseconds;
  2. in-process batched appends (SQLite, durable commits, 1000-event units into 200
     projects) with the shipped process order, against the same ledger with no order rules.

    python bench/bench_order.py [--events 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.catalogue import load_catalogue  # noqa: E402
from ledger.order import EMPTY_STATE, parse_process_order  # noqa: E402
from ledger.records import validate_event  # noqa: E402
from ledger.service import Ledger  # noqa: E402
from tests.conftest import make_event  # noqa: E402
from tests.tender import lawful_tender  # noqa: E402


def check_cost(n: int) -> tuple[float, float]:
    """(µs per check+advance, µs per loop step without them) over a tender's types."""
    order = load_catalogue().order
    types = [e["type"] for e in lawful_tender("B")]
    seq = list(range(len(types)))
    t0 = time.perf_counter()
    done = 0
    while done < n:
        state = EMPTY_STATE
        for i, t in zip(seq, types, strict=True):
            order.check(state, "engineering", t)
            state = order.advance(state, t, i, i)
        done += len(types)
    t1 = time.perf_counter()
    done = 0
    while done < n:
        state = EMPTY_STATE
        for _ in zip(seq, types, strict=True):
            pass
        done += len(types)
    t2 = time.perf_counter()
    return (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6


def append_rate(rules: bool, batches: int, size: int = 1000) -> float:
    """Events/s appended in process, units of ``size`` events into 200 projects."""
    cat = load_catalogue()
    if not rules:
        refs = cat.order.references  # references still resolve; no order rules
        events = {code: e.trade_types for code, e in cat.events.items()}
        none = parse_process_order({"rules": []}, events, refs, "none")
        cat = dataclasses.replace(cat, order=none)
    with tempfile.TemporaryDirectory() as tmp:
        lg = Ledger.open(Path(tmp) / "d", None, "bench.example/log", catalogue=cat)
        try:
            units = [
                [
                    validate_event(make_event(f"E{(b * size + i) % 200:05d}"), cat)
                    for i in range(size)
                ]
                for b in range(batches)
            ]
            lg.append(units[0], "bench").result()  # warm: tails cached
            t0 = time.perf_counter()
            futs = [lg.append(u, "bench") for u in units[1:]]
            for f in futs:
                f.result()
            return (batches - 1) * size / (time.perf_counter() - t0)
        finally:
            lg.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    cost, loop = min(check_cost(args.events) for _ in range(args.rounds))
    print(f"order check + advance: {cost:.2f} µs/event (bare loop {loop:.2f} µs)")
    with_rules = max(append_rate(True, args.batches) for _ in range(args.rounds))
    without = max(append_rate(False, args.batches) for _ in range(args.rounds))
    print(
        f"in-process batched appends: {with_rules:,.0f} events/s with the order rules, "
        f"{without:,.0f} without (ratio {with_rules / without:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
