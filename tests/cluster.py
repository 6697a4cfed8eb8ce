"""Real distributed engines for the cluster tests (issue 16): a PostgreSQL primary with a
synchronous streaming replica, MinIO with 4 erasure-coded drives, HAProxy in front of
several ``jianzheng serve`` nodes.

Every server listens on 127.0.0.1 on a free port, lives in a temporary directory and is
stopped by ``stop()`` or at interpreter exit (``tests.servers`` registers them), or by
the kernel when the test process dies (parent-death signal).
"""

from __future__ import annotations

import functools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.fixtures_servers import _unavailable
from tests.procs import ROOT, Server, jianzheng
from tests.servers import (
    _LIVE,
    MINIO_VERSION,
    PG_DATABASE,
    PG_OS_USER,
    PG_SUPERUSER,
    START_TIMEOUT,
    ServerError,
    _log_tail,
    _mkdir_for,
    _pg_ready,
    _Process,
    _run,
    _Server,
    _wait_until,
    cache_dir,
    find_pg_bindir,
    free_port,
    http_status,
    minio_binary,
)

#: The synchronous standby's name (its application_name) on the primary.
STANDBY_NAME = "standby1"
#: The WAL archive script PostgreSQL runs (archive_command / restore_command).
WAL_SCRIPT = ROOT / "deploy" / "postgres" / "wal-s3.sh"


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)),
        None,
    )


def _pg_user() -> str | None:
    """PostgreSQL refuses to run as root: then it runs as ``postgres``."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_OS_USER)
    except KeyError:
        raise ServerError(f"running as root, but there is no '{PG_OS_USER}' user") from None
    return PG_OS_USER


def _chown(path: Path, user: str | None) -> None:
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _psql(port: int, sql: str, timeout: float = 10) -> list[tuple[object, ...]]:
    """Rows of ``sql`` on the server at ``port`` (autocommit, bounded)."""
    with psycopg.connect(
        host="127.0.0.1",
        port=port,
        user=PG_SUPERUSER,
        dbname="postgres",
        connect_timeout=int(timeout),
        autocommit=True,
    ) as conn:
        conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
        cur = conn.execute(sql)
        return list(cur.fetchall()) if cur.description else []


def _wait(cond: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise ServerError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)


@dataclass
class WalArchive:
    """Where ``archive_command`` puts WAL: a bucket on the S3 server, through curl."""

    endpoint: str  # http://host:port
    access_key: str
    secret_key: str
    bucket: str

    def env(self) -> dict[str, str]:
        return {
            "WAL_S3_ENDPOINT": self.endpoint,
            "WAL_S3_ACCESS_KEY": self.access_key,
            "WAL_S3_SECRET_KEY": self.secret_key,
            "WAL_S3_BUCKET": self.bucket,
        }


class PgNode(_Server):
    """One PostgreSQL server (primary or standby) in ``root``/``name``."""

    def __init__(
        self,
        root: Path,
        name: str,
        bindir: Path,
        user: str | None,
        settings: dict[str, str],
        env: dict[str, str] | None = None,
    ) -> None:
        self.root, self.name, self.bindir, self.user = root, name, bindir, user
        self.data = root / name
        self.settings = settings
        self.env = env
        self.port = 0

    def start(self, port: int | None = None) -> None:
        """Start on ``port`` (a free one the first time); wait until it accepts connections."""
        self.port = port or self.port or free_port()
        argv = [str(self.bindir / "postgres"), "-D", str(self.data), "-h", "127.0.0.1"]
        argv += ["-p", str(self.port), "-k", str(self.root / "sock")]
        for k, v in self.settings.items():
            argv += ["-c", f"{k}={v}"]
        log = self.root / f"{self.name}.log"
        self._process = _Process(
            argv,
            log=log,
            cwd=self.root,
            user=self.user,
            env={**os.environ, **(self.env or {})},
            death_signal=signal.SIGQUIT,
        )
        _LIVE.add(self)
        _wait_until(functools.partial(_pg_ready, self.bindir, self.port), self._process, self.name)

    def kill(self) -> None:
        """kill -9 the postmaster and every backend (its process group): a lost host."""
        if self._process is not None:
            try:
                os.killpg(self._process.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._process.proc.wait(30)
            self._process = None
        _LIVE.discard(self)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then kill; the data directory stays (PgPair removes it)."""
        _LIVE.discard(self)
        if self._process is not None:
            self._process.stop(first_signal=signal.SIGINT)
            self._process = None

    def sql(self, sql: str) -> list[tuple[object, ...]]:
        return _psql(self.port, sql)

    def pg_ctl(self, *args: str) -> None:
        _run(
            [str(self.bindir / "pg_ctl"), *args, "-D", str(self.data)],
            "pg_ctl",
            cwd=self.root,
            user=self.user,
        )

    def log_tail(self) -> str:
        return _log_tail(self.root / f"{self.name}.log")


