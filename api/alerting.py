"""The alert workers of a serving process (issue 17): webhook delivery and detection.

Two daemon threads per process, started and stopped by the app's lifespan:

* **Delivery.** Every webhook has a cursor (``delivered_seq``) in the database; the alerts
  after it that the owner token's scope covers are owed. A worker leases a due
  subscription (one process at a time delivers it, across ``serve --workers``), posts the
  next owed alert signed with HMAC-SHA256, and moves the cursor only on a 2xx answer. A
  failure (refused, timed out, not 2xx) waits ``retry_base * 2**(n-1)`` seconds, at most
  ``retry_cap``, and tries the same alert again: in order, at least once, nothing skipped
  however long the receiver is down, and a restart resumes at the cursor. Receivers
  dedupe on the alert id (``X-Jianzheng-Alert-Id``, also ``id`` in the body). A revoked or
  expired owner gets nothing; its webhooks wait.
* **Detection.** One process at a time (a lease in ``alert_state``) reads the log after its
  cursor, by log index, and raises alerts for what it finds (:mod:`api.alert_rules`),
  so posting never waits for it. Requests hand it alerts too (a sealed read refused),
  through a bounded queue, and never wait.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import insert, or_, select, update

from api.alert_rules import Detector
from api.auth import scope_of
from ledger.access import Principal
from ledger.alert_targets import IPNetwork, TargetRefused, checked_address, parse_allow
from ledger.alerts import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    Alert,
    backoff,
    record_alerts,
    sign,
    visible_alerts,
)
from ledger.models import AlertStateRow, AlertSubscriptionRow, TokenRow
from ledger.service import Ledger
from ledger.witnessing.view import WitnessingView

log = logging.getLogger("jianzheng.alerts")

#: Subscriptions looked at per delivery round, and alerts posted per subscription.
DUE_PER_ROUND = 50
POSTS_PER_ROUND = 20
#: Records the detection worker reads per round. Rules run once per touched project per
#: round, on its whole timeline, so a larger page costs less per record when the worker is
#: behind (bench/bench_detector.py: 500 → 2000 cut its CPU per record by more than half).
TAIL_PAGE = 2000
#: Alerts handed over by requests and not yet recorded, at most (more are dropped and
#: counted: a flood of refusals must not grow memory; the first of each matter is kept).
PENDING_MAX = 1000
#: Matters remembered to raise each only once per window (bounded).
RECENT_MAX = 10_000
LEASE_SECONDS = 30.0
TAIL = "tail"


@dataclass(frozen=True)
class AlertSettings:
    """How alerts are detected and delivered (``jianzheng serve --alert-*``)."""

    #: Seconds between two rounds of each worker (and of an SSE stream's reads).
    poll: float = 0.5
    retry_base: float = 2.0
    retry_cap: float = 600.0
    webhook_timeout: float = 10.0
    #: Unusual access: one token reading more than ``access_threshold`` projects within
    #: ``access_window`` seconds.
    access_threshold: int = 20
    access_window: float = 300.0
    #: The same matter (a token trying one project's sealed data) alerts once per window.
    repeat_window: float = 600.0
    #: Witness lag: the newest checkpoint without its quorum of cosignatures this long.
    witness_lag: float = 300.0
    #: Networks webhooks may reach although they are not public (loopback, private,
    #: link-local): ``--alert-webhook-allow`` (docs/alerts.md).
    webhook_allow: tuple[IPNetwork, ...] = ()


class AlertService:
    """The alert workers of one process, over its ledger."""

    def __init__(
        self,
        lg: Ledger,
        settings: AlertSettings | None = None,
        *,
        witnessing: WitnessingView | None = None,
        monitor_state: Path | None = None,
    ) -> None:
        self.lg = lg
        self.settings = settings or AlertSettings()
        self.witnessing = witnessing
        self.monitor_state = monitor_state
        self.owner = f"{os.getpid()}-{id(self):x}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pending: queue.Queue[Alert] = queue.Queue(PENDING_MAX)
        self._recent: OrderedDict[str, float] = OrderedDict()
        self._recent_lock = threading.Lock()
        self.dropped = 0
        self.detector = Detector(
            lg, self.settings, self.record, witnessing=witnessing, monitor_state=monitor_state
        )

    # --- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        for name, fn in (("alert-delivery", self._deliver_loop), ("alert-tail", self._tail_loop)):
            t = threading.Thread(target=self._run, args=(fn,), name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        self._threads.clear()
        # Give the leases back, so that the next process (a restart) takes over at once
        # rather than when they run out.
        try:
            with self.lg.store.writer() as conn:
                conn.execute(
                    update(AlertStateRow)
                    .where(AlertStateRow.owner == self.owner)
                    .values(lease_until=0.0)
                )
                conn.execute(
                    update(AlertSubscriptionRow)
                    .where(AlertSubscriptionRow.lease_owner == self.owner)
                    .values(lease_until=0.0)
                )
        except Exception:  # closing must not fail: the leases run out by themselves
            log.exception("alert leases not given back")

    def _run(self, fn: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                fn()
            except Exception:  # a worker must outlive one bad round; the next retries
                log.exception("alert worker round failed")
            self._stop.wait(self.settings.poll)

    # --- raising -------------------------------------------------------------------------
    def first_time(self, key: str) -> bool:
        """Whether the matter ``key`` was not alerted within the repeat window (and note
        it now)."""
        now = time.monotonic()
        with self._recent_lock:
            seen = self._recent.get(key)
            if seen is not None and now - seen < self.settings.repeat_window:
                return False
            self._recent[key] = now
            self._recent.move_to_end(key)
            while len(self._recent) > RECENT_MAX:
                self._recent.popitem(last=False)
            return True

    def raise_soon(self, alert: Alert) -> None:
        """Hand an alert to the detection worker, which records it; never waits."""
        if not self.first_time(alert.key):
            return
        try:
            self._pending.put_nowait(alert)
        except queue.Full:
            self.dropped += 1

    def record(self, alerts: list[Alert]) -> None:
        """Record alerts now (on a worker thread), their matters not seen within the window."""
        fresh = [a for a in alerts if self.first_time(a.key)]
        for i in range(0, len(fresh), 100):
            record_alerts(self.lg, fresh[i : i + 100])

    # --- detection -----------------------------------------------------------------------
    def _lease(self, name: str) -> int | None:
        """Take (or renew) the named lease; the cursor it guards, or None if another
        process holds it."""
        store = self.lg.store
        now = time.time()
        # Read first: renewing is a write, and a write each round would take the writer
        # lock from appends (SQLite) for nothing while the lease has long to run.
        with store.reader() as conn:
            held = conn.execute(
                select(AlertStateRow.value, AlertStateRow.owner, AlertStateRow.lease_until).where(
                    AlertStateRow.name == name
                )
            ).first()
        if held is not None:
            if held.owner != self.owner and held.lease_until > now:
                return None
            if held.owner == self.owner and held.lease_until - now > LEASE_SECONDS / 2:
                return int(held.value)
        with store.writer() as conn:
            row = conn.execute(
                select(AlertStateRow.__table__).where(AlertStateRow.name == name)
            ).first()
            if row is None:
                # A new ledger service starts from the present: the past was not watched.
                start = self.lg.info().size - 1 if name == TAIL else -1
                conn.execute(
                    insert(AlertStateRow).values(
                        name=name, value=start, owner=self.owner, lease_until=now + LEASE_SECONDS
                    )
                )
                return start
            if row.owner != self.owner and row.lease_until > now:
                return None
            conn.execute(
                update(AlertStateRow)
                .where(AlertStateRow.name == name)
                .values(owner=self.owner, lease_until=now + LEASE_SECONDS)
            )
            return int(row.value)

    def _advance(self, name: str, value: int) -> None:
        with self.lg.store.writer() as conn:
            conn.execute(
                update(AlertStateRow)
                .where(AlertStateRow.name == name, AlertStateRow.owner == self.owner)
                .values(value=value)
            )

    def _tail_loop(self) -> None:
        pending: list[Alert] = []
        while len(pending) < PENDING_MAX:
            try:
                pending.append(self._pending.get_nowait())
            except queue.Empty:
                break
        if pending:
            for i in range(0, len(pending), 100):
                record_alerts(self.lg, pending[i : i + 100])
        cursor = self._lease(TAIL)
        if cursor is None:
            return
        self.detector.periodic()
        with self.lg.store.reader() as conn:
            rows = self.lg.store.records_after(conn, cursor, TAIL_PAGE)
        if not rows:
            return
        self.detector.read(rows)
        self._advance(TAIL, rows[-1][0])

    # --- delivery ------------------------------------------------------------------------
    def _deliver_loop(self) -> None:
        now = time.time()
        with self.lg.store.reader() as conn:
            due = (
                conn.execute(
                    select(AlertSubscriptionRow.id)
                    .where(
                        AlertSubscriptionRow.next_attempt_at <= now,
                        or_(
                            AlertSubscriptionRow.lease_until <= now,
                            AlertSubscriptionRow.lease_owner == self.owner,
                        ),
                    )
                    .order_by(AlertSubscriptionRow.next_attempt_at)
                    .limit(DUE_PER_ROUND)
                )
                .scalars()
                .all()
            )
        if not due:
            return
        # No redirects (a 3xx is a failed attempt), and no proxy from the environment: the
        # connection goes to the address just checked, nowhere else.
        with httpx.Client(
            timeout=self.settings.webhook_timeout, follow_redirects=False, trust_env=False
        ) as client:
            for sub_id in due:
                if self._stop.is_set():
                    return
                self._deliver(client, sub_id)

    def _take(self, sub_id: str) -> Any:
        now = time.time()
        with self.lg.store.writer() as conn:
            got = conn.execute(
                update(AlertSubscriptionRow)
                .where(
                    AlertSubscriptionRow.id == sub_id,
                    or_(
                        AlertSubscriptionRow.lease_until <= now,
                        AlertSubscriptionRow.lease_owner == self.owner,
                    ),
                )
                .values(lease_owner=self.owner, lease_until=now + LEASE_SECONDS)
            )
            if got.rowcount == 0:
                return None
            return conn.execute(
                select(AlertSubscriptionRow.__table__).where(AlertSubscriptionRow.id == sub_id)
            ).one()

    def _owner(self, token_id: str) -> Principal | None:
        """The subscription's owner as a principal, or None if revoked or expired."""
        with self.lg.store.reader() as conn:
            t = conn.execute(select(TokenRow.__table__).where(TokenRow.id == token_id)).first()
        if t is None or t.revoked_at is not None:
            return None
        if t.expires_at is not None:
            exp = datetime.fromisoformat(t.expires_at.replace("Z", "+00:00"))
            if exp <= datetime.now(UTC):
                return None
        return Principal(t.id, t.role, scope_of(t.scope_projects, t.scope_trade_types))

    def _set(self, sub_id: str, **values: Any) -> None:
        with self.lg.store.writer() as conn:
            conn.execute(
                update(AlertSubscriptionRow)
                .where(
                    AlertSubscriptionRow.id == sub_id,
                    AlertSubscriptionRow.lease_owner == self.owner,
                )
                .values(**values)
            )

    def _deliver(self, client: httpx.Client, sub_id: str) -> None:
        sub = self._take(sub_id)
        if sub is None:
            return
        p = self._owner(sub.token_id)
        if p is None:
            self._set(sub_id, next_attempt_at=time.time() + self.settings.retry_cap)
            return
        cursor = sub.delivered_seq
        attempts = sub.attempts
        for _ in range(POSTS_PER_ROUND):
            found, upto = visible_alerts(self.lg, p, cursor, 1)
            if not found:
                if upto != cursor:
                    cursor = upto
                    self._set(sub_id, delivered_seq=cursor)
                    continue
                break
            a = found[0]
            body = orjson.dumps(a.to_json(self.lg))
            headers = {
                "content-type": "application/json",
                SIGNATURE_HEADER: sign(sub.secret, body),
                ALERT_ID_HEADER: str(a.seq),
                "X-Jianzheng-Event": "alert",
                "user-agent": "jianzheng-alerts/1",
            }
            error: str | None = None
            try:
                r = post_pinned(client, sub.url, body, headers, self.settings.webhook_allow)
                if not 200 <= r.status_code < 300:
                    error = f"HTTP {r.status_code}"
            except TargetRefused as e:
                error = f"refused: {e}"[:500]
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"[:500]
            if error is not None:
                attempts += 1
                wait = backoff(attempts, self.settings.retry_base, self.settings.retry_cap)
                self._set(
                    sub_id,
                    attempts=attempts,
                    last_error=error,
                    next_attempt_at=time.time() + wait,
                    lease_until=0.0,
                )
                return
            cursor = a.seq
            attempts = 0
            self._set(
                sub_id, delivered_seq=cursor, attempts=0, last_error=None, next_attempt_at=0.0
            )
        self._set(sub_id, lease_until=0.0)


