"""Poster checks: signatures over the records, and each key the one its poster registered."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from verifier.bundle.format import POSTERS, PROJECT_HEAD, BundleError, ProjectHead
from verifier.bundle.model import EvidenceBundle, Record, failure_of, record_place
from verifier.canonical import CanonicalError, parse_strict_json
from verifier.poster import (
    PosterSignatureError,
    RegisteredKey,
    check_registered_key,
    verify_record_signature,
)
from verifier.report_model import MAX_DETAILS, CheckList, Problems

T_POSTER_SIG = ("提交方签名", "poster signatures")
T_POSTER_KEYS = ("提交方登记密钥", "poster keys")


def check_poster_signatures(b: EvidenceBundle, out: CheckList, records: list[Record]) -> None:
    """Every ``poster_signature`` must verify over its record; name the keys that signed."""
    problems = Problems()
    failures: list[dict[str, Any]] = []
    signers: dict[str, int] = {}
    unsigned = 0
    for r in records:
        if r.unopened:
            continue  # a sealed record's signature is committed to, not shown
        ps = r.view.get("poster_signature")
        if ps is None:
            unsigned += 1
            continue
        try:
            verify_record_signature(r.view)
        except PosterSignatureError as e:
            where = record_place(r)
            problems.add(
                f"{where}: the poster's signature does not verify: {e}",
                f"记录 seq {r.obj.get('seq')} 的提交方签名无效：{e}",
            )
            failures.append(failure_of(r, e))
            continue
        key = str(ps["public_key"])
        signers[key] = signers.get(key, 0) + 1
    signed = sum(signers.values())
    keys = [{"public_key": k, "records": n} for k, n in sorted(signers.items())]
    extra: dict[str, Any] = {"signers": keys, "unsigned": unsigned}
    if problems:
        out.failed_on(
            "poster_signatures",
            T_POSTER_SIG,
            problems,
            f"{len(problems)} poster signature(s) do not verify; first: ",
            f"{len(problems)} 条记录的提交方签名无效；首个：",
            failures=failures[:MAX_DETAILS],
            **extra,
        )
        return
    named = ", ".join(f"{k} ({n})" for k, n in sorted(signers.items()))
    out.passed(
        "poster_signatures",
        T_POSTER_SIG,
        f"{signed} record(s) carry a valid poster signature, {unsigned} unsigned"
        + (f"; signed by {len(signers)} key(s): {named}" if signers else ""),
        f"{signed} 条记录的提交方签名有效，{unsigned} 条未签名"
        + (f"；签名密钥 {len(signers)} 个" if signers else ""),
        **extra,
    )


def check_poster_keys(
    b: EvidenceBundle, out: CheckList, records: list[Record], head: ProjectHead | None
) -> None:
    """Each record's key must be the one its poster registered for that log index."""
    if POSTERS not in b.archive.members:
        if head is not None and head.posters_sha256 is not None:
            out.add(
                "poster_keys",
                T_POSTER_KEYS,
                "fail",
                f"the log signed a poster registry in {PROJECT_HEAD}, but {POSTERS} was "
                "removed from the bundle",
                f"日志在 {PROJECT_HEAD} 中签名了提交方登记，但 {POSTERS} 已被移除",
            )
            return
        out.add(
            "poster_keys",
            T_POSTER_KEYS,
            "warn",
            f"the bundle has no {POSTERS} (an older export): the keys in the records were "
            "not compared with the posters' registered keys",
            f"证据包未附 {POSTERS}（旧版导出）：未将记录中的密钥与提交方登记的密钥比对",
            required=False,
        )
        return
    try:
        raw = b.member(POSTERS)
        posters, keys = _parse_posters(raw)
    except (BundleError, CanonicalError) as e:
        out.add(
            "poster_keys",
            T_POSTER_KEYS,
            "fail",
            f"{POSTERS} is malformed: {e}",
            f"{POSTERS} 格式错误：{e}",
        )
        return
    if head is None or head.posters_sha256 != hashlib.sha256(raw).digest():
        out.add(
            "poster_keys",
            T_POSTER_KEYS,
            "fail",
            f"{POSTERS} is not the registry the log signed in {PROJECT_HEAD}: it was "
            "replaced or altered (or the project head is not signed by the log)",
            f"{POSTERS} 与日志在 {PROJECT_HEAD} 中签名的登记不符：已被替换或改动",
        )
        return
    problems = Problems()
    failures: list[dict[str, Any]] = []
    for r in records:
        seq = r.obj.get("seq")
        poster = posters.get((r.sealed, seq)) if isinstance(seq, int) else None
        if poster is None:
            problems.append(f"{record_place(r)}: {POSTERS} names no poster for it")
            continue
        if r.unopened:
            continue  # which key signed it is sealed with it
        try:
            check_registered_key(r.view, keys.get(poster, ()))
        except PosterSignatureError as e:
            problems.add(
                f"{record_place(r)}, posted by {poster}: {e}",
                f"记录 seq {seq}（提交方 {poster}）未按其登记的密钥签名：{e}",
            )
            failures.append({**failure_of(r, e), "poster": poster})
    if problems:
        out.failed_on(
            "poster_keys",
            T_POSTER_KEYS,
            problems,
            f"{len(problems)} record(s) not signed as their poster registered; first: ",
            f"{len(problems)} 条记录未按提交方登记的密钥签名；首个：",
            failures=failures[:MAX_DETAILS],
        )
        return
    used = sorted(set(posters.values()))
    out.passed(
        "poster_keys",
        T_POSTER_KEYS,
        f"every record is signed (or unsigned) as its poster's registration at that log "
        f"index requires; {len(used)} poster(s), "
        f"{sum(len(keys.get(u, ())) for u in used)} registered key(s)",
        f"每条记录的签名均符合其提交方在该日志序号时登记的密钥；提交方 {len(used)} 个",
        posters=[
            {
                "poster": u,
                "keys": [base64.b64encode(k.public_key).decode() for k in keys.get(u, ())],
            }
            for u in used
        ],
    )


