"""Start throwaway PostgreSQL and MinIO servers for the test suite (stdlib only).

The binaries come from the machine (PostgreSQL) and from the cache that
``scripts/test`` fills (MinIO, built from source at the version pinned in
``scripts/versions.env``). Every server listens on 127.0.0.1 only, on a free
port, and is stopped by ``stop()``, at interpreter exit, or, if the test
process is killed outright, by the kernel (parent-death signal).
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
PG_DATABASE = "jianzheng_test"
PG_SUPERUSER = "postgres"
PG_OS_USER = "postgres"

_REPO = Path(__file__).resolve().parent.parent
_VERSIONS_FILE = _REPO / "scripts" / "versions.env"


class ServerError(RuntimeError):
    """A test server could not be found, started or reached."""


def _read_versions(path: Path = _VERSIONS_FILE) -> dict[str, str]:
    """Parse the KEY=VALUE lines of scripts/versions.env."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"\s*([A-Z][A-Z0-9_]*)=(\S*)\s*", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


MINIO_VERSION = _read_versions()["MINIO_VERSION"]
TORCHWOOD_VERSION = _read_versions()["TORCHWOOD_VERSION"]


def cache_dir() -> Path:
    """The build cache shared with scripts/test."""
    return Path(os.environ.get("JIANZHENG_CACHE") or Path.home() / ".cache" / "jianzheng")


# --- process plumbing ------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """A preexec_fn making the child receive `sig` when this process dies.

    atexit does not run when pytest is SIGKILLed; PR_SET_PDEATHSIG does.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, sig, 0, 0, 0)

    return preexec


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"


@dataclass
class _Process:
    """A server process started in its own session, with its log file."""

    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    user: str | None = None
    death_signal: int = signal.SIGKILL
    proc: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                # Own session: a Ctrl-C aimed at pytest must not hit the server
                # before the fixture finalizers stop it in order.
                start_new_session=True,
                preexec_fn=_die_with_parent(self.death_signal),
                user=_uid(self.user),
                group=_gid(self.user),
                extra_groups=None if self.user is None else [],
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, first_signal: int = signal.SIGTERM) -> None:
        """Ask politely, then kill the whole process group; never blocks long."""
        if self.proc.poll() is None:
            self.proc.send_signal(first_signal)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # The group may still hold children (postgres backends) even after the
        # leader exited, so kill it unconditionally.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass


def _uid(user: str | None) -> int | None:
    return None if user is None else pwd.getpwnam(user).pw_uid


def _gid(user: str | None) -> int | None:
    return None if user is None else pwd.getpwnam(user).pw_gid


def _mkdir_for(path: Path, user: str | None) -> Path:
    """mkdir owned by `user` (when given), private to it."""
    path.mkdir(mode=0o700)
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


def _wait_until(
    ready: Callable[[], bool], proc: _Process, what: str, timeout: float = START_TIMEOUT
) -> None:
    """Poll `ready` until true; fail early if the process dies, or at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if not proc.alive():
            raise ServerError(
                f"{what} exited with code {proc.proc.returncode} during startup; "
                f"log {proc.log}:\n{_log_tail(proc.log)}"
            )
        if time.monotonic() > deadline:
            raise ServerError(
                f"{what} not ready after {timeout:.0f} s; log {proc.log}:\n{_log_tail(proc.log)}"
            )
        time.sleep(0.1)


class _Server:
    """Base class: stop() is idempotent and also runs at interpreter exit."""

    _process: _Process | None = None

    def _register(self) -> None:
        _LIVE.add(self)

    def stop(self) -> None:
        _LIVE.discard(self)
        if self._process is not None:
            self._process.stop()
            self._process = None


_LIVE: set[_Server] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()


# --- PostgreSQL -----------------------------------------------------------


def find_pg_bindir() -> Path | None:
    """Directory with initdb and postgres, searched in the order scripts/test uses."""
    candidates: list[str] = []
    if os.environ.get("JIANZHENG_PG_BINDIR"):
        candidates.append(os.environ["JIANZHENG_PG_BINDIR"])
    if shutil.which("pg_config"):
        r = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(r.stdout.strip())

    def version_key(d: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", d))

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).resolve().parent))
    for d in candidates:
        if d and (Path(d) / "initdb").is_file() and (Path(d) / "postgres").is_file():
            return Path(d)
    return None


class PostgresServer(_Server):
    """A running PostgreSQL cluster in a private directory."""

    def __init__(self, root: Path, bindir: Path, port: int, process: _Process) -> None:
        self.root = root
        self.bindir = bindir
        self.port = port
        self._process = process
        self.url = f"postgresql+psycopg://{PG_SUPERUSER}@127.0.0.1:{port}/{PG_DATABASE}"
        self._register()

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then kill; removes the data directory."""
        _LIVE.discard(self)
        if self._process is not None:
            self._process.stop(first_signal=signal.SIGINT)
            self._process = None
        shutil.rmtree(self.root, ignore_errors=True)


