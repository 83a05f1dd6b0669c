"""The Big Top probe (seed 001, phase 1) as a job: can a real browser from this host reach Big Top reliably?

Each attempt opens a fresh browser on the venue page and makes the GraphQL call from it; an attempt passes when
the page is no challenge and GraphQL answers 200. The verdict follows the seed's gate (PASS ≥ 4/5, BORDERLINE
2-3/5, FAIL 0-1/5) scaled to N attempts; only PASS lets the run succeed, since the seed proceeds only on PASS.
"""

import time
from dataclasses import dataclass
from typing import Literal

import dagster as dg
from pydantic import Field

from ingest_platform.bigtop.challenge import challenge_reason
from ingest_platform.bigtop.collector import (
    DEFAULT_BASE_URL,
    DEFAULT_PAGE_PATH,
    DEFAULT_RESTAURANT_ID,
    CollectOptions,
    calendar_request,
)
from ingest_platform.resources.browser import BrowserError, BrowserResource
from ingest_platform.tags import BROWSER_RUN_TAGS

Verdict = Literal["PASS", "BORDERLINE", "FAIL"]

PROBE_MAX_RUNTIME_S = 3600


@dataclass(frozen=True)
class ProbeAttempt:
    number: int
    is_challenge: bool
    graphql_status: int | None
    title: str
    final_url: str
    elapsed_s: float
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and not self.is_challenge and self.graphql_status == 200


def verdict(passed: int, attempts: int) -> Verdict:
    """PASS from 80 % of attempts, BORDERLINE from 40 %, else FAIL (for 5 attempts: 4-5, 2-3, 0-1)."""
    if attempts < 1 or not 0 <= passed <= attempts:
        raise ValueError(f"{passed} passed out of {attempts} attempts")
    if passed * 5 >= attempts * 4:
        return "PASS"
    if passed * 5 >= attempts * 2:
        return "BORDERLINE"
    return "FAIL"


def probe_once(*, browser: BrowserResource, options: CollectOptions, number: int) -> ProbeAttempt:
    """One attempt; a browser failure (timeout, refused connection) is a failed attempt, not a crash."""
    started = time.monotonic()
    try:
        with browser.session() as session:
            visit = session.visit(options.page_url, settle_s=options.settle_s)
            reason = challenge_reason(status=visit.status, headers=visit.headers, html=visit.html, title=visit.title)
            graphql = session.fetch(calendar_request(options))
    except BrowserError as error:
        return ProbeAttempt(number, False, None, "", "", time.monotonic() - started, error=str(error))
    return ProbeAttempt(
        number=number,
        is_challenge=reason is not None,
        graphql_status=graphql.status,
        title=visit.title,
        final_url=visit.url,
        elapsed_s=time.monotonic() - started,
        error=graphql.error,
    )


def markdown_table(attempts: list[ProbeAttempt]) -> str:
    lines = [
        "| # | IS_CHALLENGE | GRAPHQL_STATUS | title | final URL | elapsed (s) | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for attempt in attempts:
        result = "pass" if attempt.passed else f"fail: {attempt.error}" if attempt.error else "fail"
        lines.append(
            f"| {attempt.number} | {attempt.is_challenge} | {attempt.graphql_status or '-'} "
            f"| {_cell(attempt.title)} | {_cell(attempt.final_url)} | {attempt.elapsed_s:.2f} | {_cell(result)} |"
        )
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]


class ProbeConfig(dg.Config):
    attempts: int = Field(default=5, ge=1, le=20, description="How many attempts (the seed ran 5).")
    spacing_s: float = Field(
        default=240.0, ge=0, description="Pause between attempts (the seed spread 5 runs over 15-30 minutes)."
    )
    base_url: str = DEFAULT_BASE_URL
    page_path: str = DEFAULT_PAGE_PATH
    restaurant_id: int = DEFAULT_RESTAURANT_ID
    settle_s: float = Field(default=3.0, ge=0, description="Wait after DOM ready, as the seed's 3 s.")


@dg.op(description="Runs the probe's attempts and judges them; fails the run unless the verdict is PASS.")
def bigtop_probe_attempts(context: dg.OpExecutionContext, config: ProbeConfig, browser: BrowserResource) -> str:
    options = CollectOptions(
        base_url=config.base_url,
        page_path=config.page_path,
        restaurant_id=config.restaurant_id,
        settle_s=config.settle_s,
    )
    attempts: list[ProbeAttempt] = []
    for number in range(1, config.attempts + 1):
        if number > 1 and config.spacing_s:
            time.sleep(config.spacing_s)
        attempt = probe_once(browser=browser, options=options, number=number)
        attempts.append(attempt)
        context.log.info(
            f"probe {number}/{config.attempts}: IS_CHALLENGE={attempt.is_challenge} "
            f"GRAPHQL_STATUS={attempt.graphql_status} elapsed={attempt.elapsed_s:.2f}s"
            + (f" error={attempt.error}" if attempt.error else "")
        )
    passed = sum(attempt.passed for attempt in attempts)
    outcome = verdict(passed, len(attempts))
    metadata = {
        "verdict": outcome,
        "passed": passed,
        "attempts": len(attempts),
        "results": dg.MetadataValue.md(markdown_table(attempts)),
    }
    if outcome != "PASS":
        raise dg.Failure(
            description=f"Big Top probe verdict {outcome}: {passed}/{len(attempts)} passed", metadata=metadata
        )
    context.add_output_metadata(metadata)
    return outcome


@dg.job(
    name="bigtop_probe",
    tags={**BROWSER_RUN_TAGS, "dagster/max_runtime": str(PROBE_MAX_RUNTIME_S)},
    description="Seed 001's Playwright probe: N browser attempts at the venue page and GraphQL; writes no events.",
)
def bigtop_probe() -> None:
    bigtop_probe_attempts()
