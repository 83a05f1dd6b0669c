"""The Ingest Service loaders: what the webhook app landed, through the loader assets, into the warehouse."""

import itertools
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from ingest_platform.app.documents import fold_donation
from ingest_platform.app.loading import serialize_writers
from ingest_platform.assets import app as app_assets
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.sensors import landing as landing_sensor_module
from ingest_platform.sensors.app import app_landing_sensors
from ingest_platform.warehouse.tables import (
    app_events,
    audit_log,
    crawl_items,
    donations,
    rule_tags,
    rules,
    stripe_events,
)
from tests.fakes import stripe as fake_stripe
from tests.ingest_platform.assets.app_support import (
    drop_search_index,
    load,
    load_pending,
    metadata,
    pending,
    rows,
)
from tests.webhook_app.intake_support import STRIPE_SECRET, app_headers, make_app
from webhook_app.landing import LandingWriter


@pytest.fixture
def landing_dir(data_dir: Path) -> Path:
    return data_dir / "landing"


@pytest.fixture
def client(landing_dir: Path):
    return make_app(landing_dir).test_client()


def _post_events(client, *events, **headers) -> dict:
    response = client.post("/ingest/events", json={"events": list(events)}, headers=app_headers(**headers))
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def _post_stripe(client, event: dict) -> None:
    body, headers = fake_stripe.signed(event, STRIPE_SECRET)
    response = client.post("/ingest/stripe/webhook", data=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)


# --- app events -------------------------------------------------------------------------------------------------


def test_events_load_with_audit_and_reload_converges(client, landing_dir: Path, warehouse: WarehouseResource) -> None:
    first = _post_events(
        client,
        {"type": "VIEW", "ruleId": "rule_1", "userId": "u1", "ts": "2025-05-01T12:00:00Z", "idempotencyKey": "k1"},
        {"type": "VOTE", "ruleId": "rule_2"},
    )
    _post_events(client, {"type": "SAVE", "ruleId": "rule_1", "idempotencyKey": "k1"})  # accepted, not stored

    figures = load_pending(app_assets.app_raw_events, warehouse, landing_dir, "app_events")

    assert (figures["files"], figures["files_loaded"], figures["rows"], figures["inserted"]) == (2, 2, 2, 2)
    assert figures["audit_records"] == 2
    stored = rows(
        warehouse, app_events, "event_id", "type", "rule_id", "user_id", "ts", "idempotency_key", order_by="event_id"
    )
    assert stored == sorted(
        [
            (f"{first['request_id']}:0", "VIEW", "rule_1", "u1", datetime(2025, 5, 1, 12, tzinfo=UTC), "k1"),
            (f"{first['request_id']}:1", "VOTE", "rule_2", None, stored[1][4], None),
        ]
    )
    [(ip_hash,)] = set(rows(warehouse, app_events, "ip_hash"))
    assert len(ip_hash) == 64
    audits = rows(warehouse, audit_log, "action", "outcome", "status", order_by="at")
    assert audits[:2] == [("ingest.events", "accepted", 202)] * 2
    assert ("load.app_events", "loaded", None) in audits

    loaded_files = sorted(path.name for path in (landing_dir / "app_events" / "loaded").rglob("*-*.json"))
    again = metadata(
        load(app_assets.app_raw_events, warehouse, landing_dir, loaded_files, reload=True), app_assets.app_raw_events
    )
    assert (again["inserted"], again["updated"], again["unchanged"], again["duplicates"]) == (0, 0, 2, 0)
    assert len(rows(warehouse, app_events, "event_id")) == 2


def test_loader_keeps_the_first_of_an_idempotency_key_the_app_let_through(
    landing_dir: Path, warehouse: WarehouseResource
) -> None:
    # Two hosts whose claim stores do not share state both accept the same key: the load is the last line.
    hosts = [
        make_app(landing_dir, CLAIMS_URL=f"sqlite:///{landing_dir}/claims-{n}.sqlite").test_client() for n in (1, 2)
    ]
    first = _post_events(hosts[0], {"type": "FORK", "ruleId": "r1", "idempotencyKey": "fork-1"})
    _post_events(hosts[1], {"type": "FORK", "ruleId": "r2", "idempotencyKey": "fork-1"})
    other = _post_events(hosts[1], {"type": "COPY", "ruleId": "r2", "idempotencyKey": "copy-1"})
    names = pending(landing_dir, "app_events")

    early = load(app_assets.app_raw_events, warehouse, landing_dir, names[:1])
    late = load(
        app_assets.app_raw_events, warehouse, landing_dir, names[1:], checks=(app_assets.no_duplicate_idempotency_keys,)
    )

    early_figures, late_figures = (metadata(result, app_assets.app_raw_events) for result in (early, late))
    assert (early_figures["inserted"], late_figures["inserted"]) == (1, 1)
    assert (late_figures["duplicates"], late_figures["duplicate_idempotency_keys"]) == (1, 1)
    assert rows(warehouse, app_events, "idempotency_key", "rule_id", "request_id", order_by="idempotency_key") == [
        ("copy-1", "r2", other["request_id"]),
        ("fork-1", "r1", first["request_id"]),
    ]
    assert [evaluation.passed for evaluation in late.get_asset_check_evaluations()] == [True]


