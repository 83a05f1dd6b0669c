"""RTARF sync throughput: 100k documents from the fake Elasticsearch into PostgreSQL, next to a raw COPY.

Run: .venv/bin/python -m bench.rtarf_sync [--documents 100000] [--page-size 1000]
Needs PostgreSQL at 127.0.0.1:5432 (TEST_POSTGRES_DSN to change); creates and drops a scratch database.
The baseline is `copy_rows` of the very rows the sync writes, into an empty table of the same shape, in this
process: the sync's overhead over it is paging over HTTP, JSON decoding, mapping and the upsert's merge.
It also times the schedule's look-back run of the same, unchanged day (`only_if_changed`: one count request and
two warehouse counts instead of the scan) against the whole-day re-sync, in the same run.
"""

import argparse
import os
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest_platform.assets.rtarf import rtarf_events_asset
from ingest_platform.resources.elasticsearch import ElasticsearchResource
from ingest_platform.resources.warehouse import WarehouseResource, dispose_engines
from ingest_platform.rtarf.documents import event_row
from ingest_platform.warehouse.tables import rtarf_events
from ingest_platform.warehouse.upsert import copy_rows
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.fakes.rtarf_documents import INDEX, day_start, event_source

ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
DAY = date(2025, 11, 14)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()

    admin = psycopg2.connect(ADMIN_DSN)
    admin.autocommit = True
    database = f"rtarf_bench_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{database}"')
    params = admin.get_dsn_parameters()
    url = f"postgresql+psycopg2://{params['user']}@{params['host']}:{params['port']}/{database}"
    try:
        run(url, args.documents, args.page_size)
    finally:
        dispose_engines()
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


def run(url: str, documents: int, page_size: int) -> None:
    warehouse = WarehouseResource(database_url=url)
    warehouse.engine  # noqa: B018 (migrate before timing)
    start = day_start(DAY)
    spacing_ms = 86_400_000 // documents
    docs = [(f"bench-{n}", event_source(start + timedelta(milliseconds=n * spacing_ms), n)) for n in range(documents)]
    with FakeElasticsearch().running() as es:
        es.index_many(INDEX, docs)
        resources = {
            "elasticsearch": ElasticsearchResource(url=es.url),
            "warehouse": warehouse,
        }
        config = dg.RunConfig(ops={"rtarf__raw__events": {"config": {"page_size": page_size}}})
        lookback_config = dg.RunConfig(
            ops={"rtarf__raw__events": {"config": {"page_size": page_size, "only_if_changed": True}}}
        )
        with dg.instance_for_test() as instance:
            first = _timed_sync(resources, config, instance)
            again = _timed_sync(resources, config, instance)
            checked = _timed_sync(resources, lookback_config, instance)

    rows = [
        event_row({"_id": doc_id, "_index": INDEX, "_source": source}, timestamp_field="@timestamp")
        for doc_id, source in docs
    ]
    columns = list(rows[0])
    with warehouse.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE rtarf_events_copy (LIKE rtarf_events INCLUDING DEFAULTS)")
    began = time.perf_counter()
    with warehouse.begin() as connection:
        copy_rows(connection, "rtarf_events_copy", columns, rows, [rtarf_events.c[name].type for name in columns])
    copy_seconds = time.perf_counter() - began

    copy_rate = documents / copy_seconds
    print(f"documents: {documents}, page size: {page_size}, PostgreSQL {url.split('@')[1].split('/')[0]}")
    for label, (seconds, figures) in (("first sync (all inserted)", first), ("re-sync (all unchanged)", again)):
        rate = figures["total_processed"] / seconds
        print(
            f"{label:28s} {seconds:7.2f} s  {rate:9.0f} docs/s  ratio to raw COPY {copy_rate / rate:5.1f}x slower  "
            f"(inserted {figures['inserted']}, updated {figures['updated']}, unchanged {figures['unchanged']}, "
            f"pages {figures['pages']})"
        )
    print(f"{'raw COPY baseline':28s} {copy_seconds:7.2f} s  {copy_rate:9.0f} rows/s")
    seconds, figures = checked
    print(
        f"{'look-back, day unchanged':28s} {seconds:7.2f} s  mode {figures['mode']}, "
        f"{figures['total_processed']} documents read; {again[0] / seconds:5.1f}x faster than the whole-day re-sync"
    )


def _timed_sync(resources: dict, config: dg.RunConfig, instance: dg.DagsterInstance) -> tuple[float, dict]:
    began = time.perf_counter()
    result = dg.materialize(
        [rtarf_events_asset], partition_key=DAY.isoformat(), resources=resources, run_config=config, instance=instance
    )
    seconds = time.perf_counter() - began
    (materialization,) = result.asset_materializations_for_node("rtarf__raw__events")
    return seconds, {name: value.value for name, value in materialization.metadata.items()}


if __name__ == "__main__":
    main()
