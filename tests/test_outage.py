"""No outage without a token (issue 10 §3), with real ``jianzheng serve`` processes.

The server runs with ``ulimit -n 1024``. Two thousand connections that never finish their
request headers (no token, nothing else) are opened against it and held, while a client
with a token keeps asking on fresh connections: every request is answered, the 99th
percentile within 1 s, and once the attackers go the service answers as before. Without
a connection cap the server runs out of descriptors at about a thousand such connections
and accepts nobody until they are released.
"""

from __future__ import annotations

import resource
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.procs import Server
from tests.test_workers import children

NOFILE = 1024
ATTACKERS = 2000
#: How long the client keeps asking once every attacking connection is open.
HOLD = 4.0
HALF_SENT = b"POST /v1/events HTTP/1.1\r\nHost: ledger\r\nContent-Type: application/json\r\n"


def limit_nofile() -> None:
    """preexec_fn: the server's ``ulimit -n`` (soft and hard)."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


@pytest.fixture(autouse=True)
def enough_descriptors_here() -> None:
    """This process holds the attacking connections: it needs more than 2,000 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = ATTACKERS + 500
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip(f"the test process may open only {hard} files")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Attack:
    """``n`` connections from one thread, each sending half a request head, then idle."""

    def __init__(self, port: int, n: int) -> None:
        self.port = port
        self.n = n
        self.socks: list[socket.socket] = []
        self.opened = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for _ in range(self.n):
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                self.socks.append(s)
                s.sendall(HALF_SENT)
            except OSError as e:  # the server closed an older one meanwhile: fine
                self.errors.append(repr(e))
        self.opened.set()

    def release(self) -> None:
        self.thread.join(30)
        for s in self.socks:
            s.close()


def ask(url: str, token: str, seconds: float) -> list[float]:
    """GET /v1/tokens on a new connection each time for ``seconds``; the latencies
    (infinite for a failed request)."""
    out: list[float] = []
    deadline = time.monotonic() + seconds
    # No keep-alive: every request needs a connection of its own, as a new client would.
    with httpx.Client(
        timeout=5,
        headers={"Authorization": f"Bearer {token}"},
        limits=httpx.Limits(max_keepalive_connections=0),
    ) as http:
        while time.monotonic() < deadline:
            t = time.monotonic()
            try:
                ok = http.get(url + "/v1/tokens").status_code == 200
            except httpx.HTTPError:
                ok = False
            out.append(time.monotonic() - t if ok else float("inf"))
            time.sleep(0.01)
    return out


def p99(latencies: list[float]) -> float:
    s = sorted(latencies)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


def open_fds(pids: list[int]) -> int:
    return max(len(list(Path(f"/proc/{pid}/fd").iterdir())) for pid in pids)


@pytest.mark.parametrize("workers", [1, 2])
def test_idle_half_sent_connections_cause_no_outage(tmp_path: Path, workers: int) -> None:
    extra = ("--workers", str(workers)) if workers > 1 else ()
    srv = Server(
        tmp_path / "data", None, *extra, origin="outage.example/log", preexec_fn=limit_nofile
    )
    try:
        pids = [srv.proc.pid]
        if workers > 1:
            deadline = time.monotonic() + 30
            while len(children(srv.proc.pid)) < workers and time.monotonic() < deadline:
                time.sleep(0.1)
            pids = children(srv.proc.pid)
            assert len(pids) == workers
        token = (tmp_path / "data" / "admin.token").read_text().strip()
        before = ask(srv.url, token, 0.5)
        assert before and max(before) < 1.0

        attack = Attack(srv.port, ATTACKERS)
        during: list[float] = []
        try:
            # Ask while the connections are being opened, and a while after they all are.
            deadline = time.monotonic() + 30
            while not attack.opened.is_set():
                assert time.monotonic() < deadline, "the attack did not finish opening"
                during += ask(srv.url, token, 0.2)
            during += ask(srv.url, token, HOLD)
            # The server kept within its descriptors: nothing near the limit stays open.
            assert open_fds(pids) < NOFILE - 100
        finally:
            attack.release()
        after = ask(srv.url, token, 1.0)

        failed = sum(1 for x in during if x == float("inf"))
        print(f"workers={workers}: {len(during)} requests, p99 {p99(during) * 1000:.0f} ms")
        assert failed == 0, f"{failed} of {len(during)} requests failed during the attack"
        assert len(during) >= 20
        assert p99(during) <= 1.0, sorted(during)[-5:]
        assert after and max(after) < 1.0
        assert srv.proc.poll() is None
        log = srv.output()
        # The cap acted, and accept never ran out of descriptors.
        assert "connection cap" in log
        assert "out of system resource" not in log and "Too many open files" not in log
    finally:
        srv.stop()
