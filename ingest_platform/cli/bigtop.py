"""`ingest-platform bigtop push`: collect the venue's events on this machine and push them to production.

Collects (the Big Top collector asset, through Dagster), then pushes the source's events of the local warehouse to
production in batches. `--dry-run` collects with the same options and prints what would be sent, writing and posting
nothing. `--wait-loaded` then polls production's receipts (`GET /ingest/receipts/<request id>`) until every batch
is loaded. Exit codes: 0 everything accepted (and, with `--wait-loaded`, loaded), 1 a batch failed or was not sent,
2 the bridge could not start (bad option, missing token or URL, ENV=production, collector missing, busy or failed),
3 a batch was quarantined or not loaded within `--wait-timeout`.
"""

import argparse
import json
import os
import sys
from typing import Any

import dagster as dg

from ingest_platform import settings
from ingest_platform.assets.bigtop import BigTopCollectConfig
from ingest_platform.bigtop.collector import DEFAULT_BASE_URL
from ingest_platform.bigtop.push import (
    BIGTOP_SOURCE_ID,
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    BridgeError,
    PushConfigError,
    RetryPolicy,
    endpoint_url,
    event_payload,
    push_events,
    redact,
    refuse_in_production,
    select_local_events,
    validate_batch_size,
    wait_until_loaded,
)
from ingest_platform.cli import GROUPS, add_command
from ingest_platform.jobs.bigtop import bridge_instance, collect, collect_without_writing
from ingest_platform.resources.browser import DEBIAN_CHROMIUM
from ingest_platform.resources.warehouse import engine_for

EXIT_PUSH_FAILED = 1
EXIT_CANNOT_START = 2
EXIT_NOT_LOADED = 3


