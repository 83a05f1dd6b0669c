"""Apply the Alembic migrations, idempotently and safely when several processes start at once."""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Any constant works; it only has to be the same in every process that migrates this database.
_POSTGRES_LOCK_ID = 0x1A6E57


# Alembic is imported on first use: loading the code location (every run, every UI reload) does not need it.
def alembic_config(connection: sa.Connection | None = None) -> "Config":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def revision_history(applied: set[str]) -> list[tuple[str, str, str]]:
    """Every migration, oldest first: its revision, the first line of its description, and whether it is applied
    (`applied`, the database's current heads, and everything below them) or `pending`."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    below_applied = {
        ancestor.revision for head in applied for ancestor in script.iterate_revisions(head, "base") if ancestor
    }
    history = []
    for migration in reversed(list(script.walk_revisions())):
        summary = (migration.doc or "").strip().splitlines()[0] if migration.doc else ""
        history.append((migration.revision, summary, "applied" if migration.revision in below_applied else "pending"))
    return history


def upgrade(engine: sa.Engine, revision: str = "heads") -> None:
    """Bring the warehouse schema to `revision`; a no-op when it is already there.

    Each source's migrations branch off the foundation revision, so "heads" (all of them) is the default.
    """
    from alembic import command

    with _exclusive(engine), engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def current_revisions(engine: sa.Engine) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))


def head_revisions() -> tuple[str, ...]:
    from alembic.script import ScriptDirectory

    return tuple(sorted(ScriptDirectory.from_config(alembic_config()).get_heads()))


class SchemaNotAtHeadError(RuntimeError):
    """The warehouse is behind (or ahead of) this code's migrations and this process may not migrate it."""


def check_at_head(engine: sa.Engine) -> None:
    current, heads = current_revisions(engine), head_revisions()
    if current != heads:
        raise SchemaNotAtHeadError(
            f"the warehouse schema is at {', '.join(current) or 'no revision'}, this code needs {', '.join(heads)}: "
            "run the deploy step (python -m ingest_platform.locations, or ingest-platform db upgrade) first"
        )


@contextmanager
def _exclusive(engine: sa.Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as lock_connection:
            lock_connection.exec_driver_sql(f"SELECT pg_advisory_lock({_POSTGRES_LOCK_ID})")
            try:
                yield
            finally:
                lock_connection.exec_driver_sql(f"SELECT pg_advisory_unlock({_POSTGRES_LOCK_ID})")
                lock_connection.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
