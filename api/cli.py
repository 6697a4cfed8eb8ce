"""The ``jianzheng`` command line: serve, token, audit, demo.

Every command exits 0 on success and non-zero with a one-line reason on failure.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api import cli_storage, cli_verify, cli_witness, limits, serve_options
from api.serve_options import DEFAULT_HOST, DEFAULT_PORT

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from ledger.service import Ledger
    from ledger.store import Store


def _fail(msg: str) -> int:
    print(f"jianzheng: {msg}", file=sys.stderr)
    return 2


def cmd_serve(args: argparse.Namespace) -> int:
    from api.serving import open_serving_ledger, serving_app
    from api.workers import settle_heap

    if args.workers < 1:
        return _fail("--workers must be at least 1")
    limits.raise_fd_limit()  # before the check: the cap is measured against the limit
    serve_limits = limits.from_args(args)
    try:
        serve_limits.check()
    except ValueError as e:
        return _fail(str(e))
    first_start = args.log_key is None and not (args.data / "log.key").exists()
    ledger = open_serving_ledger(args)
    try:
        _first_admin_token(ledger, args.data)
        info = ledger.info()
        url = f"http://{args.host}:{args.port}"
        print(f"jianzheng: serving {url}", flush=True)
        print(f"origin: {info.origin}", flush=True)
        if first_start and not args.origin:
            print(
                f"first start without --origin: the origin {info.origin} was derived from "
                "the host name and the log key; it is this log's name from now on",
                flush=True,
            )
        print(f"verifier key: {info.verifier_key}", flush=True)
        print(f"data: {args.data.resolve()}  log size: {info.size}", flush=True)
        if args.workers > 1:
            # The parent migrated the database and created the keys above; the workers
            # only open them. It serves nothing itself: it starts, watches and stops them.
            cli_witness.check_witnessing(ledger, args)
            print(f"workers: {args.workers}", flush=True)
        else:
            # The app's lifespan stops the witnessing threads; the ledger closes below.
            app = serving_app(ledger, args)
            settle_heap()
            _run_uvicorn(app, args, serve_limits)
            return 0
    finally:
        ledger.close()
    from api.workers import prepare_metrics_dir, supervise

    prepare_metrics_dir(args.data)
    return supervise(args.argv, args.host, args.port, args.workers)


def _run_uvicorn(app: Any, args: argparse.Namespace, serve_limits: limits.ServeLimits) -> None:
    import uvicorn

    uvicorn.run(
        app,
        # Request bodies without uvicorn's two copies, under the limits of api/limits.py.
        **limits.uvicorn_options(serve_limits),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def _first_admin_token(ledger: Ledger, data: Path) -> None:
    """On first start, create an admin token in a 0600 file, so the service is usable.

    The token goes to a file, not to the console, so that it never lands in a log.
    """
    from sqlalchemy import func, select

    from api.auth import create_token as create
    from ledger.models import TokenRow

    with ledger.store.reader() as conn:
        n = conn.scalar(select(func.count()).select_from(TokenRow))
    if n:
        return
    _, token = create(ledger.store, "admin", "first admin token")
    path = data / "admin.token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    print(f"first start: an admin token was written to {path.resolve()} (mode 0600)", flush=True)


def _token_store(args: argparse.Namespace) -> tuple[Store, Callable[[], None]]:
    from ledger.service import sqlite_url
    from ledger.store import Store, make_engine, migrate

    args.data.mkdir(parents=True, exist_ok=True)
    engine = make_engine(args.db or sqlite_url(args.data))
    migrate(engine)
    return Store(engine), engine.dispose


def _parse_expiry(text: str | None) -> datetime | None:
    """``30d``, ``12h`` or an RFC 3339 date-time with an offset."""
    from datetime import UTC, datetime, timedelta

    if text is None:
        return None
    units = {"d": 86400, "h": 3600, "m": 60}
    if text[:-1].isdigit() and text[-1] in units:
        return datetime.now(UTC) + timedelta(seconds=int(text[:-1]) * units[text[-1]])
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError(f"--expires {text!r} needs an offset, e.g. 2027-01-01T00:00:00+08:00")
    return dt


def cmd_token_create(args: argparse.Namespace) -> int:
    from api.auth import ROLES, create_token, make_scope

    if args.role not in ROLES:
        return _fail(f"unknown role {args.role!r}: use one of {', '.join(ROLES)}")
    try:
        scope = make_scope(args.project, args.trade_type)
        expires = _parse_expiry(args.expires)
    except ValueError as e:
        return _fail(str(e))
    store, close = _token_store(args)
    try:
        token_id, token = create_token(
            store, args.role, args.label or "", expires_at=expires, scope=scope
        )
    finally:
        close()
    print(f"token id: {token_id}  role: {args.role}  scope: {scope.to_json()}", file=sys.stderr)
    print(token)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    import json

    from api.auth import list_tokens

    store, close = _token_store(args)
    try:
        for t in list_tokens(store):
            print(json.dumps(t, ensure_ascii=False))
    finally:
        close()
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from api.auth import revoke_token

    store, close = _token_store(args)
    try:
        token_id = revoke_token(store, args.token)
    except LookupError:
        return _fail("no such token")
    finally:
        close()
    print(f"revoked {token_id}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from ledger.audit import audit
    from ledger.keys import LogKeyError, load_log_key_file, load_or_create_log_key
    from ledger.service import sqlite_url
    from ledger.store import Store, make_engine

    if args.log_key is not None:
        try:
            signer = load_log_key_file(args.log_key, None)
        except LogKeyError as e:
            return _fail(str(e))
    elif not (args.data / "log.key").exists():
        return _fail(f"no log key in {args.data}")
    else:
        signer = load_or_create_log_key(args.data, None)
    engine = make_engine(args.db or sqlite_url(args.data))
    try:
        with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("re-deriving the log", total=None)
            rep = audit(Store(engine), signer.verifier, lambda n: bar.update(task, completed=n))
        objects_ok = cli_verify.audit_objects(args.data, engine) if args.objects else True
    finally:
        engine.dispose()
    print(f"records: {rep.records}  checkpoints: {rep.checkpoints}  tiles: {rep.tiles}")
    for p in rep.problems:
        print(f"PROBLEM: {p}")
    print(
        "audit: OK, the database matches every signed checkpoint"
        if rep.ok
        else f"audit: FAILED, {len(rep.problems)} problem(s)"
    )
    return 0 if rep.ok and objects_ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from api.demo import run_demo

    return run_demo(args.url, args.token, events=args.events, project=args.project)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jianzheng", description="Jianzheng 见证 audit ledger")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the ledger HTTP service")
    serve_options.add_serve_arguments(p)
    p.set_defaults(func=cmd_serve)

    t = sub.add_parser("token", help="manage bearer tokens")
    tsub = t.add_subparsers(dest="token_command", required=True)
    tc = tsub.add_parser("create", help="create a token; prints it as the last line")
    serve_options.add_store_args(tc)
    tc.add_argument("--role", required=True, help="platform, reviewer, archivist or admin")
    tc.add_argument("--label", default="")
    tc.add_argument(
        "--project",
        action="append",
        default=[],
        help="limit the token to this project (repeatable); default: all projects",
    )
    tc.add_argument(
        "--trade-type",
        action="append",
        default=[],
        help="limit the token to projects of this trade type (repeatable)",
    )
    tc.add_argument(
        "--expires", default=None, help="expiry: 30d, 12h, or an RFC 3339 date-time; default: never"
    )
    tc.set_defaults(func=cmd_token_create)
    tl = tsub.add_parser("list", help="list tokens (ids, roles, scopes; never the tokens)")
    serve_options.add_store_args(tl)
    tl.set_defaults(func=cmd_token_list)
    tr = tsub.add_parser("revoke", help="revoke a token, by id or by the token itself")
    serve_options.add_store_args(tr)
    tr.add_argument("token", help="token id or token")
    tr.set_defaults(func=cmd_token_revoke)

    a = sub.add_parser("audit", help="re-derive every tile and root and compare with checkpoints")
    serve_options.add_store_args(a)
    a.add_argument("--objects", action="store_true", help="also re-hash every stored object")
    a.set_defaults(func=cmd_audit)

    d = sub.add_parser("demo", help="post a realistic tender lifecycle and verify the receipts")
    d.add_argument("--url", default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}")
    d.add_argument(
        "--token",
        default=os.environ.get("JIANZHENG_TOKEN"),
        help="a platform or admin token (env JIANZHENG_TOKEN)",
    )
    d.add_argument("--project", default=None, help="project code (default: a new one)")
    d.add_argument("--events", type=int, default=50)
    d.set_defaults(func=cmd_demo)
    cli_storage.register(sub)  # upload, fetch
    cli_witness.register(sub)  # witness serve|add-log|clear|evidence|key, monitor
    cli_verify.register(sub)  # verify, bundle export
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    from ledger.keys import LogKeyError
    from ledger.store import StoreError

    try:
        code: int = args.func(args)
    except (LogKeyError, StoreError) as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
