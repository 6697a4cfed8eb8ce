"""The public read path in a bucket (issue 16): a reader that fetches only from MinIO,
anonymously, verifies every entry's inclusion against the published checkpoint; a
witnessed log's bucket checkpoint carries the witnesses' cosignatures, and ``serve
--log-from-bucket`` answers ``/log/checkpoint`` from the bucket, never moving back."""

from __future__ import annotations

import hashlib
import io
import secrets
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from minio import Minio
from minio.error import S3Error

from api import publishing
from api.publishing import open_publisher
from api.serve_options import parse_serve_argv
from api.serving import serving_app
from ledger.publish import IMMUTABLE, BucketPublisher, adds_cosignatures, changed_tiles, tile_key
from ledger.records import validate_event
from ledger.service import Ledger
from ledger.tiles import TILE_WIDTH, TreeReader, tile_width_at
from ledger.witnessing.leader import FileLeaderLock
from storage.s3 import S3Config
from tests.conftest import make_event
from tests.fixtures_servers import S3Server
from tests.procs import jianzheng
from tests.servers import free_port
from tests.test_witness_e2e import ORIGIN, write_log_key
from tests.witness_procs import WitnessProc, wait_until
from verifier import merkle
from verifier.checkpoint import open_checkpoint
from verifier.note import Signer, parse_note, parse_vkey, sign_note
from verifier.witnessing import WitnessPolicy, cosigners


def test_changed_tiles_names_each_new_width_once() -> None:
    assert changed_tiles(0, 3) == [(0, 0, 3)]
    assert changed_tiles(3, 256) == [(0, 0, 256), (1, 0, 1)]
    assert changed_tiles(256, 300) == [(0, 1, 44)]
    assert changed_tiles(300, 300) == []
    assert tile_key(0, 1234, 44) == "tile/0/x001/234.p/44"
    assert tile_key(None, 0, TILE_WIDTH) == "tile/entries/000"


def test_a_rewritten_checkpoint_only_gains_cosignatures() -> None:
    body = "o.example/log\n3\nAAAA\n\n"
    one, two = body + "— o.example/log x\n", body + "— o.example/log x\n— w1 y\n"
    assert adds_cosignatures(one, two)
    assert not adds_cosignatures(two, one)  # one fewer: never published over it
    assert not adds_cosignatures(two, two)  # the same: not written again
    assert not adds_cosignatures(two, one + "— w2 z\n")  # another set: kept


