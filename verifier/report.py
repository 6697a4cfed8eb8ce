"""Rendering a :class:`verifier.report_model.VerificationReport` as text, JSON or HTML.

Chinese first, English beside it. Every format leads with the two verdicts, integrity and
compliance, each with its reasons (issue 12). The HTML page is self-contained (inline style
with a print stylesheet, no script, no external resource), so a reviewer can open it
anywhere, print it and file it: the verdicts, the bundle's SHA-256, the verifier's version,
the verification time and the full trust keys, the timeline (event names in Chinese, times in
Beijing time, each event's key facts and attachments by name and hash), the process rules
with their legal sources and what to do when one fails, and every integrity check.
"""

from __future__ import annotations

import html
import json
from typing import Any

from verifier.payload import event_labels, parse_instant, trade_type_names
from verifier.report_model import Check, Indicator, Verdict, VerificationReport
from verifier.rules.days import CST, load_calendar

_STATUS_ZH = {
    "pass": "通过",
    "fail": "未通过",
    "warn": "警示",
    "cannot_evaluate": "无法判断",
    "not_applicable": "不适用",
}
_STATUS_EN = {
    "pass": "PASS",
    "fail": "FAIL",
    "warn": "WARN",
    "cannot_evaluate": "CANNOT EVALUATE",
    "not_applicable": "NOT APPLICABLE",
}

#: What a reviewer does when an integrity check fails (Chinese, English).
REMEDIES: dict[str, tuple[str, str]] = {
    "manifest": (
        "证据包在导出后被改动或传输损坏。请向导出方重新索取证据包，并保留本次的文件作为证据。",
        "The bundle changed after export or was damaged in transit. Ask the exporter for a new "
        "copy and keep this one as evidence.",
    ),
    "trust": (
        "从日志运营方以外的渠道（如监督部门公告）获取日志与见证人公钥，写入信任文件后重新验证。",
        "Obtain the log and witness keys through a channel independent of the operator (e.g. "
        "the supervising department's notice), write a trust file and verify again.",
    ),
    "log_signature": (
        "检查点不是由受信任的日志签名：证据包来自其他日志或已被伪造。不得采信，应向日志运营方与监督部门报告。",
        "The checkpoint is not signed by the trusted log: the bundle comes from another log or "
        "was forged. Do not rely on it; report to the operator and the supervising department.",
    ),
    "witnesses": (
        "见证人联署不足，日志可能向不同的人展示了不同的历史（分叉）。向各见证人核实其最近联署的检查点。",
        "Too few witnesses cosigned: the log may show different histories to different people. "
        "Ask each witness for the newest checkpoint it cosigned.",
    ),
    "timestamp": (
        "可信时间戳无效或被替换：事件发生时间仅能由见证人联署时间约束。向时间戳服务机构核实。",
        "The trusted timestamp is invalid or replaced; only the witnesses' cosignature times "
        "bound the time. Check with the time-stamping authority.",
    ),
    "project_head": (
        "证据包中的记录数与日志签名的数量不符，可能被截短或插入记录。向导出方索取完整证据包。",
        "The bundle holds another number of records than the log signed: it was cut short or "
        "records were added. Ask for the complete bundle.",
    ),
    "records": (
        "记录格式错误或不属于本项目。请重新导出，并对比原始记录。",
        "Records are malformed or belong to another project. Export again and compare.",
    ),
    "inclusion": (
        "所列记录与日志中登记的内容不一致：记录在登记后被改动，或从未登记。以日志中的版本为准，并报告监督部门。",
        "The named records differ from what the log committed: altered after commitment, or "
        "never logged. The logged version prevails; report it.",
    ),
    "chain": (
        "项目哈希链断裂：记录缺失、重复或顺序被调整。向导出方索取完整证据包，并报告监督部门。",
        "The project's chain is broken: records are missing, duplicated or reordered. Ask for "
        "the complete bundle and report it.",
    ),
    "poster_signatures": (
        "所列记录的提交方签名无效：记录在提交方签名后被改动。以提交方留存的原件为准，并报告监督部门。",
        "The named records' poster signatures do not verify: the records changed after the "
        "poster signed them. Compare with the poster's own copies and report it.",
    ),
    "poster_keys": (
        "所列记录不是用提交方当时登记的密钥签名的（或应签未签）：记录可能并非该提交方所发。"
        "向提交方核实其密钥登记，并报告监督部门。",
        "The named records were not signed with the key their poster had registered at the "
        "time (or were unsigned where a signature was due): the poster may not have sent them. "
        "Check the key registration with the poster and report it.",
    ),
    "attachments": (
        "附件文件与记录中的哈希不符（被替换或损坏）。从对象存储重新获取原件，"
        "并运行 jianzheng audit --objects。",
        "An attachment does not match the hash in its record (swapped or damaged). Fetch the "
        "original from storage again; the operator should run jianzheng audit --objects.",
    ),
}


