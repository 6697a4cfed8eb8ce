"""Timeline rows as HTML, built in Python and kept: a 2,000-event page in tens of ms.

The page around them is a Jinja2 template; the rows, thousands of them with a dozen
values each, are joined here from escaped pieces, because Jinja2's per-value machinery
(attribute lookups, macro calls, markup objects) cost ten times as much on such a page
(bench/bench_console.py). Every value goes through ``html.escape`` (quotes too).

A record never changes once committed, so its row is kept (bounded, least recently used
first out) under its log index, the language, and what this reader was given of it: the
record as is, redacted (``"sealed"`` in it), or opened with its openings. A reader is
only ever served the row of the form the API gave *them*, so no sealed value reaches a
reader who was not given it.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape as _html_escape
from typing import Any

from markupsafe import Markup

from api.console.i18n import translator
from api.console.views import (
    CONFIDENTIAL_MARK,
    SEALED_MARK,
    Attachment,
    EventView,
    event_view,
)
from ledger.catalogue import Catalogue

#: Rows kept across requests (about half a KiB each).
MAX_ROWS = 50_000


def escape(v: object) -> str:
    """HTML-escaped text (``&<>"'``), as a plain string: cheaper than a Markup object."""
    return _html_escape(str(v), quote=True)


@dataclass(frozen=True)
class _Labels:
    sealed: str
    confidential: str
    actor: str
    sealed_record: str
    att_head: str
    recorded_before: str
    recorded_after: str


@functools.cache
def _labels(lang: str) -> _Labels:
    t = translator(lang)
    heads = "".join(
        f'<th scope="col">{escape(t("timeline.att." + k))}</th>'
        for k in ("name", "type", "size", "hash")
    )
    before, _, after = t("timeline.recorded", when="\x00").partition("\x00")
    return _Labels(
        sealed=f'<span class="sealed">{escape(t("sealed"))}</span>',
        confidential=f'<span class="sealed">{escape(t("confidential"))}</span>',
        actor=escape(t("timeline.actor")),
        sealed_record=f'<div class="small">{escape(t("timeline.sealed_record"))}</div>',
        att_head=(
            f'<table class="atts"><caption>{escape(t("timeline.attachments"))}</caption>'
            f"<thead><tr>{heads}</tr></thead><tbody>"
        ),
        recorded_before=escape(before),
        recorded_after=escape(after),
    )


def row_html(e: EventView, lang: str) -> str:
    """The ``<tr>`` of one event of the timeline table (see timeline.html)."""
    lb = _labels(lang)
    zh = lang == "zh"
    sealed = lb.sealed

    def value(v: object) -> str:
        if v is SEALED_MARK:
            return sealed
        return lb.confidential if v is CONFIDENTIAL_MARK else escape(v)

    out = [
        f'<tr id="e{e.index}" class="ev{" is-sealed" if e.sealed else ""}" '
        f'data-type="{escape(e.type)}"><td><a href="/events/{e.index}">#{e.index}</a></td>'
        f"<td><time>{escape(e.occurred)}</time>"
        f'<div class="small">{lb.recorded_before}{escape(e.recorded)}{lb.recorded_after}'
        f'</div></td><th scope="row">{escape(e.name_zh if zh else e.name_en)}'
        f'<div class="small code">{escape(e.type)}</div>'
        f"{lb.sealed_record if e.sealed else ''}</th>"
        f'<td><dl class="kv"><dt>{lb.actor}</dt><dd>{value(e.actor)}</dd>'
    ]
    for f in e.facts:
        out.append(f"<dt>{escape(f.label_zh if zh else f.label_en)}</dt><dd>{value(f.value)}</dd>")
    out.append("</dl>")
    if e.attachments:
        out.append(lb.att_head)
        for a in e.attachments:
            if isinstance(a, Attachment):
                out.append(
                    f'<tr><td><a class="att-link" href="/objects/{escape(a.sha256)}">'
                    f"{escape(a.name)}</a></td><td>{escape(a.media_type)}</td>"
                    f'<td>{escape(a.size)}</td><td class="hash">{escape(a.sha256)}</td></tr>'
                )
            else:
                out.append(f'<tr><td colspan="4">{value(a)}</td></tr>')
        out.append("</tbody></table>")
    out.append("</td></tr>\n")
    return "".join(out)


class RowCache:
    """Rows by (log index, language, form given), least recently used out first."""

    def __init__(self, limit: int = MAX_ROWS) -> None:
        self.limit = limit
        self._rows: OrderedDict[tuple[int, str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def rows(
        self,
        records: Iterable[dict[str, Any]],
        openings: dict[int, Any],
        catalogue: Catalogue,
        lang: str,
    ) -> Markup:
        """The rows of ``records`` as the API gave them to this reader."""
        out: list[str] = []
        for rec in records:
            index = rec.get("index")
            opening = openings.get(index) if isinstance(index, int) else None
            form = "opened" if opening is not None else "redacted" if "sealed" in rec else "as-is"
            key = (index if isinstance(index, int) else -1, lang, form)
            with self._lock:
                row = self._rows.get(key)
                if row is not None:
                    self._rows.move_to_end(key)
            if row is None:
                row = row_html(event_view(rec, catalogue, opening), lang)
                if key[0] >= 0:
                    with self._lock:
                        self._rows[key] = row
                        if len(self._rows) > self.limit:
                            self._rows.popitem(last=False)
            out.append(row)
        # Every piece above is escaped or a literal of this module.
        return Markup("".join(out))  # noqa: S704