#: Settings of every server: speed where the test loses nothing by it. fsync=off keeps
#: data in the page cache, which a kill -9 of PostgreSQL does not lose; commits stay
#: synchronous (synchronous_commit=on), since that is what is under test.
_COMMON = {
    "fsync": "off",
    "max_connections": "200",
    "wal_keep_size": "512MB",
    "wal_level": "replica",
    "max_wal_senders": "10",
    "hot_standby": "on",
}


class PgPair:
    """A primary with one synchronous streaming standby (``pg_basebackup -R``).

    ``url`` is the multi-host libpq URL the nodes use; :meth:`kill_primary` and
    :meth:`promote` are the failover; ``archive`` (when given) receives the WAL.
    """

    def __init__(self, base: Path, archive: WalArchive | None = None) -> None:
        bindir = find_pg_bindir()
        if bindir is None:
            raise ServerError("no PostgreSQL server binaries (initdb, postgres) found")
        self.user = _pg_user()
        base.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="jz-pg-", dir=None if self.user else base))
        _chown(self.root, self.user)
        _mkdir_for(self.root / "sock", self.user)
        self.bindir = bindir
        self.archive = archive
        settings = dict(_COMMON)
        env: dict[str, str] = {}
        if archive is not None:
            script = self.root / "wal-s3.sh"  # where the server's user can read it
            shutil.copyfile(WAL_SCRIPT, script)
            script.chmod(0o755)
            settings |= {
                "archive_mode": "on",
                "archive_command": f"{script} push %p %f",
                "archive_timeout": "0",
            }
            env = archive.env()
        self.script = self.root / "wal-s3.sh"
        self.primary = PgNode(
            self.root,
            "primary",
            bindir,
            self.user,
            settings | {"synchronous_commit": "on"},
            env,
        )
        # The standby waits for nobody: once promoted it is the only server left.
        self.standby = PgNode(
            self.root,
            "standby",
            bindir,
            self.user,
            settings | {"cluster_name": STANDBY_NAME},
            env,
        )
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.primary.data),
                "-U",
                PG_SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            "initdb",
            cwd=self.root,
            user=self.user,
        )
        self.primary.start()
        self.primary.sql(f"CREATE DATABASE {PG_DATABASE}")
        self.standby.port = free_port()
        _run(
            [
                str(bindir / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary.port),
                "-U",
                PG_SUPERUSER,
                "-D",
                str(self.standby.data),
                "-R",
                "-X",
                "stream",
                "--no-sync",
                "--checkpoint=fast",
                "-d",
                f"application_name={STANDBY_NAME}",
            ],
            "pg_basebackup",
            cwd=self.root,
            user=self.user,
        )
        self.standby.start()
        # Only now: with no standby yet, every commit (CREATE DATABASE too) would wait.
        self.primary.sql(f"ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ({STANDBY_NAME})'")
        self.primary.sql("SELECT pg_reload_conf()")
        _wait(self.standby_is_sync, "the standby did not become synchronous")

    @property
    def url(self) -> str:
        """The nodes' database URL: both servers, the writable one chosen by libpq."""
        return (
            f"postgresql+psycopg://{PG_SUPERUSER}@127.0.0.1:{self.primary.port},"
            f"127.0.0.1:{self.standby.port}/{PG_DATABASE}?target_session_attrs=read-write"
            "&connect_timeout=5"
        )

    def standby_is_sync(self) -> bool:
        rows = self.primary.sql(
            "SELECT sync_state, state FROM pg_stat_replication "
            f"WHERE application_name = '{STANDBY_NAME}'"
        )
        return rows == [("sync", "streaming")]

    def kill_primary(self) -> None:
        self.primary.kill()

    def promote(self) -> None:
        """``pg_ctl promote`` the standby and wait until it accepts writes."""
        self.standby.pg_ctl("promote", "-w", "-t", "60")
        _wait(
            lambda: self.standby.sql("SELECT pg_is_in_recovery()") == [(False,)],
            "the promoted standby still in recovery",
        )

    def stop(self) -> None:
        for node in (self.primary, self.standby):
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# --- MinIO: one server, 4 drives, erasure coding ---------------------------


