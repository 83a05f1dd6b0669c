"""P2 loader: the bulk upsert on PostgreSQL for 200k events, next to a raw COPY of the same rows.

    .venv/bin/python -m bench.warehouse_upsert [--rows 200000]

Baseline: COPY of the same Python rows (same encoder) into an empty table of the same columns without indexes.
Measured: the upsert of fresh rows into the empty `events` table, of the same rows again (all unchanged), and of
the rows with every tenth title changed.
"""

import argparse
import time
from datetime import UTC, datetime, timedelta

from bench.common import median, scratch_postgres
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.tables import events
from ingest_platform.warehouse.upsert import copy_rows, upsert

KEY = ["source_id", "external_id"]


def make_rows(count: int, title: str = "Event") -> list[dict]:
    start = datetime(2026, 3, 1, 18, tzinfo=UTC)
    return [
        {
            "source_id": 5,
            "external_id": f"uid-{i}@bigtop",
            "title": f"{title} {i}",
            "start_utc": start + timedelta(minutes=i),
            "end_utc": start + timedelta(minutes=i + 120),
            "description": "Live music on the patio.",
            "location": "Big Top Brewing, Sarasota",
            "external_url": f"https://www.bigtopbrewing.com/events/event-{i}",
            "categories": ["music", "taproom"],
        }
        for i in range(count)
    ]


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = make_rows(args.rows)
    changed = [row | {"title": "Changed"} if index % 10 == 0 else row for index, row in enumerate(rows)]
    columns = list(rows[0])
    types = [events.c[name].type for name in columns]
    figures: dict[str, list[float]] = {
        "raw COPY": [],
        "upsert fresh": [],
        "upsert unchanged": [],
        "upsert 10% changed": [],
    }

    with scratch_postgres() as url:
        engine = WarehouseResource(database_url=url).engine
        for _ in range(args.rounds):
            with engine.begin() as connection:
                connection.exec_driver_sql("DROP TABLE IF EXISTS raw_copy")
                connection.exec_driver_sql("CREATE TABLE raw_copy AS SELECT * FROM events WITH NO DATA")
                connection.exec_driver_sql("TRUNCATE events")
            with engine.begin() as connection:
                figures["raw COPY"].append(timed(lambda c=connection: copy_rows(c, "raw_copy", columns, rows, types)))
            for name, batch, expected in (
                ("upsert fresh", rows, "inserted"),
                ("upsert unchanged", rows, "unchanged"),
                ("upsert 10% changed", changed, "updated"),
            ):
                with engine.begin() as connection:
                    result = None

                    def run(c=connection, b=batch):
                        nonlocal result
                        result = upsert(c, events, b, key=KEY)

                    figures[name].append(timed(run))
                assert getattr(result, expected) > 0, (name, result)
            with engine.begin() as connection:
                connection.exec_driver_sql("UPDATE events SET title = title")  # keep the next round honest

    print(f"P2 loader: {args.rows:,} events into PostgreSQL, median of {args.rounds} rounds")
    baseline = args.rows / median(figures["raw COPY"])
    for name, seconds in figures.items():
        rate = args.rows / median(seconds)
        print(f"  {name:20s} {rate:10,.0f} rows/s  ({median(seconds):.2f} s)  {rate / baseline:.2f}x raw COPY")
    print("  goal: upsert fresh >= 0.6x raw COPY")


if __name__ == "__main__":
    main()
