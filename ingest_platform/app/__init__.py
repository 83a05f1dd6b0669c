"""The Ingest Service (seed 003) without Dagster: its landed documents and the loaders' warehouse work."""
