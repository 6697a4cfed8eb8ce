"""``GET /metrics`` and ``GET /healthz/ready`` (issue 16): Prometheus text for a valid
token only, counts of the append path and the witnessing, nothing per project."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from api.health import Readiness
from tests.conftest import make_event
from tests.procs import Server, jianzheng

PROJECT = "E330100000042"


def value(text: str, name: str) -> float:
    """The sample ``name`` (no labels) in the exposition ``text``."""
    m = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    assert m is not None, f"{name} not in /metrics"
    return float(m.group(1))


def test_metrics_count_appends_and_need_a_token(ledger_factory: Any) -> None:
    lg = ledger_factory()
    token = create_token(lg.store, "reviewer")[1]
    poster = create_token(lg.store, "platform")[1]
    app = create_app(lg, rate_limit=0)
    with TestClient(app) as c:
        app.state.metrics.every = 0.0  # each scrape reads anew (no waiting in the test)
        assert c.get("/metrics").status_code == 401
        r = c.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        before = value(r.text, "jianzheng_appended_events_total")
        reloads = value(r.text, "jianzheng_head_reloads_total")
        evs = {"events": [make_event(project=PROJECT) for _ in range(7)]}
        r = c.post("/v1/events:batch", json=evs, headers={"Authorization": f"Bearer {poster}"})
        assert r.status_code == 201, r.text
        text = c.get("/metrics", headers={"Authorization": f"Bearer {token}"}).text
        assert value(text, "jianzheng_appended_events_total") == before + 7
        assert value(text, "jianzheng_log_size") == 7
        assert value(text, "jianzheng_sequencer_behind") == 0
        assert value(text, "jianzheng_head_reloads_total") >= reloads
        assert "jianzheng_sequencer_lock_wait_seconds_bucket" in text
        assert "jianzheng_append_seconds_count" in text
        assert "jianzheng_timestamp_lag_entries" in text
        assert PROJECT not in text and "tender" not in text  # nothing per project or type
        r = c.get("/healthz/ready")
        assert r.status_code == 200, r.text
        assert r.json() == {
            "database": "ok",
            "objects": "ok",
            "sequencer": "ok",
            "status": "ready",
        }


def test_metrics_add_up_the_workers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = Server(data, None, "--workers", "2")
    try:
        poster = jianzheng(
            "token", "create", "--data", str(data), "--role", "platform"
        ).stdout.split()[-1]
        auth = {"Authorization": f"Bearer {poster}"}
        for _ in range(10):  # fresh connections land on either worker
            with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as h:
                evs = {"events": [make_event(project=PROJECT) for _ in range(3)]}
                r = h.post(srv.url + "/v1/events:batch", json=evs, headers=auth)
                assert r.status_code == 201, r.text
        r = httpx.get(srv.url + "/metrics", headers=auth, timeout=10)
        assert r.status_code == 200, r.text
        assert value(r.text, "jianzheng_appended_events_total") == 30
        assert value(r.text, "jianzheng_batches_total") >= 1
        assert (data / "metrics").is_dir()
    finally:
        srv.stop()


def test_readiness_never_waits_for_a_probe_in_progress(ledger_factory: Any) -> None:
    """GET /healthz/ready needs no token: were requests to wait for a probe that hangs (a
    database gone silent), each would hold a server thread until all were taken. While a
    probe runs, others get the answer before it, or not ready when there is none yet."""
    lg = ledger_factory()
    app = create_app(lg, rate_limit=0)
    ready = Readiness(lg, app.state.objects)
    got: list[dict[str, Any]] = []

    def ask() -> None:
        got.append(ready.check())

    with ready._mu:  # a probe in progress, not answering yet
        t = threading.Thread(target=ask, daemon=True)
        t.start()
        t.join(30)
        assert not t.is_alive(), "the request waited for the probe"
    assert got == [{"status": "not_ready", "probe": "running"}]
    first = ready.check()
    assert first["status"] == "ready", first
    ready._at = float("-inf")  # due for a new probe, which is still running
    with ready._mu:
        t = threading.Thread(target=ask, daemon=True)
        t.start()
        t.join(30)
        assert not t.is_alive(), "the request waited for the probe"
    assert got[-1] == first


def test_a_scrape_never_waits_for_another_in_progress(ledger_factory: Any) -> None:
    """A scrape reads the database; one that hangs must not make every scrape behind it
    hold a server thread: they get the answer before (503 busy before the first)."""
    lg = ledger_factory()
    token = create_token(lg.store, "reviewer")[1]
    app = create_app(lg, rate_limit=0)
    expo = app.state.metrics
    got: list[bytes | None] = []

    def scrape() -> None:
        got.append(expo.text())

    def while_one_is_in_progress() -> bytes | None:
        with expo._mu:  # a scrape in progress, its database read not answering
            t = threading.Thread(target=scrape, daemon=True)
            t.start()
            t.join(30)
            assert not t.is_alive(), "the scrape waited for the one in progress"
        return got[-1]

    assert while_one_is_in_progress() is None  # nothing built yet
    first = expo.text()
    assert first is not None and b"jianzheng_log_size" in first
    expo._at = float("-inf")  # due to be built anew
    assert while_one_is_in_progress() == first  # the answer before
    # Over HTTP, "nothing built yet" is 503 busy, to be retried (reached only once the
    # calls above do not wait: else this request would wait for the lock held here).
    fresh = create_app(lg, rate_limit=0)
    with TestClient(fresh) as c, fresh.state.metrics._mu:
        r = c.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "busy"
        assert r.headers["retry-after"] == "1"
