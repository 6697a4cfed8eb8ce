"""Checks of the checkpoint from outside the log: witness cosignatures and the RFC 3161 token."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from verifier.bundle.format import TIMESTAMP, TSA_CA, BundleError
from verifier.bundle.model import BundleCheckpoint, EvidenceBundle
from verifier.note import NoteError, Verifier
from verifier.report_model import CheckList
from verifier.timestamp import TimestampError, verify_timestamp
from verifier.trust import TrustPolicy
from verifier.witnessing import cosigners

T_WITNESS = ("见证人联署策略", "witness policy")
T_TIMESTAMP = ("可信时间戳", "trusted timestamp")


def check_witnesses(
    b: EvidenceBundle,
    out: CheckList,
    sc: BundleCheckpoint | None,
    witnesses: Sequence[Verifier],
    quorum: int,
    *,
    demanded: bool,
) -> None:
    """At least the quorum of trusted witnesses cosigned the checkpoint
    (C2SP tlog-cosignature v1); fewer may mean a split view."""
    required = demanded and quorum > 0
    if sc is None:
        out.add(
            "witnesses",
            T_WITNESS,
            "cannot_evaluate",
            "no readable checkpoint to count cosignatures on",
            "没有可读的检查点，无法统计联署",
            required=required,
        )
        return
    try:
        found = cosigners(sc.note, witnesses)
    except NoteError as e:
        out.add(
            "witnesses",
            T_WITNESS,
            "fail",
            f"a cosignature under a witness's name does not verify: {e} (forged or altered)",
            f"见证人名下的联署签名无效：{e}（伪造或被改动）",
            required=required,
        )
        return
    names = ", ".join(
        f"{v.name}@{datetime.fromtimestamp(t, UTC):%Y-%m-%dT%H:%M:%SZ}" for v, t in found
    )
    if quorum == 0:
        out.add(
            "witnesses",
            T_WITNESS,
            "pass" if demanded else "warn",
            f"no witness quorum is demanded; {len(found)} valid cosignature(s) found"
            + (f": {names}" if names else ""),
            f"未要求见证人联署；发现 {len(found)} 个有效联署",
            required=False,
            cosigners=[v.vkey for v, _ in found],
        )
        return
    if len(found) >= quorum:
        out.passed(
            "witnesses",
            T_WITNESS,
            f"{len(found)} of {len(witnesses)} witnesses cosigned checkpoint "
            f"{sc.checkpoint.size} (quorum {quorum}): {names}",
            f"{len(witnesses)} 个见证人中有 {len(found)} 个联署了规模为 {sc.checkpoint.size} "
            f"的检查点（要求 {quorum} 个）",
            required=required,
            cosigners=[v.vkey for v, _ in found],
        )
    else:
        out.add(
            "witnesses",
            T_WITNESS,
            "fail",
            f"only {len(found)} of the required {quorum} witness cosignatures on checkpoint "
            f"{sc.checkpoint.size}"
            + (f" ({names})" if names else "")
            + ": the checkpoint may be a split view shown only to you",
            f"规模为 {sc.checkpoint.size} 的检查点仅有 {len(found)} 个有效联署，"
            f"少于要求的 {quorum} 个：该检查点可能是只向您展示的分叉视图",
            required=required,
        )


def check_timestamp(
    b: EvidenceBundle, out: CheckList, sc: BundleCheckpoint | None, trust: TrustPolicy | None
) -> None:
    """The RFC 3161 token (if any; required when the trust file pins a TSA CA) is over
    the checkpoint body and chains to the TSA CA."""
    demanded = trust is not None and trust.tsa_ca_sha256 is not None
    present = TIMESTAMP in b.archive.members
    if not present:
        out.add(
            "timestamp",
            T_TIMESTAMP,
            "fail" if demanded else "warn",
            "the bundle has no RFC 3161 timestamp"
            + (" but the trust file demands one" if demanded else "")
            + "; the checkpoint's time rests on the witnesses' cosignature times alone",
            "证据包未附 RFC 3161 时间戳" + ("，而信任文件要求提供" if demanded else ""),
            required=demanded,
        )
        return
    if sc is None:
        out.add(
            "timestamp",
            T_TIMESTAMP,
            "cannot_evaluate",
            "no readable checkpoint for the timestamp to cover",
            "没有可读的检查点，无法核验时间戳",
        )
        return
    try:
        reply = b.member(TIMESTAMP)
        ca = b.member(TSA_CA)
    except (KeyError, BundleError) as e:
        out.add(
            "timestamp",
            T_TIMESTAMP,
            "fail",
            f"{TIMESTAMP} is present but {e} is missing",
            f"附有 {TIMESTAMP}，但缺少 {e}",
        )
        return
    if trust is not None and trust.tsa_ca_sha256 is not None:
        pin = _ca_fingerprint(ca)
        if pin != trust.tsa_ca_sha256:
            out.add(
                "timestamp",
                T_TIMESTAMP,
                "fail",
                f"{TSA_CA} (SHA-256 {pin}) is not the TSA CA the trust file names",
                f"{TSA_CA}（SHA-256 {pin}）不是信任文件指定的时间戳机构根证书",
            )
            return
    try:
        when = verify_timestamp(reply, sc.note.text.encode(), ca)
    except TimestampError as e:
        out.add(
            "timestamp",
            T_TIMESTAMP,
            "fail",
            f"{TIMESTAMP} does not verify over checkpoint {sc.checkpoint.size}: {e}",
            f"{TIMESTAMP} 对规模为 {sc.checkpoint.size} 的检查点核验失败：{e}",
        )
        return
    ca_note = "" if demanded else f" (CA taken from the bundle's {TSA_CA})"
    out.passed(
        "timestamp",
        T_TIMESTAMP,
        f"RFC 3161 token: checkpoint {sc.checkpoint.size} existed by "
        f"{when:%Y-%m-%dT%H:%M:%SZ}{ca_note}",
        f"RFC 3161 时间戳：规模为 {sc.checkpoint.size} 的检查点不晚于 "
        f"{when:%Y-%m-%dT%H:%M:%SZ} 已存在",
        time=when.isoformat(),
    )


def _ca_fingerprint(pem: bytes) -> str:
    """SHA-256 (hex) of the first certificate's DER in a PEM file."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return "unreadable"
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
