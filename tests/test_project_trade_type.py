"""A project's first event fixes its trade type; the sequencer holds every later event to
it under the writer lock (issue 10 §1): within a unit, across the units of one batch, and
across worker processes sharing the database. Migration 0007 fills the binding in."""

from __future__ import annotations

from concurrent.futures import Future
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select

from ledger.models import ProjectRow
from ledger.records import EventSubmission, validate_event
from ledger.sequencer import Appended, TradeTypeMismatch
from ledger.service import Ledger
from ledger.store import migrate
from tests.conftest import make_event


def ev(lg: Ledger, project: str, trade_type: str, **over: Any) -> EventSubmission:
    return validate_event(make_event(project=project, trade_type=trade_type, **over), lg.catalogue)


def bindings(lg: Ledger) -> dict[str, tuple[str, int]]:
    with lg.store.reader() as conn:
        rows = conn.execute(
            select(ProjectRow.project, ProjectRow.trade_type, ProjectRow.first_index)
        )
        return {p: (t, i) for p, t, i in rows}


def wait(f: Future[list[Appended]]) -> list[Appended]:
    return f.result(timeout=30)


def test_a_unit_mixing_trade_types_for_a_new_project_commits_nothing(ledger_factory: Any) -> None:
    lg: Ledger = ledger_factory()
    unit = [ev(lg, "X1", "engineering"), ev(lg, "OK1", "land"), ev(lg, "X1", "procurement")]
    with pytest.raises(TradeTypeMismatch) as info:
        wait(lg.append(unit, "poster"))
    assert info.value.position == 2 and info.value.trade_type == "engineering"
    assert "project X1 is a engineering project" in str(info.value)
    assert lg.head().size == 0 and bindings(lg) == {}


def test_units_of_one_batch_the_first_binds_the_project(ledger_factory: Any) -> None:
    # A long batching delay puts both units (posted back to back) in one batch.
    lg: Ledger = ledger_factory(max_delay=0.2)
    first = lg.append([ev(lg, "X2", "engineering")], "a")
    second = lg.append([ev(lg, "X2", "procurement"), ev(lg, "OK2", "land")], "b")
    third = lg.append([ev(lg, "X2", "engineering", type_="tender_notice_published")], "c")
    assert [a.index for a in wait(first)] == [0]
    with pytest.raises(TradeTypeMismatch):
        wait(second)
    assert [a.index for a in wait(third)] == [1]
    assert lg.sequencer.batches == 1
    assert bindings(lg) == {"X2": ("engineering", 0)}
    assert lg.project_records("OK2", -1, 10) == []


def test_every_later_event_must_match_the_stored_trade_type(ledger_factory: Any) -> None:
    lg: Ledger = ledger_factory()
    wait(lg.append([ev(lg, "X3", "procurement")], "p"))
    for tt in ("engineering", "land"):
        with pytest.raises(TradeTypeMismatch):
            wait(lg.append([ev(lg, "X3", tt)], "p"))
    wait(lg.append([ev(lg, "X3", "procurement", type_="procurement_plan_filed")], "p"))
    assert lg.head().size == 2
    assert lg.project_trade_type("X3") == "procurement" and lg.project_trade_type("X9") is None


def test_a_replay_is_answered_not_judged_again(ledger_factory: Any) -> None:
    """An idempotent retry of a committed event is its receipt, whatever came after."""
    lg: Ledger = ledger_factory()
    e = ev(lg, "X4", "engineering", idempotency_key="k1")
    [a] = wait(lg.append([e], "p"))
    [again] = wait(lg.append([e], "p"))
    assert again.replayed and again.index == a.index


def test_two_workers_cannot_bind_one_project_twice(ledger_factory: Any, tmp_path: Path) -> None:
    """Worker 2's tail cache is stale when worker 1 creates the project: the binding comes
    from the database under the writer lock, with the tails worker 1 moved."""
    w1: Ledger = ledger_factory()
    w2: Ledger = ledger_factory()
    wait(w2.append([ev(w2, "Y5", "land")], "p"))  # w2's frontier is now current
    wait(w1.append([ev(w1, "X5", "engineering")], "p"))
    with pytest.raises(TradeTypeMismatch):
        wait(w2.append([ev(w2, "X5", "procurement")], "p"))
    [a] = wait(w2.append([ev(w2, "X5", "engineering", type_="tender_notice_published")], "p"))
    with pytest.raises(TradeTypeMismatch):
        wait(w1.append([ev(w1, "X5", "procurement")], "p"))
    assert a.index == 2 and bindings(w1) == {"Y5": ("land", 0), "X5": ("engineering", 1)}


def test_access_records_belong_to_their_projects_trade_type(ledger_factory: Any) -> None:
    lg: Ledger = ledger_factory()
    wait(lg.append([ev(lg, "X6", "mining")], "p"))

    def access(tt: str) -> EventSubmission:
        obj = make_event(project="X6~access", trade_type=tt, type_="evidence_accessed")
        return validate_event(obj, lg.catalogue, internal=True)

    wait(lg.append([access("mining")], "jianzheng:access"))
    with pytest.raises(TradeTypeMismatch):
        wait(lg.append([access("land")], "jianzheng:access"))
    assert bindings(lg) == {"X6": ("mining", 0)}


def test_migration_0007_binds_existing_projects_by_their_first_record(
    ledger_factory: Any,
) -> None:
    lg: Ledger = ledger_factory()
    wait(lg.append([ev(lg, "A7", "land"), ev(lg, "B7", "engineering")], "p"))
    wait(lg.append([ev(lg, "A7", "land", type_="listing_opened")], "p"))
    acc = make_event(project="A7~access", trade_type="land", type_="evidence_accessed")
    wait(lg.append([validate_event(acc, lg.catalogue, internal=True)], "jianzheng:access"))
    before = bindings(lg)
    assert before == {"A7": ("land", 0), "B7": ("engineering", 1)}
    engine = lg.store.engine
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("ledger") / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    migrate(engine)
    assert bindings(lg) == before
