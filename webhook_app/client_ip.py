"""Who is calling: the client IP behind a known number of proxies, and its keyed hash (never stored raw)."""

import hashlib
import hmac
import ipaddress

from flask import current_app, g, request

from webhook_app.auth import configured_secrets, required_secrets

IP_HASH_KEY_VARIABLE = "INGEST_IP_HASH_SECRET"


def client_ip() -> str:
    """The client address: with `TRUSTED_PROXIES` = n, the n-th `X-Forwarded-For` entry from the right.

    Entries further left are written by the client itself and prove nothing, so they are never used; with fewer
    entries than trusted proxies, or a malformed one, the peer address stands.
    """
    peer = request.remote_addr or "unknown"
    hops = int(current_app.config.get("TRUSTED_PROXIES") or 0)
    if hops <= 0:
        return peer
    forwarded = [part.strip() for header in request.headers.getlist("X-Forwarded-For") for part in header.split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < hops:
        return peer
    try:
        return str(ipaddress.ip_address(forwarded[-hops]))
    except ValueError:
        return peer


def ip_hash_secret(*, required: bool) -> str | None:
    """The key of the IP hash; only the first value counts, as rotating it would split every client in two."""
    if required:
        return required_secrets(IP_HASH_KEY_VARIABLE, disabled_error="ingest_disabled")[0]
    secrets = configured_secrets(IP_HASH_KEY_VARIABLE)
    return secrets[0] if secrets else None


def keyed_ip_hash(secret: str, ip: str) -> str:
    return hmac.new(secret.encode(), ip.encode(), hashlib.sha256).hexdigest()


def client_ip_hash() -> str | None:
    """The caller's keyed IP hash, or None when no key is configured.

    Once per request: the limiter, the route, the audit record and the access log each ask for it.
    """
    if "client_ip_hash" not in g:
        secret = ip_hash_secret(required=False)
        g.client_ip_hash = keyed_ip_hash(secret, client_ip()) if secret else None
    return g.client_ip_hash
