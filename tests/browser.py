"""Headless Chromium for the browser tests, from Debian's packages only.

``scripts/test`` installs ``chromium`` and ``chromium-driver`` (one version, so the driver
always matches the browser). Selenium is pointed at ``/usr/bin/chromedriver`` explicitly, so
Selenium Manager never tries to download a driver or a browser. A missing browser skips the
test locally and fails it under ``CI=true``, like the database tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.fixtures_servers import _unavailable

CHROMIUM = os.environ.get("JIANZHENG_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("JIANZHENG_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
# Root in a container has no user namespace for the sandbox; the pages are our own.
_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage")


def _require_chromium() -> None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            _unavailable("Chromium", f"{path} is missing (scripts/test installs it)")


def screenshot(url: str, out: Path, *, width: int = 1280, height: int = 1600) -> Path:
    """Render ``url`` in headless Chromium and save a PNG at ``out`` (no driver needed)."""
    _require_chromium()
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [CHROMIUM, *_FLAGS, f"--window-size={width},{height}", f"--screenshot={out}", url],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


def start_chromium(tmp_path: Path, *flags: str) -> object:
    """A Selenium WebDriver on Debian's headless Chromium with a profile under
    ``tmp_path`` and ``flags`` added (e.g. ``--host-resolver-rules=...``); the caller quits
    it."""
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*_FLAGS, *flags):
        opts.add_argument(flag)
    opts.add_argument("--window-size=1280,1600")
    opts.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    opts.add_experimental_option(
        "prefs", {"download.default_directory": str(tmp_path / "downloads")}
    )
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """A Selenium WebDriver on Debian's headless Chromium, closed after the test."""
    driver = start_chromium(tmp_path)
    try:
        yield driver
    finally:
        driver.quit()  # type: ignore[attr-defined]
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def screenshot_dir() -> Path:
    """Where tests put screenshots: ``docs/screenshots/`` (shown in the README) when
    ``JIANZHENG_SCREENSHOTS=1``, else a scratch folder, so that an ordinary test run
    leaves the checkout as it was."""
    if os.environ.get("JIANZHENG_SCREENSHOTS") == "1":
        out = SCREENSHOTS
    else:
        out = Path(tempfile.gettempdir()) / "jianzheng-screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


#: The viewport of saved screenshots (small enough for the README and the repository).
SHOT_WIDTH, SHOT_HEIGHT = 1280, 800


def save_screenshot(driver: object, name: str, show: str | None = None) -> Path:
    """Save the browser's current page, as a ``SHOT_WIDTH`` x ``SHOT_HEIGHT`` viewport
    shows it, as ``<screenshot_dir()>/<name>``; the test's own window is left as it was.
    ``show``: a CSS selector of what the picture is about, scrolled into the middle."""
    out = screenshot_dir() / name
    d: Any = driver
    metrics = {"width": SHOT_WIDTH, "height": SHOT_HEIGHT, "deviceScaleFactor": 1, "mobile": False}
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        if show is not None:
            d.execute_script(
                "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})", show
            )
        d.save_screenshot(str(out))
    finally:
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return out


#: How long a browser test waits for a page or an element before it fails.
WAIT = 60.0


def wait_for(cond: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``cond`` until it returns something true; fail naming ``what`` after ``timeout``.

    A click that submits a form or follows a link returns before the next page exists, so
    an element looked up meanwhile may be missing or belong to the page being replaced:
    both count as "not yet"."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = cond()
        except (NoSuchElementException, StaleElementReferenceException):
            got = None
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class SignInSite(Protocol):
    """A served console and the tokens of its test users, by name."""

    @property
    def url(self) -> str: ...

    @property
    def tokens(self) -> dict[str, str]: ...


def sign_in(driver: Any, site: SignInSite, who: str) -> None:
    """Sign in through the console's form with the token of ``who``."""
    from selenium.webdriver.common.by import By

    driver.get(site.url + "/sign-in")
    driver.find_element(By.ID, "token").send_keys(site.tokens[who])
    driver.find_element(By.ID, "sign-in").click()
    wait_for(lambda: driver.current_url.endswith("/projects"), "the projects page")
