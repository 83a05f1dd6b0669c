"""The webhook/ingest HTTP app: validates, authenticates and lands requests; it knows nothing of Dagster."""

import os
from pathlib import Path
from typing import Any

from flask import Flask

from webhook_app import access_log, app_intake, bigtop, cors, cron, health, metrics, openapi, receipts, scheduler
from webhook_app.errors import register_error_handlers
from webhook_app.landing import LandingWriter

# Secrets and shared paths keep the platform-wide names of the architecture notes; the app's own settings
# come from `WEBHOOK_*` variables (Flask's prefixed env, values parsed as JSON: WEBHOOK_MAX_CONTENT_LENGTH=4194304).
SHARED_ENV = ("BIGTOP_INGEST_TOKEN",)
DEFAULT_MAX_CONTENT_LENGTH = 2 * 1024 * 1024


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        MAX_CONTENT_LENGTH=DEFAULT_MAX_CONTENT_LENGTH,
        LANDING_DIR=_default_landing_dir(),
        **{name: os.environ.get(name) for name in SHARED_ENV},
    )
    app.config.from_prefixed_env("WEBHOOK")
    if test_config:
        app.config.update(test_config)

    app.extensions["landing"] = LandingWriter(app.config["LANDING_DIR"])
    register_error_handlers(app)
    access_log.init_app(app)
    cors.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(bigtop.bp)
    app.register_blueprint(scheduler.bp)
    app.register_blueprint(cron.bp)
    app_intake.init_app(app)
    app.register_blueprint(receipts.bp)
    app.register_blueprint(openapi.bp)
    metrics.init_app(app)
    return app


def _default_landing_dir() -> str:
    if os.environ.get("LANDING_DIR"):
        return os.environ["LANDING_DIR"]
    data_dir = os.environ.get("PLATFORM_DATA_DIR") or Path(__file__).resolve().parent.parent / ".data"
    return str(Path(data_dir) / "landing")
