"""Drive an HTTP server with wrk (C, epoll): POST bodies made per request by a Lua script.

wrk costs far less CPU per request than a Python load generator, which matters on a
2-core machine where the load and the server share the cores. Install it with
``apt-get install -y wrk`` (Debian); :func:`have_wrk` says whether it is there.

Bodies are ``prefix + code + suffix``: ``code`` is a fresh project code per request
(``mode="new"``), one of ``pool`` codes at random (``"existing"``), or nothing (``"fixed"``:
the body is ``prefix``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = r"""
local prefix, suffix, mode, tag, pool = %(prefix)s, %(suffix)s, %(mode)s, %(tag)s, %(pool)d
local headers = {["Content-Type"] = "application/json"%(auth)s}
local n = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  math.randomseed(tid * 7919)
  if mode == "fixed" then
    wrk.method, wrk.body, wrk.headers = "POST", prefix, headers
    req = wrk.format("POST", %(path)s, headers, prefix)
  end
end

function request()
  if mode == "fixed" then return req end
  n = n + 1
  local code
  if mode == "new" then
    code = string.format("%%s%%d-%%d", tag, tid, n)
  else
    code = string.format("%%s%%05d", tag, math.random(0, pool - 1))
  end
  return wrk.format("POST", %(path)s, headers, prefix .. code .. suffix)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nRESULT {"requests": %%d, "duration_us": %%d, "non2xx": %%d, "errors": %%d, '
    .. '"p50_us": %%d, "p99_us": %%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def _lua(s: str) -> str:
    """A Lua string literal (JSON's escapes are Lua's for these bodies: ASCII or UTF-8)."""
    return json.dumps(s, ensure_ascii=False)


@dataclass
class WrkResult:
    requests: int
    seconds: float
    non2xx: int
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(
    url: str,
    path: str,
    *,
    prefix: str,
    suffix: str = "",
    mode: str = "fixed",
    tag: str = "P",
    pool: int = 200,
    token: str | None = None,
    connections: int = 64,
    threads: int = 2,
    seconds: float = 10,
) -> WrkResult:
    """Run wrk against ``url + path`` for ``seconds``; its counts and latency percentiles."""
    auth = f', ["Authorization"] = {_lua("Bearer " + token)}' if token else ""
    script = _SCRIPT % {
        "prefix": _lua(prefix),
        "suffix": _lua(suffix),
        "mode": _lua(mode),
        "tag": _lua(tag),
        "pool": pool,
        "auth": auth,
        "path": _lua(path),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "30s",
                "-s",
                f.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    finally:
        Path(f.name).unlink(missing_ok=True)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    r = json.loads(line.removeprefix("RESULT "))
    return WrkResult(
        r["requests"],
        r["duration_us"] / 1e6,
        r["non2xx"],
        r["errors"],
        r["p50_us"] / 1e3,
        r["p99_us"] / 1e3,
    )
