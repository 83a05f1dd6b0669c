"""The Vivenu tickets and charity-delivery assets against the fake Vivenu API and a fake webhook receiver."""

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from ingest_platform.assets.vivenu import vivenu_charity_webhooks, vivenu_events, vivenu_tickets
from ingest_platform.resources.vivenu import VivenuResource, VivenuWebhooksResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.vivenu.tickets import envelope_id
from ingest_platform.warehouse.tables import vivenu_deliveries, vivenu_delivery_runs
from ingest_platform.warehouse.tables import vivenu_tickets as tickets_table
from tests.fakes.vivenu import FakeVivenu, make_tickets
from tests.fakes.webhook_receiver import WebhookReceiver

KEY = "prod-key-never-logged-4242"
EVENT = "68108c20c5c88849372bfb61"
PARTITION = f"PROD:{EVENT}"
KV_STORE_MESSAGE = "ticketTypeId not found in KV store"


@pytest.fixture
def vivenu_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVivenu]:
    monkeypatch.setenv("PROD_API", KEY)
    with FakeVivenu(keys={KEY}) as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as fake:
        yield fake


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        test_instance.add_dynamic_partitions(vivenu_events.name, [PARTITION])
        yield test_instance


def sync(
    instance: dg.DagsterInstance,
    warehouse: WarehouseResource,
    vivenu_api: FakeVivenu,
    receiver: WebhookReceiver,
    **delivery: Any,
) -> dg.ExecuteInProcessResult:
    config = {
        "production_url": f"{receiver.url}/ticket-created",
        "test_url": f"{receiver.url}/test-created",
        "requests_per_second": 400,
        "max_in_flight": 8,
        "backoff_base_seconds": 0.01,
        "lease_seconds": 5,
        **delivery,
    }
    return dg.materialize(
        [vivenu_tickets, vivenu_charity_webhooks],
        partition_key=PARTITION,
        instance=instance,
        resources={
            "warehouse": warehouse,
            "vivenu": VivenuResource(production_base_url=vivenu_api.url),
            "vivenu_webhooks": VivenuWebhooksResource(),
        },
        run_config={"ops": {"vivenu__delivery__charity_webhooks": {"config": config}}},
        raise_on_error=False,
    )


def metadata_of(result: dg.ExecuteInProcessResult, node: str) -> dict[str, Any]:
    (materialization,) = result.asset_materializations_for_node(node)
    return {name: value.value for name, value in materialization.metadata.items()}


def failure_of(result: dg.ExecuteInProcessResult) -> dg.Failure:
    (event,) = [event for event in result.all_events if event.is_step_failure]
    return event.step_failure_data.user_failure_data


def ledger(warehouse: WarehouseResource) -> dict[str, dict[str, Any]]:
    with warehouse.engine.connect() as connection:
        rows = connection.execute(sa.select(vivenu_deliveries)).mappings().all()
    return {row["ticket_id"]: dict(row) for row in rows}


