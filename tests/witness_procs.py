"""A real ``jianzheng witness serve`` process on loopback, for tests."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.procs import ROOT, Process
from tests.servers import free_port


class WitnessProc(Process):
    """``jianzheng witness serve`` on a free loopback port."""

    def __init__(self, data: Path, port: int | None = None, *extra: str) -> None:
        """``extra``: more ``witness serve`` options (a ``--prefix`` moves :attr:`prefix`)."""
        self.data = data
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = extra
        path = extra[extra.index("--prefix") + 1] if "--prefix" in extra else "/witness"
        #: tlog-witness submission prefix, what ``serve --witness VKEY@URL`` is given.
        self.prefix = self.url + ("/" + path.strip("/") if path.strip("/") else "")
        self.start()

    def start(self) -> None:
        self.log = open(self.data.parent / f"{self.data.name}-{time.monotonic_ns()}.log", "w")
        cmd = [sys.executable, "-m", "api.cli", "witness", "serve", "--data", str(self.data)]
        cmd += ["--port", str(self.port), *self.extra]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        wait_until(lambda: self._up(), 60, "witness did not start")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"witness exited: {Path(self.log.name).read_text()[-2000:]}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def info(self) -> dict[str, Any]:
        r = httpx.get(self.prefix + "/", timeout=5)
        r.raise_for_status()
        out: dict[str, Any] = r.json()
        return out

    def size(self) -> int:
        [log] = self.info()["logs"]
        size: int = log["size"]
        return size

    def post(self, body: str) -> httpx.Response:
        return httpx.post(self.prefix + "/add-checkpoint", content=body.encode(), timeout=10)


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} (after {timeout} s)")