class MinioCluster(_Server):
    """``minio server d{1...4}``: 4 drives in one erasure set (EC:2, so any 2 may go)."""

    def __init__(self, base: Path, drives: int = 4) -> None:
        binary = minio_binary()
        if binary is None:
            raise ServerError(
                f"no MinIO binary at {cache_dir() / f'minio-{MINIO_VERSION}' / 'minio'}; "
                "run scripts/test"
            )
        base.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="minio-ec-", dir=base))
        self.drives = [self.root / f"d{i}" for i in range(1, drives + 1)]
        for d in self.drives:
            d.mkdir()
        self.access_key = "jz" + secrets.token_hex(8)
        self.secret_key = secrets.token_hex(20)
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIO_")}
        env |= {
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            "MINIO_UPDATE": "off",
            "MINIO_BROWSER": "off",
            # The 4 "drives" are folders on one disk, the root disk here: erasure-coded
            # MinIO refuses that unless told it runs under test.
            "MINIO_CI_CD": "on",
        }
        self._process = _Process(
            [
                str(binary),
                "server",
                str(self.root / f"d{{1...{drives}}}"),
                "--address",
                self.endpoint,
                "--console-address",
                f"127.0.0.1:{free_port()}",
                "--certs-dir",
                str(self.root / "certs"),
                "--quiet",
            ],
            log=self.root / "minio.log",
            env=env,
            cwd=self.root,
        )
        self._register()
        base_url = f"http://{self.endpoint}/minio/health"
        _wait_until(
            lambda: (
                http_status(f"{base_url}/live") == 200 and http_status(f"{base_url}/cluster") == 200
            ),
            self._process,
            "minio (4 drives)",
        )

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def env(self, bucket: str) -> dict[str, str]:
        """The JIANZHENG_S3_* settings of a node storing into ``bucket``."""
        return {
            "JIANZHENG_S3_ENDPOINT": self.url,
            "JIANZHENG_S3_ACCESS_KEY": self.access_key,
            "JIANZHENG_S3_SECRET_KEY": self.secret_key,
            "JIANZHENG_S3_BUCKET": bucket,
        }

    def lose_drive(self, i: int) -> None:
        """A drive is gone: delete its folder, everything in it."""
        shutil.rmtree(self.drives[i])

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.root, ignore_errors=True)


# --- HAProxy and the nodes behind it --------------------------------------