def register(groups: argparse._SubParsersAction) -> None:
    parser = add_command(groups, "bigtop", GROUPS["bigtop"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    push = add_command(
        commands,
        "push",
        "collect Big Top events locally, then push them to production",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    push.add_argument("--api-base", help="production's base URL (default: $BIGTOP_INGEST_API_BASE)")
    push.add_argument(
        "--token", help="bearer token (default: $BIGTOP_INGEST_TOKEN; prefer the variable, argv is visible to ps)"
    )
    push.add_argument(
        "--source-id",
        type=_positive_int,
        default=BIGTOP_SOURCE_ID,
        help="the Big Top source's id in production (default: 5)",
    )
    push.add_argument("--limit", type=_positive_int, help="collect and push at most this many events, soonest first")
    push.add_argument(
        "--batch-size",
        type=_batch_size,
        default=DEFAULT_BATCH_SIZE,
        help=f"events per request, 1..{MAX_BATCH_SIZE} (default: {DEFAULT_BATCH_SIZE})",
    )
    push.add_argument(
        "--future-only",
        action="store_true",
        help="collect events starting from now and push those that have not ended yet",
    )
    collecting = push.add_argument_group("collecting (unset: the same defaults as the scheduled collection)")
    collecting.add_argument(
        "--delay",
        type=_seconds,
        help="seconds between .ics requests to the venue's site, 0 allowed (default: 0.25)",
    )
    collecting.add_argument("--site-url", help=f"the venue's site (default: {DEFAULT_BASE_URL})")
    collecting.add_argument(
        "--settle", type=_seconds, help="seconds on the venue page before the GraphQL call (default: 3)"
    )
    collecting.add_argument("--chromium", help=f"the Chromium binary (default: {DEBIAN_CHROMIUM})")
    collecting.add_argument(
        "--chromium-arg",
        action="append",
        default=[],
        metavar="SWITCH",
        help="a Chromium switch added to the fixed ones; repeatable; write it --chromium-arg=--switch=value",
    )
    collecting.add_argument(
        "--collect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="materialize the collector asset bigtop/raw/collected_events first (default: on)",
    )
    mode = push.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run", action="store_true", help="collect and print what would be sent; write nothing, post nothing"
    )
    mode.add_argument("--no-push-prod", action="store_true", help="collect and load locally only; post nothing")
    push.add_argument("--timeout", type=_positive_float, default=30.0, help="seconds per request (default: 30)")
    push.add_argument("--max-attempts", type=_positive_int, default=5, help="attempts per batch (default: 5)")
    push.add_argument(
        "--retry-backoff", type=_seconds, default=1.0, help="first retry pause in seconds, doubling (default: 1)"
    )
    push.add_argument(
        "--wait-loaded",
        action="store_true",
        help="after the push, poll production's receipts until every batch is loaded (exit 3 if one is not)",
    )
    push.add_argument(
        "--wait-timeout",
        type=_positive_float,
        default=600.0,
        help="seconds --wait-loaded waits for all batches (default: 600)",
    )
    push.set_defaults(handler=run_push)


def run_push(args: argparse.Namespace, *, defs: dg.Definitions | None = None) -> int:
    """The command; `defs` defaults to the platform's definitions, loaded only when collecting."""
    token = (args.token or os.environ.get("BIGTOP_INGEST_TOKEN") or "").strip()
    try:
        refuse_in_production()
        if args.dry_run:
            return _dry_run(args, defs)
        pushing = not args.no_push_prod
        api_base = args.api_base or os.environ.get("BIGTOP_INGEST_API_BASE") or ""
        if pushing:
            _check_push_settings(api_base, token)
        if args.collect:
            _collect(args, defs)
    except (BridgeError, PushConfigError) as error:
        _fail(redact(str(error), token))
        return EXIT_CANNOT_START

    selected = _local_events(args)
    if not pushing:
        print(f"--no-push-prod: {len(selected)} events of source {args.source_id} stay local; nothing posted")
        return 0

    summary = push_events(
        selected,
        api_base=api_base,
        token=token,
        source_id=args.source_id,
        batch_size=args.batch_size,
        timeout_seconds=args.timeout,
        retry=RetryPolicy(max_attempts=args.max_attempts, backoff_seconds=args.retry_backoff),
        report=_print,
    )
    if not summary.ok:
        return EXIT_PUSH_FAILED
    if args.wait_loaded:
        waited = wait_until_loaded(
            [result.request_id for result in summary.results if result.request_id],
            api_base=api_base,
            token=token,
            timeout_seconds=args.wait_timeout,
            request_timeout_seconds=args.timeout,
            report=_print,
        )
        if not waited.ok:
            return EXIT_NOT_LOADED
    return 0


def _collector_config(args: argparse.Namespace) -> BigTopCollectConfig:
    given = {
        "base_url": args.site_url,
        "settle_s": args.settle,
        "delay_s": args.delay,
        "future_only": args.future_only or None,
        "limit": args.limit,
    }
    return BigTopCollectConfig(**{name: value for name, value in given.items() if value is not None})


def _browser_settings(args: argparse.Namespace) -> dict[str, Any]:
    given = {"executable_path": args.chromium, "extra_args": args.chromium_arg or None}
    return {name: value for name, value in given.items() if value is not None}


def _platform_defs(defs: dg.Definitions | None) -> dg.Definitions:
    if defs is not None:
        return defs
    from ingest_platform.definitions import defs as platform_defs

    return platform_defs


def _collect(args: argparse.Namespace, defs: dg.Definitions | None) -> None:
    with bridge_instance() as instance:
        _print("collecting: materializing bigtop/raw/collected_events")
        collection = collect(
            defs=_platform_defs(defs),
            instance=instance,
            config=_collector_config(args),
            browser=_browser_settings(args),
        )
    details = ", ".join(f"{key}={value}" for key, value in collection.metadata.items() if _is_scalar(value))
    _print(f"collected in run {collection.run_id}" + (f": {details}" if details else ""))


def _dry_run(args: argparse.Namespace, defs: dg.Definitions | None) -> int:
    """Print the batches a push would send; a dry run needs no token or URL and writes and posts nothing.

    It collects as a real run would (without writing); with --no-collect it shows what the local warehouse holds.
    """
    if args.collect:
        with bridge_instance() as instance:
            collection = collect_without_writing(
                defs=_platform_defs(defs),
                instance=instance,
                config=_collector_config(args),
                browser=_browser_settings(args),
            )
        for reasons in collection.events_skipped.values():
            for reason in reasons:
                _print(f"skipped (the endpoint cannot take it): {reason}")
        selected = [event_payload(event) for event in collection.events]
        origin = "collected"
    else:
        selected = _local_events(args)
        origin = "in the local warehouse"
    batches = -(-len(selected) // args.batch_size)
    print(
        f"dry run: {len(selected)} events of source {args.source_id} {origin}, in {batches} batches of up to "
        f"{args.batch_size}; nothing written, nothing posted"
    )
    for number, start in enumerate(range(0, len(selected), args.batch_size), start=1):
        print(f"batch {number}/{batches}:")
        for event in selected[start : start + args.batch_size]:
            print("  " + json.dumps(event, ensure_ascii=False))
    return 0


def _local_events(args: argparse.Namespace) -> list[dict[str, Any]]:
    with engine_for(settings.database_url()).connect() as connection:
        return select_local_events(connection, source_id=args.source_id, future_only=args.future_only, limit=args.limit)


def _check_push_settings(api_base: str, token: str) -> None:
    if not api_base:
        raise PushConfigError("no API base: set BIGTOP_INGEST_API_BASE or pass --api-base")
    endpoint_url(api_base)
    if not token:
        raise PushConfigError("no token: set BIGTOP_INGEST_TOKEN or pass --token")


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
