"""Live alerts (issue 17) from a supervisor's point of view, over a real loopback server.

A webhook receiver that goes down and comes back gets every alert once (after deduping
on the id), each signed; an SSE client that reconnects with Last-Event-ID misses nothing;
a supervisor of another sector sees nothing; each kind of alert comes from a realistic
scenario, and every alert is a record of the supervision chain with a receipt.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.alerting import AlertSettings
from api.app import create_app
from api.auth import create_token, make_scope
from ledger.alert_targets import parse_allow
from ledger.alerts import SIGNATURE_HEADER, Alert, record_alerts, signature_valid
from ledger.records import SUPERVISION_CHAIN
from ledger.service import Ledger
from storage.fs import FilesystemStore
from storage.service import EvidenceStore
from tests.conftest import make_event
from tests.procs import Server, jianzheng
from tests.servers import free_port
from tests.tender import BIDDERS, breaking, colluding, lawful_tender
from tests.test_sealed import opening_at
from tests.test_storage import LiveServer
from verifier.note import parse_vkey
from verifier.receipt import Receipt

P = "E330100000171"
SETTINGS = AlertSettings(
    poll=0.05,
    retry_base=0.1,
    retry_cap=0.4,
    access_threshold=3,
    access_window=600,
    # The test receivers listen on loopback, which webhooks may not reach by default.
    webhook_allow=parse_allow(["127.0.0.1"]),
)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Service:
    """The ledger and its API on a loopback server, restartable over the same database."""

    def __init__(self, tmp: Path, db_url: str) -> None:
        self.tmp = tmp
        self.db_url = db_url
        self.start(SETTINGS)
        made = {r: create_token(self.lg.store, r) for r in ("platform", "reviewer", "admin")}
        self.tok = {r: t for r, (_, t) in made.items()}
        self.ids = {r: i for r, (i, _) in made.items()}
        self.tok["land"] = create_token(
            self.lg.store, "reviewer", scope=make_scope(trade_types=["land"])
        )[1]
        self.tok["archivist"] = create_token(self.lg.store, "archivist")[1]

    def start(self, settings: AlertSettings) -> None:
        self.lg = Ledger.open(self.tmp / "data", self.db_url, "alerts.test/log")
        self.objects = EvidenceStore(
            FilesystemStore(self.tmp / "data" / "objects"), self.lg.store.engine
        )
        app = create_app(self.lg, rate_limit=0, objects=self.objects, alerts=settings)
        self.srv = LiveServer(app, lifespan="on", log_level="error")
        self.c = httpx.Client(base_url=self.srv.url, timeout=30)

    def stop(self) -> None:
        self.c.close()
        self.srv.stop()
        self.objects.close()
        self.lg.close()

    def restart(self, settings: AlertSettings = SETTINGS) -> None:
        """Stop the server and the ledger and open them again (a service restart)."""
        self.stop()
        self.start(settings)

    def post(self, evs: list[dict[str, Any]], files: dict[str, bytes] | None = None) -> None:
        for data in (files or {}).values():
            r = self.c.post("/v1/objects", content=data, headers=auth(self.tok["platform"]))
            assert r.status_code in (200, 201), r.text
        r = self.c.post(
            "/v1/events:batch", json={"events": evs}, headers=auth(self.tok["platform"])
        )
        assert r.status_code == 201, r.text

    def alerts(self, who: str = "reviewer", after: int = -1) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for _ in range(1000):
            r = self.c.get("/v1/alerts", params={"after": after}, headers=auth(self.tok[who]))
            assert r.status_code == 200, r.text
            out += r.json()["alerts"]
            if r.json()["next"] == after:
                return out
            after = r.json()["next"]
        raise AssertionError("more than 1000 pages of alerts")

    def webhooks(self, who: str = "reviewer") -> list[dict[str, Any]]:
        r = self.c.get("/v1/alerts/webhooks", headers=auth(self.tok[who]))
        assert r.status_code == 200, r.text
        hooks: list[dict[str, Any]] = r.json()["webhooks"]
        return hooks


@pytest.fixture
def svc(tmp_path: Path, db_url: str) -> Iterator[Service]:
    """On SQLite and on PostgreSQL (``db_url``)."""
    s = Service(tmp_path, db_url)
    s.post([make_event(P)])  # the project the test alerts are about
    try:
        yield s
    finally:
        s.stop()


def wait_for(cond: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def raise_some(lg: Ledger, n: int, start: int = 0, subject: str | None = P) -> None:
    record_alerts(
        lg,
        [
            Alert(
                "late_entry",
                f"test:{i}",
                f"alert {i}",
                f"预警 {i}",
                subject,
                "engineering",
            )
            for i in range(start, start + n)
        ],
    )


# --- webhooks ----------------------------------------------------------------------------


class Receiver:
    """A webhook receiver on a loopback port that can go down and come back.

    It keeps every delivery it got (id, body, signature), and the ids it acknowledged
    (2xx); an id in :attr:`refuse_once` is answered 503 the first time (received, not
    acknowledged: the sender must send it again), and :attr:`redirect` answers 302 to it.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.got: list[tuple[str, bytes, str]] = []
        self.acked: list[str] = []
        self.refuse_once: set[str] = set()
        self.redirect: str | None = None
        self.lock = threading.Lock()
        self.server: http.server.ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    def up(self) -> None:
        rx = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers["content-length"])
                body = self.rfile.read(n)
                alert_id = self.headers["X-Jianzheng-Alert-Id"]
                with rx.lock:
                    rx.got.append((alert_id, body, self.headers[SIGNATURE_HEADER]))
                    if rx.redirect is not None:
                        self.send_response(302)
                        self.send_header("Location", rx.redirect)
                    elif alert_id in rx.refuse_once:
                        rx.refuse_once.discard(alert_id)
                        self.send_response(503)
                    else:
                        rx.acked.append(alert_id)
                        self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def down(self) -> None:
        assert self.server is not None and self.thread is not None
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        self.server = None

    def acked_ids(self) -> set[str]:
        with self.lock:
            return set(self.acked)


