"""RFC 6962/9162 Merkle math: spec vectors, and property tests against a naive reference."""

from __future__ import annotations

import base64
import hashlib
import json
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
