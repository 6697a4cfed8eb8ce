"""The import layers of docs/architecture.md, checked on every module (issue 14).

Every ``import`` and ``from ... import`` of the five packages is read with ``ast`` (also
those inside functions and ``TYPE_CHECKING`` blocks) and checked against the allowed
graph below. A new upward import (the ledger reaching into ``api/``, the verifier into
anything but the standard library, ``cryptography`` and ``asn1crypto``) fails here.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("verifier", "ledger", "storage", "witness", "api")

#: Which project packages each package may import (itself always). The graph is a DAG:
#: verifier < ledger < storage, witness < api.
MAY_IMPORT: dict[str, set[str]] = {
    "verifier": set(),
    "ledger": {"verifier"},
    "storage": {"verifier", "ledger"},
    "witness": {"verifier", "ledger"},
    "api": {"verifier", "ledger", "storage", "witness"},
}

#: The witness service, monitor and TSA run beside the log, not inside it: of the ledger
#: they use only these modules (the clock's RFC 3339 form, tiles to read a log, the
#: store's engine, the shared HTTP error shape, the key loader, the TSA interface the log
#: side uses, and the queue-draining committer thread, which imports nothing of the project).
WITNESS_USES_OF_LEDGER = {
    "ledger.clock",
    "ledger.committer",
    "ledger.tiles",
    "ledger.store",
    "ledger.http",
    "ledger.keys",
    "ledger.witnessing.timestamper",
}

#: The verifier runs with nothing but these outside the standard library.
VERIFIER_THIRD_PARTY = {"cryptography", "asn1crypto"}

#: The web framework stays at the edges: the API, the witness service, and the HTTP
#: plumbing both share.
WEB = {"fastapi", "starlette", "uvicorn"}
WEB_ALLOWED = ("api", "witness.server", "ledger.http")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool = False) -> list[str]:
    """Absolute names of every module ``source`` imports (relative imports resolved)."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    out: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[: len(here) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if not base:  # ``from ... import api`` above the top: the names are modules
                out.extend(a.name for a in node.names)
                continue
            out.append(base)
            # ``from ledger import keys`` imports the module ledger.keys.
            if base.split(".")[0] in PACKAGES:
                out.extend(f"{base}.{a.name}" for a in node.names if a.name != "*")
    return out


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def violations(module: str, imported: list[str]) -> list[str]:
    """Why each import of ``module`` breaks the layers (empty: none does)."""
    pkg = module.split(".")[0]
    bad: list[str] = []
    for name in imported:
        top = name.split(".")[0]
        if top in PACKAGES:
            if top != pkg and top not in MAY_IMPORT[pkg]:
                bad.append(f"{module} imports {name}: {pkg}/ may not import {top}/")
            elif pkg == "witness" and top == "ledger" and name != "ledger":
                if _is_module(name) and name not in WITNESS_USES_OF_LEDGER:
                    bad.append(
                        f"{module} imports {name}: the witness side uses no such ledger part"
                    )
        elif pkg == "verifier":
            if top not in sys.stdlib_module_names and top not in VERIFIER_THIRD_PARTY:
                bad.append(
                    f"{module} imports {name}: the verifier needs only the stdlib, "
                    "cryptography and asn1crypto"
                )
        if top in WEB and not module.startswith(WEB_ALLOWED):
            bad.append(f"{module} imports {name}: the web framework stays in {WEB_ALLOWED}")
    return bad


