"""``jianzheng serve --workers N``: several sequencers, one log.

Each worker process appends through its own sequencer, taking turns on the writer lock.
Seen from the outside that must change nothing: indexes are dense and unique, every
project's chain has consecutive ``seq`` and ``prev`` links, every receipt verifies, every
checkpoint any client saw is consistent with the head, and `jianzheng audit` passes. A
worker killed with SIGKILL loses nothing it acknowledged and is replaced.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_event
from tests.procs import Server, jianzheng
from tests.witness_procs import wait_until
from verifier import merkle
from verifier.checkpoint import open_checkpoint
from verifier.note import parse_vkey
from verifier.receipt import Receipt

REQUESTS = 150
PROJECTS = [f"W{n:03d}" for n in range(6)]


def children(pid: int) -> list[int]:
    """The worker processes of ``jianzheng serve`` ``pid`` (not multiprocessing's helper)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    out = []
    for c in map(int, text.split()):
        try:
            cmd = Path(f"/proc/{c}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmd and b"resource_tracker" not in cmd and not _zombie(c):
            out.append(c)
    return out


def serve_workers(
    data: Path, db: str | None, *extra: str, origin: str = "workers.example/log"
) -> tuple[Server, list[int]]:
    """``jianzheng serve --workers 2`` once both workers are up, and their pids."""
    srv = Server(data, db, *extra, "--workers", "2", origin=origin)
    deadline = time.monotonic() + 30
    while len(children(srv.proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = children(srv.proc.pid)
    assert len(workers) == 2, workers
    return srv, workers


def token(data: Path, db: str, role: str) -> str:
    out = jianzheng("token", "create", "--data", str(data), "--db", db, "--role", role)
    return out.stdout.strip().splitlines()[-1]


def post_stream(
    url: str, tok: str, stop: threading.Event, acked: list[dict[str, Any]], lock: threading.Lock
) -> None:
    """Post single events and small batches on fresh connections until told to stop."""
    i = 0
    # No keep-alive: a new connection each time, so the kernel spreads them over the workers.
    with httpx.Client(
        base_url=url,
        timeout=10,
        headers={"Authorization": f"Bearer {tok}"},
        limits=httpx.Limits(max_keepalive_connections=0),
    ) as http:
        while not stop.is_set() and i < REQUESTS:
            i += 1
            try:
                if i % 4:
                    r = http.post("/v1/events", json=make_event(project=PROJECTS[i % 6]))
                    got = [r.json()] if r.status_code == 201 else []
                else:
                    evs = [make_event(project=PROJECTS[(i + k) % 6]) for k in range(10)]
                    r = http.post("/v1/events:batch", json={"events": evs})
                    got = r.json()["receipts"] if r.status_code == 201 else []
            except (httpx.HTTPError, ValueError):
                continue  # a worker died mid-request: not acknowledged, try again
            with lock:
                acked.extend(got)


class Stream:
    """``n`` threads running :func:`post_stream`; their receipts gathered in one list."""

    def __init__(self, url: str, tok: str, n: int) -> None:
        self.acked: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        args = (url, tok, self.stop, self.acked, self.lock)
        self.threads = [threading.Thread(target=post_stream, args=args) for _ in range(n)]
        for t in self.threads:
            t.start()

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def join(self, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "posting threads did not finish"
        return self.acked


def check_log(url: str, data: Path, db: str, acked: list[dict[str, Any]]) -> None:
    """Everything acknowledged is there, once, in one consistent, audited log."""
    vkey = parse_vkey(httpx.get(url + "/v1/log").json()["verifier_key"])
    head = open_checkpoint(httpx.get(url + "/v1/log").json()["checkpoint"], vkey).checkpoint
    indexes = [r["index"] for r in acked]
    assert len(indexes) == len(set(indexes)), "two events were given the same index"
    h = {"Authorization": f"Bearer {token(data, db, 'reviewer')}"}
    with httpx.Client(base_url=url, headers=h, timeout=30) as http:
        checked: set[int] = set()
        for rj in acked:
            cp = Receipt.from_json(rj).verify(vkey).checkpoint
            assert rj["index"] < head.size
            if cp.size < head.size and cp.size not in checked:
                checked.add(cp.size)
                proof = http.get(f"/v1/proofs/consistency?first={cp.size}&second={head.size}")
                merkle.verify_consistency(
                    cp.size,
                    head.size,
                    [base64.b64decode(x) for x in proof.json()["hashes"]],
                    cp.root,
                    head.root,
                )
        # Each project's chain: seq 0, 1, 2, ... each naming the hash of the one before.
        seen = 0
        for project in PROJECTS:
            prev, after = bytes(32), -1
            while True:
                page = http.get(f"/v1/projects/{project}/events?after={after}&limit=1000").json()
                for rec in page["records"]:
                    assert rec["seq"] == after + 1, f"{project}: seq gap after {after}"
                    assert base64.b64decode(rec["prev"]) == prev, f"{project}: broken chain"
                    prev = hashlib.sha256(_canonical(rec)).digest()
                    after = rec["seq"]
                    seen += 1
                if page["next_after"] is None:
                    break
        assert seen >= len(acked)
    out = jianzheng("audit", "--data", str(data), "--db", db, timeout=300, check=False)
    assert out.returncode == 0 and "audit: OK" in out.stdout, out.stdout + out.stderr


def _canonical(rec: dict[str, Any]) -> bytes:
    from verifier.canonical import canonicalize

    return canonicalize(rec)


@pytest.mark.slow
def test_two_workers_append_to_one_consistent_log(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    tok = token(data, db_url, "platform")
    srv, workers = serve_workers(data, db_url)
    try:
        stream = Stream(srv.url, tok, 6)
        acked = stream.join(120)
        assert len(acked) >= 6 * REQUESTS, len(acked)
        # Both workers served and sequenced a fair share (connections are spread by the
        # kernel over their SO_REUSEPORT sockets), not one of them alone.
        cpu = [_cpu_seconds(p) for p in workers]
        assert min(cpu) > 0.2 * max(cpu), f"one worker did all the work: {cpu}"
        check_log(srv.url, data, db_url, acked)
    finally:
        srv.stop()
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), "a worker outlived stop"


@pytest.mark.slow
def test_a_killed_worker_loses_nothing_and_is_replaced(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    tok = token(data, db_url, "platform")
    srv, _ = serve_workers(data, db_url)
    try:
        stream = Stream(srv.url, tok, 4)
        wait_until(lambda: stream.count() >= 300, 120, "too few events acknowledged")
        victim = children(srv.proc.pid)[0]
        os.kill(victim, signal.SIGKILL)  # mid-stream: its requests in flight are lost
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = children(srv.proc.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.1)
        assert len(children(srv.proc.pid)) == 2, "the killed worker was not replaced"
        stream.stop.set()
        acked = stream.join(60)
        # Appends go on after the replacement, on both workers.
        for _ in range(20):
            r = httpx.post(
                srv.url + "/v1/events",
                json=make_event(project=PROJECTS[0]),
                headers={"Authorization": f"Bearer {tok}"},
                timeout=10,
            )
            assert r.status_code == 201, r.text
            acked.append(r.json())
        check_log(srv.url, data, db_url, acked)
    finally:
        srv.stop()


def test_workers_stop_answering_as_soon_as_the_parent_is_killed(tmp_path: Path) -> None:
    """A worker learns of its parent's death from the kernel (PR_SET_PDEATHSIG) and closes
    its listening socket at once; it used to poll once a second and keep answering."""
    data = tmp_path / "data"
    srv, workers = serve_workers(data, None)
    assert httpx.get(srv.url + "/healthz", timeout=5).status_code == 200
    srv.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    last_answer = None
    while time.monotonic() - killed < 1.5:
        try:
            # A new connection each time: the kernel hands it to any worker still listening.
            if httpx.get(srv.url + "/healthz", timeout=1).status_code == 200:
                last_answer = time.monotonic() - killed
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    srv.kill()
    assert last_answer is None or last_answer < 0.3, f"answered {last_answer:.2f} s after"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers), "workers kept running without their parent"


def test_workers_must_be_positive(tmp_path: Path) -> None:
    out = jianzheng("serve", "--data", str(tmp_path / "d"), "--workers", "0", check=False)
    assert out.returncode != 0 and "--workers must be at least 1" in out.stderr


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and not _zombie(pid)


def _flock_holder(path: Path) -> int | None:
    """The pid holding a flock on ``path``, from /proc/locks."""
    ino = path.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].endswith(f":{ino}"):
            return int(parts[4])
    return None


@pytest.mark.slow
def test_one_worker_gathers_cosignatures_and_another_takes_over(tmp_path: Path) -> None:
    from tests.test_witness_e2e import ORIGIN, write_log_key
    from tests.witness_procs import WitnessProc

    data = tmp_path / "log"
    log_key = write_log_key(data)
    args: list[str] = []
    witnesses = []
    for i in (1, 2):
        out = jianzheng(
            "witness", "add-log", "--data", str(tmp_path / f"w{i}"),
            "--name", f"w{i}.example/witness", "--vkey", log_key.verifier.vkey,
        )  # fmt: skip
        w = WitnessProc(tmp_path / f"w{i}")
        witnesses.append(w)
        args += ["--witness", f"{out.stdout.strip().splitlines()[-1]}@{w.prefix}"]
    tok = jianzheng("token", "create", "--data", str(data), "--role", "platform").stdout.split()[-1]
    srv, _ = serve_workers(data, None, *args, "--witness-quorum", "2", origin=ORIGIN)
    auth = {"Authorization": f"Bearer {tok}"}

    def post(n: int) -> int:
        size = 0
        with httpx.Client(
            base_url=srv.url, headers=auth, timeout=10,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as http:  # fmt: skip
            for _ in range(n):
                r = http.post("/v1/events", json=make_event(project=PROJECTS[1]))
                assert r.status_code == 201, r.text
                size = max(size, r.json()["index"] + 1)
        return size

    def witnessed_everywhere(size: int) -> bool:
        # Fresh connections land on either worker: all must report the witnessed size.
        for _ in range(6):
            with httpx.Client(timeout=5, limits=httpx.Limits(max_keepalive_connections=0)) as h:
                log = h.get(srv.url + "/v1/log").json()
                if log["witnessed_size"] < size:
                    return False
                # Leader and followers alike say each witness is fine (the status file).
                if not all(w["reachable"] and w["message"] is None for w in log["witnesses"]):
                    return False
                ts = h.get(f"{srv.url}/v1/checkpoints/{log['witnessed_size']}/timestamp")
                if ts.status_code != 200:
                    return False
        return True

    try:
        size = post(40)
        wait_until(lambda: witnessed_everywhere(size), 60, "checkpoints not witnessed")
        leader = _flock_holder(data / "witnessing.lock")
        assert leader in children(srv.proc.pid), "no worker leads the witnessing"
        os.kill(leader, signal.SIGKILL)
        wait_until(
            lambda: _flock_holder(data / "witnessing.lock") not in (None, leader), 30,
            "no worker took over the witnessing",
        )  # fmt: skip
        size = post(40)
        wait_until(lambda: witnessed_everywhere(size), 60, "not witnessed after the takeover")
        assert all(w.size() >= size for w in witnesses)
    finally:
        srv.stop()
        for w in witnesses:
            w.stop()