def subscribe(svc: Service, url: str, who: str = "reviewer") -> dict[str, Any]:
    r = svc.c.post("/v1/alerts/webhooks", json={"url": url}, headers=auth(svc.tok[who]))
    assert r.status_code == 201, r.text
    sub: dict[str, Any] = r.json()
    return sub


def test_a_webhook_receiver_that_goes_down_gets_every_alert_once_signed(svc: Service) -> None:
    """Down, then the service restarts while alerts are owed, then back up: every alert
    arrives, each acknowledged one exactly once, in order, each signed. Alert 1 is
    answered 503 once: the sender sends it again (at least once) and nothing after it
    first."""
    rx = Receiver()
    rx.refuse_once = {"1"}
    rx.up()
    sub = subscribe(svc, rx.url)
    secret = sub["secret"]
    raise_some(svc.lg, 3)
    wait_for(lambda: rx.acked_ids() == {"0", "1", "2"})
    rx.down()
    raise_some(svc.lg, 4, start=3)
    wait_for(lambda: svc.webhooks()[0]["failed_attempts"] >= 2)
    (hook,) = svc.webhooks()
    assert "secret" not in hook
    assert hook["last_error"] and hook["delivered_through"] == 2
    # A restart while the receiver is down: what is owed is in the database.
    svc.restart()
    raise_some(svc.lg, 2, start=7)
    wait_for(lambda: svc.webhooks()[0]["failed_attempts"] >= 1)
    assert svc.webhooks()[0]["delivered_through"] == 2
    rx.up()
    wait_for(lambda: svc.webhooks()[0]["delivered_through"] == 8)
    # One more after everything was delivered: acknowledged ones are not sent again.
    raise_some(svc.lg, 1, start=9)
    wait_for(lambda: "9" in rx.acked_ids())
    rx.down()
    every = [str(i) for i in range(10)]
    assert rx.acked == every  # each acknowledged once, in order
    received = [g[0] for g in rx.got]
    assert received == ["0", "1", "1", *every[2:]]  # 1 again after its 503, nothing else
    for alert_id, body, sig in rx.got:
        mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert sig == f"hmac-sha256={mac}"
        assert signature_valid(secret, body, sig)
        assert json.loads(body)["id"] == alert_id
    (hook,) = svc.webhooks()
    assert hook["delivered_through"] == 9 and hook["failed_attempts"] == 0
    assert hook["last_error"] is None
    r = svc.c.delete(f"/v1/alerts/webhooks/{sub['id']}", headers=auth(svc.tok["land"]))
    assert r.status_code == 404
    r = svc.c.delete(f"/v1/alerts/webhooks/{sub['id']}", headers=auth(svc.tok["reviewer"]))
    assert r.status_code == 204


