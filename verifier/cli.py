"""The offline verifier's command line: ``jianzheng verify``, also ``python -m verifier``.

Standard library and the verifier package only, so a reviewer can run it on a machine
with nothing but ``cryptography`` and ``asn1crypto`` installed. It prints two verdicts
first, integrity and compliance, each with its reasons (issue 12); its exit code is
:data:`EXIT_CODES_HELP`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from verifier.report_model import VerificationReport
    from verifier.trust import TrustPolicy


#: The exit codes of ``jianzheng verify`` / ``python -m verifier``, as --help states them.
EXIT_CODES_HELP = (
    "Exit codes: 0 both verdicts hold (integrity and compliance); "
    "1 integrity fails (or cannot be established): the bundle is not what the log "
    "committed, signed and witnessed; "
    "2 usage error: bad arguments, an unreadable trust file, or a file that is not an "
    "evidence bundle; "
    "3 integrity holds but compliance does not: a process rule fails, warns or cannot be "
    "evaluated. Indicators never change the exit code."
)
VERIFY_DESCRIPTION = (
    "Verify an evidence bundle offline. Two verdicts are printed first, each with its "
    "reasons: integrity (完整性/真实性: signatures, witness quorum, timestamp, inclusion, "
    "chains, files, payloads, sealed commitments) and compliance (合规性: the process rules)."
)


def add_verify_arguments(v: argparse.ArgumentParser) -> None:
    """The ``verify`` options: BUNDLE, --trust/--no-trust, --format, -o, and tuning."""
    v.add_argument("bundle", type=Path, help="the evidence bundle (.zip)")
    trust = v.add_mutually_exclusive_group()
    trust.add_argument(
        "--trust",
        type=Path,
        help="trust file: lines 'log <vkey>', 'witness <vkey>', 'quorum <k>' "
        "(optional 'tsa-ca <sha256>')",
    )
    trust.add_argument(
        "--no-trust",
        action="store_true",
        help="accept a check of internal consistency only (keys taken from the bundle)",
    )
    v.add_argument("--format", choices=("text", "json", "html"), default="text")
    v.add_argument("-o", "--output", type=Path, help="write the report here (default: stdout)")
    v.add_argument("--skip-files", action="store_true", help="do not re-hash the attachment files")
    v.add_argument(
        "--workers", type=int, default=None, help="threads hashing files (default: CPUs, max 4)"
    )


def _fail(msg: str) -> int:
    print(f"jianzheng verify: {msg}", file=sys.stderr)
    return 2


def _load_trust(path: Path) -> TrustPolicy | str:
    """The trust file's policy, or why it cannot be used (both commands read it alike)."""
    from verifier.trust import TrustError, parse_trust

    try:
        return parse_trust(path.read_bytes())
    except OSError as e:
        return f"cannot read trust file {path}: {e.strerror}"
    except TrustError as e:
        return f"trust file {path}: {e}"


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file renamed into place: never half a report."""
    fd, tmp = tempfile.mkstemp(prefix=".report-", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_verify(args: argparse.Namespace) -> int:
    """Verify ``args.bundle`` and print or write the report; returns the exit code."""
    from verifier.bundle import BundleError, verify_bundle
    from verifier.report import render_html, render_json, render_text

    policy = None
    if args.trust is not None:
        loaded = _load_trust(args.trust)
        if isinstance(loaded, str):
            return _fail(loaded)
        policy = loaded
    if args.workers is not None and args.workers < 1:
        return _fail("--workers must be at least 1")
    try:
        report = verify_bundle(
            args.bundle,
            policy,
            allow_untrusted=args.no_trust,
            check_files=not args.skip_files,
            workers=args.workers,
        )
    except BundleError as e:
        return _fail(f"{args.bundle}: {e}")
    render = {"text": render_text, "json": render_json, "html": render_html}[args.format]
    text = render(report)
    if args.output is not None:
        try:
            _write_atomic(args.output, text.encode())
        except OSError as e:
            return _fail(f"cannot write {args.output}: {e.strerror}")
        print(f"jianzheng verify: report written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if policy is None:
        print(
            "jianzheng verify: no --trust file: only internal consistency was checked"
            + ("" if args.no_trust else " (give --trust FILE, or --no-trust to accept that)"),
            file=sys.stderr,
        )
    print(f"jianzheng verify: {verdict_summary(report)}", file=sys.stderr)
    return report.exit_code


def verdict_summary(report: VerificationReport) -> str:
    """One line for stderr: both verdicts and their counts (VERIFIED names integrity)."""
    integrity, compliance = report.integrity, report.compliance
    by: dict[str, dict[str, int]] = {"integrity": {}, "compliance": {}}
    for c in report.checks:
        by[c.aspect][c.status] = by[c.aspect].get(c.status, 0) + 1
    i, k = by["integrity"], by["compliance"]
    return (
        f"integrity {integrity.word[1]} ({'VERIFIED' if integrity.holds else 'NOT VERIFIED'}: "
        f"{i.get('fail', 0)} failed, {i.get('cannot_evaluate', 0)} cannot evaluate, "
        f"{i.get('warn', 0)} warnings); compliance {compliance.word[1]} "
        f"({k.get('fail', 0)} failed, {k.get('warn', 0)} warnings, "
        f"{k.get('cannot_evaluate', 0)} cannot evaluate, {k.get('pass', 0)} passed, "
        f"{k.get('not_applicable', 0)} not applicable)"
        + (f"; {len(report.indicators)} indicator(s) to examine" if report.indicators else "")
    )


def add_receipt_arguments(v: argparse.ArgumentParser) -> None:
    """The ``receipt verify`` options: RECEIPT, --event, --log-key, --trust, --tsa-ca."""
    v.add_argument("receipt", type=Path, help="the receipt (JSON) the ledger answered")
    v.add_argument("--event", type=Path, required=True, help="the event (JSON) as posted")
    v.add_argument(
        "--log-key",
        required=True,
        help="the log's verifier key (<name>+<id>+<base64>), or a file holding it",
    )
    v.add_argument(
        "--trust",
        type=Path,
        help="trust file: the witnesses and quorum whose cosignatures must be on the "
        "checkpoint (and 'tsa-ca <sha256>' to demand a timestamp)",
    )
    v.add_argument("--tsa-ca", type=Path, help="the TSA's CA certificate (PEM) for the timestamp")


def run_receipt_verify(args: argparse.Namespace) -> int:
    """Verify a receipt against the posted event offline: 0 holds, 1 not, 2 unreadable."""
    import json

    from verifier.note import NoteError, Verifier, parse_vkey
    from verifier.receipt import ReceiptError, check_receipt

    def fail(msg: str) -> int:
        print(f"jianzheng receipt verify: {msg}", file=sys.stderr)
        return 2

    docs = []
    for what, path in (("receipt", args.receipt), ("event", args.event)):
        try:
            docs.append(json.loads(path.read_bytes()))
        except OSError as e:
            return fail(f"cannot read the {what} {path}: {e.strerror}")
        except ValueError as e:
            return fail(f"the {what} {path} is not JSON: {e}")
    receipt, event = docs
    if isinstance(receipt, dict) and "receipt" in receipt and "index" not in receipt:
        receipt = receipt["receipt"]  # GET /v1/events/{index} wraps it
    key_text = args.log_key
    if os.path.exists(key_text):
        try:
            key_text = Path(key_text).read_text().strip()
        except OSError as e:
            return fail(f"cannot read the log key {args.log_key}: {e.strerror}")
    try:
        log = parse_vkey(key_text)
    except NoteError as e:
        return fail(f"--log-key: {e}")
    witnesses: tuple[Verifier, ...] = ()
    quorum = 0
    tsa_required = False
    tsa_pem = None
    if args.trust is not None:
        loaded = _load_trust(args.trust)
        if isinstance(loaded, str):
            return fail(loaded)
        policy = loaded
        if policy.log.vkey != log.vkey:
            return fail("the trust file names another log key than --log-key")
        witnesses, quorum = policy.witnesses, policy.quorum
        tsa_required = policy.tsa_ca_sha256 is not None
    if args.tsa_ca is not None:
        try:
            tsa_pem = args.tsa_ca.read_bytes()
        except OSError as e:
            return fail(f"cannot read {args.tsa_ca}: {e.strerror}")
        if tsa_required:
            import hashlib

            from cryptography import x509
            from cryptography.hazmat.primitives.serialization import Encoding

            try:
                der = x509.load_pem_x509_certificate(tsa_pem).public_bytes(Encoding.DER)
            except ValueError:
                return fail(f"{args.tsa_ca} is not a PEM certificate")
            if hashlib.sha256(der).hexdigest() != policy.tsa_ca_sha256:
                print(
                    f"jianzheng receipt verify: NOT VERIFIED: {args.tsa_ca} is not the TSA CA "
                    "the trust file names",
                    file=sys.stderr,
                )
                return 1
    elif tsa_required:
        return fail("the trust file demands a timestamp: give the TSA's CA with --tsa-ca")
    try:
        held = check_receipt(
            receipt,
            event,
            log,
            witnesses=witnesses,
            quorum=quorum,
            tsa_ca_pem=tsa_pem,
            tsa_required=tsa_required,
        )
    except ReceiptError as e:
        print(f"jianzheng receipt verify: NOT VERIFIED: {e}", file=sys.stderr)
        return 1
    for line in held:
        print(f"  ok  {line}")
    if args.trust is None:
        print(
            "jianzheng receipt verify: no --trust file: witness cosignatures were not checked",
            file=sys.stderr,
        )
    print("jianzheng receipt verify: VERIFIED", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m verifier BUNDLE [--trust FILE] ...``: the same as ``jianzheng verify``."""
    p = argparse.ArgumentParser(
        prog="python -m verifier", description=VERIFY_DESCRIPTION, epilog=EXIT_CODES_HELP
    )
    add_verify_arguments(p)
    return run_verify(p.parse_args(argv))
