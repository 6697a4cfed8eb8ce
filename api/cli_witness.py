"""CLI for witnessing: ``jianzheng witness ...``, ``jianzheng monitor``, and ``serve`` options.

- ``jianzheng witness serve --data DIR --host H --port P [--name NAME] [--prefix /witness]
  [--refuse-after-equivocation] [--webhook URL]``: a standalone C2SP tlog-witness (its key
  is created on first use, named ``--name``); its submission prefix is
  ``http://H:P/witness``.
- ``jianzheng witness add-log --data DIR --vkey VKEY``: witness the log with this key.
- ``jianzheng witness clear --data DIR --origin ORIGIN``: accept a log again after an
  operator examined its equivocation evidence; ``witness evidence`` lists the evidence.
- ``jianzheng monitor --log URL --vkey VKEY [--witness VKEY ...] [--witness-evidence URL ...]
  [--state DIR] [--once]``.
- ``jianzheng serve ... --witness VKEY@URL --witness-quorum K --tsa-url URL --tsa-ca PEM``;
  URL is the witness's submission prefix (tlog-witness).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.service import Ledger
    from ledger.witnessing.submitter import WitnessEndpoint, Witnessing, WorkerWitnessing
    from ledger.witnessing.timestamper import Timestamper


def _default_dir(sub: str) -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "jianzheng" / sub


def _fail(msg: str) -> int:
    print(f"jianzheng: {msg}", file=sys.stderr)
    return 2


# --- jianzheng serve: witnessing and trusted time -------------------------------------------


def _witness_arg(spec: str) -> WitnessEndpoint:
    from ledger.witnessing.submitter import WitnessConfigError, WitnessEndpoint

    try:
        return WitnessEndpoint.parse(spec)
    except WitnessConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """The witnessing and TSA options of ``jianzheng serve``."""
    p.add_argument(
        "--witness",
        action="append",
        default=[],
        type=_witness_arg,
        metavar="VKEY@URL",
        help="a witness to gather cosignatures from (repeatable); URL is its C2SP "
        "tlog-witness submission prefix (the log posts to URL/add-checkpoint), for a "
        "Jianzheng witness http://host:port/witness",
    )
    p.add_argument(
        "--witness-quorum",
        type=int,
        default=None,
        metavar="K",
        help="cosignatures that make a checkpoint witnessed (default: all witnesses)",
    )
    p.add_argument(
        "--tsa-url",
        default=None,
        help="an external RFC 3161 TSA (default: the built-in TSA, keys in <data>/tsa)",
    )
    p.add_argument(
        "--tsa-ca", type=Path, default=None, help="PEM CA certificate of the --tsa-url TSA"
    )
    p.add_argument(
        "--monitor-state",
        type=Path,
        default=os.environ.get("JIANZHENG_MONITOR_STATE") or None,
        metavar="DIR",
        help="the --state directory of a `jianzheng monitor` of this log, whose alarms the "
        "console's log status page shows (env JIANZHENG_MONITOR_STATE)",
    )


def make_timestamper(ledger: Ledger, args: argparse.Namespace) -> Timestamper:
    """The TSA ``serve`` was told to use; the built-in one's keys are created on first use."""
    from witness.tsa import BuiltinTimestamper, HttpTimestamper, TimestampAuthority

    if args.tsa_url:
        if args.tsa_ca is None:
            raise SystemExit(_fail("--tsa-url needs --tsa-ca, the TSA's CA certificate (PEM)"))
        try:
            ca = args.tsa_ca.read_bytes()
        except OSError as e:
            raise SystemExit(_fail(f"cannot read --tsa-ca: {e}")) from None
        return HttpTimestamper(args.tsa_url, ca)
    return BuiltinTimestamper(
        TimestampAuthority.load_or_create(ledger.data_dir, ledger.signer.name)
    )


def _describe(args: argparse.Namespace, quorum: int, timestamper: Timestamper) -> None:
    if args.witness:
        print(
            f"witnesses: {len(args.witness)}, quorum {quorum}: "
            + ", ".join(e.verifier.name for e in args.witness),
            flush=True,
        )
    print(f"timestamps: {timestamper.source}", flush=True)


