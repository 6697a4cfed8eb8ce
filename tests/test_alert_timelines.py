"""The alert detector's kept timelines (issue 18): a round parses only what is new, and the
alerts are the ones a detector reading every timeline whole from the database raises."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.alert_rules import Detector, Timelines
from ledger.alerts import Alert
from ledger.records import validate_event
from ledger.service import Ledger
from tests.conftest import make_event
from tests.tender import breaking


class _Settings:
    access_threshold = 1000
    access_window = 60.0
    witness_lag = 300.0


@pytest.fixture
def lg(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger.open(tmp_path / "data", f"sqlite:///{tmp_path / 'l.db'}", "tl.test/log")
    try:
        yield ledger
    finally:
        ledger.close()


def _append(lg: Ledger, evs: list[dict[str, Any]]) -> None:
    lg.append([validate_event(e, lg.catalogue) for e in evs], "p").result(30)


def _tail(lg: Ledger, after: int, n: int = 500) -> list[tuple[int, str, bytes]]:
    with lg.store.reader() as conn:
        return lg.store.records_after(conn, after, n)


def _parsed(rows: list[tuple[int, str, bytes]], chain: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for _, c, raw in rows if c == chain]


def _whole(lg: Ledger, project: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for _, _, raw in lg.project_records(project, -1, 10_000)]


def test_a_kept_timeline_is_extended_from_the_tail_not_read_again(lg: Ledger) -> None:
    tl = Timelines(lg)
    _append(lg, [make_event(project="A1") for _ in range(5)])
    rows = _tail(lg, -1)
    assert tl.records("A1", _parsed(rows[1:], "A1")) == _whole(lg, "A1")
    assert tl.reads == 1
    for _ in range(3):
        after = rows[-1][0]
        _append(lg, [make_event(project="A1"), make_event(project="B1")])
        rows = _tail(lg, after)
        assert tl.records("A1", _parsed(rows, "A1")) == _whole(lg, "A1")
    assert tl.reads == 1  # only the first round read A1 from the database
    assert tl.records("B1", _parsed(rows, "B1")) == _whole(lg, "B1")
    assert tl.reads == 2  # B1's earlier records were in pages not shown to it
    _append(lg, [make_event(project="N1") for _ in range(3)])
    fresh = _tail(lg, rows[-1][0])
    assert tl.records("N1", _parsed(fresh, "N1")) == _whole(lg, "N1")
    assert tl.reads == 2  # N1 starts in the tail: nothing to read
    rows = fresh
    # The tail starts C1 (seq 0) but a record of it is missing: read whole.
    _append(lg, [make_event(project="C1") for _ in range(3)])
    c1 = _parsed(_tail(lg, rows[-1][0]), "C1")
    assert tl.records("C1", [c1[0], c1[2]]) == _whole(lg, "C1")
    assert tl.reads == 3


def test_records_already_kept_are_skipped_and_a_gap_is_read(lg: Ledger) -> None:
    tl = Timelines(lg)
    _append(lg, [make_event(project="A1") for _ in range(4)])
    rows = _tail(lg, -1)
    # The first read saw more than the page: the page's records are already kept.
    assert tl.records("A1", _parsed(rows[1:2], "A1")) == _whole(lg, "A1")
    assert tl.records("A1", _parsed(rows[2:], "A1")) == _whole(lg, "A1")
    assert tl.reads == 1
    # A page that skips records of the chain (a gap) reads it whole again.
    _append(lg, [make_event(project="A1") for _ in range(3)])
    rows = _tail(lg, rows[-1][0])
    assert tl.records("A1", _parsed(rows[1:], "A1")) == _whole(lg, "A1")
    assert tl.reads == 2


def test_a_tail_that_disagrees_with_what_is_kept_reads_the_chain_again(lg: Ledger) -> None:
    tl = Timelines(lg)
    _append(lg, [make_event(project="A1") for _ in range(3)])
    rows = _tail(lg, -1)
    tl.records("A1", _parsed(rows, "A1"))
    assert tl.reads == 0  # the tail started the chain
    odd = dict(_parsed(rows, "A1")[1], index=999)
    assert tl.records("A1", [odd]) == _whole(lg, "A1")
    assert tl.reads == 1


def test_what_is_kept_is_bounded(lg: Ledger) -> None:
    tl = Timelines(lg, kept=10)
    for p in ("A1", "B1", "C1"):
        _append(lg, [make_event(project=p) for _ in range(4)])
    for p in ("A1", "B1", "C1"):
        tl.records(p, [])
    assert sum(len(v) for v in tl._by.values()) <= 10
    assert list(tl._by) == ["B1", "C1"]  # the least recently touched went first
    _append(lg, [make_event(project="D1") for _ in range(11)])
    assert len(tl.records("D1", []) or []) == 11  # too big to keep, still answered
    assert "D1" not in tl._by and sum(len(v) for v in tl._by.values()) <= 10


def test_alerts_are_those_of_whole_reads(lg: Ledger) -> None:
    """Three tenders that break a rule, interleaved and posted in random pieces, read in
    random pages: the detector with kept timelines raises exactly what one reading every
    touched timeline whole (a fresh Timelines each round) raises."""
    rnd = random.Random(18)
    queues = [breaking(rule, p) for rule, p in (("E01", "P1"), ("E01", "P2"), ("E01", "P3"))]
    got: list[Alert] = []
    want: list[Alert] = []
    kept = Detector(lg, _Settings(), got.extend)
    whole = Detector(lg, _Settings(), want.extend)
    cursor, rounds = -1, 0
    while any(queues) or cursor < lg.info().size - 1:
        evs: list[dict[str, Any]] = []
        for _ in range(rnd.randint(0, 4)):
            q = rnd.choice([q for q in queues if q] or [[]])
            if q:
                evs.append(q.pop(0))
        if evs:
            _append(lg, evs)
        rows = _tail(lg, cursor, rnd.randint(1, 6))
        if not rows:
            continue
        cursor, rounds = rows[-1][0], rounds + 1
        kept.read(rows)
        whole.timelines = Timelines(lg)
        whole.read(rows)
        assert got == want
    assert kept.timelines.reads == 0 < rounds  # every chain started in the tail
    assert any(a.kind == "rule_violation" for a in got), "no rule failed: the test tests nothing"


def test_a_chain_grown_past_the_rules_bound_is_not_evaluated(
    lg: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a chain read whole: at RULE_RECORDS records or more, no timeline (and none kept)."""
    import api.alert_rules

    monkeypatch.setattr(api.alert_rules, "RULE_RECORDS", 5)
    tl = Timelines(lg)
    _append(lg, [make_event(project="A1") for _ in range(4)])
    rows = _tail(lg, -1)
    assert tl.records("A1", _parsed(rows, "A1")) is not None
    _append(lg, [make_event(project="A1")])
    assert tl.records("A1", _parsed(_tail(lg, rows[-1][0]), "A1")) is None
    assert "A1" not in tl._by
    assert tl.records("A1", []) is None  # read whole: the same answer
