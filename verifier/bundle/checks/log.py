"""Checks against the log: the source of trust, the checkpoint's signature, inclusion proofs.

RFC 6962 / RFC 9162 inclusion proofs in C2SP tlog-proof form, against the bundle's
checkpoint, a C2SP signed note whose key comes from the trust file (or, loudly, from
the bundle itself).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from verifier import merkle
from verifier.bundle.format import CHECKPOINT, MAX_RECORDS, PROOFS, RECORDS, BundleError
from verifier.bundle.model import BundleCheckpoint, EvidenceBundle, Record
from verifier.canonical import CanonicalError, parse_strict_json
from verifier.checkpoint import Checkpoint, CheckpointError, TlogProof
from verifier.note import NoteError, Verifier, parse_note, parse_vkey, verified_by
from verifier.receipt import entry_leaf_hash
from verifier.report_model import MAX_DETAILS, CheckList, CheckStatus, Problems
from verifier.trust import TrustPolicy

T_TRUST = ("信任来源", "source of trust")
T_LOG = ("日志签名", "log signature")
T_INCLUSION = ("包含证明", "inclusion proofs")
#: The trust anchor of a bundle whose trust check could not be completed: none.
NO_TRUST: tuple[Verifier | None, tuple[Verifier, ...], int] = (None, (), 0)


def _object(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``doc[key]`` if it is a JSON object, else an empty one: hostile JSON has any shape."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def trust_anchor(
    b: EvidenceBundle, out: CheckList, trust: TrustPolicy | None, allow_untrusted: bool
) -> tuple[Verifier | None, tuple[Verifier, ...], int]:
    """The log key, witness keys and quorum to check against: the trust file's, or
    without one the bundle's own, with a check saying loudly that nothing is anchored."""
    m = b.manifest
    if trust is not None:
        claimed = _object(m, "log").get("verifier_key")
        note = ""
        if isinstance(claimed, str) and claimed != trust.log.vkey:
            note = f"; the bundle names another log key ({claimed[:60]}...), which is ignored"
        out.passed(
            "trust",
            T_TRUST,
            f"keys and witness policy come from the trust file: log {trust.log.name} "
            f"({trust.log.key_id.hex()}), {trust.quorum} of {len(trust.witnesses)} "
            f"witness(es){note}",
            f"密钥与见证策略取自信任文件：日志 {trust.log.name}（{trust.log.key_id.hex()}），"
            f"须 {len(trust.witnesses)} 个见证人中的 {trust.quorum} 个联署",
        )
        return trust.log, trust.witnesses, trust.quorum
    # No trust file: use what the bundle claims, and say so loudly.
    log: Verifier | None = None
    witnesses: list[Verifier] = []
    quorum = 0
    try:
        log = parse_vkey(str(_object(m, "log").get("verifier_key", "")))
        wp = _object(m, "witnesses")
        keys = wp.get("verifier_keys", [])
        if not isinstance(keys, list):
            raise ValueError("witnesses.verifier_keys is not a list")
        witnesses = [parse_vkey(str(v)) for v in keys[:64]]
        quorum = int(wp.get("quorum", 0))
    except (NoteError, TypeError, ValueError, AttributeError) as e:
        out.add(
            "trust",
            T_TRUST,
            "fail",
            f"no trust file, and the keys the bundle names cannot be read: {e}",
            f"未提供信任文件，且包内声明的密钥无法解析：{e}",
        )
        return None, (), 0
    status: CheckStatus = "warn" if allow_untrusted else "fail"
    out.add(
        "trust",
        T_TRUST,
        status,
        "NO TRUST FILE: only internal consistency was checked. The log and witness keys "
        "were taken from the bundle itself, so a bundle forged and re-signed with other "
        "keys would pass these checks. Verify with --trust FILE holding the keys you "
        "obtained independently.",
        "未提供信任文件：仅检查了证据包的内部一致性。日志与见证人密钥取自证据包本身，"
        "用其他密钥伪造并重新签名的证据包同样能通过这些检查。请使用独立获得的密钥，"
        "以 --trust 文件重新验证。",
        # Accepted (--no-trust): reported as a warning, not counted against the result.
        required=not allow_untrusted,
    )
    return log, tuple(witnesses), min(quorum, len(witnesses))


