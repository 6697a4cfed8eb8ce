"""Expert draws anyone can recompute (issue 17; 招标投标法实施条例 第四十六条、第四十八条).

A draw is derived, never chosen. Its inputs come from three parties, and each party
commits before it can see the others' inputs (docs/formats.md, "Expert draws"):

1. ``draw_committed`` fixes the draw's terms: the sorted candidate pool (a sealed field, so
   the record holds only its salted commitment), the number to draw, the exclusion rules,
   the platform's and the supervising department's seed commitments
   (:func:`seed_commitment`), and ``checkpoint_size``: a log size greater than the log's
   size when the commitment was appended, fixed now so that no one chooses it later.
2. The log grows to ``checkpoint_size``; the tree head at exactly that size is unique in an
   append-only log (witnesses cosign a size at or after it; consistency pins the root).
3. Each party reveals its 32-byte seed (``draw_seed_revealed``), only after that tree head.
4. The result (:func:`derive`) is a permutation of the eligible candidates keyed by

       SHA-256( "jianzheng/expert-draw/v1" || 0x0A || JCS(terms)
                || platform_seed || department_seed
                || uint64be(checkpoint_size) || checkpoint_root )

   Only the checkpoint's size and root hash enter it: never cosignatures, their
   timestamps, or the note's text, which a log operator or witness could vary freely.

The experts drawn are the first ``count`` of the permutation; replacements take the next
ones in order. Pure: bytes and JSON values in, a value or :class:`DrawError` out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from verifier.canonical import canonicalize
from verifier.errors import VerifierError

DRAW_CONTEXT = b"jianzheng/expert-draw/v1\n"
SEED_CONTEXT = b"jianzheng/draw-seed/v1\n"
SEED_BYTES = 32
PARTIES = ("platform", "department")
MAX_POOL = 10_000


class DrawError(ValueError, VerifierError):
    """The draw's inputs are malformed or inconsistent (a broken commitment is an integrity
    failure; a recorded result that differs from the derivation is a compliance failure of
    the process, reported by :func:`check_result`)."""


@dataclass(frozen=True)
class Candidate:
    """One expert in the pool: an identifier, the unit employing them, and the parties
    (bidders, the tenderer) they have a declared relation with (回避 by relation)."""

    id: str
    unit: str
    relations: tuple[str, ...] = ()


@dataclass(frozen=True)
class DrawTerms:
    """What ``draw_committed`` fixes before any seed is revealed."""

    draw_id: str
    count: int
    checkpoint_size: int
    excluded_units: tuple[str, ...]
    excluded_relations: tuple[str, ...]
    seed_commitments: Mapping[str, bytes]

    def canonical(self, pool_hash: bytes) -> bytes:
        """JCS of the terms and the pool's hash: binds the derivation to this commitment."""
        return canonicalize(
            {
                "draw_id": self.draw_id,
                "count": self.count,
                "checkpoint_size": self.checkpoint_size,
                "excluded_units": sorted(self.excluded_units),
                "excluded_relations": sorted(self.excluded_relations),
                "seed_commitments": {
                    p: self.seed_commitments[p].hex() for p in sorted(self.seed_commitments)
                },
                "pool_hash": pool_hash.hex(),
            }
        )


def seed_commitment(draw_id: str, party: str, seed: bytes) -> bytes:
    """SHA-256("jianzheng/draw-seed/v1" 0x0A draw_id 0x0A party 0x0A seed).

    Binding the draw and the party stops a party from copying the other's commitment and
    later echoing its reveal."""
    if party not in PARTIES:
        raise DrawError(f"party must be one of {', '.join(PARTIES)}, not {party[:40]!r}")
    if len(seed) != SEED_BYTES:
        raise DrawError(f"{party}: the seed must be {SEED_BYTES} bytes, not {len(seed)}")
    h = hashlib.sha256(SEED_CONTEXT)
    h.update(draw_id.encode("utf-8") + b"\n" + party.encode("ascii") + b"\n")
    h.update(seed)
    return h.digest()


def parse_pool(value: object) -> tuple[Candidate, ...]:
    """The sealed pool as opened: a list of ``"id|unit|related,related..."`` strings
    (``draw_committed.pool``), sorted by id with no id twice, so that its commitment does
    not depend on who listed it."""
    if not isinstance(value, list) or not value:
        raise DrawError("pool must be a non-empty list of candidates")
    if len(value) > MAX_POOL:
        raise DrawError(f"pool has {len(value)} candidates; at most {MAX_POOL}")
    out: list[Candidate] = []
    for i, c in enumerate(value):
        parts = c.split("|") if isinstance(c, str) else []
        if len(parts) != 3 or not parts[0]:
            raise DrawError(f'pool[{i}] must be "id|unit|related,related..."')
        rel = tuple(r for r in parts[2].split(",") if r)
        out.append(Candidate(parts[0], parts[1], rel))
    ids = [c.id for c in out]
    if ids != sorted(ids) or len(set(ids)) != len(ids):
        raise DrawError("pool must be sorted by id, with no id twice")
    return tuple(out)


