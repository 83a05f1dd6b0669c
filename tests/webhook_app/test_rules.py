"""POST /ingest/rules: what lands for the loader."""

from pathlib import Path

from tests.webhook_app.intake_support import app_headers, landed, make_app


def test_rules_batch_lands_with_times_in_utc_and_optional_fields_null(data_dir: Path) -> None:
    landing_dir = data_dir / "landing"
    body = {
        "items": [
            {
                "ruleId": "rule_1",
                "authorId": "author_1",
                "title": " Window functions ",
                "summary": "Rank rows",
                "tags": ["sql", " postgres "],
                "model": "gpt-4o",
                "updatedAt": "2026-03-01T12:00:00+02:00",
            },
            {"ruleId": "rule_2", "authorId": "author_2", "title": "B", "updatedAt": "2026-03-01T10:00:00Z"},
        ]
    }
    response = make_app(landing_dir).test_client().post("/ingest/rules", json=body, headers=app_headers())

    assert response.status_code == 202, response.get_json()
    assert response.get_json()["accepted"] == 2
    [document] = landed(landing_dir, "app_rules")
    assert document["request_id"] == response.get_json()["request_id"]
    payload = document["payload"]
    assert payload["items"] == [
        {
            "rule_id": "rule_1",
            "author_id": "author_1",
            "title": "Window functions",
            "summary": "Rank rows",
            "tags": ["sql", "postgres"],
            "model": "gpt-4o",
            "updated_at": "2026-03-01T12:00:00+02:00",
        },
        {
            "rule_id": "rule_2",
            "author_id": "author_2",
            "title": "B",
            "summary": None,
            "tags": None,
            "model": None,
            "updated_at": "2026-03-01T10:00:00Z",
        },
    ]
    assert payload["audit"]["action"] == "ingest.rules"
    assert payload["audit"]["details"] == {"items": 2}
