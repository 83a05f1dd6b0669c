"""Dagster asset platform for the Big Top, Vivenu, Ingest Service and RTARF ingestion paths."""
