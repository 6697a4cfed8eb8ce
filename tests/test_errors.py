"""Every error is a clear 4xx, never a 500 (issue 10 §4), against a real `jianzheng serve`.

Each request here used to be answered with a plain-text 500 (or, for the NUL byte, a
``psycopg.DataError`` on PostgreSQL), or to leave a traceback in the service's log.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures_servers import new_pg_database
from tests.procs import Server
from verifier.canonical import MAX_DEPTH

#: Past CPython's 4300-digit limit on int() of a string (sys.get_int_max_str_digits).
HUGE = "9" * 5000


class Service:
    """A running service, an admin token, and a client that opens a connection per request."""

    def __init__(self, srv: Server, token: str) -> None:
        self.srv = srv
        self.auth = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        # A connection per request: the old 500s made the server drop the connection.
        headers = {**self.auth, **kw.pop("headers", {})}
        return httpx.request(method, self.srv.url + path, headers=headers, timeout=30, **kw)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    data = tmp_path_factory.mktemp("errors") / "data"
    with (
        new_pg_database(request.getfixturevalue("pg_url"))
        if request.param == "postgres"
        else contextlib.nullcontext()
    ) as db:
        srv = Server(data, db, origin="errors.example/log")
        try:
            yield Service(srv, (data / "admin.token").read_text().strip())
        finally:
            srv.stop()
        assert "Traceback" not in srv.output(), srv.output()[-3000:]


def _error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:300])
    err: dict[str, Any] = r.json()["error"]
    assert err["status"] == status
    return err


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("path", ["/v1/events", "/v1/events:batch"])
def test_deep_json_is_refused_naming_the_limit(service: Service, path: str, depth: int) -> None:
    for body in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
        r = service.call("POST", path, content=body, headers={"Content-Type": "application/json"})
        err = _error(r, 422)
        assert f"nesting deeper than {MAX_DEPTH} levels" in err["message"]
    # Unterminated as well as too deep: either complaint is a clear one.
    broken = b"[" * depth
    r = service.call("POST", path, content=broken, headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422)
    assert r.json()["error"]["code"] in ("malformed", "invalid_event")


def test_huge_numbers_in_a_range_header(service: Service) -> None:
    blob = b"0123456789" * 10
    up = service.call("POST", "/v1/objects", content=blob)
    assert up.status_code in (200, 201), up.text
    url = f"/v1/objects/{hashlib.sha256(blob).hexdigest()}"
    # A last position beyond the object means "to the end" (RFC 9110 §14.1.2).
    for spec, want in ((f"0-{HUGE}", blob), (f"-{HUGE}", blob), ("0" * 5000 + "5-6", b"56")):
        r = service.call("GET", url, headers={"Range": f"bytes={spec}"})
        assert r.status_code == 206 and r.content == want, (spec[:20], r.status_code)
    # A first position beyond it overlaps nothing: 416 with the object's size.
    r = service.call("GET", url, headers={"Range": f"bytes={HUGE}-"})
    assert _error(r, 416)["field"] == "Range"
    assert r.headers["Content-Range"] == f"bytes */{len(blob)}"
    # Digits of other scripts are not DIGIT (RFC 9110 §14.1.1): ignored, the whole object.
    r = service.call("GET", url, headers={"Range": "bytes=²-3".encode()})
    assert r.status_code == 200 and r.content == blob


@pytest.mark.parametrize(
    "path",
    [
        f"0/000.p/{HUGE}",
        f"entries/000.p/{HUGE}",
        "0/000.p/²",
        "²/000",
        "0/00²",
        "1/x²²²/000",
        f"{HUGE}/000",
        "0/" + "x000/" * 3000 + "000",
    ],
)
def test_bad_tile_paths_are_404_without_a_token(service: Service, path: str) -> None:
    r = httpx.get(f"{service.srv.url}/log/tile/{path}", timeout=30)
    assert _error(r, 404)["code"] == "not_found"
    assert len(r.content) < 500  # the path is not echoed back whole


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/v1/projects/a%00b/events", "project"),
        ("GET", "/v1/projects/a%00b/access", "project"),
        ("GET", "/v1/projects/a%00b/bundle", "project"),
        ("GET", "/v1/projects/%00/events", "project"),
        ("DELETE", "/v1/tokens/a%00b", "token_id"),
        ("PUT", "/v1/tokens/a%00b/poster-key", "token_id"),
    ],
)
def test_nul_bytes_in_path_parameters(service: Service, method: str, path: str, field: str) -> None:
    body = {"public_key": "A" * 43 + "="} if method == "PUT" else None
    err = _error(service.call(method, path, json=body), 422)
    assert err["field"] == field


@pytest.mark.parametrize("value", ["0.0", "1e0", " 1", "+1", "1_0", "0x1"])
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/proofs/inclusion?tree_size=1&index={}", "index"),
        ("/v1/proofs/consistency?first={}&second=1", "first"),
        ("/v1/events/{}", "index"),
        ("/v1/receipts/{}", "index"),
        ("/v1/projects/P1/events?after={}", "after"),
        ("/v1/projects/P1/events?limit={}", "limit"),
        ("/v1/projects/P1/access?after={}", "after"),
        ("/v1/checkpoints/{}/timestamp", "size"),
        ("/v1/objects/{}/chunks/{{}}".format("0" * 64), "index"),
    ],
)
def test_integers_must_be_written_in_decimal_digits(
    service: Service, path: str, field: str, value: str
) -> None:
    """The schema says integer: pydantic's lax mode read ``0.0`` and ``1e0`` as 0 and 1
    (found by the schemathesis negative pass)."""
    err = _error(service.call("GET", path.format(value)), 422)
    assert err["field"] == field


@pytest.mark.parametrize("label", ["a\x00b", "line\nbreak"])
def test_control_characters_in_a_token_label(service: Service, label: str) -> None:
    r = service.call("POST", "/v1/tokens", json={"role": "reviewer", "label": label})
    assert _error(r, 422)["field"] == "label"


@pytest.mark.parametrize("expires_at", [0, 0.0, 1e12, True])
def test_a_token_expiry_must_be_a_date_time_string(service: Service, expires_at: object) -> None:
    """pydantic read a number as Unix time: 0 made a token that was born expired."""
    r = service.call("POST", "/v1/tokens", json={"role": "reviewer", "expires_at": expires_at})
    assert _error(r, 422)["field"] == "expires_at"


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events:batch", "/v1/objects"])
def test_a_client_leaving_mid_body_leaves_no_traceback(service: Service, path: str) -> None:
    before = service.srv.output()
    with socket.create_connection(("127.0.0.1", service.srv.port), timeout=10) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: t\r\n{_header(service)}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            '{"project":'.encode()
        )
        time.sleep(0.3)  # the route is now waiting for the rest of the body
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and service.call("GET", "/v1/log").status_code != 200:
        time.sleep(0.1)
    time.sleep(0.3)  # give the server the time to log whatever it logs
    added = service.srv.output()[len(before) :]
    assert "Traceback" not in added and "ClientDisconnect" not in added, added[-3000:]


def _header(service: Service) -> str:
    return "".join(f"{k}: {v}" for k, v in service.auth.items())


def test_the_service_still_answers(service: Service) -> None:
    """After all of the above, nothing is stuck and nothing was logged as a crash."""
    assert service.call("GET", "/v1/log").status_code == 200
    assert "Traceback" not in service.srv.output()
    assert not Path(service.srv.log.name).read_text().count("Exception in ASGI")
