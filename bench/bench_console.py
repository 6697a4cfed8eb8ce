"""Console benchmark (issue 15): the timeline page of a 2,000-event project.

Target: p95 ≤ 300 ms server-side. One server process (the ``jianzheng`` app, as ``serve``
builds it, under uvicorn, durable SQLite) holds a 2,000-event engineering tender (the
lawful tender of tests/tender.py with its evaluation widened to 1,958 scores; bids sealed
and opened, so the page opens every sealed record). A reviewer signed in through the
console's form asks for the timeline over and over, one request at a time; each page
reads the 2,000 records, opens the sealed ones, appends its ``evidence_accessed`` event
and waits for it to be durable, and renders. The baseline, in the same run and process:
a static HTML file of the same size, served by the same app.

Reported: the server-side time of each page (its ``Server-Timing`` header: from the
request reaching the route to the response being built, access record included), the
round trip as the client sees it, and the static page's round trip.

    python bench/bench_console.py [--requests 60] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.report import write_section  # noqa: E402
from tests.servers import free_port  # noqa: E402

PROJECT = "E330100002000"
EVENTS = 2000
TARGET_MS = 300.0
HOST = "127.0.0.1"


def serve(data: str, db: str, port: int, static: str) -> None:
    """The server process: the app ``jianzheng serve`` runs, plus the baseline's folder."""
    import uvicorn
    from fastapi.staticfiles import StaticFiles

    from api.app import create_app
    from ledger.service import Ledger
    from storage.fs import FilesystemStore
    from storage.service import EvidenceStore

    lg = Ledger.open(Path(data), db, "bench.example/log")
    objects = EvidenceStore(FilesystemStore(Path(data) / "objects"), lg.store.engine)
    app = create_app(lg, rate_limit=0, objects=objects)
    app.mount("/bench-static", StaticFiles(directory=static), name="bench-static")
    uvicorn.run(app, host=HOST, port=port, log_level="warning", lifespan="off")


def tender_events() -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """The lawful tender, widened to EVENTS events by more scores (same experts, more
    criteria), in the order a platform would post them."""
    from tests.tender import lawful_tender

    files: dict[str, bytes] = {}
    evs = lawful_tender(PROJECT, files)
    last_score = max(i for i, e in enumerate(evs) if e["type"] == "score_submitted")
    template = evs[last_score]
    extra = []
    for n in range(EVENTS - len(evs)):
        ev = json.loads(json.dumps(template))
        ev["payload"]["criterion"] = f"c{n:04d}"
        ev["idempotency_key"] = f"{PROJECT}-score-{n:04d}"
        extra.append(ev)
    return evs[: last_score + 1] + extra + evs[last_score + 1 :], files


