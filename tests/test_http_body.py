"""api/http_body.py against the installed uvicorn: bodies reach the app whole and in order."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import time
from typing import Any

import pytest

import api.http_body as http_body
from api.http_body import BodyPiecesProtocol
from tests.test_storage import LiveServer


async def digest_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the SHA-256 and size of the body, and how it came (slowly, if asked)."""
    if scope["type"] != "http":
        return
    slow = dict(scope["headers"]).get(b"x-slow") == b"1"
    h, n, messages, kinds = hashlib.sha256(), 0, 0, set()
    while True:
        if slow:
            await asyncio.sleep(0.01)  # let several pieces pile up between receives
        m = await receive()
        assert m["type"] == "http.request"
        kinds.add(type(m["body"]).__name__)
        h.update(m["body"])
        n += len(m["body"])
        messages += 1
        if not m.get("more_body"):
            break
    body = json.dumps(
        {"sha256": h.hexdigest(), "size": n, "messages": messages, "kinds": sorted(kinds)}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Pieces(http_body._Pieces):
    made = 0
    joined = 0

    def __init__(self) -> None:
        super().__init__()
        Pieces.made += 1

    def __bytes__(self) -> bytes:
        if len(self._parts) > 1:
            Pieces.joined += 1
        return super().__bytes__()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(http_body, "_Pieces", Pieces)
    Pieces.made = Pieces.joined = 0
    srv = LiveServer(digest_app, http=BodyPiecesProtocol)
    yield srv.port
    srv.stop()


def read_response(s: socket.socket) -> dict[str, Any]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(rest) < length:
        rest += s.recv(65536)
    assert head.startswith(b"HTTP/1.1 200")
    result: dict[str, Any] = json.loads(rest[:length])
    return result


def post(s: socket.socket, body: bytes, cuts: list[int], slow: bool = False) -> dict[str, Any]:
    head = (
        f"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\nX-Slow: {int(slow)}\r\n\r\n"
    ).encode()
    s.sendall(head)
    last = 0
    for c in [*cuts, len(body)]:
        s.sendall(body[last:c])
        last = c
        time.sleep(0.002)
    return read_response(s)


def test_bodies_arrive_whole_in_order_and_as_bytes(server: int) -> None:
    bodies = [
        os.urandom(3 << 20),  # many reads, one receive each
        b"",
        b"x",
        os.urandom(1000),
    ]
    with socket.create_connection(("127.0.0.1", server)) as s:
        for slow in (False, True):  # slow: pieces pile up and are joined
            for body in bodies:  # one keep-alive connection: each request starts afresh
                cuts = list(range(1, len(body), 77_777))
                got = post(s, body, cuts, slow=slow)
                assert got["sha256"] == hashlib.sha256(body).hexdigest()
                assert got["size"] == len(body)
                assert got["kinds"] == ["bytes"]
    # The protocol did take over the bodies, and the slow app made it join pieces.
    assert Pieces.made > 0 and Pieces.joined > 0


def test_chunked_bodies_too(server: int) -> None:
    body = os.urandom(700_001)
    with socket.create_connection(("127.0.0.1", server)) as s:
        s.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(body), 100_000):
            piece = body[i : i + 100_000]
            s.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
        s.sendall(b"0\r\n\r\n")
        got = read_response(s)
    assert got["sha256"] == hashlib.sha256(body).hexdigest()
    assert got["size"] == len(body)
