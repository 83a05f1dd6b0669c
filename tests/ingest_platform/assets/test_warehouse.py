"""The standard table metadata every table-writing asset reports, read from the SQLAlchemy tables."""

from datetime import UTC, datetime

import dagster as dg
import pytest

from ingest_platform.assets.warehouse import table_metadata, table_name_metadata
from ingest_platform.definitions import defs
from ingest_platform.warehouse.tables import events, metadata


def test_the_metadata_names_the_table_counts_its_rows_and_lists_its_columns(warehouse) -> None:
    start = datetime(2026, 11, 20, 18, tzinfo=UTC)
    warehouse.upsert(
        table=events,
        rows=[{"source_id": 5, "external_id": f"e{n}", "title": "Show", "start_utc": start} for n in range(3)],
        key=["source_id", "external_id"],
    )

    found = table_metadata(warehouse, "events")

    assert found["dagster/table_name"] == "events"
    assert found["dagster/row_count"] == dg.MetadataValue.int(3)
    columns = {column.name: column for column in found["dagster/column_schema"].value.columns}
    assert list(columns) == [column.name for column in events.columns]
    assert columns["title"].constraints.nullable is False
    assert columns["description"].constraints.nullable is True
    assert columns["external_id"].constraints.other == ["primary key"]
    # Two key columns: neither is unique alone.
    assert columns["external_id"].constraints.unique is False
    assert columns["source_id"].type == "integer"
    assert columns["title"].type == "text"


@pytest.mark.parametrize(
    ("asset_key", "table"),
    [
        pytest.param("bigtop/raw/pushed_events", "events", id="bigtop-push"),
        pytest.param("bigtop/raw/collected_events", "events", id="bigtop-collector"),
        pytest.param("bigtop/warehouse/events", "events", id="the-events-table"),
        pytest.param("app/raw/events", "app_events", id="app-events"),
        pytest.param("app/raw/donations", "donations", id="app-donations"),
        pytest.param("app/raw/crawl_items", "crawl_items", id="app-crawl-items"),
        pytest.param("app/raw/rules", "rules", id="app-rules"),
        pytest.param("app/raw/audit_log", "audit_log", id="app-audit-log"),
        pytest.param("app/metrics/rule_metric_daily", "rule_metric_daily", id="rule-metrics"),
        pytest.param("app/metrics/author_metric_daily", "author_metric_daily", id="author-metrics"),
        pytest.param("app/metrics/leaderboards", "leaderboard_entries", id="leaderboards"),
        pytest.param("rtarf/raw/events", "rtarf_events", id="rtarf"),
        pytest.param("vivenu/raw/tickets", "vivenu_tickets", id="vivenu-tickets"),
        pytest.param("vivenu/delivery/charity_webhooks", "vivenu_deliveries", id="vivenu-deliveries"),
    ],
)
def test_each_table_writing_asset_names_a_warehouse_table(asset_key: str, table: str) -> None:
    node = defs.get_repository_def().asset_graph.get(dg.AssetKey.from_user_string(asset_key))
    assert node.metadata["dagster/table_name"] == table == table_name_metadata(table)["dagster/table_name"]
    assert table in metadata.tables


def test_the_lineage_shows_both_big_top_assets_feeding_the_one_events_table() -> None:
    graph = defs.get_repository_def().asset_graph
    table = graph.get(dg.AssetKey(["bigtop", "warehouse", "events"]))
    assert {key.to_user_string() for key in table.parent_keys} == {
        "bigtop/raw/pushed_events",
        "bigtop/raw/collected_events",
    }
    assert not table.is_materializable
