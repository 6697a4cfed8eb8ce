"""What is derived from the event catalogue is current: the verifier's copy of every
catalogue version, and the field tables of docs/integration.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ledger.catalogue import load_catalogue
from verifier.payload import load_payload_catalogues

ROOT = Path(__file__).resolve().parent.parent


def test_generated_files_are_current() -> None:
    r = subprocess.run(
        [sys.executable, "scripts/catalogue_docs.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr


def test_the_verifier_knows_every_version_and_the_current_one_as_the_ledger() -> None:
    cat = load_catalogue()
    cats = load_payload_catalogues()
    assert set(cats.versions) == set(range(1, cat.version + 1))
    assert cats.versions[1] is None  # version 1 typed no payloads
    assert cats.checker(1, "project_registered") is None
    for ev in cat:
        found = cats.checker(cat.version, ev.code)
        assert found is not None
        checker, sealed = found
        # Sealed and confidential fields alike may stand as commitments.
        confidential = ev.confidential.fields if ev.confidential else ()
        assert sealed == frozenset(ev.sealed_fields) | frozenset(confidential)
        assert set(checker.fields) == set(ev.fields)


def test_the_guide_documents_every_event_type_and_field() -> None:
    text = (ROOT / "docs" / "integration.md").read_text("utf-8")
    for ev in load_catalogue():
        assert f'<a id="{ev.code}"></a>' in text
        for name in ev.fields:
            assert f"| `{name}` |" in text
        assert json.dumps(ev.example_payload(), ensure_ascii=False, indent=2) in text
    readme = (ROOT / "README.md").read_text("utf-8")
    assert "docs/integration.md" in readme and "/v1/catalogue" in readme
