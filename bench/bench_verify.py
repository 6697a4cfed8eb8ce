"""Evidence-bundle verification benchmark (issue: verifier and evidence bundles).

Builds a real ledger (SQLite) holding one project of --events events (default 10,000) whose
records cite --files attachment files totalling --attachment-bytes (default 1 GiB), exports
the project's bundle with the files, then verifies it offline with a trust file, and
reports:

  1. attachment bytes hashed per second while verifying (SHA-256 and the 1 MiB chunk
     root of every file, on --workers threads), as a ratio to plain ``hashlib.sha256`` of
     the same number of bytes from memory, single-threaded, measured in the same run
     (target >= 0.7); the single-threaded figure is reported beside it;
  2. records verified per second: canonical form, hash, inclusion proof against the
     bundle's checkpoint and the project chain, for every record;
  3. for context, the export rate and the process-rule evaluation time.

The bundle is read from the page cache (it was just written); the figures are CPU-bound.

    python bench/bench_verify.py [--events 10000] [--attachment-bytes 1GiB] [--files 64]
                                 [--workers N] [--repeat 3] [--no-write]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from ledger.bundle import BundleSources, plan_bundle, write_bundle  # noqa: E402
from ledger.records import validate_event  # noqa: E402
from ledger.service import Ledger  # noqa: E402
from tests.tender import EXPERTS, at, lawful_tender  # noqa: E402
from verifier.bundle import verify_bundle  # noqa: E402
from verifier.chunks import ChunkTree  # noqa: E402
from verifier.trust import TrustPolicy  # noqa: E402

PROJECT = "E330100BENCH01"
BLOCK = 1 << 20


def parse_size(text: str) -> int:
    units = {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "k": 1 << 10, "m": 1 << 20}
    t = text.strip().lower()
    for suffix, mult in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if t.endswith(suffix):
            return int(float(t[: -len(suffix)]) * mult)
    return int(t)


def make_files(directory: Path, total: int, count: int) -> dict[str, tuple[Path, int, str]]:
    """``count`` files of random bytes totalling ``total``: sha256 -> (path, size, root)."""
    import base64

    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(5)
    out: dict[str, tuple[Path, int, str]] = {}
    size = total // count
    for i in range(count):
        n = size if i < count - 1 else total - size * (count - 1)
        tree = ChunkTree()
        path = directory / f"f{i}"
        with open(path, "wb") as f:
            left = n
            while left:
                block = rng.randbytes(min(16 << 20, left))
                tree.update(block)
                f.write(block)
                left -= len(block)
        sha, _, root, _ = tree.finish()
        final = directory / sha.hex()
        path.rename(final)
        out[sha.hex()] = (final, n, base64.b64encode(root).decode())
    return out


def project_events(n: int, files: dict[str, tuple[Path, int, str]]) -> list[dict[str, Any]]:
    """The lawful tender, padded with score sheets up to ``n`` events; files on score sheets."""
    import base64

    bids: dict[str, bytes] = {}
    base = lawful_tender(PROJECT, bids)
    for sha, data in bids.items():  # the bid files go to storage like the others
        path = next(iter(files.values()))[0].parent / sha
        path.write_bytes(data)
        tree = ChunkTree()
        tree.update(data)
        files[sha] = (path, len(data), base64.b64encode(tree.finish()[2]).decode())
    cut = next(i for i, e in enumerate(base) if e["type"] == "evaluation_report_signed")
    filler: list[dict[str, Any]] = []
    digests = [d for d in files if d not in bids]
    for k in range(max(0, n - len(base))):
        ev: dict[str, Any] = {
            "project": PROJECT,
            "trade_type": "engineering",
            "type": "score_submitted",
            "actor": {"id": EXPERTS[k % 5], "role": "expert"},
            "occurred_at": at(3, 26, 10, k % 60),
            "payload": {
                "expert_id": EXPERTS[k % 5],
                "bidder": f"91330100MA{27001 + k % 5:08d}",
                "criterion": f"c{k // 5:05d}",
                "score": f"{60 + k % 40}.00",
            },
        }
        if k < len(digests):
            sha = digests[k]
            ev["attachments"] = [
                {
                    "sha256": sha,
                    "size": files[sha][1],
                    "media_type": "application/pdf",
                    "name": f"score-sheet-{k}.pdf",
                }
            ]
        filler.append(ev)
    return base[:cut] + filler + base[cut:]


def post(lg: Ledger, events: list[dict[str, Any]], files: dict[str, tuple[Path, int, str]]) -> None:
    import dataclasses

    subs = []
    for e in events:
        ev = validate_event(e, lg.catalogue)
        if ev.attachments:
            atts = tuple(
                dataclasses.replace(a, chunk_root=files[a.sha256][2]) for a in ev.attachments
            )
            ev = dataclasses.replace(ev, attachments=atts)
        subs.append(ev)
    for i in range(0, len(subs), 1000):
        lg.append(subs[i : i + 1000], "bench").result(timeout=120)


def baseline_sha256(total: int) -> float:
    """Bytes/s of hashlib.sha256 over ``total`` bytes from memory, 1 MiB updates, one thread."""
    buf = random.Random(7).randbytes(64 << 20)
    view = memoryview(buf)
    h = hashlib.sha256()
    t0 = time.perf_counter()
    done = 0
    while done < total:
        for off in range(0, len(buf), BLOCK):
            if done >= total:
                break
            n = min(BLOCK, total - done)
            h.update(view[off : off + n])
            done += n
    return total / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--attachment-bytes", default="1GiB")
    ap.add_argument("--files", type=int, default=64)
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the best counts")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args()
    total = parse_size(args.attachment_bytes)
    if args.files < 1 or args.events < args.files + 50 or args.repeat < 1:
        ap.error("need at least one file, --events >= --files + 50 and --repeat >= 1")

    tmp = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    try:
        t0 = time.perf_counter()
        files = make_files(tmp / "objects", total, args.files)
        t_files = time.perf_counter() - t0
        lg = Ledger.open(tmp / "data", f"sqlite:///{tmp / 'ledger.db'}", "bench.test/log")
        try:
            events = project_events(args.events, files)
            t0 = time.perf_counter()
            post(lg, events, files)
            t_post = time.perf_counter() - t0
            sources = BundleSources(open_object=lambda sha: open(files[sha][0], "rb"))
            t0 = time.perf_counter()
            plan = plan_bundle(lg, PROJECT, sources, with_files=True)
            bundle = tmp / "bundle.zip"
            size = write_bundle(plan, bundle, sources)
            t_export = time.perf_counter() - t0
            trust = TrustPolicy(lg.signer.verifier)
        finally:
            lg.close()
        shutil.rmtree(tmp / "objects")  # the verifier reads only the bundle

        # The machine is shared: every figure is the best of --repeat runs, the baseline too.
        base = max(baseline_sha256(total) for _ in range(args.repeat))
        t0 = time.perf_counter()
        rep = verify_bundle(bundle, trust, workers=args.workers)
        t_verify = time.perf_counter() - t0
        if not rep.ok:
            bad = [(c.id, c.message) for c in rep.checks if c.status != "pass" and c.required]
            print(f"verification failed: {bad}", file=sys.stderr)
            return 1
        t_rules = t_verify - rep.timings["records_seconds"] - rep.timings["files_seconds"]
        runs = [rep] + [
            verify_bundle(bundle, trust, workers=args.workers, rules=False)
            for _ in range(args.repeat - 1)
        ]
        runs1 = [verify_bundle(bundle, trust, workers=1, rules=False) for _ in range(args.repeat)]
        files_rate = max(r.timings["files_bytes"] / r.timings["files_seconds"] for r in runs)
        files_rate1 = max(r.timings["files_bytes"] / r.timings["files_seconds"] for r in runs1)
        records_rate = max(r.records / r.timings["records_seconds"] for r in runs + runs1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ratio = files_rate / base
    ratio1 = files_rate1 / base
    mib = 1 << 20
    cmd = (
        f"python bench/bench_verify.py --events {args.events} --attachment-bytes "
        f"{args.attachment_bytes} --files {args.files} --workers {args.workers} "
        f"--repeat {args.repeat}"
    )
    rows = [
        ("project", f"{rep.records} records, {args.files} files, {total / mib:,.0f} MiB"),
        ("bundle", f"{size / mib:,.0f} MiB zip; exported in {t_export:.1f} s "
                   f"({size / mib / t_export:,.0f} MiB/s)"),
        ("baseline: hashlib.sha256, memory, 1 thread", f"{base / mib:,.0f} MiB/s"),
        (f"attachments verified (SHA-256 + chunk root), {args.workers} threads",
         f"{files_rate / mib:,.0f} MiB/s, ratio {ratio:.2f} (target >= 0.7)"),
        ("attachments verified, 1 thread", f"{files_rate1 / mib:,.0f} MiB/s, ratio {ratio1:.2f}"),
        ("SHA-256 work done per second, 1 thread (2 hashes per attachment byte)",
         f"{2 * files_rate1 / mib:,.0f} MiB/s, ratio {2 * ratio1:.2f}"),
        ("records verified (hash, inclusion proof, chain)",
         f"{records_rate:,.0f} records/s ({rep.timings['records_seconds']:.2f} s)"),
        ("process rules", f"{t_rules:.2f} s"),
        ("whole verification", f"{t_verify:.1f} s"),
    ]  # fmt: skip
    print(f"setup: files {t_files:.1f} s, {args.events} events posted in {t_post:.1f} s")
    for k, v in rows:
        print(f"{k:<62} {v}")
    if not args.no_write:
        body = "\n".join(
            [
                f"Command: `{cmd}`  ",
                f"Machine: {platform.processor() or platform.machine()}, "
                f"{os.cpu_count()} CPUs, Python {platform.python_version()}.",
                "",
                "| measure | result |",
                "|---|---|",
                *[f"| {k} | {v} |" for k, v in rows],
                "",
                "Attachment throughput counts every attachment byte once and includes reading",
                "it from the zip (page cache) and computing both its SHA-256 and its 1 MiB chunk",
                "root: two SHA-256 passes per byte, so one thread cannot exceed about 0.5 of",
                "plain SHA-256; the row after it counts both passes and shows the verifier's",
                "own overhead. Files are hashed on worker threads (`hashlib` releases the GIL),",
                "which reaches the target only when the second core is free: this machine is",
                "shared, and other sessions' tests and benchmarks were running. The ratio",
                "divides by one thread of plain SHA-256 over the same number of bytes in",
                "memory. Each figure, the baseline included, is the best of `--repeat` runs.",
                "Records/s covers parsing, canonical form, hashing, the RFC 9162 inclusion",
                "proof and the chain link of every record.",
            ]
        )
        write_section(
            ROOT / "docs" / "benchmarks.md", "verify", "Evidence-bundle verification", body
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