class HAProxy(_Server):
    """HAProxy (Debian's) in the foreground, balancing over ``backends`` (loopback ports).

    It health-checks each node's ``/healthz/ready`` (database, object store, sequencer)
    every 300 ms (down after 2 failures) and
    re-dispatches a request whose connection to a node fails.
    """

    def __init__(self, root: Path, backends: list[int]) -> None:
        binary = haproxy_binary()
        if binary is None:
            raise ServerError("haproxy is not installed (scripts/test installs it)")
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        servers = "\n".join(
            f"    server n{i} 127.0.0.1:{p} check" for i, p in enumerate(backends, 1)
        )
        cfg = root / "haproxy.cfg"
        cfg.write_text(
            f"""global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 2
    option redispatch
frontend ledger
    bind 127.0.0.1:{self.port}
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk GET /healthz/ready
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2
{servers}
"""
        )
        check = subprocess.run(
            [binary, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30
        )
        if check.returncode != 0:
            raise ServerError(f"haproxy -c: {check.stdout}{check.stderr}")
        self._process = _Process([binary, "-db", "-f", str(cfg)], log=root / "haproxy.log")
        self._register()

        def listening() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                return False

        _wait_until(listening, self._process, "haproxy")


class Nodes:
    """``jianzheng serve`` nodes on one database and one bucket, each with its own --data.

    They sign with one log key: the first node creates it and the others get a copy.
    """

    def __init__(
        self,
        base: Path,
        db: str,
        s3_env: dict[str, str],
        n: int,
        *extra: str,
        origin: str = "cluster.example/log",
    ) -> None:
        self.base, self.db, self.origin, self.extra = base, db, origin, extra
        self.env = {**os.environ, **s3_env}
        self.dirs = [base / f"node{i}" / "data" for i in range(1, n + 1)]
        for d in self.dirs:
            d.parent.mkdir(parents=True, exist_ok=True)
        self.token = self.cli("token", "create", "--role", "platform")
        self.reviewer = self.cli("token", "create", "--role", "reviewer")  # reads proofs
        self.servers: list[Server | None] = [None] * n
        self.start(0)  # creates the schema and the log key
        key = self.dirs[0] / "log.key"
        for i, d in enumerate(self.dirs[1:], 1):
            d.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(key, d / "log.key")
            (d / "log.key").chmod(0o600)
            self.start(i)

    def cli(self, *args: str, data: Path | None = None, timeout: float = 120) -> str:
        """Run ``jianzheng`` against node 1's data and the shared database; its last line."""
        out = jianzheng(
            *args,
            "--data",
            str(data or self.dirs[0]),
            "--db",
            self.db,
            timeout=timeout,
            env=self.env,
        )
        return out.stdout.strip().splitlines()[-1]

    def start(self, i: int) -> Server:
        srv = Server(self.dirs[i], self.db, *self.extra, origin=self.origin, env=self.env)
        self.servers[i] = srv
        return srv

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.servers if s is not None]

    def kill(self, i: int) -> None:
        srv = self.servers[i]
        if srv is not None:
            srv.kill()
            self.servers[i] = None

    def stop(self) -> None:
        for i, srv in enumerate(self.servers):
            if srv is not None:
                srv.stop()
                self.servers[i] = None


# --- a client load that keeps every receipt -------------------------------