def test_seed_example_sends_750_of_1000_with_the_seeds_counts_and_never_twice(
    instance: dg.DagsterInstance, warehouse: WarehouseResource, vivenu_api: FakeVivenu, receiver: WebhookReceiver
) -> None:
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=1000, wrong_status=50, not_charity=200)

    first = sync(instance, warehouse, vivenu_api, receiver)

    assert first.success
    expected_counts = {
        "total_tickets": 1000,
        "rejected_wrong_status": 50,
        "rejected_not_charity": 200,
        "tickets_to_send": 750,
    }
    assert metadata_of(first, "vivenu__raw__tickets").items() >= {**expected_counts, "inserted": 1000}.items()
    delivery = metadata_of(first, "vivenu__delivery__charity_webhooks")
    assert delivery.items() >= {**expected_counts, "acknowledged_this_run": 750, "failed": 0}.items()
    acknowledgements = receiver.acknowledgements()
    assert len(acknowledgements) == 750 and set(acknowledgements.values()) == {1}
    sent_ids = set(acknowledgements)
    assert all(
        ticket["status"] in ("VALID", "DETAILSREQUIRED") and "CHARITY" in ticket["ticketName"]
        for ticket in vivenu_api.events[EVENT]
        if ticket["_id"] in sent_ids
    )
    endpoint = f"{receiver.url}/ticket-created"
    arrival = receiver.arrivals[0]
    ticket = next(ticket for ticket in vivenu_api.events[EVENT] if ticket["_id"] == arrival.ticket_id)
    assert arrival.path == "/ticket-created"
    assert arrival.envelope == {
        "id": envelope_id(ticket["_id"], endpoint),
        "sellerId": "seller-0001",
        "type": "ticket.created",
        "mode": "prod",
        "data": {"ticket": ticket},
    }
    assert uuid.UUID(arrival.envelope["id"]).version == 5
    with warehouse.engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(tickets_table)) == 1000
    assert {row["status"] for row in ledger(warehouse).values()} == {"acknowledged"}

    again = sync(instance, warehouse, vivenu_api, receiver)

    assert again.success
    assert metadata_of(again, "vivenu__raw__tickets")["unchanged"] == 1000
    assert (
        metadata_of(again, "vivenu__delivery__charity_webhooks").items()
        >= {
            "already_acknowledged": 750,
            "acknowledged_this_run": 0,
        }.items()
    )
    assert len(receiver.arrivals) == 750

    logged = "".join(dg.serialize_value(entry) for run in (first, again) for entry in instance.all_logs(run.run_id))
    personal = [KEY] + [
        ticket[field] for ticket in vivenu_api.events[EVENT] for field in ("email", "barcode", "lastname")
    ]
    assert [value for value in personal if value in logged] == []


def test_transient_failures_are_retried_4xx_recorded_and_the_run_fails_listing_them(
    instance: dg.DagsterInstance, warehouse: WarehouseResource, vivenu_api: FakeVivenu, receiver: WebhookReceiver
) -> None:
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=100, wrong_status=5, not_charity=15)
    selected = sorted(
        ticket["_id"]
        for ticket in vivenu_api.events[EVENT]
        if ticket["status"] in ("VALID", "DETAILSREQUIRED") and "CHARITY" in ticket["ticketName"]
    )
    flaky, throttled, rejected = selected[:5], selected[5:8], selected[8:11]
    receiver.fail_first(2, status=503, ticket_ids=flaky)
    receiver.fail_first(1, status=429, ticket_ids=throttled, retry_after="0")
    receiver.reject(rejected, status=422, message=KV_STORE_MESSAGE)

    failed = sync(instance, warehouse, vivenu_api, receiver)

    assert not failed.success
    failure = failure_of(failed)
    assert failure.metadata["failed_tickets"].value == {
        ticket_id: f"HTTP 422: {KV_STORE_MESSAGE}" for ticket_id in rejected
    }
    assert failure.metadata["acknowledged_this_run"].value == 77
    assert all(ticket_id in failure.description for ticket_id in rejected)
    tries = {ticket_id: 0 for ticket_id in selected}
    for arrival in receiver.arrivals:
        tries[arrival.ticket_id] += 1
    assert {tries[ticket_id] for ticket_id in flaky} == {3}
    assert {tries[ticket_id] for ticket_id in throttled} == {2}
    assert {tries[ticket_id] for ticket_id in rejected} == {1}
    rows = ledger(warehouse)
    assert {ticket_id: (rows[ticket_id]["status"], rows[ticket_id]["attempts"]) for ticket_id in flaky} == {
        ticket_id: ("acknowledged", 3) for ticket_id in flaky
    }
    assert {rows[ticket_id]["last_error"] for ticket_id in rejected} == {f"HTTP 422: {KV_STORE_MESSAGE}"}
    assert {rows[ticket_id]["status"] for ticket_id in rejected} == {"failed"}

    receiver.accept(rejected)  # the ticket types were registered in the KV store
    retried = sync(instance, warehouse, vivenu_api, receiver)

    assert retried.success
    assert metadata_of(retried, "vivenu__delivery__charity_webhooks")["acknowledged_this_run"] == 3
    acknowledgements = receiver.acknowledgements()
    assert sorted(acknowledgements) == selected and set(acknowledgements.values()) == {1}
    with warehouse.engine.connect() as connection:
        run = connection.execute(sa.select(vivenu_delivery_runs)).mappings().one()
    assert (run["selected"], run["acknowledged"], run["failed"], run["lease_run_id"]) == (80, 80, 0, None)
    assert run["completed_at"] is not None


