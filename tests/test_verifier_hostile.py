"""The offline verifier never crashes (issue 10 §5): any hostile bundle gets a report.

A damaged or malicious bundle either is refused as unreadable (exit 2, one line naming
why) or gets a report whose checks fail and say what is wrong (exit 1); never a
traceback. Each case here used to raise (OverflowError, RuntimeError, NotImplementedError,
AttributeError, TypeError) or to read without bound.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hostile import members, rebuild, small_bundle, with_record
from verifier import bundle as fmt
from verifier.bundle import BundleFormatError, VerificationReport, verify_bundle
from verifier.trust import TrustPolicy

ROOT = Path(__file__).resolve().parent.parent
JSON_TO = ("--format", "json", "-o")


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[bytes, TrustPolicy]]:
    yield small_bundle(tmp_path_factory.mktemp("hostile"))


def verify_cli(tmp: Path, data: bytes, trust: TrustPolicy) -> tuple[int, str, dict[str, Any]]:
    """``python -m verifier`` as a reviewer runs it: exit code, stderr, JSON report."""
    bundle, trust_file, report = tmp / "bundle.zip", tmp / "trust.txt", tmp / "report.json"
    bundle.write_bytes(data)
    trust_file.write_text(trust.to_text())
    report.unlink(missing_ok=True)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "verifier",
            str(bundle),
            "--trust",
            str(trust_file),
            "--format",
            "json",
            "-o",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    return out.returncode, out.stderr, json.loads(report.read_text()) if report.exists() else {}


def _seq_of(m: dict[str, bytes], event_type: str) -> int:
    for i, line in enumerate(m[fmt.RECORDS].split(b"\n")):
        if line and json.loads(line)["type"] == event_type:
            return i
    raise AssertionError(event_type)


def _payload(**fields: Any) -> Any:
    return lambda r: {**r, "payload": {**r["payload"], **fields}}


def test_dates_out_of_range_are_reported_not_raised(
    genuine: tuple[bytes, TrustPolicy], tmp_path: Path
) -> None:
    raw, trust = genuine
    m = members(raw)
    far = "9999-12-31T23:59:59+14:00"
    m = with_record(m, _seq_of(m, "tender_notice_published"), _payload(issue_start=far))
    m = with_record(m, _seq_of(m, "evaluation_report_signed"), _payload(report_at=far))
    code, err, report = verify_cli(tmp_path, rebuild(m), trust)
    assert code == 1 and "NOT VERIFIED" in err
    checks = {c["id"]: c for c in report["checks"]}
    # The records were altered, so their hashes fail; and the rules say what they could
    # not read instead of the verifier dying on it.
    assert checks["chain"]["status"] == "fail"
    assert "issue_start" in _unreadable(report) and "report_at" in _unreadable(report)

    # A procurement project's retention date (G15): an impossible day, and a contract
    # signed at the end of time.
    m = members(raw)
    for seq in range(m[fmt.RECORDS].count(b"\n")):
        m = with_record(m, seq, lambda r: {**r, "trade_type": "procurement"})
    archive = _seq_of(m, "archive_package_created")
    m = with_record(m, archive, _payload(retention_until="2026-02-30"))
    contract = _seq_of(m, "contract_signed")
    m = with_record(m, contract, lambda r: {**r, "occurred_at": "9999-12-31T23:59:59-14:00"})
    code, err, report = verify_cli(tmp_path, rebuild(m), trust)
    assert code == 1 and "NOT VERIFIED" in err
    assert "retention_until" in _unreadable(report), _unreadable(report)


def _unreadable(report: dict[str, Any]) -> str:
    """The messages and details of the checks that could not be evaluated."""
    return " ".join(
        c["message"] + " " + " ".join(c["details"])
        for c in report["checks"]
        if c["status"] == "cannot_evaluate"
    )


@pytest.mark.parametrize(
    "data",
    [b"", b"PK\x05\x06" + b"\x00" * 18, b"not a zip at all", b"PK\x03\x04" + b"\xff" * 200],
)
def test_malformed_zips_are_unreadable_not_a_crash(
    genuine: tuple[bytes, TrustPolicy], tmp_path: Path, data: bytes
) -> None:
    code, err, _ = verify_cli(tmp_path, data, genuine[1])
    assert code == 2 and "jianzheng verify:" in err


def test_a_bundle_cut_short_is_unreadable(genuine: tuple[bytes, TrustPolicy]) -> None:
    raw, trust = genuine
    for cut in (len(raw) // 2, len(raw) - 30, 100):
        with pytest.raises(BundleFormatError):
            verify_bundle(raw[:cut], trust)


def _patch_central(data: bytes, name: str, **fields: int) -> bytes:
    """Rewrite fields of ``name``'s central directory entry (APPNOTE 4.3.12)."""
    offsets = {"flag_bits": (8, "<H"), "compress_type": (10, "<H"), "compress_size": (20, "<I")}
    offsets["file_size"] = (24, "<I")
    buf = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        pos = zf.start_dir
    while buf[pos : pos + 4] == b"PK\x01\x02":
        n, m, k = struct.unpack("<HHH", buf[pos + 28 : pos + 34])
        if buf[pos + 46 : pos + 46 + n].decode() == name:
            for field, value in fields.items():
                off, form = offsets[field]
                struct.pack_into(form, buf, pos + off, value)
            return bytes(buf)
        pos += 46 + n + m + k
    raise AssertionError(name)