def test_a_redirect_is_a_failed_attempt_never_followed(svc: Service) -> None:
    elsewhere = Receiver()
    elsewhere.up()
    rx = Receiver()
    rx.redirect = elsewhere.url
    rx.up()
    try:
        subscribe(svc, rx.url)
        raise_some(svc.lg, 1)
        wait_for(lambda: svc.webhooks()[0]["failed_attempts"] >= 2)
        assert svc.webhooks()[0]["last_error"] == "HTTP 302"
        assert svc.webhooks()[0]["delivered_through"] == -1
        assert elsewhere.got == []
    finally:
        rx.down()
        elsewhere.down()


PLAIN = replace(SETTINGS, webhook_allow=())


def test_webhooks_to_internal_addresses_are_refused_by_name(svc: Service) -> None:
    """Without the operator's allow-list: loopback, the metadata address, link-local,
    private and other non-public targets and other schemes are refused at registration,
    with a 422 naming the problem; a public address is accepted."""
    svc.restart(PLAIN)
    h = auth(svc.tok["reviewer"])
    refused = {
        "http://127.0.0.1/": "127.0.0.1 is a loopback address",
        "http://127.0.0.1:8000/hook": "127.0.0.1 is a loopback address",
        "http://169.254.169.254/latest/meta-data/": "169.254.169.254 is a cloud metadata address",
        "http://[::1]/": "::1 is a loopback address",
        "http://[fe80::1]/": "fe80::1 is a link-local address",
        "http://169.254.10.1/": "169.254.10.1 is a link-local address",
        "http://10.1.2.3/": "10.1.2.3 is a private address",
        "http://172.16.0.1/": "172.16.0.1 is a private address",
        "https://192.168.1.10/": "192.168.1.10 is a private address",
        "http://[fd12::1]/": "fd12::1 is a private address",
        "http://[::ffff:127.0.0.1]/": "is a loopback address",
        "http://0.0.0.0/": "0.0.0.0 is the unspecified address",
        # Another spelling of 127.0.0.1, caught because the name is resolved.
        "http://2130706433/": "2130706433 resolves to 127.0.0.1, which is a loopback address",
        "file:///etc/passwd": "url has scheme 'file': webhooks are http:// or https://",
        "gopher://127.0.0.1:70/_x": "url has scheme 'gopher'",
        "ftp://example.com/": "url has scheme 'ftp'",
    }
    for url, why in refused.items():
        r = svc.c.post("/v1/alerts/webhooks", json={"url": url}, headers=h)
        assert r.status_code == 422, (url, r.text)
        err = r.json()["error"]
        assert err["field"] == "url"
        assert why in err["message"], (url, err["message"])
        if url.startswith("http"):
            assert "--alert-webhook-allow" in err["message"]
    assert svc.webhooks() == []
    # A public address is accepted (nothing is sent before an alert is raised).
    r = svc.c.post("/v1/alerts/webhooks", json={"url": "https://93.184.216.34/h"}, headers=h)
    assert r.status_code == 201, r.text


def test_the_target_is_checked_again_at_each_delivery(svc: Service) -> None:
    """Registered while the operator allowed loopback, then the allow-list is removed: the
    delivery checks the address again and refuses, naming why; nothing reaches the
    receiver; allowed again, the alert owed arrives."""
    rx = Receiver()
    rx.up()
    try:
        subscribe(svc, rx.url)
        svc.restart(PLAIN)
        raise_some(svc.lg, 1)
        wait_for(lambda: svc.webhooks()[0]["failed_attempts"] >= 2)
        (hook,) = svc.webhooks()
        assert hook["last_error"].startswith("refused: 127.0.0.1 is a loopback address")
        assert rx.got == []
        svc.restart()
        wait_for(lambda: rx.acked_ids() == {"0"})
    finally:
        rx.down()


def test_webhook_subscriptions_are_checked_and_bounded(svc: Service) -> None:
    h = auth(svc.tok["reviewer"])
    for bad in ({"url": "ftp://x"}, {"url": ""}, {"url": 3}, {}, {"url": "http://a", "x": 1}):
        r = svc.c.post("/v1/alerts/webhooks", json=bad, headers=h)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "url"
    r = svc.c.post(
        "/v1/alerts/webhooks", json={"url": "http://x"}, headers=auth(svc.tok["platform"])
    )
    assert r.status_code == 403
    for _ in range(10):
        r = svc.c.post("/v1/alerts/webhooks", json={"url": "http://127.0.0.1:9/"}, headers=h)
        assert r.status_code == 201
    r = svc.c.post("/v1/alerts/webhooks", json={"url": "http://127.0.0.1:9/"}, headers=h)
    assert r.status_code == 409


