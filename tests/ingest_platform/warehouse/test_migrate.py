import sqlalchemy as sa

from ingest_platform.cli import main
from ingest_platform.resources.warehouse import create_engine
from ingest_platform.warehouse.migrate import MIGRATIONS_DIR, alembic_config, current_revisions, upgrade
from ingest_platform.warehouse.tables import metadata


def head_revisions() -> tuple[str, ...]:
    from alembic.script import ScriptDirectory

    return tuple(sorted(ScriptDirectory.from_config(alembic_config()).get_heads()))


def test_upgrade_is_idempotent_and_creates_every_table(warehouse_url: str) -> None:
    engine = create_engine(warehouse_url)
    upgrade(engine)
    upgrade(engine)
    assert current_revisions(engine) == head_revisions()
    assert set(metadata.tables) <= set(sa.inspect(engine).get_table_names())


def test_migrations_match_the_table_definitions(warehouse_url: str) -> None:
    """Autogenerate finds nothing to do: tables/*.py and the migrations describe the same schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(warehouse_url)
    upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_db_upgrade_command_uses_the_embedded_default(data_dir, capsys) -> None:
    assert main(["db", "upgrade"]) == 0
    assert (data_dir / "warehouse.sqlite").exists()
    assert "revisions" in capsys.readouterr().out
    assert MIGRATIONS_DIR.is_dir()
