"""Where the warehouse schema is migrated: on first use on one machine, only by the deploy step when scaled out."""

from pathlib import Path

import pytest

from ingest_platform.resources.warehouse import WarehouseResource, create_engine, dispose_engines
from ingest_platform.warehouse.migrate import SchemaNotAtHeadError, current_revisions, head_revisions, upgrade


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, data_dir: Path) -> str:
    """A database no process has migrated yet, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{data_dir / 'fresh.sqlite'}"
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture(autouse=True)
def _no_cached_engines():
    dispose_engines()
    yield
    dispose_engines()


@pytest.mark.parametrize(("field", "env"), [("check", None), (None, "check")], ids=["field", "WAREHOUSE_MIGRATIONS"])
def test_in_check_mode_a_run_refuses_an_unmigrated_warehouse_and_migrates_nothing(
    fresh_url: str, field: str | None, env: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if env:
        monkeypatch.setenv("WAREHOUSE_MIGRATIONS", env)
    with pytest.raises(SchemaNotAtHeadError, match="run the deploy step"):
        _ = WarehouseResource(database_url=fresh_url, migrations=field).engine
    assert current_revisions(create_engine(fresh_url)) == ()


def test_in_check_mode_a_warehouse_the_deploy_step_migrated_is_used(fresh_url: str) -> None:
    upgrade(create_engine(fresh_url))
    engine = WarehouseResource(database_url=fresh_url, migrations="check").engine
    assert current_revisions(engine) == head_revisions()


def test_by_default_the_first_use_migrates_to_head(fresh_url: str) -> None:
    assert current_revisions(WarehouseResource(database_url=fresh_url).engine) == head_revisions()


def test_an_unknown_mode_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAREHOUSE_MIGRATIONS", "sometimes")
    with pytest.raises(ValueError, match="WAREHOUSE_MIGRATIONS='sometimes'"):
        _ = WarehouseResource().migration_mode


OTHER_RUNS_WRITE = "INSERT INTO landing_ledger (stream, file_name, rows, run_id) VALUES ('bigtop_events', 'b', 1, 'r')"


def _ledger_row(name: str) -> dict[str, object]:
    return {"stream": "bigtop_events", "file_name": name, "rows": 1, "run_id": "run"}


@pytest.mark.parametrize("write", [False, True], ids=["deferred", "write"])
def test_a_write_transaction_on_sqlite_is_not_failed_by_a_run_that_committed_after_its_read(
    data_dir: Path, write: bool
) -> None:
    """Two load runs on the embedded warehouse: the first reads (as an upsert's merge does), the second commits,
    then the first writes. Deferred, SQLite fails the first at once ("database is locked", no busy wait); a write
    transaction holds the lock from its start, so the second waits for it instead."""
    import sqlite3

    import sqlalchemy as sa

    from ingest_platform.warehouse.tables import landing_ledger

    path = data_dir / "concurrent.sqlite"
    warehouse = WarehouseResource(database_url=f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with warehouse.begin(write=write) as connection:
        connection.execute(sa.text("CREATE TEMP TABLE staging (n INTEGER)"))
        connection.execute(sa.text("INSERT INTO staging VALUES (1)"))
        connection.execute(sa.select(landing_ledger)).all()
        if not write:
            other.execute(OTHER_RUNS_WRITE)
            with pytest.raises(sa.exc.OperationalError, match="database is locked"):
                connection.execute(sa.insert(landing_ledger).values(_ledger_row("a")))
            connection.rollback()
            return
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            other.execute(OTHER_RUNS_WRITE)
        connection.execute(sa.insert(landing_ledger).values(_ledger_row("a")))
    other.execute(OTHER_RUNS_WRITE)
    assert sorted(other.execute("SELECT file_name FROM landing_ledger").fetchall()) == [("a",), ("b",)]
