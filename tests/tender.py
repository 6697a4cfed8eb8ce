"""A lawful engineering tender for the verifier's tests, and ways to break one rule at a time.

The tender is ``jianzheng demo``'s (``api/demo.py``): field names follow the event
catalogue, and dates are in 2026 and chosen so that every period of 招标投标法 and its
实施条例 holds, including 民法典 第203条: a period whose last day is a rest day runs to
the next working day.
"""

from __future__ import annotations

import hashlib
from typing import Any

from api import demo
from api.demo import BIDDERS, CST, EXPERTS, PLACE, at

__all__ = [
    "BIDDERS",
    "COLLUSION",
    "CST",
    "EXPERTS",
    "PLACE",
    "at",
    "bid_file",
    "bid_metadata",
    "breaking",
    "colluding",
    "lawful_tender",
]


def bid_file(i: int, size: int = 3000) -> bytes:
    """Deterministic bytes standing in for bidder i's encrypted bid file."""
    seed = hashlib.sha256(f"bid-{i}".encode()).digest()
    return (seed * (size // 32 + 1))[:size]


def lawful_tender(project: str, files: dict[str, bytes] | None = None) -> list[dict[str, Any]]:
    """The demo's lawful tender with small bid files; ``files`` gets them by hash."""
    data = [bid_file(i) for i in range(len(BIDDERS))]
    if files is not None:
        files.update((hashlib.sha256(d).hexdigest(), d) for d in data)
    return demo.lawful_tender(project, data)


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


def bid_metadata(i: int) -> dict[str, str]:
    """What a platform captures when bidder i bids (issue 17), different for every bidder.

    All use the platform's one bid-file tool, as they would: a shared tool is no sign.
    """
    return {
        "client_ip": f"203.0.113.{10 + i}",
        "device_id": "hw-" + hashlib.sha256(f"device-{i}".encode()).hexdigest()[:16],
        "file_creator": f"编制人{i + 1}",
        "file_tool": "投标文件制作工具 9.2",
        "project_manager_id": f"浙13320202020000{i + 1:02d}",
    }


def _bids(evs: list[dict[str, Any]], kind: str = "bid_submitted") -> list[dict[str, Any]]:
    return [e for e in evs if e["type"] == kind]


#: Each collusion pattern of 招标投标法实施条例 第四十条 that ``colluding`` plants.
COLLUSION = (
    "same_deposit_account",
    "identical_bid_files",
    "same_client_ip",
    "same_device",
    "same_project_manager",
    "same_file_creator",
    "price_progression",
    "price_narrow_band",
)


def colluding(
    kind: str, project: str, files: dict[str, bytes] | None = None
) -> list[dict[str, Any]]:
    """The lawful tender, with bid metadata, and one collusion pattern planted.

    Bidders 1 and 2 (the second and third) share an account, a file, an address, a device,
    a project manager or a file creator; for the price patterns, every standing price.
    """
    evs = lawful_tender(project, files)
    bids = _bids(evs)
    for i, b in enumerate(bids):
        b["payload"].update(bid_metadata(i))
    one, two = bids[1]["payload"], bids[2]["payload"]
    if kind == "same_deposit_account":
        deposits = _bids(evs, "bid_deposit_paid")
        deposits[2]["payload"]["payer_account"] = deposits[1]["payload"]["payer_account"]
    elif kind == "identical_bid_files":
        two["ciphertext_hash"] = one["ciphertext_hash"]
        bids[2]["attachments"] = [dict(a) for a in bids[1]["attachments"]]
    elif kind == "same_client_ip":
        one["client_ip"] = two["client_ip"] = "58.100.12.34"
    elif kind == "same_device":
        two["device_id"] = one["device_id"]
    elif kind == "same_project_manager":
        two["project_manager_id"] = one["project_manager_id"]
    elif kind == "same_file_creator":
        two["file_creator"] = one["file_creator"]
    elif kind == "price_progression":
        # 2 % steps of 93 000 000 fen above the lowest price: 第四十条（四）'s 规律性差异.
        for i, b in enumerate(bids):
            b["payload"]["price"] = 4_650_100_000 + i * 93_000_000
    elif kind == "price_narrow_band":
        # Irregular, but all within about 0.3 % of each other.
        band = (4_650_100_000, 4_661_200_000, 4_655_900_000, 4_663_800_000, 4_652_000_000)
        for b, price in zip(bids, band, strict=True):
            b["payload"]["price"] = price
    else:
        raise ValueError(kind)
    return evs