# --- the stream --------------------------------------------------------------------------


def read_events(resp: httpx.Response, n: int) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    ev_id = ""
    for line in resp.iter_lines():
        if line.startswith("id: "):
            ev_id = line[4:]
        elif line.startswith("data: "):
            out.append((ev_id, json.loads(line[6:])))
            if len(out) == n:
                return out
    return out


def test_an_sse_client_that_reconnects_with_last_event_id_misses_nothing(svc: Service) -> None:
    h = auth(svc.tok["reviewer"])
    with svc.c.stream("GET", "/v1/alerts/stream", params={"after": -1}, headers=h) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        raise_some(svc.lg, 5)
        first = read_events(resp, 2)
    last = first[-1][0]
    raise_some(svc.lg, 3, start=5)
    with svc.c.stream("GET", "/v1/alerts/stream", headers={**h, "Last-Event-ID": last}) as resp:
        rest = read_events(resp, 6)
    ids = [i for i, _ in first + rest]
    assert ids == [str(i) for i in range(8)]
    assert [d["message"] for _, d in first + rest] == [f"alert {i}" for i in range(8)]
    r = svc.c.get("/v1/alerts/stream", headers={**h, "Last-Event-ID": "x"})
    assert r.status_code == 422


def test_streams_count_against_the_limits(svc: Service) -> None:
    h = auth(svc.tok["admin"])
    opened = [svc.c.stream("GET", "/v1/alerts/stream", headers=h) for _ in range(4)]
    resps = [o.__enter__() for o in opened]
    try:
        assert all(r.status_code == 200 for r in resps)
        r = svc.c.get("/v1/alerts/stream", headers=h)
        assert r.status_code == 429
        assert svc.c.get("/v1/alerts/stream").status_code == 401
    finally:
        for o in opened:
            o.__exit__(None, None, None)


# --- scope -------------------------------------------------------------------------------


def test_a_supervisor_of_another_sector_sees_nothing(svc: Service) -> None:
    raise_some(svc.lg, 2)
    raise_some(svc.lg, 1, start=2, subject=None)
    assert len(svc.alerts("reviewer")) == 3
    assert svc.alerts("land") == []
    h = auth(svc.tok["land"])
    with svc.c.stream("GET", "/v1/alerts/stream", params={"after": -1}, headers=h) as resp:
        raise_some(svc.lg, 1, start=3)
        lines: list[str] = []
        deadline = time.monotonic() + 1.5
        for line in resp.iter_lines():
            lines.append(line)
            if time.monotonic() > deadline or len(lines) > 5:
                break
        assert not any(x.startswith("data:") for x in lines)


# --- each kind from a scenario -----------------------------------------------------------


def kinds(svc: Service, want: str, n: int = 1) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = wait_for(
        lambda: (
            [a for a in svc.alerts("admin") if a["kind"] == want][:n]
            if len([a for a in svc.alerts("admin") if a["kind"] == want]) >= n
            else None
        )
    )
    return found


def test_a_late_entry_alerts_and_the_alert_is_a_record_with_a_receipt(svc: Service) -> None:
    late = "E330100000172"
    svc.post([make_event(late)])
    svc.post(
        [
            make_event(
                late,
                "tender_notice_published",
                late_entry={"reason": "platform outage"},
                payload={
                    "issue_start": "2026-03-02T10:00:00+08:00",
                    "bid_deadline": "2026-03-25T10:00:00+08:00",
                    "place": "杭州",
                },
            )
        ]
    )
    (a,) = kinds(svc, "late_entry")
    assert a["subject"] == late and a["trade_type"] == "engineering"
    assert a["record"]["project"] == SUPERVISION_CHAIN
    assert a["record"]["type"] == "alert_raised"
    cp = Receipt.from_json(a["receipt"]).verify(parse_vkey(svc.lg.info().verifier_key), a["record"])
    assert cp.checkpoint.size > a["index"]
    assert "platform outage" not in json.dumps(a)


def settled(svc: Service) -> None:
    """Wait until detection has dealt with everything before now: a late entry posted now
    alerts only after the records before it were read and the alerts handed over by
    earlier requests were recorded (the worker takes them in that order)."""
    marker = f"E3301{time.monotonic_ns() % 10**8:08d}"
    svc.post([make_event(marker, late_entry={"reason": "marker"})])
    wait_for(lambda: any(a["subject"] == marker for a in svc.alerts("admin")))


