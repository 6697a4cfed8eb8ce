"""Real `jianzheng` processes for tests written from a user's point of view."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def jianzheng(
    *args: str,
    timeout: float = 60,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would (``python -m api.cli`` is the ``jianzheng`` script),
    in the repository or in ``cwd`` (with this checkout first on the import path)."""
    if cwd is not None:
        env = dict(os.environ if env is None else env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        cwd=cwd or ROOT,
        env=env,
    )


class Process:
    """A child process with its log file: crash it (``kill``) or stop it cleanly."""

    proc: subprocess.Popen[bytes]
    log: IO[str]

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a crash."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within 15 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.log.close()


class Server(Process):
    """``jianzheng serve`` on a free loopback port; waits (bounded) until it answers."""

    def __init__(
        self,
        data: Path,
        db: str | None = None,
        *extra: str,
        origin: str | None = "crash.example/log",
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(data.parent / f"serve-{self.port}.log", "w")
        cmd = [
            sys.executable,
            "-m",
            "api.cli",
            "serve",
            "--data",
            str(data),
            "--port",
            str(self.port),
            *(["--origin", origin] if origin is not None else []),
            *extra,
        ]
        if db is not None:
            cmd += ["--db", db]
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT, env=env, preexec_fn=preexec_fn
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError("server did not start in 60 s")

    def output(self) -> str:
        return Path(self.log.name).read_text()
