"""`ingest-platform`: the command line of the platform. Each source adds its commands in a module of its own."""

import argparse
from collections.abc import Sequence

from ingest_platform.cli import app, bigtop, db, rtarf, vivenu

COMMAND_GROUPS = [db, app, bigtop, rtarf, vivenu]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ingest-platform", description=__doc__)
    groups = parser.add_subparsers(dest="group", required=True)
    for module in COMMAND_GROUPS:
        module.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args) or 0
