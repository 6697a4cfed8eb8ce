"""C2SP tlog-tiles: tile coordinates and paths, and reading tree nodes out of tiles.

A tile at level L and index N holds up to 256 consecutive hashes of the Merkle tree at
level 8·L (c2sp.org/tlog-tiles). Level-0 tiles hold the leaf hashes; a node at a level
between two tile levels is recomputed from the tile below it. Full tiles never change;
a partial tile is only ever widened, so a tile read for any tree size n' >= n answers
every node question about the tree of size n.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from verifier import merkle

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
HASH = merkle.HASH_SIZE

#: Reads the stored bytes of tile (level, index); returns b"" when it has none yet.
TileGetter = Callable[[int, int], bytes]


def index_path(n: int) -> str:
    """tlog-tiles index encoding: 3-digit groups, all but the last prefixed by ``x``."""
    if n < 0:
        raise ValueError("tile index must be non-negative")
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def _ascii_digits(text: str) -> bool:
    # str.isdigit() also admits "²" or "١", which int() refuses or reads; paths are ASCII.
    return text.isascii() and text.isdigit()


def parse_index_path(parts: list[str]) -> int:
    """Inverse of :func:`index_path`; raises ValueError on any non-canonical form."""
    if not parts or len(parts) > 7:
        raise ValueError("bad tile index")
    n = 0
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        digits = p if last else (p[1:] if p.startswith("x") else "")
        if len(digits) != 3 or not _ascii_digits(digits):
            raise ValueError(f"bad tile index element {p[:20]!r}")
        n = n * 1000 + int(digits)
    if index_path(n) != "/".join(parts):
        raise ValueError("non-canonical tile index")
    return n


@dataclass(frozen=True)
class TilePath:
    """Where a tile path points: ``level`` None is an entry bundle, ``width`` None a full tile."""

    level: int | None
    index: int
    width: int | None


#: Tile levels have at most two digits (a 64-bit tree has fewer than 8 levels of tiles).
_MAX_LEVEL_DIGITS = 2


def parse_tile_path(path: str) -> TilePath:
    """Parse ``<L>/<N>[.p/<W>]`` or ``entries/<N>[.p/<W>]`` (c2sp.org/tlog-tiles).

    Only the canonical forms are accepted: decimal ASCII without leading zeros for the
    level and the width (1..255), the index as :func:`index_path` writes it. Anything else
    is a ValueError naming the bad part, shortened: the path comes from anyone.
    """
    parts = path.split("/")
    width: int | None = None
    if len(parts) >= 2 and parts[-2].endswith(".p"):
        w = parts[-1]
        # Length first: int() of a long digit string is slow, and refused past 4300 digits.
        if not (0 < len(w) <= 3 and _ascii_digits(w)) or not 1 <= int(w) < TILE_WIDTH:
            raise ValueError(f"bad partial tile width {w[:20]!r}")
        if w != str(int(w)):
            raise ValueError(f"non-canonical partial tile width {w!r}")
        width = int(w)
        parts = [*parts[:-2], parts[-2][:-2]]
    if len(parts) < 2:
        raise ValueError("tile path needs a level and an index")
    index = parse_index_path(parts[1:])
    level = parts[0]
    if level == "entries":
        return TilePath(None, index, width)
    if 0 < len(level) <= _MAX_LEVEL_DIGITS and _ascii_digits(level) and level == str(int(level)):
        return TilePath(int(level), index, width)
    raise ValueError(f"bad tile level {level[:20]!r}")


def tile_width_at(level: int, index: int, size: int) -> int:
    """How many hashes tile (level, index) holds for a tree of ``size`` leaves (0..256)."""
    complete = size >> (TILE_HEIGHT * level)
    return max(0, min(TILE_WIDTH, complete - index * TILE_WIDTH))


class _TileLevels:
    """The hashes of one tile plus the internal nodes above them, computed once."""

    __slots__ = ("levels",)

    def __init__(self, data: bytes) -> None:
        self.levels: list[list[bytes]] = [[] for _ in range(TILE_HEIGHT)]
        self.extend(data)

    def extend(self, data: bytes) -> None:
        """Take a wider version of the same tile, hashing only the nodes it adds.

        A partial tile grows by a few hashes per batch; recomputing its 255 inner nodes
        each time would dominate the cost of a single-event receipt.
        """
        row0 = self.levels[0]
        if data[: len(row0) * HASH] != b"".join(row0):
            raise ValueError("a tile changed instead of growing; run jianzheng audit")
        row0.extend(data[i : i + HASH] for i in range(len(row0) * HASH, len(data), HASH))
        for lv in range(1, TILE_HEIGHT):
            below, row = self.levels[lv - 1], self.levels[lv]
            for i in range(len(row), len(below) // 2):
                row.append(merkle.node_hash(below[2 * i], below[2 * i + 1]))

    @property
    def width(self) -> int:
        return len(self.levels[0])


class TreeReader:
    """Answers node, root and proof questions from tiles, with an LRU cache of tiles.

    Complete tiles are cached for good; a partial tile is re-read when a wider one is
    needed. The cache holds at most ``cache_tiles`` tiles (about 16 KiB each).
    """

    def __init__(
        self, get_tile: TileGetter, cache_tiles: int = 4096, fresh: TileGetter | None = None
    ) -> None:
        self._get = get_tile
        #: Asked when ``get_tile`` answers a tile narrower than needed: with several worker
        #: processes, this process's newest copy of an edge tile may trail the stored one.
        self._fresh = fresh
        self._cache: OrderedDict[tuple[int, int], _TileLevels] = OrderedDict()
        self._limit = cache_tiles
        # API threads and the sequencer share the cache; a tile is extended by one at a time.
        self._lock = threading.Lock()

    def forget(self, level: int, index: int) -> None:
        with self._lock:
            self._cache.pop((level, index), None)

    def _tile(self, level: int, index: int, need: int) -> _TileLevels:
        with self._lock:
            return self._tile_locked(level, index, need)

    def _tile_locked(self, level: int, index: int, need: int) -> _TileLevels:
        key = (level, index)
        t = self._cache.get(key)
        if t is None or t.width < need:
            data = self._get(level, index)
            if len(data) < need * HASH and self._fresh is not None:
                data = self._fresh(level, index)
            if len(data) % HASH:
                raise ValueError(f"tile {level}/{index} has a torn length {len(data)}")
            if t is None or len(data) < t.width * HASH:
                t = _TileLevels(data)
            else:
                t.extend(data)
            if t.width < need:
                raise LookupError(f"tile {level}/{index} holds {t.width} hashes, {need} are needed")
            self._cache[key] = t
            if len(self._cache) > self._limit:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return t

    def node(self, level: int, index: int) -> bytes:
        """Hash of the complete node at Merkle ``level`` and ``index`` (leaves are level 0)."""
        stratum, r = divmod(level, TILE_HEIGHT)
        first = index << r  # position of its leftmost descendant in the stratum's row
        t = self._tile(stratum, first >> TILE_HEIGHT, (first & (TILE_WIDTH - 1)) + (1 << r))
        return t.levels[r][(first & (TILE_WIDTH - 1)) >> r]

    def batch_node(self) -> merkle.NodeResolver:
        """:meth:`node` for one burst of lookups, such as the receipts of one batch.

        It keeps the tiles it used, so most lookups skip the shared cache's lock and LRU
        bookkeeping. A kept tile stays right: tiles only grow, and a narrower copy than
        a lookup needs is fetched again.
        """
        kept: dict[tuple[int, int], _TileLevels] = {}

        def node(level: int, index: int) -> bytes:
            stratum, r = divmod(level, TILE_HEIGHT)
            first = index << r
            at = first & (TILE_WIDTH - 1)
            key = (stratum, first >> TILE_HEIGHT)
            t = kept.get(key)
            if t is None or len(t.levels[0]) < at + (1 << r):
                t = kept[key] = self._tile(stratum, key[1], at + (1 << r))
            return t.levels[r][at >> r]

        return node

    def root(self, size: int) -> bytes:
        if size == 0:
            return merkle.EMPTY_ROOT
        return merkle.subtree_hash(self.node, 0, size)

    def frontier(self, size: int) -> merkle.CompactRange:
        return merkle.CompactRange(
            size, [self.node(lv, i) for lv, i in merkle.frontier_nodes(size)]
        )

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return merkle.inclusion_proof(self.node, index, size)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        return merkle.consistency_proof(self.node, size1, size2)
