"""`ingest-platform db …`: the warehouse schema."""

import argparse

from ingest_platform import settings
from ingest_platform.resources.warehouse import create_engine
from ingest_platform.warehouse.migrate import current_revisions, upgrade


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("db", help="warehouse schema (Alembic migrations)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("upgrade", help="apply pending migrations (idempotent)").set_defaults(handler=_upgrade)
    commands.add_parser("current", help="print the schema revision").set_defaults(handler=_current)


def _upgrade(_args: argparse.Namespace) -> int:
    engine = create_engine(settings.database_url())
    upgrade(engine)
    where = engine.url.render_as_string(hide_password=True)
    print(f"warehouse at revisions {', '.join(current_revisions(engine))} ({where})")
    return 0


def _current(_args: argparse.Namespace) -> int:
    print(", ".join(current_revisions(create_engine(settings.database_url()))) or "empty (no migrations applied)")
    return 0
