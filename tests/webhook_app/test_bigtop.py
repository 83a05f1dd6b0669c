import json

import pytest

from tests.webhook_app.conftest import BIGTOP_TOKEN, landed_files

URL = "/api/ingest/bigtop/events"
AUTH = {"Authorization": f"Bearer {BIGTOP_TOKEN}"}


def event(**changes) -> dict:
    return {"external_id": "uid-1@bigtop", "title": "Trivia", "start_utc": "2026-03-05T23:00:00Z", **changes}


def batch(**changes) -> dict:
    return {"source_id": 5, "run_id": "local-run-1", "sent_at": "2026-03-01T12:00:00-05:00", "events": [event()]} | (
        changes
    )


def test_accepts_a_batch_and_lands_it_durably(client, landing_dir) -> None:
    body = batch(events=[event(external_id=f"uid-{i}", categories=["music"]) for i in range(500)])
    response = client.post(URL, json=body, headers=AUTH)
    assert response.status_code == 202
    assert response.json["accepted"] == 500
    (landed,) = landed_files(landing_dir)
    assert landed.parent.name == "bigtop_events"
    assert landed.name.endswith(f"-{response.json['request_id']}.json")
    document = json.loads(landed.read_text())
    assert document["stream"] == "bigtop_events"
    assert document["request_id"] == response.json["request_id"]
    assert document["payload"]["events"][0]["start_utc"] == "2026-03-05T23:00:00Z"
    assert document["payload"]["source_id"] == 5


def test_source_id_may_be_left_out(client, landing_dir) -> None:
    body = batch()
    del body["source_id"]
    assert client.post(URL, json=body, headers=AUTH).status_code == 202
    assert len(landed_files(landing_dir)) == 1


