"""The payloads check: each record against the catalogue version it was committed under."""

from __future__ import annotations

from typing import Any

from verifier.bundle.model import EvidenceBundle, Record, record_place
from verifier.payload import PayloadError, UnknownCatalogueVersion, load_payload_catalogues
from verifier.report_model import CheckList, Problems

T_PAYLOADS = ("记录内容与事件目录", "payloads and the event catalogue")


def check_payloads(b: EvidenceBundle, out: CheckList, records: list[Record]) -> None:
    """Each record's payload against the catalogue version it was committed under."""
    cats = load_payload_catalogues()
    problems = Problems()
    per_version: dict[int, int] = {}
    newer: set[int] = set()
    for r in records:
        version = r.obj.get("catalogue_version", 1)  # absent before version 2
        if type(version) is not int or version < 1:
            problems.add(
                f"{record_place(r)}: catalogue_version {str(version)[:20]!r} is not a version",
                f"记录 seq {r.obj.get('seq')} 的 catalogue_version 无效",
            )
            continue
        per_version[version] = per_version.get(version, 0) + 1
        # The payload as posted (a sealed record opened); unopened, its public part.
        payload = r.view.get("payload")
        try:
            found = cats.checker(version, str(r.obj.get("type")))
        except UnknownCatalogueVersion:
            newer.add(version)
            continue
        # An open event commits only the parts the catalogue makes confidential: a backend
        # that withheld anything else (a winner, a date) would pass it off as the law's.
        committed = r.obj.get("commitments")
        if not r.sealed and isinstance(committed, dict):
            hidden = sorted(
                set(committed) - cats.confidential_parts(version, str(r.obj.get("type")))
            )
            if hidden:
                problems.add(
                    f"{record_place(r)}: commits {', '.join(x[:60] for x in hidden[:5])}, which "
                    f"catalogue version {version} does not make confidential",
                    f"记录 seq {r.obj.get('seq')} 以承诺值隐藏了事件目录第 {version} 版未列为保密的"
                    f"部分：{', '.join(x[:60] for x in hidden[:5])}",
                )
        if found is None or not isinstance(payload, dict):
            continue
        checker, sealed = found
        try:
            checker.check({k: v for k, v in payload.items() if k not in sealed})
        except PayloadError as e:
            problems.add(
                f"{record_place(r)}: payload.{e.field}: {e.problem}; expected {e.expected} "
                f"(catalogue version {version})",
                f"记录 seq {r.obj.get('seq')} 的 payload.{e.field}：{e.problem_zh}；"
                f"应为{e.expected_zh}（事件目录第 {version} 版）",
            )
    counts = ", ".join(f"version {v}: {n}" for v, n in sorted(per_version.items()))
    counts_zh = "，".join(f"第 {v} 版 {n} 条" for v, n in sorted(per_version.items()))
    extra: dict[str, Any] = {"catalogue_versions": {str(v): n for v, n in per_version.items()}}
    if problems:
        out.failed_on(
            "payloads",
            T_PAYLOADS,
            problems,
            f"{len(problems)} payload(s) break the catalogue they were committed under; first: ",
            f"{len(problems)} 条记录的内容不符合其提交时的事件目录；首个：",
            **extra,
        )
    elif newer:
        names = ", ".join(map(str, sorted(newer)))
        out.add(
            "payloads",
            T_PAYLOADS,
            "cannot_evaluate",
            f"records were committed under catalogue version(s) {names}, newer than this "
            "verifier knows; update the verifier to check their payloads",
            f"部分记录按本验证程序未知的事件目录第 {names} 版提交，请更新验证程序",
            required=False,
            **extra,
        )
    else:
        out.passed(
            "payloads",
            T_PAYLOADS,
            f"every payload holds to the catalogue version it was committed under "
            f"({counts or 'no records'}; version 1 typed no payloads)",
            f"每条记录的内容均符合其提交时的事件目录（{counts_zh or '无记录'}；"
            "第 1 版未规定字段类型）",
            **extra,
        )
