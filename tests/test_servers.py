"""Smoke tests for the real test servers (tests/servers.py, tests/fixtures_servers.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import urllib.error
import urllib.request
from types import ModuleType
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.servers import http_status

if TYPE_CHECKING:
    # Only for annotations: importing the plugin module here, before pytest
    # loads it, would stop pytest from rewriting its asserts.
    from tests.fixtures_servers import S3Server

# Also loaded by tests/conftest.py; repeating it keeps this file runnable alone
# and registers the plugin only once either way.
pytest_plugins = ["tests.fixtures_servers"]


def test_pg_select_one(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_pg_url_is_sqlalchemy_psycopg(pg_url: str) -> None:
    if os.environ.get("JIANZHENG_TEST_PG_URL"):
        pytest.skip("configured URL: its form is the configurer's choice")
    url = make_url(pg_url)
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "127.0.0.1"
    assert url.database == "jianzheng_test"


_fresh_seen: list[str] = []


@pytest.mark.parametrize("round_", [1, 2])
def test_fresh_pg_url_is_new_and_empty(fresh_pg_url: str, pg_url: str, round_: int) -> None:
    """Two rounds: each gets its own empty database, and the first one's is gone."""
    name = make_url(fresh_pg_url).database
    assert name is not None and name != make_url(pg_url).database
    # Deliberately never disposed: the pooled connection it keeps open must
    # not stop the fixture from dropping the database.
    engine = sa.create_engine(fresh_pg_url)
    with engine.begin() as conn:
        tables = conn.execute(
            sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        ).scalar_one()
        assert tables == 0
        conn.execute(sa.text("CREATE TABLE leftover (x int)"))
    admin = sa.create_engine(pg_url)
    try:
        with admin.connect() as conn:
            existing = set(conn.execute(sa.text("SELECT datname FROM pg_database")).scalars())
    finally:
        admin.dispose()
    assert name in existing
    assert not existing & set(_fresh_seen), "a previous fresh database was not dropped"
    assert name not in _fresh_seen
    _fresh_seen.append(name)


def test_minio_is_live(minio_server: S3Server) -> None:
    assert http_status(f"{minio_server.url}/minio/health/live") == 200


def _s3_request(s3: S3Server, method: str, path: str, secret: str | None = None) -> int:
    """Send an empty-bodied, SigV4-signed S3 request; return the HTTP status."""
    host = s3.url.split("://", 1)[1]
    now = dt.datetime.now(dt.UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    body_hash = hashlib.sha256(b"").hexdigest()
    signed = "host;x-amz-content-sha256;x-amz-date"
    canonical = (
        f"{method}\n{path}\n\nhost:{host}\nx-amz-content-sha256:{body_hash}\n"
        f"x-amz-date:{amz_date}\n\n{signed}\n{body_hash}"
    )
    scope = f"{day}/us-east-1/s3/aws4_request"
    to_sign = (
        f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    )
    key = f"AWS4{secret or s3.secret_key}".encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(
        f"{s3.url}{path}",
        method=method,
        headers={
            "x-amz-date": amz_date,
            "x-amz-content-sha256": body_hash,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={s3.access_key}/{scope}, "
                f"SignedHeaders={signed}, Signature={signature}"
            ),
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status: int = resp.status
            return status
    except urllib.error.HTTPError as e:
        return e.code


def test_minio_credentials_work(minio_server: S3Server) -> None:
    bucket = f"smoke-{secrets.token_hex(4)}"
    assert _s3_request(minio_server, "PUT", f"/{bucket}") == 200
    assert _s3_request(minio_server, "HEAD", f"/{bucket}") == 200
    assert _s3_request(minio_server, "DELETE", f"/{bucket}") == 204
    assert _s3_request(minio_server, "GET", "/", secret="wrong-secret-key") == 403


def test_unavailable_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    plugin = request.config.pluginmanager.get_plugin("tests.fixtures_servers")
    assert isinstance(plugin, ModuleType)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        plugin._unavailable("X", "down")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception):
        plugin._unavailable("X", "down")