def cpu_ms(pid: int) -> float:
    """CPU time (user + system, all threads) the process has used, in milliseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


def run(requests: int) -> dict[str, Any]:
    from api.auth import create_token
    from ledger.service import Ledger

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        db = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        static = Path(tmp) / "static"
        static.mkdir()
        lg = Ledger.open(data, db, "bench.example/log")
        platform_token = create_token(lg.store, "platform")[1]
        reviewer_token = create_token(lg.store, "reviewer")[1]
        lg.close()
        port = free_port()
        ctx = multiprocessing.get_context("spawn")
        proc = ctx.Process(target=serve, args=(str(data), db, port, str(static)), daemon=True)
        proc.start()
        base = f"http://{HOST}:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or not proc.is_alive():
                    raise RuntimeError("the server did not start")
                time.sleep(0.1)
            evs, files = tender_events()
            auth = {"Authorization": f"Bearer {platform_token}"}
            with httpx.Client(base_url=base, headers=auth, timeout=120) as c:
                for blob in files.values():
                    c.post("/v1/objects", content=blob).raise_for_status()
                for i in range(0, len(evs), 1000):
                    r = c.post("/v1/events:batch", json={"events": evs[i : i + 1000]})
                    assert r.status_code == 201, r.text
            with httpx.Client(base_url=base, timeout=120) as c:
                form = c.get("/sign-in")
                csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
                assert csrf is not None
                r = c.post("/sign-in", data={"csrf": csrf[1], "token": reviewer_token})
                assert r.status_code == 303, r.text
                assert proc.pid is not None
                c0 = cpu_ms(proc.pid)
                page = c.get(f"/projects/{PROJECT}")
                cold_cpu = cpu_ms(proc.pid) - c0
                cold = float(page.headers["server-timing"].split("=")[1])
                assert page.status_code == 200 and page.text.count('class="ev') == EVENTS
                size = len(page.content)
                (static / "timeline.html").write_bytes(page.content)
                server, trip, static_trip = [], [], []
                cpu_page = cpu_static = 0.0
                for _ in range(requests):
                    c0 = cpu_ms(proc.pid)
                    t0 = time.perf_counter()
                    r = c.get(f"/projects/{PROJECT}")
                    trip.append((time.perf_counter() - t0) * 1e3)
                    c1 = cpu_ms(proc.pid)
                    cpu_page += c1 - c0
                    assert r.status_code == 200
                    timing = re.fullmatch(r"app;dur=([0-9.]+)", r.headers["server-timing"])
                    assert timing is not None
                    server.append(float(timing[1]))
                    t0 = time.perf_counter()
                    s = c.get("/bench-static/timeline.html")
                    static_trip.append((time.perf_counter() - t0) * 1e3)
                    cpu_static += cpu_ms(proc.pid) - c1
                    assert s.status_code == 200 and len(s.content) == size
        finally:
            proc.terminate()
            proc.join(30)
    return {
        "requests": requests,
        "page_bytes": size,
        "server_p50": statistics.median(server),
        "server_p95": percentile(server, 95),
        "server_max": max(server),
        "trip_p50": statistics.median(trip),
        "trip_p95": percentile(trip, 95),
        "static_p50": statistics.median(static_trip),
        "static_p95": percentile(static_trip, 95),
        "cpu_page": cpu_page / requests,
        "cold": cold,
        "cold_cpu": cold_cpu,
        "cpu_static": cpu_static / requests,
    }


def report(r: dict[str, Any], load: tuple[float, float], cmd: str) -> str:
    meets = "meets" if r["server_p95"] <= TARGET_MS else "MISSES"
    return f"""
Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores),
Python {platform.python_version()}; load average {load[0]:.2f} when it started, {load[1]:.2f}
when it ended (2 CPUs shared with other work). Command: `{cmd}`.

The timeline page of a {EVENTS:,}-event engineering tender (bids sealed and opened, so
every sealed record is opened for the reviewer), asked {r["requests"]} times one after
another by a reviewer signed in through the console. Each page reads the 2,000 records
and their openings through the API's own read, builds the key facts, takes the rows of
records it has shown before from its row cache (api/console/rows.py; the first view of
the project builds them all, see its line), and appends its
`evidence_accessed` event and waits until it is durable (SQLite WAL,
`synchronous=FULL`). Baseline in the same run: the same bytes
({r["page_bytes"]:,} B) as a static file served by the same process.

| measure | p50 | p95 | max | target |
|---|---|---|---|---|
| timeline, server-side (`Server-Timing`) | {r["server_p50"]:.0f} ms | {r["server_p95"]:.0f} ms | {r["server_max"]:.0f} ms | p95 ≤ {TARGET_MS:.0f} ms: {meets} |
| first view of the project (rows not yet kept), server-side | {r["cold"]:.0f} ms (CPU {r["cold_cpu"]:.0f} ms) | | | |
| timeline, round trip | {r["trip_p50"]:.0f} ms | {r["trip_p95"]:.0f} ms | | |
| static page of the same size, round trip | {r["static_p50"]:.1f} ms | {r["static_p95"]:.1f} ms | | |
| ratio timeline / static (round trip) | {r["trip_p50"] / r["static_p50"]:.1f} | {r["trip_p95"] / r["static_p95"]:.1f} | | |

CPU time of the server process per request (user + system, all its threads, from
`/proc/<pid>/stat`, averaged over the run; independent of how busy the machine is):
timeline **{r["cpu_page"]:.0f} ms**, static page of the same size {r["cpu_static"]:.1f} ms
(ratio {r["cpu_page"] / max(r["cpu_static"], 0.1):.0f}). On a machine this loaded the wall
times stretch by up to the load average over the core count; the CPU time per page is
what to compare between runs.
"""  # noqa: E501


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    before = os.getloadavg()[0]
    r = run(args.requests)
    body = report(
        r, (before, os.getloadavg()[0]), f"python bench/bench_console.py --requests {args.requests}"
    )
    print(body)
    if not args.no_write:
        write_section(
            ROOT / "docs" / "benchmarks.md",
            "console",
            "Console: timeline page of a 2,000-event project",
            body,
        )


if __name__ == "__main__":
    main()
