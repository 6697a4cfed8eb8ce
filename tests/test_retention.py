"""An archived project's files are locked as long as its archive says (storage/archiving.py):
on real MinIO, ``archive_package_created`` lengthens each cited file's COMPLIANCE lock to
the end of its ``retention_until`` day, an earlier date never shortens one, a file of
another project is untouched, and a store that is down is reported and caught up by a
replay of the same event."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from ledger.service import Ledger
from storage.archiving import end_of_day
from storage.fs import FilesystemStore
from storage.s3 import MinioStore, S3Config
from storage.service import EvidenceStore
from tests.test_storage import make_minio, s3_client
from tests.transfer import lawful_listing

if TYPE_CHECKING:
    from tests.fixtures_servers import S3Server

PROJECT, OTHER = "L330100000301", "L330100000302"
NOTICE = "出让公告（挂牌）".encode() * 100
DEAL = "成交确认书".encode() * 100
ELSEWHERE = "另一项目的公告".encode() * 100


class Posting:
    def __init__(self, c: TestClient, lg: Ledger, objects: EvidenceStore) -> None:
        self.c = c
        self.lg = lg
        self.objects = objects
        self.headers = {"Authorization": f"Bearer {create_token(lg.store, 'platform')[1]}"}

    def upload(self, data: bytes) -> dict[str, Any]:
        r = self.c.post("/v1/objects", content=data, headers=self.headers)
        assert r.status_code in (200, 201), r.text
        return {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "media_type": "application/pdf",
            "name": "doc.pdf",
        }

    def post(self, evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        r = self.c.post("/v1/events:batch", json={"events": evs}, headers=self.headers)
        assert r.status_code == 201, r.text
        return list(r.json()["receipts"])

    def post_one(self, ev: dict[str, Any]) -> dict[str, Any]:
        r = self.c.post("/v1/events", json=ev, headers=self.headers)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())


@pytest.fixture
def minio_api(minio_server: S3Server, tmp_path: Path) -> Iterator[Posting]:
    lg = Ledger.open(tmp_path / "data", f"sqlite:///{tmp_path / 'l.db'}", "retention.test/log")
    objects = EvidenceStore(make_minio(minio_server), lg.store.engine)
    try:
        with TestClient(create_app(lg, rate_limit=0, objects=objects)) as c:
            yield Posting(c, lg, objects)
    finally:
        objects.close()
        lg.close()


def project(p: Posting, code: str, notice: bytes, deal: bytes | None) -> list[dict[str, Any]]:
    """A land listing whose notice (and deal confirmation) cite files; up to the contract."""
    evs = [e for e in lawful_listing(code) if e["type"] != "archive_package_created"]
    for e in evs:
        if e["type"] == "transfer_notice_published":
            e["attachments"] = [p.upload(notice)]
        if e["type"] == "deal_confirmed" and deal is not None:
            e["attachments"] = [p.upload(deal)]
    return evs


def archive(code: str, until: str, n: int) -> dict[str, Any]:
    return {
        "project": code,
        "trade_type": "land",
        "type": "archive_package_created",
        "actor": {"id": "PRTC-HZ", "role": "platform"},
        "occurred_at": "2026-06-30T09:00:00+08:00",
        "payload": {"retention_until": until, "retention_class": "permanent"},
        "idempotency_key": f"{code}-archive-{n}",
    }


def server_lock(p: Posting, s3: S3Server, data: bytes) -> datetime:
    """The retain-until date MinIO itself holds for the file's stored version."""
    sha = hashlib.sha256(data).hexdigest()
    info = p.objects.require(sha)
    b = p.objects.backend
    assert isinstance(b, MinioStore)
    ret = s3_client(s3).get_object_retention(
        bucket_name=b.bucket, object_name=f"sha256/{sha}", version_id=info.version_id
    )
    assert ret is not None and ret.mode == "COMPLIANCE" and ret.retain_until_date is not None
    return ret.retain_until_date


