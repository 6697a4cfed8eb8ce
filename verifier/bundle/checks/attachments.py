"""The attachments check: records, ``attachments.json`` and the files agree."""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from verifier.bundle.format import ATTACHMENTS, FILES_PREFIX, MAX_ATTACHMENTS, BundleError
from verifier.bundle.model import EvidenceBundle, Record
from verifier.bundle.reader import (
    ZIP_ERRORS,
    blocks_from_range,
    blocks_from_stream,
    digest_blocks,
)
from verifier.canonical import CanonicalError, parse_strict_json
from verifier.report_model import CheckList, Problems

_HEX64 = re.compile(r"[0-9a-f]{64}")
T_ATTACH = ("附件", "attachments")


def check_attachments(
    b: EvidenceBundle, out: CheckList, records: list[Record], check_files: bool, workers: int | None
) -> int:
    """Records, ``attachments.json`` and the files agree; returns the bytes re-hashed.

    Each attachment a record cites is listed once with the same size and chunk root, and
    with files included, each file hashes (SHA-256 and chunk root) to what the record says."""
    want: dict[str, tuple[int, str | None, list[int]]] = {}
    problems = Problems()
    overflow = False
    for r in records:
        atts = r.view.get("attachments")
        if not isinstance(atts, list):
            continue
        for a in atts:
            if not isinstance(a, dict):
                continue
            digest = a.get("sha256")
            size = a.get("size")
            root = a.get("chunk_root")
            if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
                problems.append(f"record seq {r.obj.get('seq')}: attachment with bad sha256")
                continue
            have = want.get(digest)
            if have is None:
                if len(want) >= MAX_ATTACHMENTS:
                    if not overflow:
                        problems.append(f"more than {MAX_ATTACHMENTS} distinct attachments")
                    overflow = True
                    continue
                want[digest] = (size if isinstance(size, int) else -1, root, [r.obj["seq"]])
            else:
                if have[0] != size or (root is not None and have[1] not in (None, root)):
                    problems.append(
                        f"record seq {r.obj.get('seq')}: attachment {digest} has another "
                        "size or chunk root than in earlier records"
                    )
                have[2].append(r.obj["seq"])
    listed: dict[str, dict[str, Any]] = {}
    try:
        doc = parse_strict_json(b.member(ATTACHMENTS))
        items = doc.get("attachments") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise CanonicalError("$", "want {'attachments': [...]}")
        for it in items:
            if isinstance(it, dict) and isinstance(it.get("sha256"), str):
                listed[it["sha256"]] = it
    except (KeyError, CanonicalError, BundleError) as e:
        problems.append(f"{ATTACHMENTS} is missing or malformed: {e}")
    for digest, (size, root, seqs) in sorted(want.items()):
        it = listed.pop(digest, None)
        if it is None:
            problems.append(f"attachment {digest} (seq {seqs[0]}) is not in {ATTACHMENTS}")
        elif it.get("size") != size or it.get("chunk_root") != root:
            problems.append(
                f"attachment {digest} (seq {seqs[0]}): {ATTACHMENTS} gives another size or "
                "chunk root than the record"
            )
    for digest in sorted(listed):
        problems.append(f"{ATTACHMENTS} lists {digest}, which no record refers to")

    files_included = bool(b.manifest.get("files_included"))
    hashed = 0
    file_note = ""
    if files_included and check_files:
        results = _hash_files(b, want, workers)
        for digest, (size, root, seqs) in sorted(want.items()):
            name = FILES_PREFIX + digest
            res = results.get(digest)
            where = f"{name} (attachment of seq {', '.join(map(str, seqs[:5]))})"
            if res is None:
                problems.add(
                    f"{where}: the file is missing from the bundle",
                    f"{name}（seq {seqs[0]} 的附件）在证据包中缺失",
                )
                continue
            if isinstance(res, str):
                problems.append(f"{where}: {res}")
                continue
            got_hash, got_size, got_root = res
            hashed += got_size
            if got_hash != digest:
                problems.add(
                    f"{where}: the file's SHA-256 is {got_hash}: it is not the file the "
                    "record refers to (swapped or altered)",
                    f"{name}（seq {seqs[0]} 的附件）的 SHA-256 为 {got_hash}：不是记录所指的"
                    "文件（被替换或改动）",
                )
            elif got_size != size:
                problems.append(f"{where}: {got_size} bytes where the record says {size}")
            elif root is not None and got_root != root:
                problems.add(
                    f"{where}: chunk root {got_root} where the record says {root}",
                    f"{name} 的分块根与记录不符",
                )
        file_note = f"; {len(want)} file(s), {hashed} bytes, re-hashed"
    elif files_included:
        file_note = "; files present but not checked (--skip-files)"
    else:
        file_note = "; files not included (export with files to check their contents)"
    if problems:
        out.failed_on(
            "attachments",
            T_ATTACH,
            problems,
            f"{len(problems)} attachment problem(s); first: ",
            f"附件有 {len(problems)} 处问题；首个：",
        )
    else:
        out.passed(
            "attachments",
            T_ATTACH,
            f"{len(want)} attachment(s) agree between records and {ATTACHMENTS}{file_note}",
            f"{len(want)} 个附件在记录与 {ATTACHMENTS} 中一致"
            + ("，文件已重新计算哈希" if files_included and check_files else ""),
            bytes_hashed=hashed,
        )
    return hashed


def _hash_files(
    b: EvidenceBundle, want: Mapping[str, tuple[int, str | None, list[int]]], workers: int | None
) -> dict[str, tuple[str, int, str] | str]:
    """SHA-256, size and chunk root of every attachment file, hashed in parallel.

    ``hashlib`` releases the GIL on large updates, so threads over separate file
    descriptors use every core; each reads with ``pread`` into its own buffer.
    """
    jobs: list[tuple[str, zipfile.ZipInfo]] = []
    for digest in want:
        info = b.archive.members.get(FILES_PREFIX + digest)
        if info is not None:
            jobs.append((digest, info))

    def one(job: tuple[str, zipfile.ZipInfo]) -> tuple[str, tuple[str, int, str] | str]:
        digest, info = job
        why = b.archive.refusal(info)
        if why is not None:
            return digest, f"not read: it {why}"
        try:
            rng = b.archive.raw_range(info)
            if rng is not None and b.archive.path is not None:
                blocks: Iterator[memoryview] = blocks_from_range(b.archive.path, *rng)
                return digest, digest_blocks(blocks)
            with b.archive.open(info.filename) as f:
                return digest, digest_blocks(blocks_from_stream(f))
        except ZIP_ERRORS as e:
            return digest, f"cannot be read ({e})"

    n = workers if workers is not None else min(4, os.cpu_count() or 1)
    if n <= 1 or b.archive.path is None or len(jobs) <= 1:
        return dict(one(j) for j in jobs)
    # Largest first, so one big file does not start last and leave a core idle.
    jobs.sort(key=lambda j: -j[1].file_size)
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="bundle-hash") as pool:
        return dict(pool.map(one, jobs))