def _land_views(landing_dir: Path, received: list[datetime], *, ip_hash: str = "a" * 64) -> None:
    writer = LandingWriter(landing_dir)
    for number, received_at in enumerate(received):
        writer.land(
            stream="app_events",
            request_id=f"req{number}",
            received_at=received_at,
            payload={
                "ip_hash": ip_hash,
                "events": [{"type": "VIEW", "rule_id": "r", "ts": received_at.isoformat()}],
                "audit": {
                    "audit_id": f"req{number}",
                    "at": received_at.isoformat(),
                    "actor": "INGEST_APP_TOKEN#0",
                    "action": "ingest.events",
                    "outcome": "accepted",
                },
            },
        )


def test_loader_drops_views_within_ten_minutes_of_a_stored_one(landing_dir: Path, warehouse: WarehouseResource) -> None:
    start = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0)
    minutes = [0, 9, 11, 25, 30]  # what several app hosts with separate claim stores might land
    _land_views(landing_dir, [start + timedelta(minutes=m) for m in minutes])
    names = pending(landing_dir, "app_events")

    first = metadata(load(app_assets.app_raw_events, warehouse, landing_dir, names[:3]), app_assets.app_raw_events)
    second = metadata(load(app_assets.app_raw_events, warehouse, landing_dir, names[3:]), app_assets.app_raw_events)

    kept = sorted(at for (at,) in rows(warehouse, app_events, "received_at"))
    assert kept == [start, start + timedelta(minutes=11), start + timedelta(minutes=25)]
    assert (first["duplicate_views"], second["duplicate_views"]) == (1, 1)


# --- Stripe and donations ---------------------------------------------------------------------------------------

META = {"authorId": "author_1", "ruleId": "rule_9", "userId": "donor_3"}
T0 = 1_750_000_000


def _checkout(paid=True, at=T0):
    return fake_stripe.event(
        "checkout.session.completed",
        fake_stripe.checkout_completed("cs_1", "pi_1", amount=500, paid=paid, **META),
        created=at,
    )


def _succeeded(at=T0 + 1):
    return fake_stripe.event(
        "payment_intent.succeeded", fake_stripe.payment_intent("pi_1", amount=500, **META), created=at
    )


def _failed(at=T0 + 1):
    return fake_stripe.event(
        "payment_intent.payment_failed", fake_stripe.payment_intent("pi_1", amount=500, succeeded=False), created=at
    )


def _refunded(amount_refunded=500, at=T0 + 100):
    return fake_stripe.event(
        "charge.refunded",
        fake_stripe.refunded_charge("ch_1", "pi_1", amount=500, refunded_amount=amount_refunded),
        created=at,
    )


# (events in arrival order, expected status, amount refunded). Stripe's `created` has one-second resolution, so
# events of one payment often share it: the status ladder, not the clock, must decide.
DONATION_CASES = {
    "checkout-then-succeeded": ([_checkout(), _succeeded()], "succeeded", 0),
    "refund-then-late-succeeded": ([_checkout(at=T0), _refunded(at=T0), _succeeded(at=T0)], "refunded", 500),
    "refund-then-late-checkout": ([_refunded(at=T0), _checkout(at=T0)], "refunded", 500),
    "succeeded-then-late-failure": ([_succeeded(at=T0), _failed(at=T0)], "succeeded", 0),
    "failure-then-retry-succeeds": ([_failed(at=T0 + 1), _succeeded(at=T0 + 5)], "succeeded", 0),
    "partial-then-full-refund": ([_succeeded(), _refunded(200, T0 + 50), _refunded(500, T0 + 60)], "refunded", 500),
    "full-refund-then-late-partial": (
        [_succeeded(), _refunded(500, T0 + 60), _refunded(200, T0 + 60)],
        "refunded",
        500,
    ),
    "unpaid-checkout": ([_checkout(paid=False)], "pending", 0),
    "failure-only": ([_failed()], "failed", 0),
}


