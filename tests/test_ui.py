"""The Dagster UI as a user meets it, in real Chromium against a real dagster-webserver serving the platform.

One Big Top batch is loaded first (in-process, into the webserver's instance), so an asset page has a last
materialization to show. Every test saves a screenshot whose path it prints: `UI_SCREENSHOTS_DIR` keeps them
(e.g. for CI artifacts), else they stay in pytest's temporary folder. Nothing waits a fixed time: each step waits
for what it needs to see, with generous timeouts for a busy machine.
"""

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ingest_platform.resources.browser import DEBIAN_CHROMIUM
from tests.dagster_webserver import INSTANCE_YAML, dagster_webserver
from tests.fakes.bigtop_site import LOOPBACK_ONLY, requires_chromium
from tests.landing_files import bigtop_batch, bigtop_event, land
from webhook_app.dagster_api import WORKSPACE_QUERY

pytestmark = requires_chromium

LOCATION = "ingest_platform"
GROUPS = {
    "app": [
        "app/metrics/author_metric_daily",
        "app/metrics/leaderboards",
        "app/metrics/rule_metric_daily",
        "app/raw/audit_log",
        "app/raw/crawl_items",
        "app/raw/donations",
        "app/raw/events",
        "app/raw/rules",
        "app/search/rules_index",
    ],
    "bigtop": ["bigtop/raw/collected_events", "bigtop/raw/pushed_events", "bigtop/warehouse/events"],
    "rtarf": ["rtarf/raw/events"],
    "vivenu": ["vivenu/delivery/charity_webhooks", "vivenu/raw/tickets"],
}
# Long enough for a code server to load the definitions on a machine eight engineers share.
UI_TIMEOUT_MS = 180_000


def _location_loaded(body: dict[str, Any]) -> bool:
    entries = (body.get("data") or {}).get("workspaceOrError", {}).get("locationEntries", [])
    return any((entry.get("locationOrLoadError") or {}).get("__typename") == "RepositoryLocation" for entry in entries)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The webserver's base URL, its instance holding one materialization of bigtop/raw/pushed_events."""
    home = tmp_path_factory.mktemp("ui_platform")
    data, dagster_home = home / "data", home / "dagster_home"
    data.mkdir()
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML)
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DAGSTER_", "DATABASE_URL"))}
    env.update(PLATFORM_DATA_DIR=str(data))

    from ingest_platform.definitions import defs

    name = land(data / "landing", "bigtop_events", bigtop_batch(bigtop_event("a"), bigtop_event("b", "Quiz")))
    day = datetime.fromtimestamp(int(name[:20]) / 1e9, UTC).date().isoformat()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLATFORM_DATA_DIR", str(data))
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            loaded = defs.resolve_job_def("bigtop_push_load_job").execute_in_process(
                partition_key=day,
                instance=instance,
                run_config={"ops": {"bigtop__raw__pushed_events": {"config": {"files": [name]}}}},
            )
    assert loaded.success

    with dagster_webserver(dagster_home, env, ready_query=WORKSPACE_QUERY, ready=_location_loaded) as url:
        yield url.removesuffix("/graphql")


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("UI_SCREENSHOTS_DIR") or tmp_path_factory.mktemp("ui_screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=DEBIAN_CHROMIUM, args=[LOOPBACK_ONLY])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, platform: str) -> Iterator[Any]:
    context = browser.new_context(base_url=platform, viewport={"width": 1600, "height": 1800})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    # Dagster OSS greets a new browser with a newsletter dialog over the page; a user skips it, and so does the test
    # whenever it shows up in front of a step.
    page.add_locator_handler(
        page.get_by_text("Join the Dagster community"), lambda: page.get_by_role("button", name="Skip").click()
    )
    yield page
    context.close()


def no_error_toast(page: Any) -> None:
    from playwright.sync_api import expect

    expect(
        page.locator("[data-sonner-toast]").filter(has_text=re.compile("error|failed", re.IGNORECASE))
    ).to_have_count(0)


def screenshot(page: Any, folder: Path, name: str) -> Path:
    from playwright.sync_api import expect

    # Taken once the page's own queries have answered, so the picture shows what a user reads.
    expect(page.get_by_text("Loading...")).to_have_count(0)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def test_the_catalog_lists_every_asset_under_its_source_group(page: Any, screenshots: Path) -> None:
    from playwright.sync_api import expect

    page.goto("/assets")

    for group, keys in GROUPS.items():
        for key in keys:
            row = page.locator(f'a[href="/assets/{key}"]')
            expect(row.first).to_be_visible()
            group_link = page.locator(f"a[href*='group%3A\"{group}\"/{key.replace('/', '%2F')}']")
            expect(group_link.first).to_have_text(group)
    no_error_toast(page)
    assert screenshot(page, screenshots, "catalog").stat().st_size > 0


def test_the_big_top_lineage_shows_both_assets_feeding_the_one_events_table(page: Any, screenshots: Path) -> None:
    from playwright.sync_api import expect

    page.goto(f"/locations/{LOCATION}/asset-groups/bigtop/lineage")

    for name in ("pushed_events", "collected_events", "events"):
        expect(page.locator(f'[data-tooltip="{name}"]').first).to_be_visible()
    edges = page.locator('svg[class*="svgContainer"] path[marker-end]')
    expect(edges).to_have_count(2)
    # Both edges end at the same point: the one events table's node.
    ends = {re.findall(r"[\d.]+,[\d.]+", edges.nth(n).get_attribute("d"))[-1] for n in range(2)}
    assert len(ends) == 1, ends
    no_error_toast(page)
    assert screenshot(page, screenshots, "bigtop_lineage").stat().st_size > 0


def test_an_asset_page_shows_the_last_materializations_table_metadata(page: Any, screenshots: Path) -> None:
    from playwright.sync_api import expect

    page.goto("/assets/bigtop/raw/pushed_events")

    expect(page.get_by_text("Latest materialization")).to_be_visible()
    row_count = page.get_by_text("Row count", exact=True).locator("xpath=..")
    expect(row_count).to_contain_text("2")
    # The storage is the warehouse table both Big Top assets write, and its columns come from the SQLAlchemy table.
    expect(page.get_by_text("Storage", exact=True).locator("xpath=..")).to_contain_text("events")
    for column in ("source_id", "external_id", "title", "start_utc", "cancelled_at"):
        expect(page.get_by_text(column, exact=True).first).to_be_visible()
    expect(page.get_by_text("primary key").first).to_be_visible()
    no_error_toast(page)
    assert screenshot(page, screenshots, "asset_pushed_events").stat().st_size > 0
