"""``jianzheng demo``: post a realistic tender's life to a running ledger and verify it.

The events follow one engineering tender (依法必须招标的施工项目) from registration to
archiving in 2026 (inside the shipped holiday calendar). Every period holds under strict
民法典 第二百零一条、第二百零三条 counting (the starting day is not counted; a period
whose last day is a rest day runs to the end of the next working day, at 24:00): 20+ days
from documents to deadline (招标投标法 第二十四条), opening at the deadline (第三十四条),
three days of candidate publicity (实施条例 第五十四条). Every payload uses the event
catalogue's field names, so ``jianzheng verify`` passes the exported bundle.
Every receipt is verified offline against the log's verifier key. The bid files the
``bid_submitted`` events cite are small generated stand-ins, uploaded first through
``POST /v1/objects``, since the ledger refuses an attachment it does not hold.
"""

from __future__ import annotations

import hashlib
import secrets
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from verifier.note import parse_vkey
from verifier.receipt import Receipt, ReceiptError

CST = timezone(timedelta(hours=8))
BIDDERS = [f"91330100MA{n:08d}" for n in (27001, 27002, 27003, 27004, 27005)]
EXPERTS = [f"EXP-{n:04d}" for n in (1101, 1207, 1315, 1422, 1530)]
PLACE = "杭州市公共资源交易中心 开标室3"


def at(month: int, day: int, hour: int = 9, minute: int = 0) -> str:
    """An instant in 2026, China Standard Time (inside the shipped holiday calendar)."""
    return datetime(2026, month, day, hour, minute, tzinfo=CST).isoformat()


def demo_bid_files(project: str, n: int = 5) -> list[bytes]:
    """Stand-ins for the bidders' encrypted bid files (real ones are tens of MB)."""
    return [
        hashlib.shake_256(f"{project}/bid-{i + 1}.enc".encode()).digest(64 * 1024 + 997 * i)
        for i in range(n)
    ]


def lawful_tender(project: str, bid_files: list[bytes]) -> list[dict[str, Any]]:
    """The events of one engineering tender, each lawful, citing the five ``bid_files``.

    Field names and values follow the event catalogue (``GET /v1/catalogue``). Replies and
    decryptions name the event they follow by its ``idempotency_key``.
    """
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
    add(
        "project_registered",
        centre,
        at(3, 2),
        {"method": "open_tender", "estimate": 4_860_000_000, "must_tender": True},
    )
    add(
        "tender_notice_published",
        agency,
        at(3, 2, 10),
        {
            "issue_start": at(3, 2, 10),
            "bid_deadline": deadline,
            "place": PLACE,
            # The sale and the publicity end at 17:00 on their last days: 民法典 第203条第二款
            # lets business hours set in the notice end a period's last day.
            "business_hours": "08:30-17:00",
        },
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
    bid_keys: list[str] = []
    # Prices as independent bidders offer them: spread (a coefficient of variation of about
    # 3 %) and in no regular progression, so the collusion indicators raise nothing.
    prices = (4_650_100_000, 4_832_600_000, 5_014_350_000, 4_680_100_000, 4_921_780_000)
    for i, b in enumerate(BIDDERS):
        data = bid_files[i]
        digest = hashlib.sha256(data).hexdigest()
        bid_keys.append(f"{project}-{len(evs):03d}")
        add(
            "bid_submitted",
            {"id": b, "role": "bidder"},
            at(3, 20, 9, i),
            {
                "bidder": b,
                "price": prices[i],
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
            {"decrypt_at": at(3, 25, 10, 2 + i), "bid_ref": {"idempotency_key": bid_keys[i]}},
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


def run_demo(url: str, token: str | None, events: int = 50, project: str | None = None) -> int:
    if not token:
        print(
            "jianzheng demo: give a platform token with --token or JIANZHENG_TOKEN", file=sys.stderr
        )
        return 2
    project = project or f"E3301{secrets.randbelow(10**12):012d}"
    files = demo_bid_files(project)
    evs = lawful_tender(project, files)[:events]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        try:
            info = http.get("/v1/log").raise_for_status().json()
        except httpx.HTTPError as e:
            print(f"jianzheng demo: cannot reach {url}: {e}", file=sys.stderr)
            return 2
        log_key = parse_vkey(info["verifier_key"])
        print(f"log {info['origin']} at {url}, key {info['verifier_key']}")
        for i, data in enumerate(files):
            digest = hashlib.sha256(data).hexdigest()
            r = http.post(
                "/v1/objects",
                content=data,
                headers={"X-Content-SHA256": digest, "Content-Type": "application/octet-stream"},
            )
            if r.status_code not in (200, 201):
                print(f"  bid-{i + 1}.enc upload REFUSED {r.status_code}: {r.text[:200]}")
                return 1
            print(f"  bid-{i + 1}.enc  {len(data)} bytes stored as {digest[:16]}…")
        print(f"posting {len(evs)} events of tender {project}")
        ok = 0
        for ev in evs:
            r = http.post("/v1/events", json=ev)
            if r.status_code not in (200, 201):
                print(f"  {ev['type']:<28} REFUSED {r.status_code}: {r.text[:200]}")
                continue
            receipt = Receipt.from_json(r.json())
            try:
                sc = receipt.verify(log_key)
            except ReceiptError as e:
                print(f"  {ev['type']:<28} index {receipt.index:>7}  RECEIPT INVALID: {e}")
                continue
            ok += 1
            print(
                f"  {ev['type']:<28} index {receipt.index:>7}  verified in tree of "
                f"{sc.checkpoint.size}"
            )
    print(f"{ok}/{len(evs)} receipts verified offline with the log's key")
    return 0 if ok == len(evs) else 1
