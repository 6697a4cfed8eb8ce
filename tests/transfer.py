"""Lawful land, mining-rights and state-property transfers for the verifier's tests, and
ways to break one rule at a time (L01–L05, M01, P01, P02).

Field names follow the event catalogue. Dates are in May and June 2026, inside the shipped
holiday calendar, and chosen so that every period holds under 民法典 第二百零一条、第二百零三条
counting, with each window closing after 24:00 of its last counted day.
"""

from __future__ import annotations

from typing import Any

from tests.tender import at

__all__ = ["BUYERS", "breaking", "lawful_auction", "lawful_listing", "lawful_property"]

BUYERS = ["91330100MA30000001", "91330100MA30000002", "91330100MA30000003"]
GRANTOR = {"id": "NR-330100", "role": "grantor"}
CENTRE = {"id": "PRTC-HZ", "role": "platform"}


class _Events:
    def __init__(self, project: str, trade_type: str) -> None:
        self.project = project
        self.trade_type = trade_type
        self.evs: list[dict[str, Any]] = []

    def add(
        self, kind: str, when: str, payload: dict[str, Any], actor: dict[str, str] = CENTRE
    ) -> None:
        self.evs.append(
            {
                "project": self.project,
                "trade_type": self.trade_type,
                "type": kind,
                "actor": actor,
                "occurred_at": when,
                "payload": payload,
                "idempotency_key": f"{self.project}-{len(self.evs):03d}",
            }
        )


def _close(e: _Events, deal_at: str, winner: str, price: int) -> None:
    """Deal, result (within 10 working days), contract, and the archive."""
    e.add("deal_confirmed", deal_at, {"winner": winner, "price": price})
    e.add("result_published", at(6, 15), {"published_at": at(6, 15)}, GRANTOR)
    e.add("contract_signed", at(6, 16, 10), {"contract_at": at(6, 16, 10)})
    e.add(
        "archive_package_created",
        at(6, 30),
        {"retention_until": "2056-06-30", "retention_class": "30y"},
    )


def lawful_listing(project: str, trade_type: str = "land") -> list[dict[str, Any]]:
    """A 挂牌 transfer: notice 21 days before the listing, which runs 11 days."""
    e = _Events(project, trade_type)
    e.add("project_registered", at(5, 8), {"method": "listing", "estimate": 1_200_000_000})
    # Twenty days from Monday 11 May end on Sunday 31 May; the listing opens Monday 1 June.
    e.add(
        "transfer_notice_published",
        at(5, 11),
        {"method": "listing", "activity_start": at(6, 1)},
        GRANTOR,
    )
    # Ten days from 1 June end at 24:00 of Thursday 11 June; the listing closes on the 12th.
    e.add("listing_opened", at(6, 1), {"listing_start": at(6, 1), "listing_end": at(6, 12, 17)})
    e.add("listing_bid_placed", at(6, 3), {"bidder": BUYERS[0], "price": 1_200_000_000})
    e.add("listing_bid_placed", at(6, 5), {"bidder": BUYERS[1], "price": 1_250_000_000})
    e.add("listing_closed", at(6, 12, 17), {"bidder_count": 2})
    _close(e, at(6, 12, 17, 30), BUYERS[1], 1_250_000_000)
    return e.evs


def lawful_auction(project: str, trade_type: str = "land") -> list[dict[str, Any]]:
    """A 拍卖 transfer: notice 21 days before the auction, record signed by the buyer."""
    e = _Events(project, trade_type)
    e.add("project_registered", at(5, 8), {"method": "auction", "estimate": 1_200_000_000})
    e.add(
        "transfer_notice_published",
        at(5, 11),
        {"method": "auction", "activity_start": at(6, 1)},
        GRANTOR,
    )
    e.add("onsite_auction_started", at(6, 1), {"bidder_count": 3})
    for i, b in enumerate(BUYERS):
        e.add(
            "auction_bid",
            at(6, 1, 9, 10 + i),
            {"bidder": b, "price": 1_200_000_000 + i * 10_000_000},
        )
    e.add("hammer_fall", at(6, 1, 9, 30), {"winner": BUYERS[2], "price": 1_220_000_000})
    e.add(
        "auction_record_signed",
        at(6, 1, 10),
        {"signers": ["AUCTIONEER-0371", "CLERK-0102", BUYERS[2]]},
    )
    _close(e, at(6, 1, 11), BUYERS[2], 1_220_000_000)
    return e.evs


