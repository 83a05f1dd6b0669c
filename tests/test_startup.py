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
