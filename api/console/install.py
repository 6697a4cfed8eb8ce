"""Mounting the console on the API app: its pages (api/console/pages.py, and those of
api/console/evidence.py and api/console/archive.py, which add themselves to the same
router) and its static assets. Kept apart from the page modules so that none has to
import another's dependants."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.console import archive, bundles, evidence  # noqa: F401  (add their pages to the router)
from api.console.pages import HERE, router
from api.console.rows import RowCache


def install_console(app: FastAPI) -> None:
    """Add the console's pages and its static assets (``/static/...``) to ``app``."""
    app.include_router(router)
    # Timeline rows of this app's ledger, kept across requests (api/console/rows.py).
    app.state.console_rows = RowCache()
    bundles.install(app)  # export jobs and the bounds of "verify a bundle"
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
