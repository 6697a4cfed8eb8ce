"""The web console (issue 15): server-rendered pages served at ``/`` by ``jianzheng serve``.

Chinese first, with an English switch (:mod:`api.console.i18n`); sign-in with a token into
a server-side session (:mod:`api.console.sessions`); pages over the API's own reads
(:mod:`api.console.pages`). Every asset is served from ``static/`` in this package: no
CDN, no build step.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"


def install_console(app: FastAPI) -> None:
    """Add the console's pages and its static assets (``/static/...``) to ``app``."""
    from api.console.pages import router

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
