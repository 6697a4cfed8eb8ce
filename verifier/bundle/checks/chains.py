"""The project's chains: seq and prev links, log order, and the log-signed project head.

The chain alone cannot show a missing tail; the project head (signed by the log key)
states how many records each chain had at the checkpoint and the newest one's hash.
"""

from __future__ import annotations

import base64

from verifier.bundle.format import PROJECT_HEAD, RECORDS, BundleError, ProjectHead
from verifier.bundle.model import BundleCheckpoint, EvidenceBundle, Record
from verifier.note import NoteError, Verifier, parse_note, verified_by
from verifier.report_model import CheckList, Problems

T_CHAIN = ("项目哈希链", "project chain")
T_HEAD = ("项目记录总数声明", "project head")


def check_chain(
    b: EvidenceBundle, out: CheckList, sc: BundleCheckpoint | None, records: list[Record]
) -> None:
    """Each chain (the process chain, and the sealed chain if any) runs seq 0..n-1 with
    every prev linking to the record before it in that chain; the lines follow the log."""
    problems = Problems()
    # chain -> (next seq due, hash of its previous record, that record's line)
    state: dict[bool, tuple[int, bytes, int]] = {}
    last_index = -1
    for r in records:
        o = r.obj
        pos, prev_hash, before_line = state.get(r.sealed, (0, bytes(32), 0))
        seq, idx = o.get("seq"), o.get("index")
        chain = "sealed chain " if r.sealed else ""
        where = f"{RECORDS} line {r.line} ({chain}seq {seq})"
        if seq != pos:
            if isinstance(seq, int) and seq > pos:
                problems.add(
                    f"{where}: seq {seq} where seq {pos} was due: seq {pos}..{seq - 1} "
                    "missing or records reordered",
                    f"第 {r.line} 行应为 seq {pos}，实为 seq {seq}：记录缺失或顺序被调整",
                )
            else:
                problems.add(
                    f"{where}: seq {seq} where seq {pos} was due: a duplicate or a "
                    "record out of order",
                    f"第 {r.line} 行应为 seq {pos}，实为 seq {seq}：记录重复或顺序被调整",
                )
        if o.get("prev") != base64.b64encode(prev_hash).decode():
            before = "the first record must link to zero" if pos == 0 else f"line {before_line}"
            problems.add(
                f"{where}: prev does not link to the hash of the record before it ({before})",
                f"第 {r.line} 行（seq {seq}）的 prev 与前一条记录的哈希不符",
            )
        if isinstance(idx, int):
            if idx <= last_index:
                problems.append(
                    f"{where}: log index {idx} is not after the previous record's {last_index}"
                )
            if sc is not None and idx >= sc.checkpoint.size:
                problems.append(
                    f"{where}: log index {idx} is beyond checkpoint size {sc.checkpoint.size}"
                )
            ref = o.get("checkpoint")
            if isinstance(ref, dict) and isinstance(ref.get("size"), int) and ref["size"] > idx:
                problems.append(
                    f"{where}: refers to checkpoint {ref['size']}, which is not before it"
                )
            last_index = idx
        state[r.sealed] = (pos + 1, r.event_hash, r.line)
    if problems:
        out.failed_on(
            "chain",
            T_CHAIN,
            problems,
            f"{len(problems)} chain problem(s); first: ",
            f"哈希链有 {len(problems)} 处问题；首个：",
        )
    else:
        n = state.get(False, (0, b"", 0))[0]
        sealed = state.get(True, (0, b"", 0))[0]
        extra = f"; sealed chain seq 0..{sealed - 1} likewise" if sealed else ""
        extra_zh = f"；密封链 seq 0..{sealed - 1} 同样连续" if sealed else ""
        out.passed(
            "chain",
            T_CHAIN,
            f"seq 0..{n - 1} contiguous, every prev links to the record before, "
            f"log order follows seq{extra}",
            f"seq 0..{n - 1} 连续，每条记录的 prev 均指向前一条记录，日志顺序与 seq 一致{extra_zh}",
        )