def all_modules() -> list[tuple[str, Path]]:
    return sorted((module_name(p), p) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_no_module_imports_upward() -> None:
    mods = all_modules()
    assert len(mods) > 60  # the walk found the packages
    bad = [
        v
        for name, path in mods
        for v in violations(name, imports_of(path.read_text(), name, path.stem == "__init__"))
    ]
    assert bad == []


def test_the_check_catches_upward_imports() -> None:
    # Each would be a new upward import; the check must name it.
    cases = {
        "ledger.bundle": "from api.errors import ApiError\n",
        "ledger.witnessing.submitter": "from witness.tsa import BuiltinTimestamper\n",
        "storage.service": "def f():\n    import witness.monitor\n",
        "witness.server": "from ledger.sequencer import Sequencer\n",
        "witness.monitor": "from api import cli\n",
        "verifier.bundle": "import httpx\n",
        "verifier.merkle": "from ledger import records\n",
        "ledger.service": "from fastapi import Request\n",
        "ledger.witnessing.view": "from ..sequencer import Sequencer\nfrom ... import api\n",
    }
    for module, source in cases.items():
        found = violations(module, imports_of(source, module))
        if module == "ledger.witnessing.view":
            assert found == [f"{module} imports api: ledger/ may not import api/"], found
        else:
            assert found, module
    # ...and the allowed directions pass.
    ok = {
        "api.app": "from witness.server import serve\nfrom storage.service import x\n",
        "witness.server": "from ledger.http import ApiError\nfrom verifier import merkle\n",
        "ledger.bundle": "from verifier.bundle import format\nfrom . import store\n",
        "verifier.timestamp": "from asn1crypto import tsp\nimport hashlib\n",
    }
    for module, source in ok.items():
        assert violations(module, imports_of(source, module)) == [], module


#: Each package's exception base (verifier/errors.py says why); private exceptions used
#: for control flow inside one module are left out.
PACKAGE_ERROR = {
    "verifier": ("verifier.errors", "VerifierError"),
    "ledger": ("ledger.errors", "LedgerError"),
    "storage": ("storage.base", "StorageError"),
    "witness": ("witness.errors", "WitnessServiceError"),
    "api": ("api.errors", "ApiLayerError"),
}


def test_every_error_derives_from_its_package_base() -> None:
    import importlib

    from verifier.errors import JianzhengError

    bases = {
        pkg: getattr(importlib.import_module(m), name) for pkg, (m, name) in PACKAGE_ERROR.items()
    }
    from ledger.http import ApiError

    # The project base itself, and the HTTP answer both services share, sit right under it.
    under_the_project_base = {JianzhengError, ApiError}
    seen, bad = 0, []
    for name, _path in all_modules():
        if ".migrations" in name or name.endswith("__main__"):
            continue
        mod = importlib.import_module(name)
        for attr, obj in vars(mod).items():
            if not (isinstance(obj, type) and issubclass(obj, BaseException)):
                continue
            if obj.__module__ != name or attr.startswith("_"):
                continue
            seen += 1
            if not issubclass(obj, JianzhengError):
                bad.append(f"{name}.{attr}")
            elif obj not in under_the_project_base and not any(
                issubclass(obj, b) for b in bases.values()
            ):
                bad.append(f"{name}.{attr}: under no package base")
    assert seen > 40
    assert bad == []
    # The standard bases stay: existing except clauses still match.
    from ledger.service import NotFound
    from verifier.checkpoint import CheckpointError

    assert issubclass(NotFound, LookupError) and issubclass(CheckpointError, ValueError)


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def module_graph() -> dict[str, set[str]]:
    """Which project modules each module imports (at the top or inside functions)."""
    mods = dict(all_modules())
    return {
        name: {
            m
            for m in imports_of(path.read_text(), name, path.stem == "__init__")
            if m in mods and m != name
        }
        for name, path in mods.items()
    }


def test_no_import_cycles() -> None:
    # Issue 14 §4: api/workers.py imported api/cli.py, which imports it; the serve options
    # both need live in api/serve_options.py. A cycle anywhere, even through an import
    # inside a function, means two modules that cannot be understood apart.
    assert import_cycles(module_graph()) == []
    # The check itself finds one.
    assert import_cycles({"api.cli": {"api.workers"}, "api.workers": {"api.cli"}}) == [
        ["api.cli", "api.workers"]
    ]


def test_domain_packages_know_no_http() -> None:
    # The domain rules (ledger/, storage/) raise domain exceptions; only the API (and the
    # shared HTTP plumbing in ledger/http.py) turns them into statuses and JSON.
    bad = [
        f"{name} imports {m}"
        for name, path in all_modules()
        if name.split(".")[0] in ("ledger", "storage") and name != "ledger.http"
        for m in imports_of(path.read_text(), name, path.stem == "__init__")
        if m.split(".")[0] in WEB or m == "ledger.http"
    ]
    assert bad == []


def test_every_domain_refusal_has_its_http_answer() -> None:
    # The refusals of the domain services (ledger/access.py, ledger/posters.py,
    # ledger/appending.py, storage/attachments.py) are answered in one place, api/errors.py
    # REFUSALS; one without an answer would be a 500.
    from api.errors import REFUSALS, as_api_error
    from ledger.access import AccessError, NotVisible
    from ledger.appending import AppendError
    from ledger.posters import PosterKeyError
    from storage.attachments import AttachmentRefused

    def below(cls: type) -> list[type]:
        return [x for s in cls.__subclasses__() for x in (s, *below(s))]

    refusals = [
        *below(AccessError),
        *below(PosterKeyError),
        *below(AppendError),
        *below(AttachmentRefused),
    ]
    assert len(refusals) >= 13
    assert [c.__name__ for c in refusals if not set(c.__mro__) & set(REFUSALS)] == []
    e = as_api_error(NotVisible("no such project"))
    assert (e.status, e.code, e.message, e.field) == (404, "not_found", "no such project", None)


def test_the_api_appends_only_through_the_use_case() -> None:
    # Issue 14 §4: one append use case (ledger.appending.append_events) serves the routes;
    # no module of api/ queues events with the ledger itself (lg.append, lg.commit).
    def direct_appends(source: str) -> list[str]:
        return [
            f"{node.func.value.id}.{node.func.attr}"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("append", "commit")
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in ("lg", "ledger")
        ]

    bad = [
        f"{name}: {call}"
        for name, path in all_modules()
        if name.startswith("api.")
        for call in direct_appends(path.read_text())
    ]
    assert bad == []
    assert direct_appends("async def f(lg):\n    await lg.commit([ev], 'p')\n") == ["lg.commit"]