@pytest.mark.parametrize(("events", "status", "refunded"), DONATION_CASES.values(), ids=DONATION_CASES.keys())
def test_donation_status_never_moves_backwards(client, landing_dir, warehouse, events, status, refunded) -> None:
    for event in events:
        _post_stripe(client, event)
    names = pending(landing_dir, "stripe_events")
    # The last event arrives late, in a run of its own.
    if names[:-1]:
        load(app_assets.app_raw_donations, warehouse, landing_dir, names[:-1])
    load(app_assets.app_raw_donations, warehouse, landing_dir, names[-1:])

    [donation] = rows(warehouse, donations, "donation_key", "status", "amount", "amount_refunded", "currency")
    assert donation == ("pi_1", status, 500, refunded, "usd")


def test_donation_fold_is_the_same_in_every_arrival_order() -> None:
    events = [_checkout(at=T0), _succeeded(at=T0), _refunded(200, T0), _refunded(500, T0), _failed(at=T0)]
    stored = [(datetime.fromtimestamp(event["created"], tz=UTC), event["id"], event["type"], event) for event in events]
    results = {repr(fold_donation("pi_1", list(order))) for order in itertools.permutations(stored)}
    [result] = results
    folded = fold_donation("pi_1", stored)
    assert (
        folded["status"],
        folded["amount_refunded"],
        folded["author_id"],
        folded["rule_id"],
        folded["donor_user_id"],
    ) == (
        "refunded",
        500,
        "author_1",
        "rule_9",
        "donor_3",
    )
    assert (folded["checkout_session_id"], folded["payment_intent_id"], folded["charge_id"]) == ("cs_1", "pi_1", "ch_1")
    assert result == repr(folded)


def test_stripe_events_idempotent_and_unknown_types_counted(client, landing_dir, warehouse) -> None:
    succeeded = _succeeded()
    _post_stripe(client, succeeded)
    _post_stripe(client, succeeded)  # Stripe retries a delivery it thinks failed
    customer = fake_stripe.event("customer.created", {"id": "cus_1", "object": "customer"})
    _post_stripe(client, customer)

    result = load(
        app_assets.app_raw_donations,
        warehouse,
        landing_dir,
        pending(landing_dir, "stripe_events"),
        checks=(app_assets.no_duplicate_stripe_event_ids, app_assets.donation_amounts_non_negative),
    )
    figures = metadata(result, app_assets.app_raw_donations)

    assert (figures["files"], figures["duplicates"], figures["inserted"]) == (3, 1, 1)
    assert (figures["unhandled_events"], figures["unhandled_types"]) == (1, {"customer.created": 1})
    stored = {
        row[0]: row[1:]
        for row in rows(warehouse, stripe_events, "event_id", "type", "handled", "donation_key", "payload")
    }
    assert stored == {
        succeeded["id"]: ("payment_intent.succeeded", True, "pi_1", succeeded),
        customer["id"]: ("customer.created", False, None, customer),  # kept raw, as Stripe sent it
    }
    assert [evaluation.passed for evaluation in result.get_asset_check_evaluations()] == [True, True]


# --- crawl items --------------------------------------------------------------------------------------------------


def _crawl(client, **item) -> None:
    body = {"sourceId": "partner", "items": [{"externalId": "x1", "url": "https://p.example/x1", "title": "T", **item}]}
    assert client.post("/ingest/crawl", json=body, headers=app_headers()).status_code == 202


def test_crawl_items_upsert_and_an_older_version_never_wins(client, landing_dir, warehouse) -> None:
    _crawl(client, title="First")
    _crawl(client, title="Second", raw={"stars": 4})
    older, newer = pending(landing_dir, "crawl_items")

    first = metadata(
        load(app_assets.app_raw_crawl_items, warehouse, landing_dir, [newer]), app_assets.app_raw_crawl_items
    )
    late = metadata(
        load(app_assets.app_raw_crawl_items, warehouse, landing_dir, [older]), app_assets.app_raw_crawl_items
    )
    _crawl(client, title="Third")
    third = load_pending(app_assets.app_raw_crawl_items, warehouse, landing_dir, "crawl_items")

    assert (first["inserted"], late["stale_items"], late["inserted"] + late["updated"], third["updated"]) == (
        1,
        1,
        0,
        1,
    )
    assert rows(warehouse, crawl_items, "source_id", "external_id", "title", "raw") == [
        ("partner", "x1", "Third", None)
    ]


