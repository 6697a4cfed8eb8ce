"""A small genuine evidence bundle and ways to rewrite it as an attacker would.

Shared by the hostile-bundle tests and the fuzzing pass: the bundle is built once from a
real ledger (a lawful tender with its bid files), then rewritten member by member.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from ledger.bundle import BundleSources, plan_bundle, write_bundle
from ledger.records import validate_event
from ledger.service import Ledger
from tests.tender import lawful_tender
from verifier import bundle as fmt
from verifier.canonical import canonicalize
from verifier.trust import TrustPolicy

PROJECT = "E330100000009"


def small_bundle(base: Path) -> tuple[bytes, TrustPolicy]:
    """The bytes of a genuine bundle (about forty records and their bid files), and the
    trust policy that verifies it."""
    import base64
    import dataclasses

    from verifier.chunks import ChunkTree

    files: dict[str, bytes] = {}
    events = lawful_tender(PROJECT, files)
    lg = Ledger.open(base / "data", f"sqlite:///{base / 'ledger.db'}", "hostile.test/log")
    try:
        subs = []
        for e in events:
            ev = validate_event(e, lg.catalogue)
            atts = []
            for a in ev.attachments:
                tree = ChunkTree()
                tree.update(files[a.sha256])
                atts.append(
                    dataclasses.replace(a, chunk_root=base64.b64encode(tree.finish()[2]).decode())
                )
            subs.append(dataclasses.replace(ev, attachments=tuple(atts)))
        lg.append(subs, "test-poster").result(timeout=60)
        sources = BundleSources(open_object=lambda sha: io.BytesIO(files[sha]))
        plan = plan_bundle(lg, PROJECT, sources, with_files=True)
        path = base / "small.zip"
        write_bundle(plan, path, sources)
        trust = TrustPolicy(lg.signer.verifier)
    finally:
        lg.close()
    return path.read_bytes(), trust


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def rebuild(m: dict[str, bytes], *, fix_manifest: bool = True) -> bytes:
    """A zip of ``m``; with ``fix_manifest`` the manifest's hashes are recomputed, so that
    the verifier goes past the cheap check into the one under attack."""
    m = dict(m)
    if fix_manifest:
        try:
            man: Any = json.loads(m[fmt.MANIFEST])
        except (ValueError, RecursionError):  # what the attack left is not JSON
            man = None
        if isinstance(man, dict):
            man["members"] = {
                n: fmt.manifest_member(data) for n, data in m.items() if n != fmt.MANIFEST
            }
            m[fmt.MANIFEST] = encode(man)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in m.items():
            stored = name.startswith(fmt.FILES_PREFIX)
            zf.writestr(name, data, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
    return out.getvalue()


def encode(doc: Any) -> bytes:
    """Canonical JSON, or for what has none (a lone surrogate, say) plain JSON text."""
    try:
        return canonicalize(doc)
    except ValueError:
        return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


def with_record(m: dict[str, bytes], seq: int, edit: Any) -> dict[str, bytes]:
    """``m`` with record ``seq`` replaced by ``edit(record)`` (canonical JSON)."""
    lines = m[fmt.RECORDS].split(b"\n")
    lines[seq] = canonicalize(edit(json.loads(lines[seq])))
    return {**m, fmt.RECORDS: b"\n".join(lines)}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
