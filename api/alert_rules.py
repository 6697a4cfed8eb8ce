"""What raises an alert (issue 17), read from the log after posting, off the append path.

:class:`Detector` gets the records the detection worker reads by log index
(:mod:`api.alerting`) and raises:

* ``late_entry``: a record posted with ``late_entry`` (事后补录), at once;
* ``rule_violation``: a process rule (``verifier/rules``) that fails on the project's
  timeline because of a new record: the rules run as the dry run runs them, on the process
  chain with the sealed parts hidden, so nothing sealed reaches an alert;
* ``collusion_indicator``: after ``bid_opening_started`` is committed, each indicator of
  :func:`ledger.indicators.project_indicators` (id, article, strength, seqs; never values);
* ``unusual_access``: one token whose ``evidence_accessed`` records name more than
  ``access_threshold`` projects within ``access_window`` seconds (log-wide);

and, every few seconds, ``witness_lag`` / ``quorum_lost`` / ``witness_recovered`` (an
episode of witness lag: one alert when it starts, one when it ends) and ``monitor_alarm``
(each finding of a ``jianzheng monitor`` in ``--monitor-state``, once).
``sealed_read_attempt`` is raised by the request that was refused
(:func:`api.alerting.AlertService.raise_soon`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import insert, select

from api.console.status import read_monitor_state
from api.routes.log import log_info
from ledger.access import StillSealed
from ledger.alerts import Alert
from ledger.indicators import IndicatorsUnavailable, TooManyRecords, project_indicators
from ledger.models import AlertStateRow
from ledger.records import ACCESS_EVENT, ACCESS_SUFFIX
from ledger.sealing import is_sealed_type, redact
from ledger.service import Ledger
from ledger.witnessing.view import WitnessingView
from verifier.indicators import NOTICE_EN, NOTICE_ZH
from verifier.rules.engine import evaluate

log = logging.getLogger("jianzheng.alerts")

#: Records of one project the rules read at most (a bigger project is not evaluated live;
#: the verifier still evaluates its bundle).
RULE_RECORDS = 20_000
#: Tokens whose recent reads are remembered (least recently reading forgotten first).
TOKENS_KEPT = 10_000
#: Seconds between two looks at witnessing and the monitor, at most.
PERIODIC = 5.0
#: Unwitnessed log sizes remembered with the time they were first seen (the lag's clock).
SIZES_KEPT = 1000
#: Parsed process records kept between rounds, in all projects (least recently touched
#: project forgotten first), so that a round parses only what is new. A tender's record
#: takes about 3 KB parsed, so this bounds the detector's memory near 150 MB.
RECORDS_KEPT = 50_000


class Timelines:
    """The process chains of recently touched projects, parsed, kept between rounds.

    Rules are evaluated on a project's whole timeline each time a record lands in it;
    reading and parsing that timeline again every round was most of the detector's work
    (issue 18: 3.5 of 5 ms for a project of 500 records). Records are immutable and a
    chain's ``seq`` is gapless from 0, so a kept timeline is extended by the records the
    tail brings and read from the database only when it is not kept (and the tail does not
    start it), has a gap, or the tail disagrees with it (then it is read again whole, as
    before).
    """

    def __init__(self, lg: Ledger, kept: int = RECORDS_KEPT) -> None:
        self.lg = lg
        self.kept = kept
        self._by: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._count = 0
        #: Database reads made (tests check that a kept timeline is not read again).
        self.reads = 0

    def records(self, project: str, new: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """The project's process records in seq order, ``new`` (records just read from the
        tail, in log order) among them; None when the project has :data:`RULE_RECORDS` or
        more (not evaluated live)."""
        have = self._forget(project)
        if have is None and new and int(new[0]["seq"]) == 0:
            # The tail holds the chain from its first record: a page is a run of log
            # indexes, so every record of the chain up to the page's end is in it.
            have = []
        if have is not None:
            for r in new:
                seq = int(r["seq"])
                if seq < len(have):
                    if have[seq]["index"] != r["index"]:
                        have = None  # not the chain we kept: read it again
                        break
                elif seq == len(have):
                    have.append(r)
                else:
                    have = None  # a gap: records the tail has not brought yet
                    break
        if have is None:
            self.reads += 1
            rows = self.lg.project_records(project, -1, RULE_RECORDS)
            if len(rows) >= RULE_RECORDS:
                return None
            have = [json.loads(raw) for _, _, raw in rows]
        if len(have) >= RULE_RECORDS:
            return None  # grown past the bound from the tail: not evaluated, nor kept
        if len(have) <= self.kept:
            self._by[project] = have
            self._count += len(have)
            while self._count > self.kept:
                _, old = self._by.popitem(last=False)
                self._count -= len(old)
        return have

    def _forget(self, project: str) -> list[dict[str, Any]] | None:
        have = self._by.pop(project, None)
        if have is not None:
            self._count -= len(have)
        return have


class DetectionSettings(Protocol):
    """The settings detection reads (:class:`api.alerting.AlertSettings`)."""

    @property
    def access_threshold(self) -> int: ...
    @property
    def access_window(self) -> float: ...
    @property
    def witness_lag(self) -> float: ...


class Detector:
    """Turns newly committed records into alerts (see the module docstring)."""

    def __init__(
        self,
        lg: Ledger,
        settings: DetectionSettings,
        record: Callable[[list[Alert]], None],
        *,
        witnessing: WitnessingView | None = None,
        monitor_state: Path | None = None,
    ) -> None:
        self.lg = lg
        self.settings = settings
        self.record = record
        self.witnessing = witnessing
        self.monitor_state = monitor_state
        self._cosigned: dict[str, tuple[int, float]] = {}
        #: (size, when first seen) of log sizes not yet witnessed, oldest first.
        self._sizes: deque[tuple[int, float]] = deque()
        #: The lag episode under way: (witnessed size at its start, since when, whether
        #: quorum_lost was raised in it); None when witnessing keeps up.
        self._episode: tuple[int, float, bool] | None = None
        self._reads: OrderedDict[str, deque[tuple[float, str]]] = OrderedDict()
        self._last_periodic = 0.0
        self.timelines = Timelines(lg)

    def read(self, rows: list[tuple[int, str, bytes]]) -> None:
        """Raise the alerts the records at these log positions call for."""
        alerts: list[Alert] = []
        touched: dict[str, list[dict[str, Any]]] = {}
        opened: list[tuple[str, str]] = []
        sealed_until = self.lg.catalogue.sealed_until
        for _, chain, raw in rows:
            if "~" in chain:
                if chain.endswith(ACCESS_SUFFIX):
                    alerts += self._access(chain.removesuffix(ACCESS_SUFFIX), json.loads(raw))
                continue
            r = json.loads(raw)
            touched.setdefault(chain, []).append(r)
            if "late_entry" in r:
                alerts.append(_late(chain, r))
            if r["type"] == sealed_until:
                opened.append((chain, r["trade_type"]))
        for project, new in touched.items():
            alerts += self._rules(project, new)
        for project, trade_type in opened:
            alerts += self._indicators(project, trade_type)
        self.record(alerts)

    # --- late entries and process rules ------------------------------------------------------
    def _rules(self, project: str, fresh: list[dict[str, Any]]) -> list[Alert]:
        kept = self.timelines.records(project, fresh)
        if kept is None:
            return []
        new = {int(r["seq"]) for r in fresh}
        cat = self.lg.catalogue
        records = kept
        opened = any(r["type"] == cat.sealed_until for r in records)
        # As the dry run sees them with a reader that is not a sealed reader: before the
        # opening no bid is counted, and no sealed value is read at any time.
        records = [
            redact(r, cat, opened=opened, role="platform")
            for r in records
            if opened or not is_sealed_type(cat, r["type"])
        ]
        if not records:
            return []
        trade_type = str(records[0]["trade_type"])
        out: list[Alert] = []
        for res in evaluate(records):
            if res.status != "fail":
                continue
            for f in res.findings:
                if f.status != "fail" or not new.intersection(f.events):
                    continue
                seqs = [str(s) for s in f.events][:200]
                rid = res.rule.id
                out.append(
                    Alert(
                        "rule_violation",
                        f"rule_violation:{project}:{rid}:{','.join(seqs)}",
                        f"{project}: {rid} ({res.rule.title_en}): {f.en}",
                        f"{project}：{rid}（{res.rule.title_zh}）：{f.zh}",
                        project,
                        trade_type,
                        {"rule": rid, "seqs": seqs},
                    )
                )
        return out

    # --- collusion indicators ----------------------------------------------------------------
    def _indicators(self, project: str, trade_type: str) -> list[Alert]:
        try:
            found = project_indicators(self.lg, project)
        except (StillSealed, TooManyRecords, IndicatorsUnavailable) as e:
            log.warning("indicators of %s not computed for alerts: %s", project, e)
            return []
        out: list[Alert] = []
        for ind in found.items:
            seqs = sorted({e.seq for e in ind.evidence})
            k = ind.kind
            out.append(
                Alert(
                    "collusion_indicator",
                    f"collusion_indicator:{project}:{k.id}:{','.join(map(str, seqs))}",
                    f"{project}: {k.id} {k.title_en} ({k.article_en}), {ind.strength}. {NOTICE_EN}",
                    f"{project}：{k.id} {k.title_zh}（{k.article_zh}），{ind.strength}。"
                    f"{NOTICE_ZH}",
                    project,
                    trade_type,
                    {"rule": k.id, "strength": str(ind.strength), "seqs": [str(s) for s in seqs]},
                )
            )
        return out

    # --- unusual access ----------------------------------------------------------------------
    def _access(self, project: str, r: dict[str, Any]) -> list[Alert]:
        if r.get("type") != ACCESS_EVENT:
            return []
        token = str(r.get("actor", {}).get("id", ""))
        try:
            at = datetime.fromisoformat(str(r["recorded_at"]).replace("Z", "+00:00")).timestamp()
        except (KeyError, ValueError):
            return []
        s = self.settings
        reads = self._reads.get(token)
        if reads is None:
            reads = self._reads[token] = deque()
        self._reads.move_to_end(token)
        while len(self._reads) > TOKENS_KEPT:
            self._reads.popitem(last=False)
        reads.append((at, project))
        while reads and reads[0][0] < at - s.access_window:
            reads.popleft()
        # Bounded: a token's window holds at most a few reads per project beyond the
        # threshold before it alerts; keep only the newest read of each project.
        projects = {p for _, p in reads}
        if len(reads) > 4 * (s.access_threshold + 1):
            newest: dict[str, float] = {}
            for t, p in reads:
                newest[p] = t
            reads.clear()
            reads.extend(sorted((t, p) for p, t in newest.items()))
        if len(projects) <= s.access_threshold:
            return []
        window = int(s.access_window)
        return [
            Alert(
                "unusual_access",
                f"unusual_access:{token}",
                f"token {token} read {len(projects)} projects within {window} s "
                f"(threshold {s.access_threshold})",
                f"令牌 {token} 在 {window} 秒内读取了 {len(projects)} 个项目（阈值 "
                f"{s.access_threshold}）",
                details={
                    "token": token,
                    "count": len(projects),
                    "threshold": s.access_threshold,
                    "window_seconds": window,
                },
            )
        ]

    # --- witnessing and the monitor ----------------------------------------------------------
    def periodic(self) -> None:
        now = time.monotonic()
        # Often enough to see a lag of the threshold's length in time.
        if now - self._last_periodic < min(PERIODIC, max(0.25, self.settings.witness_lag / 4)):
            return
        self._last_periodic = now
        self.record(self._witnessing() + self._monitor())

    def _witnessing(self) -> list[Alert]:
        """One alert per episode of witness lag, and its end.

        Lag is the age of the oldest entry no quorum has cosigned yet: the time since the
        detector first saw the log at a size above ``witnessed_size`` (sizes are noted as
        seen, :data:`SIZES_KEPT` at most). When it reaches ``witness_lag`` seconds,
        ``witness_lag`` is raised, once; if moreover fewer witnesses than the quorum are
        live (reachable and cosigned something within ``witness_lag``, or caught up),
        ``quorum_lost``, once. Nothing more while it lasts; when the lag is down to half
        the threshold again, ``witness_recovered`` says so (the half keeps a lag hovering
        at the threshold from alerting on every round)."""
        w = self.witnessing
        if w is None:
            return []
        info = log_info(self.lg, w)
        quorum = int(info.get("witness_quorum") or 0)
        size = int(info["size"])
        witnessed = int(info.get("witnessed_size") or 0)
        now = time.monotonic()
        live = 0
        for wi in info.get("witnesses") or []:
            name = str(wi.get("name", ""))[:255]
            got = int(wi.get("cosigned_size") or 0)
            if self._cosigned.get(name, (-1, 0.0))[0] != got:
                self._cosigned[name] = (got, now)
            recent = now - self._cosigned[name][1] < self.settings.witness_lag
            if wi.get("reachable", True) and (recent or got >= size):
                live += 1
        if quorum <= 0:
            return []
        if not self._sizes or self._sizes[-1][0] < size:
            if len(self._sizes) < SIZES_KEPT:
                self._sizes.append((size, now))
        while self._sizes and self._sizes[0][0] <= witnessed:
            self._sizes.popleft()
        lag = now - self._sizes[0][1] if witnessed < size and self._sizes else 0.0
        threshold = self.settings.witness_lag
        out: list[Alert] = []
        if self._episode is None:
            if lag < threshold:
                return []
            self._episode = (witnessed, now - lag, False)
            out.append(
                Alert(
                    "witness_lag",
                    f"witness_lag:{witnessed}:{size}",
                    f"the log is at size {size} but its witnesses' quorum ({quorum}) has "
                    f"cosigned only up to {witnessed}, for {int(lag)} s "
                    f"(threshold {int(threshold)} s)",
                    f"日志已达 {size} 条，但见证法定数（{quorum}）只连署到 {witnessed}，"
                    f"已 {int(lag)} 秒（阈值 {int(threshold)} 秒）",
                    details={
                        "checkpoint": witnessed,
                        "count": size - witnessed,
                        "window_seconds": int(threshold),
                    },
                )
            )
        since_witnessed, since, quorum_told = self._episode
        if lag >= threshold / 2:
            if live < quorum and not quorum_told:
                self._episode = (since_witnessed, since, True)
                out.append(
                    Alert(
                        "quorum_lost",
                        f"quorum_lost:{since_witnessed}:{size}",
                        f"only {live} of {len(self._cosigned)} witnesses are reachable and "
                        f"cosigned within {int(threshold)} s; the quorum is {quorum}",
                        f"{int(threshold)} 秒内仅 {live} 个（共 {len(self._cosigned)} 个）"
                        f"见证者可达并连署；法定数为 {quorum}",
                        details={
                            "count": live,
                            "threshold": quorum,
                            "window_seconds": int(threshold),
                        },
                    )
                )
            return out
        self._episode = None
        lasted = int(now - since)
        out.append(
            Alert(
                "witness_recovered",
                f"witness_recovered:{since_witnessed}:{witnessed}",
                f"witnessing caught up: the quorum ({quorum}) cosigned up to {witnessed} "
                f"(of {size}), after lagging from {since_witnessed} for {lasted} s",
                f"见证已恢复：法定数（{quorum}）已连署到 {witnessed}（共 {size} 条），"
                f"此前自 {since_witnessed} 起滞后 {lasted} 秒",
                details={"checkpoint": witnessed, "count": size - witnessed},
            )
        )
        return out

    def _monitor(self) -> list[Alert]:
        """Each finding a ``jianzheng monitor`` of this log left in ``--monitor-state``,
        once ever: a finding raised is marked in ``alert_state`` (its evidence file stays,
        and must not alert again on every round or after a restart)."""
        if self.monitor_state is None:
            return []
        _, alarms = read_monitor_state(self.monitor_state, self.lg.info().verifier_key)
        for a in alarms:
            key = f"monitor_alarm:{a['file']}:{a['kind']}"
            mark = "monitor:" + hashlib.sha256(key.encode()).hexdigest()[:48]
            with self.lg.store.reader() as conn:
                seen = conn.execute(
                    select(AlertStateRow.name).where(AlertStateRow.name == mark)
                ).first()
            if seen is not None:
                continue
            self.record(
                [
                    Alert(
                        "monitor_alarm",
                        key,
                        f"monitor alarm ({a['kind']}, {a['file']}): {a['message']}",
                        f"监测告警（{a['kind']}，{a['file']}）：{a['message']}",
                    )
                ]
            )
            with self.lg.store.writer() as conn:
                conn.execute(
                    insert(AlertStateRow).values(name=mark, value=0, owner=None, lease_until=0.0)
                )
        return []


def _late(project: str, r: dict[str, Any]) -> Alert:
    seq = int(r["seq"])
    return Alert(
        "late_entry",
        f"late_entry:{project}:{seq}",
        f"{project}: event seq {seq} ({r['type']}) was recorded late (事后补录), "
        f"at {r['recorded_at']} for {r['occurred_at']}",
        f"{project}：事件 seq {seq}（{r['type']}）为事后补录，{r['recorded_at']} 记录 "
        f"{r['occurred_at']} 的事实",
        project,
        str(r["trade_type"]),
        {"index": int(r["index"]), "seqs": [str(seq)]},
    )
