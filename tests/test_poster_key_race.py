"""A poster's key that changes while its event waits in the queue.

The API checks a signature against the key it knows, then queues the event; if an admin
replaces the key (or another worker process's cache was stale) before the batch commits,
the record would carry a key that is not the one registered at its log position, and the
offline verifier would reject a record the ledger had accepted. The sequencer therefore
checks again under the writer lock, and refuses the unit.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from api.posters import PosterKeys
from ledger.records import validate_event
from ledger.sequencer import PosterKeyChanged
from tests.conftest import make_event

TOKEN = "tok-poster-1"


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def signed_as(lg: Any, key: Ed25519PrivateKey | None) -> Any:
    ev = validate_event(make_event(project="K1"), lg.catalogue)
    if key is None:
        return ev
    sig = {"public_key": base64.b64encode(raw(key)).decode(), "signature": "c2ln"}
    return dataclasses.replace(ev, poster_signature=sig)


def test_a_key_replaced_before_commit_refuses_the_unit(ledger_factory: Any) -> None:
    lg = ledger_factory()
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys = PosterKeys(lg.store)
    keys.set(TOKEN, raw(old), True, replace=False)
    lg.append([signed_as(lg, old)], TOKEN).result(30)
    keys.set(TOKEN, raw(new), True, replace=True)  # the admin rotates the key
    size = lg.head().size
    with pytest.raises(PosterKeyChanged, match=r"events\[1\]\.signature"):
        lg.append([signed_as(lg, new), signed_as(lg, old)], TOKEN).result(30)
    assert lg.head().size == size, "part of a refused unit was appended"
    [again] = lg.append([signed_as(lg, new)], TOKEN).result(30)
    assert again.index == size


def test_unsigned_events_of_a_poster_that_must_sign_are_refused(ledger_factory: Any) -> None:
    lg = ledger_factory()
    key = Ed25519PrivateKey.generate()
    PosterKeys(lg.store).set(TOKEN, raw(key), True, replace=False)
    with pytest.raises(PosterKeyChanged):
        lg.append([signed_as(lg, None)], TOKEN).result(30)
    # Another poster, with no key, posts unsigned events as before; a signed one is refused.
    lg.append([signed_as(lg, None)], "tok-other").result(30)
    with pytest.raises(PosterKeyChanged):
        lg.append([signed_as(lg, key)], "tok-other").result(30)


def test_an_optional_key_allows_unsigned_events(ledger_factory: Any) -> None:
    lg = ledger_factory()
    key = Ed25519PrivateKey.generate()
    PosterKeys(lg.store).set(TOKEN, raw(key), False, replace=False)
    lg.append([signed_as(lg, None), signed_as(lg, key)], TOKEN).result(30)
