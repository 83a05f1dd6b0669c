"""The RTARF scheduler API's refusals: authentication, bad input, Dagster unreachable. No Dagster needed."""

import pytest

from bench.common import free_port
from webhook_app import create_app

TOKEN = "rtarf-api-token-for-tests-0123456789"


@pytest.fixture
def client():
    closed_port = free_port()
    app = create_app(
        {"TESTING": True, "RTARF_API_TOKEN": TOKEN, "DAGSTER_GRAPHQL_URL": f"http://127.0.0.1:{closed_port}/graphql"}
    )
    return app.test_client()


ROUTES = [
    ("GET", "/scheduler/status"),
    ("POST", "/scheduler/sync-now"),
    ("POST", "/scheduler/start"),
    ("POST", "/scheduler/stop"),
]


@pytest.mark.parametrize(("method", "path"), [pytest.param(*route, id=route[1]) for route in ROUTES])
@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        pytest.param({}, "Missing bearer token", id="no-token"),
        pytest.param({"Authorization": "Bearer wrong"}, "not valid", id="wrong-token"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, "Missing bearer token", id="wrong-scheme"),
    ],
)
def test_every_route_needs_the_token(client, method: str, path: str, headers: dict, detail: str):
    response = client.open(path, method=method, headers=headers)

    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"
    assert detail in response.get_json()["detail"]


def test_an_unset_token_disables_the_api(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RTARF_API_TOKEN", raising=False)
    client = create_app({"TESTING": True}).test_client()

    response = client.get("/scheduler/status", headers={"Authorization": "Bearer anything"})

    assert response.status_code == 503
    assert response.get_json()["error"] == "scheduler_api_disabled"
    assert "RTARF_API_TOKEN is not set" in response.get_json()["detail"]


def test_the_token_and_dagster_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RTARF_API_TOKEN", "from-env-token,rotated-token")
    monkeypatch.setenv("DAGSTER_GRAPHQL_URL", f"http://127.0.0.1:{free_port()}")
    client = create_app({"TESTING": True}).test_client()

    response = client.get("/scheduler/status", headers={"Authorization": "Bearer rotated-token"})

    assert response.status_code == 503
    assert response.get_json()["error"] == "dagster_unavailable"


@pytest.mark.parametrize(("method", "path"), [pytest.param(*route, id=route[1]) for route in ROUTES])
def test_dagster_down_is_a_503_with_a_clear_message(client, method: str, path: str):
    response = client.open(path, method=method, headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "dagster_unavailable"
    assert "Dagster is not reachable at http://127.0.0.1:" in body["detail"]
    assert TOKEN not in response.get_data(as_text=True)


@pytest.mark.parametrize("value", [pytest.param("maybe", id="word"), pytest.param("2", id="number")])
def test_an_invalid_wait_flag_is_a_422_naming_the_field(client, value: str):
    response = client.post(f"/scheduler/sync-now?wait={value}", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 422
    assert response.get_json()["fields"] == [{"field": "wait", "problem": f"must be true or false, got {value!r}"}]
