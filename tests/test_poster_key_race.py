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
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from ledger.auth_epoch import AuthEpoch
from ledger.posters import PosterKeys
from ledger.records import validate_event
from ledger.sequencer import Appended, PosterKeyChanged
from tests.conftest import make_event
from verifier.poster import sign_event

TOKEN = "tok-poster-1"


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def pub(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(raw(key)).decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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
    with pytest.raises(PosterKeyChanged, match=r"events\[0\]\.signature"):
        lg.append([signed_as(lg, None)], TOKEN).result(30)
    assert lg.head().size == 0
    # Another poster, with no key, posts unsigned events as before; a signed one is refused.
    [ok] = lg.append([signed_as(lg, None)], "tok-other").result(30)
    assert ok.index == 0 and not ok.replayed
    with pytest.raises(PosterKeyChanged, match=r"events\[0\]\.signature"):
        lg.append([signed_as(lg, key)], "tok-other").result(30)
    assert lg.head().size == 1


def test_an_optional_key_allows_unsigned_events(ledger_factory: Any) -> None:
    lg = ledger_factory()
    key, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    PosterKeys(lg.store).set(TOKEN, raw(key), False, replace=False)
    done = lg.append([signed_as(lg, None), signed_as(lg, key)], TOKEN).result(30)
    assert [(a.index, a.replayed) for a in done] == [(0, False), (1, False)]
    # Optional is not "any key": an event signed with another key is still refused.
    with pytest.raises(PosterKeyChanged, match=r"events\[1\]\.signature"):
        lg.append([signed_as(lg, None), signed_as(lg, stranger)], TOKEN).result(30)
    assert lg.head().size == 2


def test_a_replay_of_an_event_signed_with_the_replaced_key_is_answered(
    ledger_factory: Any,
) -> None:
    """A retry (same idempotency key) of an event committed before the rotation gets its
    receipt back: the record already carries the key registered at its index."""
    lg = ledger_factory()
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys = PosterKeys(lg.store)
    keys.set(TOKEN, raw(old), True, replace=False)
    first = dataclasses.replace(signed_as(lg, old), idempotency_key="k-1")
    [committed] = lg.append([first], TOKEN).result(30)
    keys.set(TOKEN, raw(new), True, replace=True)
    done = lg.append([first, signed_as(lg, new)], TOKEN).result(30)
    assert done == [
        Appended(committed.index, committed.event_hash, replayed=True),
        Appended(committed.index + 1, done[1].event_hash),
    ]
    # Only the replayed position is exempt: a new event signed with the old key is not.
    with pytest.raises(PosterKeyChanged, match=r"events\[1\]\.signature"):
        lg.append([first, signed_as(lg, old)], TOKEN).result(30)
    assert lg.head().size == committed.index + 2


def test_the_race_through_the_api_a_stale_worker_cache_gets_409(ledger_factory: Any) -> None:
    """The race itself, end to end: worker A checked the signature against the key in its
    cache; meanwhile an admin rotated the key through worker B. A's signature check passes,
    the sequencer's second look refuses the event with 409 and appends nothing."""
    lg = ledger_factory()
    poster, token = create_token(lg.store, "platform")
    admin = create_token(lg.store, "admin")[1]
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()

    def event(n: int, key: Ed25519PrivateKey, **over: Any) -> dict[str, Any]:
        ev = make_event(project="K2", payload={"method": "open_tender", "estimate": n}, **over)
        ev["signature"] = sign_event(ev, key)
        return ev

    worker_a, worker_b = create_app(lg, rate_limit=0), create_app(lg, rate_limit=0)
    # A's cache holds the key for the whole test: A's requests act as if each had read the
    # authorization epoch just before B's change committed (the race's window; issue 16
    # closed it otherwise), so no timing is needed.
    worker_a.state.poster_keys.CACHE_SECONDS = 3600.0
    worker_a.state.poster_keys.epoch = AuthEpoch(lg.store)
    worker_a.state.poster_keys.epoch.seen = -1
    with TestClient(worker_a) as a, TestClient(worker_b) as b:
        r = a.put("/v1/poster-key", json={"public_key": pub(old)}, headers=bearer(token))
        r.raise_for_status()
        retried = event(1, old, idempotency_key="retry-1")
        r = a.post("/v1/events", json=retried, headers=bearer(token))
        assert r.status_code == 201, r.text
        committed = r.json()["index"]
        r = b.put(
            f"/v1/tokens/{poster}/poster-key", json={"public_key": pub(new)}, headers=bearer(admin)
        )
        r.raise_for_status()
        size = lg.head().size

        r = a.post("/v1/events", json=event(2, old), headers=bearer(token))
        assert r.status_code == 409, r.text
        err = r.json()["error"]
        assert (err["code"], err["field"]) == ("poster_key_changed", "events[0].signature")
        assert "sign it with the current key" in err["message"]
        r = a.post("/v1/events:batch", json={"events": [event(3, old)]}, headers=bearer(token))
        assert r.status_code == 409 and r.json()["error"]["code"] == "poster_key_changed"
        assert lg.head().size == size, "an event signed with the replaced key was appended"

        # The retry of the event committed under the old key still gets its receipt.
        r = a.post("/v1/events", json=retried, headers=bearer(token))
        assert r.status_code == 200 and r.json()["index"] == committed, r.text
        # Worker B knows the new key: the next event, signed with it, lands where A's did not.
        r = b.post("/v1/events", json=event(4, new), headers=bearer(token))
        assert r.status_code == 201 and r.json()["index"] == size, r.text
