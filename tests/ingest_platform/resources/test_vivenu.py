"""VivenuResource against the fake Vivenu API on loopback."""

import dagster as dg
import pytest

from ingest_platform.resources.vivenu import (
    SEED_KEY_VARIABLES,
    VivenuAuthError,
    VivenuConfigError,
    VivenuError,
    VivenuResource,
)
from tests.fakes.vivenu import FakeVivenu, make_tickets

KEY = "prod-key-0123456789"
EVENT = "68108c20c5c88849372bfb61"


@pytest.fixture
def vivenu_api(monkeypatch: pytest.MonkeyPatch) -> FakeVivenu:
    for name in ("DEV_API", "PROD_API", "ITALY_API", "DACH_API"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PROD_API", KEY)
    with FakeVivenu(keys={KEY}) as fake:
        yield fake


def resource(fake: FakeVivenu, **overrides) -> VivenuResource:
    return VivenuResource(production_base_url=fake.url, dev_base_url=fake.url, backoff_base_seconds=0.01, **overrides)


def test_pages_until_total_with_bearer_key(vivenu_api: FakeVivenu) -> None:
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=250)
    pages = []

    tickets = resource(vivenu_api).fetch_tickets(
        region="prod", event_id=EVENT, on_page=lambda fetched, total: pages.append((fetched, total))
    )

    assert sorted(ticket["_id"] for ticket in tickets) == sorted(ticket["_id"] for ticket in vivenu_api.events[EVENT])
    # Each page from the second on starts with the previous page's last ticket, to see the list move under it.
    assert [request.params for request in vivenu_api.requests] == [
        {"event": EVENT, "top": "100", "skip": "0"},
        {"event": EVENT, "top": "100", "skip": "99"},
        {"event": EVENT, "top": "100", "skip": "198"},
    ]
    assert {request.authorization for request in vivenu_api.requests} == {f"Bearer {KEY}"}
    assert pages == [(100, 250), (199, 250), (250, 250)]


def test_page_size_up_to_the_api_maximum(vivenu_api: FakeVivenu) -> None:
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=2500)

    tickets = resource(vivenu_api, page_size=1000).fetch_tickets(region="PROD", event_id=EVENT)

    assert len(tickets) == 2500
    assert [request.params["top"] for request in vivenu_api.requests] == ["1000"] * 3


def sold(ticket_id: str, like: dict) -> dict:
    return {**like, "_id": ticket_id}


# (page after which the list changes, positions removed, (position, new id) sold), for a list of 300 in pages of
# 100; the first page ends at position 99.
CHANGES = {
    "cancellation before the page boundary": [(1, [5], [])],
    "sale before the page boundary": [(1, [], [(0, "sold-1")])],
    "cancellation and sale on two pages": [(1, [5], [(250, "sold-1")]), (2, [], [(0, "sold-2")])],
    "cancellation then sale during the re-reading": [(2, [40], []), (3, [], [(10, "sold-1")])],
    "cancellation beyond the boundary": [(1, [180], [])],
    "sale beyond the boundary": [(1, [], [(180, "sold-1")])],
    "cancellation of the boundary ticket": [(1, [99], [])],
    "cancellation on the last page": [(3, [290], [])],
}


@pytest.mark.parametrize("changes", list(CHANGES.values()), ids=list(CHANGES))
def test_a_list_that_changes_while_it_is_paged_is_read_again_until_a_pass_is_stable(
    vivenu_api: FakeVivenu, changes: list
) -> None:
    before = make_tickets(EVENT, count=300)
    vivenu_api.events[EVENT] = list(before)
    for page, removed_positions, sales in changes:
        vivenu_api.change_after_page(
            EVENT,
            page,
            remove=[before[position]["_id"] for position in removed_positions],
            insert=[(position, sold(ticket_id, before[0])) for position, ticket_id in sales],
        )

    tickets = resource(vivenu_api).fetch_tickets(region="PROD", event_id=EVENT)

    ids = [ticket["_id"] for ticket in tickets]
    after = {ticket["_id"] for ticket in vivenu_api.events[EVENT]}
    assert len(ids) == len(set(ids))
    assert {ticket["_id"] for ticket in before} & after <= set(ids)  # nothing that exists throughout is skipped
    assert set(ids) == after  # one consistent reading: what Vivenu has once the pull is done


