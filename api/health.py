"""``GET /healthz/ready``: whether a load balancer should send this node traffic (issue 16).

``/healthz`` stays what it was (the process answers). Ready means: the database answers,
the object store answers, and the sequencer may append (not ``behind`` a checkpoint that
was signed or cosigned, ledger/sequencer.py ``LogBehind``). Not ready is 503 with the
same body, naming what is wrong; no token is needed and nothing about the log's content
is shown. The probes run at most once per :data:`PROBE_EVERY` seconds per process,
whatever the request rate, so the endpoint cannot be used to load the database, and one at
a time: other requests meanwhile get the answer before, without waiting.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from api.reused import Reused
from ledger.service import Ledger
from storage.service import EvidenceStore

#: Seconds a probe's answer is reused.
PROBE_EVERY = 1.0
#: A SHA-256 no object has (the probe asks the store for its size: "absent" is an answer).
_PROBE_OBJECT = "0" * 64


class Readiness(Reused[dict[str, Any]]):
    """The probes, and their newest answer."""

    def __init__(self, ledger: Ledger, objects: EvidenceStore) -> None:
        super().__init__(PROBE_EVERY)
        self.ledger = ledger
        self.objects = objects

    def check(self) -> dict[str, Any]:
        """The newest answer, probed anew when it is older than :data:`PROBE_EVERY`; not
        ready while a first probe runs (:class:`api.reused.Reused`: a request never waits
        for another's probe)."""
        return self._reused(self._probe) or {"status": "not_ready", "probe": "running"}

    def _probe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            self.ledger.store.read_rows("SELECT 1", ())
            out["database"] = "ok"
        except Exception as e:  # any failure is "not ready"; the reason by its kind only
            out["database"] = f"unreachable ({type(e).__name__})"
        try:
            self.objects.backend.stat(_PROBE_OBJECT)
            out["objects"] = "ok"
        except Exception as e:
            out["objects"] = f"unreachable ({type(e).__name__})"
        behind = self.ledger.behind()
        out["sequencer"] = "behind" if behind else "ok"
        if behind:
            out["reason"] = behind
        ok = out["database"] == out["objects"] == out["sequencer"] == "ok"
        out["status"] = "ready" if ok else "not_ready"
        return out


def install_health(app: FastAPI, ledger: Ledger, objects: EvidenceStore) -> None:
    ready = Readiness(ledger, objects)

    @app.get("/healthz/ready", include_in_schema=False)
    def healthz_ready() -> JSONResponse:
        body = ready.check()
        return JSONResponse(body, status_code=200 if body["status"] == "ready" else 503)
