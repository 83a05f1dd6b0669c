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
