"""Alembic environment: runs on the connection the platform hands over (see warehouse.migrate)."""

from alembic import context

from ingest_platform.warehouse.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