def post_pinned(
    client: httpx.Client,
    url: str,
    body: bytes,
    headers: dict[str, str],
    allow: tuple[IPNetwork, ...],
) -> httpx.Response:
    """POST ``body`` to ``url`` at the address its host resolves to now, checked
    (:func:`ledger.alert_targets.checked_address`; raises TargetRefused): the connection
    goes to that address, with the URL's host in ``Host`` and, for https, in the TLS
    server name, so the certificate is still checked against the name."""
    target, addr = checked_address(url, allow)
    u = httpx.URL(url)
    extensions: dict[str, Any] = {}
    if target.scheme == "https" and target.host != str(addr):
        extensions["sni_hostname"] = u.raw_host.decode("ascii")
    return client.post(
        u.copy_with(host=str(addr)),
        content=body,
        headers={**headers, "Host": u.netloc.decode("ascii")},
        extensions=extensions,
    )


def _network(text: str) -> IPNetwork:
    try:
        return parse_allow([text])[0]
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(p: Any) -> None:
    """The ``serve`` flags of :class:`AlertSettings` (docs/operations.md)."""
    d = AlertSettings()
    g = p.add_argument_group("live alerts (docs/alerts.md)")
    g.add_argument(
        "--alert-access-threshold",
        type=int,
        default=d.access_threshold,
        metavar="N",
        help="unusual access: alert when one token reads more than N projects within "
        f"--alert-access-window (default {d.access_threshold})",
    )
    g.add_argument(
        "--alert-access-window",
        type=float,
        default=d.access_window,
        metavar="S",
        help=f"seconds of the unusual-access window (default {d.access_window:g})",
    )
    g.add_argument(
        "--alert-retry-cap",
        type=float,
        default=d.retry_cap,
        metavar="S",
        help=f"longest wait between two webhook attempts (default {d.retry_cap:g})",
    )
    g.add_argument(
        "--alert-witness-lag",
        type=float,
        default=d.witness_lag,
        metavar="S",
        help="alert when the newest checkpoint lacks its witnesses' quorum this long "
        f"(default {d.witness_lag:g})",
    )
    g.add_argument(
        "--alert-webhook-allow",
        type=_network,
        action="append",
        default=[],
        metavar="CIDR",
        help="let webhooks reach this network although it is not public (loopback, "
        "private, link-local); repeat for more. Default: public addresses only",
    )


