"""Poster signatures in evidence bundles: every record's signature is checked offline, and
its key against the key its poster had registered at that log index (``posters.json``,
signed by the log through the project head)."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from ledger.bundle import plan_bundle, write_bundle
from ledger.records import validate_event
from ledger.service import Ledger
from tests.conftest import make_event
from tests.test_bundle import edit_records, failed, lines, members, rebuild
from verifier import bundle as fmt
from verifier.bundle import VerificationReport, verify_bundle
from verifier.canonical import canonicalize
from verifier.note import parse_note, sign_note
from verifier.poster import sign_event
from verifier.trust import TrustPolicy

PROJECT = "E330100000077"


def pub(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclasses.dataclass
class Signed:
    lg: Ledger
    poster: str  # the platform token's id, which posted every record
    k1: Ed25519PrivateKey  # registered by the platform, then replaced
    k2: Ed25519PrivateKey  # set by an admin before seq 3
    tmp: Path

    def export(self, name: str = "bundle.zip") -> Path:
        path = self.tmp / name
        write_bundle(plan_bundle(self.lg, PROJECT), path)
        return path

    def verify(self, path: Path) -> VerificationReport:
        return verify_bundle(path, TrustPolicy(self.lg.signer.verifier), rules=False)

    def commit(self, ev: dict[str, Any], key: Ed25519PrivateKey | None) -> None:
        """Commit straight into the ledger, as a ledger that skipped the poster checks would
        (the API's, and the sequencer's second look under the writer lock)."""
        sub = validate_event(ev, self.lg.catalogue)
        if key is not None:
            sig = {"public_key": pub(key), "signature": sign_event(ev, key)}
            sub = dataclasses.replace(sub, poster_signature=sig)
        with mock.patch("ledger.sequencer.stale_signature", lambda *a: None):
            self.lg.append([sub], self.poster).result(timeout=30)


def event(n: int) -> dict[str, Any]:
    payload = {
        "method": "open_tender",
        "estimate": n,
        "extensions": {"cn.gov.hz.ggzy/name": f"第{n}号公告"},
    }
    return make_event(project=PROJECT, payload=payload)


@pytest.fixture
def signed(ledger_factory: Any, tmp_path: Path) -> Iterator[Signed]:
    lg: Ledger = ledger_factory()
    poster, token = create_token(lg.store, "platform")
    admin = create_token(lg.store, "admin")[1]
    k1, k2 = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    with TestClient(create_app(lg, rate_limit=0)) as c:
        c.put("/v1/poster-key", json={"public_key": pub(k1)}, headers=h(token)).raise_for_status()
        c.post("/v1/events", json=make_event(project="OTHER"), headers=h(admin))
        for n, key in enumerate([k1, k1, k1, k2, k2]):
            if n == 3:  # the admin rotates the key between seq 2 and seq 3
                r = c.put(
                    f"/v1/tokens/{poster}/poster-key",
                    json={"public_key": pub(k2)},
                    headers=h(admin),
                )
                r.raise_for_status()
            ev = event(n)
            ev["signature"] = sign_event(ev, key)
            r = c.post("/v1/events", json=ev, headers=h(token))
            assert r.status_code == 201, r.text
        yield Signed(lg, poster, k1, k2, tmp_path)


def test_signed_records_verify_and_their_keys_are_the_registered_ones(signed: Signed) -> None:
    path = signed.export()
    rep = signed.verify(path)
    assert rep.ok, failed(rep)
    sigs = rep.check("poster_signatures")
    assert sigs.status == "pass" and "5 record(s) carry a valid poster signature" in sigs.message
    assert sorted((s["public_key"], s["records"]) for s in sigs.extra["signers"]) == sorted(
        [(pub(signed.k1), 3), (pub(signed.k2), 2)]
    )
    keys = rep.check("poster_keys")
    assert keys.status == "pass"
    assert keys.extra["posters"] == [
        {"poster": signed.poster, "keys": [pub(signed.k1), pub(signed.k2)]}
    ]
    # posters.json: who posted what, and each key's span of log indexes.
    doc = json.loads(members(path)[fmt.POSTERS])
    [entry] = doc["posters"]
    assert entry["poster"] == signed.poster and entry["records"] == [0, 1, 2, 3, 4]
    first, second = entry["keys"]
    assert first["until_index"] == second["from_index"] and second["until_index"] is None
    rec3 = json.loads(lines(members(path)[fmt.RECORDS])[3])
    assert first["from_index"] <= rec3["index"] - 1 < second["from_index"] <= rec3["index"]


def test_a_tampered_poster_signature_is_named(signed: Signed) -> None:
    def tamper(ls: list[bytes]) -> list[bytes]:
        r = json.loads(ls[1])
        sig = bytearray(base64.b64decode(r["poster_signature"]["signature"]))
        sig[10] ^= 1
        r["poster_signature"]["signature"] = base64.b64encode(bytes(sig)).decode()
        ls[1] = canonicalize(r)
        return ls

    path = rebuild(edit_records(members(signed.export()), tamper), signed.tmp / "t.zip")
    rep = signed.verify(path)
    f = failed(rep)
    assert not rep.ok
    assert "record seq 1" in f["poster_signatures"] and "does not verify" in f["poster_signatures"]
    [failure] = rep.check("poster_signatures").extra["failures"]
    assert failure["seq"] == 1 and failure["error"] == "PosterSignatureError"
    assert "record seq 1" in f["inclusion"]  # the record's hash changed too


def test_a_record_signed_with_another_key_than_registered_is_caught(signed: Signed) -> None:
    """Committed records whose signatures verify, but not with the poster's key of the time:
    a stranger's key, the key the admin had replaced, and no signature where one was due."""
    stranger = Ed25519PrivateKey.generate()
    signed.commit(event(5), stranger)
    signed.commit(event(6), signed.k1)
    signed.commit(event(7), None)
    rep = signed.verify(signed.export())
    assert rep.check("inclusion").status == "pass"  # these records are genuinely logged
    assert rep.check("poster_signatures").status == "pass"
    assert pub(stranger) in {
        s["public_key"] for s in rep.check("poster_signatures").extra["signers"]
    }
    keys = rep.check("poster_keys")
    assert keys.status == "fail" and not rep.ok
    assert keys.message.startswith("3 record(s) not signed as their poster registered")
    assert "record seq 5" in keys.message and signed.poster in keys.message
    assert pub(stranger) in keys.message and pub(signed.k2) in keys.message
    assert [(x["seq"], x["error"], x["poster"]) for x in keys.extra["failures"]] == [
        (5, "UnregisteredPosterKey", signed.poster),
        (6, "UnregisteredPosterKey", signed.poster),
        (7, "MissingPosterSignature", signed.poster),
    ]


