"""The log status page: size and latest checkpoint, witnesses and their lag, timestamps,
and the alarms of a monitor (``jianzheng monitor --state DIR``) whose state directory
``serve --monitor-state DIR`` names."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from api.console.views import beijing
from api.routes.log import log_info
from ledger.models import CheckpointRow, TimestampRow
from ledger.service import Ledger
from ledger.witnessing.view import WitnessingView

#: Evidence files a monitor's state directory may hold, read at most.
MAX_ALARMS = 50
MAX_ALARM_BYTES = 1 << 20


@dataclass
class StatusView:
    origin: str
    verifier_key: str
    size: int
    root: str
    checkpoint: str
    checkpoint_at: str
    witnessed_size: int
    quorum: int
    witnesses: list[dict[str, Any]] = field(default_factory=list)
    timestamp: dict[str, Any] | None = None
    monitor_configured: bool = False
    monitor_seen: dict[str, Any] | None = None
    alarms: list[dict[str, str]] = field(default_factory=list)


def log_status_view(lg: Ledger, w: WitnessingView | None, monitor_state: Path | None) -> StatusView:
    info = log_info(lg, w)
    size = int(info["size"])
    with lg.store.engine.connect() as conn:
        at = conn.execute(
            select(CheckpointRow.created_at).where(CheckpointRow.size == size)
        ).scalar()
        ts = conn.execute(
            select(TimestampRow.size, TimestampRow.gen_time, TimestampRow.tsa)
            .order_by(TimestampRow.size.desc())
            .limit(1)
        ).first()
    witnesses = []
    for wi in info["witnesses"]:
        cosigned = int(wi.get("cosigned_size") or 0)
        witnesses.append({**wi, "lag": max(0, size - cosigned)})
    view = StatusView(
        origin=info["origin"],
        verifier_key=info["verifier_key"],
        size=size,
        root=info["root"],
        checkpoint=info["checkpoint"] or "",
        checkpoint_at=beijing(at) if at else "",
        witnessed_size=int(info["witnessed_size"]),
        quorum=int(info["witness_quorum"]),
        witnesses=witnesses,
        timestamp=(
            {"size": ts[0], "when": beijing(ts[1]), "tsa": ts[2], "lag": max(0, size - ts[0])}
            if ts
            else None
        ),
    )
    if monitor_state is not None:
        view.monitor_configured = True
        view.monitor_seen, view.alarms = read_monitor_state(monitor_state, view.verifier_key)
    return view


def read_monitor_state(
    state: Path, verifier_key: str
) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    """What ``jianzheng monitor --state DIR`` left for this log (witness/monitor.py): the
    last checkpoint it verified (its state file) and the findings of each evidence file
    (``evidence-*.json``), newest first. Files of other logs are left out."""
    seen: dict[str, Any] | None = None
    alarms: list[dict[str, str]] = []
    if not state.is_dir():
        return None, []
    files = sorted(state.glob("*.json"), key=lambda p: p.name, reverse=True)
    for path in files[: MAX_ALARMS * 4]:
        try:
            if path.stat().st_size > MAX_ALARM_BYTES:
                continue
            doc = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or doc.get("verifier_key") != verifier_key:
            continue
        if path.name.startswith("evidence-"):
            for f in doc.get("findings") or []:
                if isinstance(f, dict) and len(alarms) < MAX_ALARMS:
                    alarms.append(
                        {
                            "kind": str(f.get("kind", ""))[:64],
                            "message": str(f.get("message", ""))[:500],
                            "when": beijing(doc.get("detected_at", "")),
                            "file": path.name,
                        }
                    )
        elif seen is None and isinstance(doc.get("size"), int):
            seen = {"size": doc["size"], "when": beijing(doc.get("checked_at", ""))}
    return seen, alarms
