from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

from ingest_platform.bigtop.probe import ProbeAttempt, markdown_table, verdict
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


def test_the_table_has_one_row_per_attempt() -> None:
    table = markdown_table(
        [
            ProbeAttempt(1, False, 200, "Big Top | Home", "https://x/page", 1.234),
            ProbeAttempt(2, True, 403, "Just a moment...", "https://x/page", 2.0),
        ]
    )
    assert table.splitlines()[2:] == [
        "| 1 | False | 200 | Big Top \\| Home | https://x/page | 1.23 | pass |",
        "| 2 | True | 403 | Just a moment... | https://x/page | 2.00 | fail |",
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


@requires_chromium
def test_four_of_five_clean_attempts_pass(site: FakeBigTopSite) -> None:
    site.page_script.extend(["normal", "challenge", "normal", "normal", "normal"])
    result = run_probe(site, 5)
    assert result.success
    assert result.output_for_node("bigtop_probe_attempts") == "PASS"
    [output] = [event for event in result.all_events if event.event_type_value == "STEP_OUTPUT"]
    metadata = {name: value.value for name, value in output.step_output_data.metadata.items()}
    assert (metadata["verdict"], metadata["passed"], metadata["attempts"]) == ("PASS", 4, 5)
    rows = metadata["results"].splitlines()[2:]
    assert rows[1].startswith("| 2 | True | 200 | Just a moment... |")
    assert rows[0].startswith("| 1 | False | 200 | Restaurant & Brewery \\| Big Top Brewing Co. |")
    assert len(site.requests_to("/restaurant-brewery-2")) == 5


@requires_chromium
def test_a_graphql_refusal_makes_a_borderline_run_fail(site: FakeBigTopSite) -> None:
    site.graphql_script.extend(["normal", "challenge", "normal"])
    result = run_probe(site, 3)
    assert not result.success
    description, metadata = failure_metadata(result)
    assert description == "Big Top probe verdict BORDERLINE: 2/3 passed"
    assert "| 2 | False | 403 |" in metadata["results"]


@requires_chromium
def test_an_unreachable_or_challenged_site_fails(site: FakeBigTopSite) -> None:
    site.page_script.extend(["challenge", "unavailable"])
    result = run_probe(site, 2)
    assert not result.success
    description, metadata = failure_metadata(result)
    assert description == "Big Top probe verdict FAIL: 0/2 passed"
    assert [line.split(" | ")[1] for line in metadata["results"].splitlines()[2:]] == ["True", "True"]
