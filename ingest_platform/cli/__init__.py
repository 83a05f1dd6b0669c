"""`ingest-platform`: load the warehouse, replay landing files, push Big Top events, sync Vivenu and RTARF days."""

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each group's commands live in a module of their own, which may import Dagster, SQLAlchemy or HTTP clients: only the
# group named on the command line is imported, so `ingest-platform --help` answers without any of them.
GROUPS = {
    "db": "create or upgrade the warehouse's tables, or show which schema version it is at",
    "landing": "the landing zone: per-stream inbox, quarantine and archive; requeue quarantined files",
    "app": "Ingest Service: search rules and crawled items, hash a client IP, send a signed Stripe test event",
    "bigtop": "Big Top: collect the venue's events locally and push them to production",
    "rtarf": "RTARF: sync a day of Elasticsearch events, check the sync schedule's settings",
    "vivenu": "Vivenu: pull an event's tickets, send the charity tickets to the webhook, show progress",
}


def add_command(commands: argparse._SubParsersAction, name: str, summary: str, **options) -> argparse.ArgumentParser:
    """A command (or group) whose one-line summary is both its entry in the list and the start of its own help."""
    options.setdefault("description", summary[0].upper() + summary[1:] + ".")
    return commands.add_parser(name, help=summary, **options)


def build_parser(group: str | None = None) -> argparse.ArgumentParser:
    """The parser with every group listed and `group`'s commands (all groups' when None) registered."""
    parser = argparse.ArgumentParser(prog="ingest-platform", description=__doc__)
    groups = parser.add_subparsers(dest="group", required=True, metavar="{" + ",".join(GROUPS) + "}")
    for name, help_text in GROUPS.items():
        if group is None or name == group:
            importlib.import_module(f"ingest_platform.cli.{name}").register(groups)
        else:
            add_command(groups, name, help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    named = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser(named if named in GROUPS else "")
    args = parser.parse_args(argv)
    return args.handler(args) or 0
