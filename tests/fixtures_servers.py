"""Pytest plugin: real PostgreSQL and MinIO servers for the test session.

Load it from tests/conftest.py with ``pytest_plugins = ["tests.fixtures_servers"]``.

Configured servers win over started ones:
JIANZHENG_TEST_PG_URL (SQLAlchemy URL), and JIANZHENG_TEST_S3_ENDPOINT with
JIANZHENG_TEST_S3_ACCESS_KEY / JIANZHENG_TEST_S3_SECRET_KEY. A server that can
be neither reached nor started skips its tests locally, and fails them when
CI=true, so that CI can never go green by skipping the database tests.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.servers import ServerError, http_status, start_minio, start_postgres


@dataclass(frozen=True)
class S3Server:
    """Where the tests' S3 (MinIO) server is and how to log in."""

    endpoint: str  # host:port, as the minio client wants it
    access_key: str
    secret_key: str

    @property
    def url(self) -> str:
        """Endpoint with a scheme, for boto3/httpx-style clients."""
        return self.endpoint if "://" in self.endpoint else f"http://{self.endpoint}"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _unavailable(what: str, reason: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"{what} unavailable under CI=true: {reason}", pytrace=False)
    pytest.skip(f"{what} unavailable: {reason}")


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL `url` as a libpq/psycopg connection URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _check_pg(url: str) -> None:
    with psycopg.connect(libpq_url(url), connect_timeout=10) as conn:
        conn.execute("SELECT 1")


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLAlchemy URL (postgresql+psycopg://...) of the session's PostgreSQL database."""
    configured = os.environ.get("JIANZHENG_TEST_PG_URL")
    if configured:
        try:
            _check_pg(configured)
        except Exception as e:
            _unavailable("PostgreSQL", f"JIANZHENG_TEST_PG_URL does not answer: {e}")
        yield configured
        return
    try:
        server = start_postgres(tmp_path_factory.mktemp("pg"))
    except (ServerError, OSError) as e:
        _unavailable("PostgreSQL", str(e))
    try:
        yield server.url
    finally:
        server.stop()


@contextlib.contextmanager
def new_pg_database(pg_url: str) -> Iterator[str]:
    """URL of a new, empty database on the server of ``pg_url``, dropped on exit."""
    name = f"t_{secrets.token_hex(6)}"
    admin = libpq_url(pg_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            # FORCE (PostgreSQL 13+) ends connections a test left open, e.g. in
            # an engine's pool that was never disposed.
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def fresh_pg_url(pg_url: str) -> Iterator[str]:
    """URL of a new, empty database on the session server, dropped after the test."""
    with new_pg_database(pg_url) as url:
        yield url


@pytest.fixture(scope="session")
def minio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """The session's S3 server: endpoint, access key and secret key."""
    endpoint = os.environ.get("JIANZHENG_TEST_S3_ENDPOINT")
    if endpoint:
        access = os.environ.get("JIANZHENG_TEST_S3_ACCESS_KEY", "")
        secret = os.environ.get("JIANZHENG_TEST_S3_SECRET_KEY", "")
        if not (access and secret):
            _unavailable(
                "S3",
                "JIANZHENG_TEST_S3_ENDPOINT is set but JIANZHENG_TEST_S3_ACCESS_KEY "
                "or JIANZHENG_TEST_S3_SECRET_KEY is not",
            )
        s3 = S3Server(endpoint, access, secret)
        # Any HTTP answer will do: a non-MinIO S3 may 404 the health path.
        if http_status(f"{s3.url}/minio/health/live", timeout=10) is None:
            _unavailable("S3", f"JIANZHENG_TEST_S3_ENDPOINT {endpoint} does not answer")
        yield s3
        return
    try:
        server = start_minio(tmp_path_factory.mktemp("minio"))
    except (ServerError, OSError) as e:
        _unavailable("MinIO", str(e))
    try:
        yield S3Server(server.endpoint, server.access_key, server.secret_key)
    finally:
        server.stop()


__all__ = ["S3Server", "fresh_pg_url", "libpq_url", "minio_server", "pg_url"]