def test_a_list_that_never_settles_fails_clearly(vivenu_api: FakeVivenu) -> None:
    before = make_tickets(EVENT, count=300)
    vivenu_api.events[EVENT] = list(before)
    for page in range(1, 20):
        vivenu_api.change_after_page(EVENT, page, insert=[(0, sold(f"sold-{page}", before[0]))])

    with pytest.raises(VivenuError, match="ticket list changed during each of 3 passes"):
        resource(vivenu_api, max_passes=3).fetch_tickets(region="PROD", event_id=EVENT)
    assert len(vivenu_api.requests) == 6  # two pages a pass: the second sees the list moved


def test_an_event_without_tickets_is_an_empty_success(vivenu_api: FakeVivenu) -> None:
    assert resource(vivenu_api).fetch_tickets(region="PROD", event_id=EVENT) == []


def test_429_waits_for_retry_after_and_5xx_is_retried(vivenu_api: FakeVivenu) -> None:
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=10)
    vivenu_api.fail_next(1, 429, retry_after="1")
    vivenu_api.fail_next(2, 503)

    tickets = resource(vivenu_api).fetch_tickets(region="PROD", event_id=EVENT)

    assert len(tickets) == 10
    assert len(vivenu_api.requests) == 4
    assert vivenu_api.requests[1].at - vivenu_api.requests[0].at >= 1.0


def test_a_timed_out_page_is_asked_again(vivenu_api: FakeVivenu) -> None:
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=10)
    vivenu_api.hang_next(1)

    tickets = resource(vivenu_api, read_timeout_seconds=0.2).fetch_tickets(region="PROD", event_id=EVENT)

    assert len(tickets) == 10
    assert len(vivenu_api.requests) == 2


def test_gives_up_after_max_attempts_of_5xx(vivenu_api: FakeVivenu) -> None:
    vivenu_api.fail_next(10, 502)

    with pytest.raises(VivenuError, match="HTTP 502 after 3 attempts"):
        resource(vivenu_api, max_attempts=3).fetch_tickets(region="PROD", event_id=EVENT)
    assert len(vivenu_api.requests) == 3


def test_other_4xx_is_not_retried(vivenu_api: FakeVivenu) -> None:
    vivenu_api.fail_next(1, 404)

    with pytest.raises(VivenuError, match="HTTP 404"):
        resource(vivenu_api).fetch_tickets(region="PROD", event_id=EVENT)
    assert len(vivenu_api.requests) == 1


