"""Token administration (admin only): create, list, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth import TokenCheck, create_token, list_tokens, make_scope, revoke_token
from api.deps import Admin, LedgerDep, TokenId
from api.errors import ApiError

router = APIRouter(tags=["tokens"])


class TokenRequest(BaseModel):
    """A new token: role, optional label, scope and expiry."""

    model_config = ConfigDict(extra="forbid")
    role: str = Field(pattern="^(platform|reviewer|archivist|admin)$")
    # No control characters: a label is shown in listings, and PostgreSQL refuses NUL.
    label: str = Field(default="", max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")
    projects: list[str] = Field(default_factory=list, max_length=1000)
    trade_types: list[str] = Field(default_factory=list, max_length=5)
    expires_at: datetime | None = None

    @field_validator("expires_at", mode="before")
    @classmethod
    def _rfc3339_text(cls, value: object) -> object:
        # pydantic would read a number as Unix time (0.0 is 1970, a token born expired);
        # the schema says an RFC 3339 string, and so does the API.
        if value is not None and not isinstance(value, str):
            raise ValueError("expires_at must be an RFC 3339 date-time string")
        return value


@router.post("/v1/tokens", status_code=201)
def post_token(body: TokenRequest, _: Admin, lg: LedgerDep) -> JSONResponse:
    """Create a token; the reply is the only time the token itself is shown."""
    try:
        scope = make_scope(body.projects, body.trade_types)
    except ValueError as e:
        raise ApiError(422, "invalid_parameter", str(e), "scope") from None
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise ApiError(422, "invalid_parameter", "expires_at needs an offset", "expires_at")
    token_id, token = create_token(
        lg.store, body.role, body.label, expires_at=body.expires_at, scope=scope
    )
    return JSONResponse(
        {"id": token_id, "token": token, "role": body.role, "scope": scope.to_json()},
        status_code=201,
    )


@router.get("/v1/tokens")
def get_tokens(_: Admin, lg: LedgerDep) -> dict[str, Any]:
    """Token metadata (never the tokens), newest first, at most 1000."""
    return {"tokens": list_tokens(lg.store)}


@router.delete("/v1/tokens/{token_id}")
def delete_token(token_id: TokenId, request: Request, _: Admin, lg: LedgerDep) -> dict[str, Any]:
    """Revoke a token by id; it stops working at once in this process."""
    try:
        revoked = revoke_token(lg.store, token_id)
    except LookupError:
        raise ApiError(404, "not_found", "no such token") from None
    tokens: TokenCheck = request.app.state.tokens
    tokens.forget()
    return {"id": revoked, "revoked": True}
