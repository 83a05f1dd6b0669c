"""Loading the code location stays cheap: every run and every UI reload pays for what its modules import.

The clients of the external parties and SQLAlchemy (most of the load time otherwise) are imported where a run uses
them; this guards against a module-level import of one of them creeping back (bench/startup.py measures the cost).
"""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DEFERRED_LIBRARIES = (
    "alembic",
    "elastic_transport",
    "elasticsearch",
    "httpx",
    "icalendar",
    "playwright",
    "recurring_ical_events",
    "redis",
    "requests",
    "sqlalchemy",
    "stripe",
)

PROBE = """
import json, sys
from ingest_platform.definitions import defs
defs.get_repository_def()
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""


def test_loading_definitions_imports_no_client_library_nor_sqlalchemy():
    # A fresh interpreter: this test process has long imported all of them.
    completed = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PROBE], cwd=REPO, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(completed.stdout.splitlines()[-1]))

    assert "dagster" in loaded  # the probe did load the code location
    assert sorted(loaded.intersection(DEFERRED_LIBRARIES)) == []


WEBHOOK_PROBE = """
import json, sys
from pydantic import BaseModel
from webhook_app import create_app
create_app()

def models(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from models(sub)

ours = [model for model in models(BaseModel) if model.__module__.startswith("webhook_app")]
built = sorted(model.__name__ for model in ours if model.__pydantic_complete__)
print(json.dumps({"loaded": sorted({name.partition(".")[0] for name in sys.modules}), "built": built}))
"""

# What the webhook app's start-up used to pay for and does not need: asyncio and wrapt came with Flask-Limiter's
# `limits`, the clients with routes that a deployment may never call.
WEBHOOK_DEFERRED = ("asyncio", "deprecated", "flask_limiter", "httpx", "limits", "redis", "stripe", "wrapt")


def test_webhook_app_start_up_imports_no_unused_library_and_builds_no_validator():
    completed = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", WEBHOOK_PROBE], cwd=REPO, capture_output=True, text=True, check=True
    )
    probe = json.loads(completed.stdout.splitlines()[-1])

    assert "flask" in probe["loaded"]
    assert "ingest_platform" not in probe["loaded"]
    assert sorted(set(probe["loaded"]).intersection(WEBHOOK_DEFERRED)) == []
    # Each model builds its validator on first use (defer_build): a worker pays only for the routes it serves.
    assert probe["built"] == []
