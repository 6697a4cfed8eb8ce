"""``jianzheng verify`` and ``jianzheng bundle export``: evidence bundles on the command line.

``verify`` runs offline, on the pure verifier only (``verifier/cli.py``, also runnable as
``python -m verifier``): it reads a bundle, checks it against a trust file, and prints a
text, JSON or HTML report, leading with two verdicts: integrity and compliance. Exit codes:
0 both hold, 1 integrity fails, 2 usage errors, 3 integrity holds but compliance does not
(``verifier.cli.EXIT_CODES_HELP``).

``bundle export`` downloads a project's bundle from a running service
(``GET /v1/projects/{project}/bundle``) with a reviewer or archivist token, so the
archivist needs neither database access nor the log key, and gets exactly what the service
publishes (its witnesses' cosignatures, timestamp and object store included).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from verifier.cli import (
    EXIT_CODES_HELP,
    VERIFY_DESCRIPTION,
    add_receipt_arguments,
    add_verify_arguments,
    run_receipt_verify,
    run_verify,
)

DEFAULT_URL = "http://127.0.0.1:8000"
#: Seconds: to connect, and the longest silence between two pieces of the stream.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 300.0


def register(sub: Any) -> None:
    """Add ``verify`` and ``bundle export`` to the ``jianzheng`` sub-command parsers."""
    v = sub.add_parser(
        "verify",
        help="verify an evidence bundle offline against a trust file",
        description=VERIFY_DESCRIPTION,
        epilog=EXIT_CODES_HELP,
    )
    add_verify_arguments(v)
    v.set_defaults(func=run_verify)

    r = sub.add_parser("receipt", help="receipts")
    rsub = r.add_subparsers(dest="receipt_command", required=True)
    rv = rsub.add_parser(
        "verify",
        help="verify a receipt offline against the event you posted",
        description="Rebuild the record from the posted event and the receipt, recompute its "
        "event hash, and check the inclusion proof, the log's checkpoint signature and (with "
        "--trust) the witnesses' cosignatures. Exit 0 only if it holds; 1 if it does not; "
        "2 if the input cannot be read.",
    )
    add_receipt_arguments(rv)
    rv.set_defaults(func=run_receipt_verify)

    b = sub.add_parser("bundle", help="evidence bundles")
    bsub = b.add_subparsers(dest="bundle_command", required=True)
    e = bsub.add_parser(
        "export",
        help="download a project's evidence bundle from a running service",
        description="Download GET /v1/projects/{project}/bundle into FILE (atomically).",
    )
    e.add_argument("--project", required=True)
    e.add_argument("--with-files", action="store_true", help="include the attachments' files")
    e.add_argument("-o", "--output", type=Path, required=True, help="the bundle file to write")
    e.add_argument("--url", default=os.environ.get("JIANZHENG_URL", DEFAULT_URL))
    e.add_argument(
        "--token",
        default=os.environ.get("JIANZHENG_TOKEN"),
        help="a reviewer or archivist token (env JIANZHENG_TOKEN)",
    )
    e.set_defaults(func=cmd_bundle_export)


def _fail(msg: str) -> int:
    print(f"jianzheng: {msg}", file=sys.stderr)
    return 2


def cmd_bundle_export(args: argparse.Namespace) -> int:
    import httpx

    if not args.token:
        return _fail("give a reviewer or archivist token with --token or JIANZHENG_TOKEN")
    out: Path = args.output
    directory = out.parent if str(out.parent) else Path(".")
    if not directory.is_dir():
        return _fail(f"directory {directory} does not exist")
    url = f"{args.url.rstrip('/')}/v1/projects/{args.project}/bundle"
    params = {"files": "true"} if args.with_files else {}
    headers = {"Authorization": f"Bearer {args.token}"}
    timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
    fd, tmp = tempfile.mkstemp(prefix=".bundle-", suffix=".zip.tmp", dir=directory)
    total = 0
    try:
        with (
            os.fdopen(fd, "wb") as f,
            httpx.stream("GET", url, params=params, headers=headers, timeout=timeout) as r,
        ):
            if r.status_code != 200:
                r.read()
                return _fail(f"{url}: {r.status_code} {_error_message(r)}")
            for piece in r.iter_bytes():
                f.write(piece)
                total += len(piece)
            f.flush()
            os.fsync(f.fileno())
        if not zipfile.is_zipfile(tmp):
            return _fail(f"{url}: the download is not a complete zip (the stream was cut)")
        os.replace(tmp, out)
    except httpx.HTTPError as e:
        return _fail(f"{url}: {e}")
    finally:
        Path(tmp).unlink(missing_ok=True)
    print(f"jianzheng bundle export: {total} bytes written to {out}", file=sys.stderr)
    return 0


def _error_message(r: Any) -> str:
    try:
        err = r.json()["error"]
        return f"{err['code']}: {err['message']}"
    except (ValueError, KeyError, TypeError):
        return str(r.text[:200])


def audit_objects(data_dir: Path, engine: Any) -> bool:
    """``jianzheng audit --objects``: re-hash every stored object the records name.

    Prints one line per problem and a verdict; returns whether all objects matched.
    """
    from ledger.audit_objects import audit_objects as run
    from ledger.store import Store
    from storage.service import open_evidence_store

    objects = open_evidence_store(data_dir, engine)
    try:
        rep = run(Store(engine), objects)
    finally:
        close = getattr(objects, "close", None)
        if callable(close):
            close()
    print(f"objects: {rep.objects}  bytes re-hashed: {rep.bytes}")
    for p in rep.problems:
        print(f"PROBLEM: {p}")
    print(
        "audit --objects: OK, every stored object matches its records"
        if rep.ok
        else f"audit --objects: FAILED, {len(rep.problems)} problem(s)"
    )
    return rep.ok
