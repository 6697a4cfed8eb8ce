"""Expert draws over HTTP (issue 17): ``POST /v1/projects/{project}/draws`` and
``POST /v1/projects/{project}/draws/{draw_id}/reveals``.

The platform commits to a draw: the body is a ``draw_committed`` event for this project
(``project`` and ``type`` may be left out) whose ``payload`` has no ``checkpoint_size``:
the ledger fixes it here, :data:`DRAW_LEAD` entries beyond the log's current head, so that
no party chooses the tree head that enters the derivation (docs/formats.md, Expert draws).
The event then goes through the one append path, like ``POST /v1/events``. A retry with
the same ``idempotency_key`` keeps the ``checkpoint_size`` fixed the first time, so it is
answered with the first receipt (200) and appends nothing.

Each party reveals its own seed with its own token: the platform with a platform token,
the supervising department with its supervisor's (reviewer) token, whose scope must cover
the project. A reveal is taken only once the log has reached the draw's tree head and
before its deadline, and only a seed that opens the party's commitment. A log with
witnesses takes it only once k of them have cosigned a checkpoint at or past that tree
head, so the root is fixed in what the witnesses saw before any seed is in the log.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import LedgerDep, Poster, ProjectCode, app_witnessing, read_json, role
from api.errors import ApiError
from api.routes.events import MAX_EVENT_BODY, ReceiptsResponse, _append, receipts_json
from ledger.access import Principal, authorize_project
from ledger.clock import rfc3339
from ledger.service import Ledger
from ledger.witnessing.view import WitnessingView, log_fields
from verifier.draw import PARTIES, DrawError, parse_pool, seed_commitment
from verifier.payload import parse_instant

router = APIRouter(tags=["draws"])

#: How far beyond the current head the draw's tree head lies: room for the entries appended
#: between reading the head and committing the draw (the rules check that the commitment's
#: own index lies below ``checkpoint_size``).
DRAW_LEAD = 16
#: The most draw records of one type a project's reveal looks through (re-runs included).
MAX_DRAW_RECORDS = 1000
#: Which party each role reveals for (admin reveals for no one: a seed is a party's own).
PARTY_OF_ROLE = {"platform": "platform", "reviewer": "department"}

Revealer = Annotated[Principal, Depends(role("platform", "reviewer"))]


def _earlier(lg: Ledger, poster: str, key: object) -> dict[str, Any] | None:
    """The record this poster appended under idempotency ``key`` before, if any."""
    if not isinstance(key, str):
        return None
    with lg.store.reader() as conn:
        found = lg.store.find_idempotent(conn, poster, [key]).get(key)
    return json.loads(lg.record(found[0])[0]) if found is not None else None


def _draw_records(
    lg: Ledger, project: str, type_: str, draw_id: str
) -> list[tuple[int, dict[str, Any]]]:
    """The project's records of ``type_`` for ``draw_id`` with their log indexes, in seq
    order (bounded)."""
    rows = lg.project_records(project, -1, MAX_DRAW_RECORDS, type_)
    recs = [(index, json.loads(raw)) for index, _, raw in rows]
    return [(i, r) for i, r in recs if r.get("payload", {}).get("draw_id") == draw_id]


def _opens(draw_id: str, party: str, seed_hex: object, terms: dict[str, Any]) -> bool:
    """Whether ``seed_hex`` (64 lowercase hex digits) opens the party's seed commitment."""
    if not isinstance(seed_hex, str) or len(seed_hex) != 64 or seed_hex != seed_hex.lower():
        return False
    try:
        digest = seed_commitment(draw_id, party, bytes.fromhex(seed_hex)).hex()
    except (ValueError, DrawError):
        return False
    return digest == terms.get(f"{party}_seed_commitment")


@router.post("/v1/projects/{project}/draws", status_code=201)
async def post_draw(
    project: ProjectCode, request: Request, p: Poster, lg: LedgerDep
) -> JSONResponse:
    """Commit to an expert draw (实施条例 第四十六条); the reply is the receipt, with the
    ``checkpoint_size`` the ledger fixed."""
    body = await read_json(request, MAX_EVENT_BODY)
    if not isinstance(body, dict) or not isinstance(body.get("payload"), dict):
        raise ApiError(422, "invalid_event", "the draw must be an event object with a payload")
    if body.setdefault("project", project) != project:
        raise ApiError(422, "invalid_event", "project differs from the path", "project")
    if body.setdefault("type", "draw_committed") != "draw_committed":
        raise ApiError(422, "invalid_event", "a draw is a draw_committed event", "type")
    payload = body["payload"]
    if "checkpoint_size" in payload:
        raise ApiError(
            422,
            "invalid_event",
            "checkpoint_size is fixed by the ledger, not by the poster",
            "payload.checkpoint_size",
        )
    try:
        parse_pool(payload.get("pool"))
    except DrawError as e:
        raise ApiError(422, "invalid_event", str(e), "payload.pool") from None
    earlier = await run_in_threadpool(_earlier, lg, p.token_id, body.get("idempotency_key"))
    if earlier is not None and earlier.get("type") == "draw_committed":
        # A retry: the size fixed the first time, so that the same body is the same event
        # (a different body under the key is still refused, 409, by the append path).
        payload["checkpoint_size"] = earlier["payload"]["checkpoint_size"]
    else:
        head = await run_in_threadpool(lg.head)
        payload["checkpoint_size"] = head.size + DRAW_LEAD
    [a] = await _append(request, p, lg, [body], batch=False, dry=False)
    [j] = receipts_json(lg, [a], app_witnessing(request))
    j["checkpoint_size"] = payload["checkpoint_size"]
    return ReceiptsResponse(j, status_code=200 if a.replayed else 201)