def test_same_item_twice_in_a_batch_counts_as_duplicate(client, landing_dir, warehouse) -> None:
    _crawl(client, title="A")
    _crawl(client, title="B")
    figures = load_pending(app_assets.app_raw_crawl_items, warehouse, landing_dir, "crawl_items")
    assert (figures["inserted"], figures["duplicates"]) == (1, 1)
    assert rows(warehouse, crawl_items, "title") == [("B",)]


# --- rules -------------------------------------------------------------------------------------------------------


def _post_rules(client, *items) -> None:
    response = client.post("/ingest/rules", json={"items": list(items)}, headers=app_headers())
    assert response.status_code == 202, response.get_data(as_text=True)


def _rule(rule_id="r1", updated="2026-03-01T10:00:00Z", **fields) -> dict:
    return {"ruleId": rule_id, "authorId": "author_1", "title": "T", "updatedAt": updated, **fields}


def _load_rules(warehouse, landing_dir, files) -> dict:
    return metadata(load(app_assets.app_raw_rules, warehouse, landing_dir, files), app_assets.app_raw_rules)


def test_rules_newest_version_wins_and_its_tags_replace_the_old_ones(client, landing_dir, warehouse) -> None:
    _post_rules(client, _rule(title="Old", tags=["sql", "old"], model="m1", updated="2026-03-01T10:00:00Z"))
    _post_rules(client, _rule(title="New", tags=["sql", "new", "new"], model="m2", updated="2026-03-02T10:00:00+02:00"))
    older, newer = pending(landing_dir, "app_rules")

    first = _load_rules(warehouse, landing_dir, [newer])
    late = _load_rules(warehouse, landing_dir, [older])  # the older version reaches the loader after the newer one
    _post_rules(client, _rule(title="New", tags=["new", "sql"], model="m2", updated="2026-03-02T08:00:00Z"))
    same_version_again = load_pending(app_assets.app_raw_rules, warehouse, landing_dir, "app_rules")

    assert (first["inserted"], late["stale_rules"], late["inserted"] + late["updated"]) == (1, 1, 0)
    assert (same_version_again["stale_rules"], same_version_again["updated"]) == (0, 1)
    assert rows(warehouse, rules, "rule_id", "author_id", "title", "model", "updated_at") == [
        ("r1", "author_1", "New", "m2", datetime(2026, 3, 2, 8, tzinfo=UTC))
    ]
    assert sorted(rows(warehouse, rule_tags, "rule_id", "tag")) == [("r1", "new"), ("r1", "sql")]


def test_rules_arriving_later_with_an_older_updated_at_never_overwrite(client, landing_dir, warehouse) -> None:
    _post_rules(client, _rule(title="Edited", tags=["a"], updated="2026-03-05T00:00:00Z"), _rule("r2", title="Two"))
    _post_rules(client, _rule(title="Stale copy", tags=["b"], updated="2026-03-04T00:00:00Z"), _rule("r3", tags=[]))

    figures = load_pending(app_assets.app_raw_rules, warehouse, landing_dir, "app_rules")

    assert (figures["rows"], figures["inserted"], figures["duplicates"], figures["tags"]) == (4, 3, 1, 1)
    assert rows(warehouse, rules, "rule_id", "title", order_by="rule_id") == [
        ("r1", "Edited"),
        ("r2", "Two"),
        ("r3", "T"),
    ]
    assert rows(warehouse, rule_tags, "rule_id", "tag") == [("r1", "a")]


def test_a_rule_whose_tags_are_removed_loses_them(client, landing_dir, warehouse) -> None:
    _post_rules(client, _rule(tags=["a", "b"], updated="2026-03-01T00:00:00Z"), _rule("r2", tags=["keep"]))
    load_pending(app_assets.app_raw_rules, warehouse, landing_dir, "app_rules")
    _post_rules(client, _rule(updated="2026-03-02T00:00:00Z"))

    load_pending(app_assets.app_raw_rules, warehouse, landing_dir, "app_rules")

    assert rows(warehouse, rule_tags, "rule_id", "tag") == [("r2", "keep")]
    [audit] = [
        record for record in rows(warehouse, audit_log, "action", "outcome", "actor") if record[0] == "ingest.rules"
    ][:1]
    assert audit == ("ingest.rules", "accepted", "INGEST_APP_TOKEN#0")