def check_witnessing(ledger: Ledger, args: argparse.Namespace) -> None:
    """Check the witnessing options and say what they are, without starting anything.

    ``serve --workers N`` runs this once in the parent, so the TSA keys exist before the
    worker processes start and a bad option fails before any of them does.
    """
    from ledger.witnessing.submitter import WitnessConfigError, witness_policy

    timestamper = make_timestamper(ledger, args)
    try:
        policy = witness_policy(args.witness, args.witness_quorum)
    except WitnessConfigError as e:
        raise SystemExit(_fail(str(e))) from None
    _describe(args, policy.quorum, timestamper)


def start_witnessing(
    ledger: Ledger, args: argparse.Namespace, *, workers: int = 1
) -> Witnessing | WorkerWitnessing:
    """Start gathering cosignatures and timestamps for ``ledger`` as ``serve`` was told to.

    With several worker processes, one of them leads and the others follow
    (:class:`ledger.witnessing.submitter.WorkerWitnessing`); the parent ran
    :func:`check_witnessing`. On PostgreSQL the leader is elected by a session advisory
    lock across every process of every node on the database, one process or several.
    """
    from ledger.witnessing.leader import PgLeaderLock
    from ledger.witnessing.submitter import WitnessConfigError, Witnessing, WorkerWitnessing

    timestamper = make_timestamper(ledger, args)
    if ledger.store.engine.dialect.name == "postgresql":
        # Several nodes may share the database: the leader is elected there (issue 16).
        if workers == 1:
            check_witnessing(ledger, args)
        lock = PgLeaderLock(ledger.store.engine, idle_timeout=PgLeaderLock.IDLE_TIMEOUT)
        return WorkerWitnessing(ledger, args.witness, args.witness_quorum, timestamper, lock)
    if workers > 1:
        return WorkerWitnessing(ledger, args.witness, args.witness_quorum, timestamper)
    try:
        w = Witnessing.start(ledger, args.witness, args.witness_quorum, timestamper)
    except WitnessConfigError as e:
        raise SystemExit(_fail(str(e))) from None
    _describe(args, w.policy.quorum, timestamper)
    return w


# --- jianzheng witness ... ------------------------------------------------------------------


def cmd_witness_serve(args: argparse.Namespace) -> int:
    from witness.server import WitnessKeyError, serve

    try:
        serve(
            args.data,
            args.host,
            args.port,
            args.name,
            args.log_level,
            prefix=args.prefix,
            refuse_after_equivocation=args.refuse_after_equivocation,
            webhook=args.webhook,
        )
    except (WitnessKeyError, ValueError) as e:
        return _fail(str(e))
    return 0


def cmd_witness_add_log(args: argparse.Namespace) -> int:
    from witness.server import WitnessKeyError, load_or_create_witness_key
    from witness.state import WitnessStateError, WitnessStore

    try:
        signer = load_or_create_witness_key(args.data, args.name)
        store = WitnessStore.open(args.data)
        try:
            v = store.add_log(args.vkey)
        finally:
            store.close()
    except (WitnessKeyError, WitnessStateError) as e:
        return _fail(str(e))
    print(f"witnessing {v.name} ({v.key_id.hex()})", file=sys.stderr)
    print(f"witness verifier key: {signer.verifier.vkey}", file=sys.stderr)
    print(signer.verifier.vkey)
    return 0


def cmd_witness_key(args: argparse.Namespace) -> int:
    from witness.server import WitnessKeyError, load_or_create_witness_key

    try:
        signer = load_or_create_witness_key(args.data, args.name)
    except WitnessKeyError as e:
        return _fail(str(e))
    print(signer.verifier.vkey)
    return 0


def cmd_witness_clear(args: argparse.Namespace) -> int:
    from witness.state import WitnessStateError, WitnessStore

    store = WitnessStore.open(args.data)
    try:
        ids = store.clear(args.origin)
    except WitnessStateError as e:
        return _fail(str(e))
    finally:
        store.close()
    cleared = ", ".join(f"#{i}" for i in ids) or "none open"
    print(f"{args.origin}: accepted again; evidence cleared: {cleared} (kept on record)")
    return 0


def cmd_witness_evidence(args: argparse.Namespace) -> int:
    from witness.state import WitnessStore

    store = WitnessStore.open(args.data)
    try:
        after = 0
        while True:
            page: list[dict[str, Any]] = store.evidence(after)
            for e in page:
                print(json.dumps(e, ensure_ascii=False))
            if not page:
                break
            after = page[-1]["id"]
    finally:
        store.close()
    return 0


