"""The exporter shares the bundle format with the verifier, and nothing more (issue 14 §2).

``ledger/`` may import :mod:`verifier.bundle.format` (member names, bounds, the project
head); the verifier's reader, model and checks are the verifier's own, so that the
exporter cannot come to depend on how a bundle is checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = "verifier.bundle.format"


def _bundle_imports(source: str) -> list[str]:
    """The modules or names of ``verifier.bundle`` that a source file imports."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("verifier.bundle")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "verifier":
                found += [f"verifier.{a.name}" for a in node.names if a.name == "bundle"]
            elif node.module == "verifier.bundle":
                found += [f"verifier.bundle.{a.name}" for a in node.names]
            elif node.module.startswith("verifier.bundle."):
                found.append(node.module)
    return found


def test_the_checker_sees_every_form_of_import() -> None:
    src = (
        "import verifier.bundle\n"
        "import verifier.bundle.reader as r\n"
        "from verifier import bundle as fmt\n"
        "from verifier.bundle import EvidenceBundle, format\n"
        "from verifier.bundle.model import Record\n"
        "from verifier.bundle.format import RECORDS\n"
        "from verifier.canonical import canonicalize\n"
    )
    assert _bundle_imports(src) == [
        "verifier.bundle",
        "verifier.bundle.reader",
        "verifier.bundle",
        "verifier.bundle.EvidenceBundle",
        "verifier.bundle.format",
        "verifier.bundle.model",
        "verifier.bundle.format",
    ]


def test_ledger_imports_only_the_bundle_format() -> None:
    wrong = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "ledger").rglob("*.py"))
        for name in _bundle_imports(path.read_text(encoding="utf-8"))
        if name != ALLOWED
    }
    assert not wrong, f"ledger/ may import only {ALLOWED} of the verifier's bundle package"
    exporter = (ROOT / "ledger" / "bundle.py").read_text(encoding="utf-8")
    assert _bundle_imports(exporter) == [ALLOWED]  # the checker looks at the right file