def count_kind(svc: Service, kind: str) -> int:
    return sum(1 for a in svc.alerts("admin") if a["kind"] == kind)


def test_reading_many_projects_alerts_unusual_access(svc: Service) -> None:
    """Threshold 3 projects: reading 3 raises nothing, the 4th raises one alert naming
    the token, and more reads within the window raise no second one; another token's
    reads count apart."""
    projects = [f"E33010000020{i}" for i in range(7)]
    svc.post([make_event(p) for p in projects])

    def read(token: str, ps: list[str]) -> None:
        for p in ps:
            r = svc.c.get(f"/v1/projects/{p}/events", headers=auth(svc.tok[token]))
            assert r.status_code == 200, r.text

    read("archivist", projects[:3])
    read("archivist", projects[:3])  # the same projects again: still 3
    read("reviewer", projects[3:6])
    settled(svc)
    assert count_kind(svc, "unusual_access") == 0
    read("archivist", projects[3:4])
    (a,) = kinds(svc, "unusual_access")
    assert a["subject"] is None and a["trade_type"] == "log"
    payload = a["record"]["payload"]
    assert payload["threshold"] == 3 and payload["count"] == 4
    assert payload["token"] != svc.ids["reviewer"]
    read("archivist", projects[4:])
    settled(svc)
    assert count_kind(svc, "unusual_access") == 1
    assert svc.alerts("land") == []


def post_tender(svc: Service, evs: list[dict[str, Any]], files: dict[str, bytes]) -> None:
    cited = {a["sha256"] for e in evs for a in e.get("attachments", [])}
    svc.post(evs, {k: v for k, v in files.items() if k in cited})


def test_a_read_of_sealed_data_before_the_opening_alerts_naming_who_not_what(
    svc: Service,
) -> None:
    project = "E330100000173"
    files: dict[str, bytes] = {}
    evs = lawful_tender(project, files)
    post_tender(svc, evs[: opening_at(evs)], files)
    h = auth(svc.tok["reviewer"])
    assert svc.c.get(f"/v1/projects/{project}/indicators", headers=h).status_code == 409
    sealed = [
        i
        for i in range(svc.lg.info().size)
        if json.loads(svc.lg.record(i)[0])["project"] == project + "~sealed"
    ]
    assert sealed
    assert svc.c.get(f"/v1/events/{sealed[0]}", headers=h).status_code == 404
    (a,) = kinds(svc, "sealed_read_attempt")
    assert a["subject"] == project
    assert a["record"]["payload"]["token"] == svc.ids["reviewer"]
    # Tried again: the same matter, no second alert.
    assert svc.c.get(f"/v1/projects/{project}/indicators", headers=h).status_code == 409
    settled(svc)
    assert count_kind(svc, "sealed_read_attempt") == 1
    text = json.dumps(a, ensure_ascii=False)
    for b in BIDDERS:
        assert b not in text
    # After the opening the same reads are allowed, and alert nothing.
    post_tender(svc, evs[opening_at(evs) :], files)
    assert svc.c.get(f"/v1/projects/{project}/indicators", headers=h).status_code == 200
    settled(svc)
    assert count_kind(svc, "sealed_read_attempt") == 1


def test_collusion_indicators_alert_after_the_opening_only_without_values(svc: Service) -> None:
    project = "E330100000174"
    files: dict[str, bytes] = {}
    evs = colluding("same_client_ip", project, files)
    cut = opening_at(evs)
    svc.post(evs[:cut], files)
    opening_index = svc.lg.info().size
    svc.post(evs[cut:])
    (a,) = kinds(svc, "collusion_indicator")
    assert a["subject"] == project
    assert a["index"] > opening_index
    text = json.dumps(a, ensure_ascii=False)
    assert "58.100.12.34" not in text
    assert "never a verdict" in a["message"] or "not a verdict" in a["message"].lower()


def test_a_process_rule_broken_at_posting_alerts(svc: Service) -> None:
    project = "E330100000175"
    files: dict[str, bytes] = {}
    lawful_tender(project, files)  # the same bid files as the broken tender's
    svc.post(breaking("E01", project), files)
    found = kinds(svc, "rule_violation")
    assert any(a["record"]["payload"]["rule"] == "E01" for a in found)
    assert all(a["subject"] == project for a in found)


