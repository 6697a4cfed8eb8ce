r"""Who may touch a project's evidence, and the record of every read (查询调阅 must be traceable).

One function decides whether a token's scope covers a project, :func:`authorize`, and
every path calls it: records by index, project listings, access logs, bundles, objects
(download, range, chunk), legal holds and posting. It judges by the project's *stored*
trade type, which the project's first record fixed (issue 10 §1), never by a trade type a
request declares or a page of records happens to start with.

Reads of records, object downloads and bundle exports append an ``evidence_accessed``
event naming the token, its role, and what was read, to the project's access chain
``<project>~access`` (kept apart so reading never lengthens the process chain being
read). The read is served only once that event is durable: if the access cannot be
recorded, the evidence is not handed out (fail closed).

Evidence objects belong to the projects whose records cite them (``object_citations``,
written with the records). A token may touch an object through a citing project in its
scope, and, for the files of sealed events (bids) and the confidential files of open ones
(a complaint's letter), only as the sealing rules allow. An
object no record cites is not evidence yet: only an unlimited platform token (which checks
its own upload) or admin reads it, and that read belongs to no project's access chain.
Everything else answers 404, exactly as for an object that is not stored (OWASP API1).

Refusals are :class:`AccessError`\ s; ``api/errors.py`` answers each with its HTTP status
and code. The caller (:class:`Principal`) and its :class:`Scope` are defined here too:
the API resolves a bearer token to one (``api.auth``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger.clock import rfc3339
from ledger.errors import LedgerError
from ledger.records import ACCESS_EVENT, ACCESS_SUFFIX, validate_event
from ledger.sealing import (
    attachments_confidential,
    may_open,
    may_read_sealed,
    seals_attachments,
)
from ledger.sequencer import SequencerBusy, TradeTypeMismatch
from ledger.service import Ledger
from ledger.store import Citation, StoreError

#: The poster identities under which the ledger records reads and legal holds.
ACCESS_POSTER = "jianzheng:access"
HOLD_POSTER = "jianzheng:legal-hold"


class AccessError(LedgerError):
    """A request refused by the authorization of this module."""


class NotVisible(AccessError, LookupError):
    """Outside the token's scope, or absent: the two are answered alike (``what`` says
    what was not found)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class StillSealed(AccessError):
    """A read that draws on a project's sealed bids, before the opening or by a role that is
    not a sealed reader. Its message names the project only: it says nothing of whether the
    project has bids, so the refusal counts nothing."""

    def __init__(self, project: str, readers: tuple[str, ...], until: str) -> None:
        super().__init__(
            f"project {project}'s collusion indicators draw on its sealed bids, which only "
            f"{' and '.join(readers)} may read, and only after {until}"
        )
        self.project = project