def test_a_hanging_receiver_times_out_and_the_other_tickets_go_on(
    instance: dg.DagsterInstance, warehouse: WarehouseResource, vivenu_api: FakeVivenu, receiver: WebhookReceiver
) -> None:
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=20, wrong_status=0, not_charity=0)
    stuck = vivenu_api.events[EVENT][0]["_id"]
    receiver.hang([stuck])  # until the sender gives up on it

    result = sync(instance, warehouse, vivenu_api, receiver, timeout_seconds=0.2, max_attempts=2)

    assert not result.success
    assert failure_of(result).metadata["failed_tickets"].value == {stuck: "ReadTimeout (gave up after 2 attempts)"}
    assert len(receiver.accepted_tickets()) == 19
    assert receiver.abandoned() == {stuck: 2}
    assert ledger(warehouse)[stuck]["attempts"] == 2


def test_while_one_request_waits_for_its_answer_the_others_keep_flowing_within_the_rate(
    instance: dg.DagsterInstance, warehouse: WarehouseResource, vivenu_api: FakeVivenu, receiver: WebhookReceiver
) -> None:
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=120, wrong_status=0, not_charity=0)
    stuck = min(ticket["_id"] for ticket in vivenu_api.events[EVENT])  # the first one sent
    # Answered only once every other ticket has been accepted: a sender that waits for it never gets there, and
    # its request times out.
    receiver.hang([stuck], until_accepted=119)

    result = sync(instance, warehouse, vivenu_api, receiver, requests_per_second=40, timeout_seconds=20, max_attempts=1)

    assert result.success, failure_of(result).description
    assert len(receiver.accepted_tickets()) == 120 and receiver.abandoned() == {}
    assert receiver.max_in_any_second() <= 40
    assert {row["attempts"] for row in ledger(warehouse).values()} == {1}


class Killed(BaseException):
    """The process dying: nothing after it runs in the sender's thread."""


def test_a_run_killed_while_its_senders_wait_for_the_rate_limit_counts_only_what_was_sent(
    warehouse: WarehouseResource, receiver: WebhookReceiver
) -> None:
    from ingest_platform.vivenu.delivery import DeliverySettings, deliver
    from ingest_platform.vivenu.ledger import DeliveryLedger

    tickets = make_tickets(EVENT, count=40, wrong_status=0, not_charity=0)
    endpoint = f"{receiver.url}/ticket-created"
    delivery_ledger = DeliveryLedger(
        engine=warehouse.engine, region="PROD", event_id=EVENT, endpoint=endpoint, mode="prod", run_id="killed"
    )
    settings = DeliverySettings(
        endpoint=endpoint,
        mode="prod",
        requests_per_second=20,
        max_in_flight=4,
        max_attempts=3,
        timeout_seconds=10,
        backoff_base_seconds=0.01,
        backoff_cap_seconds=0.01,
        headroom=0.01,
        lease_seconds=5,
    )

    def sleep(seconds: float) -> None:
        # Every sender that waits for its turn once five tickets are in dies there, as in a killed process.
        if len(receiver.accepted) >= 5:
            raise Killed
        time.sleep(seconds)

    with pytest.raises(Killed):
        deliver(ledger=delivery_ledger, tickets=tickets, settings=settings, sleep=sleep)

    sent = Counter(arrival.ticket_id for arrival in receiver.arrivals)
    attempts = {ticket_id: row["attempts"] for ticket_id, row in ledger(warehouse).items()}
    assert 5 <= sum(sent.values()) < 40
    assert attempts == {ticket["_id"]: sent[ticket["_id"]] for ticket in tickets}


