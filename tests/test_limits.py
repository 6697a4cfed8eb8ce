"""api/limits.py against the installed uvicorn: timeouts, body pace and the connection cap.

Each check talks raw HTTP/1.1 over loopback sockets to a uvicorn server running the
guarded protocol with short limits, so what a slow or idle client gets is seen exactly.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from api.limits import ServeLimits, auto_connection_cap, uvicorn_options
from tests.test_storage import LiveServer

LIMITS = ServeLimits(
    header_timeout=1.0, keep_alive=1.0, body_timeout=1.0, min_body_rate=20_000, max_connections=8
)
BIG = b"x" * (1 << 20)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/read``: the body's size; ``/late``: the same, after 2.5 s of not reading;
    ``/hold``: answers after 2 s; ``/big``: 64 MiB."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/late":
        await asyncio.sleep(2.5)
    if path == "/hold":
        await asyncio.sleep(2.0)
    n = 0
    while True:
        m = await receive()
        if m["type"] == "http.disconnect":
            return
        n += len(m["body"])
        if not m.get("more_body"):
            break
    if path == "/big":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(64):
            await send({"type": "http.response.body", "body": BIG, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = json.dumps({"size": n}).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def port() -> Iterator[int]:
    srv = LiveServer(app, log_level="error", **uvicorn_options(LIMITS))
    yield srv.port
    srv.stop()


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def request(path: str, body: bytes = b"", length: int | None = None) -> bytes:
    n = len(body) if length is None else length
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {n}\r\n\r\n".encode() + body


def answer(s: socket.socket) -> tuple[int, bytes]:
    """Status and body of one response (empty status 0 if closed without one)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        got = s.recv(65536)
        if not got:
            return 0, buf
        buf += got
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(rest) < length:
        got = s.recv(65536)
        assert got
        rest += got
    return int(head.split()[1]), rest[:length]


def closed(s: socket.socket, within: float) -> bool:
    """True if the server closes ``s`` (after any answer) within ``within`` seconds."""
    s.settimeout(within)
    try:
        while s.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_headers_must_arrive_in_time(port: int) -> None:
    silent, half = connect(port), connect(port)
    half.sendall(b"GET /read HTTP/1.1\r\nHost: t\r\n")
    t = time.monotonic()
    for s in (silent, half):
        status, body = answer(s)
        assert status == 408
        assert json.loads(body)["error"]["code"] == "timeout"
        assert closed(s, 2)
    assert 0.9 < time.monotonic() - t < 3
    # A kept-alive connection gets the same deadline for its next request's head.
    s = connect(port)
    s.sendall(request("/read", b"abc"))
    assert answer(s) == (200, b'{"size": 3}')
    s.sendall(b"GET /read HTTP/1.1\r\n")
    assert answer(s)[0] == 408


def test_idle_kept_alive_connection_is_closed(port: int) -> None:
    s = connect(port)
    s.sendall(request("/read", b"x"))
    assert answer(s)[0] == 200
    t = time.monotonic()
    assert closed(s, 3)
    assert time.monotonic() - t < 2.5


def test_slow_body_is_cut_off_with_408(port: int) -> None:
    s = connect(port)
    s.sendall(request("/read", length=100_000))
    status = 0
    for _ in range(40):  # 1 KB every 0.1 s: 10 KB/s, half the minimum
        try:
            s.sendall(b"y" * 1000)
        except OSError:
            break
        s.settimeout(0.1)
        try:
            status, body = answer(s)
            break
        except TimeoutError:
            continue
    assert status == 408
    assert json.loads(body)["error"]["code"] == "too_slow"


def test_fast_enough_body_and_a_slow_server_are_not_cut_off(port: int) -> None:
    # 40 KB/s for 2.5 s: above the minimum.
    s = connect(port)
    s.sendall(request("/read", length=100_000))
    for _ in range(25):
        s.sendall(b"y" * 4000)
        time.sleep(0.1)
    assert answer(s) == (200, b'{"size": 100000}')
    # The app reads nothing for 2.5 s: that is the server's delay, not the client's.
    s = connect(port)
    s.sendall(request("/late", BIG * 4))
    assert answer(s) == (200, b'{"size": 4194304}')


def test_client_that_reads_no_response_is_dropped(port: int) -> None:
    s = connect(port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(request("/big"))
    time.sleep(3.0)  # reads nothing: the server's writes stall
    got = 0
    s.settimeout(5)
    try:
        while chunk := s.recv(1 << 20):
            got += len(chunk)
    except ConnectionResetError:
        pass
    assert got < 64 * len(BIG)


def test_connection_cap_closes_the_longest_idle_then_refuses(port: int) -> None:
    idle = [connect(port) for _ in range(LIMITS.max_connections)]
    idle[0].sendall(b"GET /read HTTP/1.1\r\n")  # half-sent, oldest
    time.sleep(0.2)
    # A newcomer is served: the oldest idle connection made room.
    s = connect(port)
    s.sendall(request("/read", b"hi"))
    assert answer(s) == (200, b'{"size": 2}')
    assert closed(idle[0], 0.5)
    assert not closed(idle[-1], 0.2)
    for c in idle:
        c.close()
    s.close()
    time.sleep(0.2)
    # Every connection busy with a request: a newcomer is refused with 503, and the
    # busy ones are answered.
    busy = [connect(port) for _ in range(LIMITS.max_connections)]
    for c in busy:
        c.sendall(request("/hold", b"z"))
    time.sleep(0.3)
    refused = connect(port)
    status, body = answer(refused)
    assert status == 503 and json.loads(body)["error"]["code"] == "busy"
    for c in busy:
        assert answer(c) == (200, b'{"size": 1}')


def test_upgrade_requests_do_not_leak_connection_slots(port: int) -> None:
    # Each would have left the connection registry for good (WebSockets on): the cap of 8
    # filled, and every later connection refused.
    for _ in range(3 * LIMITS.max_connections):
        with connect(port) as s:
            s.sendall(
                b"POST /read HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                b"Content-Length: 0\r\n\r\n"
            )
            assert answer(s)[0] == 200
    time.sleep(0.2)
    with connect(port) as s:
        s.sendall(request("/read", b"ok"))
        assert answer(s) == (200, b'{"size": 2}')


def test_automatic_cap_leaves_descriptors_spare() -> None:
    assert auto_connection_cap(1024) == 768
    assert auto_connection_cap(256) == 128
    assert auto_connection_cap(1 << 20) == 4096
    with pytest.raises(ValueError, match="too few file descriptors"):
        ServeLimits(max_connections=10**9).check()