@pytest.mark.parametrize("status", [401, 403], ids=["unauthorized", "forbidden"])
def test_a_refused_key_is_named_by_its_variable_never_shown(
    vivenu_api: FakeVivenu, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    if status == 403:
        vivenu_api.fail_next(1, 403)
    else:
        monkeypatch.setenv("PROD_API", "wrong-secret-key")

    with pytest.raises(VivenuAuthError) as raised:
        resource(vivenu_api).fetch_tickets(region="PROD", event_id=EVENT)

    assert "PROD_API" in str(raised.value) and f"HTTP {status}" in str(raised.value)
    assert "wrong-secret-key" not in str(raised.value) and KEY not in str(raised.value)
    assert len(vivenu_api.requests) == 1


@pytest.mark.parametrize(
    ("region", "event_id", "message"),
    [
        ("NARNIA", EVENT, "unknown Vivenu region 'NARNIA'; configured regions: PROD"),
        ("ITALY", EVENT, "set the ITALY_API variable"),
        ("PROD", "../../etc", "malformed Vivenu event id"),
        ("PROD", "", "malformed Vivenu event id"),
        ("PROD", "abc def", "malformed Vivenu event id"),
    ],
    ids=["unknown-region", "missing-key", "path-traversal-id", "empty-id", "space-in-id"],
)
def test_configuration_errors_are_clear_and_ask_nothing_of_vivenu(
    vivenu_api: FakeVivenu, region: str, event_id: str, message: str
) -> None:
    with pytest.raises(VivenuConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        resource(vivenu_api).fetch_tickets(region=region, event_id=event_id)
    assert vivenu_api.requests == []


def test_a_region_added_to_the_resource_reads_the_key_its_entry_names(
    vivenu_api: FakeVivenu, monkeypatch: pytest.MonkeyPatch
) -> None:
    vivenu_api.keys.add("nordics-key")
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=3)
    vivenu = resource(vivenu_api, api_key_env={**SEED_KEY_VARIABLES, "NORDICS": "VIVENU_NORDICS_KEY"})
    monkeypatch.setenv("VIVENU_NORDICS_KEY", "nordics-key")

    assert len(vivenu.fetch_tickets(region="nordics", event_id=EVENT)) == 3
    assert vivenu.configured_regions() == ["NORDICS", "PROD"]
    # A variable that looks like a key names no region until the resource lists it.
    monkeypatch.setenv("NARNIA_API", "narnia-key")
    with pytest.raises(VivenuConfigError, match="unknown Vivenu region 'NARNIA'"):
        vivenu.check_region("narnia")


def test_the_keys_are_read_once_when_the_run_starts(vivenu_api: FakeVivenu, monkeypatch: pytest.MonkeyPatch) -> None:
    vivenu_api.events[EVENT] = make_tickets(EVENT, count=3)
    with dg.build_resources({"vivenu": resource(vivenu_api)}) as started:
        # Set when the run started, changed during it: the run keeps the key it started with.
        monkeypatch.setenv("PROD_API", "rotated-key")
        assert len(started.vivenu.fetch_tickets(region="PROD", event_id=EVENT)) == 3

    assert {request.authorization for request in vivenu_api.requests} == {f"Bearer {KEY}"}


def test_a_run_started_without_the_key_fails_naming_the_variable(
    vivenu_api: FakeVivenu, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROD_API")
    with dg.build_resources({"vivenu": resource(vivenu_api)}) as started:
        monkeypatch.setenv("PROD_API", KEY)
        with pytest.raises(VivenuConfigError, match="no API key for Vivenu region PROD: set the PROD_API variable"):
            started.vivenu.fetch_tickets(region="PROD", event_id=EVENT)
    assert vivenu_api.requests == []


def test_missing_settings_name_the_unset_keys_and_not_the_optional_urls(
    vivenu_api: FakeVivenu, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DACH_API", "   ")

    missing = VivenuResource().missing_settings()

    assert sorted(missing) == ["DACH_API", "DEV_API", "ITALY_API"]
    assert missing["ITALY_API"] == "API key of Vivenu region ITALY: its runs fail without it"


@pytest.mark.parametrize(
    ("region", "expected"),
    [("DEV", "https://dev.example"), ("PROD", "https://api.example"), ("DACH", "https://api.example")],
    ids=["dev", "prod", "dach"],
)
def test_dev_uses_the_dev_api_every_other_region_production(region: str, expected: str) -> None:
    vivenu = VivenuResource(dev_base_url="https://dev.example/", production_base_url="https://api.example")
    assert vivenu.base_url(region) == expected


def test_base_urls_default_to_the_environment_then_vivenu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIVENU_DEV_BASE_URL", raising=False)
    monkeypatch.setenv("VIVENU_BASE_URL", "http://127.0.0.1:9")
    assert VivenuResource().base_url("PROD") == "http://127.0.0.1:9"
    assert VivenuResource().base_url("DEV") == "https://vivenu.dev"
