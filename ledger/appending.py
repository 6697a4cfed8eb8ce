"""Appending events: the one use case behind ``POST /v1/events``, ``/v1/events:batch`` and
the dry run ``/v1/events:validate``, and under the events the ledger records itself
(reads and legal holds, :mod:`ledger.access`).

:func:`append_events` checks posted events in the order the API always has (every event
against the record format and the catalogue; then the poster's scope by each project's
stored trade type and its signature; then the attachments), queues them with the
sequencer as one unit, and waits, bounded, until the unit is durable (or, ``dry``, until
the sequencer has checked it as it would an append). Its last step,
:meth:`~ledger.service.Ledger.commit`, also commits the events the ledger writes itself.

Refusals are :class:`AppendError`\\ s naming the field of the event at fault (with its
position, ``events[3].``, in a batch); ``api/errors.py`` answers each with its HTTP
status and code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ledger.access import Principal, authorize_post
from ledger.errors import LedgerError
from ledger.records import EventSubmission, InvalidEvent, validate_event
from ledger.sequencer import (
    Appended,
    IdempotencyConflict,
    LogBehind,
    OutOfOrder,
    PosterKeyChanged,
    SequencerBusy,
    TradeTypeMismatch,
    UnresolvedReference,
)

if TYPE_CHECKING:
    from ledger.posters import PosterKeys
    from ledger.service import Ledger

#: Checks the events' attachments against the evidence store and adds their chunk roots
#: (``storage.service.resolve_attachments``, run off the event loop); the second argument
#: is each event's field prefix.
AttachmentResolver = Callable[[list[EventSubmission], list[str]], Awaitable[list[EventSubmission]]]


class AppendError(LedgerError):
    """A posted event or unit refused; nothing of the unit was committed."""


class EventRejected(AppendError):
    """A posted event fails the record format or the catalogue (``error``); ``prefix``
    places it in a batch."""

    def __init__(self, error: InvalidEvent, prefix: str, catalogue_version: int) -> None:
        super().__init__(f"{prefix}{error.field}: {error.message}")
        self.error = error
        self.prefix = prefix
        self.catalogue_version = catalogue_version


class UnitRefused(AppendError):
    """The sequencer refused the unit (``cause``: busy, idempotency key reused, poster key
    changed, trade type, process order, unresolved reference) or did not confirm it in
    time (``cause`` a :class:`TimeoutError`); ``field`` names the event's field at fault."""

    def __init__(self, cause: Exception, field: str | None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.field = field


def prefixes(n: int, *, batch: bool) -> list[str]:
    """How the fields of ``n`` posted events are named: ``events[i].`` in a batch."""
    return [f"events[{i}]." for i in range(n)] if batch else [""] * n


def check_events(
    lg: Ledger, keys: PosterKeys, p: Principal, posted: list[object], *, batch: bool
) -> list[EventSubmission]:
    """Every posted event checked against the record format and the catalogue, then the
    poster's scope over its project (by the project's stored trade type) and its signature
    (committed in the record)."""
    at = prefixes(len(posted), batch=batch)
    parsed = []
    for obj, prefix in zip(posted, at, strict=True):
        try:
            parsed.append(validate_event(obj, lg.catalogue))
        except InvalidEvent as e:
            raise EventRejected(e, prefix, lg.catalogue.version) from None
    # One lookup of the projects' stored trade types for the whole unit.
    stored = lg.project_trade_types(sorted({ev.project for ev in parsed}))
    out = []
    for ev, obj, prefix in zip(parsed, posted, at, strict=True):
        authorize_post(p, ev.project, ev.trade_type, stored.get(ev.project), prefix + "trade_type")
        assert isinstance(obj, dict)  # validate_event accepts objects only
        out.append(keys.check(p.token_id, ev, obj, prefix))
    return out


async def append_events(
    lg: Ledger,
    keys: PosterKeys,
    p: Principal,
    posted: list[object],
    *,
    resolve_attachments: AttachmentResolver,
    batch: bool,
    dry: bool = False,
) -> list[Appended]:
    """Check the posted events (:func:`check_events`, then their attachments) and append
    them as one unit, all or nothing, as poster ``p``; their receipts' data in order."""
    events = check_events(lg, keys, p, posted, batch=batch)
    if any(ev.attachments for ev in events):
        events = await resolve_attachments(events, prefixes(len(events), batch=batch))
    try:
        return await lg.commit(events, p.token_id, dry=dry)
    except (SequencerBusy, LogBehind) as e:
        raise UnitRefused(e, None) from None
    except (IdempotencyConflict, PosterKeyChanged) as e:
        # Named by position even for a single event, as the API always has.
        name = "idempotency_key" if isinstance(e, IdempotencyConflict) else "signature"
        raise UnitRefused(e, f"events[{e.position}].{name}") from None
    except TradeTypeMismatch as e:
        # Another event fixed the project's trade type first (issue 10 §1).
        raise UnitRefused(e, prefixes(e.position + 1, batch=batch)[-1] + "trade_type") from None
    except OutOfOrder as e:
        raise UnitRefused(e, prefixes(e.position + 1, batch=batch)[-1] + "type") from None
    except UnresolvedReference as e:
        field = prefixes(e.position + 1, batch=batch)[-1] + e.problem.field
        raise UnitRefused(e, field) from None
    except TimeoutError as e:
        raise UnitRefused(e, None) from None
