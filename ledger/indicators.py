"""A project's collusion indicators from the ledger (issue 17): its records opened, then
:func:`verifier.indicators.compute`, the same code the offline verifier runs on a bundle.

After the opening only. :func:`project_indicators` refuses (:class:`~ledger.access.StillSealed`)
before the project's ``bid_opening_started`` is committed, without reading a record, so
nothing is computed from the bids and nothing is stored at any time: each call computes
from the committed records and returns. Who may ask is the caller's to check, through
:func:`ledger.access.authorize_sealed` (the API) — live alerts after an opening call this
with the ledger alone.
"""

from __future__ import annotations

import json
from typing import Any

from ledger.access import StillSealed
from ledger.errors import LedgerError
from ledger.service import Ledger
from verifier.indicators import Indicators, Thresholds, compute
from verifier.sealed import OpeningError, is_sealed_chain, open_record

#: Records of one project read for its indicators, at most (a bound on one request's work;
#: a tender with 200 bidders has about a thousand). Read a page at a time.
MAX_RECORDS = 100_000
PAGE = 1000


class TooManyRecords(LedgerError):
    """The project has more records than :data:`MAX_RECORDS`."""


class IndicatorsUnavailable(LedgerError):
    """The store's openings are missing or do not match their commitments."""


def opened_records(lg: Ledger, project: str, limit: int = MAX_RECORDS) -> list[dict[str, Any]]:
    """The project's process and sealed chains in log order, sealed records as posted
    (each opening checked against its commitment)."""
    out: list[dict[str, Any]] = []
    after = -1
    while True:
        rows = lg.merged_records(project, after, PAGE)
        if len(out) + len(rows) > limit:
            raise TooManyRecords(f"project {project} has more than {limit} records")
        records = [json.loads(raw) for _, _, raw in rows]
        sealed = [r["index"] for r in records if is_sealed_chain(r["project"])]
        openings = lg.openings(sealed) if sealed else {}
        for r in records:
            if is_sealed_chain(r["project"]):
                raw = openings.get(r["index"])
                if raw is None:
                    raise IndicatorsUnavailable(
                        f"the openings of the sealed record at index {r['index']} are "
                        "missing; run jianzheng audit"
                    )
                try:
                    r = open_record(r, json.loads(raw))
                except OpeningError as e:
                    raise IndicatorsUnavailable(
                        f"the stored openings of the record at index {r['index']} do not "
                        f"match its commitments ({e}); run jianzheng audit"
                    ) from None
            out.append(r)
        if len(rows) < PAGE:
            return out
        after = rows[-1][0]


def project_indicators(
    lg: Ledger, project: str, thresholds: Thresholds | None = None
) -> Indicators:
    """The project's collusion indicators; :class:`StillSealed` before its opening."""
    cat = lg.catalogue
    if not lg.unsealed(project):
        raise StillSealed(project, cat.sealed_readers, cat.sealed_until)
    return compute(opened_records(lg, project), thresholds, opening=cat.sealed_until)
