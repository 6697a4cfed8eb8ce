"""The web console (issue 15): server-rendered pages served at ``/`` by ``jianzheng serve``.

Chinese first, with an English switch (:mod:`api.console.i18n`); sign-in with a token into
a server-side session (:mod:`api.console.sessions`); pages over the API's own reads
(:mod:`api.console.pages`). Every asset is served from ``static/`` in this package: no
CDN, no build step.
"""