class Load:
    """Client threads posting events through ``url``, each with its own idempotency key.

    A request that fails (connection lost, 502/503 while a node or the database is gone)
    is retried with the same key, at most ``RETRY_FOR`` seconds; every 201 receipt (or
    200, the replay answering a retry) is kept by key. ``refused`` lists the answers that
    are neither of those nor retryable.
    """

    RETRY_FOR = 60.0

    def __init__(self, url: str, token: str, threads: int = 4, per_thread: int = 400) -> None:
        import threading

        self.url, self.token = url, token
        self.acked: dict[str, dict[str, object]] = {}
        self.refused: list[str] = []
        self.errors = 0  # failed attempts that were retried
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.per_thread = per_thread
        self.threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)
        ]
        for t in self.threads:
            t.start()

    def _run(self, n: int) -> None:
        import httpx

        from tests.conftest import make_event

        prefix = secrets.token_hex(4)
        with httpx.Client(
            base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {self.token}"}
        ) as http:
            for i in range(self.per_thread):
                if self.stop_event.is_set():
                    return
                key = f"{prefix}-{n}-{i}"
                event = make_event(project=f"CL{n}", idempotency_key=key)
                deadline = time.monotonic() + self.RETRY_FOR
                retried = False
                while time.monotonic() < deadline:
                    try:
                        r = http.post("/v1/events", json=event)
                    except httpx.HTTPError:
                        r = None
                    # 200 is the replay of a key already appended: right only for a retry
                    # whose first answer was lost (the append committed, then the node or
                    # the database died before the client heard of it).
                    ok = (200, 201) if retried else (201,)
                    if r is not None and r.status_code in ok:
                        with self.lock:
                            self.acked[key] = r.json()
                        break
                    if r is not None and r.status_code not in (502, 503, 504):
                        with self.lock:
                            self.refused.append(f"{key}: {r.status_code} {r.text[:200]}")
                        break
                    retried = True
                    with self.lock:
                        self.errors += 1
                    time.sleep(0.05)
                else:
                    with self.lock:
                        self.refused.append(f"{key}: no answer within {self.RETRY_FOR:.0f} s")

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def wait_for(self, n: int, timeout: float = 120) -> None:
        _wait(lambda: self.count() >= n, f"{n} acknowledged events", timeout)

    def finish(self, timeout: float = 180) -> None:
        """Let every thread post its last event (bounded)."""
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "client threads did not finish"


def check_log(url: str, token: str, db: str, acked: dict[str, dict[str, object]]) -> int:
    """Every acknowledged receipt against the log as it is now; returns the head size.

    - each receipt verifies (its inclusion proof against its signed checkpoint);
    - the entry at its index has the same event hash, and its key is that entry's key
      (the database, read directly: reading through the API would record the reads);
    - no fork: every checkpoint a client saw is consistent with the current head;
    - each idempotency key names exactly one entry.
    """
    import base64

    import httpx
    from sqlalchemy import create_engine, text

    from ledger.store import engine_url
    from verifier import merkle
    from verifier.checkpoint import open_checkpoint
    from verifier.note import parse_vkey
    from verifier.receipt import Receipt

    log = httpx.get(url + "/v1/log", timeout=30).json()
    vkey = parse_vkey(log["verifier_key"])
    head = open_checkpoint(log["checkpoint"], vkey).checkpoint
    engine = create_engine(engine_url(db))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT idx, event_hash, idempotency_key FROM records WHERE idx < :n"),
                {"n": head.size},
            ).all()
    finally:
        engine.dispose()
    by_index = {int(r[0]): (bytes(r[1]), r[2]) for r in rows}
    keys = [r[2] for r in rows if r[2] is not None]
    assert len(keys) == len(set(keys)), "an idempotency key names two entries"
    seen: dict[int, bytes] = {}
    for key, rj in acked.items():
        receipt = Receipt.from_json(rj)
        cp = receipt.verify(vkey).checkpoint
        assert receipt.index < head.size, f"{key}: index {receipt.index} beyond the head"
        assert by_index[receipt.index] == (receipt.event_hash, key), f"{key}: entry changed"
        seen[cp.size] = cp.root
    with httpx.Client(
        base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        for size, root in sorted(seen.items()):
            if size == head.size:
                assert root == head.root, f"fork: two roots at size {size}"
                continue
            r = http.get(f"/v1/proofs/consistency?first={size}&second={head.size}")
            assert r.status_code == 200, r.text
            proof = [base64.b64decode(x) for x in r.json()["hashes"]]
            merkle.verify_consistency(size, head.size, proof, root, head.root)
    return head.size


@pytest.fixture
def minio4(tmp_path: Path) -> Iterator[MinioCluster]:
    """MinIO on 4 erasure-coded drives for one test (missing MinIO: skip, or fail in CI)."""
    try:
        cluster = MinioCluster(tmp_path / "minio")
    except (ServerError, OSError) as e:
        _unavailable("MinIO with 4 drives", str(e))
    try:
        yield cluster
    finally:
        cluster.stop()
