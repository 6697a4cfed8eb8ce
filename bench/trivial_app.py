"""The baseline of bench/bench_ledger.py: a trivial FastAPI + pydantic endpoint.

It accepts the same body as ``POST /v1/events`` (a pydantic model of the event's members,
so the body is parsed and validated once) and answers a small JSON object, doing nothing
else: no token, no database, no hashing. Served the way ``jianzheng serve`` is (uvicorn
with uvloop and httptools, the same number of workers), its rate on the same machine in
the same run is what the ledger's append rate is divided by.

    python -m uvicorn bench.trivial_app:app --workers 2 --no-access-log
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel


class Actor(BaseModel):
    id: str
    role: str


class Event(BaseModel):
    project: str
    trade_type: str
    type: str
    actor: Actor
    occurred_at: str
    payload: dict[str, Any]
    idempotency_key: str | None = None


app = FastAPI(title="trivial baseline")


@app.post("/v1/events", status_code=201)
async def post_event(ev: Event) -> dict[str, Any]:
    return {"project": ev.project, "type": ev.type, "index": 0}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
