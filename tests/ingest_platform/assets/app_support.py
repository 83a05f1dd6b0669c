"""Loading what the real webhook app landed, the way the landing sensors' runs do."""

from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ingest_platform.landing import LandingZone, landed_day
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource


def pending(landing_dir: Path, stream: str) -> list[str]:
    return LandingZone(landing_dir).pending(stream, limit=10_000)


def load(
    asset: dg.AssetsDefinition,
    warehouse: WarehouseResource,
    landing_dir: Path,
    files: list[str],
    *,
    checks: tuple[dg.AssetChecksDefinition, ...] = (),
    reload: bool = False,
) -> dg.ExecuteInProcessResult:
    """One run of `asset` over `files` (all of one landed day), as its landing sensor requests it."""
    [day] = {landed_day(name) for name in files}
    return dg.materialize(
        [asset, *checks],
        partition_key=day,
        resources={"warehouse": warehouse, "landing": LandingZoneResource(landing_dir=str(landing_dir))},
        run_config={"ops": {asset.op.name: {"config": {"files": files, "reload": reload}}}},
        raise_on_error=True,
    )


def load_pending(asset, warehouse, landing_dir, stream, **kwargs) -> dict[str, Any]:
    result = load(asset, warehouse, landing_dir, pending(landing_dir, stream), **kwargs)
    return metadata(result, asset)


def metadata(result: dg.ExecuteInProcessResult, asset: dg.AssetsDefinition) -> dict[str, Any]:
    [materialization] = result.asset_materializations_for_node(asset.op.name)
    return {name: getattr(value, "value", value) for name, value in materialization.metadata.items()}


def rows(warehouse: WarehouseResource, table: sa.Table, *columns: str, order_by: str | None = None) -> list[tuple]:
    query = sa.select(*(table.c[name] for name in columns))
    if order_by:
        query = query.order_by(table.c[order_by])
    with warehouse.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


def drop_search_index(warehouse: WarehouseResource) -> None:
    """Drop the search index tables, which live outside the migrated schema: the PostgreSQL test database is shared
    by the whole session, and the migrations test must not find them there."""
    from ingest_platform.app.search import BUILD_TABLE, INDEX_TABLE

    with warehouse.engine.begin() as connection:
        for name in (BUILD_TABLE, INDEX_TABLE):
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
