"""Several ``jianzheng serve`` nodes on one PostgreSQL, as real processes (issue 16).

Each node has its own data directory and the same ``--log-key``. The witnessing leader
is elected by a PostgreSQL session advisory lock: kill -9 the leader node, and another
node gathers the cosignatures within 5 s (plus a margin for this shared machine).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

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


def test_another_node_takes_over_witnessing_when_the_leader_dies(
    tmp_path: Path, fresh_pg_url: str
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

        leader.kill()  # kill -9: its session, and the advisory lock, end with it
        killed = time.monotonic()
        post(other, token, 7)
        wait_until(lambda: witnessed(other), 5 + 5, "no node took over witnessing")
        took = time.monotonic() - killed
        assert witness.size() == 12
        assert "now gathers cosignatures" in other.output()
        print(f"witnessing taken over and the head cosigned {took:.2f} s after kill -9")
    finally:
        for p in (leader, other, witness):
            if p.proc.poll() is None:
                p.stop()