def render_json(report: VerificationReport) -> str:
    """``{"ok": bool, "checks": [{"id", "status", "message", ...}], ...}``."""
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2) + "\n"


def verdict_lines(report: VerificationReport) -> list[str]:
    """The two verdicts, each with its reasons: what ``jianzheng verify`` prints first."""
    lines: list[str] = []
    for v in (report.integrity, report.compliance):
        (tzh, ten), (wzh, wen) = v.title, v.word
        lines.append(f"{tzh} {ten}: {wzh} / {wen}")
        for zh, en in v.notes:
            lines += [f"  ! {zh}", f"    {en}"]
        if v.aspect == "integrity" and v.holds:
            # Holding: name what was established, one line each; caveats first.
            for r in v.reasons:
                mark = "  ~ " if r.status != "pass" else "  + "
                lines.append(f"{mark}{r.title_zh} / {r.title}: {r.message}")
            continue
        grouped: dict[str, list[str]] = {"pass": [], "not_applicable": []}
        for r in v.reasons:
            if r.status in grouped:
                grouped[r.status].append(r.check)
                continue
            lines.append(f"  [{_STATUS_EN[r.status]}] {r.check} {r.title_zh} / {r.title}")
            lines.append(f"      {r.message_zh}")
            lines.append(f"      {r.message}")
        if grouped["pass"]:
            lines.append(f"  通过 pass: {', '.join(grouped['pass'])}")
        if grouped["not_applicable"]:
            lines.append(
                f"  不适用 not applicable (not tested): {', '.join(grouped['not_applicable'])}"
            )
    if report.indicators:
        lines.append(
            f"提示 Indicators: {len(report.indicators)} 项，供人工核查，不影响结论 / for a "
            "person to examine; they change no verdict"
        )
        for i in report.indicators:
            lines.append(f"  ? {i.id} {i.title_zh} / {i.title_en}: {i.message_zh} / {i.message}")
    return lines


def render_text(report: VerificationReport) -> str:
    """A plain-text report: the two verdicts with their reasons first, then one block per
    check, Chinese line then English line."""
    lines = [
        "见证 证据包验证 / Jianzheng evidence bundle verification",
        *verdict_lines(report),
        "",
        f"项目 Project: {report.project}   交易类型 Trade type: {report.trade_type}",
        f"日志 Log: {report.log_origin}   检查点 Checkpoint size: {report.checkpoint_size}   "
        f"记录 Records: {report.records}",
        f"导出时间 Exported at: {report.exported_at}",
        f"证据包 Bundle SHA-256: {report.bundle_sha256 or '(read from a stream)'}",
        f"验证程序 Verifier: {report.verifier_version}   验证时间 Verified at: "
        f"{report.verified_at}",
    ]
    if not report.trusted:
        lines.append(
            "注意：未提供信任文件，仅检查了内部一致性 / NOTE: no trust file, internal "
            "consistency only"
        )
    lines.append("")
    for c in report.checks:
        req = "" if c.required else "  (参考 advisory)"
        lines.append(f"[{_STATUS_EN[c.status]:<15}] {c.id:<14} {c.title_zh} / {c.title_en}{req}")
        lines.append(f"    {c.message_zh}")
        lines.append(f"    {c.message}")
        if c.extra.get("rule") and c.status not in ("pass", "not_applicable"):
            lines.append(f"    依据 Source: {c.extra.get('source_zh')} / {c.extra.get('source')}")
        dzh = c.extra.get("details_zh") or []
        for i, d in enumerate(c.details[1:6], 1):
            if i < len(dzh) and dzh[i] != d:
                lines.append(f"      - {dzh[i]}")
                lines.append(f"        {d}")
            else:
                lines.append(f"      - {d}")
        if len(c.details) > 6:
            lines.append(f"      - ... ({len(c.details) - 6} more, see --format json)")
    failed = [c for c in report.checks if c.status == "fail"]
    if failed:
        lines += ["", "如何处理 What to do:"]
        for c in failed:
            remedy = _remedy(report, c)
            if remedy:
                lines.append(f"  {c.id}: {remedy[0]}")
                lines.append(f"  {' ' * len(c.id)}  {remedy[1]}")
    return "\n".join(lines) + "\n"


