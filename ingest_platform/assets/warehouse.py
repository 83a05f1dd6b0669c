"""The standard table metadata of every asset that writes a warehouse table, so the UI shows the same three facts
for each: `dagster/table_name`, `dagster/row_count` and `dagster/column_schema` (from the SQLAlchemy tables in
`ingest_platform/warehouse/tables/`, the one description of the schema).

The table name is definition metadata (a string, cheap at load); the schema and the row count are materialization
metadata, because reading the tables imports SQLAlchemy, which the code location must not pay for when it loads.
"""

from typing import TYPE_CHECKING, Any

import dagster as dg

from ingest_platform.resources.warehouse import WarehouseResource

if TYPE_CHECKING:
    import sqlalchemy as sa

TABLE_NAME_KEY = "dagster/table_name"
ROW_COUNT_KEY = "dagster/row_count"
COLUMN_SCHEMA_KEY = "dagster/column_schema"


def table_name_metadata(table_name: str) -> dict[str, str]:
    """The definition metadata naming the table an asset writes (assets writing one table share the name)."""
    return {TABLE_NAME_KEY: table_name}


def column_schema(table: "sa.Table", dialect: "sa.Dialect") -> dg.TableSchema:
    """The table's columns as Dagster shows them: name, the type as `dialect` spells it, nullability, uniqueness."""
    single_key = len(table.primary_key.columns) == 1
    columns = []
    for column in table.columns:
        try:
            type_name = column.type.compile(dialect=dialect).lower()
        except Exception:  # a type the dialect cannot spell (none today): its class name says enough
            type_name = type(column.type).__name__.lower()
        columns.append(
            dg.TableColumn(
                name=column.name,
                type=type_name,
                description=column.comment,
                constraints=dg.TableColumnConstraints(
                    nullable=bool(column.nullable),
                    unique=bool(column.unique) or (column.primary_key and single_key),
                    other=["primary key"] if column.primary_key else [],
                ),
            )
        )
    return dg.TableSchema(columns=columns)


def table_metadata(warehouse: WarehouseResource, table_name: str) -> dict[str, Any]:
    """The three standard entries for `table_name` as it is after the run: the whole table's rows, not the run's."""
    import sqlalchemy as sa

    from ingest_platform.warehouse.tables import metadata

    table = metadata.tables[table_name]
    with warehouse.begin() as connection:
        rows = connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        schema = column_schema(table, connection.dialect)
    return {
        TABLE_NAME_KEY: table.name,
        ROW_COUNT_KEY: dg.MetadataValue.int(int(rows)),
        COLUMN_SCHEMA_KEY: dg.MetadataValue.table_schema(schema),
    }