def test_a_second_run_of_the_same_event_waits_for_the_lease(warehouse: WarehouseResource) -> None:
    from ingest_platform.vivenu.ledger import DeliveryLedger, LeaseHeldError

    def ledger_of(run_id: str) -> DeliveryLedger:
        return DeliveryLedger(
            engine=warehouse.engine, region="PROD", event_id=EVENT, endpoint="http://x", mode="prod", run_id=run_id
        )

    ledger_of("run-a").acquire_lease(seconds=30, wait_seconds=0, sleep=lambda _: None)
    waits: list[float] = []

    with pytest.raises(LeaseHeldError, match="run run-a is delivering PROD:"):
        ledger_of("run-b").acquire_lease(seconds=30, wait_seconds=0, sleep=waits.append)

    ledger_of("run-a").release_lease(selected=0)
    ledger_of("run-b").acquire_lease(seconds=30, wait_seconds=0, sleep=waits.append)
    assert waits == []


@pytest.mark.parametrize(
    ("mode", "path"), [("prod", "/ticket-created"), ("test", "/test-created")], ids=["prod", "test"]
)
def test_without_a_url_in_the_run_config_the_endpoint_is_the_variable_read_when_the_run_starts(
    instance: dg.DagsterInstance,
    warehouse: WarehouseResource,
    vivenu_api: FakeVivenu,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    path: str,
) -> None:
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=6, wrong_status=0, not_charity=0)
    monkeypatch.setenv("VIVENU_WEBHOOK_PRODUCTION_URL", f"{receiver.url}/ticket-created")
    monkeypatch.setenv("VIVENU_WEBHOOK_TEST_URL", f"{receiver.url}/test-created")

    result = sync(instance, warehouse, vivenu_api, receiver, mode=mode, production_url=None, test_url=None)

    assert result.success
    assert metadata_of(result, "vivenu__delivery__charity_webhooks")["endpoint"] == f"{receiver.url}{path}"
    assert [arrival.path for arrival in receiver.arrivals] == [path] * 6


def test_the_instance_does_not_retry_a_sync_whose_tickets_failed() -> None:
    from ingest_platform.definitions import defs

    assert defs.resolve_job_def("vivenu_sync_job").tags["dagster/retry_on_asset_or_op_failure"] == "false"


def test_a_delivered_ticket_that_leaves_the_filter_is_reported_by_the_next_sync_and_nothing_more_is_sent(
    instance: dg.DagsterInstance, warehouse: WarehouseResource, vivenu_api: FakeVivenu, receiver: WebhookReceiver
) -> None:
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=20, wrong_status=2, not_charity=4)
    first = sync(instance, warehouse, vivenu_api, receiver)
    assert first.success
    assert metadata_of(first, "vivenu__delivery__charity_webhooks")["left_filter_after_delivery"] == 0
    delivered = sorted(receiver.acknowledgements())
    assert len(delivered) == 14

    by_id = {ticket["_id"]: ticket for ticket in vivenu_api.events[EVENT]}
    by_id[delivered[0]]["status"] = "INVALID"  # refunded after it was delivered
    by_id[delivered[1]]["ticketName"] = "HYROX WOMEN"  # moved to a ticket type without CHARITY
    never_delivered = next(ticket for ticket in vivenu_api.events[EVENT] if ticket["_id"] not in delivered)
    never_delivered["status"] = "INVALID"  # not delivered, so not reported

    second = sync(instance, warehouse, vivenu_api, receiver)

    assert second.success
    metadata = metadata_of(second, "vivenu__delivery__charity_webhooks")
    assert metadata["left_filter_after_delivery"] == 2
    assert metadata["left_filter_tickets"] == sorted(
        [
            {"ticket_id": delivered[0], "status": "INVALID", "reason": "status INVALID"},
            {
                "ticket_id": delivered[1],
                "status": by_id[delivered[1]]["status"],
                "reason": "no longer a charity ticket",
            },
        ],
        key=lambda entry: entry["ticket_id"],
    )
    assert (metadata["acknowledged_this_run"], metadata["tickets_to_send"]) == (0, 12)
    assert receiver.acknowledgements() == dict.fromkeys(delivered, 1), "nothing more is sent"
    personal = [by_id[delivered[0]][name] for name in ("firstname", "lastname", "email", "barcode")]
    assert not any(value in str(metadata["left_filter_tickets"]) for value in personal)
