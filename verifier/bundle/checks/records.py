"""The records check: each line of ``records.jsonl`` a canonical record of the project."""

from __future__ import annotations

import hashlib

from verifier.bundle.format import MAX_RECORD_LINE, MAX_RECORDS, RECORDS
from verifier.bundle.model import EvidenceBundle, Record
from verifier.canonical import CanonicalError, canonicalize, parse_strict_json
from verifier.report_model import CheckList, Problems
from verifier.sealed import SEALED_SUFFIX

T_RECORDS = ("记录格式与哈希", "records and their hashes")


def check_records(b: EvidenceBundle, out: CheckList) -> list[Record]:
    """Each line of ``records.jsonl`` is an RFC 8785 canonical record of the project (or
    of its sealed chain); returns them parsed and hashed, in the order of the lines."""
    records: list[Record] = []
    problems = Problems()
    info = b.archive.members.get(RECORDS)
    if info is None:
        out.add("records", T_RECORDS, "fail", f"{RECORDS} is missing", f"缺少 {RECORDS}")
        return records
    bound = b.archive.limits.records_bytes
    if info.file_size > bound:
        out.add(
            "records",
            T_RECORDS,
            "fail",
            f"{RECORDS} is larger than {bound} bytes",
            f"{RECORDS} 超过 {bound} 字节",
        )
        return records
    project = b.project
    for n, line in enumerate(b.member_lines(RECORDS, problems), 1):
        if len(records) >= MAX_RECORDS:
            problems.append(f"more than {MAX_RECORDS} records: the rest were not read")
            break
        if line is None:
            problems.append(f"line {n}: longer than {MAX_RECORD_LINE} bytes")
            continue
        try:
            obj = parse_strict_json(line)
            if not isinstance(obj, dict):
                raise CanonicalError("$", "a record must be a JSON object")
            canon = canonicalize(obj)
        except CanonicalError as e:
            problems.append(f"line {n}: not a valid record: {e}")
            continue
        where = f"line {n} (seq {obj.get('seq')}, index {obj.get('index')})"
        if canon != line:
            problems.add(f"{where}: not in RFC 8785 canonical form", f"第 {n} 行记录不是规范格式")
        in_sealed = obj.get("project") == project + SEALED_SUFFIX
        # A process record may carry commitments too: its confidential fields.
        if in_sealed and "commitments" not in obj:
            problems.append(f"{where}: a record of the sealed chain must carry commitments")
        if obj.get("project") != project and not in_sealed:
            problems.add(
                f"{where}: belongs to project {obj.get('project')!r}",
                f"第 {n} 行记录属于其他项目 {obj.get('project')!r}",
            )
        for key in ("seq", "index"):
            v = obj.get(key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                problems.append(f"{where}: {key} is not a non-negative integer")
        records.append(Record(n, canon, obj, hashlib.sha256(canon).digest(), obj))
    if problems:
        out.failed_on(
            "records",
            T_RECORDS,
            problems,
            f"{len(problems)} problem(s) in {RECORDS}; first: ",
            f"{RECORDS} 有 {len(problems)} 处问题；首个：",
        )
    else:
        out.passed(
            "records",
            T_RECORDS,
            f"{len(records)} records of project {project}, each in canonical form and hashed",
            f"项目 {project} 的 {len(records)} 条记录均为规范格式并已计算哈希",
        )
    return records