# --- audit, quarantine, checks, sensors --------------------------------------------------------------------------


def test_rejections_reach_the_audit_log(client, landing_dir, warehouse) -> None:
    client.post("/ingest/events", json={"events": []}, headers=app_headers())
    client.post("/ingest/crawl", json={}, headers={"x-app-token": "wrong"})

    figures = load_pending(app_assets.app_raw_audit_log, warehouse, landing_dir, "app_audit")

    assert figures["inserted"] == 2
    assert sorted(rows(warehouse, audit_log, "action", "outcome", "status", "error", "actor")) == [
        ("ingest.crawl", "rejected", 401, "unauthorized", "anonymous"),
        ("ingest.events", "rejected", 422, "validation_failed", "INGEST_APP_TOKEN#0"),
        ("load.app_audit", "loaded", None, None, "dagster"),
    ]


def test_damaged_file_is_quarantined_and_the_batch_goes_on(client, landing_dir, warehouse) -> None:
    _post_events(client, {"type": "SAVE", "ruleId": "r"})
    LandingWriter(landing_dir).land(
        stream="app_events", request_id="damaged", received_at=datetime.now(UTC), payload={"events": "not a list"}
    )
    figures = load_pending(app_assets.app_raw_events, warehouse, landing_dir, "app_events")
    assert (figures["files_loaded"], figures["files_quarantined"], figures["inserted"]) == (1, 1, 1)
    assert list((landing_dir / "quarantine" / "app_events").glob("*damaged.json"))


@pytest.mark.parametrize(
    ("check", "bad_row_table", "bad_row"),
    [
        (
            "no_duplicate_idempotency_keys",
            app_events,
            lambda n: {
                "event_id": f"e{n}",
                "idempotency_key": "same",
                "type": "SAVE",
                "rule_id": "r",
                "user_id": None,
                "ts": datetime(2025, 1, 1, tzinfo=UTC),
                "received_at": datetime(2025, 1, 1, tzinfo=UTC),
                "ip_hash": "h",
                "request_id": f"q{n}",
            },
        ),
        (
            "donation_amounts_non_negative",
            donations,
            lambda n: {
                "donation_key": f"pi_{n}",
                "status": "succeeded",
                "amount": -100 if n else 100,
                "amount_refunded": 0,
                "currency": "usd",
                "author_id": None,
                "rule_id": None,
                "donor_user_id": None,
                "checkout_session_id": None,
                "payment_intent_id": f"pi_{n}",
                "charge_id": None,
                "status_event_id": "evt_1",
                "last_event_id": "evt_1",
                "last_event_at": datetime(2025, 1, 1, tzinfo=UTC),
            },
        ),
    ],
    ids=["idempotency-keys", "donation-amounts"],
)
def test_checks_fail_on_bad_rows(warehouse: WarehouseResource, check: str, bad_row_table, bad_row) -> None:
    check_def = getattr(app_assets, check)
    warehouse.upsert(table=bad_row_table, rows=[bad_row(0)], key=list(bad_row_table.primary_key.columns.keys()))
    passing = dg.materialize(
        [check_def], resources={"warehouse": warehouse}, selection=dg.AssetSelection.checks(check_def)
    )
    warehouse.upsert(table=bad_row_table, rows=[bad_row(1)], key=list(bad_row_table.primary_key.columns.keys()))
    failing = dg.materialize(
        [check_def], resources={"warehouse": warehouse}, selection=dg.AssetSelection.checks(check_def)
    )

    assert [evaluation.passed for evaluation in passing.get_asset_check_evaluations()] == [True]
    assert [evaluation.passed for evaluation in failing.get_asset_check_evaluations()] == [False]


def test_concurrent_loads_of_a_stream_take_turns(warehouse: WarehouseResource) -> None:
    holding, release = threading.Event(), threading.Event()
    order: list[str] = []

    def first_run() -> None:
        with warehouse.begin() as connection:
            serialize_writers(connection, "stripe_events")
            holding.set()
            release.wait(10)
            order.append("first run commits")

    def second_run() -> None:
        with warehouse.begin() as connection:
            serialize_writers(connection, "stripe_events")
            order.append("second run writes")

    first = threading.Thread(target=first_run)
    first.start()
    assert holding.wait(10)
    second = threading.Thread(target=second_run)
    second.start()
    second.join(0.5)  # time enough for the second run to get ahead, were it not held back
    release.set()
    first.join(10)
    second.join(40)
    assert order == ["first run commits", "second run writes"]