def _remedy(report: VerificationReport, c: Check) -> tuple[str, str] | None:
    if c.id in REMEDIES:
        return REMEDIES[c.id]
    for res in report.rules:
        if res.rule.id == c.id:
            return res.rule.on_failure_zh, res.rule.on_failure_en
    return None


_CSS = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",
 sans-serif;margin:1.5em auto;max-width:1180px;color:#1b1b1b;line-height:1.45;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:2px solid #ccc;
 padding-bottom:.2em;margin-top:1.6em}
.en{color:#555;font-size:.92em}
.verdicts{display:grid;grid-template-columns:1fr 1fr;gap:1em;margin:1em 0}
.verdict{padding:.7em 1em;border-radius:6px;border:2px solid}
.verdict h2{margin:0 0 .3em;border:0;font-size:1.05em}
.verdict .word{font-size:1.5em;font-weight:bold}
.verdict ul{margin:.4em 0;padding-left:1.2em}.verdict li{margin:.15em 0}
.v-holds{background:#e3f4e1;border-color:#2e7d32;color:#1b5e20}
.v-fails{background:#fde7e7;border-color:#c62828;color:#8e0000}
.v-warns{background:#fff3e0;border-color:#ef8f00;color:#7a4300}
.v-cannot_evaluate{background:#eeeeee;border-color:#6a6a6a;color:#333}
.verdict li,.verdict p{color:#1b1b1b}
.note{background:#fff6d6;border:1px solid #d9a800;padding:.6em 1em;border-radius:6px}
.indicators{border:2px dashed #7b1fa2;border-radius:6px;padding:.6em 1em;margin:.6em 0}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.35em .5em;vertical-align:top;text-align:left}
th{background:#f2f2f2}
.s{font-weight:bold;white-space:nowrap;padding:.1em .4em;border-radius:4px}
.s-pass{background:#2e7d32;color:#fff}.s-fail{background:#c62828;color:#fff}
.s-warn{background:#ef8f00;color:#fff}.s-cannot_evaluate{background:#6a6a6a;color:#fff}
.s-not_applicable{background:#fff;color:#555;border:1px solid #999}
tr.hit td{background:#fff0f0}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dl.meta dt{font-weight:bold}dl.meta dd{margin:0}
dl.facts{display:grid;grid-template-columns:minmax(5em,45%) 1fr;gap:0 .6em;margin:0}
dl.facts dt{color:#555}dl.facts dd{margin:0}
.hash,.key{font-family:"DejaVu Sans Mono",monospace;font-size:.8em;word-break:break-all}
table.timeline{table-layout:fixed}table.timeline td{overflow-wrap:anywhere}
table.timeline .t{white-space:nowrap}
.rule{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;margin:.6em 0;
 page-break-inside:avoid}
.small{font-size:.85em}
code{font-size:.9em}
@media print{
 @page{size:A4;margin:14mm 12mm}
 body{margin:0;max-width:none;padding:0;font-size:10pt}
 .verdict{border-width:3px;-webkit-print-color-adjust:exact;print-color-adjust:exact}
 .s{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 h2{page-break-after:avoid}tr,.verdict,.rule{page-break-inside:avoid}
 details{display:block}details>summary{display:none}
 a{color:inherit;text-decoration:none}
}
"""


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def _badge(status: str) -> str:
    return (
        f'<span class="s s-{_e(status)}">{_e(_STATUS_ZH.get(status, status))} '
        f"{_e(_STATUS_EN.get(status, status))}</span>"
    )


def beijing(value: str) -> str:
    """An RFC 3339 instant as Beijing time (UTC+8), ``2026-03-25 10:00:00``; anything
    else unchanged (the records' own checks name what is wrong with it)."""
    try:
        return parse_instant(value).astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


#: At most this many facts per event, and this many characters per value, in the timeline.
MAX_FACTS = 12
MAX_FACT_CHARS = 160


def _fact(value: Any, ftype: str) -> str:
    if value in ("", [], {}, None):
        return "—"
    if ftype == "instant" and isinstance(value, str):
        return beijing(value)
    if isinstance(value, bool):
        return "是 yes" if value else "否 no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        text = "、".join(_fact(v, "") for v in value)
    elif isinstance(value, dict):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return text if len(text) <= MAX_FACT_CHARS else text[: MAX_FACT_CHARS - 1] + "…"


def _verdict_box(v: Verdict, indicators: list[Indicator]) -> list[str]:
    (tzh, ten), (wzh, wen) = v.title, v.word
    out = [
        f'<section class="verdict v-{_e(v.status)}" id="{_e(v.aspect)}">',
        f"<h2>{_e(tzh)} <span class='en'>{_e(ten)}</span></h2>",
        f"<div class='word'>{_e(wzh)} <span class='en'>{_e(wen)}</span></div>",
    ]
    out += [f"<p class='note small'>{_e(zh)}<br><span class='en'>{_e(en)}</span></p>"
            for zh, en in v.notes]  # fmt: skip
    shown = [r for r in v.reasons if r.status not in ("pass", "not_applicable")]
    if shown:
        out.append("<ul class='small'>")
        for r in shown:
            out.append(
                f"<li>{_badge(r.status)} <code class='small'>{_e(r.check)}</code> "
                f"<b>{_e(r.title_zh)}</b> <span class='en'>"
                f"{_e(r.title)}</span>：{_e(r.message_zh)}<br><span class='en'>"
                f"{_e(r.message)}</span></li>"
            )
        out.append("</ul>")
    if v.aspect == "integrity":
        held = [r for r in v.reasons if r.status == "pass"]
        if held:
            # What was established, by name; each check's own words are in the table below.
            names = "；".join(
                f"{_e(r.title_zh)} <span class='en'>{_e(r.title)}</span>" for r in held
            )
            out.append(
                f"<p class='small'>{_badge('pass')} 已核验 <span class='en'>established</span>"
                f"：{names}</p>"
            )
    if v.aspect == "compliance":
        for status, zh, en in (
            ("pass", "通过的规则", "Rules passed"),
            ("not_applicable", "不适用的规则（未记录相关事件，未检验）",
             "Rules not applicable (their events were not recorded; not tested)"),
        ):  # fmt: skip
            ids = [r.check for r in v.reasons if r.status == status]
            if ids:
                out.append(
                    f"<p class='small'>{_badge(status)} {_e(zh)} <span class='en'>{_e(en)}"
                    f"</span>：{_e(', '.join(ids))}</p>"
                )
        if indicators:
            out.append(_indicators(indicators))
    out.append("</section>")
    return out


def _indicators(indicators: list[Indicator]) -> str:
    parts = [
        "<div class='indicators' id='indicators'><b>提示 <span class='en'>Indicators</span>"
        f"（{len(indicators)}）</b>：供人工核查的迹象，不是结论，不影响上述结论与退出码。"
        "<br><span class='en'>Signs for a person to examine, never a verdict: they change "
        "neither verdict nor the exit code.</span><ul class='small'>"
    ]
    for i in indicators:
        ev = f"（seq {', '.join(map(str, i.events))}）" if i.events else ""
        src = f" — {_e(i.source_zh)} <span class='en'>{_e(i.source)}</span>" if i.source else ""
        strength = f" [{_e(i.strength)}]" if i.strength else ""
        parts.append(
            f"<li><b>{_e(i.id)} {_e(i.title_zh)}</b> <span class='en'>{_e(i.title_en)}</span>"
            f"{strength}{src}<br>{_e(i.message_zh)}{_e(ev)}<br><span class='en'>"
            f"{_e(i.message)}</span></li>"
        )
    parts.append("</ul></div>")
    return "".join(parts)


def _trade_type(report: VerificationReport) -> str:
    zh, en = trade_type_names().get(report.trade_type, ("", ""))
    if not zh:
        return _e(report.trade_type)
    return f"{_e(zh)} <span class='en'>{_e(en)} (<code>{_e(report.trade_type)}</code>)</span>"


def _meta(report: VerificationReport) -> list[str]:
    keys = report.trust_keys
    out = [
        '<dl class="meta">',
        f"<dt>项目 <span class='en'>Project</span></dt><dd><code>{_e(report.project)}</code></dd>",
        f"<dt>交易类型 <span class='en'>Trade type</span></dt><dd>{_trade_type(report)}</dd>",
        f"<dt>记录数 <span class='en'>Records</span></dt><dd>{report.records}</dd>",
        f"<dt>证据包 SHA-256 <span class='en'>Bundle</span></dt><dd class='hash'>"
        f"{_e(report.bundle_sha256 or '（从数据流读取，未计算） read from a stream')}</dd>",
        f"<dt>导出时间 <span class='en'>Exported</span></dt><dd>{_e(beijing(report.exported_at))}"
        f" 北京时间 <span class='en'>({_e(report.exported_at)})</span></dd>",
        f"<dt>验证时间 <span class='en'>Verified</span></dt><dd>"
        f"{_e(beijing(report.verified_at))} 北京时间 <span class='en'>"
        f"({_e(report.verified_at)})</span></dd>",
        f"<dt>验证程序 <span class='en'>Verifier</span></dt><dd>"
        f"<code>{_e(report.verifier_version)}</code></dd>",
        f"<dt>日志 <span class='en'>Log</span></dt><dd><code>{_e(report.log_origin)}</code>，"
        f"检查点规模 <span class='en'>checkpoint size</span> {report.checkpoint_size}</dd>",
    ]
    if keys is not None:
        whence = (
            "取自信任文件 <span class='en'>from the trust file</span>"
            if keys.from_trust_file
            else "取自证据包本身（未经独立核实） <span class='en'>taken from the bundle "
            "itself (not independently obtained)</span>"
        )
        out.append(f"<dt>信任密钥 <span class='en'>Trust keys</span></dt><dd>{whence}<br>")
        out.append(f"日志 <span class='en'>log</span>: <span class='key'>{_e(keys.log)}</span>")
        for w in keys.witnesses:
            out.append(f"<br>见证人 <span class='en'>witness</span>: <span class='key'>{_e(w)}"
                       "</span>")  # fmt: skip
        if keys.witnesses:
            out.append(f"<br>联署门槛 <span class='en'>quorum</span>: {keys.quorum}")
        if keys.tsa_ca_sha256:
            out.append(
                f"<br>时间戳机构 CA <span class='en'>TSA CA SHA-256</span>: "
                f"<span class='key'>{_e(keys.tsa_ca_sha256)}</span>"
            )
        out.append("</dd>")
    out.append("</dl>")
    return out


def _timeline(report: VerificationReport, hits: set[int]) -> list[str]:
    labels = event_labels()
    out = [
        "<h2 id='timeline'>项目时间线 <span class='en'>Timeline</span> "
        "<span class='small en'>（北京时间 Beijing time, UTC+8）</span></h2>",
        "<table class='small timeline'><colgroup><col style='width:5%'><col style='width:15%'>"
        "<col style='width:12%'><col style='width:12%'><col style='width:34%'>"
        "<col style='width:22%'></colgroup>"
        "<tr><th>seq</th><th>事件 <span class='en'>event</span></th>"
        "<th>发生 <span class='en'>occurred</span><br>登记 <span class='en'>recorded</span>"
        "</th><th>操作方 <span class='en'>actor</span></th><th>要点 <span class='en'>key "
        "facts</span></th><th>附件 <span class='en'>attachments</span></th></tr>",
    ]
    for t in report.timeline:
        lab = labels.get(t.type)
        name = (
            f"<b>{_e(lab.name_zh)}</b><br><span class='en'>{_e(lab.name_en)}</span><br>"
            if lab
            else ""
        )
        facts = []
        for k, v in list(t.facts.items())[:MAX_FACTS]:
            zh, en, ftype = lab.fields.get(k, (k, k, "")) if lab else (k, k, "")
            facts.append(f"<dt title='{_e(en)}'>{_e(zh)}</dt><dd>{_e(_fact(v, ftype))}</dd>")
        if len(t.facts) > MAX_FACTS:
            facts.append(f"<dt>…</dt><dd>+{len(t.facts) - MAX_FACTS}</dd>")
        if t.sealed:
            facts.append(
                "<dt>密封 <span class='en'>sealed</span></dt><dd>密封内容未随包开启 "
                "<span class='en'>sealed values not opened in this bundle</span></dd>"
            )
        if t.late_entry is not None:
            facts.append(f"<dt>补录 <span class='en'>late entry</span></dt><dd>"
                         f"{_e(t.late_entry)}</dd>")  # fmt: skip
        files = "".join(
            f"<div>{_e(f.name or '(未命名 unnamed)')}<br><span class='hash'>{_e(f.sha256)}"
            "</span></div>"
            for f in t.files
        )
        cls = ' class="hit"' if t.seq in hits and not t.sealed_chain else ""
        chain = "<br><span class='small'>密封链 <span class='en'>sealed</span></span>"
        chain = chain if t.sealed_chain else ""
        out.append(
            f"<tr{cls}><td>{t.seq}<br><span class='en small'>#{t.index}</span>{chain}</td>"
            f"<td>{name}<code class='small'>{_e(t.type)}</code></td>"
            f"<td class='t'>{_e(beijing(t.occurred_at))}<br><span class='en'>"
            f"{_e(beijing(t.recorded_at))}</span></td><td>{_e(t.actor)}</td>"
            f"<td><dl class='facts'>{''.join(facts)}</dl></td><td>{files}</td></tr>"
        )
    out.append("</table>")
    return out


def render_html(report: VerificationReport) -> str:
    """A self-contained, printable HTML report (Chinese first, English beside it): the two
    verdicts and their reasons, what was verified with which keys, the timeline, then the
    process rules and every check in detail."""
    cal = load_calendar()
    hits: set[int] = set()
    for res in report.rules:
        if res.status not in ("pass", "not_applicable"):
            hits.update(res.events)
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>证据包验证报告 {_e(report.project)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>见证 · 证据包验证报告 <span class='en'>Evidence bundle verification report</span>"
        "</h1>",
        f"<p>项目 <span class='en'>Project</span> <code>{_e(report.project)}</code> · "
        f"{_trade_type(report)} · {report.records} 条记录 <span class='en'>records</span></p>",
        '<div class="verdicts">',
        *_verdict_box(report.integrity, []),
        *_verdict_box(report.compliance, report.indicators),
        "</div>",
    ]
    if not report.trusted:
        out.append(
            '<p class="note"><b>未提供信任文件：</b>本报告只检查了证据包的内部一致性，'
            "日志与见证人密钥取自证据包本身。<br><span class='en'><b>No trust file:</b> only "
            "the bundle's internal consistency was checked; the log and witness keys were "
            "taken from the bundle itself.</span></p>"
        )
    out += _meta(report)
    out += _timeline(report, hits)

    out.append("<h2>程序规则 <span class='en'>Process rules</span></h2>")
    for res in report.rules:
        c = next((x for x in report.checks if x.id == res.rule.id), None)
        if c is not None:
            out.append(_rule_block(res, c))
    if not report.rules:
        out.append("<p>未评估程序规则。<span class='en'>No process rules evaluated.</span></p>")

    out += [
        "<h2>完整性检查 <span class='en'>Integrity checks</span></h2>",
        "<table><tr><th>结果 <span class='en'>Result</span></th><th>检查 <span class='en'>"
        "Check</span></th><th>说明 <span class='en'>Reason</span></th></tr>",
    ]
    out += [_check_row(c) for c in report.checks if c.aspect == "integrity"]
    out.append("</table>")

    failed = [c for c in report.checks if c.status == "fail"]
    out.append("<h2>如何处理 <span class='en'>What to do</span></h2>")
    if not failed:
        out.append(
            "<p>没有未通过的检查。<span class='en'>No check failed.</span> "
            "警示与无法判断的项目请人工复核。<span class='en'>Review warnings and "
            "“cannot evaluate” items by hand.</span></p>"
        )
    else:
        out.append("<ul>")
        for c in failed:
            remedy = _remedy(report, c)
            if remedy:
                out.append(
                    f"<li><b>{_e(c.id)}</b>：{_e(remedy[0])}<br>"
                    f"<span class='en'>{_e(remedy[1])}</span></li>"
                )
        out.append("</ul>")
    out.append(
        f"<p class='small'>期间按《民法典》第二百零一条、第二百零三条计算；工作日依国务院办公厅"
        f"节假日安排（随附日历覆盖 {_e(cal.span)}），日历以外的日期报告为“无法判断”。"
        f"<br><span class='en'>Periods are counted under Civil Code Arts. 201 and 203; "
        f"working days follow the State Council holiday notices (the shipped calendar covers "
        f"{_e(cal.span)}); dates outside it are reported as “cannot evaluate”.</span></p>"
    )
    out.append("</body></html>\n")
    return "\n".join(out)


def _check_row(c: Check) -> str:
    details = ""
    if c.details:
        zh = c.extra.get("details_zh") or []
        items = "".join(
            f"<li>{_e(zh[i])}<br><span class='en'>{_e(d)}</span></li>"
            if i < len(zh) and zh[i] != d
            else f"<li>{_e(d)}</li>"
            for i, d in enumerate(c.details)
        )
        details = (
            "<details><summary>详情 <span class='en'>details</span></summary>"
            f"<ul>{items}</ul></details>"
        )
    req = "" if c.required else "<br><span class='en small'>参考项 advisory</span>"
    return (
        f"<tr><td>{_badge(c.status)}</td><td><b>{_e(c.title_zh)}</b><br>"
        f"<span class='en'>{_e(c.title_en)}</span><br><code class='small'>{_e(c.id)}</code>"
        f"{req}</td><td>{_e(c.message_zh)}<br><span class='en'>{_e(c.message)}</span>"
        f"{details}</td></tr>"
    )


def _rule_block(res: Any, c: Check) -> str:
    r = res.rule
    status_zh = "已核实" if r.status == "confirmed" else "待核实"
    # A rule speaks to compliance only; a violation never touches integrity.
    sev = "违反即不合规" if r.severity == "fail" else "违反仅作警示"
    sev_en = "a violation fails compliance" if r.severity == "fail" else "a violation warns"
    parts = [
        '<div class="rule">',
        f"<p>{_badge(c.status)} <b>{_e(r.id)} {_e(r.title_zh)}</b> "
        f"<span class='en'>{_e(r.title_en)}</span></p>",
        f"<p>{_e(r.text_zh)}<br><span class='en'>{_e(r.text_en)}</span></p>",
        f"<p class='small'>依据 <span class='en'>Source</span>：{_e(r.source_zh)} "
        f"<span class='en'>({_e(r.source_en)})</span>；{status_zh} "
        f"<span class='en'>{_e(r.status)}</span>；{sev} <span class='en'>{sev_en}</span></p>",
        f"<p>{_e(c.message_zh)}<br><span class='en'>{_e(c.message)}</span></p>",
    ]
    if res.findings:
        parts.append("<ul class='small'>")
        for f in res.findings:
            ev = f"（seq {', '.join(map(str, f.events))}）" if f.events else ""
            parts.append(
                f"<li>{_badge(f.status)} {_e(f.zh)}{_e(ev)}<br><span class='en'>{_e(f.en)}</span>"
                "</li>"
            )
        parts.append("</ul>")
    if c.status not in ("pass", "not_applicable"):
        parts.append(
            f"<p class='small'><b>如何处理</b>：{_e(r.on_failure_zh)}<br>"
            f"<span class='en'><b>What to do</b>: {_e(r.on_failure_en)}</span></p>"
        )
    parts.append("</div>")
    return "\n".join(parts)
