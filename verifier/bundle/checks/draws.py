"""The draw tree heads check: each expert draw used the log's own root at its checkpoint_size.

An expert draw (docs/formats.md, "Expert draws") derives its result from the tree head at
``checkpoint_size``, fixed in its ``draw_committed`` record before the log reached it. The
result (``expert_drawn``) states the root it used (``checkpoint_root``). ``draw-heads.jsonl``
carries, per size, the root and an RFC 9162 consistency proof from that size to the bundle's
checkpoint, which the log signed and the witness check holds to the quorum: the root at that
size is then the only one the witnessed log can have there, and a draw citing another root
used a tree head that is not the log's (an integrity failure: the input is not the log's).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from verifier import merkle
from verifier.bundle.format import DRAW_HEADS, MAX_RECORDS
from verifier.bundle.model import BundleCheckpoint, EvidenceBundle, Record, record_place
from verifier.canonical import CanonicalError, parse_strict_json
from verifier.report_model import CheckList, Problems

T_DRAW_HEADS = ("抽取树头", "draw tree heads")


def _rec(r: Record) -> Mapping[str, Any]:
    return r.view or r.obj


def _payload(r: Record) -> Mapping[str, Any]:
    p = _rec(r).get("payload")
    return p if isinstance(p, dict) else {}


def _size_of(r: Record) -> int | None:
    n = _payload(r).get("checkpoint_size")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None


def _read_heads(b: EvidenceBundle, problems: Problems) -> dict[int, tuple[bytes, list[bytes]]]:
    """``draw-heads.jsonl``: size -> (root, consistency proof to the bundle's checkpoint)."""
    heads: dict[int, tuple[bytes, list[bytes]]] = {}
    if DRAW_HEADS not in b.archive.members:
        return heads
    for n, line in enumerate(b.member_lines(DRAW_HEADS, problems), 1):
        if n > MAX_RECORDS:
            problems.append(f"{DRAW_HEADS}: more than {MAX_RECORDS} lines")
            break
        try:
            doc = parse_strict_json(line or b"")
            if not isinstance(doc, dict) or set(doc) != {"size", "root", "consistency_proof"}:
                raise CanonicalError("$", 'want {"size", "root", "consistency_proof"}')
            size, proof = doc["size"], doc["consistency_proof"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise CanonicalError("size", "not a positive integer")
            if not isinstance(proof, list) or len(proof) > 128:
                raise CanonicalError("consistency_proof", "not a list of at most 128 hashes")
            root = base64.b64decode(str(doc["root"]), validate=True)
            hashes = [base64.b64decode(str(h), validate=True) for h in proof]
            if len(root) != 32 or any(len(h) != 32 for h in hashes):
                raise CanonicalError("root", "hashes must be 32 bytes")
        except (CanonicalError, binascii.Error) as e:
            problems.append(f"{DRAW_HEADS} line {n}: malformed ({e})")
            continue
        if size in heads:
            problems.append(f"{DRAW_HEADS} line {n}: a second tree head of size {size}")
            continue
        heads[size] = (root, hashes)
    return heads


def check_draw_heads(
    b: EvidenceBundle, out: CheckList, sc: BundleCheckpoint | None, records: list[Record]
) -> None:
    """Each draw's tree head is pinned to the bundle's checkpoint, and each result's
    ``checkpoint_root`` is that head's root (docs/bundle-format.md, ``draw-heads.jsonl``).

    No check is reported for a project without draws."""
    commits = [r for r in records if _rec(r).get("type") == "draw_committed"]
    if not commits and DRAW_HEADS not in b.archive.members:
        return
    if sc is None:
        out.add(
            "draw_heads",
            T_DRAW_HEADS,
            "cannot_evaluate",
            "no readable checkpoint to pin the draws' tree heads to",
            "没有可读的检查点，无法确定抽取所用的树头",
        )
        return
    cp = sc.checkpoint
    problems = Problems()
    heads = _read_heads(b, problems)
    sizes: dict[str, int] = {}  # draw_id -> checkpoint_size
    for r in commits:
        n = _size_of(r)
        did = _payload(r).get("draw_id")
        if n is not None and isinstance(did, str):
            sizes.setdefault(did, n)
    pinned: dict[int, bytes] = {}
    for n, (root, proof) in sorted(heads.items()):
        if n not in sizes.values():
            problems.append(f"{DRAW_HEADS}: a tree head of size {n}, which no draw names")
            continue
        if n > cp.size:
            problems.append(
                f"{DRAW_HEADS}: a tree head of size {n}, beyond the bundle's checkpoint {cp.size}"
            )
            continue
        try:
            merkle.verify_consistency(n, cp.size, proof, root, cp.root)
        except merkle.ProofError as e:
            problems.add(
                f"the tree head of size {n} in {DRAW_HEADS} is not consistent with the "
                f"signed checkpoint {cp.size} ({e}): that root is not the log's",
                f"{DRAW_HEADS} 中规模为 {n} 的树头与已签名的检查点 {cp.size} 不一致："
                "该根哈希不属于本日志",
            )
            continue
        pinned[n] = root
    results = 0
    for r in records:
        if _rec(r).get("type") != "expert_drawn" or _payload(r).get("method") != "random":
            continue
        did = _payload(r).get("draw_id")
        n = sizes.get(did) if isinstance(did, str) else None
        if n is None:
            continue  # no committed draw: the rules (E08) report it
        results += 1
        where = record_place(r)
        recorded = _payload(r).get("checkpoint_root")
        if n > cp.size:
            problems.add(
                f"{where}: the draw {did} uses the tree head at size {n}, which the log had "
                f"not reached at the bundle's checkpoint {cp.size}",
                f"{where}：抽取 {did} 使用规模为 {n} 的树头，"
                f"而证据包检查点 {cp.size} 时日志尚未达到该规模",
            )
            continue
        at = pinned.get(n)
        if at is None:
            if n not in heads:
                problems.add(
                    f"{where}: the bundle carries no tree head of size {n} for draw {did}, so "
                    "its checkpoint_root cannot be checked against the log",
                    f"{where}：证据包未附抽取 {did} 所用规模为 {n} 的树头，"
                    "无法核对 checkpoint_root",
                )
            continue
        if not isinstance(recorded, str) or recorded != at.hex():
            problems.add(
                f"{where}: the draw {did} used checkpoint_root {str(recorded)[:64]}, but the "
                f"log's root at size {n} is {at.hex()}: the draw's input is not the log's "
                "tree head",
                f"{where}：抽取 {did} 所用的 checkpoint_root 与日志在规模 {n} 处的根哈希 "
                f"{at.hex()} 不符：推导输入并非本日志的树头",
            )
    if problems:
        out.failed_on(
            "draw_heads",
            T_DRAW_HEADS,
            problems,
            f"{len(problems)} draw tree head problem(s); first: ",
            f"{len(problems)} 处抽取树头问题；首个：",
        )
        return
    out.add(
        "draw_heads",
        T_DRAW_HEADS,
        "pass" if sc.verified else "fail",
        f"{len(pinned)} draw tree head(s) are consistent with the signed checkpoint "
        f"{cp.size}, and {results} draw result(s) use the log's root at their size"
        + ("" if sc.verified else " (the checkpoint's signature itself did not verify)"),
        f"{len(pinned)} 个抽取树头与已签名的检查点 {cp.size} 一致，{results} 个抽取结果"
        "使用了日志在相应规模处的根哈希",
    )
