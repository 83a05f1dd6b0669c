"""Names the Dagster instance acts on (see dagster.yaml)."""

# Every asset and op that drives Chromium runs in this Dagster concurrency pool. dagster.yaml gives a pool one slot
# (`concurrency: pools: default_limit: 1`), so one browser runs at a time on the instance: across code locations,
# for runs the daemon launches (a run whose browser step cannot get the slot stays queued) and for the CLI's
# in-process runs (their step waits for the slot).
BROWSER_POOL = "browser"
