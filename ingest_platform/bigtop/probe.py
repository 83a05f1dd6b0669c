"""The Big Top probe (seed 001, phase 1): can a real browser from this host reach Big Top reliably?

Each attempt opens a fresh browser on the venue page and makes the GraphQL call from it; an attempt passes when
the page is no challenge and GraphQL answers 200. The verdict follows the seed's gate (PASS ≥ 4/5, BORDERLINE
2-3/5, FAIL 0-1/5) scaled to the attempts that reached the site; only PASS lets the run succeed, since the seed
proceeds only on PASS.

Only a challenge (or the browser itself failing) counts against the browser. An attempt that found the site
unavailable (a 5xx or an origin 429 without Cloudflare's challenge, or a refused connection) says nothing about
the browser: it is left out of the tally, and when more than half the attempts found the site unavailable the
verdict is UNAVAILABLE, which fails the run too (probe again once the site is back).
"""

import time
from dataclasses import dataclass
from typing import Literal

from ingest_platform.bigtop.challenge import RefusalKind, classify
from ingest_platform.bigtop.collector import (
    CollectOptions,
    calendar_request,
)
from ingest_platform.resources.browser import BrowserError, BrowserResource

Verdict = Literal["PASS", "BORDERLINE", "FAIL", "UNAVAILABLE"]

# Chromium's words for "nothing listens there": the site is down, not the browser refused.
UNREACHABLE_ERRORS = ("net::ERR_CONNECTION_REFUSED",)


@dataclass(frozen=True)
class ProbeAttempt:
    number: int
    is_challenge: bool  # the seed's IS_CHALLENGE: the venue page was a challenge
    graphql_status: int | None
    title: str
    final_url: str
    elapsed_s: float
    error: str | None = None
    # what refused the attempt, page or GraphQL: Cloudflare's challenge or the site being unavailable
    refused: RefusalKind | None = None
    refusal_reason: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.refused is None and not self.is_challenge and self.graphql_status == 200

    @property
    def site_unavailable(self) -> bool:
        return self.refused == "unavailable"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    passed: int
    counted: int  # attempts that reached the site: all but the outages
    unavailable: int

    def summary(self) -> str:
        attempts = self.counted + self.unavailable
        outages = f", site unavailable in {self.unavailable}/{attempts}" if self.unavailable else ""
        return f"{self.passed}/{self.counted} passed{outages}"


def verdict(passed: int, attempts: int) -> Verdict:
    """PASS from 80 % of attempts, BORDERLINE from 40 %, else FAIL (for 5 attempts: 4-5, 2-3, 0-1)."""
    if attempts < 1 or not 0 <= passed <= attempts:
        raise ValueError(f"{passed} passed out of {attempts} attempts")
    if passed * 5 >= attempts * 4:
        return "PASS"
    if passed * 5 >= attempts * 2:
        return "BORDERLINE"
    return "FAIL"


def judge(attempts: list[ProbeAttempt]) -> Judgement:
    """The seed's verdict over the attempts that reached the site; UNAVAILABLE when most of them did not."""
    if not attempts:
        raise ValueError("no attempts to judge")
    unavailable = sum(attempt.site_unavailable for attempt in attempts)
    counted = len(attempts) - unavailable
    passed = sum(attempt.passed for attempt in attempts)
    if counted * 2 < len(attempts):
        return Judgement("UNAVAILABLE", passed, counted, unavailable)
    return Judgement(verdict(passed, counted), passed, counted, unavailable)


def probe_once(*, browser: BrowserResource, options: CollectOptions, number: int) -> ProbeAttempt:
    """One attempt; a browser failure (timeout, refused connection) is a failed attempt, not a crash."""
    started = time.monotonic()
    try:
        with browser.session() as session:
            visit = session.visit(options.page_url, settle_s=options.settle_s)
            page = classify(status=visit.status, headers=visit.headers, html=visit.html, title=visit.title)
            graphql = session.fetch(calendar_request(options))
    except BrowserError as error:
        unreachable = any(marker in str(error) for marker in UNREACHABLE_ERRORS)
        return ProbeAttempt(
            number,
            False,
            None,
            "",
            "",
            time.monotonic() - started,
            error=str(error),
            refused="unavailable" if unreachable else None,
            refusal_reason="connection refused" if unreachable else None,
        )
    answer = None
    if graphql.error is None and graphql.status != 200:
        is_json = "json" in graphql.headers.get("content-type", "")
        answer = classify(status=graphql.status, headers=graphql.headers, html="" if is_json else graphql.body)
    # A challenge anywhere outweighs an outage elsewhere: the browser was refused.
    refusals = [refusal for refusal in (page, answer) if refusal is not None]
    refusal = next((r for r in refusals if r.kind == "challenge"), refusals[0] if refusals else None)
    return ProbeAttempt(
        number=number,
        is_challenge=page is not None and page.kind == "challenge",
        graphql_status=graphql.status,
        title=visit.title,
        final_url=visit.url,
        elapsed_s=time.monotonic() - started,
        error=graphql.error,
        refused=refusal.kind if refusal is not None else None,
        refusal_reason=refusal.reason if refusal is not None else None,
    )


def markdown_table(attempts: list[ProbeAttempt]) -> str:
    lines = [
        "| # | IS_CHALLENGE | REFUSED | GRAPHQL_STATUS | title | final URL | elapsed (s) | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for attempt in attempts:
        lines.append(
            f"| {attempt.number} | {attempt.is_challenge} | {attempt.refused or '-'} | {attempt.graphql_status or '-'} "
            f"| {_cell(attempt.title)} | {_cell(attempt.final_url)} | {attempt.elapsed_s:.2f} "
            f"| {_cell(_result(attempt))} |"
        )
    return "\n".join(lines)


def _result(attempt: ProbeAttempt) -> str:
    if attempt.passed:
        return "pass"
    if attempt.site_unavailable:
        return f"not counted: site unavailable ({attempt.refusal_reason})"
    if attempt.error:
        return f"fail: {attempt.error}"
    if attempt.refused == "challenge":
        return f"fail: challenge ({attempt.refusal_reason})"
    return "fail"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]
