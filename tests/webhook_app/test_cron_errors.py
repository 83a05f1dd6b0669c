"""The cron routes' refusals: the secret, bad bodies (table-driven 422s), Dagster unreachable, no rate limit.

No Dagster is needed: validation answers before Dagster is asked, and the URL points at a closed port.
"""

import pytest

from bench.common import free_port
from webhook_app import create_app

SECRET = "cron-secret-for-tests-0123456789"
HEADERS = {"x-cron-secret": SECRET}
ROUTES = ["/cron/rollup", "/cron/rebuild-search"]


def make_client(**config):
    closed_port = free_port()
    return create_app(
        {
            "TESTING": True,
            "CRON_SECRET": SECRET,
            "DAGSTER_GRAPHQL_URL": f"http://127.0.0.1:{closed_port}/graphql",
            **config,
        }
    ).test_client()


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize(
    ("headers", "config", "status", "error"),
    [
        pytest.param({}, {}, 401, "unauthorized", id="no-secret-header"),
        pytest.param({"x-cron-secret": "wrong"}, {}, 401, "unauthorized", id="wrong-secret"),
        pytest.param({"Authorization": f"Bearer {SECRET}"}, {}, 401, "unauthorized", id="secret-as-bearer"),
        pytest.param(HEADERS, {"CRON_SECRET": None}, 503, "cron_disabled", id="secret-unset"),
        pytest.param(HEADERS, {"CRON_SECRET": " , "}, 503, "cron_disabled", id="secret-blank"),
    ],
)
def test_every_route_needs_the_secret(path: str, headers: dict, config: dict, status: int, error: str) -> None:
    response = make_client(**config).post(path, json={}, headers=headers)

    assert response.status_code == status
    assert response.get_json()["error"] == error
    assert SECRET not in response.get_data(as_text=True)


BAD_BODIES = {
    "days-zero": ({"daysToProcess": 0}, "daysToProcess"),
    "days-31": ({"daysToProcess": 31}, "daysToProcess"),
    "days-negative": ({"daysToProcess": -3}, "daysToProcess"),
    "days-as-string": ({"daysToProcess": "7"}, "daysToProcess"),
    "days-fractional": ({"daysToProcess": 2.5}, "daysToProcess"),
    "days-null": ({"daysToProcess": None}, "daysToProcess"),
    "date-not-a-day": ({"date": "March 1st"}, "date"),
    "date-impossible": ({"date": "2026-02-30"}, "date"),
    "date-slashes": ({"date": "2026/03/01"}, "date"),
    "date-timestamp-without-zone": ({"date": "2026-03-01T10:00:00"}, "date"),
    "date-as-number": ({"date": 20260301}, "date"),
    "date-in-the-future": ({"date": "2999-01-01"}, "date"),
    "dry-run-as-string": ({"dryRun": "yes"}, "dryRun"),
    "unknown-field": ({"days": 7}, "days"),
}


@pytest.mark.parametrize(("body", "field"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_rollup_bodies_are_422_naming_the_field(body: dict, field: str) -> None:
    response = make_client().post("/cron/rollup", json=body, headers=HEADERS)

    assert response.status_code == 422, response.get_json()
    payload = response.get_json()
    assert payload["error"] == "validation_failed"
    assert field in [problem["field"] for problem in payload["fields"]], payload


@pytest.mark.parametrize(
    ("data", "headers", "status", "error"),
    [
        pytest.param("{", {"Content-Type": "application/json"}, 400, "malformed_json", id="malformed-json"),
        pytest.param("[]", {"Content-Type": "application/json"}, 422, "validation_failed", id="array-body"),
        pytest.param("days=3", {"Content-Type": "text/plain"}, 415, "unsupported_media_type", id="not-json"),
    ],
)
def test_unreadable_rollup_bodies(data: str, headers: dict, status: int, error: str) -> None:
    response = make_client().post("/cron/rollup", data=data, headers={**HEADERS, **headers})

    assert (response.status_code, response.get_json()["error"]) == (status, error)


@pytest.mark.parametrize("path", ROUTES)
def test_bad_wait_flag_is_422(path: str) -> None:
    response = make_client().post(f"{path}?wait=maybe", json={}, headers=HEADERS)

    assert response.status_code == 422
    assert response.get_json()["fields"][0]["field"] == "wait"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/cron/rollup", {}, id="rollup"),
        pytest.param("/cron/rollup", None, id="rollup-without-body"),
        pytest.param("/cron/rollup", {"dryRun": True}, id="rollup-dry-run"),
        pytest.param("/cron/rebuild-search", None, id="rebuild-search"),
    ],
)
def test_dagster_unreachable_is_503_and_never_rate_limited(path: str, body) -> None:
    client = make_client()
    statuses = {client.post(path, json=body, headers=HEADERS).status_code for _ in range(70)}
    response = client.post(path, json=body, headers=HEADERS)

    assert statuses == {503}  # 70 calls in a row: no 429 (the seed's cron routes are not rate limited)
    assert response.get_json()["error"] == "dagster_unavailable"
    assert "Retry later" in response.get_json()["detail"]
