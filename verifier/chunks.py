"""Chunk trees: an RFC 6962 Merkle tree over an object's 1 MiB chunks.

An evidence object (a bid file, a ten-hour recording of a bid opening) is cut into
chunks of :data:`CHUNK_SIZE` bytes, the last one possibly shorter. The chunks themselves
are the tree's entries, so leaf *i* is ``SHA-256(0x00 || chunk_i)`` and the tree hash
(RFC 9162 §2.1.1) is the object's ``chunk_root``; an empty object has no chunks and the
empty-tree hash. With the root recorded in the ledger, one chunk and its inclusion proof
(RFC 9162 §2.1.3) show that those bytes are part of the object, without the rest of it.

Pure code (standard library only): the storage service builds roots and proofs with it,
and an offline verifier checks them with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from verifier import merkle

#: Bytes per chunk; every chunk but the last of an object has exactly this size.
CHUNK_SIZE = 1 << 20


def chunk_count(size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """How many chunks an object of ``size`` bytes has (0 for the empty object)."""
    if size < 0:
        raise ValueError(f"object size {size} is negative")
    return -(-size // chunk_size)


class ChunkTree:
    """SHA-256 and chunk root of a byte stream, fed in pieces of any size, in one pass.

    ``update`` may be called with pieces of any length; the tree cuts them into chunks
    itself. ``leaves`` keeps the leaf hashes (32 bytes per chunk, so 32 KiB per GiB),
    which is what a server needs to answer inclusion proofs later.

    Each piece is hashed where it lies: into the object's SHA-256 and into the running
    leaf hash of the chunk it falls in (a SHA-256 already fed the 0x00 leaf prefix), so
    no chunk is ever buffered, joined or copied, whatever the pieces' sizes.
    """

    __slots__ = ("_chunk_size", "_done", "_fill", "_leaf", "_range", "_sha", "_size", "leaves")

    def __init__(self, chunk_size: int = CHUNK_SIZE) -> None:
        if chunk_size <= 0:
            raise ValueError(f"chunk size {chunk_size} must be positive")
        self._chunk_size = chunk_size
        self._sha = hashlib.sha256()
        self._range = merkle.CompactRange()
        self._leaf = _LEAF_SEED.copy()
        self._fill = 0  # bytes of the current chunk hashed into _leaf
        self._size = 0
        self._done = False
        #: Concatenated leaf hashes of the complete chunks seen so far.
        self.leaves = bytearray()

    @property
    def size(self) -> int:
        """Bytes seen so far."""
        return self._size

    def _end_chunk(self) -> None:
        leaf = self._leaf.digest()
        self._range.append(leaf)
        self.leaves += leaf
        self._leaf = _LEAF_SEED.copy()
        self._fill = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next piece of the object."""
        if self._done:
            raise ValueError("ChunkTree.update after finish")
        view = memoryview(data).cast("B")
        n = len(view)
        if not n:
            return
        self._sha.update(view)
        self._size += n
        cs = self._chunk_size
        off = 0
        while off < n:
            take = min(cs - self._fill, n - off)
            # Slices of a memoryview share the caller's buffer: nothing is copied.
            self._leaf.update(view[off : off + take])
            self._fill += take
            off += take
            if self._fill == cs:
                self._end_chunk()

    def finish(self) -> tuple[bytes, int, bytes, int]:
        """(SHA-256 of the object, size, chunk root, chunk count)."""
        if not self._done:
            if self._fill:
                self._end_chunk()
            self._done = True
        return self._sha.digest(), self._size, self._range.root(), self._range.size


#: SHA-256 fed the RFC 9162 §2.1.1 leaf prefix (0x00): leaf hashes continue copies of it,
#: so that leaf = SHA-256(0x00 || chunk) exactly as :func:`merkle.leaf_hash` computes it.
_LEAF_SEED = hashlib.sha256(b"\x00")


def _leaf_at(leaves: bytes | bytearray, i: int) -> bytes:
    return bytes(leaves[i * merkle.HASH_SIZE : (i + 1) * merkle.HASH_SIZE])


def root_from_leaves(leaves: bytes | bytearray) -> bytes:
    """RFC 9162 §2.1.1 tree hash over concatenated 32-byte leaf hashes."""
    if len(leaves) % merkle.HASH_SIZE:
        raise ValueError(f"leaf hashes are {len(leaves)} bytes, not a multiple of 32")
    n = len(leaves) // merkle.HASH_SIZE
    return merkle.tree_root([_leaf_at(leaves, i) for i in range(n)])


def chunk_proof(leaves: bytes | bytearray, index: int) -> list[bytes]:
    """Inclusion proof of chunk ``index`` (RFC 9162 §2.1.3.1) from the object's leaf hashes.

    ``leaves`` is what :attr:`ChunkTree.leaves` holds. Each proof recomputes the sibling
    subtrees from the leaves, O(chunk count) node hashes: 2 ms for a 2 GiB object.
    """
    if len(leaves) % merkle.HASH_SIZE:
        raise ValueError(f"leaf hashes are {len(leaves)} bytes, not a multiple of 32")
    n = len(leaves) // merkle.HASH_SIZE

    def node(level: int, k: int) -> bytes:
        if level == 0:
            return _leaf_at(leaves, k)
        return merkle.node_hash(node(level - 1, 2 * k), node(level - 1, 2 * k + 1))

    return merkle.inclusion_proof(node, index, n)


def verify_chunk(
    index: int,
    chunk_count: int,
    chunk: bytes,
    proof: Sequence[bytes],
    chunk_root: bytes,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> None:
    """Check that ``chunk`` is chunk ``index`` of the object whose chunk root is given.

    RFC 9162 §2.1.3.2 with leaf = SHA-256(0x00 || chunk). Every chunk but the last must
    be exactly ``chunk_size`` bytes and the last one 1 to ``chunk_size`` bytes, so that a
    proof cannot pass off part of a chunk. Raises :class:`merkle.ProofError` on failure.
    """
    if not 0 <= index < chunk_count:
        raise merkle.ProofShapeError(f"chunk {index} is not below the chunk count {chunk_count}")
    if index < chunk_count - 1 and len(chunk) != chunk_size:
        raise merkle.ProofShapeError(
            f"chunk {index} of {chunk_count} is {len(chunk)} bytes; all but the last chunk "
            f"are {chunk_size} bytes"
        )
    if not 0 < len(chunk) <= chunk_size:
        raise merkle.ProofShapeError(
            f"last chunk {index} is {len(chunk)} bytes; it must be 1 to {chunk_size} bytes"
        )
    merkle.verify_inclusion(index, chunk_count, merkle.leaf_hash(chunk), proof, chunk_root)
