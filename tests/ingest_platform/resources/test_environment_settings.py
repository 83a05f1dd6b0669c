"""Optional settings named by variable: read when a run starts, and reported before a launch when unset."""

import dagster as dg
import pytest

from ingest_platform.resources import missing_settings
from ingest_platform.resources.rtarf import RtarfSettingsResource
from ingest_platform.resources.vivenu import VivenuWebhooksResource

SEED_PRODUCTION = "https://vivenu-filter.high-impact-athletes.workers.dev/ticket-created"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("http://127.0.0.1:8123/hook", "http://127.0.0.1:8123/hook", id="set"),
        pytest.param("   ", SEED_PRODUCTION, id="blank-is-unset"),
        pytest.param(None, SEED_PRODUCTION, id="unset"),
    ],
)
def test_a_value_is_the_one_set_when_the_run_started(
    value: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv("VIVENU_WEBHOOK_PRODUCTION_URL", raising=False)
    else:
        monkeypatch.setenv("VIVENU_WEBHOOK_PRODUCTION_URL", value)
    with dg.build_resources({"webhooks": VivenuWebhooksResource()}) as started:
        monkeypatch.setenv("VIVENU_WEBHOOK_PRODUCTION_URL", "http://127.0.0.1:9/changed-during-the-run")
        assert started.webhooks.endpoint(mode="prod") == expected


def test_missing_settings_of_the_definitions_name_each_unset_variable_by_resource(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ingest_platform.definitions import defs

    for name in ("DEV_API", "ITALY_API", "DACH_API", "RTARF_NOTIFY_WEBHOOK_SECRET", "ELASTICSEARCH_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PROD_API", "prod-key")
    monkeypatch.setenv("RTARF_NOTIFY_WEBHOOK_URL", "http://127.0.0.1:9/notify")

    missing = missing_settings(defs.resources)

    assert {key: sorted(names) for key, names in missing.items()} == {
        "elasticsearch": ["ELASTICSEARCH_URL"],
        "rtarf_settings": ["RTARF_NOTIFY_WEBHOOK_SECRET"],
        "vivenu": ["DACH_API", "DEV_API", "ITALY_API"],
    }


def test_a_renamed_variable_is_the_one_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPS_RTARF_HOOK", raising=False)
    monkeypatch.setenv("RTARF_NOTIFY_WEBHOOK_SECRET", "secret")
    settings = RtarfSettingsResource(notify_url_env="OPS_RTARF_HOOK")

    assert list(missing_settings({"rtarf_settings": settings})["rtarf_settings"]) == ["OPS_RTARF_HOOK"]
