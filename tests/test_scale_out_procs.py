"""Several ``jianzheng serve`` nodes on one PostgreSQL, as real processes (issue 16).

Each node has its own data directory and the same ``--log-key``. The witnessing leader
is elected by a PostgreSQL session advisory lock: kill -9 the leader node, or freeze it
(SIGSTOP: the process stops but its kernel still answers the session's keepalives, as a
hung process or a paused VM would), and another node gathers the cosignatures within 5 s
(the waits allow a margin for this shared machine; the time taken is printed). A frozen
leader that runs again finds its lock gone and follows.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_event
from tests.procs import Server, jianzheng
from tests.witness_procs import WitnessProc, wait_until
from verifier.note import Signer, parse_vkey

ORIGIN = "nodes.example/log"


def log_info(node: Server) -> dict[str, Any]:
    out: dict[str, Any] = httpx.get(node.url + "/v1/log", timeout=10).json()
    return out


def post(node: Server, token: str, n: int) -> None:
    evs = [make_event(project="E330100000009") for _ in range(n)]
    r = httpx.post(
        node.url + "/v1/events:batch",
        json={"events": evs},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("fault", ["kill -9", "frozen"])
def test_another_node_takes_over_witnessing_when_the_leader_dies(
    tmp_path: Path, fresh_pg_url: str, fault: str
) -> None:
    signer = Signer.generate(ORIGIN)
    key = tmp_path / "log.key"
    key.write_text(signer.skey + "\n")
    key.chmod(0o600)
    out = jianzheng(
        "witness",
        "add-log",
        "--data",
        str(tmp_path / "w"),
        "--name",
        "w.example/witness",
        "--vkey",
        signer.verifier.vkey,
    )
    wkey = parse_vkey(out.stdout.strip().splitlines()[-1])
    witness = WitnessProc(tmp_path / "w")
    opts = ["--log-key", str(key), "--witness", f"{wkey.vkey}@{witness.prefix}"]
    leader = Server(tmp_path / "a", fresh_pg_url, *opts, origin=ORIGIN)
    other = Server(tmp_path / "b", fresh_pg_url, *opts, origin=ORIGIN)
    try:
        token = jianzheng(
            "token",
            "create",
            "--data",
            str(tmp_path / "a"),
            "--db",
            fresh_pg_url,
            "--role",
            "platform",
        ).stdout.split()[-1]

        def witnessed(node: Server) -> bool:
            info = log_info(node)
            return bool(info["size"] and info["witnessed_size"] == info["size"])

        post(other, token, 5)  # appended by the follower, witnessed by the leader
        wait_until(lambda: witnessed(other), 30, "the leader did not witness the head")
        assert witness.size() == 5
        assert "now gathers cosignatures" not in other.output()

        if fault == "kill -9":
            leader.kill()  # its session, and the advisory lock, end with it
        else:
            # Stopped, it sends nothing: the server ends its idle lock session.
            leader.proc.send_signal(signal.SIGSTOP)
        lost = time.monotonic()
        post(other, token, 7)
        wait_until(lambda: witnessed(other), 5 + 5, "no node took over witnessing")
        took = time.monotonic() - lost
        assert witness.size() == 12
        assert "now gathers cosignatures" in other.output()
        print(f"witnessing taken over and the head cosigned {took:.2f} s after {fault}")
        if fault == "frozen":
            leader.proc.send_signal(signal.SIGCONT)
            wait_until(
                lambda: "lost the witnessing leader lock" in leader.output(),
                10,
                "the leader that ran again did not step down",
            )
            post(leader, token, 3)  # the old leader appends; the new one witnesses it
            wait_until(lambda: witnessed(leader), 30, "the head was not witnessed")
            assert witness.size() == 15
            assert "now gathers cosignatures" not in leader.output()
    finally:
        for p in (leader, other, witness):
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGCONT)
                p.stop()
