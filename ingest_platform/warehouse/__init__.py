"""The warehouse: table definitions, migrations and the bulk upsert every loader goes through."""

from ingest_platform.warehouse.migrate import upgrade
from ingest_platform.warehouse.upsert import UpsertResult, upsert

__all__ = ["UpsertResult", "upgrade", "upsert"]
