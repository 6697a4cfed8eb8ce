"""``/docs`` and ``/redoc`` offline, and the bearer scheme in the OpenAPI document (issue 15).

The HTTP tests read the app's own answers: the scheme and which operations declare it
(each of those really answers 401 without a token, each other one does not), and pages
that name nothing outside the server and run under a policy without inline script. The
browser test runs a real ``jianzheng serve`` and Debian's headless Chromium with every
host name unresolvable, authorizes in Swagger UI with a reviewer's token, tries a read
that needs it (200), and renders ReDoc; any Content-Security-Policy violation fails it.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.console.pages import HERE
from ledger.service import Ledger
from tests.browser import save_screenshot, start_chromium
from tests.conftest import make_event
from tests.procs import Server, jianzheng

PROJECT = "E330100000001"
#: The operations anyone may call: the tiles, the log's head, the catalogue, the trusted time.
PUBLIC = {
    ("get", "/log/checkpoint"),
    ("get", "/log/tile/{path}"),
    ("get", "/v1/log"),
    ("get", "/v1/catalogue"),
    ("get", "/v1/catalogue/{type}"),
    ("get", "/v1/checkpoints/{size}/timestamp"),
    ("get", "/v1/tsa/certificate"),
}
#: A value for each path parameter, so that a request reaches the route.
PATH_VALUES = {
    "project": PROJECT,
    "index": "0",
    "sha256": "0" * 64,
    "sub_id": "0" * 16,
    "token_id": "0" * 16,
    "type": "project_registered",
    "size": "1",
    "path": "0/000",
}
WAIT = 20.0
#: The one request ReDoc 2.5.4 makes elsewhere, refused by the page's policy.
REDOC_LOGO = "img-src https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("apidocs")
    lg = Ledger.open(tmp / "data", None, "docs.test/log")
    try:
        with TestClient(create_app(lg, rate_limit=0, auth_failure_rate=0)) as c:
            yield c
    finally:
        lg.close()


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method, path, op


def test_the_openapi_document_declares_the_bearer_scheme(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert "Authorization: Bearer" in scheme["description"]
    ops = list(operations(doc))
    assert len(ops) >= 30
    secured = {(m, p) for m, p, op in ops if op.get("security") == [{"bearer": []}]}
    anonymous = {(m, p) for m, p, op in ops if "security" not in op}
    assert anonymous == PUBLIC
    assert secured | anonymous == {(m, p) for m, p, _ in ops}
    # Neither the console's pages nor the docs themselves are operations of the API.
    paths = set(doc["paths"])
    assert not paths & {"/", "/sign-in", "/projects", "/healthz", "/docs", "/redoc"}


def test_the_declared_security_is_what_the_routes_check(client: TestClient) -> None:
    """Documentation only, but true: every operation said to need a token answers 401
    without one, and no other does."""
    doc = client.get("/openapi.json").json()
    for method, path, op in operations(doc):
        url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "0"), path)
        r = client.request(method.upper(), url)
        if "security" in op:
            assert r.status_code == 401, (method, path, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
        else:
            assert r.status_code != 401, (method, path, r.text)


def local_refs(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', page)


def test_docs_and_redoc_name_nothing_outside_the_server(client: TestClient) -> None:
    for url in ("/docs", "/redoc"):
        r = client.get(url)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        page = r.text
        assert re.findall(r"(?i)\b(?:https?:)?//[\w.-]", page) == [], url
        refs = local_refs(page)
        assert refs and all(ref.startswith("/") and not ref.startswith("//") for ref in refs)
        for ref in refs:
            asset = client.get(ref)
            assert asset.status_code == 200, ref
            assert len(asset.content) > 0
        # No inline script: every <script> loads a file of this site.
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
        assert scripts and all('src="/' in attrs and not body.strip() for attrs, body in scripts)
        csp = r.headers["content-security-policy"]
        policy = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'"
        assert policy["connect-src"] == "'self'" and policy["object-src"] == "'none'"
        assert "unsafe-eval" not in csp and "http" not in csp and "*" not in csp
        # Inline styles on ReDoc's page only (it generates them), never inline scripts.
        want = "'self' 'unsafe-inline'" if url == "/redoc" else "'self'"
        assert policy["style-src"] == want
    # FastAPI's own CDN pages are gone, and so is their OAuth2 redirect page.
    assert client.get("/docs/oauth2-redirect").status_code == 404


def test_the_vendored_files_come_with_their_licences() -> None:
    vendor = HERE / "static" / "vendor"
    for name in (
        "swagger-ui/swagger-ui-bundle.js",
        "swagger-ui/swagger-ui.css",
        "redoc/redoc.standalone.js",
    ):
        assert (vendor / name).stat().st_size > 100_000
        assert (vendor / name).parent.joinpath("LICENSE").is_file()
    readme = (vendor / "README.md").read_text()
    assert "swagger-ui-dist" in readme and "5.35.0" in readme and "2.5.4" in readme


# --- in the browser -------------------------------------------------------------------------


def wait_for(cond: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            got = cond()
        except Exception:  # the page is still being built (a stale or missing element)
            got = None
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


#: Records every Content-Security-Policy violation of a page from its first script on.
WATCH_CSP = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
)


def loaded_elsewhere(driver: Any, base: str) -> list[str]:
    """What the page asked for anywhere but ``base`` (the server), refused or not."""
    names: list[str] = driver.execute_script(
        "return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]"
    )
    return [n for n in names if not n.startswith(base + "/")]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """``jianzheng serve`` with one event, and a reviewer's token."""
    data = tmp_path_factory.mktemp("apidocs-serve") / "data"
    srv = Server(data, None, origin="docs.test/log")
    try:
        platform = jianzheng("token", "create", "--data", str(data), "--role", "platform")
        reviewer = jianzheng("token", "create", "--data", str(data), "--role", "reviewer")
        post = httpx.post(
            srv.url + "/v1/events",
            json=make_event(PROJECT, idempotency_key="docs-1"),
            headers={"Authorization": f"Bearer {platform.stdout.split()[-1]}"},
            timeout=30,
        )
        assert post.status_code == 201, post.text
        yield srv, reviewer.stdout.split()[-1]
    finally:
        srv.stop()


