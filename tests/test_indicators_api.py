"""Collusion indicators served and verified offline (issue 17), from a reviewer's point of view.

``GET /v1/projects/{p}/indicators`` answers only after the opening, and before it the same
409 for every project, bids or none, colluding or not; the bundle's verifier recomputes the
same indicators offline and reports them beside, never inside, its verdict.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ledger.access import StillSealed
from ledger.indicators import project_indicators
from tests.procs import jianzheng
from tests.tender import COLLUSION, colluding, lawful_tender
from tests.test_sealed import (
    READERS,
    Api,
    _strings,
    api,
    everything_before_the_opening,
    opening_at,
)
from verifier.bundle import verify_bundle
from verifier.indicators import NOTICE_EN, NOTICE_ZH
from verifier.report import render_html, render_json, render_text
from verifier.sealed import commit
from verifier.trust import TrustPolicy

__all__ = ["api"]

P = "E330100000170"


def url(project: str) -> str:
    return f"/v1/projects/{project}/indicators"


def post_in_two(api: Api, evs: list[dict[str, Any]], files: dict[str, bytes]) -> None:
    """Everything before the opening, then the rest."""
    cut = opening_at(evs)
    api.post(evs[:cut], files)
    api.post(evs[cut:])


def test_before_the_opening_every_project_gets_the_same_refusal(api: Api) -> None:
    """No side door: before the opening a project with colluding bids, one with lawful bids
    and one with no bid at all answer alike (status and body, the project's code aside), and
    no read is recorded."""
    projects = {"E330100000171": "same_device", "E330100000172": "lawful", "E330100000173": ""}
    answers = []
    for project, kind in projects.items():
        files: dict[str, bytes] = {}
        if kind == "lawful":
            evs = lawful_tender(project, files)
        elif kind:
            evs = colluding(kind, project, files)
        else:
            evs = [e for e in lawful_tender(project) if not e["type"].startswith("bid_")][:5]
        cut = opening_at(evs) if kind else len(evs)
        api.post(evs[:cut], files)
        for role in ("reviewer", "archivist"):
            r = api.get(role, url(project))
            answers.append((r.status_code, r.text.replace(project, "P")))
        access = api.get("reviewer", f"/v1/projects/{project}/access").json()
        assert access["access"] == []
    assert len(set(answers)) == 1, answers
    status, body = answers[0]
    assert status == 409 and json.loads(body)["error"]["code"] == "sealed"
    # Admin is no sealed reader: the same refusal. A platform token reads nothing; a project
    # out of scope or unknown is 404.
    r = api.get("admin", url("E330100000171"))
    assert (r.status_code, r.text.replace("E330100000171", "P")) == answers[0]
    assert api.get("platform", url("E330100000171")).status_code == 403
    assert api.get("reviewer", url("E330100000199")).status_code == 404


def test_after_the_opening_a_reviewer_gets_each_indicator_with_its_evidence(api: Api) -> None:
    files: dict[str, bytes] = {}
    evs = colluding("same_client_ip", P, files)
    post_in_two(api, evs, files)
    r = api.get("reviewer", url(P))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["notice"] == NOTICE_EN and got["notice_zh"] == NOTICE_ZH
    [ind] = got["indicators"]
    assert ind["id"] == "I03" and ind["kind"] == "same_client_ip"
    assert ind["article_zh"] == "招标投标法实施条例 第四十条（一）（二）之迹象"
    listing = api.get("reviewer", f"/v1/projects/{P}/events", limit=1000).json()
    sealed = {r["index"]: r for r in listing["records"] if r["project"].endswith("~sealed")}
    for e in ind["evidence"]:
        # Each piece of evidence names a sealed bid record by log index and sealed-chain seq,
        # and the value its opening holds.
        rec = sealed[e["index"]]
        assert rec["seq"] == e["seq"]
        opening = listing["openings"][str(e["index"])]
        assert opening["payload.client_ip"]["value"] == e["value"] == "58.100.12.34"
    assert got["records_read"] == 10 and got["unopened"] == 0
    # Admin is no sealed reader, after the opening too.
    assert api.get("admin", url(P)).status_code == 409
    # The read is recorded like any other read of the project's evidence.
    access = api.get("reviewer", f"/v1/projects/{P}/access").json()["access"]
    assert [a["payload"]["what"] for a in access].count("indicators") == 1


METADATA = ("client_ip", "device_id", "file_creator", "file_tool", "project_manager_id")


def test_what_platforms_capture_at_bid_time_is_sealed_until_the_opening(api: Api) -> None:
    """Before the opening no reader finds an address, device, creator, tool or manager in
    anything the API or the public log answers, nor can test one against a commitment with
    a salt in sight; afterwards each is committed in its own part and opens."""
    files: dict[str, bytes] = {}
    evs = colluding("same_client_ip", P, files)
    cut = opening_at(evs)
    api.post(evs[:cut], files)
    values = {
        (name, e["payload"][name]) for e in evs if e["type"] == "bid_submitted" for name in METADATA
    }
    size = api.lg.head().size
    for role in READERS:
        got = everything_before_the_opening(api, role, P, size)
        strings = set(_strings(got))
        seen = [v for _, v in values if any(v in s for s in strings)]
        assert seen == [], (role, seen)
        text = json.dumps(got, ensure_ascii=False)
        salts = [base64.b64decode(x) for x in re.findall(r"[A-Za-z0-9+/]{43}=", text)]
        for rec in (r for r in got if isinstance(r, dict) and "record" in r):
            for c in (rec["record"].get("commitments") or {}).values():
                for (name, v), salt in itertools.product(values, salts):
                    assert base64.b64encode(commit(f"payload.{name}", salt, v)).decode() != c
    api.post(evs[cut:])
    listing = api.get("reviewer", f"/v1/projects/{P}/events", limit=1000).json()
    bids = [r for r in listing["records"] if r["type"] == "bid_submitted"]
    for r in bids:
        assert {f"payload.{n}" for n in METADATA} <= set(r["commitments"])
        opened = listing["openings"][str(r["index"])]
        assert {(n, opened[f"payload.{n}"]["value"]) for n in METADATA} <= values


def test_the_ledger_call_live_alerts_make_refuses_before_the_opening(api: Api) -> None:
    """``ledger.indicators.project_indicators`` (what an alert calls once an opening is
    committed) refuses before it, appending nothing; after it, it answers."""
    files: dict[str, bytes] = {}
    evs = colluding("same_deposit_account", P, files)
    cut = opening_at(evs)
    api.post(evs[:cut], files)
    size = api.lg.head().size
    with pytest.raises(StillSealed):
        project_indicators(api.lg, P)
    assert api.lg.head().size == size
    api.post(evs[cut:])
    [ind] = project_indicators(api.lg, P).items
    assert ind.kind.name == "same_deposit_account"
    assert [e.field for e in ind.evidence] == ["payload.payer_account"] * 2


def test_the_lawful_tender_raises_none_online(api: Api) -> None:
    files: dict[str, bytes] = {}
    api.post(lawful_tender(P, files), files)
    got = api.get("archivist", url(P)).json()
    assert got["indicators"] == []


def test_the_bundle_verifier_recomputes_them_and_the_verdict_does_not_change(
    api: Api, tmp_path: Path
) -> None:
    """Every collusion pattern planted in one project (bidders 1 and 2): the offline report
    lists the same indicators as the server, and the bundle still verifies, exit code 0."""
    files: dict[str, bytes] = {}
    evs = colluding("same_device", P, files)
    bids = [e for e in evs if e["type"] == "bid_submitted"]
    for field in ("project_manager_id", "file_creator", "client_ip"):
        bids[2]["payload"][field] = bids[1]["payload"][field]
    api.post(evs, files)
    online = api.get("reviewer", url(P)).json()["indicators"]
    assert {i["kind"] for i in online} == {
        "same_device",
        "same_project_manager",
        "same_file_creator",
        "same_client_ip",
    }
    r = api.get("reviewer", f"/v1/projects/{P}/bundle")
    assert r.status_code == 200, r.text
    bundle = tmp_path / "b.zip"
    bundle.write_bytes(r.content)
    trust = TrustPolicy(api.lg.signer.verifier)
    rep = verify_bundle(bundle, trust)
    assert rep.ok
    # The report's indicators are the server's: same ids, articles, strengths and evidence.
    assert [(i.id, i.source_zh, i.strength) for i in rep.indicators] == [
        (i["id"], i["article_zh"], i["strength"]) for i in online
    ]
    assert [i.evidence["items"] for i in rep.indicators] == [i["evidence"] for i in online]
    assert rep.indicators_about["computed"] is True
    # Shown in every format, each time saying that it is no verdict.
    j = json.loads(render_json(rep))
    assert j["ok"] is True and [i["id"] for i in j["indicators"]] == [i["id"] for i in online]
    assert all(NOTICE_EN in i["message"] and NOTICE_ZH in i["message_zh"] for i in j["indicators"])
    assert j["indicators_about"]["notice"] == NOTICE_EN
    text = render_text(rep)
    assert NOTICE_ZH in text and NOTICE_EN in text and "I04" in text
    html = render_html(rep)
    assert NOTICE_ZH in html and "第四十条（三）" in html and "不是结论" in html
    # The command line: exit code 0, the indicators in its JSON.
    tf = tmp_path / "trust.txt"
    tf.write_text(f"log {api.c.get('/v1/log').json()['verifier_key']}\n")
    v = jianzheng("verify", str(bundle), "--trust", str(tf), "--format", "json", check=False)
    assert v.returncode == 0, v.stdout
    assert len(json.loads(v.stdout)["indicators"]) == 4


def test_each_pattern_is_found_offline(api: Api, tmp_path: Path) -> None:
    trust = TrustPolicy(api.lg.signer.verifier)
    for n, kind in enumerate(COLLUSION):
        project = f"E33010000018{n}"
        files: dict[str, bytes] = {}
        api.post(colluding(kind, project, files), files)
        r = api.get("reviewer", f"/v1/projects/{project}/bundle")
        rep = verify_bundle(r.content, trust)
        assert rep.ok and [i.evidence["kind"] for i in rep.indicators] == [kind]


def test_a_bundle_before_the_opening_reports_none_computed_and_why(api: Api) -> None:
    """A project still in its notice phase (no sealed events) exports; its report says the
    indicators were not computed, and why, and the bundle verifies."""
    api.post(lawful_tender(P)[:5])
    r = api.get("reviewer", f"/v1/projects/{P}/bundle")
    assert r.status_code == 200, r.text
    rep = verify_bundle(r.content, TrustPolicy(api.lg.signer.verifier))
    assert rep.ok and rep.indicators == []
    assert rep.indicators_about["computed"] is False
    assert "no bid opening" in rep.indicators_about["reason"]
    assert "no bid opening" not in render_text(rep)  # nothing to show, nothing claimed


def console_sign_in(api: Api, who: str) -> None:
    """Sign the test client in through the console's form, as a browser would."""
    r = api.c.get("/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert csrf is not None
    r = api.c.post(
        "/sign-in", data={"csrf": csrf[1], "token": api.tok[who]}, follow_redirects=False
    )
    assert r.status_code == 303, r.text


def test_the_console_shows_them_after_the_opening_under_the_notice(api: Api) -> None:
    files: dict[str, bytes] = {}
    evs = colluding("same_device", P, files)
    cut = opening_at(evs)
    api.post(evs[:cut], files)
    api.post([e for e in lawful_tender("E330100000174") if not e["type"].startswith("bid_")][:5])
    console_sign_in(api, "reviewer")
    # Before the opening: the notice, and that nothing is computed; alike for every project.
    before = [api.c.get(f"/projects/{p}/indicators") for p in (P, "E330100000174")]
    assert {r.status_code for r in before} == {409}
    assert before[0].text.replace(P, "P") == before[1].text.replace("E330100000174", "P")
    assert "开标前不计算预警指标" in before[0].text and 'id="indicators"' not in before[0].text
    api.post(evs[cut:])
    page = api.c.get(f"/projects/{P}/indicators")
    assert page.status_code == 200, page.text
    assert NOTICE_ZH in page.text and 'data-kind="same_device"' in page.text
    online = api.get("reviewer", url(P)).json()["indicators"]
    for e in online[0]["evidence"]:
        assert f'href="/events/{e["index"]}"' in page.text
    en = api.c.get(f"/projects/{P}/indicators", params={"lang": "en"})
    assert NOTICE_EN in en.text
    # The timeline links to it.
    assert f'href="/projects/{P}/indicators"' in api.c.get(f"/projects/{P}").text
