"""GET /openapi.json: an OpenAPI 3.1 document built from the views' own models, and a schemathesis run on it."""

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.generation.modes import GenerationMode

from tests.webhook_app.intake_support import APP_TOKEN, landed_data, make_app
from webhook_app.app_events import EventBatch
from webhook_app.crawl import CrawlBatch
from webhook_app.rules import RuleBatch

EXAMPLES_PER_OPERATION = 20


def test_document_covers_every_route_from_its_models(data_dir: Path) -> None:
    document = make_app(data_dir / "landing").test_client().get("/openapi.json").get_json()

    assert document["openapi"] == "3.1.0"
    assert {(path, method) for path, item in document["paths"].items() for method in item} == {
        ("/health", "get"),
        ("/api/ingest/bigtop/events", "post"),
        ("/ingest/events", "post"),
        ("/ingest/crawl", "post"),
        ("/ingest/rules", "post"),
        ("/cron/rollup", "post"),
        ("/cron/rebuild-search", "post"),
        ("/ingest/stripe/webhook", "post"),
        ("/scheduler/status", "get"),
        ("/scheduler/sync-now", "post"),
        ("/scheduler/start", "post"),
        ("/scheduler/stop", "post"),
        ("/ingest/receipts/{request_id}", "get"),
    }
    schemas = document["components"]["schemas"]
    events = document["paths"]["/ingest/events"]["post"]
    assert events["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/EventBatch"}
    assert schemas["AppEvent"]["properties"]["type"]["enum"] == ["VIEW", "COPY", "SAVE", "FORK", "VOTE"]
    assert (
        schemas["EventBatch"]["properties"]["events"]["maxItems"]
        == EventBatch.model_json_schema()["properties"]["events"]["maxItems"]
    )
    assert set(schemas["CrawlItem"]["required"]) == set(
        CrawlBatch.model_json_schema()["$defs"]["CrawlItem"]["required"]
    )
    assert (
        set(schemas["Rule"]["required"])
        == set(RuleBatch.model_json_schema()["$defs"]["Rule"]["required"])
        == {
            "ruleId",
            "authorId",
            "title",
            "updatedAt",
        }
    )
    assert schemas["Rule"]["properties"]["updatedAt"]["format"] == "date-time"
    assert document["paths"]["/ingest/rules"]["post"]["security"] == [{"appToken": []}]
    assert events["security"] == [{"appToken": []}]
    assert document["components"]["securitySchemes"]["appToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-app-token",
    }
    assert set(events["responses"]) == {"202", "400", "401", "403", "413", "415", "422", "429", "503"}
    assert events["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    bigtop = document["paths"]["/api/ingest/bigtop/events"]["post"]
    assert bigtop["security"] == [{"bigtopBearer": []}]
    assert "security" not in document["paths"]["/health"]["get"]
    receipts = document["paths"]["/ingest/receipts/{request_id}"]["get"]
    assert receipts["security"] == [{"bigtopBearer": []}, {"appToken": []}, {"schedulerBearer": []}, {"cronSecret": []}]
    assert set(receipts["responses"]) == {"200", "401", "404", "503"}
    assert schemas["Receipt"]["properties"]["state"]["enum"] == ["landed", "loaded", "quarantined"]


def _operations(app):
    """The intake operations. The /scheduler and /cron ones proxy to Dagster, whose absence is a documented 503;
    they are tested against a real webserver in test_scheduler.py and test_cron.py."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    return [operation for operation in operations if not operation.path.startswith(("/scheduler/", "/cron/"))]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_schemathesis_finds_no_server_error(data_dir: Path, mode: GenerationMode) -> None:
    landing_dir = data_dir / "landing"
    app = make_app(
        landing_dir,
        BIGTOP_INGEST_TOKEN="bigtop-token",
        APP_EVENTS_RATE_LIMIT="100000 per minute",
        APP_CRAWL_RATE_LIMIT="100000 per minute",
        APP_RULES_RATE_LIMIT="100000 per minute",
    )
    credentials = {"x-app-token": APP_TOKEN, "Authorization": "Bearer bigtop-token"}
    operations = _operations(app)
    assert len(operations) == 7

    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not operation.body:
            continue  # nothing to get wrong in a body-less GET /health

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case) -> None:
            response = case.call(headers=credentials)
            assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text}"
            if response.status_code >= 400:
                assert set(response.json()) == {"error", "detail", "fields"}

        no_server_error()

    if mode is GenerationMode.POSITIVE:
        # Valid bodies with the right credentials were accepted and landed (Stripe's need a signature).
        counts = landed_data(landing_dir)
        assert counts["app_events"] > 0
        assert counts["crawl_items"] > 0
        assert counts["app_rules"] > 0
