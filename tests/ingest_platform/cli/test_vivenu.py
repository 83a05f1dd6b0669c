"""`ingest-platform vivenu …` against the fake Vivenu API and the fake receiver, runs recorded in DAGSTER_HOME."""

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.instance.ref import InstanceRef

from ingest_platform.cli import main
from ingest_platform.cli.vivenu import TEST_EVENT_ID
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.settings import REPO_ROOT
from ingest_platform.warehouse.tables import vivenu_deliveries
from tests.fakes.vivenu import FakeVivenu, make_tickets
from tests.fakes.webhook_receiver import WebhookReceiver

KEY = "prod-key-never-printed-777"
DEV_KEY = "dev-key-never-printed-555"
EVENT = "68108c20c5c88849372bfb61"
FAST = ["--rate", "400", "--max-in-flight", "8"]


@pytest.fixture
def vivenu_api() -> Iterator[FakeVivenu]:
    with FakeVivenu(keys={KEY, DEV_KEY}) as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as fake:
        yield fake


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, vivenu_api: FakeVivenu, receiver: WebhookReceiver
) -> dict[str, str]:
    """The environment of an operator's shell pointed at the fakes; also applied to this process."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for name in ("ITALY_API", "DACH_API"):
        monkeypatch.delenv(name, raising=False)
    env = {
        "PROD_API": KEY,
        "DEV_API": DEV_KEY,
        "VIVENU_BASE_URL": vivenu_api.url,
        "VIVENU_DEV_BASE_URL": vivenu_api.url,
        "VIVENU_WEBHOOK_PRODUCTION_URL": f"{receiver.url}/ticket-created",
        "VIVENU_WEBHOOK_TEST_URL": f"{receiver.url}/test-created",
        "DAGSTER_HOME": str(dagster_home),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_sync_prints_the_seeds_counts_and_its_run_shows_in_dagster(
    cli_env: dict[str, str], vivenu_api: FakeVivenu, receiver: WebhookReceiver, capsys: pytest.CaptureFixture
) -> None:
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=200, wrong_status=10, not_charity=40)

    assert main(["vivenu", "sync", "prod", EVENT, *FAST, "--timeout-seconds", "7.5"]) == 0

    captured = capsys.readouterr()
    out = captured.out
    progress = captured.out + captured.err
    assert f"PROD:{EVENT}: pulled 100/200 tickets" in progress and f"PROD:{EVENT}: pulled 200/200 tickets" in progress
    assert f"PROD:{EVENT}: sent 50/150" in progress and f"PROD:{EVENT}: sent 150/150" in progress
    assert (
        "Found 200 total tickets\nFiltering results:\n  - Total tickets: 200\n  - Rejected (wrong status): 10\n"
        "  - Rejected (not charity): 40\n  - ✅ Tickets to send: 150\n"
    ) in out
    assert "Sent to the prod endpoint: 150 acknowledged this run, 0 acknowledged before, 0 failed" in out
    (run,) = dg.DagsterInstance.get().get_runs()
    assert run.job_name == "vivenu_sync_job"
    assert run.tags["dagster/partition"] == f"PROD:{EVENT}"
    assert run.tags["ingest_platform/started_by"] == "cli"
    assert run.run_config["ops"]["vivenu__delivery__charity_webhooks"]["config"]["timeout_seconds"] == 7.5
    assert f"Dagster run {run.run_id}" in out
    assert len(receiver.accepted_tickets()) == 150


def test_without_dagster_home_runs_go_to_the_platforms_own_instance(
    cli_env: dict[str, str], vivenu_api: FakeVivenu, monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path
) -> None:
    monkeypatch.delenv("DAGSTER_HOME")
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=3)

    assert main(["vivenu", "pull", "PROD", EVENT, "--output-dir", str(tmp_path / "out")]) == 0

    home = data_dir / "dagster_home"
    assert (home / "dagster.yaml").read_text() == (REPO_ROOT / "dagster.yaml").read_text()
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        assert [run.job_name for run in instance.get_runs()] == ["vivenu_pull_job"]


def test_sync_test_sends_one_ticket_to_the_test_endpoint_from_the_seeds_dev_event(
    cli_env: dict[str, str], vivenu_api: FakeVivenu, receiver: WebhookReceiver, capsys: pytest.CaptureFixture
) -> None:
    vivenu_api.events[TEST_EVENT_ID] = make_tickets(TEST_EVENT_ID, count=30, wrong_status=0, not_charity=0)

    assert main(["vivenu", "sync", "--test"]) == 0

    (arrival,) = receiver.arrivals
    assert (arrival.path, arrival.envelope["mode"]) == ("/test-created", "test")
    assert "Sent to the test endpoint: 1 acknowledged this run" in capsys.readouterr().out
    assert {request.authorization for request in vivenu_api.requests} == {f"Bearer {DEV_KEY}"}

    assert main(["vivenu", "sync", "DEV", TEST_EVENT_ID, *FAST]) == 0

    production = [arrival for arrival in receiver.arrivals if arrival.path == "/ticket-created"]
    assert len(production) == 30  # the test endpoint's ledger does not hold back production


def test_pull_writes_the_seeds_files_for_the_owner_only_and_sends_nothing(
    cli_env: dict[str, str], vivenu_api: FakeVivenu, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    tickets = make_tickets(EVENT, count=5, wrong_status=1, not_charity=1)
    tickets[0].update(firstname="../../etc/", lastname="pass/wd")
    tickets[1].update(firstname="Paddy", lastname="McCann")
    vivenu_api.events[EVENT] = tickets
    out_dir = tmp_path / "purchased_tickets"

    assert main(["vivenu", "pull", "PROD", EVENT, "--output-dir", str(out_dir)]) == 0

    event_dir = out_dir / EVENT
    assert sorted(path.name for path in event_dir.iterdir()) == ["all_tickets.json", "individual", "metadata.json"]
    assert json.loads((event_dir / "all_tickets.json").read_text()) == sorted(tickets, key=lambda t: t["_id"])
    individual = sorted(path.name for path in (event_dir / "individual").iterdir())
    assert f"{tickets[1]['_id']}_Paddy McCann.json" in individual
    assert f"{tickets[0]['_id']}_etc_ pass_wd.json" in individual
    assert len(individual) == 5
    metadata = json.loads((event_dir / "metadata.json").read_text())
    assert metadata["total_tickets"] == 5 and metadata["filter"]["tickets_to_send"] == 3
    assert "@example.com" not in json.dumps(metadata)
    for path in [out_dir, event_dir, event_dir / "individual"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    for path in [*event_dir.glob("*.json"), *(event_dir / "individual").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert receiver.arrivals == []
    (run,) = dg.DagsterInstance.get().get_runs()
    assert run.job_name == "vivenu_pull_job"


@pytest.mark.parametrize(
    ("mode", "warned"), [(0o755, True), (0o750, True), (0o700, False)], ids=["world-readable", "group", "private"]
)
def test_pull_into_an_existing_folder_leaves_its_mode_and_warns_when_others_can_read_it(
    cli_env: dict[str, str],
    vivenu_api: FakeVivenu,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    mode: int,
    warned: bool,
) -> None:
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=3)
    out_dir = tmp_path / "work"
    out_dir.mkdir()
    out_dir.chmod(mode)

    assert main(["vivenu", "pull", "PROD", EVENT, "--output-dir", str(out_dir)]) == 0

    assert stat.S_IMODE(out_dir.stat().st_mode) == mode  # `--output-dir .` or `~` must not lock the folder
    assert stat.S_IMODE((out_dir / EVENT).stat().st_mode) == 0o700  # the folders it made are owner-only
    printed = capsys.readouterr().out
    assert (f"warning: {out_dir} is readable by other users" in printed) is warned


def test_status_shows_the_regions_progress_from_the_ledger_without_personal_data(
    cli_env: dict[str, str], vivenu_api: FakeVivenu, receiver: WebhookReceiver, capsys: pytest.CaptureFixture
) -> None:
    tickets = make_tickets(EVENT, count=10, wrong_status=0, not_charity=0)
    vivenu_api.events[EVENT] = tickets
    bad = tickets[3]["_id"]
    receiver.reject([bad], message="ticketTypeId not found in KV store")

    assert main(["vivenu", "sync", "PROD", EVENT, *FAST]) == 1
    out = capsys.readouterr().out
    assert f"error: 1 of 10 tickets were not acknowledged: {bad}" in out
    assert f"  - {bad}: HTTP 400: ticketTypeId not found in KV store" in out

    assert main(["vivenu", "status", "PROD"]) == 0
    status = capsys.readouterr().out
    assert "  events processed: 0\n  tickets sent: 9\n  errors: 1\n" in status
    assert f"    - {EVENT} ticket {bad}: HTTP 400: ticketTypeId not found in KV store (1 attempts)" in status

    receiver.accept([bad])
    assert main(["vivenu", "sync", "PROD", EVENT, *FAST]) == 0
    capsys.readouterr()
    assert main(["vivenu", "status", "prod", "--json"]) == 0
    (progress,) = json.loads(capsys.readouterr().out)
    assert progress["events_processed"] == [EVENT]
    assert (progress["tickets_sent"], progress["errors"], progress["mode"]) == (10, [], "prod")
    assert progress["last_run"] is not None
    shown = status + json.dumps(progress)
    assert not [t for t in tickets if t["email"] in shown or t["lastname"] in shown or t["barcode"] in shown]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["sync", "NARNIA", EVENT], 2, "error: unknown Vivenu region 'NARNIA'; configured regions: DEV, PROD"),
        (["sync", "ITALY", EVENT], 2, "error: no API key for Vivenu region ITALY: set the ITALY_API variable"),
        (["pull", "PROD", "not/an/id"], 2, "error: malformed Vivenu event id 'not/an/id'"),
        (["sync", "PROD", "0000000000000000000000aa"], 0, "Found 0 total tickets"),
    ],
    ids=["unknown-region", "missing-key", "malformed-event-id", "event-without-tickets"],
)
def test_commands_fail_with_clear_errors(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture, argv: list[str], code: int, message: str
) -> None:
    assert main(["vivenu", *argv]) == code
    captured = capsys.readouterr()
    assert message in captured.out
    assert "Traceback" not in captured.out + captured.err


def test_a_refused_key_fails_the_run_naming_the_variable_not_the_key(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("PROD_API", "revoked-key-123")

    assert main(["vivenu", "pull", "PROD", EVENT]) == 1

    captured = capsys.readouterr()
    assert "error: Vivenu (PROD) refused the key in PROD_API (HTTP 401)" in captured.out
    (run,) = dg.DagsterInstance.get().get_runs()
    logged = "".join(dg.serialize_value(entry) for entry in dg.DagsterInstance.get().all_logs(run.run_id))
    assert "revoked-key-123" not in captured.out + captured.err + logged


def start_cli(*argv: str) -> subprocess.Popen:
    """The CLI in a process of its own, as an operator runs it; the receiver in this process then measures
    arrivals without sharing an interpreter with the sender."""
    return subprocess.Popen(
        [sys.executable, "-m", "ingest_platform.cli", *argv],
        cwd=REPO_ROOT,
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_a_sync_killed_mid_delivery_resumes_and_each_ticket_is_acknowledged_once(
    cli_env: dict[str, str],
    warehouse_url: str,
    vivenu_api: FakeVivenu,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=200, wrong_status=20, not_charity=30)
    receiver.latency_seconds = 0.05  # longer than the spacing: several requests are in flight at once
    receiver.fail_first(1, status=503, ticket_ids=[ticket["_id"] for ticket in vivenu_api.events[EVENT][::10]])
    monkeypatch.setenv("DATABASE_URL", warehouse_url)
    sync_args = ["vivenu", "sync", "PROD", EVENT, "--rate", "40", "--max-in-flight", "4", "--lease-seconds", "2"]
    killed = start_cli(*sync_args)
    try:
        deadline = time.monotonic() + 90
        while len(receiver.accepted) < 40 and killed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        killed.send_signal(signal.SIGKILL)
    finally:
        killed.kill()
        killed.communicate()
    accepted_at_kill = len(receiver.accepted)
    assert 40 <= accepted_at_kill < 150, f"not killed mid-delivery: {accepted_at_kill} of 150 accepted"

    resumed = start_cli(*sync_args)
    out, _ = resumed.communicate(timeout=120)

    assert resumed.returncode == 0, out
    sent_by_resume = int(re.search(r"(\d+) acknowledged this run", out).group(1))
    assert 150 - accepted_at_kill <= sent_by_resume <= 150 - accepted_at_kill + 10  # the rest, and those few
    accepted = receiver.accepted_tickets()
    assert len(accepted) == 150 and set(accepted.values()) == {1}
    # Sent twice: only what was on the wire (4 in flight) or acknowledged but not yet committed when it died, a
    # few; not the 40 and more acknowledged before.
    assert sum(receiver.duplicates.values()) <= 10
    with WarehouseResource(database_url=warehouse_url).engine.connect() as connection:
        statuses = connection.execute(
            sa.select(vivenu_deliveries.c.status, sa.func.count()).group_by(vivenu_deliveries.c.status)
        ).all()
    assert statuses == [("acknowledged", 150)]
    assert receiver.max_in_any_second() <= 40  # retries and both runs included
    assert len(dg.DagsterInstance.get().get_runs()) == 2  # the killed run and the resume, both in the UI
