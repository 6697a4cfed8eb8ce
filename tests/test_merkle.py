"""RFC 6962/9162 Merkle math: spec vectors, and property tests against a naive reference."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import merkle

VECTORS = Path(__file__).parent / "vectors" / "transparency-dev-merkle" / "testdata"


def _b64(v: str | None) -> bytes:
    return base64.b64decode(v) if v else b""


def _vector_files(kind: str) -> list[Path]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert len(files) > 50, f"vectors for {kind} are missing"
    return files


@pytest.mark.parametrize(
    "path", _vector_files("inclusion"), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_inclusion_vectors(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [_b64(h) for h in v["proof"] or []]
    args = (v["leafIdx"], v["treeSize"], _b64(v["leafHash"]), proof, _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize(
    "path", _vector_files("consistency"), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_consistency_vectors(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [_b64(h) for h in v["proof"] or []]
    args = (v["size1"], v["size2"], proof, _b64(v["root1"]), _b64(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


# --- A naive recursive reference, written straight from RFC 9162 §2.1 -------------------


def ref_mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def _resolver(leaves: list[bytes]) -> merkle.NodeResolver:
    def node(level: int, index: int) -> bytes:
        return ref_mth(leaves[index << level : (index + 1) << level])

    return node


def _entries(n: int) -> list[bytes]:
    return [i.to_bytes(4, "big") for i in range(n)]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=300))
def test_compact_range_root_matches_reference(n: int) -> None:
    leaves = _entries(n)
    cr = merkle.CompactRange()
    seen: dict[tuple[int, int], bytes] = {}
    for e in leaves:
        cr.append(merkle.leaf_hash(e), lambda lv, i, h: seen.__setitem__((lv, i), h))
    assert cr.root() == ref_mth(leaves)
    # Every complete node is reported once, with its true hash.
    for (level, index), h in seen.items():
        assert h == ref_mth(leaves[index << level : (index + 1) << level])
    assert len(seen) == sum(n >> lv for lv in range(n.bit_length() + 1))
    # The frontier can be rebuilt from the complete nodes alone.
    rebuilt = merkle.CompactRange(n, [seen[x] for x in merkle.frontier_nodes(n)])
    assert rebuilt.root() == cr.root()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_inclusion_proofs_match_reference_and_verify(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=200))
    m = data.draw(st.integers(min_value=0, max_value=n - 1))
    leaves = _entries(n)
    proof = merkle.inclusion_proof(_resolver(leaves), m, n)
    assert proof == ref_path(m, leaves)
    assert len(proof) == merkle.inclusion_proof_size(m, n)
    root = ref_mth(leaves)
    merkle.verify_inclusion(m, n, merkle.leaf_hash(leaves[m]), proof, root)
    # Any other leaf, index or root is refused.
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(m, n, merkle.leaf_hash(b"other"), proof, root)
    if n > 1:
        other = (m + 1) % n
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(other, n, merkle.leaf_hash(leaves[m]), proof, root)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_batch_inclusion_proofs_match_single_ones(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=300))
    start = data.draw(st.integers(min_value=0, max_value=n - 1))
    run = list(range(start, data.draw(st.integers(min_value=start + 1, max_value=n))))
    # A run of neighbours (one batch) followed by any indices in any order (replays).
    indices = run + data.draw(st.lists(st.integers(min_value=0, max_value=n - 1), max_size=8))
    node = _resolver(_entries(n))
    want = [merkle.inclusion_proof(node, i, n) for i in indices]
    assert merkle.inclusion_proofs(node, indices, n, lambda h: h) == want
    assert merkle.inclusion_proofs(node, indices, n, bytes.hex) == [
        [h.hex() for h in p] for p in want
    ]
    with pytest.raises(merkle.ProofShapeError):
        merkle.inclusion_proofs(node, [*indices, n], n, bytes.hex)
    # Complete nodes remembered across calls, for trees larger and smaller than this one.
    known: dict[int, str] = {}
    for size in (n, data.draw(st.integers(min_value=1, max_value=n)), n):
        some = [i for i in indices if i < size]
        assert merkle.inclusion_proofs(node, some, size, bytes.hex, known) == [
            [h.hex() for h in merkle.inclusion_proof(node, i, size)] for i in some
        ]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_consistency_proofs_match_reference_and_verify(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=200))
    m = data.draw(st.integers(min_value=1, max_value=n))
    leaves = _entries(n)
    proof = merkle.consistency_proof(_resolver(leaves), m, n)
    assert proof == ref_subproof(m, leaves, True)
    r1, r2 = ref_mth(leaves[:m]), ref_mth(leaves)
    merkle.verify_consistency(m, n, proof, r1, r2)
    # A forked second tree (one leaf changed after m) is refused.
    if m < n:
        forked = leaves[:]
        forked[-1] = b"forked"
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(m, n, proof, r1, ref_mth(forked))


def test_tree_root_small_cases() -> None:
    assert merkle.tree_root([]) == merkle.EMPTY_ROOT
    a = merkle.leaf_hash(b"a")
    assert merkle.tree_root([a]) == a
    with pytest.raises(ValueError):
        merkle.CompactRange(3, [a])


# --- Exhaustive small trees, and every refusal with the problem it names ----------------


def test_batch_inclusion_proofs_on_every_small_tree() -> None:
    """inclusion_proofs equals one inclusion_proof per index for every tree of up to 33
    leaves (runs, repeats, out of order); it encodes each sibling once per call, and
    remembers the complete ones (never the border ones) in ``known`` for the next call."""
    for n in range(1, 34):
        node = _resolver(_entries(n))
        encoded: list[bytes] = []

        def encode(h: bytes, encoded: list[bytes] = encoded) -> str:
            encoded.append(h)
            return h.hex()

        indices = [*range(n), n - 1, 0, n // 2, n // 2]
        want = [[h.hex() for h in merkle.inclusion_proof(node, i, n)] for i in indices]
        siblings = {(lv, (i >> lv) ^ 1) for i in range(n) for lv in range(n.bit_length())}
        complete = {(lv, s) for lv, s in siblings if (s + 1) << lv <= n}
        border = {(lv, s) for lv, s in siblings if s << lv < n < (s + 1) << lv}
        known: dict[int, str] = {}
        assert merkle.inclusion_proofs(node, indices, n, encode, known) == want
        assert len(encoded) == len(complete) + len(border), n
        assert known == {s << 6 | lv: node(lv, s).hex() for lv, s in complete}
        encoded.clear()
        assert merkle.inclusion_proofs(node, indices, n, encode, known) == want
        assert len(encoded) == len(border), n
        # A smaller tree reuses the complete nodes it shares and computes its own border.
        for size in (1, (n + 1) // 2):
            some = list(range(size))
            assert merkle.inclusion_proofs(node, some, size, bytes.hex, known) == [
                [h.hex() for h in merkle.inclusion_proof(node, i, size)] for i in some
            ]
    assert merkle.inclusion_proofs(node, [], 0, bytes.hex) == []


def test_batch_inclusion_proofs_for_every_pair_of_indices() -> None:
    """Any index after any other: the previous proof's tail is reused only where the two
    paths meet, including after an index on the tree's right border (e.g. 12 then 9 in a
    tree of 13, where 12 has no sibling at the two lowest levels)."""
    for n in range(1, 18):
        node = _resolver(_entries(n))
        single = [merkle.inclusion_proof(node, i, n) for i in range(n)]
        for a in range(n):
            for b in range(n):
                assert merkle.inclusion_proofs(node, [a, b], n, lambda h: h) == [
                    single[a],
                    single[b],
                ], (n, a, b)


def _raises(exc: type[Exception], message: str, fn: Callable[[], object]) -> None:
    with pytest.raises(exc) as e:
        fn()
    assert str(e.value) == message


def test_refused_proofs_name_the_problem() -> None:
    leaves = _entries(6)
    node = _resolver(leaves)
    leaf, root = merkle.leaf_hash(leaves[2]), ref_mth(leaves)
    proof = merkle.inclusion_proof(node, 2, 6)
    shape = merkle.ProofShapeError
    for size, index in ((0, 0), (0, 5), (6, -1), (-1, -1)):
        _raises(
            shape,
            f"tree size {size} and index {index} admit no inclusion proof",
            lambda size=size, index=index: merkle.verify_inclusion(index, size, leaf, proof, root),
        )
    for index in (6, 7):
        _raises(
            shape,
            f"index {index} is not below tree size 6",
            lambda index=index: merkle.verify_inclusion(index, 6, leaf, proof, root),
        )
        _raises(
            shape,
            f"index {index} is not below tree size 6",
            lambda index=index: merkle.inclusion_proof(node, index, 6),
        )
        _raises(
            shape,
            f"index {index} is not below tree size 6",
            lambda index=index: merkle.inclusion_proofs(node, [0, index], 6, bytes.hex),
        )
    _raises(shape, "index -1 is not below tree size 6", lambda: merkle.inclusion_proof(node, -1, 6))
    _raises(
        shape,
        "leaf hash is 31 bytes, want 32",
        lambda: merkle.verify_inclusion(2, 6, leaf[:31], proof, root),
    )
    _raises(
        shape,
        "inclusion proof for index 2 in size 6 has 2 hashes, want 3",
        lambda: merkle.verify_inclusion(2, 6, leaf, proof[:2], root),
    )
    _raises(
        shape,
        "proof hash 1 is 33 bytes, want 32",
        lambda: merkle.verify_inclusion(2, 6, leaf, [proof[0], proof[1] + b"x", proof[2]], root),
    )
    with pytest.raises(merkle.RootMismatchError) as e:
        merkle.verify_inclusion(2, 6, merkle.leaf_hash(b"x"), proof, root)
    computed = merkle.root_from_inclusion_proof(2, 6, merkle.leaf_hash(b"x"), proof)
    assert (e.value.expected, e.value.computed) == (root, computed) and computed != root
    assert str(e.value) == (
        f"inclusion of index 2 in tree size 6: computed root {computed.hex()} "
        f"does not match expected {root.hex()}"
    )


def test_refused_consistency_proofs_name_the_problem() -> None:
    leaves = _entries(7)
    node = _resolver(leaves)
    r3, r7 = ref_mth(leaves[:3]), ref_mth(leaves)
    proof = merkle.consistency_proof(node, 3, 7)
    shape = merkle.ProofShapeError

    def check(size1: int, size2: int, p: list[bytes], a: bytes = r3, b: bytes = r7) -> None:
        merkle.verify_consistency(size1, size2, p, a, b)

    _raises(
        shape, "a consistency proof needs a non-empty first tree, got 0", lambda: check(0, 7, proof)
    )
    _raises(
        shape,
        "a consistency proof needs a non-empty first tree, got -1",
        lambda: check(-1, 7, proof),
    )
    _raises(shape, "second tree size 2 is smaller than first 3", lambda: check(3, 2, proof))
    _raises(
        shape,
        "trees of equal size need an empty consistency proof",
        lambda: check(3, 3, proof, r3, r3),
    )
    check(3, 3, [], r3, r3)
    with pytest.raises(merkle.RootMismatchError) as e:
        check(3, 3, [], r3, r7)
    assert str(e.value) == (
        f"trees of equal size 3: computed root {r7.hex()} does not match expected {r3.hex()}"
    )
    _raises(shape, "empty consistency proof from size 3 to 7", lambda: check(3, 7, []))
    _raises(
        shape, "proof hash 1 is 31 bytes, want 32", lambda: check(3, 7, [proof[0], proof[1][:31]])
    )
    _raises(shape, "consistency proof is longer than needed", lambda: check(3, 7, [*proof, r3]))
    _raises(shape, "consistency proof is shorter than needed", lambda: check(3, 7, proof[:-1]))
    # From a power of two the first tree is on the path: its root is not in the proof.
    p4 = merkle.consistency_proof(node, 4, 7)
    merkle.verify_consistency(4, 7, p4, ref_mth(leaves[:4]), r7)
    _raises(
        shape,
        "consistency proof is longer than needed",
        lambda: merkle.verify_consistency(
            4, 7, [ref_mth(leaves[:4]), *p4], ref_mth(leaves[:4]), r7
        ),
    )
    wrong = merkle.leaf_hash(b"x")
    with pytest.raises(merkle.RootMismatchError) as e:
        check(3, 7, proof, wrong, r7)
    assert str(e.value).startswith("consistency: first tree of size 3: computed root ")
    assert (e.value.expected, e.value.computed) == (wrong, r3)
    with pytest.raises(merkle.RootMismatchError) as e:
        check(3, 7, proof, r3, wrong)
    assert str(e.value).startswith("consistency: second tree of size 7: computed root ")
    assert (e.value.expected, e.value.computed) == (wrong, r7)
    for a, b in ((0, 7), (0, 0), (-1, 3), (4, 3)):
        _raises(
            shape,
            f"no consistency proof from size {a} to {b}",
            lambda a=a, b=b: merkle.consistency_proof(node, a, b),
        )
    assert merkle.consistency_proof(node, 7, 7) == []


def test_small_helpers_refuse_what_cannot_be() -> None:
    for n in (1, 0, -3):
        _raises(ValueError, f"split_point needs n >= 2, got {n}", lambda n=n: merkle.split_point(n))
    assert [merkle.split_point(n) for n in (2, 3, 4, 5, 8, 9)] == [1, 2, 2, 4, 4, 8]
    node = _resolver(_entries(4))
    for begin, end in ((2, 2), (3, 1)):
        _raises(
            ValueError,
            f"empty range [{begin}, {end})",
            lambda begin=begin, end=end: merkle.subtree_hash(node, begin, end),
        )
    a = merkle.leaf_hash(b"a")
    for size, nodes in ((3, [a]), (1, []), (-1, [])):
        _raises(
            ValueError,
            f"a compact range of size {size} needs {bin(size).count('1')} nodes",
            lambda size=size, nodes=nodes: merkle.CompactRange(size, nodes),
        )
    assert merkle.frontier_nodes(0) == [] and merkle.frontier_nodes(13) == [(3, 0), (2, 2), (0, 12)]
    cr = merkle.CompactRange(1, [a])
    copy = cr.copy()
    copy.append(a)
    assert (cr.size, cr.nodes) == (1, [a]) and (copy.size, len(copy.nodes)) == (2, 1)
    assert merkle.inclusion_proof_size(0, 1) == 0 and merkle.inclusion_proof_size(5, 6) == 2
