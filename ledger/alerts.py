r"""Live alerts for supervisors (issue 17; 阿拉善 实施办法 第四十五条, 伊犁州 办法 第二十条).

An alert is first a record: the ledger appends an ``alert_raised`` event to its one
supervision chain (:data:`~ledger.records.SUPERVISION_CHAIN`) and only then is the alert
shown to anyone. So "the supervisor was told at T" is provable: the alert carries its log
index and a receipt (an inclusion proof against a signed checkpoint), and the chain's
``seq`` numbers are the alerts' ids, gapless and in order, which is what makes a stream
resumable (``Last-Event-ID``) and a webhook queue persistent (a cursor per subscription).

Who sees an alert is decided by :func:`ledger.access.authorize`, the one authorization of
every path, on the project the alert is about (its ``subject``) and that project's stored
trade type; a log-wide alert (witnessing, a monitor's alarm, one token's reads across
projects) has no subject and reaches only tokens whose scope is unlimited.

An alert never carries sealed data: one about a read of sealed data names who tried and
the project, not what is sealed; indicator alerts are raised only after the opening and
carry ids, articles, strengths and event seqs, never the values (the sealed readers read
those through ``GET /v1/projects/{p}/indicators``).

Webhook bodies are signed with HMAC-SHA256 (RFC 2104) over the exact bytes sent, with the
subscription's secret: header :data:`SIGNATURE_HEADER` = ``hmac-sha256=<hex>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, insert, select

from ledger.access import Principal, authorize
from ledger.alert_targets import IPNetwork, Resolver, TargetRefused, checked_address, resolve
from ledger.clock import Clock, SystemClock, rfc3339
from ledger.errors import LedgerError
from ledger.models import AlertSubscriptionRow
from ledger.records import (
    ALERT_EVENT,
    LOG_WIDE,
    SUPERVISION_CHAIN,
    EventSubmission,
    validate_event,
)
from ledger.service import Ledger
from ledger.store import Store

#: The poster identity and actor of every alert record: the ledger itself.
ALERT_POSTER = "jianzheng:supervision"
ALERT_ACTOR = {"id": "jianzheng:supervision", "role": "ledger"}
KINDS = (
    "rule_violation",
    "late_entry",
    "collusion_indicator",
    "witness_lag",
    "quorum_lost",
    "witness_recovered",
    "monitor_alarm",
    "sealed_read_attempt",
    "unusual_access",
)
#: Headers of a webhook delivery: the signature (algorithm named in the value), the
#: alert's id (receivers dedupe on it: delivery is at least once) and the event name.
SIGNATURE_HEADER = "X-Jianzheng-Signature"
SIGNATURE_ALGORITHM = "hmac-sha256"
ALERT_ID_HEADER = "X-Jianzheng-Alert-Id"
#: Alerts read from the chain at once, at most (a page of a stream or a delivery).
MAX_PAGE = 100
#: Webhooks one token may hold, and all tokens together.
MAX_SUBSCRIPTIONS_PER_TOKEN = 10
MAX_SUBSCRIPTIONS = 1000
MAX_URL = 2048


class AlertError(LedgerError):
    """A subscription request refused (names the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class TooManySubscriptions(AlertError):
    """Past :data:`MAX_SUBSCRIPTIONS_PER_TOKEN` or :data:`MAX_SUBSCRIPTIONS`."""


@dataclass(frozen=True)
class Alert:
    """An alert to raise: its kind, a key naming the matter (one alert per matter), the
    message in both languages, the project it is about (None: log-wide) with that
    project's stored trade type, and details (catalogue fields of ``alert_raised``)."""

    kind: str
    key: str
    message: str
    message_zh: str
    subject: str | None = None
    trade_type: str = LOG_WIDE
    details: Mapping[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "key": self.key[:300],
            "message": self.message[:2000],
            "message_zh": self.message_zh[:2000],
            **self.details,
        }
        if self.subject is not None:
            out["subject"] = self.subject
        return out


def alert_event(lg: Ledger, alert: Alert) -> EventSubmission:
    """The ``alert_raised`` event recording ``alert`` in the supervision chain."""
    return validate_event(
        {
            "project": SUPERVISION_CHAIN,
            "trade_type": alert.trade_type if alert.subject is not None else LOG_WIDE,
            "type": ALERT_EVENT,
            "actor": ALERT_ACTOR,
            "occurred_at": rfc3339(lg.clock.now()),
            "payload": alert.payload(),
        },
        lg.catalogue,
        internal=True,
    )


def record_alerts(lg: Ledger, alerts: Sequence[Alert], timeout: float = 30.0) -> list[int]:
    """Append the alerts (one unit) and wait, at most ``timeout`` seconds, until they are
    durable; their log indexes. Raises what the sequencer raises, or TimeoutError."""
    if not alerts:
        return []
    fut = lg.append([alert_event(lg, a) for a in alerts], ALERT_POSTER)
    return [a.index for a in fut.result(timeout)]


@dataclass(frozen=True)
class RaisedAlert:
    """An alert as recorded: its id (the supervision chain's ``seq``), log index, record."""

    seq: int
    index: int
    record: dict[str, Any]

    @property
    def payload(self) -> dict[str, Any]:
        p: dict[str, Any] = self.record["payload"]
        return p

    @property
    def subject(self) -> str | None:
        s = self.payload.get("subject")
        return s if isinstance(s, str) else None

    def to_json(self, lg: Ledger) -> dict[str, Any]:
        """What a supervisor gets: the alert, its record and the record's receipt."""
        p = self.payload
        return {
            "id": str(self.seq),
            "kind": p["kind"],
            "subject": self.subject,
            "trade_type": self.record["trade_type"],
            "raised_at": self.record["recorded_at"],
            "message": p["message"],
            "message_zh": p["message_zh"],
            "index": self.index,
            "record": self.record,
            "receipt": lg.receipt(self.index).to_json(),
        }


def alerts_after(lg: Ledger, after: int, limit: int = MAX_PAGE) -> list[RaisedAlert]:
    """The alerts with id above ``after``, in order, at most ``limit``."""
    rows = lg.project_records(SUPERVISION_CHAIN, after, min(limit, MAX_PAGE))
    return [RaisedAlert(seq, idx, json.loads(raw)) for idx, seq, raw in rows]


def last_alert_id(lg: Ledger) -> int:
    """The newest alert's id (-1: none yet)."""
    with lg.store.reader() as conn:
        tail = lg.store.project_tail(conn, SUPERVISION_CHAIN)
    return -1 if tail is None else tail[0]


def visible_alerts(
    lg: Ledger, p: Principal, after: int, limit: int = MAX_PAGE
) -> tuple[list[RaisedAlert], int]:
    """The alerts after ``after`` that ``p``'s scope covers (at most ``limit``), and the id
    up to which the chain was read (alerts outside the scope are passed over)."""
    page = alerts_after(lg, after, MAX_PAGE)
    subjects = sorted({a.subject for a in page if a.subject is not None})
    stored = lg.project_trade_types(subjects) if subjects else {}
    out: list[RaisedAlert] = []
    upto = after
    for a in page:
        if len(out) >= limit:
            break
        upto = a.seq
        if _visible(p, a, stored):
            out.append(a)
    return out, upto


def _visible(p: Principal, a: RaisedAlert, stored: Mapping[str, str]) -> bool:
    if a.subject is None:
        return p.scope.unlimited
    return authorize(p, a.subject, stored.get(a.subject)) is not None


# --- webhooks ----------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The signature header's value over the exact body (HMAC-SHA256, RFC 2104)."""
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_ALGORITHM}={mac}"