def from_args(args: Any) -> AlertSettings:
    d = AlertSettings()
    return AlertSettings(
        access_threshold=getattr(args, "alert_access_threshold", d.access_threshold),
        access_window=getattr(args, "alert_access_window", d.access_window),
        retry_cap=getattr(args, "alert_retry_cap", d.retry_cap),
        witness_lag=getattr(args, "alert_witness_lag", d.witness_lag),
        webhook_allow=tuple(getattr(args, "alert_webhook_allow", None) or ()),
    )


def sealed_read_attempt(
    request: Any, p: Principal, project: str, trade_type: str, what: str
) -> None:
    """Alert that ``p`` tried to read ``project``'s sealed data before its opening (the
    request is refused as before; this never waits). It names who tried and what was
    asked for, never anything sealed; one alert per token and project per repeat window.
    """
    service: AlertService | None = getattr(request.app.state, "alerts", None)
    if service is None or not trade_type:
        return
    service.raise_soon(
        Alert(
            "sealed_read_attempt",
            f"sealed_read_attempt:{project}:{p.token_id}",
            f"token {p.token_id} (role {p.role}) asked for {what} of project {project}, "
            "which draws on sealed bids, before the opening",
            f"令牌 {p.token_id}（角色 {p.role}）在开标前请求读取项目 {project} "
            f"的密封数据（{what}）",
            project,
            trade_type,
            {"token": p.token_id},
        )
    )
