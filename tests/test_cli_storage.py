"""``jianzheng upload`` and ``jianzheng fetch`` against a real ``jianzheng serve``."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_event
from tests.procs import Server, jianzheng


def test_upload_then_fetch_verifies_and_refuses_tampered_bytes(tmp_path: Path) -> None:
    if os.environ.get("JIANZHENG_S3_ENDPOINT"):
        pytest.skip("tampers with the filesystem backend; the environment selects MinIO")
    data_dir = tmp_path / "data"
    platform = jianzheng("token", "create", "--data", str(data_dir), "--role", "platform")
    archivist = jianzheng("token", "create", "--data", str(data_dir), "--role", "archivist")
    p_tok = platform.stdout.strip().splitlines()[-1]
    a_tok = archivist.stdout.strip().splitlines()[-1]
    srv = Server(data_dir, origin="cli-storage.example/log")
    try:
        recording = tmp_path / "开标录像.mp4"
        content = os.urandom(3 * (1 << 20) + 77)
        recording.write_bytes(content)
        digest = hashlib.sha256(content).hexdigest()

        up = jianzheng("upload", str(recording), "--url", srv.url, "--token", p_tok)
        body = json.loads(up.stdout)
        assert body["sha256"] == digest and body["size"] == len(content)
        assert body["media_type"] == "video/mp4" and body["chunk_count"] == 4
        again = jianzheng("upload", str(recording), "--url", srv.url, "--token", p_tok)
        assert "already stored" in again.stderr
        # Cited by an event, the recording is evidence its project's readers may fetch.
        attachment = {k: body[k] for k in ("sha256", "size", "media_type")}
        ev = make_event(attachments=[{**attachment, "name": recording.name}])
        httpx.post(
            srv.url + "/v1/events", json=ev, headers={"Authorization": f"Bearer {p_tok}"}
        ).raise_for_status()

        out = tmp_path / "fetched.mp4"
        got = jianzheng("fetch", digest, "-o", str(out), "--url", srv.url, "--token", a_tok)
        assert out.read_bytes() == content
        assert "verified" in got.stderr
        # Without -o: saved under the name the citing record gives it (Content-Disposition),
        # or under its hash when asked to.
        here = tmp_path / "downloads"
        here.mkdir()
        common = ("--url", srv.url, "--token", a_tok)
        jianzheng("fetch", digest, *common, cwd=here)
        assert (here / "开标录像.mp4").read_bytes() == content
        jianzheng("fetch", digest, "--name-by-hash", *common, cwd=here)
        assert (here / digest).read_bytes() == content
        assert sorted(p.name for p in here.iterdir()) == sorted([digest, "开标录像.mp4"])

        # Unknown object, wrong role, bad argument: non-zero with a one-line reason.
        missing = jianzheng(
            "fetch",
            "0" * 64,
            "-o",
            str(tmp_path / "x"),
            "--url",
            srv.url,
            "--token",
            a_tok,
            check=False,
        )
        assert missing.returncode != 0 and "404" in missing.stderr
        assert not (tmp_path / "x").exists() and not (tmp_path / "x.part").exists()
        denied = jianzheng(
            "upload", str(recording), "--url", srv.url, "--token", a_tok, check=False
        )
        assert denied.returncode != 0 and "403" in denied.stderr
        bad = jianzheng("fetch", "xyz", "--url", srv.url, "--token", a_tok, check=False)
        assert bad.returncode != 0 and "SHA-256" in bad.stderr

        # Someone edits the stored file behind the service's back: fetch refuses it.
        stored = data_dir / "objects" / "sha256" / digest
        stored.chmod(stat.S_IRUSR | stat.S_IWUSR)
        tampered = bytearray(content)
        tampered[12345] ^= 0xFF
        stored.write_bytes(bytes(tampered))
        out2 = tmp_path / "tampered.mp4"
        r = jianzheng(
            "fetch", digest, "-o", str(out2), "--url", srv.url, "--token", a_tok, check=False
        )
        assert r.returncode == 1
        assert "MISMATCH" in r.stderr and digest in r.stderr
        assert not out2.exists() and not out2.with_name(out2.name + ".part").exists()
    finally:
        srv.stop()
