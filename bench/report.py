"""Write one benchmark's section into docs/benchmarks.md, leaving the others alone."""

from __future__ import annotations

from pathlib import Path

HEADER = """# Benchmarks

Each section is written by its script under `bench/`, with the command that produced it.
The machine is shared and noisy, so every figure is set beside a baseline measured in the
same run, and the ratio is what to compare between runs.
"""


def write_section(path: Path, key: str, title: str, body: str) -> None:
    """Replace (or append) the section between this key's markers."""
    start, end = f"<!-- bench:{key}:start -->", f"<!-- bench:{key}:end -->"
    text = path.read_text() if path.exists() else HEADER
    block = f"{start}\n## {title}\n\n{body.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
