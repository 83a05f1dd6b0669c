import uuid

import pytest

from ingest_platform.resources.browser import (
    CHROMIUM_FLAGS,
    BrowserError,
    BrowserResource,
    BrowserTimeoutError,
    BrowserUnavailableError,
    FetchRequest,
)
from tests.fakes.bigtop_site import LOOPBACK_ONLY, FakeBigTopSite, bigtop_site, chromium_for_tests, requires_chromium
from tests.fakes.processes import chromium_processes, wait_for_no_chromium


@pytest.fixture
def marker(monkeypatch: pytest.MonkeyPatch) -> str:
    """An environment marker the browser launched by this test inherits (see tests/fakes/processes.py)."""
    value = uuid.uuid4().hex
    monkeypatch.setenv("INGEST_TEST_BROWSER", value)
    return f"INGEST_TEST_BROWSER={value}"


@pytest.fixture
def site() -> FakeBigTopSite:
    with bigtop_site(slow_s=8.0) as running:
        yield running


def test_the_fixed_flags_come_first_and_extra_args_follow() -> None:
    browser = BrowserResource(extra_args=[LOOPBACK_ONLY])
    assert browser.launch_args() == [*CHROMIUM_FLAGS, LOOPBACK_ONLY]
    assert {"--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"} <= set(CHROMIUM_FLAGS)


def test_a_missing_chromium_is_a_clear_error() -> None:
    browser = BrowserResource(executable_path="/nonexistent/chromium")
    with pytest.raises(BrowserUnavailableError, match="apt-get install -y chromium"), browser.session():
        pass


@requires_chromium
def test_a_session_visits_fetches_and_closes_chromium(site: FakeBigTopSite, marker: str) -> None:
    with chromium_for_tests().session() as session:
        assert chromium_processes(marker), "the marker must find this test's Chromium while it runs"
        visit = session.visit(site.page_url)
        assert (visit.status, visit.title) == (200, "Restaurant & Brewery | Big Top Brewing Co.")
        result = session.fetch(FetchRequest(url=site.base_url + "/events/missing.ics"))
        assert (result.status, result.body) == (404, "Not Found")
        # The page's cookie rides along: the request left from the browser context.
        assert site.requests_to("/events/missing.ics")[0].headers["Cookie"] == site.session_cookie
        # The resolver rules leave nothing but the loopback: no test reaches the internet.
        with pytest.raises(BrowserError, match="ERR_NAME_NOT_RESOLVED"):
            session.visit("http://www.bigtopbrewing.com/restaurant-brewery-2")
    assert wait_for_no_chromium(marker) == {}


@requires_chromium
def test_a_navigation_timeout_fails_and_leaves_no_chromium(site: FakeBigTopSite, marker: str) -> None:
    seen_while_waiting: list[dict[int, str]] = []
    site.on_page_request = lambda: seen_while_waiting.append(chromium_processes(marker))
    site.page = "slow"
    with (
        pytest.raises(BrowserTimeoutError) as raised,
        chromium_for_tests(navigation_timeout_s=1.0).session() as session,
    ):
        session.visit(site.page_url)
    assert raised.value.session_limit is False
    assert seen_while_waiting[0], "Chromium was running while the page hung"
    assert wait_for_no_chromium(marker) == {}


@requires_chromium
def test_the_session_limit_bounds_everything_inside_it(site: FakeBigTopSite, marker: str) -> None:
    site.page = "slow"
    browser = chromium_for_tests(navigation_timeout_s=30.0, session_timeout_s=4.0)
    with pytest.raises(BrowserTimeoutError) as raised, browser.session() as session:
        session.visit(site.page_url)
    assert raised.value.session_limit is True
    assert wait_for_no_chromium(marker) == {}


@requires_chromium
def test_an_error_inside_the_session_still_closes_chromium(site: FakeBigTopSite, marker: str) -> None:
    with pytest.raises(RuntimeError, match="collector bug"), chromium_for_tests().session() as session:
        session.visit(site.page_url)
        raise RuntimeError("collector bug")
    assert wait_for_no_chromium(marker) == {}


@requires_chromium
def test_requests_keep_the_in_flight_bound(site: FakeBigTopSite) -> None:
    site.ics_latency_s = 0.2
    urls = [FetchRequest(url=f"{site.base_url}/events/e{n}.ics") for n in range(6)]
    with chromium_for_tests().session() as session:
        session.visit(site.page_url)
        results = session.fetch_all(urls, max_in_flight=2)
    assert [result.status for result in results] == [404] * 6
    assert site.max_ics_in_flight == 2


@requires_chromium
def test_requests_are_spaced_by_the_delay(site: FakeBigTopSite) -> None:
    urls = [FetchRequest(url=f"{site.base_url}/events/e{n}.ics") for n in range(5)]
    with chromium_for_tests().session() as session:
        session.visit(site.page_url)
        session.fetch_all(urls, max_in_flight=5, delay_s=0.2)
    starts = [request.at for request in site.requests_to("/events/")]
    # Unspaced, five requests from five slots arrive within milliseconds; spaced, over 0.8 s. The wide margin
    # absorbs a busy machine delaying the first request's arrival more than the later ones'.
    assert max(starts) - min(starts) >= 0.5


@requires_chromium
def test_requests_stop_after_a_refusal(site: FakeBigTopSite) -> None:
    site.ics = "challenge"
    urls = [FetchRequest(url=f"{site.base_url}/events/e{n}.ics") for n in range(5)]
    with chromium_for_tests().session() as session:
        session.visit(site.page_url)
        results = session.fetch_all(urls, max_in_flight=1, stop_statuses={403})
    assert [result.status for result in results] == [403, None, None, None, None]
    assert [result.error for result in results[1:]] == ["not started"] * 4
    assert len(site.requests_to("/events/")) == 1
