"""`ingest-platform vivenu …`: pull an event's tickets, send the charity ones to the webhook, show progress.

Runs execute in this process against the persistent Dagster instance (`DAGSTER_HOME`, else
`<data dir>/dagster_home`, the one `scripts/run` serves), so they show in the Dagster UI like any other run.
"""

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

import dagster as dg

from ingest_platform import settings
from ingest_platform.assets.vivenu import SEED_SPACING_SECONDS, vivenu_charity_webhooks, vivenu_events, vivenu_tickets
from ingest_platform.cli import GROUPS, add_command
from ingest_platform.resources.vivenu import (
    DEV_REGION,
    VivenuError,
    VivenuResource,
    normalize_region,
    validate_event_id,
)
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.vivenu.ledger import region_progress, stored_tickets
from ingest_platform.vivenu.pull_files import exposed_folder, write_pull_files
from ingest_platform.vivenu.tickets import FilterCounts, partition_key

# The seed's `--test` ran against its DEV example event.
TEST_EVENT_ID = "6864d4f427c2aa9b05cd17ee"
CLI_TAGS = {"ingest_platform/started_by": "cli"}


def register(groups: argparse._SubParsersAction) -> None:
    parser = add_command(groups, "vivenu", GROUPS["vivenu"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sync = add_command(commands, "sync", "pull an event's tickets and send the charity ones to the webhook")
    sync.add_argument("region", nargs="?", help=f"e.g. PROD, ITALY, DACH (with --test: default {DEV_REGION})")
    sync.add_argument("event_id", nargs="?", help=f"Vivenu event id (with --test: default {TEST_EVENT_ID})")
    sync.add_argument("--test", action="store_true", help="send one ticket to the test endpoint (mode 'test')")
    sync.add_argument(
        "--rate",
        type=float,
        default=1 / SEED_SPACING_SECONDS,
        help=f"webhook requests per second (default: one every {SEED_SPACING_SECONDS} s)",
    )
    sync.add_argument(
        "--max-in-flight", type=int, default=2, help="most webhook requests awaiting an answer at once (default 2)"
    )
    sync.add_argument(
        "--timeout-seconds",
        type=float,
        default=30.0,
        help="how long one webhook request may wait for its answer; the other tickets go on meanwhile (default 30)",
    )
    sync.add_argument("--page-size", type=int, default=None, help="tickets per Vivenu page (1-1000)")
    sync.add_argument(
        "--lease-seconds",
        type=float,
        default=60.0,
        help="how long a killed sync keeps the event locked before another sync may resume it (default 60)",
    )
    sync.set_defaults(handler=_sync)

    pull = add_command(commands, "pull", "pull an event's tickets and write them to files; send nothing")
    pull.add_argument("region", help="the Vivenu region whose API key is used, e.g. PROD, ITALY, DACH")
    pull.add_argument("event_id", help="Vivenu event id")
    pull.add_argument(
        "--output-dir",
        type=Path,
        default=Path("purchased_tickets"),
        help="folder the ticket files are written to (default: ./purchased_tickets)",
    )
    pull.add_argument("--page-size", type=int, default=None, help="tickets per Vivenu page (1-1000)")
    pull.set_defaults(handler=_pull)

    status = add_command(commands, "status", "show how far a region's ticket deliveries have got")
    status.add_argument("region", help="the Vivenu region, e.g. PROD, ITALY, DACH")
    status.add_argument("--json", action="store_true", help="print the progress as JSON")
    status.set_defaults(handler=_status)


def dagster_instance() -> dg.DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    from dagster._core.instance.ref import InstanceRef

    home = settings.data_dir() / "dagster_home"
    settings.make_private_dirs(home)  # run logs and event logs hold what the runs saw
    instance_config = home / "dagster.yaml"
    if not instance_config.exists():
        # What scripts/run installs there, so a CLI-first home is the same instance the UI will serve.
        shutil.copyfile(settings.REPO_ROOT / "dagster.yaml", instance_config)
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def _checked_partition(vivenu: VivenuResource, region: str, event_id: str) -> str:
    """Fail before any run on a region, key or event id that cannot work."""
    region = vivenu.check_region(region)
    validate_event_id(event_id)
    return partition_key(region, event_id)


def _sync(args: argparse.Namespace) -> int:
    region = args.region or (DEV_REGION if args.test else None)
    event_id = args.event_id or (TEST_EVENT_ID if args.test else None)
    if not region or not event_id:
        print("error: sync needs REGION and EVENT_ID (only --test has defaults)")
        return 2
    delivery: dict[str, Any] = {
        "requests_per_second": args.rate,
        "max_in_flight": args.max_in_flight,
        "timeout_seconds": args.timeout_seconds,
        "lease_seconds": args.lease_seconds,
    }
    if args.test:
        delivery.update(mode="test", limit=1)
    run_config = {
        "ops": {
            _op_name(vivenu_tickets): {"config": _pull_config(args.page_size)},
            _op_name(vivenu_charity_webhooks): {"config": delivery},
        }
    }
    return _execute("vivenu_sync_job", region, event_id, run_config, on_success=_print_delivery)


def _pull(args: argparse.Namespace) -> int:
    def write_files(key: str, result: dg.ExecuteInProcessResult) -> None:
        region, event_id = key.split(":", 1)
        with WarehouseResource().engine.connect() as connection:
            tickets = stored_tickets(connection, region=region, event_id=event_id)
        warning = exposed_folder(args.output_dir)
        if warning is not None:
            print(f"warning: {warning}")
        event_dir, _ = write_pull_files(tickets, region=region, event_id=event_id, root=args.output_dir)
        print(f"Wrote {len(tickets)} tickets to {event_dir}/ (all_tickets.json, metadata.json, individual/)")

    run_config = {"ops": {_op_name(vivenu_tickets): {"config": _pull_config(args.page_size)}}}
    return _execute("vivenu_pull_job", args.region, args.event_id, run_config, on_success=write_files)


def _status(args: argparse.Namespace) -> int:
    region = normalize_region(args.region)
    with WarehouseResource().engine.connect() as connection:
        progress = region_progress(connection, region=region)
    if args.json:
        print(json.dumps(progress, indent=2))
        return 0
    if not progress:
        print(f"No deliveries recorded for region {region}")
        return 0
    for endpoint in progress:
        print(f"Region {region} → {endpoint['endpoint']} (mode {endpoint['mode']})")
        events = endpoint["events_processed"]
        print(f"  events processed: {len(events)}{' (' + ', '.join(events) + ')' if events else ''}")
        print(f"  tickets sent: {endpoint['tickets_sent']}")
        print(f"  errors: {len(endpoint['errors'])}")
        for error in endpoint["errors"]:
            where = f"{error['event_id']} ticket {error['ticket_id']}"
            print(f"    - {where}: {error['error']} ({error['attempts']} attempts)")
        print(f"  last run: {endpoint['last_run'] or 'never'}")
    return 0


def _pull_config(page_size: int | None) -> dict[str, Any]:
    return {} if page_size is None else {"page_size": page_size}


def _op_name(asset: dg.AssetsDefinition) -> str:
    return asset.key.to_python_identifier()


def _execute(job_name: str, region: str, event_id: str, run_config: dict[str, Any], *, on_success: Any) -> int:
    from ingest_platform.definitions import defs

    try:
        key = _checked_partition(defs.resources["vivenu"], region, event_id)
    except VivenuError as error:
        print(f"error: {error}")
        return 2
    instance = dagster_instance()
    if not instance.has_dynamic_partition(vivenu_events.name, key):
        instance.add_dynamic_partitions(vivenu_events.name, [key])
    result = defs.resolve_job_def(job_name).execute_in_process(
        run_config=run_config, instance=instance, partition_key=key, raise_on_error=False, tags=CLI_TAGS
    )
    tickets = _materialization(result, vivenu_tickets)
    if tickets is not None:
        for line in FilterCounts(
            total=tickets["total_tickets"],
            rejected_status=tickets["rejected_wrong_status"],
            rejected_not_charity=tickets["rejected_not_charity"],
            to_send=tickets["tickets_to_send"],
        ).report_lines():
            print(line)
    if result.success:
        on_success(key, result)
    else:
        for description in _failures(result):
            print(f"error: {description}")
    print(f"Dagster run {result.run_id} ({job_name}, partition {key}): {'success' if result.success else 'FAILED'}")
    return 0 if result.success else 1


def _print_delivery(_key: str, result: dg.ExecuteInProcessResult) -> None:
    delivery = _materialization(result, vivenu_charity_webhooks) or {}
    print(
        f"Sent to the {delivery.get('mode')} endpoint: {delivery.get('acknowledged_this_run', 0)} acknowledged "
        f"this run, {delivery.get('already_acknowledged', 0)} acknowledged before, {delivery.get('failed', 0)} failed"
    )


def _materialization(result: dg.ExecuteInProcessResult, asset: dg.AssetsDefinition) -> dict[str, Any] | None:
    materializations = result.asset_materializations_for_node(_op_name(asset))
    if not materializations:
        return None
    return {name: value.value for name, value in materializations[-1].metadata.items()}


def _failures(result: dg.ExecuteInProcessResult) -> list[str]:
    descriptions = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            description = data.user_failure_data.description
            failed = data.user_failure_data.metadata.get("failed_tickets")
            if failed is not None:
                description += "".join(f"\n  - {ticket}: {error}" for ticket, error in sorted(failed.value.items()))
            descriptions.append(description)
        elif data.error is not None:
            descriptions.append(data.error.message.strip())
    return descriptions