def pool_hash(pool: Sequence[Candidate]) -> bytes:
    """SHA-256 of the pool's JCS form (the value ``draw_committed`` commits to)."""
    return hashlib.sha256(
        canonicalize([{"id": c.id, "unit": c.unit, "relations": sorted(c.relations)} for c in pool])
    ).digest()


def eligible(pool: Sequence[Candidate], terms: DrawTerms) -> list[Candidate]:
    """The pool less those recused by unit or by relation (第四十六条; 回避)."""
    units, rels = set(terms.excluded_units), set(terms.excluded_relations)
    return [c for c in pool if c.unit not in units and not (set(c.relations) & rels)]


def derive(
    pool: Sequence[Candidate],
    terms: DrawTerms,
    seeds: Mapping[str, bytes],
    checkpoint_size: int,
    checkpoint_root: bytes,
) -> list[str]:
    """The derived order of the eligible candidates (drawn first, then replacements).

    Raises :class:`DrawError` when a seed does not open its commitment or the checkpoint
    is not the one fixed in advance (integrity: the inputs are not the committed ones)."""
    if terms.count < 1:
        raise DrawError("count must be at least 1")
    if checkpoint_size != terms.checkpoint_size:
        raise DrawError(
            f"the draw uses the tree head at size {terms.checkpoint_size}, not {checkpoint_size}"
        )
    if len(checkpoint_root) != 32:
        raise DrawError("checkpoint_root must be 32 bytes")
    for party in PARTIES:
        seed = seeds.get(party)
        if seed is None:
            raise DrawError(f"the {party} has not revealed its seed")
        committed = terms.seed_commitments.get(party)
        if committed is None or seed_commitment(terms.draw_id, party, seed) != committed:
            raise DrawError(f"the {party}'s seed does not open its commitment")
    cands = eligible(pool, terms)
    if len(cands) < terms.count:
        raise DrawError(f"only {len(cands)} eligible candidates for {terms.count} to draw")
    h = hashlib.sha256(DRAW_CONTEXT)
    h.update(terms.canonical(pool_hash(pool)))
    h.update(seeds["platform"] + seeds["department"])
    h.update(checkpoint_size.to_bytes(8, "big") + checkpoint_root)
    seed = h.digest()

    def key(c: Candidate) -> tuple[bytes, str]:
        return hashlib.sha256(seed + c.id.encode("utf-8")).digest(), c.id

    return [c.id for c in sorted(cands, key=key)]


def check_result(
    order: Sequence[str], count: int, drawn: Sequence[str], replacements: Sequence[tuple[str, str]]
) -> list[str]:
    """Where a recorded result departs from the derived ``order`` (empty when it follows it).

    ``drawn`` is the recorded ``expert_ids``; ``replacements`` the recorded
    ``(expert_id, replacement_id)`` pairs in log order: each replacement must be the next
    candidate of the order not yet used."""
    problems: list[str] = []
    want = list(order[:count])
    if sorted(drawn) != sorted(want):
        problems.append(
            f"drawn {', '.join(sorted(drawn))} but the derivation gives {', '.join(sorted(want))}"
        )
    nxt = count
    seated = set(drawn)
    for old, new in replacements:
        if old not in seated:
            problems.append(f"{old} is replaced but was not on the committee")
        expected = order[nxt] if nxt < len(order) else None
        if new != expected:
            problems.append(
                f"{old} replaced by {new}; the derived order gives {expected or 'no one'}"
            )
        seated.discard(old)
        seated.add(new)
        nxt += 1
    return problems


def terms_from_record(fields: Mapping[str, Any]) -> DrawTerms:
    """:class:`DrawTerms` from a ``draw_committed`` record's fields (hex commitments)."""
    if any(not isinstance(fields.get(f"{p}_seed_commitment"), str) for p in PARTIES):
        raise DrawError("draw_committed is malformed: a seed commitment is missing")
    try:
        commits = {p: bytes.fromhex(fields[f"{p}_seed_commitment"]) for p in PARTIES}
        return DrawTerms(
            draw_id=str(fields["draw_id"]),
            count=int(fields["count"]),
            checkpoint_size=int(fields["checkpoint_size"]),
            excluded_units=tuple(fields.get("excluded_units") or ()),
            excluded_relations=tuple(fields.get("excluded_relations") or ()),
            seed_commitments=commits,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise DrawError(f"draw_committed is malformed: {e}") from None
