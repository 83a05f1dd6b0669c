import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest_platform import settings


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        pytest.param("postgresql://u:p@db:5432/w", "postgresql+psycopg2://u:p@db:5432/w", id="bare-postgresql"),
        pytest.param("postgres://u@db/w", "postgresql+psycopg2://u@db/w", id="heroku-style"),
        pytest.param("postgresql+psycopg2://u@db/w", "postgresql+psycopg2://u@db/w", id="already-psycopg2"),
        pytest.param("sqlite:////tmp/w.sqlite", "sqlite:////tmp/w.sqlite", id="sqlite"),
    ],
)
def test_database_url_is_normalised_to_psycopg2(url: str, normalized: str) -> None:
    assert settings.normalize_database_url(url) == normalized


def test_embedded_defaults_live_in_the_data_dir(data_dir) -> None:
    assert settings.database_url() == f"sqlite:///{data_dir / 'warehouse.sqlite'}"
    assert settings.landing_dir() == data_dir / "landing"


def test_environment_overrides(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1/w")
    monkeypatch.setenv("LANDING_DIR", str(tmp_path / "elsewhere"))
    assert settings.database_url() == "postgresql+psycopg2://postgres@127.0.0.1/w"
    assert settings.landing_dir() == tmp_path / "elsewhere"


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems give a user: group and others may read what is created unless told otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_folders_are_created_owner_only_and_existing_ones_keep_their_mode(
    tmp_path: Path, usual_umask: None
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)

    created = settings.make_private_dirs(shared / "a" / "b")

    assert created == [shared / "a", shared / "a" / "b"]
    assert (mode_of(shared), mode_of(shared / "a"), mode_of(shared / "a" / "b")) == (0o755, 0o700, 0o700)
    assert settings.make_private_dirs(shared / "a" / "b") == []


def test_the_embedded_warehouse_and_its_wal_files_are_owner_only(data_dir: Path, usual_umask: None) -> None:
    from ingest_platform.resources.warehouse import WarehouseResource
    from ingest_platform.warehouse.tables import events

    nested = data_dir / "not-yet"
    warehouse = WarehouseResource(database_url=f"sqlite:///{nested / 'warehouse.sqlite'}")
    row = {"source_id": 5, "external_id": "a", "title": "T", "start_utc": datetime(2026, 3, 1, tzinfo=UTC)}
    with warehouse.begin() as connection:
        warehouse.upsert(table=events, rows=[row], key=["source_id", "external_id"], connection=connection)
        files = ["warehouse.sqlite", "warehouse.sqlite-shm", "warehouse.sqlite-wal"]
        modes = {name: mode_of(nested / name) for name in files}

    assert modes == dict.fromkeys(files, 0o600)
    assert mode_of(nested) == 0o700


def test_the_clis_dagster_home_is_owner_only(data_dir: Path, usual_umask: None, monkeypatch) -> None:
    from ingest_platform.cli.vivenu import dagster_instance

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    instance = dagster_instance()
    instance.dispose()

    assert mode_of(data_dir / "dagster_home") == 0o700
