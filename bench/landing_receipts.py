"""Receipt lookups against archive size, and what compaction saves.

A landing zone with a small archive (1 day of 200 loaded files) is the baseline; the large one holds `--days` days
of `--files` loaded files each (plus a backlog of 200 in the inbox). Each looks up the same number of random loaded
ids through the webhook app's `GET /ingest/receipts/<id>` (Flask's test client, no network), before and after the
old days are compacted; the naive alternative, a glob for `*-<id>.json` over every archived day, is timed beside it.

    .venv/bin/python -m bench.landing_receipts [--days 30] [--files 1000] [--lookups 300]
"""

import argparse
import json
import os
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ingest_platform.landing import LandingZone, Loaded
from ingest_platform.landing_retention import apply_retention
from webhook_app import create_app
from webhook_app.audit import new_request_id
from webhook_app.landing import LandingWriter

STREAM = "bigtop_events"
TOKEN = "bench-receipts-token-0123456789"
EVENT = {"external_id": "uid", "title": "Trivia night", "start_utc": "2026-03-05T23:00:00Z", "description": "x" * 400}


def fill(root: Path, *, days: int, files: int, today: date) -> list[str]:
    """`days` archived days of `files` files each (the newest yesterday) and an inbox of 200; the loaded ids."""
    ids = []
    body = json.dumps({"source_id": 5, "run_id": "r", "sent_at": "2026-03-01T12:00:00Z", "events": [EVENT] * 20})
    for offset in range(days, 0, -1):
        day = datetime.combine(today - timedelta(days=offset), datetime.min.time(), tzinfo=UTC)
        names = []
        for n in range(files):
            at = int((day.timestamp() + 36_000 + n) * 1e9)
            request_id = new_request_id(at)
            name = f"{at:020d}-{request_id}.json"
            document = f'{{"stream":"{STREAM}","request_id":"{request_id}","received_at":"{day.isoformat()}",'
            (root / STREAM / name).write_text(document + f'"payload":{body}}}')
            names.append(name)
            ids.append(request_id)
        LandingZone(root).archive(STREAM, [Loaded(name, 20, "bench-run", day) for name in names])
    writer = LandingWriter(root)
    for _ in range(200):
        writer.land(stream=STREAM, request_id=new_request_id(), received_at=datetime.now(UTC), payload={})
    return ids


def lookups(root: Path, ids: list[str]) -> float:
    client = create_app({"TESTING": True, "LANDING_DIR": str(root), "BIGTOP_INGEST_TOKEN": TOKEN}).test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    started = time.perf_counter()
    for request_id in ids:
        response = client.get(f"/ingest/receipts/{request_id}", headers=headers)
        assert response.json["state"] == "loaded", response.json
    return (time.perf_counter() - started) / len(ids)


def glob_every_day(root: Path, ids: list[str]) -> float:
    started = time.perf_counter()
    for request_id in ids:
        assert list((root / STREAM / "loaded").glob(f"*/*-{request_id}.json"))
    return (time.perf_counter() - started) / len(ids)


def tree_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--lookups", type=int, default=300)
    args = parser.parse_args()
    today = datetime.now(UTC).date()
    rng = random.Random(7)
    print(f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as small_dir, tempfile.TemporaryDirectory() as large_dir:
        small, large = Path(small_dir), Path(large_dir)
        for root in (small, large):
            (root / STREAM).mkdir(parents=True)
        small_ids = fill(small, days=1, files=200, today=today)
        large_ids = fill(large, days=args.days, files=args.files, today=today)
        small_sample = [rng.choice(small_ids) for _ in range(args.lookups)]
        large_sample = [rng.choice(large_ids) for _ in range(args.lookups)]
        baseline = lookups(small, small_sample)
        archived = lookups(large, large_sample)
        globbed = glob_every_day(large, large_sample[: max(1, args.lookups // 10)])
        before = tree_bytes(large / STREAM / "loaded")
        started = time.perf_counter()
        figures = apply_retention(large, today=today, compact_after_days=0, retention_days=None)
        compaction = time.perf_counter() - started
        after = tree_bytes(large / STREAM / "loaded")
        compacted = lookups(large, large_sample)
    total = args.days * args.files
    print(f"receipt lookup, 1 day of 200 files (baseline): {baseline * 1e3:.2f} ms")
    print(
        f"receipt lookup, {args.days} days of {args.files} files: {archived * 1e3:.2f} ms = {archived / baseline:.2f}x"
    )
    print(f"  a glob over every day instead: {globbed * 1e3:.2f} ms = {globbed / baseline:.1f}x")
    print(f"receipt lookup after compaction: {compacted * 1e3:.2f} ms = {compacted / baseline:.2f}x")
    print(
        f"compaction of {total} files ({figures.days_compacted} days) in {compaction:.1f} s: archive "
        f"{before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB ({after / before:.3f}x), {total * 2} files -> "
        f"{figures.days_compacted * 2}"
    )
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
