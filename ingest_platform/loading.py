"""Load a batch of landing files into the warehouse: the step every landing-fed asset shares."""

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import ValidationError

from ingest_platform.landing import LandingFileError
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.result import UpsertResult

# SQLAlchemy and the tables are imported on first use: loading the code location must stay cheap.
if TYPE_CHECKING:
    import sqlalchemy as sa

RowsFromDocument = Callable[[Mapping[str, Any]], list[dict[str, Any]]]
# Writes a batch's rows in the load's transaction: the table's result and any figures worth reporting.
WriteRows = Callable[["sa.Connection", list[dict[str, Any]]], tuple[UpsertResult, dict[str, Any]]]


class LandingBatchConfig(dg.Config):
    """Which landing files a run loads. Sensors name them; left empty, the run loads its partition's day."""

    files: list[str] = []
    reload: bool = False  # also reload files the ledger already has (the upsert keeps that idempotent)


def load_landing_files(
    context: dg.AssetExecutionContext,
    *,
    config: LandingBatchConfig,
    stream: str,
    landing: LandingZoneResource,
    warehouse: WarehouseResource,
    rows_from_document: RowsFromDocument,
    table: "sa.Table | None" = None,
    key: Sequence[str] = (),
    write_rows: WriteRows | None = None,
) -> dg.MaterializeResult:
    """Upsert the rows of every loadable file and record each file in the ledger, in one transaction.

    The rows go into `table` by `key`, or through `write_rows` when a stream feeds several tables or needs more
    than an upsert (its figures join the metadata). A file already in the ledger is skipped (unless `reload`);
    one that cannot be parsed goes to quarantine with its reason and the batch goes on. Loaded files move to the
    archive only after the commit.
    """
    from ingest_platform.warehouse.tables import landing_ledger
    from ingest_platform.warehouse.upsert import upsert

    if write_rows is None:
        if table is None or not key:
            raise ValueError("load_landing_files needs either table and key or write_rows")
        write_rows = _upsert_into(table, key)
    zone = landing.zone()
    names = sorted(set(config.files)) or zone.files_for_day(stream, context.partition_key)
    already_loaded = set() if config.reload else _ledgered(warehouse, stream, names)

    rows: list[dict[str, Any]] = []
    ledger_rows: list[dict[str, Any]] = []
    quarantined: dict[str, str] = {}
    for name in names:
        if name in already_loaded:
            continue
        if zone.locate(stream, name) is None and zone.is_quarantined(stream, name):
            quarantined[name] = "quarantined by an earlier run"
            continue
        try:
            file_rows = rows_from_document(zone.read(stream, name))
        except (LandingFileError, ValidationError, ValueError, TypeError, KeyError) as error:
            reason = _reason(error)
            zone.quarantine(stream, name, reason)
            quarantined[name] = reason
            context.log.warning(f"quarantined {stream}/{name}: {reason}")
            continue
        rows.extend(file_rows)
        ledger_rows.append({"stream": stream, "file_name": name, "rows": len(file_rows), "run_id": context.run.run_id})

    with warehouse.begin() as connection:
        result, figures = write_rows(connection, rows) if rows else (UpsertResult(), {})
        upsert(connection, landing_ledger, ledger_rows, key=["stream", "file_name"])
    for ledger_row in ledger_rows:
        zone.archive(stream, ledger_row["file_name"])

    context.log.info(
        f"{stream}: {len(ledger_rows)} files loaded, {len(already_loaded)} already loaded, "
        f"{len(quarantined)} quarantined; rows {result.as_metadata()}"
    )
    return dg.MaterializeResult(
        metadata={
            "files": len(names),
            "files_loaded": len(ledger_rows),
            "files_already_loaded": len(already_loaded),
            "files_quarantined": len(quarantined),
            "quarantined": dg.MetadataValue.json(quarantined),
            "rows": len(rows),
            **result.as_metadata(),
            **figures,
        }
    )


def _upsert_into(table: "sa.Table", key: Sequence[str]) -> WriteRows:
    from ingest_platform.warehouse.upsert import upsert

    def write(connection: "sa.Connection", rows: list[dict[str, Any]]) -> tuple[UpsertResult, dict[str, Any]]:
        return upsert(connection, table, rows, key=key), {}

    return write


def _ledgered(warehouse: WarehouseResource, stream: str, names: list[str]) -> set[str]:
    import sqlalchemy as sa

    from ingest_platform.warehouse.tables import landing_ledger

    if not names:
        return set()
    query = sa.select(landing_ledger.c.file_name).where(
        landing_ledger.c.stream == stream, landing_ledger.c.file_name.in_(names)
    )
    with warehouse.engine.connect() as connection:
        return set(connection.scalars(query))


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in error.errors()
        )
        return f"payload does not match the schema: {problems}"
    return str(error) or type(error).__name__
