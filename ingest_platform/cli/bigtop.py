"""`ingest-platform bigtop push`: the local→production bridge of seed 000.

Collects (the Big Top collector asset, through Dagster), then pushes the source's events of the local warehouse to
production in batches. Exit codes: 0 everything accepted, 1 a batch failed or was not sent, 2 the bridge could
not start (bad option, missing token or URL, ENV=production, collector missing or failed).
"""

import argparse
import json
import os
import sys
from typing import Any

import dagster as dg

from ingest_platform import settings
from ingest_platform.bigtop.bridge import BridgeError, bridge_instance, collect, refuse_in_production
from ingest_platform.bigtop.push import (
    BIGTOP_SOURCE_ID,
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    PushConfigError,
    RetryPolicy,
    endpoint_url,
    push_events,
    redact,
    select_local_events,
    validate_batch_size,
)
from ingest_platform.resources.warehouse import engine_for

EXIT_PUSH_FAILED = 1
EXIT_CANNOT_START = 2


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("bigtop", help="Big Top: the local→production bridge")
    commands = parser.add_subparsers(dest="command", required=True)
    push = commands.add_parser(
        "push",
        help="collect Big Top events locally, then push them to production",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    push.add_argument("--api-base", help="production's base URL (default: $BIGTOP_INGEST_API_BASE)")
    push.add_argument(
        "--token", help="bearer token (default: $BIGTOP_INGEST_TOKEN; prefer the variable, argv is visible to ps)"
    )
    push.add_argument("--source-id", type=_positive_int, default=BIGTOP_SOURCE_ID, help="source id (default: 5)")
    push.add_argument("--limit", type=_positive_int, help="push at most this many events, soonest first")
    push.add_argument(
        "--batch-size",
        type=_batch_size,
        default=DEFAULT_BATCH_SIZE,
        help=f"events per request, 1..{MAX_BATCH_SIZE} (default: {DEFAULT_BATCH_SIZE})",
    )
    push.add_argument("--future-only", action="store_true", help="only events that have not ended yet")
    push.add_argument("--delay", type=_seconds, default=0.0, help="seconds between batches (default: 0)")
    mode = push.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run", action="store_true", help="print what would be sent; collect nothing, write nothing, post nothing"
    )
    mode.add_argument("--no-push-prod", action="store_true", help="collect and load locally only; post nothing")
    push.add_argument(
        "--collect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="materialize the collector asset bigtop/raw/collected_events first (default: on)",
    )
    push.add_argument("--timeout", type=_positive_float, default=30.0, help="seconds per request (default: 30)")
    push.add_argument("--max-attempts", type=_positive_int, default=5, help="attempts per batch (default: 5)")
    push.add_argument(
        "--retry-backoff", type=_seconds, default=1.0, help="first retry pause in seconds, doubling (default: 1)"
    )
    push.set_defaults(handler=run_push)


def run_push(args: argparse.Namespace, *, defs: dg.Definitions | None = None) -> int:
    """The command; `defs` defaults to the platform's definitions, loaded only when collecting."""
    token = (args.token or os.environ.get("BIGTOP_INGEST_TOKEN") or "").strip()
    try:
        refuse_in_production()
        pushing = not (args.dry_run or args.no_push_prod)
        api_base = args.api_base or os.environ.get("BIGTOP_INGEST_API_BASE") or ""
        if pushing:
            _check_push_settings(api_base, token)
        if args.collect and not args.dry_run:
            _collect(args, defs)
    except (BridgeError, PushConfigError) as error:
        _fail(redact(str(error), token))
        return EXIT_CANNOT_START

    with engine_for(settings.database_url()).connect() as connection:
        selected = select_local_events(
            connection, source_id=args.source_id, future_only=args.future_only, limit=args.limit
        )
    if args.dry_run:
        _print_dry_run(selected, args)
        return 0
    if args.no_push_prod:
        print(f"--no-push-prod: {len(selected)} events of source {args.source_id} stay local; nothing posted")
        return 0

    summary = push_events(
        selected,
        api_base=api_base,
        token=token,
        source_id=args.source_id,
        batch_size=args.batch_size,
        delay=args.delay,
        timeout_seconds=args.timeout,
        retry=RetryPolicy(max_attempts=args.max_attempts, backoff_seconds=args.retry_backoff),
        report=_print,
    )
    return 0 if summary.ok else EXIT_PUSH_FAILED


def _collect(args: argparse.Namespace, defs: dg.Definitions | None) -> None:
    if defs is None:
        from ingest_platform.definitions import defs as platform_defs

        defs = platform_defs
    with bridge_instance() as instance:
        _print("collecting: materializing bigtop/raw/collected_events")
        collection = collect(defs=defs, instance=instance, future_only=args.future_only, limit=args.limit)
    details = ", ".join(f"{key}={value}" for key, value in collection.metadata.items() if _is_scalar(value))
    _print(f"collected in run {collection.run_id}" + (f": {details}" if details else ""))


def _check_push_settings(api_base: str, token: str) -> None:
    if not api_base:
        raise PushConfigError("no API base: set BIGTOP_INGEST_API_BASE or pass --api-base")
    endpoint_url(api_base)
    if not token:
        raise PushConfigError("no token: set BIGTOP_INGEST_TOKEN or pass --token")


def _print_dry_run(selected: list[dict[str, Any]], args: argparse.Namespace) -> None:
    batches = -(-len(selected) // args.batch_size)
    print(
        f"dry run: {len(selected)} events of source {args.source_id} in {batches} batches of up to "
        f"{args.batch_size}; nothing collected, written or posted"
    )
    for number, start in enumerate(range(0, len(selected), args.batch_size), start=1):
        print(f"batch {number}/{batches}:")
        for event in selected[start : start + args.batch_size]:
            print("  " + json.dumps(event, ensure_ascii=False))


def _print(line: str) -> None:
    print(line, flush=True)


def _fail(message: str) -> None:
    print(f"ingest-platform bigtop push: {message}", file=sys.stderr)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {value}")
    return value


def _batch_size(text: str) -> int:
    try:
        return validate_batch_size(int(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
