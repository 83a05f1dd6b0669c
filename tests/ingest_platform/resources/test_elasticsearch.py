"""ElasticsearchResource with the official client against the fake cluster: paging, auth, retries, failures."""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg
import elastic_transport
import pytest
from elasticsearch import AuthenticationException, BadRequestError, UnsupportedProductError

from ingest_platform.resources.elasticsearch import ElasticsearchResource, PointInTimeExpired, ScanStats
from tests.fakes.elasticsearch import FakeElasticsearch, Fault
from tests.fakes.rtarf_documents import INDEX, day_documents, day_start

DAY = date(2025, 11, 14)


@pytest.fixture
def es() -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch().running() as server:
        server.index_many(INDEX, day_documents(DAY, 10))
        yield server


def scan(resource: ElasticsearchResource, *, page_size: int = 4) -> tuple[list[str], ScanStats]:
    stats = ScanStats()
    ids: list[str] = []
    with resource.time_range_pages(
        timestamp_field="@timestamp",
        start=day_start(DAY),
        end=day_start(DAY) + timedelta(days=1),
        page_size=page_size,
        stats=stats,
    ) as pages:
        for hits in pages:
            ids.extend(hit["_id"] for hit in hits)
    return ids, stats


def resource(es: FakeElasticsearch, **overrides: Any) -> ElasticsearchResource:
    return ElasticsearchResource(url=es.url, retry_backoff_seconds=0.01, **overrides)


def test_pages_come_oldest_first_and_end_on_a_short_page(es: FakeElasticsearch):
    ids, stats = scan(resource(es), page_size=5)

    assert ids == [f"{DAY}-{n}" for n in range(10)]
    # Ten documents in pages of five: the second page is full, so a third (empty) request ends the scan.
    assert (stats.pages, stats.hits, len(es.requests_of("search"))) == (2, 10, 3)
    assert es.pits == {}


def test_a_timeout_is_retried(es: FakeElasticsearch):
    es.inject(Fault(kind="search", delay_seconds=1.0, after=1))

    ids, stats = scan(resource(es, request_timeout_seconds=0.3))

    assert len(ids) == 10
    assert stats.retries == 1


def test_the_api_key_is_sent(es: FakeElasticsearch):
    es.api_key = "a2V5LWlkOnNlY3JldA=="

    assert len(scan(resource(es, api_key="a2V5LWlkOnNlY3JldA=="))[0]) == 10
    with pytest.raises(AuthenticationException):
        scan(resource(es, api_key="d3Jvbmc6a2V5"))
    # A wrong key is not transient: one attempt, no retries.
    assert len(es.requests_of("open_pit")) == 2


def test_a_client_error_is_not_retried_and_the_point_in_time_is_closed(es: FakeElasticsearch):
    es.inject(Fault(kind="search", status=400, after=1))

    with pytest.raises(BadRequestError):
        scan(resource(es))

    assert len(es.requests_of("search")) == 2
    assert es.pits == {}


def test_an_unreachable_cluster_fails_after_the_retries():
    unreachable = ElasticsearchResource(url="http://127.0.0.1:9", max_retries=2, retry_backoff_seconds=0.01)

    with pytest.raises(elastic_transport.ConnectionError):
        scan(unreachable)


def test_a_point_in_time_that_keeps_expiring_fails_the_scan(es: FakeElasticsearch):
    es.inject(Fault(kind="search", expire_pit=True, after=1, times=10))

    with pytest.raises(PointInTimeExpired):
        scan(resource(es, max_pit_reopens=2))

    assert len(es.requests_of("open_pit")) == 3


def test_the_server_must_say_it_is_elasticsearch(es: FakeElasticsearch):
    es.announce_product = False

    with pytest.raises(UnsupportedProductError):
        scan(resource(es))


CREDENTIAL_VARIABLES = ("ELASTICSEARCH_API_KEY", "ELASTICSEARCH_USERNAME", "ELASTICSEARCH_PASSWORD")


def test_credentials_set_after_the_definitions_loaded_are_used_when_the_run_starts(
    es: FakeElasticsearch, monkeypatch: pytest.MonkeyPatch
):
    """The code server loads the definitions once; the key a run needs is read by the run, not at import."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    from ingest_platform.definitions import defs

    bound = defs.resources["elasticsearch"]
    # ELASTICSEARCH_URL too is read when a run uses the resource, so a missing one fails the run in one line.
    assert bound.url is None
    assert (bound.api_key, bound.username, bound.password) == (None, None, None)

    es.api_key = "a2V5LWlkOnNlY3JldA=="
    monkeypatch.setenv("ELASTICSEARCH_API_KEY", es.api_key)
    assert len(scan(resource(es))[0]) == 10
    monkeypatch.setenv("ELASTICSEARCH_API_KEY", "d3Jvbmc6a2V5")
    with pytest.raises(AuthenticationException):
        scan(resource(es))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({"ELASTICSEARCH_API_KEY": "k"}, ("k", None, None), id="api-key"),
        pytest.param({"ELASTICSEARCH_USERNAME": "u", "ELASTICSEARCH_PASSWORD": "p"}, (None, "u", "p"), id="basic"),
        pytest.param({}, (None, None, None), id="no-auth"),
    ],
)
def test_unset_credential_fields_fall_back_to_their_variables(
    env: dict[str, str], expected: tuple, monkeypatch: pytest.MonkeyPatch
):
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert ElasticsearchResource(url="http://127.0.0.1:9").credentials() == expected


@pytest.mark.parametrize(
    ("credentials", "problem"),
    [
        pytest.param({"api_key": "k", "username": "u", "password": "p"}, "not both", id="both"),
        pytest.param({"username": "u"}, "needs both", id="user-without-password"),
    ],
)
def test_ambiguous_credentials_are_refused(credentials: dict[str, str], problem: str):
    with pytest.raises(dg.Failure, match=problem):
        ElasticsearchResource(url="http://127.0.0.1:9", **credentials).client()
