"""kill -9 during a stream of appends: nothing acknowledged is lost, and the log never forks.

The service runs as a real ``jianzheng serve`` process; client threads post events and
keep every receipt they were given. After SIGKILL and a restart on the same data, every
acknowledged event is there with the same hash, the audit passes, and the new head is
consistent with every checkpoint a client saw.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_event
from tests.procs import Server, jianzheng
from verifier import merkle
from verifier.checkpoint import open_checkpoint
from verifier.note import parse_vkey
from verifier.receipt import Receipt


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_event(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    token = (
        jianzheng("token", "create", "--data", str(data), "--db", db_url, "--role", "platform")
        .stdout.strip()
        .splitlines()[-1]
    )
    srv = Server(data, db_url)
    vkey = parse_vkey(httpx.get(srv.url + "/v1/log").json()["verifier_key"])
    acked: list[dict[str, Any]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(
            base_url=srv.url, timeout=10, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            i = 0
            while not stop.is_set() and i < 5000:
                i += 1
                try:
                    if i % 3:
                        r = http.post("/v1/events", json=make_event(project=f"C{n}"))
                        got = [r.json()] if r.status_code == 201 else []
                    else:
                        evs = [make_event(project=f"C{n}") for _ in range(20)]
                        r = http.post("/v1/events:batch", json={"events": evs})
                        got = r.json()["receipts"] if r.status_code == 201 else []
                except (httpx.HTTPError, ValueError):
                    return  # the server died mid-request: that event was not acknowledged
                with lock:
                    acked.extend(got)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with lock:
            if len(acked) >= 400:
                break
        time.sleep(0.05)
    srv.kill()  # mid-stream: requests are in flight
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) >= 400, "the server acknowledged too few events before the kill"

    srv2 = Server(data, db_url)
    try:
        log = httpx.get(srv2.url + "/v1/log").json()
        head = open_checkpoint(log["checkpoint"], vkey).checkpoint
        reviewer = (
            jianzheng("token", "create", "--data", str(data), "--db", db_url, "--role", "reviewer")
            .stdout.strip()
            .splitlines()[-1]
        )
        h = {"Authorization": f"Bearer {reviewer}"}
        with httpx.Client(base_url=srv2.url, headers=h, timeout=30) as http:
            for rj in acked:
                receipt = Receipt.from_json(rj)
                cp = receipt.verify(vkey).checkpoint
                assert receipt.index < head.size
                rec = http.get(f"/v1/events/{receipt.index}").json()
                receipt.verify(vkey, rec["record"])  # same record, same hash
                if cp.size < head.size:  # no fork: every checkpoint seen extends to the head
                    proof = http.get(
                        f"/v1/proofs/consistency?first={cp.size}&second={head.size}"
                    ).json()["hashes"]
                    merkle.verify_consistency(
                        cp.size, head.size, [base64.b64decode(x) for x in proof], cp.root, head.root
                    )
        # Appends continue after the restart (the reads above were recorded as access
        # events, so the log has grown since `head`).
        size_now = httpx.get(srv2.url + "/v1/log").json()["size"]
        assert size_now > head.size
        r = httpx.post(
            srv2.url + "/v1/events", json=make_event(), headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 201 and r.json()["index"] == size_now
    finally:
        srv2.kill()
    out = subprocess.run(
        [sys.executable, "-m", "api.cli", "audit", "--data", str(data), "--db", db_url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "audit: OK" in out.stdout
