"""The verifier-only distribution (issue 15, "for reviewers who install nothing else").

``packaging/verifier`` builds a wheel of the repository's ``verifier/`` package alone. The
test builds it from a copy of the checkout (so the checkout stays clean), checks that it
holds every file of ``verifier/`` and depends on exactly ``cryptography`` and
``asn1crypto``, installs it into a fresh virtual environment (no system site-packages)
from a local wheelhouse with ``--no-index``, so nothing else can come along, and runs
``jianzheng-verify`` and ``python -m verifier`` there on a genuine and a tampered bundle.

The wheelhouse holds the cryptography and asn1crypto releases installed here (and their
dependencies), downloaded once into ``$JIANZHENG_CACHE/verifier-wheelhouse`` (default
``~/.cache/jianzheng``); later runs need no network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from tests.hostile import members, rebuild, small_bundle, with_record

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging" / "verifier"
DEPENDENCIES = ("cryptography", "asn1crypto")
#: Only these may be installed in the reviewer's environment (and pip itself).
ALLOWED = {"jianzheng-verifier", "cryptography", "asn1crypto", "cffi", "pycparser", "pip"}
SERVER_SIDE = ("fastapi", "sqlalchemy", "minio", "starlette", "uvicorn", "api", "ledger")


def cache_dir() -> Path:
    base = os.environ.get("JIANZHENG_CACHE") or Path.home() / ".cache" / "jianzheng"
    return Path(base) / "verifier-wheelhouse"


def run(*cmd: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` outside the checkout, with nothing of it on the import path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def verifier_files(root: Path) -> set[str]:
    """The files a distribution of ``verifier/`` must carry (sources and package data)."""
    return {
        p.relative_to(root).as_posix()
        for p in (root / "verifier").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def build_wheel(tmp: Path) -> Path:
    """The wheel, built from a copy of the checkout's packaging and verifier/."""
    src = tmp / "src"
    shutil.copytree(PACKAGING, src / "packaging" / "verifier")
    shutil.copytree(
        ROOT / "verifier", src / "verifier", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp / "wheels"
    r = run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-w",
        out,
        src / "packaging" / "verifier",
        cwd=tmp,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = out.glob("jianzheng_verifier-*.whl")
    return wheel


def install(venv: Path, wheels: Path) -> subprocess.CompletedProcess[str]:
    house = cache_dir()
    return run(
        venv / "bin" / "python",
        "-m",
        "pip",
        "install",
        "--no-index",
        "--find-links",
        house,
        "--find-links",
        wheels,
        "jianzheng-verifier",
        cwd=venv.parent,
    )


def fill_wheelhouse() -> None:
    """Download the installed releases of the two dependencies (and theirs), once."""
    pins = [f"{name}=={metadata.version(name)}" for name in DEPENDENCIES]
    house = cache_dir()
    house.mkdir(parents=True, exist_ok=True)
    r = run(sys.executable, "-m", "pip", "download", "-d", house, *pins, cwd=house)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_verifier_installs_and_runs_alone(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = Parser().parsestr(zf.read(meta_name).decode())
        (ep_name,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = zf.read(ep_name).decode()
    # Every source and data file of verifier/ (rules, catalogues, py.typed), and nothing else.
    assert {n for n in names if ".dist-info/" not in n} == verifier_files(ROOT)
    assert {"verifier/rules/rules.json", "verifier/py.typed"} <= names
    requires = meta.get_all("Requires-Dist") or []
    assert sorted(r.split(">")[0].split("=")[0].strip() for r in requires) == sorted(
        DEPENDENCIES
    ), requires
    assert "jianzheng-verify = verifier.cli:main" in entry_points
    # Released together with the service: the same version.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["Version"] == project["version"] and meta["Name"] == "jianzheng-verifier"

    venv = tmp_path / "reviewer"
    r = run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    if install(venv, wheel.parent).returncode != 0:  # the wheelhouse is not filled yet
        fill_wheelhouse()
        r = install(venv, wheel.parent)
        assert r.returncode == 0, r.stdout + r.stderr
    py = venv / "bin" / "python"
    r = run(py, "-m", "pip", "list", "--format", "json", cwd=tmp_path)
    installed = {p["name"].lower() for p in json.loads(r.stdout)}
    assert installed <= ALLOWED | {"setuptools"}, installed
    assert {"jianzheng-verifier", *DEPENDENCIES} <= installed
    for module in SERVER_SIDE:
        r = run(py, "-c", f"import {module}", cwd=tmp_path)
        assert r.returncode == 1 and "ModuleNotFoundError" in r.stderr, module
    r = run(py, "-c", "import verifier; print(verifier.__file__)", cwd=tmp_path)
    assert Path(r.stdout.strip()).is_relative_to(venv), r.stdout + r.stderr

    # A genuine bundle holds (exit 0); one record changed breaks integrity (exit 1).
    data, trust = small_bundle(tmp_path / "ledger")
    good = tmp_path / "good.zip"
    good.write_bytes(data)
    bad = tmp_path / "bad.zip"
    moved = {"occurred_at": "2026-03-03T09:00:00+08:00"}
    bad.write_bytes(rebuild(with_record(members(data), 2, lambda rec: {**rec, **moved})))
    trust_file = tmp_path / "trust.txt"
    trust_file.write_text(trust.to_text())
    for command in ([venv / "bin" / "jianzheng-verify"], [py, "-m", "verifier"]):
        r = run(*command, good, "--trust", trust_file, "--format", "json", cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        report = json.loads(r.stdout)
        assert report["integrity"]["holds"] is True and report["compliance"]["holds"] is True
        r = run(*command, bad, "--trust", trust_file, "--format", "json", cwd=tmp_path)
        assert r.returncode == 1, r.stdout + r.stderr
        report = json.loads(r.stdout)
        assert report["integrity"]["holds"] is False
        assert any(
            x["check"] == "inclusion" and x["status"] == "fail"
            for x in report["integrity"]["reasons"]
        )
