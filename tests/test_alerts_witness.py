"""Witnessing and monitor alerts end to end (issue 17), with real processes on loopback.

Three ``jianzheng witness serve`` processes, a log ``jianzheng serve --witness ...
--witness-quorum 2 --alert-witness-lag 3`` with a monitor state directory holding one
finding. Two witnesses are stopped: the quorum is lost and the log runs ahead of its
witnessed size; one ``witness_lag`` and one ``quorum_lost`` alert follow (not one per
round, however long it lasts), and when the witnesses come back and cosign, one
``witness_recovered``. The monitor's finding alerts once. Every alert reaches the
supervisor's SSE stream and webhook (signed, each once) and is a record of the
supervision chain whose receipt verifies with the log's key.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.alerts import signature_valid
from ledger.records import SUPERVISION_CHAIN
from tests.conftest import make_event
from tests.procs import Server, jianzheng
from tests.test_alerts import Receiver, auth, wait_for
from tests.test_witness_e2e import ORIGIN, write_log_key
from tests.witness_procs import WitnessProc, wait_until
from verifier.note import parse_vkey
from verifier.receipt import Receipt

LAG = 3


class Stream:
    """An SSE client reading ``GET /v1/alerts/stream`` on a thread until closed."""

    def __init__(self, url: str, token: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.client = httpx.Client(base_url=url, timeout=httpx.Timeout(10, read=40))
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(token,), daemon=True)
        self.thread.start()

    def _read(self, token: str) -> None:
        ev_id = ""
        try:
            with self.client.stream(
                "GET", "/v1/alerts/stream", params={"after": -1}, headers=auth(token)
            ) as resp:
                for line in resp.iter_lines():
                    if self.done.is_set():
                        return
                    if line.startswith("id: "):
                        ev_id = line[4:]
                    elif line.startswith("data: "):
                        self.events.append((ev_id, json.loads(line[6:])))
        except httpx.HTTPError:
            return

    def close(self) -> None:
        self.done.set()
        self.client.close()
        self.thread.join(45)


@pytest.mark.slow
def test_a_lost_quorum_alerts_once_everywhere_and_its_end_is_told(tmp_path: Path) -> None:
    log_key = write_log_key(tmp_path / "log")
    keys = []
    for i in (1, 2, 3):
        out = jianzheng(
            "witness",
            "add-log",
            "--data",
            str(tmp_path / f"w{i}"),
            "--name",
            f"w{i}.example/witness",
            "--vkey",
            log_key.verifier.vkey,
        )
        keys.append(parse_vkey(out.stdout.strip().splitlines()[-1]))
    witnesses = [WitnessProc(tmp_path / f"w{i}") for i in (1, 2, 3)]
    state = tmp_path / "monitor"
    state.mkdir()
    finding = {"kind": "inconsistent", "message": "checkpoint 9 is not consistent with 4"}
    (state / "evidence-0001.json").write_text(
        json.dumps(
            {
                "verifier_key": log_key.verifier.vkey,
                "detected_at": "2026-03-02T01:00:00Z",
                "findings": [finding],
            }
        )
    )
    args = []
    for k, w in zip(keys, witnesses, strict=True):
        args += ["--witness", f"{k.vkey}@{w.prefix}"]
    rx = Receiver()
    rx.up()
    log = Server(
        tmp_path / "log",
        None,
        *args,
        "--witness-quorum",
        "2",
        "--alert-witness-lag",
        str(LAG),
        "--alert-webhook-allow",
        "127.0.0.1",
        "--monitor-state",
        str(state),
        origin=ORIGIN,
    )
    stream: Stream | None = None
    try:

        def token(role: str) -> str:
            data = str(tmp_path / "log")
            return jianzheng("token", "create", "--data", data, "--role", role).stdout.split()[-1]

        platform, admin = token("platform"), token("admin")
        c = httpx.Client(base_url=log.url, timeout=30)
        r = c.post("/v1/alerts/webhooks", json={"url": rx.url}, headers=auth(admin))
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        # Owed: the alerts raised after it was created (the monitor's may come before).
        start = int(r.json()["delivered_through"])
        stream = Stream(log.url, admin)

        def post(n: int) -> None:
            evs = [make_event(project="E330100000190") for _ in range(n)]
            r = c.post("/v1/events:batch", json={"events": evs}, headers=auth(platform))
            assert r.status_code == 201, r.text

        def info() -> dict[str, Any]:
            got: dict[str, Any] = c.get("/v1/log").json()
            return got

        def alerts() -> list[dict[str, Any]]:
            got: list[dict[str, Any]] = c.get("/v1/alerts", headers=auth(admin)).json()["alerts"]
            return got

        def count(kind: str) -> int:
            return sum(1 for a in alerts() if a["kind"] == kind)

        post(5)
        wait_until(lambda: info()["witnessed_size"] == info()["size"], 60, "not witnessed")
        wait_for(lambda: count("monitor_alarm") == 1)
        # Two of three witnesses stop: no quorum of 2 can cosign what comes next.
        witnesses[1].stop()
        witnesses[2].stop()
        post(3)
        wait_for(lambda: count("witness_lag") == 1 and count("quorum_lost") == 1, 60)
        status = info()
        assert status["witnessed_size"] < status["size"]
        reachable = {w["name"]: w["reachable"] for w in status["witnesses"]}
        assert reachable == {
            "w1.example/witness": True,
            "w2.example/witness": False,
            "w3.example/witness": False,
        }
        # While it lasts (three more thresholds, the log still growing): nothing more.
        deadline = time.monotonic() + 3 * LAG
        while time.monotonic() < deadline:
            post(1)
            time.sleep(0.5)
        assert count("witness_lag") == 1 and count("quorum_lost") == 1
        assert count("witness_recovered") == 0
        lag = next(a for a in alerts() if a["kind"] == "witness_lag")
        assert lag["subject"] is None and lag["trade_type"] == "log"
        assert lag["record"]["payload"]["window_seconds"] == LAG
        lost = next(a for a in alerts() if a["kind"] == "quorum_lost")
        assert lost["record"]["payload"]["count"] == 1
        assert lost["record"]["payload"]["threshold"] == 2
        # The witnesses come back, cosign, and the end of the episode is told once.
        witnesses[1].start()
        witnesses[2].start()
        wait_until(lambda: info()["witnessed_size"] == info()["size"], 90, "not witnessed")
        wait_for(lambda: count("witness_recovered") == 1, 60)
        final = alerts()
        assert Counter(a["kind"] for a in final) == {
            "monitor_alarm": 1,
            "witness_lag": 1,
            "quorum_lost": 1,
            "witness_recovered": 1,
        }
        ids = [a["id"] for a in final]
        # Each one a record of the supervision chain, its receipt valid under the log key.
        for a in final:
            assert a["record"]["project"] == SUPERVISION_CHAIN
            assert a["record"]["type"] == "alert_raised"
            Receipt.from_json(a["receipt"]).verify(log_key.verifier, a["record"])
        # Delivered by webhook, each acknowledged once and signed, and by the stream.
        owed = [i for i in ids if int(i) > start]
        assert len(owed) >= 3
        wait_for(lambda: rx.acked_ids() == set(owed), 60)
        assert rx.acked == owed
        for alert_id, body, sig in rx.got:
            assert signature_valid(secret, body, sig)
            assert json.loads(body)["id"] == alert_id
        wait_for(lambda: [i for i, _ in stream.events] == ids if stream else False)
        assert [d["kind"] for _, d in stream.events] == [a["kind"] for a in final]
        c.close()
    finally:
        if stream is not None:
            stream.close()
        log.stop()
        for w in witnesses:
            w.stop()
        rx.down()
