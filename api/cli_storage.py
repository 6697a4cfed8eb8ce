"""``jianzheng upload`` and ``jianzheng fetch``: evidence files to and from the service.

``upload`` hashes the file first and announces its SHA-256 (``X-Content-SHA256``), so the
service refuses the upload if a single byte differs on the way and stores it straight
under its content address. ``fetch`` hashes while it downloads, writes to a ``.part``
file, and keeps the file only when it has exactly the requested SHA-256, under the name the
citing record gives it (the service's ``Content-Disposition``) unless told otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import mimetypes
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
PIECE = 1 << 20
CONNECT_TIMEOUT = 10.0
#: Longest silence from the service in the middle of a transfer.
IO_TIMEOUT = 300.0
EXIT_FAILED = 1


def _fail(msg: str, code: int = EXIT_FAILED) -> int:
    print(f"jianzheng: {msg}", file=sys.stderr)
    return code


def _progress() -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=not sys.stderr.isatty(),
        # The bar goes to stderr: stdout carries the upload's JSON, perhaps into a pipe.
        console=Console(stderr=True),
    )


def _error_text(r: Any) -> str:
    try:
        err = r.json()["error"]
        return f"{r.status_code} {err['code']}: {err['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{r.status_code}: {r.text[:300]}"


def _hash_file(path: Path, advance: Callable[[int], None]) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while piece := f.read(PIECE):
            h.update(piece)
            advance(len(piece))
    return h.hexdigest()


def _pieces(path: Path, advance: Callable[[int], None]) -> Iterator[bytes]:
    with path.open("rb") as f:
        while piece := f.read(PIECE):
            advance(len(piece))
            yield piece


def cmd_upload(args: argparse.Namespace) -> int:
    import httpx

    path: Path = args.file
    if not path.is_file():
        return _fail(f"{path} is not a file")
    if not args.token:
        return _fail("give a platform token with --token or JIANZHENG_TOKEN", 2)
    size = path.stat().st_size
    media = args.media_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    with _progress() as bar:
        task = bar.add_task(f"hashing {path.name}", total=size)
        digest = _hash_file(path, lambda n: bar.advance(task, n))
        bar.update(task, description=f"uploading {path.name}", completed=0)
        headers = {
            "Authorization": f"Bearer {args.token}",
            "X-Content-SHA256": digest,
            "Content-Type": media,
            "Content-Length": str(size),
        }
        timeout = httpx.Timeout(IO_TIMEOUT, connect=CONNECT_TIMEOUT)
        try:
            with httpx.Client(base_url=args.url, timeout=timeout) as http:
                r = http.post(
                    "/v1/objects",
                    content=_pieces(path, lambda n: bar.advance(task, n)),
                    headers=headers,
                )
        except httpx.HTTPError as e:
            return _fail(f"upload to {args.url} failed: {e}")
    if r.status_code not in (200, 201):
        return _fail(f"upload refused: {_error_text(r)}")
    body = r.json()
    if body.get("sha256") != digest or body.get("size") != size:
        return _fail(
            f"the service recorded sha256 {body.get('sha256')} size {body.get('size')}, "
            f"but the file has sha256 {digest} size {size}"
        )
    print(json.dumps(body, ensure_ascii=False))
    state = "stored" if r.status_code == 201 else "already stored"
    print(f"{state}: {digest} ({size} bytes)", file=sys.stderr)
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    import httpx

    want = args.sha256.strip().lower()
    if len(want) != 64 or any(c not in "0123456789abcdef" for c in want):
        return _fail(f"{args.sha256!r} is not a SHA-256 (64 hex digits)", 2)
    if not args.token:
        return _fail("give a reader token with --token or JIANZHENG_TOKEN", 2)
    out: Path = args.output or Path(want)
    part = out.with_name(out.name + ".part")
    h = hashlib.sha256()
    got = 0
    total: int | None = None
    timeout = httpx.Timeout(IO_TIMEOUT, connect=CONNECT_TIMEOUT)
    headers = {"Authorization": f"Bearer {args.token}"}
    try:
        with (
            httpx.Client(base_url=args.url, timeout=timeout, headers=headers) as http,
            http.stream("GET", f"/v1/objects/{want}") as r,
        ):
            if r.status_code != 200:
                r.read()
                return _fail(f"fetch refused: {_error_text(r)}")
            if args.output is None and not args.name_by_hash:
                named = disposition_name(r.headers.get("content-disposition"))
                if named is not None:
                    out = Path(named)
                    part = out.with_name(out.name + ".part")
            total = int(r.headers.get("content-length", "0")) or None
            with _progress() as bar, part.open("wb") as f:
                task = bar.add_task(f"fetching {want[:12]}…", total=total)
                for piece in r.iter_bytes(PIECE):
                    h.update(piece)
                    f.write(piece)
                    got += len(piece)
                    bar.advance(task, len(piece))
                f.flush()
                os.fsync(f.fileno())
    except (httpx.HTTPError, OSError) as e:
        with contextlib.suppress(OSError):
            part.unlink()
        return _fail(f"fetch from {args.url} failed: {e}")
    actual = h.hexdigest()
    if actual != want or (total is not None and got != total):
        with contextlib.suppress(OSError):
            part.unlink()
        return _fail(
            f"MISMATCH: received {got} bytes with SHA-256 {actual}, not the requested {want}; "
            "the download was discarded"
        )
    os.replace(part, out)
    print(f"{out}: {got} bytes, SHA-256 {want} verified", file=sys.stderr)
    return 0


def disposition_name(header: str | None) -> str | None:
    """The file name a ``Content-Disposition`` header gives (RFC 6266: ``filename*`` in
    RFC 8187 form first, else ``filename``), reduced to a safe name in the current
    directory; None when there is none or it is unsafe."""
    if not header:
        return None
    params: dict[str, str] = {}
    for m in _DISPOSITION_PARAM.finditer(header):
        key, value = m.group(1).lower(), m.group(2)
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1].replace('\\"', '"')
        params.setdefault(key, value)
    name = None
    star = params.get("filename*")
    if star is not None:
        charset, _, rest = star.partition("'")
        _, _, encoded = rest.partition("'")
        if charset.lower() == "utf-8":
            try:
                name = urllib.parse.unquote(encoded, encoding="utf-8", errors="strict")
            except UnicodeDecodeError:
                name = None
    if name is None:
        name = params.get("filename")
    if name is None:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    if name in ("", ".", "..") or not name.isprintable() or len(name.encode()) > 255:
        return None
    return name


_DISPOSITION_PARAM = re.compile(r';\s*([A-Za-z*]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def register(sub: Any) -> None:
    """Add ``upload`` and ``fetch`` to the ``jianzheng`` command's subparsers."""
    url_help = "service URL (env JIANZHENG_URL)"
    up = sub.add_parser("upload", help="upload an evidence file; prints its sha256 and chunk root")
    up.add_argument("file", type=Path)
    up.add_argument("--url", default=os.environ.get("JIANZHENG_URL", DEFAULT_URL), help=url_help)
    up.add_argument(
        "--token",
        default=os.environ.get("JIANZHENG_TOKEN"),
        help="a platform token (env JIANZHENG_TOKEN)",
    )
    up.add_argument("--media-type", default=None, help="default: guessed from the file name")
    up.set_defaults(func=cmd_upload)

    fe = sub.add_parser("fetch", help="download an evidence object, verifying its SHA-256")
    fe.add_argument("sha256")
    fe.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="default: the file's original name (from the citing record), else ./<sha256>",
    )
    fe.add_argument(
        "--name-by-hash",
        action="store_true",
        help="save as ./<sha256> whatever the file's name (the old default)",
    )
    fe.add_argument("--url", default=os.environ.get("JIANZHENG_URL", DEFAULT_URL), help=url_help)
    fe.add_argument(
        "--token",
        default=os.environ.get("JIANZHENG_TOKEN"),
        help="a reviewer or archivist token (env JIANZHENG_TOKEN)",
    )
    fe.set_defaults(func=cmd_fetch)