def test_a_rewritten_poster_registry_is_refused(signed: Signed) -> None:
    stranger = Ed25519PrivateKey.generate()
    signed.commit(event(5), stranger)
    m = members(signed.export())
    doc = json.loads(m[fmt.POSTERS])
    doc["posters"][0]["keys"].append(
        {"public_key": pub(stranger), "required": True, "from_index": 0, "until_index": None}
    )
    m[fmt.POSTERS] = canonicalize(doc)
    rep = signed.verify(rebuild(m, signed.tmp / "t.zip"))
    assert "not the registry the log signed" in failed(rep)["poster_keys"]
    # Removing the registry does not help either: the project head names it.
    del m[fmt.POSTERS]
    rep = signed.verify(rebuild(m, signed.tmp / "t2.zip"))
    assert "was removed" in failed(rep)["poster_keys"]


def test_a_bundle_from_before_the_registry_only_warns(signed: Signed) -> None:
    m = members(signed.export())
    head = fmt.ProjectHead.parse_body(parse_note(m[fmt.PROJECT_HEAD]).text)
    older = dataclasses.replace(head, posters_sha256=None)
    m[fmt.PROJECT_HEAD] = sign_note(older.body(), [signed.lg.signer]).to_text().encode()
    del m[fmt.POSTERS]
    rep = signed.verify(rebuild(m, signed.tmp / "t.zip"))
    assert rep.ok, failed(rep)
    check = rep.check("poster_keys")
    assert check.status == "warn" and not check.required
    assert rep.check("poster_signatures").status == "pass"
