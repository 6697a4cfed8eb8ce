"""Every read of evidence is itself recorded in the ledger (查询调阅 must be traceable).

Reads of records, object downloads and bundle exports append an ``evidence_accessed``
event naming the token, its role, and what was read, to the project's access chain
``<project>~access`` (kept apart so reading never lengthens the process chain being
read). The read is served only once that event is durable: if the access cannot be
recorded, the evidence is not handed out (fail closed).
"""

from __future__ import annotations

import asyncio
from typing import Any

from api.auth import Principal
from api.errors import ApiError
from ledger.clock import rfc3339
from ledger.records import ACCESS_EVENT, ACCESS_SUFFIX, validate_event
from ledger.sequencer import SequencerBusy
from ledger.service import Ledger
from ledger.store import StoreError

#: The poster identity under which the ledger records reads.
ACCESS_POSTER = "jianzheng:access"
TIMEOUT = 30.0


def access_chain(project: str) -> str:
    return project + ACCESS_SUFFIX


async def record_access(
    lg: Ledger, p: Principal, project: str, trade_type: str, what: dict[str, Any]
) -> None:
    """Append the access event and wait (bounded) until it is committed."""
    ev = validate_event(
        {
            "project": access_chain(project),
            "trade_type": trade_type,
            "type": ACCESS_EVENT,
            "actor": {"id": p.token_id, "role": p.role},
            "occurred_at": rfc3339(lg.clock.now()),
            "payload": what,
        },
        lg.catalogue,
        internal=True,
    )
    try:
        await asyncio.wait_for(asyncio.wrap_future(lg.append([ev], ACCESS_POSTER)), TIMEOUT)
    except (SequencerBusy, StoreError, TimeoutError) as e:
        raise ApiError(
            503,
            "access_not_recorded",
            f"the read could not be recorded, so it is refused: {e}",
            headers={"Retry-After": "1"},
        ) from None
