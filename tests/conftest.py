"""Fixtures shared by the whole suite: the warehouse on both backends and a private data directory."""

import os

# The suite's dated cases (days back to 2024) need their partitions, whatever the default first day is: pinned before
# anything loads the definitions, which read it then.
os.environ["PARTITIONS_START_DATE"] = "2024-01-01"

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from bench.common import scratch_postgres
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.tables import metadata

POSTGRES_ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own platform data directory; nothing touches the checkout's .data/."""
    directory = tmp_path / "data"
    directory.mkdir()
    monkeypatch.setenv("PLATFORM_DATA_DIR", str(directory))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("LANDING_DIR", raising=False)
    return directory


@contextmanager
def _new_postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped at the end; yields its psycopg2 SQLAlchemy URL.

    Without a server the PostgreSQL tests skip with the reason, except in CI (CI=true), where they must run.
    """
    try:
        psycopg2.connect(POSTGRES_ADMIN_DSN, connect_timeout=3).close()
    except psycopg2.OperationalError as error:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI and is not reachable: {error}")
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {error}")
    with scratch_postgres(POSTGRES_ADMIN_DSN) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The warehouse database of this test process (tables emptied by the fixtures that use it)."""
    with _new_postgres_database() as url:
        yield url


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A database of its own, for a test that writes what others must not see (e.g. Dagster's own schema)."""
    with _new_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest, data_dir: Path) -> str:
    """The warehouse URL on each backend; PostgreSQL tables are emptied before each test."""
    if request.param == "sqlite":
        return f"sqlite:///{data_dir / 'warehouse.sqlite'}"
    url = request.getfixturevalue("postgres_url")
    _truncate_all(url)
    return url


@pytest.fixture
def warehouse(warehouse_url: str) -> WarehouseResource:
    return WarehouseResource(database_url=warehouse_url)


@pytest.fixture
def pg_warehouse(postgres_url: str) -> WarehouseResource:
    """The PostgreSQL warehouse alone, emptied, for tests that need the production backend."""
    _truncate_all(postgres_url)
    return WarehouseResource(database_url=postgres_url)


def _truncate_all(url: str) -> None:
    engine = WarehouseResource(database_url=url).engine
    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {names}"))