def check_head(
    b: EvidenceBundle,
    out: CheckList,
    sc: BundleCheckpoint | None,
    log: Verifier | None,
    records: list[Record],
) -> ProjectHead | None:
    """Check the project head; return it when it is signed by the log key."""
    try:
        note = parse_note(b.member(PROJECT_HEAD))
        head = ProjectHead.parse_body(note.text)
    except (KeyError, NoteError, BundleError) as e:
        out.add(
            "project_head",
            T_HEAD,
            "fail",
            f"{PROJECT_HEAD} is missing or malformed: {e}",
            f"{PROJECT_HEAD} 缺失或格式错误：{e}",
        )
        return None
    if log is None:
        out.add(
            "project_head",
            T_HEAD,
            "cannot_evaluate",
            "no log key to check the project head's signature with",
            "没有日志密钥，无法核验项目记录总数声明",
        )
        return None
    try:
        signed = log in verified_by(note, [log])
    except NoteError:
        signed = False
    problems = Problems()
    if not signed:
        problems.add(
            f"it is not signed by the log key {log.name} ({log.key_id.hex()})",
            f"未由日志密钥 {log.name}（{log.key_id.hex()}）签名",
        )
    if head.project != b.project or head.origin != log.name:
        problems.append(f"it is about project {head.project!r} of log {head.origin!r}")
    if sc is not None and (
        head.checkpoint_size != sc.checkpoint.size or head.checkpoint_root != sc.checkpoint.root
    ):
        problems.append(
            f"it refers to checkpoint {head.checkpoint_size}, the bundle's is {sc.checkpoint.size}"
        )
    # The head counts the process chain; its ``sealed`` line the sealed chain.
    sealed = [r for r in records if r.sealed]
    records = [r for r in records if not r.sealed]
    signed_sealed = head.sealed or (0, b"")
    if signed_sealed[0] != len(sealed):
        problems.add(
            f"the log says the project had {signed_sealed[0]} sealed records, the bundle "
            f"holds {len(sealed)}: sealed records were removed or added",
            f"日志签名声明项目有 {signed_sealed[0]} 条密封记录，证据包有 {len(sealed)} 条："
            "密封记录被删除或添加",
        )
    elif sealed and sealed[-1].event_hash != signed_sealed[1]:
        problems.append(
            f"the last sealed record (seq {sealed[-1].obj.get('seq')}) is not the one the "
            "log signed as the project's newest sealed record"
        )
    if head.records != len(records):
        if head.records > len(records):
            problems.add(
                f"the log says the project had {head.records} records, the bundle holds "
                f"{len(records)}: records seq {len(records)}..{head.records - 1} are "
                "missing (the bundle was truncated)",
                f"日志签名声明项目有 {head.records} 条记录，证据包只有 {len(records)} 条："
                f"seq {len(records)}..{head.records - 1} 缺失（证据包被截短）",
            )
        else:
            problems.add(
                f"the log says the project had {head.records} records, the bundle holds "
                f"{len(records)}: {len(records) - head.records} were added",
                f"日志签名声明项目有 {head.records} 条记录，证据包却有 {len(records)} 条："
                f"多出 {len(records) - head.records} 条",
            )
    elif records and records[-1].event_hash != head.last_event_hash:
        problems.append(
            f"the last record (seq {records[-1].obj.get('seq')}) is not the one the log "
            "signed as the project's newest"
        )
    if problems:
        out.failed_on(
            "project_head",
            T_HEAD,
            problems,
            "project head: ",
            "项目记录总数声明不符：",
        )
    else:
        out.passed(
            "project_head",
            T_HEAD,
            f"the log signed that project {head.project} had exactly {head.records} records "
            f"at checkpoint {head.checkpoint_size}, the last being the bundle's last"
            + (f", and {len(sealed)} sealed records" if sealed else ""),
            f"日志签名声明项目 {head.project} 在规模为 {head.checkpoint_size} 的检查点时恰有 "
            f"{head.records} 条记录，最后一条与证据包一致",
        )
    return head if signed else None