def test_a_reader_of_the_bucket_alone_verifies_inclusion(
    db_url: str, tmp_path: Path, minio_server: S3Server
) -> None:
    lg = Ledger.open(tmp_path / "data", db_url, "bucket.example/log")
    bucket = f"log-{secrets.token_hex(4)}"
    config = S3Config(minio_server.endpoint, minio_server.access_key, minio_server.secret_key,
                      bucket="unused", secure=False)  # fmt: skip
    publisher = open_publisher(lg, bucket, config)
    try:
        for n in (1, 200, 300, 17):  # batches across the tiles' edges (256, 512)
            evs = [make_event(project="E330100000005") for _ in range(n)]
            lg.append([validate_event(e, lg.catalogue) for e in evs], "p").result(60)
        size = lg.head().size
        assert size == 518
        base = f"{minio_server.url}/{bucket}/"
        http = httpx.Client(timeout=10)  # anonymous: no credentials at all

        def published() -> bool:
            r = http.get(base + "checkpoint")
            return r.status_code == 200 and r.text.split("\n")[1] == str(size)

        wait_until(published, 30, "the head was not published")
        r = http.get(base + "checkpoint")
        assert r.headers["cache-control"] == "public, max-age=5"
        cp = open_checkpoint(r.text, lg.signer.verifier).checkpoint

        def tile(level: int, index: int) -> bytes:
            w = tile_width_at(level, index, cp.size)
            resp = http.get(base + tile_key(level, index, w))
            assert resp.status_code == 200, (level, index, w)
            assert resp.headers["cache-control"] == IMMUTABLE
            return resp.content

        reader = TreeReader(tile)
        for b in range((cp.size + TILE_WIDTH - 1) // TILE_WIDTH):
            w = tile_width_at(0, b, cp.size)
            bundle = http.get(base + tile_key(None, b, w)).content
            at = 0
            for i in range(b * TILE_WIDTH, b * TILE_WIDTH + w):
                n = int.from_bytes(bundle[at : at + 2], "big")
                entry = bundle[at + 2 : at + 2 + n]
                at += 2 + n
                proof = reader.inclusion_proof(i, cp.size)
                merkle.verify_inclusion(i, cp.size, merkle.leaf_hash(entry), proof, cp.root)
            assert at == len(bundle)
        # Nobody may write or list anonymously.
        assert http.put(base + "checkpoint", content=b"forged").status_code == 403
        assert http.get(base).status_code == 403
        assert Minio(minio_server.endpoint, minio_server.access_key, minio_server.secret_key,
                     secure=False).bucket_exists(bucket)  # fmt: skip
    finally:
        publisher.close()
        lg.close()


def test_serve_answers_tiles_from_the_bucket(
    tmp_path: Path, minio_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"log-{secrets.token_hex(4)}"
    monkeypatch.setenv("JIANZHENG_S3_ENDPOINT", minio_server.url)
    monkeypatch.setenv("JIANZHENG_S3_ACCESS_KEY", minio_server.access_key)
    monkeypatch.setenv("JIANZHENG_S3_SECRET_KEY", minio_server.secret_key)
    monkeypatch.setenv("JIANZHENG_S3_BUCKET", f"ev-{secrets.token_hex(4)}")
    data = tmp_path / "data"
    args = parse_serve_argv(
        ["serve", "--data", str(data), "--publish-bucket", bucket, "--log-from-bucket"]
    )
    lg = Ledger.open(data, None, "bucket.example/log")
    evs = [make_event(project="E330100000005") for _ in range(300)]
    lg.append([validate_event(e, lg.catalogue) for e in evs], "p").result(60)
    admin = Minio(minio_server.endpoint, minio_server.access_key, minio_server.secret_key,
                  secure=False)  # fmt: skip
    with TestClient(serving_app(lg, args, owns_ledger=True)) as c:
        real = c.get("/log/tile/0/000").content
        assert len(real) == 256 * 32

        def published() -> bool:
            try:
                return admin.stat_object(bucket, "checkpoint") is not None
            except S3Error:
                return False

        wait_until(published, 30, "the head was not published")
        # The answer comes from the bucket: a changed object there is what serve answers.
        marked = b"\x01" * len(real)
        admin.put_object(bucket, "tile/0/000", io.BytesIO(marked), len(marked))
        assert c.get("/log/tile/0/000").content == marked
        # Not in the bucket (yet): the database answers.
        admin.remove_object(bucket, "tile/0/000")
        r = c.get("/log/tile/0/000")
        assert r.status_code == 200 and r.content == real
        assert c.get("/log/tile/0/001.p/44").status_code == 200
        assert c.get("/log/tile/0/001.p/45").status_code == 404


def test_the_evidence_bucket_is_never_published(
    tmp_path: Path, minio_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishing makes a bucket readable by anyone: named after the evidence bucket (or
    any bucket holding evidence objects) it would hand out sealed bid files and complaint
    letters. serve refuses to start, naming why, and no policy is set."""
    admin = Minio(minio_server.endpoint, minio_server.access_key, minio_server.secret_key,
                  secure=False)  # fmt: skip
    evidence = f"ev-{secrets.token_hex(4)}"
    admin.make_bucket(evidence)
    sealed = b"a sealed bid file"
    key = f"sha256/{hashlib.sha256(sealed).hexdigest()}"
    admin.put_object(evidence, key, io.BytesIO(sealed), len(sealed))
    monkeypatch.setenv("JIANZHENG_S3_ENDPOINT", minio_server.url)
    monkeypatch.setenv("JIANZHENG_S3_ACCESS_KEY", minio_server.access_key)
    monkeypatch.setenv("JIANZHENG_S3_SECRET_KEY", minio_server.secret_key)
    other = f"ev-{secrets.token_hex(4)}"
    data = tmp_path / "data"
    for env_bucket, why in ((evidence, "is the evidence bucket"), (other, "holds evidence")):
        monkeypatch.setenv("JIANZHENG_S3_BUCKET", env_bucket)
        args = parse_serve_argv(["serve", "--data", str(data), "--publish-bucket", evidence])
        lg = Ledger.open(data, None, "bucket.example/log")
        try:
            with pytest.raises(SystemExit, match=why):
                serving_app(lg, args, owns_ledger=False)
        finally:
            lg.close()
        with pytest.raises(S3Error) as e:
            admin.get_bucket_policy(evidence)
        assert e.value.code == "NoSuchBucketPolicy"
        r = httpx.get(f"{minio_server.url}/{evidence}/{key}", timeout=10)
        assert r.status_code == 403  # anonymous: still refused


def _s3_env(monkeypatch: pytest.MonkeyPatch, minio_server: S3Server) -> None:
    monkeypatch.setenv("JIANZHENG_S3_ENDPOINT", minio_server.url)
    monkeypatch.setenv("JIANZHENG_S3_ACCESS_KEY", minio_server.access_key)
    monkeypatch.setenv("JIANZHENG_S3_SECRET_KEY", minio_server.secret_key)
    monkeypatch.setenv("JIANZHENG_S3_BUCKET", f"ev-{secrets.token_hex(4)}")


def _admin(minio_server: S3Server) -> Minio:
    return Minio(minio_server.endpoint, minio_server.access_key, minio_server.secret_key,
                 secure=False)  # fmt: skip


def _object(admin: Minio, bucket: str, key: str) -> bytes | None:
    try:
        resp = admin.get_object(bucket, key)
    except S3Error:
        return None
    try:
        return resp.read()
    finally:
        resp.close()
        resp.release_conn()


def test_a_witnessed_log_publishes_its_cosigned_checkpoint_and_serves_it(
    tmp_path: Path, minio_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bucket's checkpoint is the cosigned note /log/checkpoint serves (it gains the
    witness's cosignature after it was first written); serve --log-from-bucket answers
    /log/checkpoint with the bucket's bytes, never with one older than it served, and
    from the database when the bucket holds none."""
    # Every request reads the bucket: what it holds now is what the route sees.
    monkeypatch.setattr(publishing, "CHECKPOINT_TTL", 0.0)
    _s3_env(monkeypatch, minio_server)
    bucket = f"log-{secrets.token_hex(4)}"
    data = tmp_path / "log"
    log_key = write_log_key(data)
    wdata = tmp_path / "w1"
    out = jianzheng("witness", "add-log", "--data", str(wdata), "--name", "w1.example/witness",
                    "--vkey", log_key.verifier.vkey)  # fmt: skip
    wkey = parse_vkey(out.stdout.strip().splitlines()[-1])
    port = free_port()
    witness: WitnessProc | None = None
    admin = _admin(minio_server)
    try:
        args = parse_serve_argv(
            ["serve", "--data", str(data), "--publish-bucket", bucket, "--log-from-bucket",
             "--witness", f"{wkey.vkey}@http://127.0.0.1:{port}/witness"]
        )  # fmt: skip
        lg = Ledger.open(data, None, ORIGIN)
        first = [make_event(project="E330100000005") for _ in range(3)]
        lg.append([validate_event(e, lg.catalogue) for e in first], "p").result(60)
        older = lg.head().note
        more = [make_event(project="E330100000005") for _ in range(297)]
        lg.append([validate_event(e, lg.catalogue) for e in more], "p").result(60)
        size = lg.head().size
        with TestClient(serving_app(lg, args, owns_ledger=True)) as c:

            def head_in_bucket() -> bool:
                got = _object(admin, bucket, "checkpoint")
                return got is not None and parse_note(got).text.split("\n")[1] == str(size)

            # The witness is down: the head is published with the log's signature alone.
            wait_until(head_in_bucket, 30, "the head was not published")
            alone = _object(admin, bucket, "checkpoint")
            assert alone is not None
            assert not cosigners(open_checkpoint(alone, log_key.verifier).note, [wkey])
            # It comes up and cosigns: the same checkpoint is published again, cosigned.
            witness = WitnessProc(wdata, port)

            def cosigned_in_bucket() -> bool:
                got = _object(admin, bucket, "checkpoint")
                if got is None:
                    return False
                cp = open_checkpoint(got, log_key.verifier)
                return cp.checkpoint.size == size and bool(cosigners(cp.note, [wkey]))

            wait_until(cosigned_in_bucket, 60, "no cosigned checkpoint in the bucket")
            in_bucket = _object(admin, bucket, "checkpoint")
            assert in_bucket is not None
            # Anyone can check it: the log's signature and the witness policy (1 of 1).
            cp = open_checkpoint(in_bucket, log_key.verifier)
            assert [v for v, _ in WitnessPolicy([wkey], 1).check(cp.note)] == [wkey]
            assert adds_cosignatures(alone.decode(), in_bucket.decode())
            stat = admin.stat_object(bucket, "checkpoint")
            assert stat.content_type == "text/plain; charset=utf-8"
            r = c.get("/log/checkpoint")
            assert r.status_code == 200 and r.content == in_bucket
            assert r.headers["content-type"] == "text/plain; charset=utf-8"
            assert r.headers["cache-control"] == "no-cache"

            # The route answers with the bucket's bytes: a note only the bucket holds
            # (one more signature, by a key nobody trusts) is what it serves. The
            # publisher keeps it: the cosigned note it has is no superset of it.
            stranger = Signer.generate("stranger.example/key")
            note = parse_note(in_bucket)
            marked = note.add(sign_note(note.text, [stranger]).signatures[0]).to_text().encode()
            admin.put_object(bucket, "checkpoint", io.BytesIO(marked), len(marked))
            assert c.get("/log/checkpoint").content == marked

            # An older checkpoint in the bucket is not served after a newer one was.
            was = older.encode()
            admin.put_object(bucket, "checkpoint", io.BytesIO(was), len(was))
            r = c.get("/log/checkpoint")
            assert r.status_code == 200
            assert open_checkpoint(r.content, log_key.verifier).checkpoint.size == size
            # Not this log's note (nor any note): the database answers.
            admin.put_object(bucket, "checkpoint", io.BytesIO(b"forged"), 6)
            assert c.get("/log/checkpoint").content == in_bucket
            # Nothing in the bucket: the database answers, cosigned as before.
            admin.remove_object(bucket, "checkpoint")
            r = c.get("/log/checkpoint")
            assert r.status_code == 200 and r.content == in_bucket
    finally:
        if witness is not None:
            witness.stop()


def test_a_lagging_publisher_never_moves_the_checkpoint_back(
    tmp_path: Path, minio_server: S3Server
) -> None:
    """A publisher taking the lead on a node whose head is behind the bucket's checkpoint
    (a node that lags, a database restored from an older backup) leaves it in place."""
    admin = _admin(minio_server)
    bucket = f"log-{secrets.token_hex(4)}"
    admin.make_bucket(bucket)
    log_key = write_log_key(tmp_path / "ahead")
    (tmp_path / "behind").mkdir()
    (tmp_path / "behind" / "log.key").write_text(log_key.skey + "\n")
    (tmp_path / "behind" / "log.key").chmod(0o600)  # the same key on both: two nodes
    ahead = Ledger.open(tmp_path / "ahead", None, ORIGIN)
    behind = Ledger.open(tmp_path / "behind", None, ORIGIN)
    try:
        for lg, n in ((ahead, 20), (behind, 5)):
            evs = [make_event(project="E330100000005") for _ in range(n)]
            lg.append([validate_event(e, lg.catalogue) for e in evs], "p").result(60)
        first = BucketPublisher(ahead, admin, bucket, FileLeaderLock(tmp_path / "a.lock"))
        assert first.publish() == 20
        second = BucketPublisher(behind, admin, bucket, FileLeaderLock(tmp_path / "b.lock"))
        assert second.publish() == 20
        assert _object(admin, bucket, "checkpoint") == ahead.head().note.encode()
        # Once its head passes the bucket's, it publishes.
        evs = [make_event(project="E330100000005") for _ in range(16)]
        behind.append([validate_event(e, behind.catalogue) for e in evs], "p").result(60)
        assert second.publish() == 21
        assert _object(admin, bucket, "checkpoint") == behind.head().note.encode()
    finally:
        ahead.close()
        behind.close()