def test_an_archive_lengthens_the_locks_of_the_projects_files_on_minio(
    minio_api: Posting, minio_server: S3Server
) -> None:
    p = minio_api
    p.post(project(p, PROJECT, NOTICE, DEAL))
    p.post(project(p, OTHER, ELSEWHERE, None))
    before = server_lock(p, minio_server, ELSEWHERE)
    assert before.year - datetime.now(UTC).year == 15  # the service's default lock
    # Archived until 30 June 2070: locked to 24:00 of that day, China Standard Time.
    receipt = p.post_one(archive(PROJECT, "2070-06-30", 1))
    want = datetime(2070, 6, 30, 16, 0, tzinfo=UTC)
    assert end_of_day(datetime(2070, 6, 30).date()) == want
    assert receipt["retention"] == {
        "until": "2070-06-30T16:00:00.000Z",
        "objects": 2,
        "extended": 2,
    }
    for data in (NOTICE, DEAL):
        assert server_lock(p, minio_server, data) == want
        assert p.objects.require(hashlib.sha256(data).hexdigest()).retain_until == (
            "2070-06-30T16:00:00.000Z"
        )
    # Another project's file keeps its own lock.
    assert server_lock(p, minio_server, ELSEWHERE) == before
    # A later archive with an earlier date shortens nothing (COMPLIANCE mode could not).
    receipt = p.post_one(archive(PROJECT, "2045-01-01", 2))
    assert receipt["retention"] == {
        "until": "2070-06-30T16:00:00.000Z",
        "objects": 2,
        "extended": 0,
    }
    sha = hashlib.sha256(NOTICE).hexdigest()
    assert not p.objects.extend_retention(sha, datetime(2050, 1, 1, tzinfo=UTC))
    assert server_lock(p, minio_server, NOTICE) == want
    # A longer one lengthens again.
    receipt = p.post_one(archive(PROJECT, "2080-12-31", 3))
    assert receipt["retention"]["extended"] == 2
    assert server_lock(p, minio_server, DEAL) == datetime(2080, 12, 31, 16, 0, tzinfo=UTC)


def test_a_store_that_is_down_is_reported_and_a_replay_catches_up(
    minio_api: Posting, minio_server: S3Server
) -> None:
    p = minio_api
    p.post(project(p, PROJECT, NOTICE, DEAL))
    up = p.objects.backend
    assert isinstance(up, MinioStore)
    # The same bucket behind an address where nothing listens (a closed loopback port).
    p.objects.backend = MinioStore(
        S3Config(
            endpoint="127.0.0.1:9",
            access_key=up.config.access_key,
            secret_key=up.config.secret_key,
            bucket=up.bucket,
            secure=False,
            part_size=up.config.part_size,
        )
    )
    ev = archive(PROJECT, "2070-06-30", 1)
    receipt = p.post_one(ev)
    # The archive is committed (it is a fact); its receipt says the locks were not lengthened.
    assert "index" in receipt and "not lengthened" in receipt["retention"]["error"]
    assert server_lock(p, minio_server, NOTICE).year < 2070
    p.objects.backend = up
    again = p.post_one(ev)
    assert again["replayed"] is True and again["index"] == receipt["index"]
    assert again["retention"]["extended"] == 2
    assert server_lock(p, minio_server, NOTICE) == datetime(2070, 6, 30, 16, 0, tzinfo=UTC)


def test_the_filesystem_store_keeps_the_longer_date_too(tmp_path: Path) -> None:
    lg = Ledger.open(tmp_path / "data", f"sqlite:///{tmp_path / 'l.db'}", "retention.test/log")
    objects = EvidenceStore(FilesystemStore(tmp_path / "objects"), lg.store.engine)
    try:
        info, _ = objects.ingest([NOTICE], None, "application/pdf")
        later = datetime.now(UTC) + timedelta(days=365 * 40)
        assert objects.extend_retention(info.sha256, later)
        assert not objects.extend_retention(info.sha256, later - timedelta(days=1))
        got = datetime.fromisoformat(objects.require(info.sha256).retain_until)
        assert abs(got - later) < timedelta(milliseconds=1)
    finally:
        objects.close()
        lg.close()
