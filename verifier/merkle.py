"""RFC 6962 / RFC 9162 §2.1 Merkle tree hashing, proof verification and compact ranges.

Everything here is pure: bytes and integers in, a value or a typed exception out.
Verification never returns ``False``; it raises a subclass of :class:`ProofError`
that says what did not match, so a caller cannot forget to look at the result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from verifier.errors import VerifierError

HASH_SIZE = 32

#: RFC 9162 §2.1.1: the hash of an empty tree is the hash of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class ProofError(VerifierError):
    """A Merkle proof did not verify."""


class RootMismatchError(ProofError):
    """The root computed from a proof differs from the expected root."""

    def __init__(self, what: str, expected: bytes, computed: bytes) -> None:
        super().__init__(
            f"{what}: computed root {computed.hex()} does not match expected {expected.hex()}"
        )
        self.expected = expected
        self.computed = computed


class ProofShapeError(ProofError):
    """The proof has the wrong number of hashes, or indices and sizes that cannot be."""


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d0}) = SHA-256(0x00 || d0)."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: interior node = SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (RFC 9162 §2.1.1), for n >= 2."""
    if n < 2:
        raise ValueError(f"split_point needs n >= 2, got {n}")
    return 1 << ((n - 1).bit_length() - 1)


def _inner_proof_size(index: int, size: int) -> int:
    # Levels at which the paths from `index` and from the last leaf diverge: below it,
    # the proof holds one sibling per level; above it, the "border" nodes.
    return (index ^ (size - 1)).bit_length()


def inclusion_proof_size(index: int, size: int) -> int:
    """Number of hashes in an inclusion proof of ``index`` in a tree of ``size`` leaves."""
    inner = _inner_proof_size(index, size)
    border = bin(index >> inner).count("1")
    return inner + border


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Recompute the root from an inclusion proof, RFC 9162 §2.1.3.2.

    Raises :class:`ProofShapeError` when the index, size, leaf or proof length cannot be
    right; the caller then compares the returned root with the one it trusts.
    """
    if size <= 0 or index < 0:
        raise ProofShapeError(f"tree size {size} and index {index} admit no inclusion proof")
    if index >= size:
        raise ProofShapeError(f"index {index} is not below tree size {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofShapeError(f"leaf hash is {len(leaf)} bytes, want {HASH_SIZE}")
    want = inclusion_proof_size(index, size)
    if len(proof) != want:
        raise ProofShapeError(
            f"inclusion proof for index {index} in size {size} has {len(proof)} hashes, want {want}"
        )
    for i, h in enumerate(proof):
        if len(h) != HASH_SIZE:
            raise ProofShapeError(f"proof hash {i} is {len(h)} bytes, want {HASH_SIZE}")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:  # pragma: no cover - excluded by the length check above
            raise ProofShapeError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                # The right border: skip the levels where this node has no right sibling.
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # pragma: no cover - excluded by the length check above
        raise ProofShapeError("inclusion proof is shorter than the path to the root")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``size`` leaves with ``root``.

    RFC 9162 §2.1.3.2. Raises :class:`ProofError` on any mismatch.
    """
    computed = root_from_inclusion_proof(index, size, leaf, proof)
    if computed != root:
        raise RootMismatchError(f"inclusion of index {index} in tree size {size}", root, computed)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree (size2, root2) extends the tree (size1, root1), RFC 9162 §2.1.4.2.

    A proof from the empty tree proves nothing and is refused, as the RFC's algorithm
    starts from a non-empty first tree; callers treat "old size 0" as a policy decision.
    """
    if size1 <= 0:
        raise ProofShapeError(f"a consistency proof needs a non-empty first tree, got {size1}")
    if size2 < size1:
        raise ProofShapeError(f"second tree size {size2} is smaller than first {size1}")
    if size1 == size2:
        if proof:
            raise ProofShapeError("trees of equal size need an empty consistency proof")
        if root1 != root2:
            raise RootMismatchError(f"trees of equal size {size1}", root1, root2)
        return
    if not proof:
        raise ProofShapeError(f"empty consistency proof from size {size1} to {size2}")
    for i, h in enumerate(proof):
        if len(h) != HASH_SIZE:
            raise ProofShapeError(f"proof hash {i} is {len(h)} bytes, want {HASH_SIZE}")

    # Step 2: when size1 is a power of two, the first tree is itself a node on the path.
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofShapeError("consistency proof is longer than needed")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofShapeError("consistency proof is shorter than needed")
    if fr != root1:
        raise RootMismatchError(f"consistency: first tree of size {size1}", root1, fr)
    if sr != root2:
        raise RootMismatchError(f"consistency: second tree of size {size2}", root2, sr)


#: Called for every complete node a :class:`CompactRange` learns: (level, index, hash).
NodeVisitor = Callable[[int, int, bytes], None]


class CompactRange:
    """The right frontier of a Merkle tree growing from leaf 0: O(log n) appends and root.

    ``nodes`` holds the roots of the perfect subtrees that make up the tree, largest first,
    one per set bit of ``size``. Appending merges equal-sized neighbours, and every node that
    becomes complete is reported to the visitor, which is how the ledger fills its tiles
    without ever recomputing the tree.
    """

    __slots__ = ("nodes", "size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(nodes) != bin(size).count("1"):
            raise ValueError(f"a compact range of size {size} needs {bin(size).count('1')} nodes")
        self.size = size
        self.nodes = list(nodes)

    def append(self, leaf: bytes, visit: NodeVisitor | None = None) -> None:
        """Append one leaf hash; report the leaf and every node it completes to ``visit``."""
        index = self.size
        if visit is not None:
            visit(0, index, leaf)
        h = leaf
        level = 0
        # Each trailing 1-bit of the old size is a left sibling waiting for this node.
        while index & 1:
            h = node_hash(self.nodes.pop(), h)
            index >>= 1
            level += 1
            if visit is not None:
                visit(level, index, h)
        self.nodes.append(h)
        self.size += 1

    def root(self) -> bytes:
        """RFC 9162 §2.1.1 MTH of the leaves appended so far (the empty hash for none)."""
        if not self.nodes:
            return EMPTY_ROOT
        h = self.nodes[-1]
        for left in reversed(self.nodes[:-1]):
            h = node_hash(left, h)
        return h

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self.nodes)


def frontier_nodes(size: int) -> list[tuple[int, int]]:
    """The (level, index) of the perfect subtrees that make up a tree of ``size``, largest first."""
    out: list[tuple[int, int]] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
    return out


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes, for small inputs such as one tile."""
    cr = CompactRange()
    for h in leaves:
        cr.append(h)
    return cr.root()


