"""Shared fixtures: the ledger on both database engines, a clock, HTTP clients."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.fixtures_servers"]


class FakeClock:
    """A controllable clock; advances 1 ms per reading so times stay ordered."""

    def __init__(self, start: datetime | None = None) -> None:
        self.t = start or datetime(2026, 3, 2, 1, 0, tzinfo=UTC)

    def now(self) -> datetime:
        self.t += timedelta(milliseconds=1)
        return self.t


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ledger tests run once on SQLite and once on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("fresh_pg_url")
    return url


def example_payload(type_: str, **over: Any) -> dict[str, Any]:
    """The catalogue's example payload of ``type_``, with fields replaced by ``over``."""
    from ledger.catalogue import load_catalogue

    return {**load_catalogue().get(type_).example_payload(), **over}


def make_event(
    project: str = "E330100000001", type_: str = "project_registered", **over: Any
) -> dict[str, Any]:
    """A valid event of ``type_``; its payload is the catalogue's example payload."""
    from ledger.catalogue import load_catalogue

    catalogue = load_catalogue()
    ev: dict[str, Any] = {
        "project": project,
        "trade_type": "engineering",
        "type": type_,
        "actor": {"id": "PRTC-HZ", "role": "platform"},
        "occurred_at": "2026-03-02T09:00:00+08:00",
        "payload": catalogue.get(type_).example_payload() if type_ in catalogue else {},
    }
    ev.update(over)
    return ev


def notice_event(project: str = "E330100000001", **over: Any) -> dict[str, Any]:
    """A tender notice: bids and the opening may follow it (process order, rule O01)."""
    payload = {
        "issue_start": "2026-03-02T10:00:00+08:00",
        "bid_deadline": "2026-03-25T10:00:00+08:00",
        "place": "杭州市公共资源交易中心 开标室3",
    }
    return make_event(
        project,
        "tender_notice_published",
        **{
            "actor": {"id": "AG-330100-018", "role": "tender_agent"},
            "occurred_at": "2026-03-02T10:00:00+08:00",
            "payload": payload,
            **over,
        },
    )


@pytest.fixture
def ledger_factory(tmp_path: Path, db_url: str) -> Iterator[Any]:
    """Opens ledgers on the test's database; closes them all at the end."""
    from ledger.service import Ledger

    opened: list[Ledger] = []

    def open_(data: Path | None = None, **kw: Any) -> Ledger:
        lg = Ledger.open(
            data or tmp_path / "data", db_url, kw.pop("origin", "test.example/log"), **kw
        )
        opened.append(lg)
        return lg

    yield open_
    for lg in opened:
        lg.close()
