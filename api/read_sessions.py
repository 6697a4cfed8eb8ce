"""Read sessions: one ``evidence_accessed`` event per viewing, not per Range request.

A player seeking through a recording sends many ``Range`` requests for one object; each
would otherwise be its own access record. A client that names a *read session* (header
``X-Read-Session`` or query parameter ``read_session``: 8 to 64 characters of
``A-Z a-z 0-9 _ -``, chosen at random by the client, or issued by the console's page) has
all its reads of one object under that name recorded once:

- the session's key is (token id, object SHA-256, session name): another token, another
  object or another name is another session, so a name cannot hide another reader's read;
- the first read of the key is recorded (with the session name in the record, field
  ``read_session``) before a byte is served, as every read is; a read that cannot be
  recorded is refused and opens no session;
- later reads of the key are served without a new record while the session is open: at
  most :data:`IDLE` seconds after its previous read and :data:`LONGEST` seconds after its
  first. After that the next read is recorded again and opens a new session;
- the table is bounded (:data:`MAX_SESSIONS`, oldest forgotten first) and held per server
  process: forgetting a session only ever records a read twice, never skips one.

Without a session name every read is recorded on its own (the behaviour before read
sessions). See docs/operations.md, "Read sessions".
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

#: Seconds without a read after which a read session is closed.
IDLE = 15 * 60.0
#: Seconds after its first read after which a read session is closed however busy.
LONGEST = 4 * 3600.0
MAX_SESSIONS = 50_000
SESSION_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
HEADER = "X-Read-Session"
QUERY = "read_session"

Key = tuple[str, str, str]


@dataclass
class _Open:
    first: float
    last: float


class ReadSessions:
    """The open read sessions of one server process (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._open: OrderedDict[Key, _Open] = OrderedDict()
        self._pending: dict[Key, asyncio.Future[None]] = {}

    def _live(self, key: Key, now: float) -> bool:
        s = self._open.get(key)
        if s is None:
            return False
        if now - s.last > IDLE or now - s.first > LONGEST:
            del self._open[key]
            return False
        return True

    async def read(self, key: Key, record: Callable[[], Awaitable[None]]) -> bool:
        """Run ``record`` unless ``key`` names an open session; True when it recorded.

        A read arriving while the session's first read is still being recorded waits for
        that record (and is refused with it if it fails), so two quick Range requests
        never make two records.
        """
        pending = self._pending.get(key)
        if pending is not None:
            await asyncio.shield(pending)
        now = self._clock()
        if self._live(key, now):
            s = self._open[key]
            s.last = now
            self._open.move_to_end(key)
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        try:
            await record()
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: nobody else need be waiting
            raise
        else:
            fut.set_result(None)
            now = self._clock()
            self._open[key] = _Open(now, now)
            self._open.move_to_end(key)
            while len(self._open) > MAX_SESSIONS:
                self._open.popitem(last=False)
        finally:
            del self._pending[key]
        return True


def session_name(header: str | None, query: str | None) -> str | None:
    """The read session a request names, or None; ValueError when it names a bad one."""
    given = [v for v in (header, query) if v is not None]
    if not given:
        return None
    if len(given) == 2 and given[0] != given[1]:
        raise ValueError(f"{HEADER} and ?{QUERY} disagree")
    if not SESSION_RE.fullmatch(given[0]):
        raise ValueError("a read session is 8 to 64 characters of A-Z a-z 0-9 _ -")
    return given[0]
