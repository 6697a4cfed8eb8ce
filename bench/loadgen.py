"""A small closed-loop HTTP/1.1 load generator (asyncio, keep-alive, no dependencies).

Each of ``connections`` connections sends one request, waits for the whole response,
records the latency, and sends the next, so latency is the time from POST to receipt.
Written for this benchmark because the usual tools either need installing (wrk) or cost
more CPU than the server under test on a 2-core machine (httpx).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def build_request(
    method: str, path: str, host: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    body = await reader.readexactly(length) if length else b""
    return status, body


async def run_load(
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    connections: int,
    seconds: float,
    warmup: float = 1.0,
    max_requests: int = 10_000_000,
    on_body: Callable[[bytes], None] | None = None,
) -> LoadResult:
    """Drive the server for ``seconds`` after ``warmup``; every socket wait is bounded."""
    res = LoadResult()
    t_start = time.perf_counter()
    t_measure = t_start + warmup
    t_end = t_measure + seconds
    counter = 0

    async def worker() -> None:
        nonlocal counter
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        try:
            while True:
                now = time.perf_counter()
                if now >= t_end or counter >= max_requests:
                    return
                counter += 1
                req = make_request(counter)
                t0 = time.perf_counter()
                writer.write(req)
                status, body = await asyncio.wait_for(_read_response(reader), 30)
                t1 = time.perf_counter()
                if t0 >= t_measure and t1 <= t_end:
                    res.requests += 1
                    res.latencies.append(t1 - t0)
                    res.statuses[status] = res.statuses.get(status, 0) + 1
                    if status >= 300:
                        res.errors += 1
                    if on_body is not None:
                        on_body(body)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    res.seconds = min(time.perf_counter(), t_end) - t_measure
    return res
