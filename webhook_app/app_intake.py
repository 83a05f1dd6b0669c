"""Wires the Ingest Service intake (seed 003) into the app: its config, claim store, limits, audit and routes."""

import os

from flask import Flask

from webhook_app import app_events, audit, crawl, rate_limits, rules, stripe_webhook
from webhook_app.claims import claim_store

# Secrets keep the platform-wide names (read when the app is created, never at import).
SECRETS = ("INGEST_APP_TOKEN", "STRIPE_WEBHOOK_SECRET", "INGEST_IP_HASH_SECRET")
# Settings, each overridable with its WEBHOOK_-prefixed environment variable (WEBHOOK_TRUSTED_PROXIES=1).
DEFAULTS = {
    "TRUSTED_PROXIES": 0,
    "APP_EVENTS_RATE_LIMIT": "60 per minute",
    "APP_CRAWL_RATE_LIMIT": "30 per minute",
    "APP_RULES_RATE_LIMIT": "30 per minute",
    "APP_VIEW_DEDUP_SECONDS": 600,
    "APP_IDEMPOTENCY_TTL_SECONDS": 7 * 24 * 3600,
    "STRIPE_TOLERANCE_SECONDS": 300,
    "CLAIMS_URL": "",
    "CLAIMS_KEY_PREFIX": "ingest:claims:",
}
AUDITED_ACTIONS = {
    "app_events.ingest_events": app_events.ACTION,
    "crawl.ingest_crawl": crawl.ACTION,
    "rules.ingest_rules": rules.ACTION,
    "stripe_webhook.stripe_webhook": stripe_webhook.ACTION,
}


def init_app(app: Flask) -> None:
    for name in SECRETS:
        app.config.setdefault(name, os.environ.get(name))
    for name, value in DEFAULTS.items():
        app.config.setdefault(name, value)
    app.extensions["claims"] = claim_store(
        app.config["CLAIMS_URL"], landing_dir=app.config["LANDING_DIR"], key_prefix=app.config["CLAIMS_KEY_PREFIX"]
    )
    audit.init_app(app, AUDITED_ACTIONS)
    rate_limits.init_app(
        app,
        {app_events.bp: "APP_EVENTS_RATE_LIMIT", crawl.bp: "APP_CRAWL_RATE_LIMIT", rules.bp: "APP_RULES_RATE_LIMIT"},
    )
    for blueprint in (app_events.bp, stripe_webhook.bp, crawl.bp, rules.bp):
        app.register_blueprint(blueprint)
