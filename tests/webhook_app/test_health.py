from datetime import datetime


def test_health_is_open_and_reports_time(client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    assert datetime.fromisoformat(response.json["time"]).tzinfo is not None


def test_webhook_app_starts_without_importing_the_platform_or_dagster() -> None:
    """The app knows nothing of Dagster; clients it needs on some routes only (Dagster's GraphQL, Stripe, Redis)
    load when first used, so every gunicorn worker starts fast."""
    import subprocess
    import sys

    code = (
        "import sys, webhook_app; webhook_app.create_app(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('ingest_platform', 'dagster', 'dagster_graphql', 'gql', 'requests', 'stripe', 'redis')))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
