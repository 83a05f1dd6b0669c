"""Sensors of the Vivenu source."""

import os
import re
from pathlib import Path

import dagster as dg

from ingest_platform import settings
from ingest_platform.assets.vivenu import vivenu_events, vivenu_sync_job
from ingest_platform.vivenu.tickets import partition_key

_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*[:\s]\s*([A-Za-z0-9_-]{1,64})\s*$")


def event_list_path() -> Path:
    """`VIVENU_EVENT_LIST`, else `<data dir>/vivenu/events.txt`."""
    return Path(os.environ.get("VIVENU_EVENT_LIST") or settings.data_dir() / "vivenu" / "events.txt")


def read_event_list(path: Path) -> tuple[list[str], list[int]]:
    """Partition keys of the list (one `REGION EVENT_ID` or `REGION:EVENT_ID` a line, `#` comments), in order,
    and the numbers of the lines that are neither."""
    keys: list[str] = []
    bad_lines: list[int] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = _LINE.match(text)
        if match is None:
            bad_lines.append(number)
            continue
        key = partition_key(match.group(1).upper(), match.group(2))
        if key not in keys:
            keys.append(key)
    return keys, bad_lines


@dg.sensor(
    name="vivenu_event_list_sensor",
    job=vivenu_sync_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Adds a partition and requests a sync run for each new line (REGION EVENT_ID) of the event list "
    "file (VIVENU_EVENT_LIST). Stopped by default: a sync sends to the production endpoint.",
)
def vivenu_event_list_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    path = event_list_path()
    if not path.exists():
        return dg.SensorResult(skip_reason=dg.SkipReason(f"no event list at {path}"))
    keys, bad_lines = read_event_list(path)
    if bad_lines:
        context.log.warning(f"{path}: lines {bad_lines} are not 'REGION EVENT_ID'; skipped")
    existing = set(context.instance.get_dynamic_partitions(vivenu_events.name))
    new_keys = [key for key in keys if key not in existing]
    if not new_keys:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"no new events in {path}"))
    context.log.info(f"{len(new_keys)} new events: {', '.join(new_keys)}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=key, partition_key=key) for key in new_keys],
        dynamic_partitions_requests=[vivenu_events.build_add_request(new_keys)],
    )