def lawful_property(project: str) -> list[dict[str, Any]]:
    """A 产权转让 with control changing hands: pre-disclosure 5 working days after the
    approval, formal disclosure of 20 working days, two transferees, so an auction."""
    e = _Events(project, "property")
    e.add("project_registered", at(4, 20), {"method": "auction", "estimate": 300_000_000})
    e.add(
        "info_pre_disclosed", at(4, 28), {"approved_at": at(4, 21), "disclosure_start": at(4, 28)}
    )
    # Twenty working days from Monday 11 May end on Monday 8 June; it closes on the 9th.
    e.add(
        "info_disclosed",
        at(5, 11),
        {
            "transaction_kind": "equity_transfer",
            "disclosure_start": at(5, 11),
            "disclosure_end": at(6, 9, 9),
        },
    )
    e.add("transferee_registered", at(6, 2), {"transferee": BUYERS[0]})
    e.add("transferee_registered", at(6, 3), {"transferee": BUYERS[1]})
    e.add("onsite_auction_started", at(6, 12), {"bidder_count": 2})
    e.add("auction_bid", at(6, 12, 9, 10), {"bidder": BUYERS[0], "price": 300_000_000})
    e.add("auction_bid", at(6, 12, 9, 11), {"bidder": BUYERS[1], "price": 310_000_000})
    e.add("hammer_fall", at(6, 12, 9, 30), {"winner": BUYERS[1], "price": 310_000_000})
    e.add(
        "auction_record_signed",
        at(6, 12, 10),
        {"signers": ["AUCTIONEER-0371", "CLERK-0102", BUYERS[1]]},
    )
    _close(e, at(6, 12, 11), BUYERS[1], 310_000_000)
    return e.evs


def _find(evs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(e for e in evs if e["type"] == kind)


def _drop(evs: list[dict[str, Any]], kinds: set[str]) -> list[dict[str, Any]]:
    return [e for e in evs if e["type"] not in kinds]


def breaking(rule: str, project: str) -> list[dict[str, Any]]:
    """A lawful transfer with one rule broken (the one a test of that rule starts from)."""
    if rule == "L01":
        # Published Wednesday 13 May: 1 June is only its 19th day.
        evs = lawful_listing(project)
        _find(evs, "transfer_notice_published")["occurred_at"] = at(5, 13)
    elif rule == "L02":
        # Closed at 17:00 on Wednesday 10 June, the ninth day of the listing.
        evs = lawful_listing(project)
        _find(evs, "listing_opened")["payload"]["listing_end"] = at(6, 10, 17)
    elif rule == "L03":
        # Result published on 30 June: the 10th working day after Friday 12 June is
        # Monday 29 June (端午节 19 June is a rest day).
        evs = lawful_listing(project)
        r = _find(evs, "result_published")
        r["payload"]["published_at"] = r["occurred_at"] = at(6, 30)
    elif rule == "L04":
        # The buyer did not sign the auction record.
        evs = lawful_auction(project)
        _find(evs, "auction_record_signed")["payload"]["signers"] = [
            "AUCTIONEER-0371",
            "CLERK-0102",
        ]
    elif rule == "L05":
        evs = lawful_listing(project)
        _find(evs, "project_registered")["payload"]["method"] = "agreement"
    elif rule == "M01":
        # A listing of mining rights that no transfer notice announced.
        evs = _drop(lawful_listing(project, "mining"), {"transfer_notice_published"})
    elif rule == "P01":
        # Two transferees, and a deal by agreement: no auction, no bidding.
        evs = _drop(
            lawful_property(project),
            {"onsite_auction_started", "auction_bid", "hammer_fall", "auction_record_signed"},
        )
    elif rule == "P02":
        # Disclosure closed Friday 5 June, after 19 working days.
        evs = lawful_property(project)
        _find(evs, "info_disclosed")["payload"]["disclosure_end"] = at(6, 5, 17)
    else:
        raise ValueError(rule)
    return evs
