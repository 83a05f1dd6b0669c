"""`ingest-platform db …`: the warehouse schema."""

import argparse

from ingest_platform import settings
from ingest_platform.cli import GROUPS, add_command
from ingest_platform.resources.warehouse import create_engine
from ingest_platform.warehouse.migrate import current_revisions, revision_history, upgrade


def register(groups: argparse._SubParsersAction) -> None:
    parser = add_command(groups, "db", GROUPS["db"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_command(
        commands, "upgrade", "create the warehouse's tables or bring them up to date (safe to run again)"
    ).set_defaults(handler=_upgrade)
    add_command(
        commands, "current", "show the schema versions the warehouse is at, what each brought, and what is pending"
    ).set_defaults(handler=_current)


def _upgrade(_args: argparse.Namespace) -> int:
    engine = create_engine(settings.database_url())
    upgrade(engine)
    where = engine.url.render_as_string(hide_password=True)
    print(f"warehouse at revisions {', '.join(current_revisions(engine))} ({where})")
    return 0


def _current(_args: argparse.Namespace) -> int:
    engine = create_engine(settings.database_url())
    applied = set(current_revisions(engine))
    print(f"warehouse {engine.url.render_as_string(hide_password=True)}")
    if not applied:
        print("empty: no migration applied yet; `ingest-platform db upgrade` creates the tables")
    for revision, summary, state in revision_history(applied):
        print(f"  {revision}  {state:<9}  {summary}")
    return 0
