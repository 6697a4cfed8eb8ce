"""What one client may hold of the service: connections, time and upload slots (issue 10 §3).

Without limits, idle connections that never finish their request headers hold a file
descriptor each for ever: about a thousand of them, at the usual ``ulimit -n`` of 1024,
and the server can accept nobody else. The limits here keep the service answering:

* **Header timeout.** A request's headers must be complete within ``header_timeout``
  seconds of the connection opening (or of the request's first byte on a kept-alive
  connection); otherwise the connection gets a 408 and is closed.
* **Body pace.** While a request body is incomplete and the server is ready to read it,
  every ``body_timeout`` seconds must bring ``min_body_rate * body_timeout`` bytes (or
  the end of the body); otherwise 408 and close. Time when the server itself is not
  reading (the store is slower than the client) does not count against the client.
  An upload cut off this way stores nothing (the upload thread aborts its write).
* **Answer read.** A client that reads nothing of its answer for ``body_timeout``
  seconds (the server's writes stall) is disconnected.
* **Keep-alive.** An idle kept-alive connection is closed after ``keep_alive`` seconds.
* **Connection cap.** At most ``max_connections`` connections per process, set below the
  file-descriptor limit so that there is room left to accept, and to refuse. When a new
  connection would pass the cap, the connection that has waited longest without a
  complete request (idle, or still sending headers) is closed to make room; if every
  connection is busy with a request, the new one gets a 503 and is closed.
* **Upload slots.** At most ``max_uploads`` uploads at once per process, and at most
  ``uploads_per_token`` of them from one token (:class:`storage.service.UploadSlots`).

The timing checks run in one sweep per process every :data:`SWEEP_INTERVAL` seconds rather
than in a timer per request, so the append path pays nothing for them.

These are the defaults of ``jianzheng serve``; docs/operations.md lists the flags, and
the reverse proxy in front (deploy/nginx/jianzheng.conf) adds limits per client address.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from api.http_body import BodyPiecesProtocol

log = logging.getLogger("jianzheng.serve")

#: Seconds between two sweeps over the connections (the resolution of the timeouts).
SWEEP_INTERVAL = 0.5
#: Highest connection cap chosen on its own (each connection costs some memory too).
AUTO_MAX_CONNECTIONS = 4096
#: File descriptors a connection cap must leave for the database, the object store, log
#: files, upload temporary files and the accept that refuses: at least this many...
MIN_SPARE_FDS = 128
#: ...or this fraction of the limit, whichever is more.
SPARE_FD_FRACTION = 4
#: The soft file-descriptor limit is raised towards the hard one up to this.
WANTED_FDS = 65536
#: Seconds between two warnings that the connection cap is reached.
WARN_INTERVAL = 10.0


@dataclass(frozen=True)
class ServeLimits:
    """The limits of one serving process (see the module docstring)."""

    header_timeout: float = 10.0
    keep_alive: float = 5.0
    body_timeout: float = 10.0
    min_body_rate: int = 8192
    #: 0: chosen from the file-descriptor limit (:func:`connection_cap`).
    max_connections: int = 0
    max_uploads: int = 16
    uploads_per_token: int = 4
    #: Alert streams (``GET /v1/alerts/stream``) open at once per process, and per token:
    #: each holds a connection for as long as it lasts, so they count against the cap.
    max_streams: int = 64
    streams_per_token: int = 4

    def check(self) -> None:
        """Raise ValueError naming the first unusable value."""
        for name in ("header_timeout", "keep_alive", "body_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive number of seconds")
        if self.min_body_rate < 0:
            raise ValueError("--min-body-rate must be 0 or more bytes per second")
        if self.max_connections < 0:
            raise ValueError("--max-connections must be 0 (automatic) or more")
        if self.max_streams < 0 or self.streams_per_token < 1:
            raise ValueError("--max-streams must be 0 or more and --streams-per-token at least 1")
        if self.max_uploads < 1 or self.uploads_per_token < 1:
            raise ValueError("--max-uploads and --uploads-per-token must be at least 1")
        soft = fd_limit()
        if self.max_connections > soft - MIN_SPARE_FDS:
            raise ValueError(
                f"--max-connections {self.max_connections} leaves too few file descriptors: "
                f"the limit is {soft} (ulimit -n) and {MIN_SPARE_FDS} are kept spare; "
                f"use at most {max(0, soft - MIN_SPARE_FDS)} or raise the limit"
            )

    def connection_cap(self) -> int:
        """``max_connections``, or the automatic cap for this process's descriptor limit."""
        return self.max_connections or auto_connection_cap(fd_limit())


