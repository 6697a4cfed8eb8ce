"""POST /v1/events and /v1/events:batch skip FastAPI's dependency solving (issue 18) and
keep their OpenAPI operations and their token and role checks exactly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from api.errors import ERROR_RESPONSES
from api.routes import events
from ledger.service import Ledger
from tests.conftest import make_event

POSTS = ("/v1/events", "/v1/events:batch")


@pytest.fixture
def app_and_tokens(ledger_factory: Any) -> Iterator[tuple[Any, dict[str, str]]]:
    lg: Ledger = ledger_factory()
    tokens = {role: create_token(lg.store, role)[1] for role in ("platform", "reviewer", "admin")}
    yield create_app(lg), tokens


def test_the_post_routes_take_the_direct_path_and_keep_their_openapi_operations(
    app_and_tokens: Any,
) -> None:
    app, _ = app_and_tokens
    routes = {r.path: r for r in events.router.routes if isinstance(r, APIRoute)}
    doc = app.openapi()
    for path in POSTS:
        route = routes[path]
        assert type(route) is events.PosterRoute
        # The same route made by FastAPI's own class gives the same operation.
        ref = APIRouter(tags=["events"])
        ref.add_api_route(
            path,
            route.endpoint,
            methods=["POST"],
            status_code=201,
            openapi_extra=route.openapi_extra,
            responses=ERROR_RESPONSES,
        )
        want = get_openapi(title="t", version="1", routes=ref.routes)["paths"][path]
        assert doc["paths"][path] == want
        op = want["post"]
        assert "parameters" not in op and op["tags"] == ["events"]
        assert op["requestBody"]["required"] is True and "201" in op["responses"]


def test_a_poster_route_refuses_an_endpoint_it_would_not_fill() -> None:
    async def needs_a_query(request: Any, p: Any, lg: Any, extra: int) -> None: ...

    with pytest.raises(TypeError, match="PosterRoute"):
        events.PosterRoute("/x", needs_a_query, methods=["POST"])


def test_the_direct_post_routes_check_the_token_and_role_as_before(app_and_tokens: Any) -> None:
    app, tokens = app_and_tokens
    with TestClient(app) as client:
        for path, body in (("/v1/events", make_event()), (POSTS[1], {"events": [make_event()]})):
            r = client.post(path, json=body)
            assert r.status_code == 401, r.text
            assert r.json()["error"]["code"] == "unauthorized"
            assert r.headers["www-authenticate"] == "Bearer"
            r = client.post(path, json=body, headers={"Authorization": "Bearer jz_nonsense"})
            assert r.status_code == 401
            bearer = {"Authorization": f"Bearer {tokens['reviewer']}"}
            r = client.post(path, json=body, headers=bearer)
            assert r.status_code == 403, r.text
            assert r.json()["error"]["code"] == "forbidden"
            for role in ("platform", "admin"):
                bearer = {"Authorization": f"Bearer {tokens[role]}"}
                r = client.post(path, json=body, headers=bearer)
                assert r.status_code == 201, r.text
        # Errors inside the endpoint still answer in the API's shape.
        bearer = {"Authorization": f"Bearer {tokens['platform']}"}
        r = client.post("/v1/events", content=b"{", headers=bearer)
        assert r.status_code == 400 and r.json()["error"]["code"] == "malformed"
