"""Who may read evidence, and the record of every read (查询调阅 must be traceable).

Reads of records, object downloads and bundle exports append an ``evidence_accessed``
event naming the token, its role, and what was read, to the project's access chain
``<project>~access`` (kept apart so reading never lengthens the process chain being
read). The read is served only once that event is durable: if the access cannot be
recorded, the evidence is not handed out (fail closed).

Evidence objects belong to the projects whose records cite them (``object_citations``,
written with the records). A token may touch an object through a citing project in its
scope, and, for the files of sealed events (bids), only as the sealing rules allow. An
object no record cites is not evidence yet: only an unlimited platform token (which checks
its own upload) or admin reads it, and that read belongs to no project's access chain.
Everything else answers 404, exactly as for an object that is not stored (OWASP API1).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from api.auth import Principal
from api.deps import not_found
from api.errors import ApiError
from ledger.clock import rfc3339
from ledger.records import ACCESS_EVENT, ACCESS_SUFFIX, validate_event
from ledger.sealing import may_read_sealed, seals_attachments
from ledger.sequencer import SequencerBusy
from ledger.service import Ledger
from ledger.store import Citation, StoreError

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


@dataclass(frozen=True)
class ObjectRule:
    """Which roles may touch an object, cited or not, and whether sealing applies."""

    cited_roles: tuple[str, ...]
    uncited_roles: tuple[str, ...]
    sealing: bool


#: Downloads and chunk reads: the record readers, for the files their records cite.
READ_OBJECT = ObjectRule(("reviewer", "archivist", "admin"), ("platform", "admin"), sealing=True)
#: Legal holds freeze files without reading them, so sealing does not stand in their way.
HOLD_OBJECT = ObjectRule(("reviewer", "admin"), ("reviewer", "admin"), sealing=False)


def authorize_object(
    lg: Ledger, p: Principal, sha256: str, rule: ObjectRule = READ_OBJECT
) -> Citation | None:
    """The citation whose project authorises ``p`` to touch the object (the first such
    project by name, so a read is always recorded in the same access chain); None for an
    object no record cites that ``p`` may still touch. Raises 404 otherwise."""
    missing = not_found(f"no object with SHA-256 {sha256} is stored")
    cites = lg.object_citations(sha256)
    if not cites:
        if p.role in rule.uncited_roles and p.scope.unlimited:
            return None
        raise missing
    if p.role not in rule.cited_roles:
        raise missing
    by_project: dict[str, list[Citation]] = {}
    for c in cites:
        by_project.setdefault(c.project, []).append(c)
    for project in sorted(by_project):
        found = by_project[project]
        if not p.scope.allows(project, found[0].trade_type):
            continue
        # A file a project cites as a sealed bid stays sealed in that project, even if the
        # project cites it elsewhere too.
        sealed = rule.sealing and any(seals_attachments(lg.catalogue, c.event_type) for c in found)
        if sealed and not may_read_sealed(lg.catalogue, opened=lg.unsealed(project), role=p.role):
            continue
        return found[0]
    raise missing
