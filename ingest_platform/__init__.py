"""Dagster asset platform for the Big Top, Vivenu, Ingest Service and RTARF ingestion paths."""

import warnings

# `BackfillPolicy.single_run()` is what a browser range needs and has been stable in use; Dagster still flags the
# parameter as beta on every definitions load and every CLI call, noise a user would have to learn to ignore.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` of function `asset` is currently in beta")