def auto_connection_cap(soft_limit: int) -> int:
    """A cap that leaves a quarter of the descriptors (at least 128) for everything else."""
    spare = max(MIN_SPARE_FDS, soft_limit // SPARE_FD_FRACTION)
    return max(16, min(AUTO_MAX_CONNECTIONS, soft_limit - spare))


def fd_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return WANTED_FDS if soft == resource.RLIM_INFINITY else soft


def raise_fd_limit() -> None:
    """Raise the soft descriptor limit towards the hard one (Debian's soft default is 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = WANTED_FDS if hard == resource.RLIM_INFINITY else min(hard, WANTED_FDS)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError) as e:  # not allowed here: keep the limit we have
            log.warning("cannot raise the file-descriptor limit to %d: %s", want, e)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``serve`` flags of :class:`ServeLimits`."""
    d = ServeLimits()
    g = p.add_argument_group("limits (docs/operations.md)")
    g.add_argument(
        "--header-timeout",
        type=float,
        default=d.header_timeout,
        metavar="S",
        help=f"seconds a request's headers may take (default {d.header_timeout:g})",
    )
    g.add_argument(
        "--keep-alive",
        type=float,
        default=d.keep_alive,
        metavar="S",
        help=f"seconds an idle connection is kept open (default {d.keep_alive:g})",
    )
    g.add_argument(
        "--body-timeout",
        type=float,
        default=d.body_timeout,
        metavar="S",
        help="a request body must bring --min-body-rate bytes per second over every this "
        "many seconds, or end; and a client may leave its answer unread this long "
        f"(default {d.body_timeout:g})",
    )
    g.add_argument(
        "--min-body-rate",
        type=int,
        default=d.min_body_rate,
        metavar="BYTES",
        help=f"bytes per second below which a request body is cut off with 408 "
        f"(default {d.min_body_rate}; 0: only a body that stops for --body-timeout)",
    )
    g.add_argument(
        "--max-connections",
        type=int,
        default=d.max_connections,
        metavar="N",
        help="open connections per process (default 0: automatic, a quarter of "
        f"'ulimit -n' kept spare, at most {AUTO_MAX_CONNECTIONS})",
    )
    g.add_argument(
        "--max-uploads",
        type=int,
        default=d.max_uploads,
        metavar="N",
        help=f"evidence uploads at once per process (default {d.max_uploads})",
    )
    g.add_argument(
        "--uploads-per-token",
        type=int,
        default=d.uploads_per_token,
        metavar="N",
        help=f"evidence uploads at once from one token (default {d.uploads_per_token})",
    )
    g.add_argument(
        "--max-streams",
        type=int,
        default=d.max_streams,
        metavar="N",
        help=f"alert streams (GET /v1/alerts/stream) open at once per process "
        f"(default {d.max_streams})",
    )
    g.add_argument(
        "--streams-per-token",
        type=int,
        default=d.streams_per_token,
        metavar="N",
        help=f"alert streams open at once from one token (default {d.streams_per_token})",
    )


class StreamSlots:
    """Open alert streams: at most ``total`` at once, ``per_token`` of them from one token
    (a stream holds a connection of the cap for its whole life, so a token could otherwise
    take them all)."""

    def __init__(self, total: int, per_token: int) -> None:
        self.total = total
        self.per_token = per_token
        self._open: dict[str, int] = {}

    def take(self, token_id: str) -> str | None:
        """Take a slot (None) or say why not."""
        if sum(self._open.values()) >= self.total:
            return f"the server has {self.total} alert streams open; retry shortly"
        if self._open.get(token_id, 0) >= self.per_token:
            return f"a token may hold at most {self.per_token} alert streams at once"
        self._open[token_id] = self._open.get(token_id, 0) + 1
        return None

    def give_back(self, token_id: str) -> None:
        n = self._open.get(token_id, 0) - 1
        if n > 0:
            self._open[token_id] = n
        else:
            self._open.pop(token_id, None)


def from_args(args: argparse.Namespace) -> ServeLimits:
    return ServeLimits(
        header_timeout=args.header_timeout,
        keep_alive=args.keep_alive,
        body_timeout=args.body_timeout,
        min_body_rate=args.min_body_rate,
        max_connections=args.max_connections,
        max_uploads=args.max_uploads,
        uploads_per_token=args.uploads_per_token,
        max_streams=getattr(args, "max_streams", ServeLimits.max_streams),
        streams_per_token=getattr(args, "streams_per_token", ServeLimits.streams_per_token),
    )


def uvicorn_options(limits: ServeLimits) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.Config`` / ``uvicorn.run`` that apply ``limits``."""
    return {
        "http": protocol_class(limits),
        "timeout_keep_alive": limits.keep_alive,
        # The API has no WebSocket route. With WebSockets on, an upgraded connection
        # passes to another protocol object and never leaves the connection registry:
        # enough upgrade requests would fill the cap for good.
        "ws": "none",
    }


def _error(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 response in the API's error shape, closing the connection."""
    reason = {408: "Request Timeout", 503: "Service Unavailable"}[status]
    body = json.dumps({"error": {"status": status, "code": code, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def protocol_class(limits: ServeLimits) -> type[GuardedProtocol]:
    """A :class:`GuardedProtocol` class for one server, with its own connection registry."""
    attrs = {
        "limits": limits,
        "cap": limits.connection_cap(),
        "live": OrderedDict(),
        "sweeping": False,
        "warned_at": 0.0,
        "closed_for_room": 0,
    }
    return cast("type[GuardedProtocol]", type("GuardedProtocol", (GuardedProtocol,), attrs))


class GuardedProtocol(BodyPiecesProtocol):
    """uvicorn's httptools protocol with the header timeout, body pace and connection cap.

    Class attributes are per server (:func:`protocol_class` makes a subclass for each).
    ``live`` holds the open connections in the order they last became idle (waiting for
    a request), busy ones included; the first idle one in it is the one closed for room.
    """

    limits: ClassVar[ServeLimits]
    cap: ClassVar[int]
    live: ClassVar[OrderedDict[GuardedProtocol, None]]
    sweeping: ClassVar[bool]
    warned_at: ClassVar[float]
    closed_for_room: ClassVar[int]

    # Per connection: when the current request's head began (None: not waiting for one,
    # or idle between requests, which uvicorn's keep-alive timeout governs), whether the
    # parser is inside a body, and the body's progress in the current pace window.
    _head_since: float | None = None
    _idle = True
    _in_body = False
    _body_got = 0
    _body_spent = 0.0
    _write_paused_since: float | None = None

    # --- connection ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        cls = type(self)
        self._head_since = self.loop.time()
        self._idle = True
        cls.live[self] = None
        if len(cls.live) > cls.cap:
            self._make_room()
        if not cls.sweeping and not transport.is_closing():
            cls.sweeping = True
            self.loop.call_later(SWEEP_INTERVAL, cls._sweep, self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        type(self).live.pop(self, None)
        super().connection_lost(exc)

    def _make_room(self) -> None:
        """Close the longest-idle other connection, or refuse this one if none is idle."""
        cls = type(self)
        victim = next((c for c in cls.live if c._idle and c is not self), None)
        cls.closed_for_room += 1
        now = time.monotonic()
        if now - cls.warned_at > WARN_INTERVAL:
            cls.warned_at = now
            log.warning(
                "connection cap (%d) reached: %d connections closed to make room so far",
                cls.cap,
                cls.closed_for_room,
            )
        if victim is not None:
            victim._close()
        else:
            msg = "the server has too many connections open; retry shortly"
            self._close(_error(503, "busy", msg))

    def _close(self, response: bytes | None = None) -> None:
        """Close now; it no longer counts against the cap even before the loop reaps it."""
        type(self).live.pop(self, None)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The app may still be reading the body or answering: it gets a disconnect
            # (an upload aborts and stores nothing) and its answer goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        if response is not None and (
            cycle is None or cycle.response_complete or not cycle.response_started
        ):
            self.transport.write(response)
        self.transport.close()

    def _unsupported_upgrade_warning(self) -> None:
        """An ``Upgrade`` header is answered as a plain request, without two log lines
        each (anyone could fill the log with them)."""

    # --- request life cycle --------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_since is None:
            self._head_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self._head_since = None
        self._idle = False
        self._in_body = True
        self._body_got = 0
        self._body_spent = 0.0
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_got += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        cycle = self.cycle
        if not self.transport.is_closing() and (cycle is None or cycle.response_complete):
            self._idle = True
            live = type(self).live
            if self in live:
                live.move_to_end(self)

    def pause_writing(self) -> None:
        self._write_paused_since = self.loop.time()
        super().pause_writing()

    def resume_writing(self) -> None:
        self._write_paused_since = None
        super().resume_writing()

    # --- the sweep -----------------------------------------------------------------------
    @classmethod
    def _sweep(cls, loop: asyncio.AbstractEventLoop) -> None:
        """Apply the header timeout and the body pace to every connection; runs again
        while any connection is open."""
        now = loop.time()
        lim = cls.limits
        # Bytes each window must bring (at least one: a body that stops is cut off too).
        enough = max(1, int(lim.min_body_rate * lim.body_timeout))
        for conn in list(cls.live):
            if conn.transport.is_closing():
                continue
            if conn._head_since is not None and now - conn._head_since > lim.header_timeout:
                msg = f"the request headers took longer than {lim.header_timeout:g} s"
                cycle = conn.cycle
                # A 408 would read as the answer to a pipelined request still running.
                in_flight = cycle is not None and not cycle.response_complete
                conn._close(None if in_flight else _error(408, "timeout", msg))
            elif conn._in_body and not conn.flow.read_paused:
                # Reading is paused only while the app has not taken what came: the
                # server's delay, not the client's.
                conn._body_spent += SWEEP_INTERVAL
                if conn._body_got >= enough:
                    conn._body_got = 0
                    conn._body_spent = 0.0
                elif conn._body_spent >= lim.body_timeout:
                    msg = (
                        f"the request body came slower than {lim.min_body_rate} bytes/s "
                        f"over {lim.body_timeout:g} s; nothing was stored"
                    )
                    conn._close(_error(408, "too_slow", msg))
            elif conn._write_paused_since is not None and (
                now - conn._write_paused_since > lim.body_timeout
            ):
                conn._close()  # the client reads nothing of its response
        if cls.live:
            loop.call_later(SWEEP_INTERVAL, cls._sweep, loop)
        else:
            cls.sweeping = False
