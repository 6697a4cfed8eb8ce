"""The archive's file pages of a project (ledger.access.project_objects_visible) before its
opening: the sealed bid files are left out, and nothing on a page (its length, whether a
next page exists, the next page's cursor) tells of them, however many there are."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from ledger.access import Principal, project_objects_visible
from ledger.records import MAX_ATTACHMENTS, validate_event
from ledger.service import Ledger
from tests.test_sealed import opening_at, tender

PROJECT = "E330100000411"


def attachment(tag: str) -> dict[str, Any]:
    return {
        "sha256": hashlib.sha256(tag.encode()).hexdigest(),
        "size": 1000,
        "media_type": "application/pdf",
        "name": f"{tag}.pdf",
    }


def before_the_opening(lg: Ledger, bid_copies: int) -> tuple[set[str], set[str]]:
    """The tender up to its opening, its notice citing three files and its bids (and
    ``bid_copies`` more bids) citing as many as a bid may: (visible, hidden) SHA-256s."""
    evs, _ = tender(PROJECT)
    evs = evs[: opening_at(evs)]
    notice = next(e for e in evs if e["type"] == "tender_notice_published")
    notice["attachments"] = [attachment(f"notice-{i}") for i in range(3)]
    bids = [e for e in evs if e["type"] == "bid_submitted"]
    for n in range(bid_copies):
        more = copy.deepcopy(bids[n % len(bids)])
        more["idempotency_key"] = f"more-bid-{n}"
        evs.insert(evs.index(bids[-1]) + 1, more)
        bids.append(more)
    for n, bid in enumerate(bids):
        bid["attachments"] = [attachment(f"bid-{n}-{i}") for i in range(MAX_ATTACHMENTS)]
    subs = [validate_event(e, lg.catalogue) for e in evs]
    lg.append(subs, "test-poster").result(timeout=120)
    visible = {a["sha256"] for a in notice["attachments"]}
    hidden = {a["sha256"] for b in bids for a in b["attachments"]}
    return visible, hidden


def test_file_pages_before_the_opening_name_no_sealed_bid_file(ledger_factory: Any) -> None:
    lg = ledger_factory()
    visible, hidden = before_the_opening(lg, bid_copies=4)
    assert len(hidden) > 2000  # more than one page's worth of scanning, however it is done
    stored = lg.project_trade_type(PROJECT)
    for role in ("archivist", "reviewer"):
        p = Principal(f"t-{role}", role)
        for limit in (100, 5, 2, 1):
            seen: list[str] = []
            after = ""
            for _ in range(len(visible) + 2):  # bounded: a page holds at least one file
                page, nxt = project_objects_visible(lg, p, PROJECT, stored, after, limit)
                seen += page
                assert not set(page) & hidden
                assert len(page) == limit or nxt is None, (limit, len(page), nxt)
                if nxt is None:
                    break
                # The cursor, which the page puts in its "next" link, is a file shown.
                assert nxt in visible and nxt == max(page), (limit, nxt)
                after = nxt
            else:
                raise AssertionError("the pages did not end")
            assert sorted(seen) == sorted(visible), (role, limit)
