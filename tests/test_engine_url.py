"""Database URLs: a libpq multi-host URL reaches SQLAlchemy as its host list (issue 16)."""

from __future__ import annotations

import pytest

from ledger.store import StoreError, engine_url


def test_a_multi_host_url_becomes_host_parameters() -> None:
    u = engine_url(
        "postgresql+psycopg://jz:pw@10.0.0.1:5432,10.0.0.2:5433/ledger"
        "?target_session_attrs=read-write"
    )
    assert u.drivername == "postgresql+psycopg"
    assert (u.username, u.password, u.database, u.host, u.port) == (
        "jz",
        "pw",
        "ledger",
        None,
        None,
    )
    assert u.query["host"] == ("10.0.0.1:5432", "10.0.0.2:5433")
    assert u.query["target_session_attrs"] == "read-write"
    args = u.get_dialect()().create_connect_args(u)[1]
    assert (args["host"], args["port"]) == ("10.0.0.1,10.0.0.2", "5432,5433")


def test_single_host_and_sqlite_urls_are_unchanged() -> None:
    for url in ("postgresql+psycopg://jz@db:5432/ledger", "sqlite:////tmp/x/ledger.db"):
        assert engine_url(url).render_as_string(hide_password=False) == url


def test_an_empty_host_in_the_list_is_refused() -> None:
    with pytest.raises(StoreError, match="empty host"):
        engine_url("postgresql+psycopg://jz@a:1,,b:2/ledger")