def test_a_monitor_alarm_alerts_log_wide(tmp_path: Path) -> None:
    lg = Ledger.open(tmp_path / "data", f"sqlite:///{tmp_path / 'm.db'}", "alerts.test/log")
    state = tmp_path / "monitor"
    state.mkdir()
    finding = {"kind": "inconsistent", "message": "checkpoint 7 is not consistent with 5"}
    doc = {
        "verifier_key": lg.info().verifier_key,
        "detected_at": "2026-03-02T01:00:00Z",
        "findings": [finding],
    }
    (state / "evidence-0001.json").write_text(json.dumps(doc))
    app = create_app(lg, rate_limit=0, alerts=SETTINGS, monitor_state=state)
    srv = LiveServer(app, lifespan="on", log_level="error")
    try:
        admin = create_token(lg.store, "admin")[1]
        land = create_token(lg.store, "reviewer", scope=make_scope(trade_types=["land"]))[1]
        with httpx.Client(base_url=srv.url, timeout=30) as c:

            def monitor_alerts(tok: str) -> list[dict[str, Any]]:
                got = c.get("/v1/alerts", headers=auth(tok)).json()["alerts"]
                return [a for a in got if a["kind"] == "monitor_alarm"]

            (a,) = wait_for(lambda: monitor_alerts(admin))
            assert a["subject"] is None and a["trade_type"] == "log"
            assert "not consistent" in a["message"]
            assert monitor_alerts(land) == []
        # A restart reads the same evidence file again: it does not alert again. (A new
        # finding shows that the restarted service did look at the directory.)
        srv.stop()
        app = create_app(lg, rate_limit=0, alerts=SETTINGS, monitor_state=state)
        srv = LiveServer(app, lifespan="on", log_level="error")
        (state / "evidence-0002.json").write_text(
            json.dumps({**doc, "findings": [{"kind": "rollback", "message": "size went back"}]})
        )
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            wait_for(lambda: len(monitor_alerts(admin)) >= 2)
            assert [x["message"] for x in monitor_alerts(admin)] == [
                a["message"],
                "monitor alarm (rollback, evidence-0002.json): size went back",
            ]
    finally:
        srv.stop()
        lg.close()


@pytest.mark.slow
def test_owed_webhook_deliveries_survive_kill_9_of_the_service(tmp_path: Path, db_url: str) -> None:
    """A real ``jianzheng serve``, killed with SIGKILL while its webhook receiver is down
    and alerts are owed: started again on the same database, it delivers every alert,
    each acknowledged one exactly once and in order, none acknowledged before the crash
    sent again. (The dead process's leases run out first: 30 s.)"""
    data = tmp_path / "data"

    def token(role: str) -> str:
        out = jianzheng("token", "create", "--data", str(data), "--db", db_url, "--role", role)
        return out.stdout.strip().splitlines()[-1]

    platform, admin = token("platform"), token("admin")
    extra = ("--alert-webhook-allow", "127.0.0.1")
    srv = Server(data, db_url, *extra)
    rx = Receiver()
    rx.up()

    def late(url: str, n: int) -> None:
        evs = [make_event("E330100000180", late_entry={"reason": f"outage {i}"}) for i in range(n)]
        r = httpx.post(
            url + "/v1/events:batch", json={"events": evs}, headers=auth(platform), timeout=30
        )
        assert r.status_code == 201, r.text

    def raised(url: str) -> list[str]:
        got = httpx.get(url + "/v1/alerts", headers=auth(admin), timeout=30).json()["alerts"]
        return [a["id"] for a in got]

    try:
        r = httpx.post(
            srv.url + "/v1/alerts/webhooks", json={"url": rx.url}, headers=auth(admin), timeout=30
        )
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        late(srv.url, 2)
        wait_for(lambda: rx.acked_ids() == {"0", "1"}, 60)
        rx.down()
        late(srv.url, 3)
        wait_for(lambda: len(raised(srv.url)) == 5, 60)

        def failing(url: str) -> bool:
            hooks = httpx.get(url + "/v1/alerts/webhooks", headers=auth(admin), timeout=30)
            return bool(hooks.json()["webhooks"][0]["failed_attempts"] >= 1)

        wait_for(lambda: failing(srv.url), 60)
        srv.kill()
        srv = Server(data, db_url, *extra)
        late(srv.url, 2)
        rx.up()
        every = [str(i) for i in range(7)]
        wait_for(lambda: raised(srv.url) == every, 90)
        wait_for(lambda: rx.acked_ids() == set(every), 90)
        assert rx.acked == every
        assert [g[0] for g in rx.got] == every
        for _, body, sig in rx.got:
            assert signature_valid(secret, body, sig)
    finally:
        srv.stop()
        if rx.server is not None:
            rx.down()
