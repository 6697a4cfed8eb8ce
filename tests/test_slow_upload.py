"""One token's trickling uploads do not block another token's (issue 10 §3).

Real ``jianzheng serve`` with its default upload slots (16 at once, 4 per token). Token A
starts five uploads and sends them at 1 KB/s: four take A's slots, the fifth is refused
with 429. Token B uploads meanwhile, and is served. A's trickles are then cut off with a
clear 408 (the body came slower than ``--min-body-rate``), nothing of them is stored, and
A's slots are free again. Before per-token slots, A's four trickles took every slot of
the service and B got 503.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import socket
import time
from pathlib import Path
from typing import Any

import httpx

from tests.procs import Server, jianzheng
from tests.witness_procs import wait_until

TRICKLES = 5
SIZE = 100_000
PIECE = 512  # every 0.5 s: 1 KB/s


def platform_token(data: Path) -> str:
    out = jianzheng("token", "create", "--data", str(data), "--role", "platform")
    return out.stdout.strip().splitlines()[-1]


def start_trickle(port: int, token: str, body: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        f"POST /v1/objects HTTP/1.1\r\nHost: ledger\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/pdf\r\nContent-Length: {len(body)}\r\n"
        f"X-Content-SHA256: {hashlib.sha256(body).hexdigest()}\r\n\r\n"
    )
    s.sendall(head.encode())
    return s


def response(s: socket.socket) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of the response waiting on ``s``."""
    s.settimeout(10)
    buf = b""
    while b"\r\n\r\n" not in buf:
        got = s.recv(65536)
        assert got, f"closed without a response: {buf!r}"
        buf += got
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(rest) < length:
        got = s.recv(65536)
        assert got
        rest += got
    return int(head.split()[1]), json.loads(rest[:length])


def stored(data: Path) -> tuple[list[str], list[str]]:
    """Object files and temporary upload files of the filesystem store."""
    objects = data / "objects"
    return (
        sorted(p.name for p in (objects / "sha256").rglob("*") if p.is_file()),
        sorted(p.name for p in (objects / "tmp").iterdir()),
    )


def test_trickling_uploads_of_one_token_do_not_block_another(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tok_a, tok_b = platform_token(data), platform_token(data)
    # Cut off quickly for the test: below 4 KB/s over any 2 s.
    srv = Server(data, None, "--body-timeout", "2", "--min-body-rate", "4096")
    socks: list[socket.socket] = []
    try:
        bodies = [os.urandom(SIZE) for _ in range(TRICKLES)]
        for body in bodies[:-1]:
            s = start_trickle(srv.port, tok_a, body)
            s.sendall(body[:PIECE])
            socks.append(s)
        time.sleep(0.3)  # the four hold their slots
        extra = start_trickle(srv.port, tok_a, bodies[-1])
        status, err = response(extra)
        extra.close()
        assert status == 429, err
        assert err["error"]["code"] == "too_many_uploads"

        # B is served while A's four trickle.
        b_body = os.urandom(1 << 20)
        r = httpx.post(
            srv.url + "/v1/objects",
            content=b_body,
            headers={"Authorization": f"Bearer {tok_b}", "Content-Type": "application/pdf"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        assert r.json()["sha256"] == hashlib.sha256(b_body).hexdigest()

        # A's trickles go on at 1 KB/s until the server cuts them off.
        answers: dict[int, tuple[int, dict[str, Any]]] = {}
        sent = [PIECE] * len(socks)
        deadline = time.monotonic() + 15
        while len(answers) < len(socks):
            assert time.monotonic() < deadline, f"only {len(answers)} trickles were cut off"
            ready, _, _ = select.select(socks, [], [], 0.5)
            for s in ready:
                i = socks.index(s)
                if i not in answers:
                    answers[i] = response(s)
            for i, s in enumerate(socks):
                if i not in answers:
                    try:
                        s.sendall(bodies[i][sent[i] : sent[i] + PIECE])
                        sent[i] += PIECE
                    except OSError:
                        pass  # closed: its answer is read on the next round
        for status, err in answers.values():
            assert status == 408, err
            assert err["error"]["code"] == "too_slow"
            assert "nothing was stored" in err["error"]["message"]
        assert max(sent) < SIZE

        # Nothing of the trickles is stored, not even a temporary file; A may upload again.
        wait_until(lambda: stored(data)[1] == [], 10, "temporary upload files remain")
        assert stored(data)[0] == [hashlib.sha256(b_body).hexdigest()]
        r = httpx.post(
            srv.url + "/v1/objects",
            content=bodies[0],
            headers={"Authorization": f"Bearer {tok_a}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
    finally:
        for s in socks:
            s.close()
        srv.stop()