def test_the_landed_payload_is_the_body_exactly_as_sent(client, landing_dir) -> None:
    # Padded id and title and pretty-printed JSON: the raw layer keeps the client's bytes; the loader normalises.
    sent = json.dumps(batch(events=[event(external_id="  uid-1  ", title=" Trivia ")]), indent=2).encode()
    response = client.post(URL, data=sent, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 202
    (landed,) = landed_files(landing_dir)
    assert landed.read_bytes().endswith(b'"payload":' + sent + b"}")
    assert json.loads(landed.read_bytes())["payload"] == json.loads(sent)


def test_names_sort_in_arrival_order(client, landing_dir) -> None:
    ids = [client.post(URL, json=batch(run_id=f"r{i}"), headers=AUTH).json["request_id"] for i in range(5)]
    assert [path.name.split("-", 1)[1].removesuffix(".json") for path in landed_files(landing_dir)] == ids


@pytest.mark.parametrize(
    ("token", "accepted"),
    [
        pytest.param("old-token", True, id="old-token-during-rotation"),
        pytest.param("new-token", True, id="new-token-during-rotation"),
        pytest.param("new-token-but-longer", False, id="prefix-is-not-enough"),
        pytest.param("", False, id="empty-token"),
    ],
)
def test_any_of_several_tokens_is_valid(app, landing_dir, token: str, accepted: bool) -> None:
    app.config["BIGTOP_INGEST_TOKEN"] = "old-token, new-token"
    response = app.test_client().post(URL, json=batch(), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == (202 if accepted else 401)
    assert len(landed_files(landing_dir)) == (1 if accepted else 0)


def field_names(response) -> list[str]:
    return [problem["field"] for problem in response.json["fields"]]


@pytest.mark.parametrize(
    ("request_kwargs", "status", "error", "fields"),
    [
        pytest.param({"json": batch(), "headers": {}}, 401, "unauthorized", [], id="no-token"),
        pytest.param(
            {"json": batch(), "headers": {"Authorization": "Basic " + BIGTOP_TOKEN}},
            401,
            "unauthorized",
            [],
            id="basic",
        ),
        pytest.param(
            {"json": batch(), "headers": {"Authorization": "Bearer wrong"}}, 401, "unauthorized", [], id="bad-token"
        ),
        pytest.param(
            {"data": "{", "content_type": "application/json", "headers": AUTH}, 400, "malformed_json", [], id="bad-json"
        ),
        pytest.param(
            {"data": json.dumps(batch()), "content_type": "text/plain", "headers": AUTH},
            415,
            "unsupported_media_type",
            [],
            id="text-plain",
        ),
        pytest.param({"json": batch(events=[]), "headers": AUTH}, 422, "validation_failed", ["events"], id="no-events"),
        pytest.param(
            {"json": batch(events=[event()] * 501), "headers": AUTH},
            422,
            "validation_failed",
            ["events"],
            id="501-events",
        ),
        pytest.param(
            {"json": batch(source_id=6), "headers": AUTH}, 422, "validation_failed", ["source_id"], id="other-source"
        ),
        pytest.param(
            {"json": batch(source_id="5"), "headers": AUTH}, 422, "validation_failed", ["source_id"], id="string-source"
        ),
        pytest.param(
            {"json": batch(run_id=" "), "headers": AUTH}, 422, "validation_failed", ["run_id"], id="blank-run"
        ),
        pytest.param(
            {"json": batch(sent_at="2026-03-01T12:00:00"), "headers": AUTH},
            422,
            "validation_failed",
            ["sent_at"],
            id="naive-sent-at",
        ),
        pytest.param(
            {"json": batch(events=[event(start_utc="2026-03-05 23:00")]), "headers": AUTH},
            422,
            "validation_failed",
            ["events.0.start_utc"],
            id="naive-start",
        ),
        pytest.param(
            {"json": batch(events=[event(), event(title=None)]), "headers": AUTH},
            422,
            "validation_failed",
            ["events.1.title"],
            id="null-title",
        ),
        pytest.param(
            {"json": batch(events=[event(end_utc="2026-03-05T22:00:00Z")]), "headers": AUTH},
            422,
            "validation_failed",
            ["events.0.end_utc"],
            id="ends-before-start",
        ),
        pytest.param(
            {"json": batch(events=[event(external_url="javascript:alert(1)")]), "headers": AUTH},
            422,
            "validation_failed",
            ["events.0.external_url"],
            id="not-http-url",
        ),
        pytest.param(
            {"json": batch(events=[event(categories="music")]), "headers": AUTH},
            422,
            "validation_failed",
            ["events.0.categories"],
            id="categories-not-list",
        ),
        pytest.param(
            {"json": batch(events=[event(venue="Taproom")]), "headers": AUTH},
            422,
            "validation_failed",
            ["events.0.venue"],
            id="unknown-field",
        ),
        pytest.param({"json": [batch()], "headers": AUTH}, 422, "validation_failed", ["(body)"], id="array-body"),
    ],
)
def test_rejects_bad_requests_and_lands_nothing(
    client, landing_dir, request_kwargs: dict, status: int, error: str, fields: list[str]
) -> None:
    response = client.post(URL, **request_kwargs)
    assert response.status_code == status
    assert response.json["error"] == error
    assert response.json["detail"]
    assert field_names(response) == fields
    assert landed_files(landing_dir) == []


def test_every_event_ending_before_it_starts_is_named(client, landing_dir) -> None:
    early = "2026-03-05T22:00:00Z"
    events = [event(external_id="a", end_utc=early), event(external_id="b"), event(external_id="c", end_utc=early)]
    response = client.post(URL, json=batch(events=events), headers=AUTH)
    assert response.status_code == 422
    assert response.json["fields"] == [
        {"field": f"events.{position}.end_utc", "problem": "end_utc is before start_utc"} for position in (0, 2)
    ]
    assert landed_files(landing_dir) == []


def test_unauthorized_asks_for_a_bearer_token(client) -> None:
    assert client.post(URL, json=batch()).headers["WWW-Authenticate"].startswith("Bearer")


def test_body_over_the_limit_is_413(app, landing_dir) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 2_000
    body = batch(events=[event(external_id=f"uid-{i}", description="x" * 100) for i in range(50)])
    response = app.test_client().post(URL, json=body, headers=AUTH)
    assert response.status_code == 413
    assert response.json["error"] == "request_entity_too_large"
    assert landed_files(landing_dir) == []


def test_default_body_limit_is_2_mb(app) -> None:
    assert app.config["MAX_CONTENT_LENGTH"] == 2 * 1024 * 1024


def test_unset_token_disables_the_endpoint(app, landing_dir) -> None:
    app.config["BIGTOP_INGEST_TOKEN"] = None
    response = app.test_client().post(URL, json=batch(), headers={"Authorization": "Bearer anything"})
    assert response.status_code == 503
    assert response.json["error"] == "ingest_disabled"
    assert "BIGTOP_INGEST_TOKEN" in response.json["detail"]
    assert landed_files(landing_dir) == []


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_other_methods_are_405_json(client, method: str) -> None:
    response = getattr(client, method)(URL, headers=AUTH)
    assert response.status_code == 405
    assert response.json["error"] == "method_not_allowed"


def test_unknown_route_is_404_json(client) -> None:
    response = client.get("/api/ingest/nope")
    assert (response.status_code, response.json["error"]) == (404, "not_found")


def test_token_never_appears_in_errors_or_logs(client, caplog) -> None:
    caplog.set_level("DEBUG")
    bad = client.post(URL, json=batch(sent_at="nope"), headers=AUTH)
    good = client.post(URL, json=batch(), headers=AUTH)
    assert (bad.status_code, good.status_code) == (422, 202)
    assert BIGTOP_TOKEN not in bad.get_data(as_text=True) + good.get_data(as_text=True) + caplog.text


def test_a_failed_write_answers_503_and_leaves_no_file(app, landing_dir) -> None:
    landing_dir.mkdir(parents=True)
    (landing_dir / "bigtop_events").write_text("a file where the stream folder should be")
    response = app.test_client().post(URL, json=batch(), headers=AUTH)
    assert response.status_code == 503
    assert response.json["error"] == "landing_unavailable"
    assert [path.name for path in landed_files(landing_dir)] == ["bigtop_events"]


def test_a_failed_rename_removes_the_temporary_file(app, landing_dir, monkeypatch) -> None:
    def disk_full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("webhook_app.landing.os.rename", disk_full)
    response = app.test_client().post(URL, json=batch(), headers=AUTH)
    assert (response.status_code, response.json["error"]) == (503, "landing_unavailable")
    assert landed_files(landing_dir) == []