def test_landing_sensors_request_partitioned_batches(client, landing_dir, monkeypatch) -> None:
    _post_events(client, {"type": "SAVE", "ruleId": "r"})
    _post_stripe(client, _succeeded())
    _crawl(client)
    _post_rules(client, _rule())
    client.post("/ingest/events", json={}, headers=app_headers())  # a rejection: the audit stream
    real_time_ns = landing_sensor_module.time.time_ns

    class Later:  # past the sensors' settle delay, without sleeping through it
        @staticmethod
        def time_ns() -> int:
            return real_time_ns() + 5 * 10**9

    monkeypatch.setattr(landing_sensor_module, "time", Later)
    by_name = {sensor.name: sensor for sensor in app_landing_sensors}
    assert set(by_name) == {
        "app_events_landing_sensor",
        "app_stripe_events_landing_sensor",
        "app_crawl_items_landing_sensor",
        "app_rules_landing_sensor",
        "app_audit_landing_sensor",
    }
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    for name, (job, op_name) in {
        "app_events_landing_sensor": ("app_events_load_job", "app__raw__events"),
        "app_stripe_events_landing_sensor": ("app_donations_load_job", "app__raw__donations"),
        "app_crawl_items_landing_sensor": ("app_crawl_items_load_job", "app__raw__crawl_items"),
        "app_rules_landing_sensor": ("app_rules_load_job", "app__raw__rules"),
        "app_audit_landing_sensor": ("app_audit_log_load_job", "app__raw__audit_log"),
    }.items():
        sensor = by_name[name]
        context = dg.build_sensor_context(resources={"landing": LandingZoneResource(landing_dir=str(landing_dir))})
        result = sensor(context)
        [request] = result.run_requests
        assert sensor.job_name == job
        assert request.partition_key == today
        assert len(request.run_config["ops"][op_name]["config"]["files"]) == 1


# --- search index -------------------------------------------------------------------------------------------------


def test_search_index_is_rebuilt_after_rule_and_crawl_loads(client, landing_dir, warehouse) -> None:
    from ingest_platform.app.search import search

    index = app_assets.app_search_rules_index
    resources = {"warehouse": warehouse, "landing": LandingZoneResource(landing_dir=str(landing_dir))}
    graph = dg.Definitions(
        assets=[app_assets.app_raw_rules, app_assets.app_raw_crawl_items, index], resources=resources
    )

    def run(asset, files=None):
        config = {"ops": {asset.op.name: {"config": {"files": files}}}} if files else None
        day = {"partition_key": datetime.now(UTC).strftime("%Y-%m-%d")} if files else {}
        dg.materialize([asset], instance=instance, resources=resources, run_config=config, **day)

    def search_ids(terms):
        with warehouse.engine.connect() as connection:
            return [hit.id for hit in search(connection, terms)]

    with dg.instance_for_test() as instance:
        never_built = dg.evaluate_automation_conditions(defs=graph, instance=instance)
        run(index)
        built = dg.evaluate_automation_conditions(defs=graph, instance=instance, cursor=never_built.cursor)
        _post_rules(client, _rule(title="Window functions"))
        run(app_assets.app_raw_rules, pending(landing_dir, "app_rules"))
        after_rules = dg.evaluate_automation_conditions(defs=graph, instance=instance, cursor=built.cursor)
        stale = search_ids("window")
        run(index)
        rebuilt = dg.evaluate_automation_conditions(defs=graph, instance=instance, cursor=after_rules.cursor)
        _crawl(client, title="Window cleaning")
        run(app_assets.app_raw_crawl_items, pending(landing_dir, "crawl_items"))
        after_crawl = dg.evaluate_automation_conditions(defs=graph, instance=instance, cursor=rebuilt.cursor)
        run(index)

    requested = [result.get_num_requested(index.key) for result in (never_built, built, after_rules, rebuilt)]
    found = search_ids("window")
    drop_search_index(warehouse)
    # A fresh deployment waits for its first load (or POST /cron/rebuild-search): nothing to index before that.
    assert [*requested, after_crawl.get_num_requested(index.key)] == [0, 0, 1, 0, 1]
    assert stale == []
    assert found == ["r1", "partner/x1"]
