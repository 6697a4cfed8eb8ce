"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) served offline (issue 15: every asset
local, no CDN). The bearer scheme they offer ("Authorize", then "Try it out" sends
``Authorization: Bearer <token>``) is declared by :data:`api.deps.bearer_scheme`.

The pages load only the vendored builds under ``/static/vendor/`` (provenance and update
steps: api/console/static/vendor/README.md) and run under the console's strict
Content-Security-Policy: no inline script at all (Swagger UI is started by
``/static/api-docs.js``), nothing from another origin; only ReDoc's page allows inline
styles, which it generates.
"""

from __future__ import annotations

import html

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from api.console.pages import CSP, SECURITY_HEADERS, csp_header

OPENAPI_URL = "/openapi.json"
VENDOR = "/static/vendor"
TITLE = "Jianzheng 见证 API"


def _headers(**directives: str) -> dict[str, str]:
    return {**SECURITY_HEADERS, "Content-Security-Policy": csp_header({**CSP, **directives})}


#: /docs: the console's policy as it is, plus fetches to this site only ("Try it out").
DOCS_HEADERS = _headers(**{"connect-src": "'self'"})

_DOCS_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(TITLE)}</title>
<link rel="stylesheet" href="{VENDOR}/swagger-ui/swagger-ui.css">
<link rel="icon" type="image/png" href="{VENDOR}/swagger-ui/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi="{OPENAPI_URL}"></div>
<script src="{VENDOR}/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""


def docs_page() -> HTMLResponse:
    """Swagger UI over this service's OpenAPI document, every file from this server."""
    return HTMLResponse(_DOCS_PAGE, headers=DOCS_HEADERS)


#: /redoc: ReDoc writes its styles into ``<style>`` elements at run time, and its bundled
#: styled-components does not put ReDoc's ``nonce`` option on all of them (the page fails
#: to render with a nonce), so inline *styles* are allowed here, and here only; scripts
#: stay 'self' only. Its search index runs in a worker made from a ``blob:`` URL of its own
#: code.
REDOC_HEADERS = _headers(
    **{"style-src": "'self' 'unsafe-inline'", "connect-src": "'self'", "worker-src": "blob:"}
)

_REDOC_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(TITLE)}</title>
<link rel="icon" type="image/png" href="{VENDOR}/swagger-ui/favicon-32x32.png">
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<noscript>ReDoc needs JavaScript; the same document is at {OPENAPI_URL}.</noscript>
<redoc spec-url="{OPENAPI_URL}"></redoc>
<script src="{VENDOR}/redoc/redoc.standalone.js"></script>
</body>
</html>
"""


def redoc_page() -> HTMLResponse:
    """ReDoc over the same document, every file from this server."""
    return HTMLResponse(_REDOC_PAGE, headers=REDOC_HEADERS)


def install_api_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` (out of the schema). The app must be made with
    ``docs_url=None, redoc_url=None`` so FastAPI's CDN-loading pages are not added."""
    app.add_api_route("/docs", docs_page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc_page, methods=["GET"], include_in_schema=False)
