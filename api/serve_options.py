"""The options of ``jianzheng serve``, shared by the command line and its worker processes.

``api/cli.py`` builds the whole ``jianzheng`` parser with them; a worker process of
``serve --workers N`` (``api/workers.py``) parses its ``serve`` arguments with
:func:`parse_serve_argv`, so the workers never import the command line (no import cycle).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from api import alerting, cli_witness, limits

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "jianzheng"


def add_store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        type=Path,
        default=default_data_dir(),
        help="data directory holding the log key (and the SQLite database)",
    )
    p.add_argument(
        "--db",
        default=os.environ.get("JIANZHENG_DB"),
        help="database URL, e.g. postgresql+psycopg://user@host/db "
        "(default: SQLite in --data; env JIANZHENG_DB)",
    )
    p.add_argument(
        "--log-key",
        type=Path,
        default=os.environ.get("JIANZHENG_LOG_KEY") or None,
        metavar="FILE",
        help="the log's signing key file, the same on every node (note private key "
        "PRIVATE+KEY+..., or an Ed25519 PKCS#8 PEM with --origin); default: log.key in "
        "--data, created on first start (env JIANZHENG_LOG_KEY)",
    )


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """Every option of ``jianzheng serve``."""
    add_store_args(p)
    p.add_argument("--host", default=DEFAULT_HOST)
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument(
        "--origin",
        default=os.environ.get("JIANZHENG_ORIGIN"),
        help="log origin (key name), fixed on first start",
    )
    p.add_argument("--max-batch", type=int, default=4096, help="most events in one commit")
    p.add_argument(
        "--max-delay", type=float, default=2.0, help="milliseconds a batch waits for more events"
    )
    p.add_argument("--log-level", default="warning")
    p.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("JIANZHENG_WORKERS", "1")),
        help="HTTP worker processes sharing the database (default 1; env JIANZHENG_WORKERS); "
        "each applies --rate-limit on its own",
    )
    p.add_argument(
        "--rate-limit",
        type=float,
        default=1000.0,
        help="requests per second per token (default 1000; 0 turns it off)",
    )
    p.add_argument(
        "--auth-failure-rate",
        type=float,
        default=10.0,
        help="requests per second without a valid token (401) per client address, in "
        "bursts of twice that; past it 429 before the database is asked (default 10; "
        "0 turns it off)",
    )
    p.add_argument(
        "--publish-bucket",
        default=os.environ.get("JIANZHENG_PUBLISH_BUCKET") or None,
        metavar="BUCKET",
        help="publish checkpoint, tiles and entry bundles (C2SP tlog-tiles) to this bucket "
        "on the JIANZHENG_S3_* server, readable by anyone (env JIANZHENG_PUBLISH_BUCKET)",
    )
    p.add_argument(
        "--log-from-bucket",
        action="store_true",
        help="answer /log/tile/* from the --publish-bucket bucket (the database only for "
        "tiles not published yet)",
    )
    cli_witness.add_serve_options(p)  # --witness VKEY@URL, --witness-quorum K, --tsa-url
    limits.add_arguments(p)  # --header-timeout, --max-connections, --uploads-per-token, ...
    alerting.add_arguments(p)  # --alert-access-threshold, --alert-retry-cap, ...


def parse_serve_argv(argv: list[str]) -> argparse.Namespace:
    """``argv`` of ``jianzheng serve ...`` (the command name first), parsed as the command
    line parses it."""
    parser = argparse.ArgumentParser(prog="jianzheng")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_arguments(sub.add_parser("serve"))
    return parser.parse_args(argv)
