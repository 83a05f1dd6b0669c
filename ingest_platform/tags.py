"""Run tags the Dagster instance acts on (see dagster.yaml)."""

BROWSER_TAG_KEY = "ingest_platform/browser"
BROWSER_TAG_VALUE = "playwright"

# Every run that drives Chromium carries this tag; dagster.yaml allows one such run at a time.
BROWSER_RUN_TAGS = {BROWSER_TAG_KEY: BROWSER_TAG_VALUE}
