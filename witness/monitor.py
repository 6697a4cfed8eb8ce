"""A monitor: follows a log's checkpoints; raises the alarm on a fork, rollback or bad signature.

It needs no token: it reads the public C2SP tlog-tiles endpoints of the log (checkpoint
and tiles) and computes the RFC 9162 §2.1.4 consistency proof between the last checkpoint
it saw and the new one from the tiles itself. If the log presents a tree that does not
extend the one it showed before, no set of tiles can produce a proof that verifies against
both signed roots, so the check fails; the monitor then keeps both signed checkpoints as
evidence, exits non-zero and, if asked, posts the evidence to a webhook.

State (the last verified checkpoint) is one JSON file in the state directory, replaced
atomically; evidence files are written beside it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from ledger.tiles import HASH, TILE_WIDTH, TreeReader, index_path, tile_width_at
from verifier import merkle
from verifier.checkpoint import CheckpointError, SignedCheckpoint, open_checkpoint
from verifier.note import NoteError, Verifier
from verifier.witnessing import WitnessError, cosigners
from witness.errors import WitnessServiceError

MAX_CHECKPOINT_BYTES = 1 << 20
MAX_TILE_BYTES = TILE_WIDTH * HASH * 2
#: A witness's evidence is read in pages (of at most 100 items); at most this many pages.
MAX_EVIDENCE_PAGES = 100
MAX_EVIDENCE_BYTES = 16 << 20

#: Exit codes: 0 all consistent; 1 evidence of misbehaviour; 2 could not check.
EXIT_OK, EXIT_EVIDENCE, EXIT_UNCHECKED = 0, 1, 2

FORK = "fork"
ROLLBACK = "rollback"
BAD_SIGNATURE = "bad_signature"
BAD_COSIGNATURE = "bad_cosignature"


class MonitorError(RuntimeError, WitnessServiceError):
    """The monitor could not check (network, HTTP error, unusable state): no verdict."""


@dataclass
class Finding:
    """Evidence that the log misbehaved: what, and the signed material that shows it."""

    kind: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, **self.evidence}


@dataclass
class CheckResult:
    size: int
    root: bytes
    cosigned_by: list[str]
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Monitor:
    """Checks one log's current checkpoint against the last one it verified."""

    def __init__(
        self,
        log_url: str,
        log_key: Verifier,
        witnesses: Sequence[Verifier] = (),
        state_dir: Path | None = None,
        *,
        timeout: float = 10.0,
        witness_evidence: Sequence[str] = (),
    ) -> None:
        """``witness_evidence``: prefixes of Jianzheng witnesses whose fork evidence against
        this log (``GET <prefix>/evidence``) is checked too."""
        self.base = log_url.rstrip("/")
        self.witness_evidence = [u.rstrip("/") for u in witness_evidence]
        self.log_key = log_key
        self.witnesses = list(witnesses)
        self.state_dir = state_dir
        self.http = httpx.Client(timeout=timeout)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", log_key.name)
        self.state_file = state_dir / f"{safe}.json" if state_dir else None

    def close(self) -> None:
        self.http.close()

    # --- state -------------------------------------------------------------------------
    def load_state(self) -> dict[str, Any] | None:
        if self.state_file is None or not self.state_file.exists():
            return None
        try:
            st: dict[str, Any] = json.loads(self.state_file.read_text())
        except (OSError, ValueError) as e:
            raise MonitorError(f"cannot read monitor state {self.state_file}: {e}") from None
        if st.get("verifier_key") != self.log_key.vkey:
            raise MonitorError(
                f"{self.state_file} belongs to the log key {st.get('verifier_key')}, "
                "not the one given; use another --state directory"
            )
        return st

    def _save_state(self, sc: SignedCheckpoint) -> None:
        if self.state_file is None:
            return
        cp = sc.checkpoint
        data = {
            "origin": cp.origin,
            "verifier_key": self.log_key.vkey,
            "size": cp.size,
            "root": base64.b64encode(cp.root).decode(),
            "checkpoint": sc.to_text(),
            "checked_at": _now(),
        }
        _write_atomic(self.state_file, json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def save_evidence(self, payload: dict[str, Any]) -> Path | None:
        """Write an evidence document (see :meth:`evidence`) beside the state; its path."""
        if self.state_dir is None:
            return None
        path = self.state_dir / f"evidence-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.json"
        _write_atomic(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        return path

    def evidence(self, findings: Sequence[Finding]) -> dict[str, Any]:
        """The evidence document: which log, when, and each finding with its signed notes."""
        return {
            "log": self.base,
            "verifier_key": self.log_key.vkey,
            "detected_at": _now(),
            "findings": [f.to_json() for f in findings],
        }

    # --- fetching ------------------------------------------------------------------------
    def _get(self, path: str, limit: int) -> bytes:
        return self._fetch(self.base + path, limit, path)

    def _fetch(self, url: str, limit: int, what: str) -> bytes:
        try:
            r = self.http.get(url)
        except httpx.HTTPError as e:
            raise MonitorError(f"GET {what}: {e}") from None
        if r.status_code != 200:
            raise MonitorError(f"GET {what}: HTTP {r.status_code}")
        if len(r.content) > limit:
            raise MonitorError(f"GET {what}: larger than {limit} bytes")
        return r.content

    def _tile_getter(self, size: int) -> Callable[[int, int], bytes]:
        def get(level: int, index: int) -> bytes:
            width = tile_width_at(level, index, size)
            if width == 0:
                return b""
            path = f"/log/tile/{level}/{index_path(index)}"
            if width < TILE_WIDTH:
                path += f".p/{width}"
            data = self._get(path, MAX_TILE_BYTES)
            if len(data) != width * HASH:
                raise MonitorError(f"tile {path} is {len(data)} bytes, want {width * HASH}")
            return data

        return get

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(old, D[new]) computed from the log's public tiles."""
        reader = TreeReader(self._tile_getter(new))
        try:
            return merkle.consistency_proof(reader.node, old, new)
        except (LookupError, ValueError) as e:
            raise MonitorError(f"the log's tiles cannot answer a proof: {e}") from None

    # --- the check -------------------------------------------------------------------------
    def check(self) -> CheckResult:
        """Fetch the checkpoint, verify it, compare it with the saved one; save if it is good."""
        text = self._get("/log/checkpoint", MAX_CHECKPOINT_BYTES)
        try:
            sc = open_checkpoint(text, self.log_key)
        except CheckpointError as e:
            f = Finding(
                BAD_SIGNATURE,
                f"the log's checkpoint does not verify with its key: {e}",
                {"checkpoint": text.decode("utf-8", "replace")},
            )
            return CheckResult(-1, b"", [], [f])
        cp = sc.checkpoint
        findings: list[Finding] = []
        cosigned: list[str] = []
        for w in self.witnesses:
            try:
                for v, _ in cosigners(sc.note, [w]):
                    cosigned.append(v.name)
            except (NoteError, WitnessError) as e:
                findings.append(
                    Finding(
                        BAD_COSIGNATURE,
                        f"the cosignature of witness {w.name} does not verify: {e}",
                        {"witness": w.vkey, "checkpoint": sc.to_text()},
                    )
                )
        prev = self.load_state()
        if prev is not None:
            findings += self._compare(prev, sc)
        for prefix in self.witness_evidence:
            findings += self.witness_forks(prefix)
        if not findings:
            self._save_state(sc)
        return CheckResult(cp.size, cp.root, cosigned, findings)

    def _compare(self, prev: dict[str, Any], sc: SignedCheckpoint) -> list[Finding]:
        cp = sc.checkpoint
        old_size = int(prev["size"])
        old_root = base64.b64decode(prev["root"])
        evidence = {"previous_checkpoint": prev["checkpoint"], "checkpoint": sc.to_text()}
        if cp.size < old_size:
            msg = f"rollback: the log shows size {cp.size} after it showed {old_size}"
            return [Finding(ROLLBACK, msg, evidence)]
        if cp.size == old_size:
            if cp.root != old_root:
                msg = f"fork: two checkpoints of size {cp.size} with different roots"
                return [Finding(FORK, msg, evidence)]
            return []
        if old_size == 0:
            return []
        proof = self.consistency_proof(old_size, cp.size)
        try:
            merkle.verify_consistency(old_size, cp.size, proof, old_root, cp.root)
        except merkle.ProofError as e:
            evidence["consistency_proof"] = [base64.b64encode(h).decode() for h in proof]
            msg = f"fork: size {cp.size} does not extend size {old_size}: {e}"
            return [Finding(FORK, msg, evidence)]
        return []

    def witness_forks(self, prefix: str) -> list[Finding]:
        """Forks of this log that the witness at ``prefix`` keeps and nobody cleared yet.

        Each one is checked here: both checkpoints must verify with the log's key, have one
        size and differ in root. Such a pair proves the fork by itself, whoever relays it;
        anything else the witness lists is not taken on its word.
        """
        out: list[Finding] = []
        after = 0
        for _ in range(MAX_EVIDENCE_PAGES):
            url = f"{prefix}/evidence?after={after}"
            try:
                page = json.loads(self._fetch(url, MAX_EVIDENCE_BYTES, url))
                items = page["evidence"]
                nxt = page.get("next_after")
            except (ValueError, KeyError, TypeError) as e:
                raise MonitorError(f"GET {url}: not a witness evidence page ({e})") from None
            for item in items:
                f = self._witness_fork(prefix, item)
                if f is not None:
                    out.append(f)
            if not isinstance(nxt, int) or nxt <= after:
                break
            after = nxt
        return out

    def _witness_fork(self, prefix: str, item: Any) -> Finding | None:
        if not isinstance(item, dict) or item.get("origin") != self.log_key.name:
            return None
        if item.get("kind") != FORK or item.get("cleared_at") is not None:
            return None
        try:
            a = open_checkpoint(str(item["stored_checkpoint"]), self.log_key).checkpoint
            b = open_checkpoint(str(item["submitted_checkpoint"]), self.log_key).checkpoint
        except (CheckpointError, KeyError):
            return None
        if a.size != b.size or a.root == b.root:
            return None
        msg = (
            f"fork: the witness at {prefix} holds two checkpoints of size {a.size} "
            f"with different roots, both signed by the log (its evidence #{item.get('id')})"
        )
        evidence = {
            "witness": prefix,
            "previous_checkpoint": item["stored_checkpoint"],
            "checkpoint": item["submitted_checkpoint"],
        }
        return Finding(FORK, msg, evidence)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def post_webhook(url: str, payload: dict[str, Any], timeout: float = 10.0) -> None:
    """POST the evidence as JSON; failures are reported, never fatal."""
    try:
        httpx.post(url, json=payload, timeout=timeout).raise_for_status()
    except httpx.HTTPError as e:
        print(f"jianzheng monitor: webhook {url} failed: {e}", file=sys.stderr)


def run_monitor(
    mon: Monitor,
    *,
    once: bool,
    interval: float,
    webhook: str | None = None,
    max_checks: int | None = None,
) -> int:
    """Check once, or every ``interval`` seconds until a finding; returns the exit code."""
    checks = 0
    while True:
        checks += 1
        try:
            res = mon.check()
        except MonitorError as e:
            print(f"jianzheng monitor: could not check: {e}", file=sys.stderr, flush=True)
            if once:
                return EXIT_UNCHECKED
        else:
            if not res.ok:
                payload = mon.evidence(res.findings)
                path = mon.save_evidence(payload)
                print(json.dumps(payload, indent=2, ensure_ascii=False), flush=True)
                for f in res.findings:
                    print(f"jianzheng monitor: {f.kind.upper()}: {f.message}", file=sys.stderr)
                if path is not None:
                    print(f"jianzheng monitor: evidence saved to {path}", file=sys.stderr)
                if webhook:
                    post_webhook(webhook, payload)
                return EXIT_EVIDENCE
            names = ", ".join(res.cosigned_by) or "no witness yet"
            root = base64.b64encode(res.root).decode()
            print(f"ok: size {res.size} root {root} cosigned by {names}", flush=True)
            if once:
                return EXIT_OK
        if max_checks is not None and checks >= max_checks:
            return EXIT_OK
        time.sleep(interval)
