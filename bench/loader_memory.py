"""Loader memory: the peak resident memory one load adds, against the bytes of the landed batch it loads.

    .venv/bin/python -m bench.loader_memory [--events 120000] [--files 1] [--backend sqlite|postgresql|both]

Lands `--files` Big Top push batches of `--events` events in all (about 510 bytes of JSON each, as the issue's
61.5 MB file of 120k events) and materializes `bigtop/raw/pushed_events` over them. Baseline: the batch's bytes
on disk. Measured: the peak resident set the materialization added (the kernel's high-water mark, reset through
/proc/self/clear_refs just before it), printed as a ratio to the batch's bytes. Each backend runs in a fresh
process of its own, so the allocator's leftovers from one load do not hide the next one's peak.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import REPO, scratch_postgres

MIB = 1024 * 1024
DAY = "2026-03-01"
DAY_NS = int(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp() * 1e9)
# The run's own event log stays out of the output.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def land_batch(root: Path, events: int, files: int) -> int:
    """Write the push batches into the Big Top inbox; returns their bytes."""
    inbox = root / "bigtop_events"
    inbox.mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 3, 5, 23, tzinfo=UTC)
    per_file = -(-events // files)
    total = 0
    for number in range(files):
        first = number * per_file
        batch = [
            {
                "external_id": f"uid-{i:08d}@bigtop-push",
                "title": f"Trivia night with the Sarasota quiz league, round {i}",
                "start_utc": (start + timedelta(minutes=i)).isoformat(),
                "end_utc": (start + timedelta(minutes=i + 120)).isoformat(),
                "description": "Teams of up to six; prizes for the top three; the kitchen stays open until ten. "
                "Free entry, bring your own pencil, and reserve a table by phone if you are more than four.",
                "location": "Big Top Brewing, 6970 Lake Ave, Sarasota",
                "external_url": f"https://www.bigtopbrewing.com/events/trivia-night-{i}",
                "categories": ["trivia", "taproom", "weekly"],
            }
            for i in range(first, min(events, first + per_file))
        ]
        request_id = f"{number:032x}"
        document = {
            "stream": "bigtop_events",
            "request_id": request_id,
            "received_at": datetime.fromtimestamp(DAY_NS / 1e9, tz=UTC).isoformat(),
            "payload": {"source_id": 5, "run_id": "bench", "sent_at": "2026-03-01T12:00:00+00:00", "events": batch},
        }
        data = json.dumps(document).encode()
        (inbox / f"{DAY_NS + number:020d}-{request_id}.json").write_bytes(data)
        total += len(data)
    return total


def measure(url: str, root: Path) -> tuple[int, float, dict]:
    """Peak added resident bytes and seconds of one materialization, and its metadata."""
    import dagster as dg

    from ingest_platform.assets.bigtop import bigtop_pushed_events
    from ingest_platform.resources.landing import LandingZoneResource
    from ingest_platform.resources.warehouse import WarehouseResource

    warehouse = WarehouseResource(database_url=url)
    warehouse.engine  # noqa: B018 (migrate before measuring)
    resources = {"landing": LandingZoneResource(landing_dir=str(root)), "warehouse": warehouse}
    with dg.instance_for_test() as instance:
        # A first, empty run brings in the code and caches Dagster needs, which are not the load's.
        dg.materialize(
            [bigtop_pushed_events], partition_key="2026-02-28", resources=resources, instance=instance, run_config=QUIET
        )
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak resident set, to the current one
        before = _status_kib("VmRSS")
        began = time.perf_counter()
        result = dg.materialize(
            [bigtop_pushed_events], partition_key=DAY, resources=resources, instance=instance, run_config=QUIET
        )
        seconds = time.perf_counter() - began
        peak = (_status_kib("VmHWM") - before) * 1024
    (materialization,) = result.asset_materializations_for_node("bigtop__raw__pushed_events")
    return peak, seconds, {name: value.value for name, value in materialization.metadata.items()}


def child(backend: str, events: int, files: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_loader_") as scratch:
        root = Path(scratch) / "landing"
        size = land_batch(root, events, files)
        if backend == "sqlite":
            peak, seconds, figures = measure(f"sqlite:///{scratch}/warehouse.db", root)
        else:
            with scratch_postgres() as url:
                peak, seconds, figures = measure(url, root)
    assert figures["files_loaded"] == files and figures["inserted"] == events, figures
    print(
        f"  {backend:10s} batch {size / MIB:6.1f} MiB  peak +{peak / MIB:6.1f} MiB  "
        f"{peak / size:4.2f}x the batch's bytes  ({seconds:.1f} s, {events / seconds:,.0f} rows/s)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=120_000)
    parser.add_argument("--files", type=int, default=1)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.backend, args.events, args.files)
        return
    print(f"loader memory: {args.events:,} Big Top events in {args.files} landed file(s), one materialization")
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        command = [sys.executable, "-m", "bench.loader_memory", "--child", "--backend", backend]
        subprocess.run([*command, "--events", str(args.events), "--files", str(args.files)], cwd=REPO, check=True)
    print("  goal: peak <= 2x the batch's bytes on both backends")


if __name__ == "__main__":
    main()
