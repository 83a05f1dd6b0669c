from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

from bench.common import free_port
from ingest_platform.bigtop.probe import ProbeAttempt, judge, markdown_table, verdict
from ingest_platform.jobs.bigtop import bigtop_probe
from tests.fakes.bigtop_site import FakeBigTopSite, bigtop_site, chromium_for_tests, requires_chromium


@pytest.mark.parametrize(
    ("passed", "attempts", "expected"),
    [
        pytest.param(5, 5, "PASS", id="5/5"),
        pytest.param(4, 5, "PASS", id="4/5"),
        pytest.param(3, 5, "BORDERLINE", id="3/5"),
        pytest.param(2, 5, "BORDERLINE", id="2/5"),
        pytest.param(1, 5, "FAIL", id="1/5"),
        pytest.param(0, 5, "FAIL", id="0/5"),
        pytest.param(8, 10, "PASS", id="8/10"),
        pytest.param(7, 10, "BORDERLINE", id="7/10"),
        pytest.param(4, 10, "BORDERLINE", id="4/10"),
        pytest.param(3, 10, "FAIL", id="3/10"),
        pytest.param(1, 1, "PASS", id="1/1"),
        pytest.param(0, 1, "FAIL", id="0/1"),
        pytest.param(2, 3, "BORDERLINE", id="2/3"),
        pytest.param(1, 3, "FAIL", id="1/3"),
    ],
)
def test_the_verdict_is_the_seeds_rule_scaled_to_n(passed: int, attempts: int, expected: str) -> None:
    assert verdict(passed, attempts) == expected


def attempt(number: int, kind: str) -> ProbeAttempt:
    """A probe attempt of one kind: pass, challenge, unavailable, error (the browser failed) or graphql-403."""
    if kind == "pass":
        return ProbeAttempt(number, False, 200, "Big Top", "https://x/page", 1.0)
    if kind == "challenge":
        return ProbeAttempt(
            number, True, 200, "Just a moment...", "https://x/page", 1.0, refused="challenge", refusal_reason="cf"
        )
    if kind == "unavailable":
        return ProbeAttempt(
            number, False, 503, "", "https://x/page", 1.0, refused="unavailable", refusal_reason="status 503"
        )
    if kind == "error":
        return ProbeAttempt(number, False, None, "", "", 1.0, error="Chromium crashed")
    raise ValueError(kind)


@pytest.mark.parametrize(
    ("kinds", "expected", "passed", "counted"),
    [
        pytest.param(["pass"] * 5, "PASS", 5, 5, id="5-passes"),
        pytest.param(["pass"] * 4 + ["challenge"], "PASS", 4, 5, id="4-passes-1-challenge"),
        pytest.param(["pass"] * 3 + ["challenge"] * 2, "BORDERLINE", 3, 5, id="3-passes-2-challenges"),
        pytest.param(["pass"] * 3 + ["error"] * 2, "BORDERLINE", 3, 5, id="browser-errors-count-as-failures"),
        pytest.param(["pass"] * 3 + ["unavailable"] * 2, "PASS", 3, 3, id="outages-are-left-out-of-the-tally"),
        pytest.param(["pass"] * 2 + ["challenge"] + ["unavailable"] * 2, "BORDERLINE", 2, 3, id="outage-and-challenge"),
        pytest.param(["challenge"] * 2 + ["unavailable"] * 3, "UNAVAILABLE", 0, 2, id="mostly-outages"),
        pytest.param(["unavailable"] * 5, "UNAVAILABLE", 0, 0, id="all-outages"),
        pytest.param(["challenge", "unavailable"], "FAIL", 0, 1, id="half-outages-still-judged"),
        pytest.param(["challenge"] * 5, "FAIL", 0, 5, id="all-challenges"),
    ],
)
def test_only_attempts_that_reached_the_site_are_judged(
    kinds: list[str], expected: str, passed: int, counted: int
) -> None:
    judgement = judge([attempt(number, kind) for number, kind in enumerate(kinds, start=1)])
    assert (judgement.verdict, judgement.passed, judgement.counted) == (expected, passed, counted)
    assert judgement.unavailable == kinds.count("unavailable")


def test_the_table_has_one_row_per_attempt_and_names_what_refused_it() -> None:
    table = markdown_table(
        [
            ProbeAttempt(1, False, 200, "Big Top | Home", "https://x/page", 1.234),
            ProbeAttempt(
                2, True, 403, "Just a moment...", "https://x/page", 2.0, refused="challenge", refusal_reason="cf"
            ),
            ProbeAttempt(3, False, 503, "", "https://x/page", 0.5, refused="unavailable", refusal_reason="status 503"),
        ]
    )
    assert table.splitlines()[2:] == [
        "| 1 | False | - | 200 | Big Top \\| Home | https://x/page | 1.23 | pass |",
        "| 2 | True | challenge | 403 | Just a moment... | https://x/page | 2.00 | fail: challenge (cf) |",
        "| 3 | False | unavailable | 503 |  | https://x/page | 0.50 | not counted: site unavailable (status 503) |",
    ]


def test_the_probe_writes_nothing_and_needs_only_the_browser() -> None:
    # io_manager only keeps the op's verdict string; there is no warehouse to write events to.
    assert bigtop_probe.required_resource_keys == {"browser", "io_manager"}


