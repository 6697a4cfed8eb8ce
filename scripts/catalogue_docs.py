"""Regenerate what is derived from the event catalogue (``ledger/catalogue.json``).

- ``verifier/catalogues.json``: the payload specifications of every catalogue version, so
  the offline verifier judges each record by the version it was committed under. Only the
  current version's entry is written; older entries are kept as they are, forever.
- ``docs/integration.md``: the lifecycles and the field tables between the
  ``<!-- generated:... -->`` markers; the prose around them is written by hand.

Run ``python scripts/catalogue_docs.py`` after changing the catalogue, and commit the
result; ``--check`` exits 1 when either file is out of date (tests/test_catalogue_docs.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.catalogue import TRADE_TYPES, load_catalogue  # noqa: E402
from ledger.records import LEDGER_EVENTS  # noqa: E402

VERIFIER_COPY = ROOT / "verifier" / "catalogues.json"
GUIDE = ROOT / "docs" / "integration.md"
SOURCE = ROOT / "ledger" / "catalogue.json"

#: One full lifecycle per trade type, in process order (the engineering one is the demo's).
LIFECYCLES: dict[str, list[str]] = {
    "engineering": [
        "project_registered", "tender_notice_published", "documents_issue_opened",
        "documents_issue_closed", "clarification_issued", "bid_deposit_paid", "bid_submitted",
        "bid_receipt_issued", "bid_deadline_reached", "bid_opening_started",
        "av_recording_started", "bid_decrypted", "opening_record_published",
        "av_recording_stopped", "expert_drawn", "committee_formed", "qualification_reviewed",
        "score_submitted", "evaluation_report_signed", "candidates_published",
        "winner_determined", "award_notice_issued", "tender_report_filed", "contract_signed",
        "performance_bond_posted", "contract_published", "deposit_refunded",
        "archive_package_created", "four_property_checked", "archive_transferred",
    ],
    "procurement": [
        "project_registered", "procurement_plan_filed", "tender_notice_published",
        "documents_issue_opened", "documents_issue_closed", "inquiry_filed",
        "inquiry_answered", "bid_deposit_paid", "bid_submitted", "bid_deadline_reached",
        "bid_opening_started", "bid_decrypted", "opening_record_published", "expert_drawn",
        "committee_formed", "qualification_reviewed", "score_submitted",
        "evaluation_report_signed", "winner_determined", "award_notice_issued",
        "award_result_published", "challenge_filed", "challenge_answered", "contract_signed",
        "contract_published", "contract_filed", "deposit_refunded", "acceptance_completed",
        "archive_package_created",
    ],
    "land": [
        "project_registered", "transfer_notice_published", "bid_deposit_paid",
        "listing_opened", "listing_bid_placed", "listing_closed", "onsite_auction_started",
        "auction_bid", "hammer_fall", "auction_record_signed", "deal_confirmed",
        "result_published", "contract_signed", "contract_published", "archive_package_created",
    ],
    "mining": [
        "project_registered", "transfer_notice_published", "bid_deposit_paid",
        "listing_opened", "listing_bid_placed", "listing_closed", "deal_confirmed",
        "result_published", "contract_signed", "archive_package_created",
    ],
    "property": [
        "project_registered", "info_pre_disclosed", "info_disclosed", "transferee_registered",
        "bid_deposit_paid", "onsite_auction_started", "auction_bid", "hammer_fall",
        "auction_record_signed", "deal_confirmed", "result_published", "contract_signed",
        "archive_package_created",
    ],
}  # fmt: skip


def _parts(conf: dict[str, Any]) -> list[str]:
    """The record paths an event's ``confidential`` entry commits (verifier/sealed.py)."""
    return [
        *(f"payload.{n}" for n in conf["fields"]),
        *(["actor.id"] if conf.get("actor") else []),
        *(["attachments"] if conf.get("attachments") else []),
        "poster_signature",
    ]


def verifier_copy() -> str:
    """verifier/catalogues.json with the current version's entry (re)written."""
    raw = json.loads(SOURCE.read_text("utf-8"))
    existing: dict[str, Any] = (
        json.loads(VERIFIER_COPY.read_text("utf-8")) if VERIFIER_COPY.exists() else {}
    )
    versions: dict[str, Any] = dict(existing.get("versions", {}))
    versions.setdefault("1", None)  # version 1 declared field names only, typed nothing
    versions[str(raw["version"])] = {
        ev["code"]: {
            # The report names events in Chinese (issue 12); the payload checks ignore these.
            "name_zh": ev["name_zh"],
            "name_en": ev["name_en"],
            "fields": ev["fields"],
            "one_of_required": ev.get("one_of_required", []),
            "sealed_fields": ev["sealed_fields"],
            # Confidential parts, like sealed ones, may stand as commitments in a bundle;
            # no other part of an open event may (docs/formats.md, "Confidential fields").
            **({"confidential_parts": _parts(ev["confidential"])} if "confidential" in ev else {}),
        }
        for ev in raw["events"]
    }
    out = {
        "about": (
            "Payload specifications of every event catalogue version, generated from "
            "ledger/catalogue.json by scripts/catalogue_docs.py. The verifier judges each "
            "record by its catalogue_version (absent: 1). Never edit or drop an old version."
        ),
        "versions": dict(sorted(versions.items(), key=lambda kv: int(kv[0]))),
        # The report names the trade type in Chinese (issue 12).
        "trade_types": {
            code: {"name_zh": t["name_zh"], "name_en": t["name_en"]}
            for code, t in raw["trade_types"].items()
        },
    }
    return json.dumps(out, indent=1, ensure_ascii=False) + "\n"


