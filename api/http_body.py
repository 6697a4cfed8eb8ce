"""Request bodies received from uvicorn without copies.

This is uvicorn's httptools protocol, handing request bodies to the app without copying
them (:func:`ledger.http.read_body` reads a whole body with a size bound).

uvicorn gathers the body pieces of a request into a ``bytearray`` (``+=``, a copy) and
gives the app ``bytes(...)`` of it (a second copy), for every piece it reads (about
250 KB each). For an evidence upload that is two extra passes over every gigabyte on the
event loop's thread, and as many buffers allocated and freed, each freshly faulted in:
about 0.15 s of CPU per GiB uploaded, measured (bench/bench_storage.py, docs/benchmarks.md).

:class:`BodyPiecesProtocol` gives each request a :class:`_Pieces` instead, which keeps
the pieces httptools produced (fresh ``bytes`` objects) and joins them only when more
than one arrived before the app asked for the next. It relies on what uvicorn's
``HttpToolsProtocol`` does with the body (``+=``, ``len()``, ``bytes()``, a fresh empty
``bytearray`` per request and after each receive); tests/test_http_body.py checks that
against the installed uvicorn.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _Pieces:
    """Stands for uvicorn's body ``bytearray``: ``+=``, ``len()`` and ``bytes()``."""

    __slots__ = ("_n", "_parts")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._n = 0

    def __iadd__(self, piece: bytes) -> _Pieces:
        # httptools hands over new bytes objects; anything else is copied, as before.
        self._parts.append(piece if type(piece) is bytes else bytes(piece))
        self._n += len(piece)
        return self

    def __len__(self) -> int:
        return self._n

    def __bytes__(self) -> bytes:
        if len(self._parts) == 1:
            return self._parts[0]
        return b"".join(self._parts)


class BodyPiecesProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose requests gather their body in a :class:`_Pieces`."""

    def on_body(self, body: bytes) -> None:
        cycle: Any = getattr(self, "cycle", None)
        # Only the fresh, empty bytearray of a request (or of its next receive) is
        # replaced; anything else is left as uvicorn made it.
        if cycle is not None and type(cycle.body) is bytearray and not cycle.body:
            cycle.body = _Pieces()
        super().on_body(body)
