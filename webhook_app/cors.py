"""The app serves servers, never browsers: a request carrying `Origin` is refused, preflights included.

No route ever answers with Access-Control-* headers, so a browser cannot read a response even where the request
is let through (`/health`).
"""

from flask import Flask, request

from webhook_app.errors import ApiError

OPEN_PATHS = frozenset({"/health"})


def init_app(app: Flask) -> None:
    app.before_request(_refuse_browsers)


def _refuse_browsers() -> None:
    if "Origin" in request.headers and request.path not in OPEN_PATHS:
        raise ApiError(
            403,
            "cross_origin_refused",
            "Browser (cross-origin) requests are refused: this service is for server-to-server calls only.",
        )
