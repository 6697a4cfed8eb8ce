"""A 1 GiB upload streamed through a real ``jianzheng serve`` process, on both backends:
the server's memory must not grow with the object (at most 64 MiB over its resting size)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.conftest import make_event
from tests.procs import Server, jianzheng
from verifier.chunks import CHUNK_SIZE, verify_chunk

if TYPE_CHECKING:
    from tests.fixtures_servers import S3Server

GIB = 1 << 30
MAX_GROWTH_KIB = 64 * 1024


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def generated(size: int, seed: bytes) -> Iterator[bytes]:
    """``size`` bytes of distinct 1 MiB pieces, the same on every call with the same seed."""
    block = hashlib.shake_256(seed).digest(CHUNK_SIZE)
    for i in range(size // CHUNK_SIZE):
        yield i.to_bytes(8, "big") + block[8:]


def token(data: Path, role: str, env: dict[str, str]) -> str:
    out = jianzheng("token", "create", "--data", str(data), "--role", role, timeout=120, env=env)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["filesystem", "minio"])
def test_1gib_streaming_upload_keeps_server_memory_flat(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIANZHENG_")}
    if backend == "minio":
        s3: S3Server = request.getfixturevalue("minio_server")
        env |= {
            "JIANZHENG_S3_ENDPOINT": s3.endpoint,
            "JIANZHENG_S3_ACCESS_KEY": s3.access_key,
            "JIANZHENG_S3_SECRET_KEY": s3.secret_key,
            "JIANZHENG_S3_BUCKET": f"jz-big-{secrets.token_hex(4)}",
            "JIANZHENG_S3_SECURE": "false",
        }
    data = tmp_path / "data"
    platform = token(data, "platform", env)
    reviewer = token(data, "reviewer", env)
    srv = Server(data, None, origin="big.example/log", env=env)
    proc, url = srv.proc, srv.url
    try:
        auth = {"Authorization": f"Bearer {platform}"}
        with httpx.Client(base_url=url, timeout=httpx.Timeout(300, connect=10)) as http:
            # Warm up: imports, threads, the bucket; then measure from the resting size.
            warm = os.urandom(9 << 20)
            assert http.post("/v1/objects", content=warm, headers=auth).status_code == 201
            seed = secrets.token_bytes(16)
            digest = hashlib.sha256()
            for piece in generated(GIB, seed):
                digest.update(piece)
            resting = status_kib(proc.pid, "VmRSS")
            Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # restart the VmHWM peak
            headers = {
                **auth,
                "X-Content-SHA256": digest.hexdigest(),
                "Content-Type": "video/mp4",
                "Content-Length": str(GIB),
            }
            r = http.post("/v1/objects", content=generated(GIB, seed), headers=headers)
            peak = status_kib(proc.pid, "VmHWM")
            assert r.status_code == 201, r.text
            body = r.json()
            assert body["sha256"] == digest.hexdigest() and body["size"] == GIB
            growth = peak - resting
            assert growth <= MAX_GROWTH_KIB, f"server RSS grew by {growth / 1024:.1f} MiB"
            # One minute of a recording, checked without the rest: the middle chunk, read
            # once an event cites the recording (before that it is no project's evidence).
            att = {k: body[k] for k in ("sha256", "size", "media_type")}
            ev = make_event(attachments=[{**att, "name": "opening.mp4"}])
            http.post("/v1/events", json=ev, headers=auth).raise_for_status()
            i = GIB // CHUNK_SIZE // 2
            j = http.get(
                f"/v1/objects/{body['sha256']}/chunks/{i}",
                headers={"Authorization": f"Bearer {reviewer}"},
            ).json()
            chunk = base64.b64decode(j["data"])
            assert chunk == next(p for n, p in enumerate(generated(GIB, seed)) if n == i)
            verify_chunk(
                i,
                j["chunk_count"],
                chunk,
                [base64.b64decode(p) for p in j["proof"]],
                base64.b64decode(body["chunk_root"]),
            )
    finally:
        srv.stop()
