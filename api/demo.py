"""``jianzheng demo``: post a realistic tender's life to a running ledger and verify it.

The events follow one engineering tender (依法必须招标的施工项目) from registration to
archiving, with lawful periods: 20+ days from documents to deadline (招标投标法 第二十四条),
opening at the deadline (第三十四条), three days of candidate publicity (实施条例 第五十四条).
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


def demo_bid_files(project: str, n: int = 5) -> list[bytes]:
    """Stand-ins for the bidders' encrypted bid files (real ones are tens of MB)."""
    return [
        hashlib.shake_256(f"{project}/bid-{i + 1}.enc".encode()).digest(64 * 1024 + 997 * i)
        for i in range(n)
    ]


def tender_lifecycle(
    project: str, start: datetime, bid_files: list[bytes] | None = None
) -> list[dict[str, Any]]:
    """About fifty events of one engineering tender, in order."""
    files = bid_files if bid_files is not None else demo_bid_files(project)
    bidders = [f"91330100MA{n:08d}" for n in (27001, 27002, 27003, 27004, 27005)]
    experts = [f"EXP-{n:04d}" for n in (1101, 1207, 1315, 1422, 1530)]
    t = start
    evs: list[dict[str, Any]] = []

    def add(
        kind: str,
        actor: tuple[str, str],
        after: timedelta,
        payload: dict[str, Any],
        attachments: list[dict[str, Any]] | None = None,
    ) -> None:
        nonlocal t
        t = t + after
        ev: dict[str, Any] = {
            "project": project,
            "trade_type": "engineering",
            "type": kind,
            "actor": {"id": actor[0], "role": actor[1]},
            "occurred_at": t.isoformat(),
            "payload": payload,
            "idempotency_key": f"{project}-{len(evs):03d}",
        }
        if attachments:
            ev["attachments"] = attachments
        evs.append(ev)

    agency = ("AG-330100-018", "tender_agent")
    centre = ("PRTC-HZ", "platform")
    deadline = start + timedelta(days=23, hours=1)
    add(
        "project_registered",
        centre,
        timedelta(0),
        {"name": "城西污水处理厂提标改造工程施工", "estimate_fen": 4_860_000_000},
    )
    add(
        "tender_notice_published",
        agency,
        timedelta(hours=1),
        {
            "issue_start": (start + timedelta(hours=1)).isoformat(),
            "bid_deadline": deadline.isoformat(),
            "place": "杭州市公共资源交易中心 开标室3",
        },
    )
    add("documents_issue_opened", agency, timedelta(minutes=1), {})
    add("documents_issue_closed", agency, timedelta(days=6), {})
    add("clarification_issued", agency, timedelta(days=1), {"number": 1})
    for i, b in enumerate(bidders):
        add(
            "bid_deposit_paid",
            (b, "bidder"),
            timedelta(days=1, minutes=i),
            {"amount_fen": 80_000_000},
        )
    for i, b in enumerate(bidders):
        digest = hashlib.sha256(files[i]).hexdigest()
        add(
            "bid_submitted",
            (b, "bidder"),
            timedelta(days=2, minutes=i),
            {"ciphertext_sha256": digest},
            [
                {
                    "sha256": digest,
                    "size": len(files[i]),
                    "media_type": "application/octet-stream",
                    "name": f"bid-{i + 1}.enc",
                }
            ],
        )
    t = deadline - timedelta(seconds=1)
    add("bid_deadline_reached", centre, timedelta(seconds=1), {"bids": len(bidders)})
    add(
        "bid_opening_started",
        agency,
        timedelta(0),
        {"opening_at": deadline.isoformat(), "place": "杭州市公共资源交易中心 开标室3"},
    )
    add("av_recording_started", centre, timedelta(seconds=5), {"room": "开标室3"})
    for b in bidders:
        add("bid_decrypted", (b, "bidder"), timedelta(minutes=2), {})
    add(
        "opening_record_published",
        agency,
        timedelta(minutes=10),
        {"prices_fen": [4_712_300_000, 4_698_000_000, 4_805_500_000, 4_650_100_000, 4_733_900_000]},
    )
    add("av_recording_stopped", centre, timedelta(minutes=1), {"room": "开标室3"})
    for e in experts:
        add("expert_drawn", centre, timedelta(minutes=1), {"expert": e, "method": "random"})
    add("committee_formed", agency, timedelta(minutes=30), {"members": experts})
    add("qualification_reviewed", agency, timedelta(hours=1), {"passed": 5})
    for e in experts:
        for b in bidders[:2]:
            add(
                "score_submitted",
                (e, "expert"),
                timedelta(minutes=3),
                {"bidder": b, "score_centi": 8_850},
            )
    add("evaluation_report_signed", agency, timedelta(hours=1), {"signers": experts})
    add(
        "candidates_published",
        agency,
        timedelta(days=1),
        {
            "candidates": bidders[:3],
            "publicity_start": (t + timedelta(days=1)).isoformat(),
            "publicity_end": (t + timedelta(days=4)).isoformat(),
        },
    )
    add("winner_determined", agency, timedelta(days=5), {"winner": bidders[3]})
    add("award_notice_issued", agency, timedelta(days=1), {"winner": bidders[3]})
    add(
        "contract_signed", (bidders[3], "bidder"), timedelta(days=12), {"amount_fen": 4_650_100_000}
    )
    add("contract_published", agency, timedelta(days=1), {})
    for b in bidders[:3]:
        add("deposit_refunded", centre, timedelta(days=1), {"bidder": b})
    add("archive_package_created", centre, timedelta(days=10), {"items": len(evs)})
    return evs


def run_demo(url: str, token: str | None, events: int = 50, project: str | None = None) -> int:
    if not token:
        print(
            "jianzheng demo: give a platform token with --token or JIANZHENG_TOKEN", file=sys.stderr
        )
        return 2
    project = project or f"E3301{secrets.randbelow(10**12):012d}"
    files = demo_bid_files(project)
    evs = tender_lifecycle(project, datetime(2026, 3, 2, 9, 0, tzinfo=CST), files)[:events]
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
