"""Evidence bundles: one zip that proves a project's whole recorded process, offline.

The format is specified in ``docs/bundle-format.md``; in short, a zip holding

- ``manifest.json``: format and version, the log's origin and key, the witness keys and
  policy the exporting log uses, the export time, the bundle's checkpoint, and the SHA-256
  and size of every other member (after BagIt's ``manifest-sha256.txt``, RFC 8493 §2.1.3);
- ``records.jsonl``: the project's committed records in ``seq`` order, one RFC 8785
  canonical JSON record per line;
- ``proofs.jsonl``: per record, a C2SP tlog-proof of its log entry against one checkpoint;
- ``checkpoint.txt``: that checkpoint as a signed note, with the witnesses' cosignatures;
- ``project-head.txt``: a note signed by the log key stating how many records the project
  had at that checkpoint and the hash of the last one, so that a bundle with its newest
  records cut off is caught (the chain alone cannot show a missing tail), and the SHA-256
  of ``posters.json``;
- ``posters.json``: which poster committed each record and the signing keys each poster
  registered, so that a record signed with another key than the registered one is caught;
- optionally ``timestamp.tsr`` (an RFC 3161 TimeStampResp over the checkpoint body) and
  ``tsa-ca.pem``;
- ``attachments.json``: each attachment's hash, size and chunk root, and with files,
  ``files/sha256/<hex>``.

The package: :mod:`~verifier.bundle.format` (member names, bounds, the project head: what
the exporter shares), :mod:`~verifier.bundle.reader` (the zip, read with bounds and guards
against hostile input), :mod:`~verifier.bundle.model` (the opened bundle and its parsed
records) and :mod:`~verifier.bundle.checks` (one module per concern). :func:`verify` runs
the checks in order; the report model is :mod:`verifier.report_model`.

Everything here is pure: bytes (or a zip file) in, a :class:`VerificationReport` or a typed
:class:`BundleError` out. Trust never comes from the bundle: the log and witness keys and
the quorum come from a :class:`verifier.trust.TrustPolicy`; without one, the report says
plainly that only internal consistency was checked.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, TypeVar

from verifier import verifier_version
from verifier.bundle.checks.attachments import T_ATTACH, check_attachments
from verifier.bundle.checks.chains import T_CHAIN, T_HEAD, check_chain, check_head
from verifier.bundle.checks.draws import T_DRAW_HEADS, check_draw_heads
from verifier.bundle.checks.indicators import report_indicators
from verifier.bundle.checks.log import (
    NO_TRUST,
    T_INCLUSION,
    T_LOG,
    T_TRUST,
    check_checkpoint,
    check_inclusion,
    trust_anchor,
)
from verifier.bundle.checks.manifest import T_MANIFEST, check_manifest
from verifier.bundle.checks.payloads import T_PAYLOADS, check_payloads
from verifier.bundle.checks.posters import (
    T_POSTER_KEYS,
    T_POSTER_SIG,
    check_poster_keys,
    check_poster_signatures,
)
from verifier.bundle.checks.records import T_RECORDS, check_records
from verifier.bundle.checks.rules import T_RULES, check_rules
from verifier.bundle.checks.sealed import T_OPENINGS, check_openings
from verifier.bundle.checks.witnessing import (
    T_TIMESTAMP,
    T_WITNESS,
    check_timestamp,
    check_witnesses,
)
from verifier.bundle.format import (
    ATTACHMENTS,
    CHECKPOINT,
    DRAW_HEADS,
    FILES_PREFIX,
    FORMAT,
    MANIFEST,
    MAX_ATTACHMENTS,
    MAX_INFLATED_BYTES,
    MAX_MEMBERS,
    MAX_RECORD_LINE,
    MAX_RECORDS,
    MAX_RECORDS_BYTES,
    MAX_SMALL_MEMBER,
    OPENINGS,
    POSTERS,
    PROJECT_HEAD,
    PROJECT_HEAD_HEADER,
    PROOFS,
    READ_BLOCK,
    RECORDS,
    REQUIRED_MEMBERS,
    TIMESTAMP,
    TSA_CA,
    VERSION,
    BundleError,
    BundleFormatError,
    Limits,
    ProjectHead,
    manifest_member,
)
from verifier.bundle.model import EvidenceBundle, Record, timeline_entry
from verifier.report_model import (
    MAX_DETAILS,
    RULES_CHECK,
    Check,
    CheckList,
    CheckStatus,
    TimelineEntry,
    TrustKeys,
    VerificationReport,
)
from verifier.trust import TrustPolicy

__all__ = [
    "ATTACHMENTS",
    "CHECKPOINT",
    "DRAW_HEADS",
    "FILES_PREFIX",
    "FORMAT",
    "MANIFEST",
    "MAX_ATTACHMENTS",
    "MAX_DETAILS",
    "MAX_INFLATED_BYTES",
    "MAX_MEMBERS",
    "MAX_RECORDS",
    "MAX_RECORDS_BYTES",
    "MAX_RECORD_LINE",
    "MAX_SMALL_MEMBER",
    "OPENINGS",
    "POSTERS",
    "PROJECT_HEAD",
    "PROJECT_HEAD_HEADER",
    "PROOFS",
    "READ_BLOCK",
    "RECORDS",
    "REQUIRED_MEMBERS",
    "TIMESTAMP",
    "TSA_CA",
    "VERSION",
    "BundleError",
    "BundleFormatError",
    "Check",
    "CheckStatus",
    "EvidenceBundle",
    "Limits",
    "ProjectHead",
    "TimelineEntry",
    "TrustKeys",
    "VerificationReport",
    "manifest_member",
    "verify",
    "verify_bundle",
]

_T = TypeVar("_T")


def _guarded(
    out: CheckList, cid: str, title: tuple[str, str], run: Callable[[], _T], fallback: _T
) -> _T:
    """Run one check; an exception it did not foresee fails that check, not the verifier.

    Every check handles the damage it expects and names it. This is the last resort that
    keeps any hostile bundle from ending the run without a report (issue 10 §5): the
    check fails (never passes) and says what went wrong; the other checks still run.
    """
    try:
        return run()
    except Exception as e:
        what = f"{type(e).__name__}: {str(e)[:200]}"
        out.add(
            cid,
            title,
            # The rule engine failing says nothing about the bundle's integrity: the
            # process could not be judged (compliance), not found broken.
            "cannot_evaluate" if cid == RULES_CHECK else "fail",
            f"the check could not be completed on this bundle ({what})",
            f"该项核验无法在此证据包上完成（{what}）",
        )
        return fallback


def verify(
    b: EvidenceBundle,
    trust: TrustPolicy | None,
    *,
    allow_untrusted: bool = False,
    check_files: bool = True,
    workers: int | None = None,
    rules: bool = True,
    now: datetime | None = None,
) -> VerificationReport:
    """Run every check on an opened bundle; never raises for a bad bundle, it reports it.

    ``now`` is the verification time the report states (default: the clock)."""
    out = CheckList()
    rep = VerificationReport(out.items)
    rep.verified_at = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    rep.verifier_version = verifier_version()
    m = b.manifest
    rep.project = b.project
    rep.exported_at = str(m.get("exported_at", ""))
    rep.trade_type = str(m.get("trade_type", ""))
    rep.trusted = trust is not None

    def step(cid: str, title: tuple[str, str], run: Callable[[], _T], fallback: _T) -> _T:
        return _guarded(out, cid, title, run, fallback)

    step("manifest", T_MANIFEST, lambda: check_manifest(b, out), None)
    log, witnesses, quorum = step(
        "trust", T_TRUST, lambda: trust_anchor(b, out, trust, allow_untrusted), NO_TRUST
    )
    rep.trust_keys = TrustKeys(
        log.vkey if log else "",
        tuple(w.vkey for w in witnesses),
        quorum,
        trust.tsa_ca_sha256 if trust else None,
        from_trust_file=trust is not None,
    )
    sc = step("checkpoint", T_LOG, lambda: check_checkpoint(b, out, log), None)
    rep.log_origin = sc.checkpoint.origin if sc else ""
    rep.checkpoint_size = sc.checkpoint.size if sc else 0
    step(
        "witnesses",
        T_WITNESS,
        lambda: check_witnesses(b, out, sc, witnesses, quorum, demanded=trust is not None),
        None,
    )
    step("timestamp", T_TIMESTAMP, lambda: check_timestamp(b, out, sc, trust), None)
    t0 = time.perf_counter()
    none: list[Record] = []
    records = step("records", T_RECORDS, lambda: check_records(b, out), none)
    step("sealed_openings", T_OPENINGS, lambda: check_openings(b, out, records), None)
    rep.records = len(records)
    head = step("project_head", T_HEAD, lambda: check_head(b, out, sc, log, records), None)
    step("inclusion", T_INCLUSION, lambda: check_inclusion(b, out, sc, records), None)
    step("chain", T_CHAIN, lambda: check_chain(b, out, sc, records), None)
    step("draw_heads", T_DRAW_HEADS, lambda: check_draw_heads(b, out, sc, records), None)
    step("payloads", T_PAYLOADS, lambda: check_payloads(b, out, records), None)
    step(
        "poster_signatures",
        T_POSTER_SIG,
        lambda: check_poster_signatures(b, out, records),
        None,
    )
    step("poster_keys", T_POSTER_KEYS, lambda: check_poster_keys(b, out, records, head), None)
    rep.timings["records_seconds"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    hashed = step(
        "attachments",
        T_ATTACH,
        lambda: check_attachments(b, out, records, check_files, workers),
        0,
    )
    rep.timings["files_seconds"] = time.perf_counter() - t1
    rep.timings["files_bytes"] = float(hashed)
    rep.timeline = [timeline_entry(r) for r in records]
    if rules:
        step("rules", T_RULES, lambda: check_rules(b, out, rep, records), None)
    # Indicators (signs for a person to examine, e.g. collusion indicators) go to
    # rep.indicators, never to the checks: they change neither verdict nor the exit code.
    report_indicators(rep, records)
    return rep


def verify_bundle(
    source: str | os.PathLike[str] | IO[bytes] | bytes,
    trust: TrustPolicy | None,
    *,
    allow_untrusted: bool = False,
    check_files: bool = True,
    workers: int | None = None,
    rules: bool = True,
) -> VerificationReport:
    """Open and verify a bundle; raises :class:`BundleFormatError` only if it is unreadable.

    The bounds are this package's ``MAX_*`` names, read when called, so that lowering one
    here (as the tests of the hostile-bundle guards do) holds the reader to it.
    """
    limits = Limits(MAX_MEMBERS, MAX_RECORDS_BYTES, MAX_SMALL_MEMBER, MAX_INFLATED_BYTES)
    with EvidenceBundle(source, limits) as b:
        rep = verify(
            b,
            trust,
            allow_untrusted=allow_untrusted,
            check_files=check_files,
            workers=workers,
            rules=rules,
        )
    # The file's SHA-256 names the bundle in the report. Hashed after the checks, not beside
    # them, so that it takes no core from the attachment hashing (and its timing stays true).
    t = time.perf_counter()
    rep.bundle_sha256 = _sha256_of(source)
    rep.timings["digest_seconds"] = time.perf_counter() - t
    return rep


def _sha256_of(source: str | os.PathLike[str] | IO[bytes] | bytes) -> str:
    """SHA-256 (hex) of a bundle given as a path or bytes; "" for a stream (read once)."""
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    if isinstance(source, (str, os.PathLike)):
        h = hashlib.sha256()
        try:
            with open(source, "rb") as f:
                while block := f.read(READ_BLOCK):
                    h.update(block)
        except OSError:
            return ""  # the zip was read; the report then names no digest
        return h.hexdigest()
    return ""
