"""Every error leaves as JSON: `{"error": CODE, "detail": ..., "fields": [...]}` with its HTTP status."""

import logging

from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from webhook_app.landing import LandingUnavailable

log = logging.getLogger(__name__)
# Where an error response leaves its code for the metrics (webhook_app/metrics.py), which count it once it is sent.
ERROR_CODE = "webhook_app.error_code"


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.fields = fields or []
        self.headers = headers or {}


def error_response(
    status: int, error: str, detail: str, fields: list[dict[str, str]] | None = None, headers=None
) -> Response:
    response = jsonify({"error": error, "detail": detail, "fields": fields or []})
    request.environ[ERROR_CODE] = error
    response.status_code = status
    response.headers.update(headers or {})
    return response


def validation_fields(error: ValidationError) -> list[dict[str, str]]:
    """Each schema problem as `{"field": "events.0.start_utc", "problem": ...}`."""
    return [
        {"field": ".".join(str(part) for part in problem["loc"]) or "(body)", "problem": problem["msg"]}
        for problem in error.errors(include_url=False, include_input=False)
    ]


def _log_rejected(status: int, code: str) -> None:
    # The route and the error code only: never the body, a header or the client's address.
    log.info("rejected %s %s: %d %s", request.method, request.url_rule or "(no route)", status, code)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        _log_rejected(error.status, error.error)
        return error_response(error.status, error.error, error.detail, error.fields, error.headers)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        code = (error.name or "error").lower().replace(" ", "_")
        headers = dict(error.get_headers())
        headers.pop("Content-Type", None)
        _log_rejected(error.code or 500, code)
        return error_response(error.code or 500, code, error.description or error.name, headers=headers)

    @app.errorhandler(LandingUnavailable)
    def _landing_unavailable(error: LandingUnavailable) -> Response:
        log.error("landing zone unavailable: %s", error)
        return error_response(
            503,
            "landing_unavailable",
            "The request could not be stored durably; nothing was accepted, retry later.",
            headers={"Retry-After": "5"},
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "The server failed to handle the request; retry later.")