def _run(argv: Sequence[str], what: str, *, cwd: Path, user: str | None) -> None:
    try:
        r = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=START_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
            user=_uid(user),
            group=_gid(user),
            extra_groups=None if user is None else [],
        )
    except subprocess.TimeoutExpired as e:
        raise ServerError(f"{what} timed out after {START_TIMEOUT:.0f} s") from e
    if r.returncode != 0:
        raise ServerError(f"{what} failed ({r.returncode}):\n{r.stdout}{r.stderr}")


def start_postgres(base_dir: Path) -> PostgresServer:
    """initdb a fresh cluster, start it on a free loopback port, create jianzheng_test.

    PostgreSQL refuses to run as root, so under root the cluster lives in a
    new directory under the system temp dir (pytest's base temp is 0700 root,
    unreachable for another user) owned by the ``postgres`` user, and the
    server runs as that user.
    """
    bindir = find_pg_bindir()
    if bindir is None:
        raise ServerError(
            "no PostgreSQL server binaries (initdb, postgres) found; "
            "run scripts/test, install the 'postgresql' package or set JIANZHENG_PG_BINDIR"
        )
    user: str | None = None
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam(PG_OS_USER)
        except KeyError:
            raise ServerError(
                f"running as root, but there is no '{PG_OS_USER}' user to run PostgreSQL as"
            ) from None
        user = PG_OS_USER
        root = Path(tempfile.mkdtemp(prefix="jianzheng-pg-"))
        os.chown(root, pw.pw_uid, pw.pw_gid)
    else:
        base_dir.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="pg-", dir=base_dir))
    try:
        return _start_postgres_in(root, bindir, user)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _start_postgres_in(root: Path, bindir: Path, user: str | None) -> PostgresServer:
    data, sock = root / "data", root / "sock"
    _run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            PG_SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",  # a throwaway cluster needs no durability
        ],
        "initdb",
        cwd=root,  # the server user may not be able to enter the caller's cwd
        user=user,
    )
    _mkdir_for(sock, user)

    # The free port can be taken between probe and bind; retry on that.
    for attempt in range(3):
        port = free_port()
        # Opened by us and inherited as stdout, so the server user needs no
        # write access to it.
        log = root / f"postgres-{attempt}.log"
        process = _Process(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                str(sock),
                # Speed over durability: the data dies with the test session.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            log=log,
            cwd=root,
            user=user,
            # SIGQUIT is PostgreSQL's immediate shutdown: it also takes the backends.
            death_signal=signal.SIGQUIT,
        )
        server = PostgresServer(root, bindir, port, process)
        try:
            _wait_until(functools.partial(_pg_ready, bindir, port), process, "postgres")
        except ServerError:
            process.stop(signal.SIGINT)
            _LIVE.discard(server)
            if "already in use" in _log_tail(log) and attempt < 2:
                continue
            raise
        try:
            _run(
                [
                    str(bindir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    PG_SUPERUSER,
                    PG_DATABASE,
                ],
                "createdb",
                cwd=root,
                user=user,
            )
        except BaseException:
            process.stop(signal.SIGINT)
            _LIVE.discard(server)
            raise
        return server
    raise AssertionError("unreachable")


def _pg_ready(bindir: Path, port: int) -> bool:
    # pg_isready, unlike a TCP probe, waits out "the database system is starting up".
    r = subprocess.run(
        [str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "2"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return r.returncode == 0


# --- MinIO -----------------------------------------------------------------


def torchwood_dir() -> Path | None:
    """Where scripts/test built litewitness and witnessctl, if it did."""
    d = cache_dir() / f"torchwood-{TORCHWOOD_VERSION}"
    ok = all(os.access(d / name, os.X_OK) for name in ("litewitness", "witnessctl"))
    return d if ok else None


def minio_binary() -> Path | None:
    """The MinIO server binary: $JIANZHENG_MINIO_BIN, else the one scripts/test built."""
    explicit = os.environ.get("JIANZHENG_MINIO_BIN")
    path = Path(explicit) if explicit else cache_dir() / f"minio-{MINIO_VERSION}" / "minio"
    return path if path.is_file() and os.access(path, os.X_OK) else None


class MinioServer(_Server):
    """A running single-drive MinIO server with its own root credentials."""

    def __init__(
        self, root: Path, port: int, access_key: str, secret_key: str, process: _Process
    ) -> None:
        self.root = root
        self.port = port
        self.endpoint = f"127.0.0.1:{port}"
        self.access_key = access_key
        self.secret_key = secret_key
        self._process = process
        self._register()

    @property
    def url(self) -> str:
        """Base URL, for clients that want a scheme (boto3, httpx)."""
        return f"http://{self.endpoint}"

    def stop(self) -> None:
        """SIGTERM, then kill; removes the data directory."""
        super().stop()
        shutil.rmtree(self.root, ignore_errors=True)


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """HTTP status of a GET on `url`, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            status: int = resp.status
            return status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None


def _minio_ready(port: int) -> bool:
    # /minio/health/live answers 200 as soon as HTTP is up, before the object
    # layer exists (S3 calls then get 503); /cluster waits for write quorum.
    base = f"http://127.0.0.1:{port}/minio/health"
    return http_status(f"{base}/live") == 200 and http_status(f"{base}/cluster") == 200


def start_minio(base_dir: Path) -> MinioServer:
    """Start MinIO on a free loopback port with fresh random root credentials.

    Returns once the server accepts S3 calls, not merely HTTP.
    """
    binary = minio_binary()
    if binary is None:
        where = os.environ.get("JIANZHENG_MINIO_BIN") or (
            cache_dir() / f"minio-{MINIO_VERSION}" / "minio"
        )
        raise ServerError(
            f"no executable MinIO binary at {where}; "
            "run scripts/test to build it, or set JIANZHENG_MINIO_BIN"
        )
    base_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="minio-", dir=base_dir))
    access_key = "jz" + secrets.token_hex(8)
    secret_key = secrets.token_hex(20)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIO_")}
    env |= {
        "MINIO_ROOT_USER": access_key,
        "MINIO_ROOT_PASSWORD": secret_key,
        "MINIO_UPDATE": "off",  # no update check: there is no network
        "MINIO_BROWSER": "off",  # the web console is not needed by tests
    }
    for attempt in range(3):
        port, console_port = free_port(), free_port()
        log = root / f"minio-{attempt}.log"
        process = _Process(
            [
                str(binary),
                "server",
                str(root / "data"),
                "--address",
                f"127.0.0.1:{port}",
                "--console-address",
                f"127.0.0.1:{console_port}",
                "--certs-dir",
                str(root / "certs"),  # keep it out of ~/.minio
                "--quiet",
            ],
            log=log,
            env=env,
            cwd=root,
        )
        server = MinioServer(root, port, access_key, secret_key, process)
        try:
            _wait_until(functools.partial(_minio_ready, port), process, "minio")
        except ServerError:
            process.stop()
            _LIVE.discard(server)
            if "already in use" in _log_tail(log) and attempt < 2:
                continue
            shutil.rmtree(root, ignore_errors=True)
            raise
        return server
    raise AssertionError("unreachable")