def _parse_posters(
    raw: bytes,
) -> tuple[dict[tuple[bool, int], str], dict[str, list[RegisteredKey]]]:
    """``posters.json``: (in the sealed chain, seq) -> poster, and poster -> its keys."""
    doc = parse_strict_json(raw)
    items = doc.get("posters") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise BundleError('want {"posters": [...]}')
    by_seq: dict[tuple[bool, int], str] = {}
    keys: dict[str, list[RegisteredKey]] = {}
    for i, it in enumerate(items):
        where = f"posters[{i}]"
        if not isinstance(it, dict) or not isinstance(it.get("poster"), str):
            raise BundleError(f"{where}: want an object naming its poster")
        poster = it["poster"]
        seqs, regs = it.get("records"), it.get("keys")
        if poster in keys or not isinstance(seqs, list) or not isinstance(regs, list):
            raise BundleError(f"{where}: a poster once, with lists records and keys")
        sealed = it.get("sealed_records", [])
        if not isinstance(sealed, list):
            raise BundleError(f"{where}: sealed_records must be a list of seqs")
        for chain, listed in ((False, seqs), (True, sealed)):
            for seq in listed:
                if not isinstance(seq, int) or (chain, seq) in by_seq:
                    raise BundleError(f"{where}: record {seq!r} is not a seq, or has two posters")
                by_seq[(chain, seq)] = poster
        keys[poster] = []
        for k in regs:
            try:
                key = base64.b64decode(k["public_key"], validate=True)
                span = RegisteredKey(
                    key, bool(k["required"]), int(k["from_index"]), k["until_index"]
                )
            except (TypeError, KeyError, ValueError, binascii.Error):
                raise BundleError(
                    f"{where}: a key needs public_key, required, from_index and until_index"
                ) from None
            if len(key) != 32 or not (
                span.until_index is None or isinstance(span.until_index, int)
            ):
                raise BundleError(f"{where}: a key must be 32 bytes over a span of log indexes")
            keys[poster].append(span)
    return by_seq, keys