# --- jianzheng monitor ------------------------------------------------------------------------


def cmd_monitor(args: argparse.Namespace) -> int:
    from verifier.note import NoteError, parse_vkey
    from witness.monitor import Monitor, run_monitor

    try:
        log_key = parse_vkey(args.vkey)
        witnesses = [parse_vkey(v) for v in args.witness]
    except NoteError as e:
        return _fail(str(e))
    mon = Monitor(args.log, log_key, witnesses, args.state, witness_evidence=args.witness_evidence)
    try:
        return run_monitor(mon, once=args.once, interval=args.interval, webhook=args.webhook)
    finally:
        mon.close()


def register(sub: Any) -> None:
    """Add ``witness`` and ``monitor`` to the ``jianzheng`` command's subparsers."""
    w = sub.add_parser("witness", help="run a C2SP tlog-witness and manage it")
    wsub = w.add_subparsers(dest="witness_command", required=True)

    def data_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data",
            type=Path,
            default=_default_dir("witness"),
            help="the witness's data directory (key and database)",
        )

    def name_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--name",
            default=None,
            help="the witness key's name when it is created, e.g. witness.example.org/w1 "
            "(default: <host name>/witness)",
        )

    s = wsub.add_parser(
        "serve", help="serve C2SP tlog-witness (POST <prefix>/add-checkpoint, prefix /witness)"
    )
    data_arg(s)
    name_arg(s)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8100)
    s.add_argument(
        "--prefix",
        default="/witness",
        help="URL path the witness serves under (default /witness; '/' for the root): the "
        "submission prefix logs are given is http://host:port followed by it",
    )
    s.add_argument(
        "--refuse-after-equivocation",
        action="store_true",
        help="answer 403 to a log once it signed two checkpoints of one size with different "
        "roots, until 'jianzheng witness clear' (default: keep the evidence, raise the "
        "alarm, and go on cosigning what extends the checkpoint cosigned before)",
    )
    s.add_argument(
        "--webhook",
        default=None,
        help="POST each new equivocation's evidence as JSON to this URL",
    )
    s.add_argument("--log-level", default="warning")
    s.set_defaults(func=cmd_witness_serve)

    a = wsub.add_parser("add-log", help="witness a log; prints this witness's verifier key")
    data_arg(a)
    name_arg(a)
    a.add_argument("--vkey", required=True, help="the log's verifier key (its name = origin)")
    a.set_defaults(func=cmd_witness_add_log)

    k = wsub.add_parser("key", help="print this witness's verifier key (creating the key)")
    data_arg(k)
    name_arg(k)
    k.set_defaults(func=cmd_witness_key)

    c = wsub.add_parser("clear", help="accept a log again after its equivocation was examined")
    data_arg(c)
    c.add_argument("--origin", required=True)
    c.set_defaults(func=cmd_witness_clear)

    e = wsub.add_parser("evidence", help="print the evidence kept, one JSON object a line")
    data_arg(e)
    e.set_defaults(func=cmd_witness_evidence)

    m = sub.add_parser(
        "monitor", help="follow a log; exit non-zero with evidence on a fork or bad signature"
    )
    m.add_argument("--log", required=True, help="the log's base URL, e.g. http://127.0.0.1:8000")
    m.add_argument("--vkey", required=True, help="the log's verifier key")
    m.add_argument(
        "--witness", action="append", default=[], metavar="VKEY", help="a witness key to check"
    )
    m.add_argument(
        "--witness-evidence",
        action="append",
        default=[],
        metavar="URL",
        help="a Jianzheng witness's prefix (e.g. http://host:8100/witness): fork evidence it "
        "holds against this log, not yet cleared, is a finding (repeatable)",
    )
    m.add_argument(
        "--state",
        type=Path,
        default=_default_dir("monitor"),
        help="directory for the last verified checkpoint and evidence files",
    )
    m.add_argument("--once", action="store_true", help="check the current checkpoint and exit")
    m.add_argument("--interval", type=float, default=30.0, help="seconds between checks")
    m.add_argument("--webhook", default=None, help="POST the evidence as JSON to this URL")
    m.set_defaults(func=cmd_monitor)
