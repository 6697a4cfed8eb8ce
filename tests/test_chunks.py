"""Chunk trees (verifier/chunks.py) against a naive RFC 6962 reference over the chunks."""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import merkle
from verifier.chunks import (
    CHUNK_SIZE,
    ChunkTree,
    chunk_count,
    chunk_proof,
    root_from_leaves,
    verify_chunk,
)


def naive_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH by its recursive definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = merkle.split_point(len(leaves))
    return merkle.node_hash(naive_root(leaves[:k]), naive_root(leaves[k:]))


def naive_chunk_root(data: bytes, size: int) -> bytes:
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    return naive_root([merkle.leaf_hash(c) for c in chunks])


def feed(data: bytes, cuts: list[int], chunk_size: int) -> ChunkTree:
    t = ChunkTree(chunk_size)
    last = 0
    for c in sorted(set(cuts)):
        t.update(data[last:c])
        last = c
    t.update(data[last:])
    return t


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=300),
    chunk_size=st.integers(1, 40),
    cuts=st.lists(st.integers(0, 300), max_size=12),
)
def test_chunk_tree_matches_naive_reference(data: bytes, chunk_size: int, cuts: list[int]) -> None:
    cuts = [c for c in cuts if c <= len(data)]
    t = feed(data, cuts, chunk_size)
    sha, size, root, n = t.finish()
    assert sha == hashlib.sha256(data).digest()
    assert size == len(data)
    assert n == chunk_count(len(data), chunk_size)
    assert root == naive_chunk_root(data, chunk_size)
    assert root_from_leaves(t.leaves) == root
    for i in range(n):
        chunk = data[i * chunk_size : (i + 1) * chunk_size]
        proof = chunk_proof(t.leaves, i)
        verify_chunk(i, n, chunk, proof, root, chunk_size=chunk_size)


def test_empty_object_has_empty_tree_hash() -> None:
    sha, size, root, n = ChunkTree().finish()
    assert (sha, size, root, n) == (hashlib.sha256(b"").digest(), 0, merkle.EMPTY_ROOT, 0)


def test_real_chunk_size_and_pieces_of_any_size() -> None:
    data = os.urandom(3 * CHUNK_SIZE + 12345)
    whole = ChunkTree()
    whole.update(data)
    pieces = ChunkTree()
    for i in range(0, len(data), 65_537):
        pieces.update(memoryview(data)[i : i + 65_537])
    assert whole.finish() == pieces.finish()
    _, _, root, n = whole.finish()
    assert n == 4
    assert root == naive_chunk_root(data, CHUNK_SIZE)
    # An exact multiple of the chunk size has no empty trailing chunk.
    exact = ChunkTree()
    exact.update(data[: 2 * CHUNK_SIZE])
    assert exact.finish()[3] == 2


def test_verify_chunk_refuses_tampering() -> None:
    size = 8
    data = bytes(range(5 * size + 3))
    t = feed(data, [], size)
    _, _, root, n = t.finish()
    chunk, proof = data[size : 2 * size], chunk_proof(t.leaves, 1)
    verify_chunk(1, n, chunk, proof, root, chunk_size=size)
    with pytest.raises(merkle.RootMismatchError):
        verify_chunk(1, n, bytes([chunk[0] ^ 1]) + chunk[1:], proof, root, chunk_size=size)
    with pytest.raises(merkle.ProofError):
        verify_chunk(2, n, chunk, proof, root, chunk_size=size)
    with pytest.raises(merkle.ProofError):
        verify_chunk(1, n, chunk, proof[:-1], root, chunk_size=size)
    bad = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    with pytest.raises(merkle.RootMismatchError):
        verify_chunk(1, n, chunk, bad, root, chunk_size=size)
    # A shortened chunk cannot pass, even where its proof would.
    with pytest.raises(merkle.ProofShapeError):
        verify_chunk(1, n, chunk[:-1], proof, root, chunk_size=size)
    with pytest.raises(merkle.ProofShapeError):
        verify_chunk(n, n, chunk, proof, root, chunk_size=size)
    with pytest.raises(merkle.ProofShapeError):
        verify_chunk(n - 1, n, b"", chunk_proof(t.leaves, n - 1), root, chunk_size=size)
    last = data[(n - 1) * size :]
    verify_chunk(n - 1, n, last, chunk_proof(t.leaves, n - 1), root, chunk_size=size)


def test_update_after_finish_is_refused() -> None:
    t = ChunkTree()
    t.update(b"abc")
    t.finish()
    with pytest.raises(ValueError):
        t.update(b"d")