def signature_valid(secret: str, body: bytes, header: str) -> bool:
    """What a receiver checks (in constant time)."""
    return hmac.compare_digest(sign(secret, body), header)


def backoff(attempts: int, base: float, cap: float) -> float:
    """Seconds before retry number ``attempts`` (1, 2, ...): doubling from ``base``, at
    most ``cap``."""
    return float(min(cap, base * 2 ** min(max(attempts - 1, 0), 40)))


def check_url(url: object) -> str:
    """A webhook URL: http or https with a host, at most :data:`MAX_URL` characters."""
    if not isinstance(url, str) or not url:
        raise AlertError("url", "url must be a non-empty string")
    if len(url) > MAX_URL:
        raise AlertError("url", f"url is longer than {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        scheme = f"scheme {parts.scheme[:20]!r}" if parts.scheme else "no scheme"
        raise AlertError(
            "url", f"url has {scheme}: webhooks are http:// or https:// URLs, nothing else"
        )
    if not parts.hostname:
        raise AlertError("url", "url must be an http:// or https:// URL with a host")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise AlertError("url", "url must not contain spaces or control characters")
    return url


def _subscription_json(r: Any, *, secret: bool = False) -> dict[str, Any]:
    out = {
        "id": r.id,
        "token_id": r.token_id,
        "url": r.url,
        "created_at": r.created_at,
        "delivered_through": r.delivered_seq,
        "failed_attempts": r.attempts,
        "last_error": r.last_error,
    }
    if secret:
        out["secret"] = r.secret
    return out


def create_subscription(
    lg: Ledger,
    token_id: str,
    url: str,
    clock: Clock | None = None,
    *,
    allow: Sequence[IPNetwork] = (),
    resolver: Resolver = resolve,
) -> dict[str, Any]:
    """A new webhook for ``token_id``, owed every alert raised from now on; the reply holds
    its secret, which is shown this once. Its host must resolve to public addresses only,
    or to addresses in ``allow`` (:func:`ledger.alert_targets.checked_address`)."""
    url = check_url(url)
    try:
        checked_address(url, allow, resolver)
    except TargetRefused as e:
        raise AlertError("url", f"url refused: {e}") from None
    sub_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    now = rfc3339((clock or SystemClock()).now())
    start = last_alert_id(lg)
    store: Store = lg.store
    with store.writer() as conn:
        mine = conn.execute(
            select(func.count())
            .select_from(AlertSubscriptionRow)
            .where(AlertSubscriptionRow.token_id == token_id)
        ).scalar_one()
        total = conn.execute(select(func.count()).select_from(AlertSubscriptionRow)).scalar_one()
        if mine >= MAX_SUBSCRIPTIONS_PER_TOKEN:
            raise TooManySubscriptions(
                "url", f"a token may hold at most {MAX_SUBSCRIPTIONS_PER_TOKEN} webhooks"
            )
        if total >= MAX_SUBSCRIPTIONS:
            raise TooManySubscriptions(
                "url", f"the ledger holds at most {MAX_SUBSCRIPTIONS} webhooks"
            )
        conn.execute(
            insert(AlertSubscriptionRow).values(
                id=sub_id,
                token_id=token_id,
                url=url,
                secret=secret,
                created_at=now,
                delivered_seq=start,
                attempts=0,
                next_attempt_at=0.0,
                last_error=None,
                lease_owner=None,
                lease_until=0.0,
            )
        )
        row = conn.execute(
            select(AlertSubscriptionRow.__table__).where(AlertSubscriptionRow.id == sub_id)
        ).one()
        return _subscription_json(row, secret=True)


def list_subscriptions(store: Store, token_id: str | None) -> list[dict[str, Any]]:
    """The webhooks of ``token_id`` (None: all), oldest first, bounded."""
    q = select(AlertSubscriptionRow.__table__).order_by(AlertSubscriptionRow.created_at)
    if token_id is not None:
        q = q.where(AlertSubscriptionRow.token_id == token_id)
    with store.reader() as conn:
        rows = conn.execute(q.limit(MAX_SUBSCRIPTIONS)).all()
    return [_subscription_json(r) for r in rows]


def delete_subscription(store: Store, sub_id: str, token_id: str | None) -> bool:
    """Delete a webhook of ``token_id`` (None: any); whether one was deleted."""
    cond = [AlertSubscriptionRow.id == sub_id]
    if token_id is not None:
        cond.append(AlertSubscriptionRow.token_id == token_id)
    with store.writer() as conn:
        return conn.execute(delete(AlertSubscriptionRow).where(*cond)).rowcount > 0