#: Returns the hash of the complete (perfect, aligned) node at (level, index).
NodeResolver = Callable[[int, int], bytes]


def subtree_hash(node: NodeResolver, begin: int, end: int) -> bytes:
    """MTH(D[begin:end]) for a range the RFC 9162 §2.1.1 recursion produces.

    Such a range starts at a multiple of the power of two that covers it, so its left part
    is always a complete node that ``node`` can look up; only the right border recurses.
    """
    size = end - begin
    if size <= 0:
        raise ValueError(f"empty range [{begin}, {end})")
    if size & (size - 1) == 0:
        level = size.bit_length() - 1
        return node(level, begin >> level)
    k = split_point(size)
    return node_hash(subtree_hash(node, begin, begin + k), subtree_hash(node, begin + k, end))


def inclusion_proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges [begin, end) whose MTH make up PATH(index, D[0:size]), leaf side first.

    RFC 9162 §2.1.3.1, unrolled: at each split the proof takes the sibling subtree.
    """
    if not 0 <= index < size:
        raise ProofShapeError(f"index {index} is not below tree size {size}")
    begin, end = 0, size
    siblings: list[tuple[int, int]] = []
    while end - begin > 1:
        k = split_point(end - begin)
        if index < begin + k:
            siblings.append((begin + k, end))
            end = begin + k
        else:
            siblings.append((begin, begin + k))
            begin = begin + k
    siblings.reverse()
    return siblings


def inclusion_proof(node: NodeResolver, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf-side hash first."""
    return [subtree_hash(node, b, e) for b, e in inclusion_proof_ranges(index, size)]


_T = TypeVar("_T")


def inclusion_proofs(
    node: NodeResolver,
    indices: Iterable[int],
    size: int,
    encode: Callable[[bytes], _T],
    known: dict[int, _T] | None = None,
) -> list[list[_T]]:
    """PATH(index, D[0:size]) for many indices of one tree, each hash passed through ``encode``.

    Equal to ``[[encode(h) for h in inclusion_proof(node, i, size)] for i in indices]``,
    but every node is resolved and encoded once, which is most of the work for the
    neighbouring leaves of one batch. Leaf side first, at each level the proof holds the
    sibling of the path's node when that sibling is not empty: the range
    [s·2^level, min((s+1)·2^level, size)) with s = (index >> level) ^ 1. A sibling cut
    short by ``size`` is the one right-border node of RFC 9162 §2.1.3.1 to be hashed
    from its parts; every other one is a complete node.

    ``known`` maps ``index << 6 | level`` of complete nodes to their encoded hash, to be
    shared across calls (a complete node never changes); the call adds what it encodes.
    """
    top = (size - 1).bit_length() if size > 0 else 0
    memo: dict[int, _T] = {} if known is None else known
    border: dict[int, _T] = {}  # nodes cut short by `size`, good for this call only
    out: list[list[_T]] = []
    prev = -1
    prev_proof: list[_T] = []
    for index in indices:
        if not 0 <= index < size:
            raise ProofShapeError(f"index {index} is not below tree size {size}")
        # From the level where the paths of `index` and the previous index meet, their
        # siblings are the same: only the levels below it are new (about two for
        # consecutive indices), the rest is the tail of the previous proof.
        meet = top if prev < 0 else min(top, (index ^ prev).bit_length())
        shared = 0  # hashes of the previous proof below `meet`
        proof: list[_T] = []
        append = proof.append
        for level in range(meet):
            if prev >= 0 and ((prev >> level) ^ 1) << level < size:
                shared += 1
            s = (index >> level) ^ 1
            begin = s << level
            if begin >= size:
                continue  # no sibling here: the path's node is the tree's right border
            key = s << 6 | level  # level < 64
            if begin + (1 << level) <= size:
                h = memo.get(key)
                if h is None:
                    h = memo[key] = encode(node(level, s))
            else:
                h = border.get(key)
                if h is None:
                    h = border[key] = encode(subtree_hash(node, begin, size))
            append(h)
        proof += prev_proof[shared:]
        out.append(proof)
        prev, prev_proof = index, proof
    return out


def consistency_proof(node: NodeResolver, size1: int, size2: int) -> list[bytes]:
    """PROOF(size1, D[0:size2]) of RFC 9162 §2.1.4.1 (SUBPROOF with b = true)."""
    if not 0 < size1 <= size2:
        raise ProofShapeError(f"no consistency proof from size {size1} to {size2}")
    parts: list[tuple[int, int]] = []
    begin, end, m, complete = 0, size2, size1, True
    while m != end - begin:
        k = split_point(end - begin)
        if m <= k:
            parts.append((begin + k, end))
            end = begin + k
        else:
            parts.append((begin, begin + k))
            m -= k
            begin += k
            complete = False
    if not complete:
        parts.append((begin, end))
    return [subtree_hash(node, b, e) for b, e in reversed(parts)]
