"""`ingest-platform landing …`: what waits in the landing zone, and quarantined files sent back through the loader."""

import argparse
import sys
from pathlib import Path

from ingest_platform import settings
from ingest_platform.cli import GROUPS, add_command
from ingest_platform.landing import LandingZone, RequeueError


def register(groups: argparse._SubParsersAction) -> None:
    parser = add_command(groups, "landing", GROUPS["landing"])
    parser.add_argument("--landing-dir", help="the landing zone (default: LANDING_DIR, else <data dir>/landing)")
    commands = parser.add_subparsers(dest="command", required=True)
    requeue = add_command(
        commands,
        "requeue",
        "move quarantined files back to the stream's inbox (reasons kept in requeue-history.jsonl); the "
        "landing sensor loads them, and a file once loaded is archived without loading twice",
    )
    requeue.add_argument("stream", help="the landing stream, e.g. bigtop_events")
    chosen = requeue.add_mutually_exclusive_group(required=True)
    chosen.add_argument("names", nargs="*", default=[], help="file names in quarantine/<stream>/")
    chosen.add_argument("--all", action="store_true", help="every quarantined file of the stream")
    chosen.add_argument("--reason-contains", metavar="TEXT", help="files whose reason contains TEXT (any case)")
    requeue.add_argument("--dry-run", action="store_true", help="list the files that would be requeued; move none")
    requeue.set_defaults(handler=_requeue)
    add_command(
        commands,
        "status",
        "per stream: inbox files and the oldest one's age, quarantined files by reason, archive size",
    ).set_defaults(handler=_status)


def _zone(args: argparse.Namespace) -> LandingZone:
    return LandingZone(Path(args.landing_dir) if args.landing_dir else settings.landing_dir())


def _requeue(args: argparse.Namespace) -> int:
    zone = _zone(args)
    try:
        names = zone.select_quarantined(
            args.stream, names=args.names, every=args.all, reason_contains=args.reason_contains
        )
        if args.dry_run:
            for name in names:
                print(f"would requeue {args.stream}/{name}: {zone.quarantine_reason(args.stream, name)}")
            print(f"{args.stream}: {len(names)} files would be requeued (dry run, nothing moved)")
            return 0
        entries = zone.requeue(args.stream, names, by="cli")
    except RequeueError as error:
        print(f"landing requeue: {args.stream}: {error}; nothing was requeued", file=sys.stderr)
        return 2
    for entry in entries:
        print(f"requeued {args.stream}/{entry['name']} (was: {entry['reason']})")
    print(f"{args.stream}: {len(entries)} files requeued; the landing sensor's reconciliation loads them")
    return 0


def _status(args: argparse.Namespace) -> int:
    zone = _zone(args)
    report = zone.status()
    if not report:
        print(f"landing zone {zone.root}: no streams yet")
    for stream in report:
        age = (
            "none waiting"
            if stream.oldest_unloaded_age_seconds is None
            else f"oldest {_duration(stream.oldest_unloaded_age_seconds)}"
        )
        print(
            f"{stream.stream}: inbox {stream.inbox_files} ({age}), quarantined {stream.quarantined_files}, "
            f"archive {stream.archive_files} files {_size(stream.archive_bytes)}"
        )
        for reason, count in stream.quarantined_by_reason.items():
            print(f"  {count:>6}  {reason}")
    return 0


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7_200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3_600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"