@router.post("/v1/projects/{project}/draws/{draw_id}/reveals", status_code=201)
async def post_reveal(
    project: ProjectCode, draw_id: str, request: Request, p: Revealer, lg: LedgerDep
) -> JSONResponse:
    """Reveal a party's seed (``draw_seed_revealed``): the body is ``{"seed": <64 hex>}``
    with an optional ``idempotency_key``; the party is the token's (platform: the
    platform; reviewer: the supervising department). The reply is the receipt."""
    party = PARTY_OF_ROLE.get(p.role)
    if party is None:
        raise ApiError(
            403, "forbidden", "a seed is revealed by its party: a platform or reviewer token"
        )
    body = await read_json(request, MAX_EVENT_BODY)
    if not isinstance(body, dict) or set(body) - {"seed", "idempotency_key", "party"}:
        raise ApiError(422, "invalid_reveal", 'the body must be {"seed", "idempotency_key"}')
    if body.get("party", party) != party:
        raise ApiError(422, "invalid_reveal", f"this token reveals for the {party}", "party")
    seed_hex = body.get("seed")
    seed = b""
    if isinstance(seed_hex, str) and len(seed_hex) == 64 and seed_hex == seed_hex.lower():
        try:
            seed = bytes.fromhex(seed_hex)
        except ValueError:
            pass
    if len(seed) != 32:
        raise ApiError(422, "invalid_reveal", "seed must be 64 lowercase hex digits", "seed")
    if not 0 < len(draw_id) <= 64:
        raise ApiError(404, "not_found", "no such draw")
    trade_type = await run_in_threadpool(authorize_project, lg, p, project, "no such draw")
    commits = await run_in_threadpool(_draw_records, lg, project, "draw_committed", draw_id)
    if not commits:
        raise ApiError(404, "not_found", "no such draw")
    terms = commits[0][1]["payload"]
    key = body.get("idempotency_key")
    earlier = await run_in_threadpool(_earlier, lg, p.token_id, key)
    if earlier is None:
        await run_in_threadpool(
            _check_reveal, lg, app_witnessing(request), terms, party, seed, draw_id
        )
        revealed = await run_in_threadpool(
            _draw_records, lg, project, "draw_seed_revealed", draw_id
        )
        # Only a reveal that counts (rule E08: it opens the commitment, at or past the tree
        # head) closes the party's turn. Any platform token can append a draw_seed_revealed
        # naming either party through POST /v1/events; a bogus one must not lock the party
        # out of its own reveal (the verifier takes the first valid reveal).
        size = int(terms["checkpoint_size"])
        if any(
            r["payload"].get("party") == party
            and index >= size
            and _opens(draw_id, party, r["payload"].get("seed"), terms)
            for index, r in revealed
        ):
            raise ApiError(409, "already_revealed", f"the {party} has revealed this draw's seed")
    event: dict[str, Any] = {
        "project": project,
        "trade_type": trade_type,
        "type": "draw_seed_revealed",
        "actor": {"id": p.token_id, "role": party},
        # A retry keeps the first time, so that it is the same event (answered by replay).
        "occurred_at": earlier["occurred_at"] if earlier else rfc3339(lg.clock.now()),
        "payload": {"draw_id": draw_id, "party": party, "seed": seed_hex},
    }
    if "idempotency_key" in body:  # checked as any event's key (422 naming it if wrong)
        event["idempotency_key"] = key
    [a] = await _append(request, p, lg, [event], batch=False, dry=False)
    [j] = receipts_json(lg, [a], app_witnessing(request))
    return ReceiptsResponse(j, status_code=200 if a.replayed else 201)


def _check_reveal(
    lg: Ledger,
    w: WitnessingView | None,
    terms: dict[str, Any],
    party: str,
    seed: bytes,
    draw_id: str,
) -> None:
    """Refuse a reveal the verifier would not count (rule E08): a seed that does not open
    the party's commitment (422), before the log reached the draw's tree head or after
    its deadline (409). With witnesses, also before a checkpoint at or past the tree head
    has its quorum of cosignatures (409): the draw combines the seeds with a tree head that
    k witnesses cosigned after both commitments (docs/formats.md, Expert draws)."""
    assert party in PARTIES
    if not _opens(draw_id, party, seed.hex(), terms):
        raise ApiError(
            422, "invalid_reveal", f"the seed does not open the {party}'s commitment", "seed"
        )
    size = int(terms["checkpoint_size"])
    have = lg.head().size
    if have < size:
        raise ApiError(
            409,
            "draw_head_pending",
            f"the log has {have} entries; reveal once it has reached the draw's tree head "
            f"at size {size}",
        )
    fields = log_fields(w)
    quorum, witnessed = int(fields["witness_quorum"] or 0), int(fields["witnessed_size"] or 0)
    if quorum > 0 and witnessed < size:
        raise ApiError(
            409,
            "draw_head_pending",
            f"{quorum} witness(es) have cosigned the log up to size {witnessed}; reveal once "
            f"they have cosigned a checkpoint at or past the draw's tree head at size {size}",
        )
    if lg.clock.now() > parse_instant(terms["reveal_deadline"]):
        raise ApiError(
            409,
            "reveal_deadline_passed",
            f"the reveal deadline {terms['reveal_deadline']} has passed: the draw fails and "
            "is re-run under a fresh commitment",
        )
