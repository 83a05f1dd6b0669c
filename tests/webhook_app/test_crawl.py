"""POST /ingest/crawl: what lands for the loader."""

from pathlib import Path

from tests.webhook_app.intake_support import app_headers, landed, make_app


def test_crawl_batch_lands(data_dir: Path) -> None:
    landing_dir = data_dir / "landing"
    body = {
        "sourceId": "partner_1",
        "items": [
            {"externalId": "a-1", "url": "https://partner.example/a-1", "title": " A rule ", "raw": {"stars": 3}},
            {"externalId": "a-2", "url": "HTTP://partner.example/a-2", "title": "B", "summary": "short"},
        ],
    }
    response = make_app(landing_dir).test_client().post("/ingest/crawl", json=body, headers=app_headers())

    assert response.status_code == 202
    assert response.get_json()["accepted"] == 2
    [document] = landed(landing_dir, "crawl_items")
    payload = document["payload"]
    assert payload["source_id"] == "partner_1"
    assert payload["items"] == [
        {
            "external_id": "a-1",
            "url": "https://partner.example/a-1",
            "title": "A rule",
            "summary": None,
            "raw": {"stars": 3},
        },
        {"external_id": "a-2", "url": "HTTP://partner.example/a-2", "title": "B", "summary": "short", "raw": None},
    ]
    assert payload["audit"]["details"] == {"source_id": "partner_1", "items": 2}
