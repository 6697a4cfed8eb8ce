"""Evidence bundles end to end: export from a real ledger, verify offline, and tamper.

The tamper suite rewrites a genuine bundle the way an attacker would (recomputing the
manifest's hashes so that the cheap check does not give it away) and shows that the
verifier fails with a message naming what changed and where. Cosignatures and the RFC 3161
token come from witness keys and a time-stamping authority created here.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ledger.bundle import BundleSources, ProjectNotFound, plan_bundle, write_bundle
from ledger.catalogue import CATALOGUE_VERSION
from ledger.records import validate_event
from ledger.service import Ledger
from tests.tender import bid_file, breaking, lawful_tender
from verifier import bundle as fmt
from verifier.bundle import BundleFormatError, VerificationReport, verify_bundle
from verifier.canonical import canonicalize
from verifier.chunks import ChunkTree
from verifier.note import ALG_COSIGNATURE_V1, NoteSignature, Signer, parse_note
from verifier.report import render_html, render_json, render_text
from verifier.report_model import Indicator
from verifier.trust import TrustError, TrustPolicy, parse_trust

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "E330100000001"
ORIGIN = "bundle.test/log"


def post(lg: Ledger, events: list[dict[str, Any]], files: dict[str, bytes] | None = None) -> None:
    """Commit events directly; attachments get the chunk root the storage service records."""
    subs = []
    for e in events:
        ev = validate_event(e, lg.catalogue)
        if files is not None and ev.attachments:
            atts = []
            for a in ev.attachments:
                tree = ChunkTree()
                tree.update(files[a.sha256])
                root = base64.b64encode(tree.finish()[2]).decode()
                atts.append(dataclasses.replace(a, chunk_root=root))
            ev = dataclasses.replace(ev, attachments=tuple(atts))
        subs.append(ev)
    lg.append(subs, "test-poster").result(timeout=60)


def ca_sha256(pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(pem)
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


class Witnesses:
    """Three witness keys; the first two cosign every checkpoint the log signs."""

    def __init__(self) -> None:
        self.signers = [
            Signer.generate(f"w{i}.test/witness", ALG_COSIGNATURE_V1) for i in (1, 2, 3)
        ]

    def cosign(self, note_text: str, who: list[Signer]) -> str:
        note = parse_note(note_text)
        t = int(time.time())
        for s in who:
            sig = s.sign(note.text.encode(), t)
            note = note.add(NoteSignature(s.name, s.verifier.key_id, sig))
        return note.to_text()


@dataclasses.dataclass
class Exported:
    path: Path
    trust: TrustPolicy
    files: dict[str, bytes]
    witnesses: Witnesses
    tsa: Any
    records: int


def make_tsa(directory: Path) -> Any:
    from witness.tsa import BuiltinTimestamper, TimestampAuthority

    return BuiltinTimestamper(TimestampAuthority.load_or_create(directory))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    base = tmp_path_factory.mktemp("bundle")
    files: dict[str, bytes] = {}
    events = lawful_tender(PROJECT, files)
    # One bid file spans several 1 MiB chunks, so its chunk root is a real tree.
    big = bid_file(9, 2_500_000)
    files[hashlib.sha256(big).hexdigest()] = big
    events[-1]["attachments"] = [
        {
            "sha256": hashlib.sha256(big).hexdigest(),
            "size": len(big),
            "media_type": "application/zip",
            "name": "archive.zip",
        }
    ]
    lg = Ledger.open(base / "data", f"sqlite:///{base / 'ledger.db'}", ORIGIN)
    w = Witnesses()
    tsa = make_tsa(base / "tsa")
    try:
        post(lg, events[:7], files)
        post(lg, [lawful_tender("OTHER-1")[0]])  # another project interleaved in the log
        post(lg, events[7:20], files)
        post(lg, events[20:], files)
        post(lg, [lawful_tender("OTHER-2")[0]])
        sources = BundleSources(
            cosigned_checkpoint=lambda size: w.cosign(lg.checkpoint_at(size).note, w.signers[:2]),
            timestamp_reply=lambda size: tsa.timestamp(
                parse_note(lg.checkpoint_at(size).note).text.encode()
            ),
            tsa_ca_pem=lambda: tsa.ca_pem,
            witness_policy=lambda: ([s.verifier.vkey for s in w.signers], 2),
            open_object=lambda sha: io.BytesIO(files[sha]),
        )
        plan = plan_bundle(lg, PROJECT, sources, with_files=True)
        path = base / "bundle.zip"
        write_bundle(plan, path, sources)
        trust = TrustPolicy(
            lg.signer.verifier, tuple(s.verifier for s in w.signers), 2, ca_sha256(tsa.ca_pem)
        )
    finally:
        lg.close()
    yield Exported(path, trust, files, w, tsa, len(events))


def verify(path: Path | bytes, trust: TrustPolicy | None, **kw: Any) -> VerificationReport:
    return verify_bundle(path, trust, **kw)


def failed(rep: VerificationReport) -> dict[str, str]:
    return {c.id: c.message for c in rep.checks if c.status == "fail"}


# --- reading and rewriting zips like an attacker ------------------------------------------


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def rebuild(m: dict[str, bytes], out: Path, *, fix_manifest: bool = True) -> Path:
    """Write a zip of ``m``; with ``fix_manifest`` the manifest's hashes are recomputed."""
    m = dict(m)
    if fix_manifest:
        man = json.loads(m[fmt.MANIFEST])
        man["members"] = {
            n: fmt.manifest_member(data) for n, data in m.items() if n != fmt.MANIFEST
        }
        m[fmt.MANIFEST] = canonicalize(man)
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in m.items():
            stored = name.startswith(fmt.FILES_PREFIX)
            zf.writestr(name, data, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
    return out


def lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")[:-1]


def join(ls: list[bytes]) -> bytes:
    return b"".join(x + b"\n" for x in ls)


def edit_records(m: dict[str, bytes], fn: Callable[[list[bytes]], list[bytes]]) -> dict[str, bytes]:
    m = dict(m)
    m[fmt.RECORDS] = join(fn(lines(m[fmt.RECORDS])))
    return m


def with_checkpoint(m: dict[str, bytes], new_cp: str) -> dict[str, bytes]:
    """Swap the checkpoint everywhere it appears (checkpoint.txt and every tlog-proof)."""
    old = m[fmt.CHECKPOINT].decode()
    m = dict(m)
    m[fmt.CHECKPOINT] = new_cp.encode()
    proofs = []
    for line in lines(m[fmt.PROOFS]):
        p = json.loads(line)
        p["tlog_proof"] = p["tlog_proof"].replace(old, new_cp)
        proofs.append(canonicalize(p))
    m[fmt.PROOFS] = join(proofs)
    return m


def record(m: dict[str, bytes], seq: int) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(lines(m[fmt.RECORDS])[seq])
    return out


# --- the genuine bundle -------------------------------------------------------------------


def test_genuine_bundle_verifies_with_every_check(exported: Exported) -> None:
    rep = verify(exported.path, exported.trust, workers=2)
    assert rep.ok, render_text(rep)
    by = {c.id: c for c in rep.checks}
    for cid in (
        "manifest",
        "trust",
        "log_signature",
        "witnesses",
        "timestamp",
        "project_head",
        "records",
        "inclusion",
        "chain",
        "attachments",
    ):
        assert by[cid].status == "pass", (cid, by[cid].message)
    assert rep.records == exported.records
    assert "2 of 3 witnesses" in by["witnesses"].message
    assert by["attachments"].extra["bytes_hashed"] == sum(len(b) for b in exported.files.values())
    # The process rules ran with their catalogue ids, and the lawful tender passes them.
    assert {"E01", "E02", "E10", "E12"} <= set(by)
    assert all(by[r].status == "pass" for r in ("E01", "E02", "E03", "E04", "E06", "E10", "E12"))
    # Other projects in the same log are not in the bundle; the project's sealed chain
    # (bids, deposits, the count at the deadline) is, opened.
    m = members(exported.path)
    chains = [json.loads(x)["project"] for x in lines(m[fmt.RECORDS])]
    assert set(chains) == {PROJECT, PROJECT + "~sealed"}
    assert chains.count(PROJECT + "~sealed") == 11
    # Opened too: the committee's records (confidential fields; the operator's export
    # opens everything, docs/formats.md).
    committed = [json.loads(x) for x in lines(m[fmt.RECORDS]) if b'"commitments"' in x]
    assert len(lines(m[fmt.OPENINGS])) == len(committed) == 11 + 8
    assert by["sealed_openings"].status == "pass"
    man = json.loads(m[fmt.MANIFEST])
    assert man["format"] == fmt.FORMAT and man["version"] == fmt.VERSION
    assert man["log"]["origin"] == ORIGIN and man["witnesses"]["quorum"] == 2
    assert set(man["members"]) == set(m) - {fmt.MANIFEST}


def test_files_are_stored_uncompressed_and_hashed_in_one_pass(exported: Exported) -> None:
    with zipfile.ZipFile(exported.path) as zf:
        infos = [i for i in zf.infolist() if i.filename.startswith(fmt.FILES_PREFIX)]
    assert len(infos) == len(exported.files)
    assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
    # Same answer single-threaded, from bytes in memory (the zipfile path).
    rep = verify(exported.path.read_bytes(), exported.trust, workers=1)
    assert rep.ok, render_text(rep)


def test_reports_render_in_three_formats(exported: Exported) -> None:
    rep = verify(exported.path, exported.trust)
    j = json.loads(render_json(rep))
    assert j["ok"] is True and {c["id"] for c in j["checks"]} >= {"chain", "E01"}
    statuses = ("pass", "fail", "warn", "cannot_evaluate", "not_applicable")
    assert all(c["status"] in statuses for c in j["checks"])
    # Two verdicts, added beside the old fields (issue 12).
    assert j["integrity"]["status"] == "holds" and j["compliance"]["status"] == "holds"
    assert j["exit_code"] == 0 and j["indicators"] == []
    assert j["bundle_sha256"] == hashlib.sha256(exported.path.read_bytes()).hexdigest()
    assert j["verifier_version"].startswith("jianzheng ") and j["verified_at"].endswith("+00:00")
    assert j["trust_keys"]["log"] == exported.trust.log.vkey
    assert j["trust_keys"]["from_trust_file"] is True
    # The lawful tender records no objection: E05 was not tested, and never reads as a pass.
    e05 = next(c for c in j["checks"] if c["id"] == "E05")
    assert e05["status"] == "not_applicable" and e05["aspect"] == "compliance"
    text = render_text(rep)
    head = text.split("\n\n", 1)[0]
    assert "完整性与真实性 Integrity and authenticity: 成立 / HOLDS" in head
    assert "合规性 Compliance: 符合 / HOLDS" in head
    assert "不适用 not applicable (not tested): " in head and "E05" in head
    assert "[NOT APPLICABLE ] E05" in text
    page = render_html(rep)
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    assert "招标投标法" in page and "bid_opening_started" in page and "@media print" in page
    # Verdicts first, then the timeline, then the rules in detail.
    timeline = page.index("id='timeline'")
    assert page.index('id="integrity"') < page.index('id="compliance"') < timeline
    assert timeline < page.index("程序规则")
    assert "开标" in page and "2026-03-25 10:00:00" in page  # name_zh, Beijing time
    assert "工程招投标" in page  # the trade type, named in Chinese
    assert j["bundle_sha256"] in page and exported.trust.log.vkey in page
    assert all(w.vkey in page for w in exported.trust.witnesses)
    big = next(a for a in record(members(exported.path), 46)["attachments"])
    assert "archive.zip" in page and big["sha256"] in page


def test_indicators_are_shown_under_compliance_and_change_no_verdict(exported: Exported) -> None:
    """Indicators (e.g. issue 17's collusion indicators) are for a person to examine: the
    verdicts, ``ok`` and the exit code stay as they were, and every format shows them under
    compliance, saying that they are not a verdict."""
    rep = verify(exported.path, exported.trust)
    before = (rep.integrity.status, rep.compliance.status, rep.exit_code, rep.ok)
    rep.indicators.append(
        Indicator(
            "C01",
            "同一账户缴纳保证金",
            "Deposits paid from one account",
            "两名投标人的保证金自同一账户缴纳",
            "two bidders' deposits came from one account",
            "招标投标法实施条例 第四十条（六）",
            "Implementing Regulations Art. 40(6)",
            "strong",
            [5, 6],
        )
    )
    assert (rep.integrity.status, rep.compliance.status, rep.exit_code, rep.ok) == before
    assert before == ("holds", "holds", 0, True)
    j = json.loads(render_json(rep))
    assert j["indicators"][0]["id"] == "C01" and j["indicators"][0]["events"] == [5, 6]
    assert j["compliance"]["status"] == "holds" and j["exit_code"] == 0
    text = render_text(rep).split("\n\n", 1)[0]
    assert text.index("合规性 Compliance") < text.index("C01 同一账户缴纳保证金")
    assert "they change no verdict" in text
    page = render_html(rep)
    box = page[
        page.index('id="compliance"') : page.index("</section>", page.index('id="compliance"'))
    ]
    assert "C01" in box and "不影响上述结论与退出码" in box and "never a verdict" in box


def test_a_project_no_rule_covers_cannot_be_evaluated(exported: Exported) -> None:
    """Compliance is never "holds" by default: no rule judged anything, so nothing holds."""
    rep = verify(exported.path, exported.trust, rules=False)
    assert rep.integrity.holds and rep.compliance.status == "cannot_evaluate"
    assert rep.exit_code == 3 and "compliance was not checked" in rep.compliance.notes[0][1]
    # Every rule not applicable: nothing judged either.
    rep = verify(exported.path, exported.trust)
    for c in rep.checks:
        if c.aspect == "compliance":
            c.status = "not_applicable"
    assert rep.compliance.status == "cannot_evaluate" and rep.exit_code == 3


# --- the tamper suite ---------------------------------------------------------------------


def test_manifest_catches_a_member_changed_without_it(exported: Exported, tmp_path: Path) -> None:
    m = edit_records(members(exported.path), lambda ls: [*ls[:-1], ls[-1].replace(b"30y", b"10y")])
    rep = verify(rebuild(m, tmp_path / "t.zip", fix_manifest=False), exported.trust)
    assert not rep.ok
    assert "records.jsonl: SHA-256" in failed(rep)["manifest"]


def test_edit_a_record(exported: Exported, tmp_path: Path) -> None:
    def edit(ls: list[bytes]) -> list[bytes]:
        r = json.loads(ls[16])  # the opening, moved to another room
        assert r["type"] == "bid_opening_started"
        r["payload"]["place"] = "开标室9"
        ls[16] = canonicalize(r)
        return ls

    rep = verify(
        rebuild(edit_records(members(exported.path), edit), tmp_path / "t.zip"), exported.trust
    )
    f = failed(rep)
    assert not rep.ok
    assert "record seq 5" in f["inclusion"] and "altered" in f["inclusion"]
    assert "(seq 6)" in f["chain"] and "prev does not link" in f["chain"]


def test_change_a_timestamp(exported: Exported, tmp_path: Path) -> None:
    def backdate(ls: list[bytes]) -> list[bytes]:
        r = json.loads(ls[10])  # the first bid, now "submitted" a day earlier
        assert r["type"] == "bid_submitted" and r["seq"] == 5  # in the sealed chain
        r["occurred_at"] = "2026-03-19T09:00:00+08:00"
        ls[10] = canonicalize(r)
        return ls

    rep = verify(
        rebuild(edit_records(members(exported.path), backdate), tmp_path / "t.zip"), exported.trust
    )
    f = failed(rep)
    assert "record seq 5" in f["inclusion"]
    assert "(sealed chain seq 6)" in f["chain"]


def test_drop_a_record(exported: Exported, tmp_path: Path) -> None:
    rep = verify(
        rebuild(
            edit_records(members(exported.path), lambda ls: ls[:7] + ls[8:]), tmp_path / "t.zip"
        ),
        exported.trust,
    )
    f = failed(rep)
    # Line 7 is a bid deposit, the third record of the sealed chain.
    assert "seq 3 where seq 2 was due" in f["chain"]
    assert "sealed records were removed" in f["project_head"]


def test_insert_a_record(exported: Exported, tmp_path: Path) -> None:
    def insert(ls: list[bytes]) -> list[bytes]:
        forged = json.loads(ls[14])  # a sixth bid, slipped in after the others
        forged["payload"]["bidder"] = "91330100MA99999999"
        forged["salt"] = base64.b64encode(os.urandom(16)).decode()
        return [*ls[:15], canonicalize(forged), *ls[15:]]

    rep = verify(
        rebuild(edit_records(members(exported.path), insert), tmp_path / "t.zip"), exported.trust
    )
    f = failed(rep)
    assert not rep.ok
    assert "line 16 (sealed chain seq 9)" in f["chain"]
    assert "added" in f["project_head"]
    assert "seq 9" in f["inclusion"]


def test_swap_two_records(exported: Exported, tmp_path: Path) -> None:
    def swap(ls: list[bytes]) -> list[bytes]:
        ls[20], ls[21] = ls[21], ls[20]
        return ls

    rep = verify(
        rebuild(edit_records(members(exported.path), swap), tmp_path / "t.zip"), exported.trust
    )
    f = failed(rep)
    assert "seq 10 where seq 9 was due" in f["chain"]
    # Each record is still genuine and in the log: only the order gives it away.
    assert "inclusion" not in f


def test_truncate_the_log(exported: Exported, tmp_path: Path) -> None:
    m = members(exported.path)
    keep = len(lines(m[fmt.RECORDS])) - 3
    m = edit_records(m, lambda ls: ls[:keep])
    m[fmt.PROOFS] = join(lines(m[fmt.PROOFS])[:keep])
    sealed = sum(b"~sealed" in x for x in lines(m[fmt.RECORDS]))
    keep -= sealed  # the count of the process chain's records kept
    # The attachments of the dropped records go too, as a careful forger would do.
    atts = json.loads(m[fmt.ATTACHMENTS])["attachments"]
    kept = [a for a in atts if a.get("sealed_events") or min(a["events"]) < keep]
    m[fmt.ATTACHMENTS] = canonicalize({"attachments": kept})
    for a in atts:
        if a not in kept:
            m.pop(fmt.FILES_PREFIX + a["sha256"])
    rep = verify(rebuild(m, tmp_path / "t.zip"), exported.trust)
    f = failed(rep)
    assert list(f) == ["project_head"], f
    assert f"seq {keep}..{keep + 2} are missing (the bundle was truncated)" in f["project_head"]


def test_swap_an_attachment(exported: Exported, tmp_path: Path) -> None:
    m = members(exported.path)
    names = sorted(n for n in m if n.startswith(fmt.FILES_PREFIX) and len(m[n]) == 3000)
    a, b = names[0], names[1]
    m[a], m[b] = m[b], m[a]
    rep = verify(rebuild(m, tmp_path / "t.zip"), exported.trust)
    f = failed(rep)
    assert a in f["attachments"] and "swapped or altered" in f["attachments"]
    assert "attachment of seq" in f["attachments"]


def test_alter_an_attachment_keeping_its_name_and_size(exported: Exported, tmp_path: Path) -> None:
    m = members(exported.path)
    name = max((n for n in m if n.startswith(fmt.FILES_PREFIX)), key=lambda n: len(m[n]))
    data = bytearray(m[name])
    data[1_500_000] ^= 1  # one bit, in the second chunk
    m[name] = bytes(data)
    rep = verify(rebuild(m, tmp_path / "t.zip"), exported.trust)
    assert name in failed(rep)["attachments"]


def test_strip_a_cosignature(exported: Exported, tmp_path: Path) -> None:
    m = members(exported.path)
    cp = m[fmt.CHECKPOINT].decode()
    stripped = "".join(x for x in cp.splitlines(keepends=True) if "w2.test" not in x)
    rep = verify(rebuild(with_checkpoint(m, stripped), tmp_path / "t.zip"), exported.trust)
    f = failed(rep)
    assert list(f) == ["witnesses", "timestamp"] or list(f) == ["witnesses"], f
    assert "only 1 of the required 2" in f["witnesses"]


def test_forge_a_cosignature(exported: Exported, tmp_path: Path) -> None:
    m = members(exported.path)
    note = parse_note(m[fmt.CHECKPOINT].decode())
    sigs = tuple(
        NoteSignature(s.name, s.key_id, s.sig[:8] + os.urandom(64))
        if s.name.startswith("w1")
        else s
        for s in note.signatures
    )
    forged = dataclasses.replace(note, signatures=sigs).to_text()
    rep = verify(rebuild(with_checkpoint(m, forged), tmp_path / "t.zip"), exported.trust)
    f = failed(rep)
    assert "w1.test/witness" in f["witnesses"] and "does not verify" in f["witnesses"]


def test_a_cosignature_by_an_untrusted_witness_does_not_count(
    exported: Exported, tmp_path: Path
) -> None:
    m = members(exported.path)
    note = parse_note(m[fmt.CHECKPOINT].decode())
    # Replace w2's cosignature with one by a stranger key under another name.
    stranger = Signer.generate("stranger.test/witness", ALG_COSIGNATURE_V1)
    text = "".join(x for x in note.to_text().splitlines(keepends=True) if "w2.test" not in x)
    text = exported.witnesses.cosign(text, [stranger])
    rep = verify(rebuild(with_checkpoint(m, text), tmp_path / "t.zip"), exported.trust)
    assert "only 1 of the required 2" in failed(rep)["witnesses"]


def test_replace_the_timestamp_token(exported: Exported, tmp_path: Path) -> None:
    m = members(exported.path)
    # A genuine token from the same TSA, but over other data.
    m[fmt.TIMESTAMP] = exported.tsa.timestamp(b"another checkpoint body\n")
    rep = verify(rebuild(m, tmp_path / "t.zip"), exported.trust)
    assert "timestamp.tsr does not verify over checkpoint" in failed(rep)["timestamp"]
    # A token from another TSA, with its own CA shipped in the bundle: the pin catches it.
    other = make_tsa(tmp_path / "other-tsa")
    m[fmt.TIMESTAMP] = other.timestamp(parse_note(m[fmt.CHECKPOINT].decode()).text.encode())
    m[fmt.TSA_CA] = other.ca_pem
    rep = verify(rebuild(m, tmp_path / "t2.zip"), exported.trust)
    assert "not the TSA CA the trust file names" in failed(rep)["timestamp"]


def test_strip_the_timestamp_when_the_trust_file_demands_one(
    exported: Exported, tmp_path: Path
) -> None:
    m = members(exported.path)
    del m[fmt.TIMESTAMP], m[fmt.TSA_CA]
    rep = verify(rebuild(m, tmp_path / "t.zip"), exported.trust)
    assert "trust file demands one" in failed(rep)["timestamp"]
    # Without a pinned TSA, a missing token only warns.
    lax = dataclasses.replace(exported.trust, tsa_ca_sha256=None)
    rep = verify(tmp_path / "t.zip", lax)
    assert rep.ok and rep.check("timestamp").status == "warn"


def test_bundle_resigned_with_other_keys_fails_against_the_real_trust_file(
    exported: Exported, tmp_path: Path
) -> None:
    """An operator (or forger) builds a second log with the same origin and other keys."""
    lg = Ledger.open(tmp_path / "data", f"sqlite:///{tmp_path / 'l.db'}", ORIGIN)
    try:
        evs = lawful_tender(PROJECT)
        evs[1]["payload"]["issue_start"] = "2026-02-20T10:00:00+08:00"  # a nicer story
        post(lg, evs)
        plan = plan_bundle(lg, PROJECT)
        write_bundle(plan, tmp_path / "forged.zip")
    finally:
        lg.close()
    rep = verify(tmp_path / "forged.zip", exported.trust)
    f = failed(rep)
    assert "not signed by the log key bundle.test/log" in f["log_signature"]
    assert "project_head" in f and "witnesses" in f
    assert not rep.ok
    # Internally consistent, which is all a verifier without trust can say, and says.
    loose = verify(tmp_path / "forged.zip", None, allow_untrusted=True)
    assert loose.ok and loose.check("trust").status == "warn"
    assert "NO TRUST FILE" in loose.check("trust").message
    strict = verify(tmp_path / "forged.zip", None)
    assert not strict.ok and strict.check("trust").status == "fail"


def test_unreadable_input_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(BundleFormatError, match="not a zip"):
        verify(b"PK but not really", None)
    z = tmp_path / "z.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(BundleFormatError, match=r"no manifest\.json"):
        verify(z, None)
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(fmt.MANIFEST, json.dumps({"format": fmt.FORMAT, "version": 99}))
    with pytest.raises(BundleFormatError, match="version 99 is not supported"):
        verify(z, None)


def test_a_damaged_member_is_reported_not_raised(exported: Exported, tmp_path: Path) -> None:
    raw = bytearray(exported.path.read_bytes())
    with zipfile.ZipFile(exported.path) as zf:
        info = zf.getinfo(fmt.RECORDS)
    start = info.header_offset + 30 + len(info.filename.encode())
    start += int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little")
    for k in range(start + 100, start + 140):
        raw[k] ^= 0x5A  # bit rot in the deflated records
    out = tmp_path / "rot.zip"
    out.write_bytes(bytes(raw))
    rep = verify(out, exported.trust)
    f = failed(rep)
    assert not rep.ok
    assert "records.jsonl" in f["manifest"]
    # Which problem comes first depends on where the rot lands in the deflate stream (it
    # may decode to garbage lines before the CRC fails): the damage is among the details.
    rec = next(c for c in rep.checks if c.id == "records")
    assert rec.status == "fail" and any("damaged" in str(d) for d in rec.details), rec.details


def test_duplicate_and_unlisted_members_are_named(exported: Exported, tmp_path: Path) -> None:
    m = members(exported.path)
    m["extra/notes.txt"] = b"trust me"
    out = rebuild(m, tmp_path / "t.zip", fix_manifest=False)
    with zipfile.ZipFile(out, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr(fmt.RECORDS, b"{}\n")
    rep = verify(out, exported.trust)
    f = failed(rep)["manifest"]
    assert "records.jsonl: appears more than once" in f or "extra/notes.txt" in f
    details = rep.check("manifest").details
    assert any("extra/notes.txt: in the zip but not in the manifest" in d for d in details)
    assert any("appears more than once" in d for d in details)


# --- rules through the whole pipeline -----------------------------------------------------


@pytest.mark.parametrize("rule", ["E01", "E02", "E10", "E12"])
def test_a_tender_breaking_a_rule_is_flagged_with_its_id(
    rule: str, tmp_path: Path, db_url: str
) -> None:
    lg = Ledger.open(tmp_path / "data", db_url, ORIGIN)
    try:
        post(lg, lawful_tender("LAWFUL-1"))
        post(lg, breaking(rule, "BROKEN-1"))
        write_bundle(plan_bundle(lg, "LAWFUL-1"), tmp_path / "ok.zip")
        write_bundle(plan_bundle(lg, "BROKEN-1"), tmp_path / "bad.zip")
        trust = TrustPolicy(lg.signer.verifier)
    finally:
        lg.close()
    good = verify(tmp_path / "ok.zip", trust)
    assert good.ok, render_text(good)
    bad = verify(tmp_path / "bad.zip", trust)
    j = json.loads(render_json(bad))
    assert j["ok"] is False
    flagged = {c["id"]: c for c in j["checks"] if c["status"] == "fail"}
    assert rule in flagged, render_text(bad)
    c = flagged[rule]
    assert c["events"] and c["source"] and c["required"] is True
    # Everything else about the bundle is genuine.
    assert all(x["status"] == "pass" for x in j["checks"] if x["id"] in ("inclusion", "chain"))


def test_exporting_an_unknown_project_is_refused(tmp_path: Path) -> None:
    lg = Ledger.open(tmp_path / "data", f"sqlite:///{tmp_path / 'l.db'}", ORIGIN)
    try:
        with pytest.raises(ProjectNotFound):
            plan_bundle(lg, "NOPE")
    finally:
        lg.close()


def test_a_failed_export_leaves_no_file(tmp_path: Path) -> None:
    from ledger.bundle import BundleExportError

    files: dict[str, bytes] = {}
    lg = Ledger.open(tmp_path / "data", f"sqlite:///{tmp_path / 'l.db'}", ORIGIN)
    try:
        post(lg, lawful_tender("P-1", files))
        rotten = {k: v[:-1] + b"!" for k, v in files.items()}  # storage returns other bytes
        sources = BundleSources(open_object=lambda sha: io.BytesIO(rotten[sha]))
        plan = plan_bundle(lg, "P-1", sources, with_files=True)
        with pytest.raises(BundleExportError, match="not what the records name"):
            write_bundle(plan, tmp_path / "b.zip", sources)
        assert not (tmp_path / "b.zip").exists()
        assert not list(tmp_path.glob(".bundle-*"))
        with pytest.raises(BundleExportError, match="no object storage"):
            plan_bundle(lg, "P-1", BundleSources(), with_files=True)
    finally:
        lg.close()


# --- trust files --------------------------------------------------------------------------


def test_trust_file_round_trip_and_errors(exported: Exported) -> None:
    text = "# reviewers' trust file\n\n" + exported.trust.to_text().replace(
        "quorum 2", "quorum 2   # two of three"
    )
    assert parse_trust(text) == exported.trust
    log = exported.trust.log.vkey
    w = [s.verifier.vkey for s in exported.witnesses.signers]
    cases = {
        "": "no 'log <verifier key>' line",
        f"log {log}\nlog {log}\n": "line 2: a second 'log' line",
        f"log {log}\nwitness {w[0]}\n": "no 'quorum <k>' line",
        f"log {log}\nwitness {w[0]}\nquorum 2\n": "quorum 2 is impossible with 1",
        f"log {log}\nwitness {log}\nquorum 1\n": "must be a cosignature/v1 (type 0x04) key",
        f"log {w[0]}\n": "must be an Ed25519 (type 0x01) key",
        f"log {log}\nquorum two\n": "line 2: quorum 'two' is not a small whole number",
        f"log {log}\nwitness {w[0]}\nwitness {w[0]}\nquorum 1\n": "line 3: witness w1.test",
        f"log {log}\ntrust everything\n": "line 2: unknown keyword 'trust'",
        f"log {log[:-4]}AAAA\n": "line 1: verifier key",
        f"log {log}\ntsa-ca 1234\n": "line 2: tsa-ca wants the SHA-256",
    }
    for body, msg in cases.items():
        with pytest.raises(TrustError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            parse_trust(body)


# --- purity: `python -m verifier` runs with nothing but cryptography and asn1crypto -------

_BLOCKED_RUN = r"""
import importlib.abc, sys
BLOCKED = {"fastapi", "starlette", "pydantic", "sqlalchemy", "alembic", "minio", "httpx",
           "uvicorn", "rich", "psycopg", "ledger", "api", "storage", "witness"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked import of {name}")
        return None
sys.meta_path.insert(0, Block())
import runpy
sys.argv = ["python -m verifier", sys.argv[1], "--trust", sys.argv[2], "--format", "html",
            "-o", sys.argv[3]]
try:
    runpy.run_module("verifier", run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(code, loaded)
"""


def test_verifier_runs_with_server_libraries_blocked(exported: Exported, tmp_path: Path) -> None:
    trust = tmp_path / "trust.txt"
    trust.write_text(exported.trust.to_text())
    page = tmp_path / "report.html"
    r = subprocess.run(
        [sys.executable, "-c", _BLOCKED_RUN, str(exported.path), str(trust), str(page)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0 []", r.stdout + r.stderr
    html = page.read_text()
    assert 'class="verdict v-holds" id="integrity"' in html
    assert 'class="verdict v-holds" id="compliance"' in html
    assert "integrity HOLDS (VERIFIED" in r.stderr and "compliance HOLDS" in r.stderr


# --- payloads judged by the catalogue version of each record ------------------------------


def _payloads(rep: VerificationReport) -> Any:
    return next(c for c in rep.checks if c.id == "payloads")


def test_each_payload_is_judged_by_its_own_catalogue_version(
    exported: Exported, tmp_path: Path
) -> None:
    ok = _payloads(verify(exported.path, exported.trust))
    assert ok.status == "pass" and set(ok.extra["catalogue_versions"]) == {"3"}

    def edit(ls: list[bytes]) -> list[bytes]:
        naive = json.loads(ls[16])  # the opening, its time written without an offset
        naive["payload"]["opening_at"] = "2026-03-25 10:00"
        ls[16] = canonicalize(naive)
        old = json.loads(ls[17])  # as committed before version 2: untyped, any field
        del old["catalogue_version"]
        old["payload"] = {"room": "开标室3"}
        ls[17] = canonicalize(old)
        return ls

    rep = verify(
        rebuild(edit_records(members(exported.path), edit), tmp_path / "t.zip"), exported.trust
    )
    msg = failed(rep)["payloads"]
    assert (
        "record seq 5 " in msg
        and "payload.opening_at" in msg
        and f"catalogue version {CATALOGUE_VERSION}" in msg
    )
    assert "seq 17" not in msg and _payloads(rep).extra["catalogue_versions"]["1"] == 1

    def newer(ls: list[bytes]) -> list[bytes]:
        r = json.loads(ls[3])
        r["catalogue_version"] = 99
        ls[3] = canonicalize(r)
        return ls

    rep = verify(
        rebuild(edit_records(members(exported.path), newer), tmp_path / "n.zip"), exported.trust
    )
    assert _payloads(rep).status == "cannot_evaluate" and "99" in _payloads(rep).message
