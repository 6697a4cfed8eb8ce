"""A lawful engineering tender for the verifier's tests, and ways to break one rule at a time.

Field names follow the event catalogue's ``fields`` (``ledger/catalogue.json``); the flow
follows ``api/demo.py``. Dates are in 2026 (inside the shipped holiday calendar) and chosen
so that every period of 招标投标法 and its 实施条例 holds, including 民法典 第203条: a
period whose last day is a rest day runs to the next working day.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

CST = timezone(timedelta(hours=8))
BIDDERS = [f"91330100MA{n:08d}" for n in (27001, 27002, 27003, 27004, 27005)]
EXPERTS = [f"EXP-{n:04d}" for n in (1101, 1207, 1315, 1422, 1530)]
PLACE = "杭州市公共资源交易中心 开标室3"


def at(month: int, day: int, hour: int = 9, minute: int = 0) -> str:
    return datetime(2026, month, day, hour, minute, tzinfo=CST).isoformat()


def bid_file(i: int, size: int = 3000) -> bytes:
    """Deterministic bytes standing in for bidder i's encrypted bid file."""
    seed = hashlib.sha256(f"bid-{i}".encode()).digest()
    return (seed * (size // 32 + 1))[:size]


def lawful_tender(project: str, files: dict[str, bytes] | None = None) -> list[dict[str, Any]]:
    """About forty events of one tender, each lawful; ``files`` gets the bid files by hash."""
    evs: list[dict[str, Any]] = []
    agency = {"id": "AG-330100-018", "role": "tender_agent"}
    centre = {"id": "PRTC-HZ", "role": "platform"}

    def add(
        kind: str,
        actor: dict[str, str],
        when: str,
        payload: dict[str, Any],
        attachments: list[dict[str, Any]] | None = None,
    ) -> None:
        ev: dict[str, Any] = {
            "project": project,
            "trade_type": "engineering",
            "type": kind,
            "actor": actor,
            "occurred_at": when,
            "payload": payload,
            "idempotency_key": f"{project}-{len(evs):03d}",
        }
        if attachments:
            ev["attachments"] = attachments
        evs.append(ev)

    deadline = at(3, 25, 10)
    add("project_registered", centre, at(3, 2), {"method": "open", "estimate": 4_860_000_000})
    add(
        "tender_notice_published",
        agency,
        at(3, 2, 10),
        {"issue_start": at(3, 2, 10), "bid_deadline": deadline, "place": PLACE},
    )
    add("documents_issue_opened", agency, at(3, 2, 10, 1), {"issue_open": at(3, 2, 10, 1)})
    # Five days from 2 March end on Saturday 7 March: under 第203条 the sale runs to Monday 9.
    add("documents_issue_closed", agency, at(3, 9, 17), {"issue_close": at(3, 9, 17)})
    # Exactly fifteen days before the deadline (25 March is a Wednesday).
    add(
        "clarification_issued",
        agency,
        at(3, 10),
        {"clarif_at": at(3, 10), "applies_to": "tender_documents"},
    )
    for i, b in enumerate(BIDDERS):
        add(
            "bid_deposit_paid",
            {"id": b, "role": "bidder"},
            at(3, 11, 9, i),
            {"bidder": b, "amount": 80_000_000, "payer_account": f"6222-{i:04d}"},
        )
    for i, b in enumerate(BIDDERS):
        data = bid_file(i)
        digest = hashlib.sha256(data).hexdigest()
        if files is not None:
            files[digest] = data
        add(
            "bid_submitted",
            {"id": b, "role": "bidder"},
            at(3, 20, 9, i),
            {
                "bidder": b,
                "price": 4_650_100_000 + i * 10_000_000,
                "bid_file": f"bid-{i + 1}.enc",
                "submit_at": at(3, 20, 9, i),
                "ciphertext_hash": digest,
            },
            [
                {
                    "sha256": digest,
                    "size": len(data),
                    "media_type": "application/octet-stream",
                    "name": f"bid-{i + 1}.enc",
                }
            ],
        )
    add("bid_deadline_reached", centre, deadline, {"bid_deadline": deadline, "bid_count": 5})
    add("bid_opening_started", agency, deadline, {"opening_at": deadline, "place": PLACE})
    add("av_recording_started", centre, at(3, 25, 10, 1), {"session": "开标室3-上午"})
    for i in range(len(BIDDERS)):
        add(
            "bid_decrypted",
            centre,
            at(3, 25, 10, 2 + i),
            {"decrypt_at": at(3, 25, 10, 2 + i), "bid_ref": str(15 + i)},
        )
    add("opening_record_published", agency, at(3, 25, 10, 30), {"published_at": at(3, 25, 10, 30)})
    add("av_recording_stopped", centre, at(3, 25, 10, 31), {"session": "开标室3-上午"})
    add("expert_drawn", centre, at(3, 25, 11), {"expert_ids": EXPERTS, "method": "random"})
    add("committee_formed", agency, at(3, 25, 11, 30), {"expert_ids": EXPERTS})
    add("qualification_reviewed", agency, at(3, 25, 14), {"qualified_count": 5})
    for e in EXPERTS:
        add(
            "score_submitted",
            {"id": e, "role": "expert"},
            at(3, 26, 10),
            {"expert_id": e, "bidder": BIDDERS[3], "criterion": "price", "score": "88.50"},
        )
    add(
        "evaluation_report_signed",
        agency,
        at(3, 26, 17),
        {
            "report_at": at(3, 26, 17),
            "signers": EXPERTS,
            "dissenters": [],
            "ranked_candidates": [BIDDERS[3], BIDDERS[1], BIDDERS[0]],
        },
    )
    # Published the next day; three days of publicity end on Monday 30 March.
    add(
        "candidates_published",
        agency,
        at(3, 27),
        {
            "candidates": [BIDDERS[3], BIDDERS[1], BIDDERS[0]],
            "publicity_start": at(3, 27),
            "publicity_end": at(3, 30, 17),
        },
    )
    add("winner_determined", agency, at(3, 31, 10), {"winner": BIDDERS[3], "rank": 1})
    add(
        "award_notice_issued",
        agency,
        at(4, 1, 10),
        {"notice_at": at(4, 1, 10), "winner": BIDDERS[3]},
    )
    add("tender_report_filed", agency, at(4, 8, 10), {"filed_at": at(4, 8, 10)})
    add(
        "contract_signed",
        {"id": BIDDERS[3], "role": "bidder"},
        at(4, 20, 10),
        {"contract_at": at(4, 20, 10)},
    )
    add(
        "performance_bond_posted",
        {"id": BIDDERS[3], "role": "bidder"},
        at(4, 20, 11),
        {"amount": 400_000_000, "contract_price": 4_680_100_000},
    )
    add("contract_published", agency, at(4, 21), {"published_at": at(4, 21)})
    for i, b in enumerate(BIDDERS):
        add(
            "deposit_refunded",
            centre,
            at(4, 22, 9, i),
            {"bidder": b, "amount": 80_000_000, "refunded_at": at(4, 22, 9, i)},
        )
    add(
        "archive_package_created",
        centre,
        at(5, 8),
        {"retention_until": "2056-05-08", "retention_class": "30y"},
    )
    return evs


def _find(evs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(e for e in evs if e["type"] == kind)


def breaking(rule: str, project: str) -> list[dict[str, Any]]:
    """The lawful tender with one rule broken."""
    evs = lawful_tender(project)
    if rule == "E01":
        # Documents issued only 13 days before the deadline (12 March to 25 March).
        notice = _find(evs, "tender_notice_published")
        notice["payload"]["issue_start"] = at(3, 12, 10)
        notice["occurred_at"] = at(3, 12, 10)
    elif rule == "E02":
        # Opened half an hour after the deadline, in another room.
        op = _find(evs, "bid_opening_started")
        op["payload"] = {"opening_at": at(3, 25, 10, 30), "place": "开标室5"}
        op["occurred_at"] = at(3, 25, 10, 30)
    elif rule == "E10":
        # Candidates published five days after the report (26 March to 31 March).
        pub = _find(evs, "candidates_published")
        pub["payload"]["publicity_start"] = at(3, 31)
        pub["payload"]["publicity_end"] = at(4, 3, 17)
        pub["occurred_at"] = at(3, 31)
    elif rule == "E12":
        # Contract signed 49 days after the award notice (the limit, with 劳动节, is 6 May).
        c = _find(evs, "contract_signed")
        c["payload"]["contract_at"] = at(5, 20, 10)
        c["occurred_at"] = at(5, 20, 10)
    else:
        raise ValueError(rule)
    return evs