def _report(data: bytes, trust: TrustPolicy) -> VerificationReport:
    rep = verify_bundle(data, trust)
    assert not rep.ok
    for c in rep.checks:  # named by the check that met the damage, not the last resort
        assert "could not be completed" not in c.message, c.message
    return rep


def _failed(rep: VerificationReport) -> str:
    return " | ".join(f"{c.id}: {c.message}" for c in rep.checks if c.status == "fail")


def test_an_encrypted_member_is_reported(genuine: tuple[bytes, TrustPolicy]) -> None:
    raw, trust = genuine
    rep = _report(_patch_central(raw, fmt.PROOFS, flag_bits=1), trust)
    assert f"{fmt.PROOFS} is encrypted" in _failed(rep)


def test_an_unknown_compression_method_is_reported(genuine: tuple[bytes, TrustPolicy]) -> None:
    raw, trust = genuine
    rep = _report(_patch_central(raw, fmt.RECORDS, compress_type=1), trust)  # "Shrunk"
    assert "compression method 1" in _failed(rep)


def test_a_compressed_attachment_file_is_not_inflated(genuine: tuple[bytes, TrustPolicy]) -> None:
    """The format stores files uncompressed, so a deflated one (a zip bomb's way to claim
    gigabytes in a few kilobytes) is refused unread."""
    raw, trust = genuine
    m = members(raw)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in m.items():
            zf.writestr(name, data, zipfile.ZIP_DEFLATED)
    rep = _report(out.getvalue(), trust)
    assert "attachment files are stored uncompressed" in _failed(rep)


def test_members_overlapping_or_too_large_are_refused(
    genuine: tuple[bytes, TrustPolicy], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw, trust = genuine
    # Declared sizes adding up to more than the zip: members overlap (or lie).
    with pytest.raises(BundleFormatError, match="overlap"):
        verify_bundle(_patch_central(raw, fmt.PROOFS, compress_size=len(raw)), trust)
    # A member declared larger than its kind may be is never inflated.
    monkeypatch.setattr(fmt, "MAX_RECORDS_BYTES", 1000)
    rep = _report(raw, trust)
    assert f"{fmt.PROOFS} is larger than 1000 bytes" in _failed(rep)
    monkeypatch.setattr(fmt, "MAX_INFLATED_BYTES", 1000)
    with pytest.raises(BundleFormatError, match="expand to"):
        verify_bundle(raw, trust)


def test_a_zip_bomb_member_is_not_inflated(genuine: tuple[bytes, TrustPolicy]) -> None:
    """80 MiB of zeros in 80 KB: larger than any small member may be, refused unread."""
    raw, trust = genuine
    m = members(raw)
    m[fmt.POSTERS] = b"\x00" * (80 << 20)
    rep = _report(rebuild(m), trust)
    assert f"{fmt.POSTERS} is larger than {fmt.MAX_SMALL_MEMBER} bytes" in _failed(rep)


_JSON_MEMBERS = (fmt.RECORDS, fmt.PROOFS, fmt.ATTACHMENTS, fmt.POSTERS)


@pytest.mark.parametrize("name", [*_JSON_MEMBERS, fmt.CHECKPOINT, fmt.PROJECT_HEAD])
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
        b"\xff\xfe not UTF-8 \xed\xa0\x80\n",
        b'{"seq": 0, "index": null, "tlog_proof": [], "attachments": {"x": 1}}\n',
        b"\x00" * 5000,
    ],
    ids=["deep-arrays", "deep-objects", "bad-utf8", "wrong-types", "nul-bytes"],
)
def test_hostile_member_contents_are_reported(
    genuine: tuple[bytes, TrustPolicy], name: str, body: bytes
) -> None:
    raw, trust = genuine
    m = members(raw)
    m[name] = body
    rep = _report(rebuild(m), trust)
    assert _failed(rep)


@pytest.mark.parametrize(
    "manifest",
    [
        {"log": "a string", "witnesses": [1, 2]},
        {"log": {"verifier_key": 5}, "witnesses": {"verifier_keys": "x", "quorum": "2"}},
        {"members": [], "files_included": "yes"},
    ],
)
def test_manifest_of_the_wrong_shape_is_reported(
    genuine: tuple[bytes, TrustPolicy], manifest: dict[str, Any]
) -> None:
    raw, trust = genuine
    m = members(raw)
    doc = {**json.loads(m[fmt.MANIFEST]), **manifest}
    m[fmt.MANIFEST] = json.dumps(doc).encode()
    for policy in (trust, None):  # with a trust file, and reading the keys it names
        rep = verify_bundle(rebuild(m, fix_manifest="members" not in manifest), policy)
        for c in rep.checks:
            assert "could not be completed" not in c.message, c.message