def check_checkpoint(
    b: EvidenceBundle, out: CheckList, log: Verifier | None
) -> BundleCheckpoint | None:
    """The checkpoint is a signed note (C2SP signed-note) under the log key's name."""
    try:
        text = b.member(CHECKPOINT).decode("utf-8")
        note = parse_note(text)
        cp = Checkpoint.parse_body(note.text)
    except (KeyError, UnicodeDecodeError, NoteError, CheckpointError, BundleError) as e:
        out.add(
            "log_signature",
            T_LOG,
            "fail",
            f"{CHECKPOINT} is missing or malformed: {e}",
            f"{CHECKPOINT} 缺失或格式错误：{e}",
        )
        return None
    sc = BundleCheckpoint(cp, note, text)
    if log is None:
        out.add(
            "log_signature",
            T_LOG,
            "cannot_evaluate",
            "no log key to check the checkpoint signature with",
            "没有可用于核验检查点签名的日志密钥",
        )
        return sc
    try:
        ok = log in verified_by(note, [log])
    except NoteError as e:
        out.add(
            "log_signature",
            T_LOG,
            "fail",
            f"checkpoint of size {cp.size}: the signature under the log key's name does "
            f"not verify ({e}): the checkpoint was altered",
            f"规模为 {cp.size} 的检查点上日志密钥名下的签名无效：检查点已被改动",
        )
        return sc
    if not ok:
        out.add(
            "log_signature",
            T_LOG,
            "fail",
            f"checkpoint of size {cp.size} is not signed by the log key {log.name} "
            f"({log.key_id.hex()}): the bundle comes from another log or was re-signed",
            f"规模为 {cp.size} 的检查点不是由日志密钥 {log.name}（{log.key_id.hex()}）签名："
            "证据包来自其他日志或被重新签名",
        )
        return sc
    if cp.origin != log.name:
        out.add(
            "log_signature",
            T_LOG,
            "fail",
            f"checkpoint origin {cp.origin!r} is not the log key's name {log.name!r}",
            f"检查点的来源 {cp.origin!r} 与日志密钥名称 {log.name!r} 不符",
        )
        return sc
    sc.verified = True
    out.passed(
        "log_signature",
        T_LOG,
        f"checkpoint {cp.origin} of size {cp.size} is signed by the log key {log.key_id.hex()}",
        f"规模为 {cp.size} 的检查点由日志密钥 {log.key_id.hex()} 签名",
        checkpoint_size=cp.size,
        checkpoint_root=base64.b64encode(cp.root).decode(),
    )
    return sc


def check_inclusion(
    b: EvidenceBundle, out: CheckList, sc: BundleCheckpoint | None, records: list[Record]
) -> None:
    """Each record's inclusion proof (C2SP tlog-proof, RFC 9162 §2.1.3) leads from its
    leaf to the bundle's signed root; one proof per record, none left over."""
    if sc is None:
        out.add(
            "inclusion",
            T_INCLUSION,
            "cannot_evaluate",
            "no readable checkpoint to check inclusion against",
            "没有可读的检查点，无法核验包含证明",
        )
        return
    # Keyed by log index: a project's two chains (process and sealed) share seq numbers.
    proofs: dict[int, tuple[int, str]] = {}
    problems = Problems()
    try:
        for n, line in enumerate(b.member_lines(PROOFS, problems), 1):
            if len(proofs) > MAX_RECORDS:
                problems.append(f"{PROOFS}: more than {MAX_RECORDS} proofs")
                break
            try:
                p = parse_strict_json(line or b"")
                if not isinstance(p, dict):
                    raise CanonicalError("$", "not an object")
                seq, idx, text = p["seq"], p["index"], p["tlog_proof"]
                if not isinstance(seq, int) or not isinstance(text, str):
                    raise CanonicalError("$", "seq and tlog_proof have wrong types")
                if not isinstance(idx, int) or isinstance(idx, bool):
                    raise CanonicalError("index", "not an integer")
            except (CanonicalError, KeyError) as e:
                problems.append(f"{PROOFS} line {n}: malformed ({e})")
                continue
            if idx in proofs:
                problems.append(
                    f"{PROOFS} line {n}: a second proof for log index {idx} (seq {seq})"
                )
                continue
            proofs[idx] = (seq, text)
    except KeyError:
        problems.append(f"{PROOFS} is missing")
    cp = sc.checkpoint
    verified = 0
    for r in records:
        seq = r.obj.get("seq")
        idx = r.obj.get("index")
        where = f"record seq {seq} (log index {idx}, {RECORDS} line {r.line})"
        got = proofs.pop(idx, None) if isinstance(idx, int) else None
        if got is None:
            problems.add(f"{where}: no inclusion proof in {PROOFS}", f"记录 seq {seq} 没有包含证明")
            continue
        p_seq, text = got
        try:
            tp = TlogProof.parse(text)
        except CheckpointError as e:
            problems.append(f"{where}: malformed tlog-proof ({e})")
            continue
        if tp.checkpoint_text != sc.text:
            problems.add(
                f"{where}: its proof is against another checkpoint",
                f"记录 seq {seq} 的证明指向另一个检查点",
            )
            continue
        if tp.index != idx or p_seq != seq:
            problems.append(f"{where}: its proof is for log index {tp.index} (seq {p_seq})")
            continue
        try:
            merkle.verify_inclusion(
                tp.index, cp.size, entry_leaf_hash(r.event_hash), tp.hashes, cp.root
            )
        except merkle.ProofError as e:
            problems.add(
                f"{where}: not in the log at checkpoint {cp.size}: the record's hash does "
                f"not lead to the signed root, so the record was altered or never logged "
                f"({e})",
                f"记录 seq {seq}（日志序号 {idx}）的哈希无法推导出已签名的根：记录被改动或从未登记",
            )
            continue
        verified += 1
    for idx in sorted(proofs)[:MAX_DETAILS]:
        problems.append(
            f"{PROOFS}: a proof for log index {idx} (seq {proofs[idx][0]}), which has no record"
        )
    if problems:
        out.failed_on(
            "inclusion",
            T_INCLUSION,
            problems,
            f"{len(problems)} inclusion problem(s); first: ",
            f"{len(problems)} 处包含证明问题；首个：",
        )
    else:
        suffix = "" if sc.verified else " (the checkpoint's signature itself did not verify)"
        out.add(
            "inclusion",
            T_INCLUSION,
            "pass" if sc.verified else "fail",
            f"all {verified} records are in the log under checkpoint {cp.size}{suffix}",
            f"全部 {verified} 条记录均包含在规模为 {cp.size} 的日志检查点中",
        )
