"""The collusion indicators (verifier.indicators) over the bundle's opened records.

Shown under compliance as :class:`verifier.report_model.Indicator`\\ s, and never a check: an
indicator is a warning for a person to examine, so neither it nor a failure to compute one
changes a verdict or the exit code.
"""

from __future__ import annotations

from typing import Any

from verifier.bundle.model import Record
from verifier.indicators import NOTICE_EN, NOTICE_ZH, NotOpened, compute
from verifier.indicators import Indicator as Found
from verifier.report_model import Indicator, VerificationReport


def as_report_indicator(i: Found) -> Indicator:
    """One indicator as the report shows it; ``events`` are the seqs of its records (bids
    and deposits: the sealed chain's), ``evidence`` every value it rests on."""
    evidence: dict[str, Any] = {
        "kind": i.kind.name,
        "bidders": list(i.bidders),
        "items": [e.to_json() for e in i.evidence],
    }
    if i.more:
        evidence["left_out"] = i.more
    if i.test is not None:
        evidence["test"] = i.test
    return Indicator(
        id=i.id,
        title_zh=i.kind.title_zh,
        title_en=i.kind.title_en,
        message_zh=f"{i.message_zh}。{NOTICE_ZH}",
        message=f"{i.message_en}. {NOTICE_EN}",
        source_zh=i.kind.article_zh,
        source=i.kind.article_en,
        strength=i.strength,
        events=sorted({e.seq for e in i.evidence}),
        evidence=evidence,
    )


def report_indicators(rep: VerificationReport, records: list[Record]) -> None:
    """Compute the indicators from the records as posted (sealed ones opened) into ``rep``."""
    about: dict[str, object] = {"computed": False, "notice": NOTICE_EN, "notice_zh": NOTICE_ZH}
    try:
        found = compute(r.view for r in records)
    except NotOpened:
        about["reason"] = "the project has no bid opening: its bids are sealed"
        about["reason_zh"] = "项目尚未开标，投标内容仍密封，不计算预警指标"
    except Exception as e:  # a hostile bundle must not turn a warning into a failure
        about["reason"] = f"could not be computed on this bundle ({type(e).__name__}: {e})"[:300]
        about["reason_zh"] = "无法在此证据包上计算预警指标"
    else:
        rep.indicators = [as_report_indicator(i) for i in found.items]
        j = found.to_json()
        del j["indicators"]
        about.update(j, computed=True)
    rep.indicators_about = about