@pytest.fixture
def site() -> Iterator[FakeBigTopSite]:
    with bigtop_site() as running:
        yield running


def run_probe(site: FakeBigTopSite, attempts: int) -> dg.ExecuteInProcessResult:
    config = {"attempts": attempts, "spacing_s": 0.0, "base_url": site.base_url, "settle_s": 0.0}
    return bigtop_probe.execute_in_process(
        run_config={"ops": {"bigtop_probe_attempts": {"config": config}}},
        resources={"browser": chromium_for_tests()},
        raise_on_error=False,
    )


def failure_metadata(result: dg.ExecuteInProcessResult) -> tuple[str, dict[str, Any]]:
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    data = failure.step_failure_data.user_failure_data
    return data.description, {name: value.value for name, value in data.metadata.items()}


def result_rows(metadata: dict[str, Any]) -> list[list[str]]:
    return [line.split(" | ") for line in metadata["results"].splitlines()[2:]]


@requires_chromium
def test_four_of_five_clean_attempts_pass(site: FakeBigTopSite) -> None:
    site.page_script.extend(["normal", "challenge", "normal", "normal", "normal"])
    result = run_probe(site, 5)
    assert result.success
    assert result.output_for_node("bigtop_probe_attempts") == "PASS"
    [output] = [event for event in result.all_events if event.event_type_value == "STEP_OUTPUT"]
    metadata = {name: value.value for name, value in output.step_output_data.metadata.items()}
    assert (metadata["verdict"], metadata["passed"], metadata["attempts"]) == ("PASS", 4, 5)
    assert (metadata["counted"], metadata["site_unavailable"]) == (5, 0)
    rows = metadata["results"].splitlines()[2:]
    assert rows[1].startswith("| 2 | True | challenge | 200 | Just a moment... |")
    assert rows[0].startswith("| 1 | False | - | 200 | Restaurant & Brewery \\| Big Top Brewing Co. |")
    assert len(site.requests_to("/restaurant-brewery-2")) == 5


@requires_chromium
def test_a_graphql_refusal_makes_a_borderline_run_fail(site: FakeBigTopSite) -> None:
    site.graphql_script.extend(["normal", "challenge", "normal"])
    result = run_probe(site, 3)
    assert not result.success
    description, metadata = failure_metadata(result)
    assert description == "Big Top probe verdict BORDERLINE: 2/3 passed"
    assert "| 2 | False | challenge | 403 |" in metadata["results"]


@requires_chromium
def test_a_challenged_site_fails(site: FakeBigTopSite) -> None:
    site.page_script.extend(["challenge", "blocked"])
    result = run_probe(site, 2)
    assert not result.success
    description, metadata = failure_metadata(result)
    assert description == "Big Top probe verdict FAIL: 0/2 passed"
    assert [row[1:3] for row in result_rows(metadata)] == [["True", "challenge"], ["True", "challenge"]]


@requires_chromium
def test_an_outage_is_reported_as_such_and_left_out_of_the_verdict(site: FakeBigTopSite) -> None:
    # Before, a plain 503 read as "IS_CHALLENGE True" and turned this PASS into BORDERLINE.
    site.page_script.extend(["normal", "unavailable", "normal", "normal", "normal"])
    site.graphql_script.extend(["normal", "normal", "normal", "origin_down", "normal"])
    result = run_probe(site, 5)
    assert result.success
    [output] = [event for event in result.all_events if event.event_type_value == "STEP_OUTPUT"]
    metadata = {name: value.value for name, value in output.step_output_data.metadata.items()}
    assert (metadata["verdict"], metadata["passed"], metadata["counted"], metadata["site_unavailable"]) == (
        "PASS",
        3,
        3,
        2,
    )
    rows = result_rows(metadata)
    assert [row[1:4] for row in rows] == [
        ["False", "-", "200"],
        ["False", "unavailable", "200"],
        ["False", "-", "200"],
        ["False", "unavailable", "503"],
        ["False", "-", "200"],
    ]
    assert rows[1][-1].startswith("not counted: site unavailable (status 503 without a challenge")
    assert rows[3][-1].startswith("not counted: site unavailable (status 503 through Cloudflare without a challenge")


@requires_chromium
def test_a_site_that_is_down_gives_the_verdict_unavailable(site: FakeBigTopSite) -> None:
    site.page = "unavailable"
    site.graphql = "unavailable"
    result = run_probe(site, 3)
    assert not result.success
    description, metadata = failure_metadata(result)
    assert description == "Big Top probe verdict UNAVAILABLE: 0/0 passed, site unavailable in 3/3"
    assert [row[2] for row in result_rows(metadata)] == ["unavailable"] * 3


@requires_chromium
def test_a_refused_connection_is_an_outage_not_a_browser_failure() -> None:
    config = {"attempts": 2, "spacing_s": 0.0, "base_url": f"http://127.0.0.1:{free_port()}", "settle_s": 0.0}
    result = bigtop_probe.execute_in_process(
        run_config={"ops": {"bigtop_probe_attempts": {"config": config}}},
        resources={"browser": chromium_for_tests()},
        raise_on_error=False,
    )
    assert not result.success
    description, metadata = failure_metadata(result)
    assert description == "Big Top probe verdict UNAVAILABLE: 0/0 passed, site unavailable in 2/2"
    assert all("connection refused" in row[-1] for row in result_rows(metadata))
