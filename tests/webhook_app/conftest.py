from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from webhook_app import create_app

BIGTOP_TOKEN = "bigtop-test-token-0123456789"


@pytest.fixture
def landing_dir(tmp_path: Path) -> Path:
    return tmp_path / "landing"


@pytest.fixture
def app_config(landing_dir: Path) -> dict:
    """Overridable per test module: the configuration the app is created with."""
    return {"TESTING": True, "LANDING_DIR": str(landing_dir), "BIGTOP_INGEST_TOKEN": BIGTOP_TOKEN}


@pytest.fixture
def app(app_config: dict) -> Flask:
    return create_app(app_config)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def landed_files(landing_dir: Path) -> list[Path]:
    """Every file under the landing zone, temporary ones included: a rejected request must leave none."""
    return sorted(path for path in landing_dir.rglob("*") if path.is_file()) if landing_dir.exists() else []
