"""Pure offline verification: RFC 6962 Merkle math, signed notes, checkpoints, receipts."""

from __future__ import annotations

import functools
import hashlib
from importlib import metadata, resources


@functools.cache
def verifier_version() -> str:
    """This verifier's version as a report names it: the package version, and the digest
    of the rule catalogue and calendar it judged by (so a report says which rules spoke)."""
    try:
        v = metadata.version("jianzheng")
    except metadata.PackageNotFoundError:
        v = "(not installed)"
    h = hashlib.sha256()
    for name in ("rules.json", "holidays_cn.json"):
        h.update(resources.files("verifier.rules").joinpath(name).read_bytes())
    return f"jianzheng {v} (rules {h.hexdigest()[:12]})"
