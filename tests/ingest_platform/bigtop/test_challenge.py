import pytest

from ingest_platform.bigtop.challenge import Refusal, challenge_reason, classify, from_cloudflare, title_of
from tests.fakes.bigtop_site import CHALLENGE_HTML, VENUE_HTML

ORDINARY = {"content-type": "text/html"}
CLOUDFLARE = {"content-type": "text/html", "server": "cloudflare", "cf-ray": "8f1b2c3d4e5f6a7b-MIA"}
RAY_ONLY = {"content-type": "text/plain", "CF-RAY": "8f1b2c3d4e5f6a7b-MIA"}
SERVER_ONLY = {"content-type": "text/plain", "Server": "cloudflare"}


@pytest.mark.parametrize(
    ("status", "headers", "html", "expected"),
    [
        pytest.param(200, {"cf-mitigated": "challenge"}, "<html></html>", "cf-mitigated: challenge", id="cf-mitigated"),
        pytest.param(200, {"CF-Mitigated": "Challenge"}, "", "cf-mitigated: challenge", id="cf-mitigated-any-case"),
        pytest.param(403, CLOUDFLARE, "<p>Forbidden</p>", "status 403 from Cloudflare", id="403-cloudflare"),
        pytest.param(403, RAY_ONLY, "", "status 403 from Cloudflare", id="403-cf-ray-only"),
        pytest.param(429, SERVER_ONLY, "error code: 1015", "status 429 from Cloudflare", id="429-cloudflare"),
        pytest.param(
            503,
            CLOUDFLARE,
            CHALLENGE_HTML,
            "title contains 'just a moment'",
            id="503-under-attack-interstitial",
        ),
        pytest.param(
            200, ORDINARY, "<title>Just a moment...</title>", "title contains 'just a moment'", id="title-jam"
        ),
        pytest.param(
            200,
            ORDINARY,
            "<title>Attention Required! | Cloudflare</title>",
            "title contains 'attention required'",
            id="title-attention",
        ),
        pytest.param(
            200,
            ORDINARY,
            '<script src="/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1"></script>',
            "HTML contains '/cdn-cgi/challenge-platform/'",
            id="challenge-platform-script",
        ),
        pytest.param(
            200, ORDINARY, '<div id="cf-challenge-running"></div>', "HTML contains 'cf-challenge'", id="cf-challenge"
        ),
        pytest.param(
            403, {"cf-mitigated": "challenge"}, CHALLENGE_HTML, "cf-mitigated: challenge", id="fake-site-challenge"
        ),
    ],
)
def test_challenges_are_recognised(status: int, headers: dict[str, str], html: str, expected: str) -> None:
    assert classify(status=status, headers=headers, html=html) == Refusal("challenge", expected)
    assert challenge_reason(status=status, headers=headers, html=html) == expected


@pytest.mark.parametrize(
    ("status", "headers", "html", "expected"),
    [
        pytest.param(
            503, ORDINARY, "Service Unavailable", "status 503 without a challenge: the site is unavailable", id="503"
        ),
        pytest.param(
            503,
            CLOUDFLARE,
            "<h1>503 Service Unavailable</h1>",
            "status 503 through Cloudflare without a challenge: the site is unavailable",
            id="503-origin-behind-cloudflare",
        ),
        pytest.param(
            500, ORDINARY, "Internal Server Error", "status 500 without a challenge: the site is unavailable", id="500"
        ),
        pytest.param(502, ORDINARY, "Bad Gateway", "status 502 without a challenge: the site is unavailable", id="502"),
        pytest.param(
            522,
            CLOUDFLARE,
            "<title>example.com | 522: Connection timed out</title>",
            "status 522 through Cloudflare without a challenge: the site is unavailable",
            id="522-cloudflare-origin-timeout",
        ),
        pytest.param(
            429,
            {"retry-after": "30"},
            "Too many requests",
            "status 429 without a challenge: the site is unavailable",
            id="429-from-the-origin",
        ),
    ],
)
def test_an_outage_is_no_challenge(status: int, headers: dict[str, str], html: str, expected: str) -> None:
    assert classify(status=status, headers=headers, html=html) == Refusal("unavailable", expected)
    assert challenge_reason(status=status, headers=headers, html=html) is None


@pytest.mark.parametrize(
    ("status", "headers", "html"),
    [
        pytest.param(200, SERVER_ONLY, VENUE_HTML, id="cdn-script-and-footer-mention-cloudflare"),
        pytest.param(
            200,
            SERVER_ONLY,
            "<title>Cloudflare Workers night</title><p>Served by cloudflare</p>",
            id="cloudflare-in-title",
        ),
        pytest.param(
            200, SERVER_ONLY, '<a href="https://www.cloudflare.com/">cloudflare.com</a>', id="cloudflare-link"
        ),
        pytest.param(404, CLOUDFLARE, "<title>Not found</title>", id="404-through-cloudflare"),
        pytest.param(403, ORDINARY, "<p>Forbidden</p>", id="403-without-cloudflare"),
        pytest.param(200, SERVER_ONLY, "", id="empty"),
        pytest.param(None, {}, "", id="no-status"),
    ],
)
def test_ordinary_answers_are_neither(status: int | None, headers: dict[str, str], html: str) -> None:
    assert classify(status=status, headers=headers, html=html) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Server": "cloudflare"}, True, id="server"),
        pytest.param({"cf-ray": "8f1b-MIA"}, True, id="cf-ray"),
        pytest.param({"server": "nginx"}, False, id="nginx"),
        pytest.param({"cf-ray": " "}, False, id="blank-ray"),
        pytest.param({}, False, id="none"),
    ],
)
def test_cloudflare_is_recognised_by_its_headers(headers: dict[str, str], expected: bool) -> None:
    assert from_cloudflare(headers) is expected


def test_title_is_read_from_html_entities_and_whitespace() -> None:
    assert title_of("<TITLE>\n Restaurant &amp; Brewery </TITLE>") == "Restaurant & Brewery"