def _constraints(f: Any) -> str:
    parts = []
    if f.type == "int":
        lo = f.minimum if f.minimum is not None else "−2^53+1"
        hi = f.maximum if f.maximum is not None else "2^53−1"
        parts.append(f"{lo} … {hi}")
    if f.max_length is not None:
        parts.append(f"≤ {f.max_length} 字符 chars")
    if f.max_items is not None:
        parts.append(f"≤ {f.max_items} 项 items")
    if f.pattern:
        parts.append(f"`{f.pattern}`")
    if f.values:
        parts.append(" / ".join(f"`{v}`" for v in f.values))
    if f.to:
        parts.append("→ " + ", ".join(f"`{t}`" for t in f.to))
    return "; ".join(parts).replace("|", "\\|")


def _lifecycles() -> str:
    cat = load_catalogue()
    out = []
    for tt in TRADE_TYPES:
        t = cat.trade_types[tt]
        out.append(f"### {t.name_zh} / {t.name_en} (`{tt}`)\n")
        out.append("| # | 事件 event | 名称 name | 必填字段 required fields |")
        out.append("|---|---|---|---|")
        for i, code in enumerate(LIFECYCLES[tt], 1):
            ev = cat.get(code)
            if tt not in ev.trade_types:
                raise SystemExit(f"LIFECYCLES[{tt!r}]: {code} does not apply to {tt}")
            req = ", ".join(f"`{n}`" for n, f in ev.fields.items() if f.required) or "—"
            out.append(f"| {i} | [`{code}`](#{code}) | {ev.name_zh} / {ev.name_en} | {req} |")
        out.append("")
    return "\n".join(out)


def _reference() -> str:
    cat = load_catalogue()
    out = [f"事件目录版本 / catalogue version: **{cat.version}**\n"]
    for ev in cat:
        out.append(f'### <a id="{ev.code}"></a>`{ev.code}` {ev.name_zh} / {ev.name_en}\n')
        tts = ", ".join(ev.trade_types)
        out.append(f"- 交易类型 trade types: {tts}")
        out.append(f"- 依据 sources: {'；'.join(ev.sources) or '—'} ({ev.status})")
        if ev.sealed_fields:
            out.append(f"- 开标前保密 sealed until opening: {', '.join(ev.sealed_fields)}")
        if ev.confidential is not None:
            c = ev.confidential
            parts = [
                *c.fields,
                *(["actor.id"] if c.actor else []),
                *(["attachments"] if c.attachments else []),
            ]
            out.append(
                f"- 保密字段 confidential ({c.cls.name}): {', '.join(parts)}; {c.cls.name_zh} / "
                f"{c.cls.name_en}"
            )
        for group in ev.one_of_required:
            out.append(f"- 至少填写其一 at least one of: {', '.join(group)}")
        if ev.code in LEDGER_EVENTS:
            out.append("- 由账本自行记录，平台不可提交 / written by the ledger, never posted")
        out.append("")
        if ev.fields:
            out.append(
                "| 字段 field | 类型 type | 必填 required | 约束 constraints | 含义 meaning |"
            )
            out.append("|---|---|---|---|---|")
            for f in ev.fields.values():
                req = "是 yes" if f.required else "否 no"
                out.append(
                    f"| `{f.name}` | {f.type} | {req} | {_constraints(f)} | {f.zh} / {f.en} |"
                )
            out.append("")
        example = json.dumps(ev.example_payload(), ensure_ascii=False, indent=2)
        out.append("示例 example `payload`:\n")
        out.append(f"```json\n{example}\n```\n")
    return "\n".join(out)


def _codes(codes: Any) -> str:
    return ", ".join(f"`{c}`" for c in sorted(codes))


def _order() -> str:
    """The process-order rules (the catalogue's ``process_order``), one row each."""
    cat = load_catalogue()
    out = [
        "| 规则 rule | 内容 what it says | 条件 condition | 交易类型 trade types | 依据 sources |",
        "|---|---|---|---|---|",
    ]
    for r in cat.order.rules:
        if r.kind == "requires":
            cond = f"{_codes(r.events)} 之前须有 must follow one of {_codes(r.earlier)}"
        elif r.kind == "not_after":
            cond = f"{_codes(r.earlier)} 之后不得记录 refused after: {_codes(r.events)}"
        elif r.kind == "only_after":
            cond = f"`{r.once}` 之后只可记录 only these may follow: {_codes(r.allowed)}"
        else:
            cond = (
                f"`{r.opened_by}` 至以 `{r.closing_field}` 指明它的 `{r.closed_by}` 之间只可记录 "
                f"between them only: {_codes(r.allowed)}"
            )
        tts = ", ".join(r.trade_types)
        srcs = "；".join(r.sources).replace("|", "\\|")
        out.append(
            f"| {r.id} (`{r.kind}`) | {r.title_zh} / {r.title_en} | {cond} | {tts} "
            f"| {srcs} ({r.status}) |"
        )
    return "\n".join(out) + "\n"


def _replace(text: str, name: str, body: str) -> str:
    start, end = f"<!-- generated:{name}:start -->", f"<!-- generated:{name}:end -->"
    a, b = text.index(start) + len(start), text.index(end)
    return text[:a] + "\n" + body.rstrip("\n") + "\n" + text[b:]


def guide() -> str:
    text = GUIDE.read_text("utf-8")
    text = _replace(text, "order", _order())
    text = _replace(text, "lifecycles", _lifecycles())
    return _replace(text, "reference", _reference())


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, want in ((VERIFIER_COPY, verifier_copy()), (GUIDE, guide())):
        have = path.read_text("utf-8") if path.exists() else ""
        if have != want:
            stale.append(path.relative_to(ROOT))
            if not check:
                path.write_text(want, "utf-8")
    if check and stale:
        names = ", ".join(map(str, stale))
        print(f"out of date: {names}; run python scripts/catalogue_docs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
