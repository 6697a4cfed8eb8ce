"""Rendering a :class:`verifier.report_model.VerificationReport` as text, JSON or HTML.

Chinese first, English beside it. The HTML page is self-contained (inline style, no script,
no external resource), so a reviewer can open it anywhere, print it and file it: the
verdict, every check with its reason, the process rules with their legal sources and what
to do when one fails, and the project's timeline.
"""

from __future__ import annotations

import html
import json
from typing import Any

from verifier.report_model import Check, VerificationReport
from verifier.rules.days import load_calendar

_STATUS_ZH = {"pass": "通过", "fail": "未通过", "warn": "警示", "cannot_evaluate": "无法判断"}
_STATUS_EN = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "cannot_evaluate": "CANNOT EVALUATE"}

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


def _verdict(report: VerificationReport) -> tuple[str, str]:
    if report.ok:
        return "验证通过", "VERIFIED"
    return "验证未通过", "NOT VERIFIED"


def render_text(report: VerificationReport) -> str:
    """A plain-text report: one block per check, Chinese line then English line."""
    zh, en = _verdict(report)
    lines = [
        "见证 证据包验证 / Jianzheng evidence bundle verification",
        f"项目 Project: {report.project}   交易类型 Trade type: {report.trade_type}",
        f"日志 Log: {report.log_origin}   检查点 Checkpoint size: {report.checkpoint_size}   "
        f"记录 Records: {report.records}",
        f"导出时间 Exported at: {report.exported_at}",
        f"结论 Result: {zh} / {en}",
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
        if c.extra.get("rule") and c.status != "pass":
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
 sans-serif;margin:2em auto;max-width:1100px;color:#1b1b1b;line-height:1.45}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:2px solid #ccc;
 padding-bottom:.2em;margin-top:1.6em}
.en{color:#555;font-size:.92em}
.verdict{padding:.8em 1em;border-radius:6px;font-size:1.3em;font-weight:bold;margin:1em 0}
.ok{background:#e3f4e1;border:2px solid #2e7d32;color:#1b5e20}
.bad{background:#fde7e7;border:2px solid #c62828;color:#8e0000}
.note{background:#fff6d6;border:1px solid #d9a800;padding:.6em 1em;border-radius:6px}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.35em .5em;vertical-align:top;text-align:left}
th{background:#f2f2f2}
.s{font-weight:bold;white-space:nowrap;padding:.1em .4em;border-radius:4px}
.s-pass{background:#2e7d32;color:#fff}.s-fail{background:#c62828;color:#fff}
.s-warn{background:#ef8f00;color:#fff}.s-cannot_evaluate{background:#6a6a6a;color:#fff}
tr.hit td{background:#fff0f0}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dl.meta dt{font-weight:bold}
.rule{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;margin:.6em 0;
 page-break-inside:avoid}
.small{font-size:.85em}
code{font-size:.9em}
@media print{body{margin:0;max-width:none}.verdict{border-width:3px}}
"""


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def _badge(status: str) -> str:
    return (
        f'<span class="s s-{_e(status)}">{_e(_STATUS_ZH.get(status, status))} '
        f"{_e(_STATUS_EN.get(status, status))}</span>"
    )


def render_html(report: VerificationReport) -> str:
    """A self-contained, printable HTML report (Chinese first, English beside it)."""
    zh, en = _verdict(report)
    cal = load_calendar()
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>证据包验证报告 {_e(report.project)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>见证 · 证据包验证报告 <span class='en'>Evidence bundle verification report</span>"
        "</h1>",
        f'<div class="verdict {"ok" if report.ok else "bad"}">{_e(zh)} '
        f'<span class="en">{_e(en)}</span></div>',
    ]
    if not report.trusted:
        out.append(
            '<p class="note"><b>未提供信任文件：</b>本报告只检查了证据包的内部一致性，'
            "日志与见证人密钥取自证据包本身。<br><span class='en'><b>No trust file:</b> only "
            "the bundle's internal consistency was checked; the log and witness keys were "
            "taken from the bundle itself.</span></p>"
        )
    out += [
        '<dl class="meta">',
        f"<dt>项目 <span class='en'>Project</span></dt><dd><code>{_e(report.project)}</code></dd>",
        f"<dt>交易类型 <span class='en'>Trade type</span></dt><dd>{_e(report.trade_type)}</dd>",
        f"<dt>日志 <span class='en'>Log</span></dt><dd><code>{_e(report.log_origin)}</code></dd>",
        f"<dt>检查点规模 <span class='en'>Checkpoint size</span></dt>"
        f"<dd>{report.checkpoint_size}</dd>",
        f"<dt>记录数 <span class='en'>Records</span></dt><dd>{report.records}</dd>",
        f"<dt>导出时间 <span class='en'>Exported at</span></dt><dd>{_e(report.exported_at)}</dd>",
        "</dl>",
        "<h2>完整性检查 <span class='en'>Integrity checks</span></h2>",
        "<table><tr><th>结果 <span class='en'>Result</span></th><th>检查 <span class='en'>"
        "Check</span></th><th>说明 <span class='en'>Reason</span></th></tr>",
    ]
    for check in report.checks:
        if not check.extra.get("rule"):
            out.append(_check_row(check))
    out.append("</table>")

    out.append("<h2>程序规则 <span class='en'>Process rules</span></h2>")
    hits: set[int] = set()
    for res in report.rules:
        c = next((x for x in report.checks if x.id == res.rule.id), None)
        if c is None:
            continue
        if res.status != "pass":
            hits.update(res.events)
        out.append(_rule_block(res, c))
    if not report.rules:
        out.append("<p>未评估程序规则。<span class='en'>No process rules evaluated.</span></p>")

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

    out += [
        "<h2>项目时间线 <span class='en'>Timeline</span></h2>",
        "<table class='small'><tr><th>seq</th><th>日志序号 <span class='en'>index</span></th>"
        "<th>发生时间 <span class='en'>occurred</span></th><th>登记时间 <span class='en'>"
        "recorded</span></th><th>事件 <span class='en'>event</span></th><th>操作方 <span "
        "class='en'>actor</span></th><th>附件 <span class='en'>files</span></th></tr>",
    ]
    for t in report.timeline:
        cls = ' class="hit"' if t.seq in hits else ""
        out.append(
            f"<tr{cls}><td>{t.seq}</td><td>{t.index}</td><td>{_e(t.occurred_at)}</td>"
            f"<td>{_e(t.recorded_at)}</td><td><code>{_e(t.type)}</code></td>"
            f"<td>{_e(t.actor)}</td><td>{t.attachments or ''}</td></tr>"
        )
    out.append("</table>")
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
    sev = "违反即验证失败" if r.severity == "fail" else "违反仅作警示"
    sev_en = "a violation fails verification" if r.severity == "fail" else "a violation warns"
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
    if c.status != "pass":
        parts.append(
            f"<p class='small'><b>如何处理</b>：{_e(r.on_failure_zh)}<br>"
            f"<span class='en'><b>What to do</b>: {_e(r.on_failure_en)}</span></p>"
        )
    parts.append("</div>")
    return "\n".join(parts)
