"""Shared-secret checks: constant-time, several valid secrets for rotation, a missing secret disables the route."""

import hmac

from flask import current_app, request

from webhook_app.errors import ApiError


def configured_secrets(config_key: str) -> list[str]:
    """The comma-separated secrets in `config_key`; several are valid at once so a secret rotates without downtime."""
    raw = current_app.config.get(config_key) or ""
    return [secret.strip() for secret in raw.split(",") if secret.strip()]


def required_secrets(config_key: str, *, disabled_error: str) -> list[str]:
    """The secrets in `config_key`; none configured disables the endpoint (503), it never means "no auth"."""
    secrets = configured_secrets(config_key)
    if not secrets:
        raise ApiError(503, disabled_error, f"This endpoint is disabled: {config_key} is not set on the server.")
    return secrets


def matches_any(candidate: str, secrets: list[str]) -> bool:
    return matching_slot(candidate, secrets) is not None


def matching_slot(candidate: str, secrets: list[str]) -> int | None:
    """The position of the secret `candidate` equals, or None; the position names the caller without the secret."""
    # Compare with every secret, no early exit, so timing reveals neither a match nor which one.
    slot = None
    for position, secret in enumerate(secrets):
        if hmac.compare_digest(candidate.encode(), secret.encode()):
            slot = position
    return slot


def require_bearer(config_key: str, *, disabled_error: str) -> None:
    """Raise unless the request's `Authorization: Bearer` token is one of the secrets in `config_key`."""
    secrets = required_secrets(config_key, disabled_error=disabled_error)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="ingest"'}
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "Missing bearer token: send 'Authorization: Bearer <token>'.",
            headers=challenge,
        )
    if not matches_any(token.strip(), secrets):
        raise ApiError(401, "unauthorized", "The bearer token is not valid.", headers=challenge)


def require_header_token(header: str, config_key: str, *, disabled_error: str) -> str:
    """Raise unless the `header` request header holds one of the secrets in `config_key`.

    Returns who called, as `<config key>#<slot>` (which rotation slot matched), fit for an audit log.
    """
    secrets = required_secrets(config_key, disabled_error=disabled_error)
    token = request.headers.get(header, "").strip()
    if not token:
        raise ApiError(401, "unauthorized", f"Missing credential: send the '{header}' header.")
    slot = matching_slot(token, secrets)
    if slot is None:
        raise ApiError(401, "unauthorized", f"The '{header}' credential is not valid.")
    return f"{config_key}#{slot}"