@pytest.fixture
def offline_browser(tmp_path: Path) -> Iterator[Any]:
    """Chromium for which every host name is unresolvable: only 127.0.0.1 answers."""
    driver: Any = start_chromium(
        tmp_path, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
    )
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_CSP})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def test_docs_work_offline_and_try_it_out_sends_the_token(
    served: tuple[Server, str], offline_browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    srv, token = served
    d = offline_browser
    d.get(srv.url + "/docs")
    ops = wait_for(lambda: d.find_elements(By.CSS_SELECTOR, ".opblock"), "the operations")
    assert len(ops) >= 30
    # Authorize: the bearer scheme's dialog takes the token.
    d.find_element(By.CSS_SELECTOR, "button.authorize").click()
    field = wait_for(lambda: d.find_element(By.CSS_SELECTOR, ".auth-container input"), "dialog")
    assert "bearer" in d.find_element(By.CSS_SELECTOR, ".auth-container").text
    field.send_keys(token)
    d.find_element(By.CSS_SELECTOR, ".auth-container button[type=submit]").click()
    wait_for(lambda: d.find_element(By.CSS_SELECTOR, ".auth-container button.btn-done"), "done")
    d.find_element(By.CSS_SELECTOR, ".auth-container button.btn-done").click()
    # Try it out on a read that needs the token.
    path = "/v1/projects/{project}/events"
    op = d.find_element(
        By.XPATH, f"//div[contains(@class,'opblock-get')][.//*[@data-path='{path}']]"
    )
    op.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait_for(lambda: op.find_element(By.CSS_SELECTOR, "button.try-out__btn"), "try it out").click()
    wait_for(
        lambda: op.find_element(By.CSS_SELECTOR, "tr[data-param-name='project'] input"),
        "the project field",
    ).send_keys(PROJECT)
    op.find_element(By.CSS_SELECTOR, "button.execute").click()
    status = wait_for(
        lambda: op.find_element(
            By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status"
        ),
        "the answer",
    )
    assert status.text.strip().startswith("200"), status.text
    assert f"Authorization: Bearer {token}" in op.find_element(By.CSS_SELECTOR, ".curl").text
    assert PROJECT in op.find_element(By.CSS_SELECTOR, ".live-responses-table").text
    # The picture shows the request sent with the token and its 200 answer.
    save_screenshot(d, "api-docs.png", show=".opblock-get .request-url")
    assert d.execute_script("return window.__csp") == []
    assert loaded_elsewhere(d, srv.url) == []

    d.get(srv.url + "/redoc")
    wait_for(
        lambda: len(d.find_elements(By.CSS_SELECTOR, "[data-section-id^='operation/']")) >= 30,
        "ReDoc's operations",
    )
    text = d.find_element(By.TAG_NAME, "body").text
    assert "Jianzheng" in text and "/v1/projects/{project}/events" in text
    assert "bearer" in text  # each secured operation lists its authorization
    save_screenshot(d, "api-redoc.png")
    # ReDoc always tries its maker's logo from a CDN; the policy refuses it (and the page
    # hides the image). Nothing else is refused.
    assert d.execute_script("return window.__csp") in ([], [REDOC_LOGO])
    assert loaded_elsewhere(d, srv.url) in ([], [REDOC_LOGO.split()[1]])
