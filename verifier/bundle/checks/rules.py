"""The process rules (verifier.rules) over the records as posted."""

from __future__ import annotations

from verifier.bundle.model import EvidenceBundle, Record
from verifier.report_model import CheckList, VerificationReport
from verifier.rules import evaluate as evaluate_rules

T_RULES = ("程序规则", "process rules")


def check_rules(
    b: EvidenceBundle, out: CheckList, rep: VerificationReport, records: list[Record]
) -> None:
    """Evaluate the process rules over the records as posted; each rule is a check."""
    # The records as posted: sealed ones opened (their sealed values are the bids).
    results = evaluate_rules([r.view for r in records])
    rep.rules = results
    if records and not rep.trade_type:
        rep.trade_type = str(records[0].obj.get("trade_type", ""))
    for res in results:
        rule = res.rule
        required = rule.severity == "fail"
        out.add(
            rule.id,
            (rule.title_zh, rule.title_en),
            res.status,
            res.message_en,
            res.message_zh,
            required=required,
            details=[f.en for f in res.findings],
            rule=True,
            applicable=res.applicable,
            severity=rule.severity,
            source=rule.source_en,
            source_zh=rule.source_zh,
            rule_status=rule.status,
            events=res.events,
        )
