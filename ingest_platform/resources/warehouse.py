"""The warehouse as a Dagster resource: a SQLAlchemy engine on PostgreSQL or on the embedded SQLite file."""

import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from ingest_platform import settings
from ingest_platform.warehouse.result import UpsertResult

# SQLAlchemy is imported on first use: loading the code location must stay cheap.
if TYPE_CHECKING:
    import sqlalchemy as sa

_engines: dict[str, "sa.Engine"] = {}
_engines_lock = threading.Lock()


MIGRATIONS_ENV = "WAREHOUSE_MIGRATIONS"
APPLY, CHECK = "apply", "check"


def engine_for(url: str, *, migrations: str = APPLY) -> "sa.Engine":
    """One engine per URL per process; before its first use the schema is migrated to head (`apply`) or checked to
    be there (`check`: a deploy step migrates, runs only verify)."""
    from ingest_platform.warehouse.migrate import check_at_head, upgrade

    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_engine(url)
            if migrations == CHECK:
                check_at_head(engine)
            else:
                upgrade(engine)
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def create_engine(url: str) -> "sa.Engine":
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        # The warehouse holds ticket holders' names, e-mails and barcodes: owner-only, and so its -wal and -shm.
        settings.create_private_file(Path(parsed.database))
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets the webserver read while a run writes; FULL keeps a committed load committed.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    return engine


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse every loader writes to.

    `database_url` unset: `DATABASE_URL` from the environment (PostgreSQL through psycopg2), else the SQLite file
    `<PLATFORM_DATA_DIR>/warehouse.sqlite`. The schema is migrated before the first use in each process.
    """

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; defaults to DATABASE_URL, else the embedded SQLite file."
    )
    migrations: str | None = Field(
        default=None,
        description="`apply`: migrate the schema on first use (one machine); `check`: only verify it is at head, "
        "the deploy step migrates (docker/). Unset: WAREHOUSE_MIGRATIONS, else apply.",
    )

    @property
    def url(self) -> str:
        if self.database_url:
            return settings.normalize_database_url(self.database_url)
        return settings.database_url()

    @property
    def migration_mode(self) -> str:
        mode = self.migrations or os.environ.get(MIGRATIONS_ENV) or APPLY
        if mode not in (APPLY, CHECK):
            raise ValueError(f"{MIGRATIONS_ENV}={mode!r}: expected {APPLY!r} or {CHECK!r}")
        return mode

    @property
    def engine(self) -> "sa.Engine":
        return engine_for(self.url, migrations=self.migration_mode)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self, *, write: bool = False) -> Iterator["sa.Connection"]:
        """A connection in a transaction that commits on success and rolls back on error.

        `write=True` on SQLite takes the write lock as the transaction starts (`BEGIN IMMEDIATE`), waiting for it
        under the busy timeout. A deferred transaction that reads the main database (an upsert's merge) and then
        writes to it fails at once with "database is locked" when another run committed in between, and SQLite
        does not wait for that: concurrent load runs on the embedded warehouse failed so (bench.push_latency).
        PostgreSQL needs nothing of the kind.
        """
        with self.engine.begin() as connection:
            if write and connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield connection

    def upsert(
        self,
        *,
        table: "sa.Table",
        rows: Iterable[Mapping[str, Any]],
        key: Sequence[str],
        connection: "sa.Connection | None" = None,
    ) -> UpsertResult:
        """Bulk insert-or-update by natural key; in `connection`'s transaction when given, else its own."""
        from ingest_platform.warehouse.upsert import upsert

        if connection is not None:
            return upsert(connection, table, rows, key=key)
        with self.begin() as own_connection:
            return upsert(own_connection, table, rows, key=key)
