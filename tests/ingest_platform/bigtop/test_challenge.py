import pytest

from ingest_platform.bigtop.challenge import ChallengeError, challenge_reason, raise_if_challenge, title_of
from tests.fakes.bigtop_site import CHALLENGE_HTML, VENUE_HTML

ORDINARY = {"content-type": "text/html"}


@pytest.mark.parametrize(
    ("status", "headers", "html", "expected"),
    [
        pytest.param(200, {"cf-mitigated": "challenge"}, "<html></html>", "cf-mitigated: challenge", id="cf-mitigated"),
        pytest.param(200, {"CF-Mitigated": "Challenge"}, "", "cf-mitigated: challenge", id="cf-mitigated-any-case"),
        pytest.param(403, ORDINARY, "<p>Forbidden</p>", "status 403", id="403"),
        pytest.param(429, ORDINARY, "", "status 429", id="429"),
        pytest.param(503, ORDINARY, "Service Unavailable", "status 503", id="503"),
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
    assert challenge_reason(status=status, headers=headers, html=html) == expected


@pytest.mark.parametrize(
    ("status", "html"),
    [
        pytest.param(200, VENUE_HTML, id="cdn-script-and-footer-mention-cloudflare"),
        pytest.param(
            200, "<title>Cloudflare Workers night</title><p>Served by cloudflare</p>", id="cloudflare-in-title"
        ),
        pytest.param(200, '<a href="https://www.cloudflare.com/">cloudflare.com</a>', id="cloudflare-link"),
        pytest.param(404, "<title>Not found</title>", id="plain-404"),
        pytest.param(200, "", id="empty"),
    ],
)
def test_ordinary_pages_are_not_challenges(status: int, html: str) -> None:
    assert challenge_reason(status=status, headers={"server": "cloudflare"}, html=html) is None


def test_the_error_names_where_and_the_status() -> None:
    with pytest.raises(ChallengeError) as raised:
        raise_if_challenge(where="graphql", url="https://x/graphql", status=403, headers={}, html="")
    assert (raised.value.where, raised.value.status) == ("graphql", 403)
    assert "graphql" in str(raised.value)
    assert "403" in str(raised.value)


def test_title_is_read_from_html_entities_and_whitespace() -> None:
    assert title_of("<TITLE>\n Restaurant &amp; Brewery </TITLE>") == "Restaurant & Brewery"