class PostOutsideScope(AccessError):
    """The token may not post for the project (its scope does not cover it)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class PostTradeTypeMismatch(AccessError):
    """An event of another trade type than the project's stored one (issue 10 §1)."""

    def __init__(self, field: str, reason: str, reason_zh: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.reason_zh = reason_zh


class NotRecorded(AccessError):
    """An event only the ledger records (a legal hold) could not be committed, so what it
    records is not done."""


class AccessNotRecorded(NotRecorded):
    """The ``evidence_accessed`` event of a read could not be committed: no read."""


@dataclass(frozen=True)
class Scope:
    """Projects a token may touch; ``None`` in a field means no limit on it."""

    projects: frozenset[str] | None = None
    trade_types: frozenset[str] | None = None

    def allows(self, project: str, trade_type: str) -> bool:
        """Both limits apply. ``trade_type`` is the project's stored one: call this only
        through :func:`authorize`, the one authorization of every path."""
        if self.projects is not None and project not in self.projects:
            return False
        return self.trade_types is None or trade_type in self.trade_types

    @property
    def unlimited(self) -> bool:
        return self.projects is None and self.trade_types is None

    def to_json(self) -> dict[str, list[str] | None]:
        return {
            "projects": sorted(self.projects) if self.projects is not None else None,
            "trade_types": sorted(self.trade_types) if self.trade_types is not None else None,
        }


ALL = Scope()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's id (the poster identity), role and scope."""

    token_id: str
    role: str
    scope: Scope = ALL


def access_chain(project: str) -> str:
    return project + ACCESS_SUFFIX


def authorize(
    p: Principal, project: str, stored: str | None, *, creating: str | None = None
) -> str | None:
    """The object-level authorization of every path (OWASP API1): the trade type by which
    ``p``'s scope covers ``project``, or None when it does not (or the project has none).

    ``stored`` is the project's stored trade type (:meth:`Ledger.project_trade_type`).
    ``creating`` is only for posting: the trade type a new project's first event declares,
    which that event fixes as the stored one; for an existing project it is ignored.
    """
    trade_type = stored if stored is not None else creating
    if trade_type is None or not p.scope.allows(project, trade_type):
        return None
    return trade_type


def authorize_project(lg: Ledger, p: Principal, project: str, what: str) -> str:
    """The project's stored trade type if ``p`` may read it; :class:`NotVisible` otherwise,
    exactly as for a project with no records, so a scoped token cannot learn which others
    exist."""
    trade_type = authorize(p, project, lg.project_trade_type(project))
    if trade_type is None:
        raise NotVisible(what)
    return trade_type


def authorize_sealed(lg: Ledger, p: Principal, project: str, what: str) -> str:
    """:func:`authorize_project`, then the sealing rule: a read of what the project's sealed
    bids hold (the collusion indicators) only after the opening and only by a sealed reader;
    :class:`StillSealed` otherwise, the same whether or not the project has bids."""
    trade_type = authorize_project(lg, p, project, what)
    if not may_read_sealed(lg.catalogue, opened=lg.unsealed(project), role=p.role):
        raise StillSealed(project, lg.catalogue.sealed_readers, lg.catalogue.sealed_until)
    return trade_type


def authorize_post(
    p: Principal, project: str, declared: str, stored: str | None, field: str
) -> None:
    """May ``p`` post an event of trade type ``declared`` to ``project`` (whose stored trade
    type is ``stored``)? :class:`PostOutsideScope` when its scope does not cover the
    project; :class:`PostTradeTypeMismatch` naming ``field`` when the project is of another
    trade type.

    The sequencer checks the trade type again under the writer lock (two first events of
    one project racing); this answers early, before the event is queued.
    """
    matches = stored is None or stored == declared
    if matches and authorize(p, project, stored, creating=declared) is not None:
        return
    # Refused either way. Only a poster whose scope covers what the event claims learns
    # why: the cross-sector post of issue 10 §1 gets a 422 naming the project's trade type.
    if not matches and authorize(p, project, None, creating=declared) is not None:
        e = TradeTypeMismatch(0, project, str(stored), declared)
        raise PostTradeTypeMismatch(field, e.reason, e.reason_zh)
    msg = f"this token may not post for project {project} ({declared})"
    raise PostOutsideScope(msg, field.removesuffix("trade_type") + "project")


async def record_access(
    lg: Ledger, p: Principal, project: str, trade_type: str, what: dict[str, Any]
) -> None:
    """Append the access event and wait (bounded) until it is committed."""
    await record_event(lg, p, access_chain(project), trade_type, ACCESS_EVENT, what, ACCESS_POSTER)


async def record_event(
    lg: Ledger,
    p: Principal,
    chain: str,
    trade_type: str,
    event_type: str,
    payload: dict[str, Any],
    poster: str,
    refusal: str = "the read could not be recorded, so it is refused",
) -> None:
    """Append an event only the ledger records (``p`` as its actor) to ``chain`` and wait
    (bounded) until it is committed; :class:`NotRecorded` when it cannot be, and the
    caller does nothing."""
    ev = validate_event(
        {
            "project": chain,
            "trade_type": trade_type,
            "type": event_type,
            "actor": {"id": p.token_id, "role": p.role},
            "occurred_at": rfc3339(lg.clock.now()),
            "payload": payload,
        },
        lg.catalogue,
        internal=True,
    )
    try:
        await lg.commit([ev], poster)
    except (SequencerBusy, StoreError, TimeoutError, TradeTypeMismatch) as e:
        refused = AccessNotRecorded if event_type == ACCESS_EVENT else NotRecorded
        raise refused(f"{refusal}: {e}") from None


@dataclass(frozen=True)
class ObjectRule:
    """Which roles may touch an object, cited or not, and whether sealing applies."""

    cited_roles: tuple[str, ...]
    uncited_roles: tuple[str, ...]
    sealing: bool


#: Downloads and chunk reads: the record readers, for the files their records cite.
READ_OBJECT = ObjectRule(("reviewer", "archivist", "admin"), ("platform", "admin"), sealing=True)
#: Legal holds follow the read rules: a hold's reply describes the file (size, media type,
#: chunk root), so a sealed bid file is as absent to a hold as to a read before the opening
#: (issue 10 §2). A file no record cites belongs to no project whose chain could record the
#: hold, so it cannot be held yet.
HOLD_OBJECT = ObjectRule(("reviewer", "admin"), (), sealing=True)


def authorize_object(
    lg: Ledger, p: Principal, sha256: str, rule: ObjectRule = READ_OBJECT
) -> Citation | None:
    """The citation whose project authorises ``p`` to touch the object (the first such
    project by name, so a read is always recorded in the same access chain); None for an
    object no record cites that ``p`` may still touch. Raises :class:`NotVisible`
    otherwise."""
    missing = NotVisible(f"no object with SHA-256 {sha256} is stored")
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
    stored = lg.project_trade_types(sorted(by_project))
    for project in sorted(by_project):
        found = by_project[project]
        trade_type = object_allowed_in(lg, p, project, stored.get(project), found, rule)
        if trade_type is not None:
            # The citation's own trade type is the event's; the project's stored one counts.
            return dataclasses.replace(found[0], trade_type=trade_type)
    raise missing


def object_allowed_in(
    lg: Ledger,
    p: Principal,
    project: str,
    stored: str | None,
    found: list[Citation],
    rule: ObjectRule = READ_OBJECT,
) -> str | None:
    """The trade type by which ``p`` may touch a cited object through ``project`` (whose
    stored trade type is ``stored`` and whose citations of the object are ``found``), or
    None: the scope, then the sealing and confidentiality of the citing events. The one
    per-project rule of :func:`authorize_object` and of the console's archive listing."""
    if p.role not in rule.cited_roles:
        return None
    trade_type = authorize(p, project, stored)
    if trade_type is None:
        return None
    hides = _hiding_rule(lg, p, project, rule)
    if any(hides(t) for t in sorted({c.event_type for c in found})):
        return None
    return trade_type


def _hiding_rule(lg: Ledger, p: Principal, project: str, rule: ObjectRule) -> Callable[[str], bool]:
    """Whether a citation of this event type in ``project`` hides the cited file from
    ``p`` there: the one sealing and confidentiality rule of :func:`object_allowed_in` and
    :func:`project_objects_visible`. Asks the database (whether the project was opened,
    which events it reached) only when a type's answer depends on it."""
    if not rule.sealing:
        return lambda event_type: False
    opened = functools.cache(lambda: lg.unsealed(project))
    reached = functools.partial(lg.reached, project)

    def hides(event_type: str) -> bool:
        # A file a project cites as a sealed bid stays sealed in that project, even if
        # the project cites it elsewhere too.
        if seals_attachments(lg.catalogue, event_type) and not may_read_sealed(
            lg.catalogue, opened=opened(), role=p.role
        ):
            return True
        # So does a confidential file (a complaint's letter names the complainant): only
        # the readers of its class touch it through this project.
        return attachments_confidential(lg.catalogue, event_type) and not may_open(
            lg.catalogue, event_type, sealed_chain=False, role=p.role, reached=reached
        )

    return hides


def project_objects_visible(
    lg: Ledger, p: Principal, project: str, stored: str | None, after: str, limit: int
) -> tuple[dict[str, Citation], str | None]:
    """Up to ``limit`` of the objects ``project`` cites that ``p`` may read through it
    (:func:`object_allowed_in`: a sealed bid file before the opening, a confidential file to
    others than its readers, are left out, as if not cited), above SHA-256 ``after`` in
    order, each with the project's first citation of it; and the cursor of the next page,
    or None when there is none.

    The hidden files are left out by the query itself (no citation of a hiding event type,
    :func:`_hiding_rule`), so the page is filled from the visible objects only and its
    cursor is always a visible file's hash: neither the page's length, nor the presence of
    a next page, nor the cursor tells anything of the files left out (how many bids were
    filed, a sealed bid file's hash)."""
    if p.role not in READ_OBJECT.cited_roles or authorize(p, project, stored) is None:
        return {}, None
    hides = _hiding_rule(lg, p, project, READ_OBJECT)
    hidden = sorted(t for t in lg.catalogue.events if hides(t))
    page = lg.project_object_citations(project, after, limit, hidden)
    shown = {
        sha: found[0]
        for sha, found in page.items()
        # The per-object rule again: the query's filter is not the only guard.
        if found and object_allowed_in(lg, p, project, stored, found) is not None
    }
    return shown, (max(page) if len(page) == limit else None)


def access_what(lg: Ledger, cite: Citation, what: dict[str, Any]) -> dict[str, Any]:
    """How an event about a file (its read, a legal hold on it) names the file: by its
    hash, or, for a confidential file (a complaint's letter), by the log index of the record
    citing it. Every reader of the project sees those events; the hash would identify the
    file."""
    if not attachments_confidential(lg.catalogue, cite.event_type):
        return what
    out = {k: v for k, v in what.items() if k != "sha256"}
    out["index"] = cite.index
    return out
