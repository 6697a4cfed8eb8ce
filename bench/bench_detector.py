"""Benchmark: the alert detector's CPU per record, kept timelines against whole reads
(issue 18: the detector took 14 % of the workers' CPU under the existing-projects load).

The load of ``bench_ledger.py``'s existing-projects run, in process: ``--events`` single
events into ``--projects`` projects at random, committed to an in-process ledger (SQLite),
then read back twice as the detection worker reads the log, from its tail: by the detector
the service runs (kept timelines, :class:`api.alert_rules.Timelines`, pages of
:data:`api.alerting.TAIL_PAGE`), and by the detector as it was before (the baseline: every
touched project read whole from the database each page, pages of 500). The figure is CPU
time (``time.process_time``) per record, each pass's sum over its pages, both passes in the
same run (which goes first alternates by round); ``--rounds`` repeats it.

    python bench/bench_detector.py [--projects 200] [--events 20000] [--rounds 3] [--write-docs]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.alert_rules import Detector, Timelines  # noqa: E402
from api.alerting import TAIL_PAGE  # noqa: E402
from bench.report import write_section  # noqa: E402
from ledger.records import validate_event  # noqa: E402
from ledger.service import Ledger  # noqa: E402
from tests.conftest import make_event  # noqa: E402

#: The detection worker's page before issue 18 (the baseline reads every touched project
#: whole, as the detector did then, in pages of this size).
BEFORE_PAGE = 500


class _Settings:
    access_threshold = 1000
    access_window = 60.0
    witness_lag = 300.0


def _pass(lg: Ledger, det: Detector, page: int, forget: bool) -> float:
    """CPU seconds ``det`` takes over the whole log read in pages of ``page`` records;
    ``forget``: a fresh :class:`Timelines` each page (every touched project read whole)."""
    took, cursor = 0.0, -1
    while True:
        with lg.store.reader() as conn:
            rows = lg.store.records_after(conn, cursor, page)
        if not rows:
            return took
        cursor = rows[-1][0]
        if forget:
            det.timelines = Timelines(lg)
        t0 = time.process_time()
        det.read(rows)
        took += time.process_time() - t0


def one_round(
    projects: int, events: int, seed: int, page: int = TAIL_PAGE
) -> tuple[float, float, int]:
    """(kept µs per record, whole µs per record, database reads of the kept detector)."""
    rnd = random.Random(seed)
    with tempfile.TemporaryDirectory() as d:
        lg = Ledger.open(Path(d) / "data", f"sqlite:///{d}/l.db", "bench.detector/log")
        try:
            evs = [
                validate_event(make_event(project=f"X{rnd.randrange(projects):05d}"), lg.catalogue)
                for _ in range(events)
            ]
            for i in range(0, events, 1000):
                lg.append(evs[i : i + 1000], "bench").result(120)
            kept = Detector(lg, _Settings(), lambda alerts: None)
            whole = Detector(lg, _Settings(), lambda alerts: None)
            # Alternate which goes first: the second pass finds SQLite's pages cached.
            order = [(kept, page, False), (whole, BEFORE_PAGE, True)]
            took = {}
            for det, size, forget in order if seed % 2 == 0 else order[::-1]:
                took[id(det)] = _pass(lg, det, size, forget)
            us = {k: v / events * 1e6 for k, v in took.items()}
            return us[id(kept)], us[id(whole)], kept.timelines.reads
        finally:
            lg.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--projects", type=int, default=200)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write-docs", action="store_true")
    a = ap.parse_args()
    load = os.getloadavg()[0]
    results = []
    for n in range(a.rounds):
        k, w, reads = one_round(a.projects, a.events, n)
        results.append((k, w, reads))
        print(
            f"round {n + 1}: kept {k:.1f} µs/record, whole reads {w:.1f} µs/record, "
            f"ratio {k / w:.2f}, database reads {reads}"
        )
    k = statistics.median(r[0] for r in results)
    w = statistics.median(r[1] for r in results)
    ratio = statistics.median(r[0] / r[1] for r in results)
    print(f"median: kept {k:.1f} µs/record, whole reads {w:.1f}, ratio {ratio:.2f}")
    if a.write_docs:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        body = (
            f"Run {when} on {platform.node()} ({os.cpu_count()} cores), Python "
            f"{platform.python_version()}; load average {load:.2f} when it started.\n"
            f"Command: `python bench/bench_detector.py --projects {a.projects} --events "
            f"{a.events} --rounds {a.rounds} --write-docs`. {a.events:,} single events into "
            f"{a.projects} projects at random (the existing-projects load of bench_ledger), "
            f"read back from the log's tail by the detector the service runs (timelines "
            f"kept between rounds, pages of {TAIL_PAGE}) and by the detector as it was "
            f"before (every touched project read whole each page, pages of {BEFORE_PAGE}). "
            "CPU time per record, median of the rounds.\n\n"
            "| measure | value | baseline in the same run | ratio |\n|---|---|---|---|\n"
            f"| alert detection, kept timelines, pages of {TAIL_PAGE} | {k:.1f} µs/record | "
            f"whole reads, pages of {BEFORE_PAGE}: {w:.1f} µs/record | {ratio:.2f} |\n\n"
            "Per round (kept / whole, µs per record; database reads of the kept detector): "
            + "; ".join(f"{r[0]:.1f} / {r[1]:.1f} ({r[2]})" for r in results)
            + ".\n"
        )
        write_section(
            ROOT / "docs" / "benchmarks.md", "detector", "Alert detection per record", body
        )


if __name__ == "__main__":
    main()
