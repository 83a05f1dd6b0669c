"""RTARF's Elasticsearch → PostgreSQL sync (seed 004) without Dagster: documents to rows, and the sync window."""
