"""P2 loader: the bulk upsert on PostgreSQL for 200k events, next to a raw COPY of the same rows.

    .venv/bin/python -m bench.warehouse_upsert [--rows 200000] [--rounds 3] [--shared]

Baseline: COPY of the same Python rows (same encoder) into an empty table of the same columns without indexes.
Measured: the upsert of fresh rows into the empty `events` table, of the same rows again (all unchanged), and of
the rows with every tenth title changed. For each: rows/s and the ratio to the raw COPY, the WAL the server wrote
(`pg_current_wal_lsn()` before and after, committed) and the peak resident memory the call added to this process
(the kernel's high-water mark, reset before each call through /proc/self/clear_refs).

WAL is counted for the whole server, so by default the benchmark starts a throwaway PostgreSQL cluster of its own
(initdb, as the `postgres` user when run as root) where nothing else writes; `--shared` uses the server of
BENCH_POSTGRES_DSN instead, whose other clients then add to the WAL figures.
"""

import argparse
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.common import ADMIN_DSN, free_port, median, scratch_postgres
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.tables import events
from ingest_platform.warehouse.upsert import copy_rows, upsert

KEY = ["source_id", "external_id"]
MIB = 1024 * 1024


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


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measured(engine: sa.Engine, action: Callable[[sa.Connection], object]) -> tuple[float, int, int, object]:
    """Seconds, WAL bytes and peak added resident bytes of `action` in a transaction of its own, and its result."""
    with engine.connect() as probe:
        wal_before = probe.exec_driver_sql("SELECT pg_current_wal_lsn()").scalar_one()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak resident set, to the current one
    resident_before = _status_kib("VmRSS")
    started = time.perf_counter()
    with engine.begin() as connection:
        result = action(connection)
    seconds = time.perf_counter() - started
    peak_added = (_status_kib("VmHWM") - resident_before) * 1024
    with engine.connect() as probe:
        wal = probe.exec_driver_sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (wal_before,)).scalar_one()
    return seconds, int(wal), peak_added, result


@contextmanager
def private_cluster() -> Iterator[str]:
    """A PostgreSQL cluster of this benchmark alone on a free loopback port; yields its admin DSN."""
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdb:
        raise SystemExit("no initdb under /usr/lib/postgresql/*/bin: install PostgreSQL or pass --shared")
    bindir = Path(initdb[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="bench_pg_"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(base, "postgres")
    data, port = base / "data", free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "check": True}
    subprocess.run([*as_postgres, bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"], **quiet)
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1"
    subprocess.run(
        [*as_postgres, bindir / "pg_ctl", "-D", data, "-o", options, "-w", "-l", base / "log", "start"], **quiet
    )
    try:
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        subprocess.run([*as_postgres, bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop"], **quiet)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shared", action="store_true", help="use BENCH_POSTGRES_DSN's server, not a private one")
    args = parser.parse_args()
    rows = make_rows(args.rows)
    changed = [row | {"title": "Changed"} if index % 10 == 0 else row for index, row in enumerate(rows)]
    columns = list(rows[0])
    types = [events.c[name].type for name in columns]
    cases = [
        ("upsert fresh", rows, "inserted"),
        ("upsert unchanged", rows, "unchanged"),
        ("upsert 10% changed", changed, "updated"),
    ]
    figures: dict[str, list[tuple[float, int, int]]] = {"raw COPY": [], **{name: [] for name, _, _ in cases}}

    cluster = contextmanager(lambda: iter([ADMIN_DSN]))() if args.shared else private_cluster()
    with cluster as admin_dsn, scratch_postgres(admin_dsn) as url:
        engine = WarehouseResource(database_url=url).engine
        for _ in range(args.rounds):
            with engine.begin() as connection:
                connection.exec_driver_sql("DROP TABLE IF EXISTS raw_copy")
                connection.exec_driver_sql("CREATE TABLE raw_copy AS SELECT * FROM events WITH NO DATA")
                connection.exec_driver_sql("TRUNCATE events")
            *figure, _ = measured(engine, lambda c: copy_rows(c, "raw_copy", columns, rows, types))
            figures["raw COPY"].append(tuple(figure))
            for name, batch, expected in cases:
                *figure, result = measured(engine, lambda c, b=batch: upsert(c, events, b, key=KEY))
                assert getattr(result, expected) > 0, (name, result)
                figures[name].append(tuple(figure))

    where = "BENCH_POSTGRES_DSN's server" if args.shared else "a private cluster"
    print(f"P2 loader: {args.rows:,} events into PostgreSQL ({where}), median of {args.rounds} rounds")
    baseline = args.rows / median([seconds for seconds, _, _ in figures["raw COPY"]])
    for name, measurements in figures.items():
        seconds = median([seconds for seconds, _, _ in measurements])
        wal = median([wal for _, wal, _ in measurements])
        peak = median([peak for _, _, peak in measurements])
        rate = args.rows / seconds
        print(
            f"  {name:20s} {rate:10,.0f} rows/s  ({seconds:.2f} s)  {rate / baseline:.2f}x raw COPY  "
            f"WAL {wal / MIB:7.1f} MiB  peak memory +{peak / MIB:6.1f} MiB"
        )
    print("  goal: upsert fresh >= 0.6x raw COPY")


if __name__ == "__main__":
    main()
