"""docker/ checked statically (no Docker engine runs here): the files agree with each other and with the code."""

import importlib
import re
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def grpc_target(service: dict) -> tuple[str, str]:
    command = service["command"]
    return command[command.index("-m") + 1], command[command.index("-a") + 1]


@pytest.mark.parametrize("service", ["core_code", "browser_code"])
def test_code_locations_load_real_definitions(service: str) -> None:
    module, attribute = grpc_target(SERVICES[service])
    assert isinstance(getattr(importlib.import_module(module), attribute), dg.Definitions)


def test_workspace_names_every_code_location_service() -> None:
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())
    hosts = {entry["grpc_server"]["host"] for entry in workspace["load_from"]}
    assert hosts == {"core_code", "browser_code"}
    assert all(entry["grpc_server"]["port"] == 4000 for entry in workspace["load_from"])


def test_only_the_browser_image_carries_chromium() -> None:
    slim = (DOCKER / "Dockerfile").read_text()
    browser = (DOCKER / "Dockerfile.browser").read_text()
    assert "chromium" in browser
    assert "chromium" not in slim.lower()
    assert "playwright install" not in slim + browser, "browsers come from Debian, not Playwright's download"
    assert SERVICES["browser_code"]["build"]["dockerfile"] == "docker/Dockerfile.browser"
    assert SERVICES["browser_code"]["environment"]["DAGSTER_CURRENT_IMAGE"] == SERVICES["browser_code"]["image"]
    assert SERVICES["core_code"]["environment"]["DAGSTER_CURRENT_IMAGE"] == SERVICES["core_code"]["image"]


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.browser"])
def test_images_copy_files_that_exist_and_run_unprivileged(dockerfile: str) -> None:
    text = (DOCKER / dockerfile).read_text()
    for line in re.findall(r"^COPY (.+)$", text, flags=re.MULTILINE):
        *sources, _target = line.split()
        for source in sources:
            assert (REPO / source).exists(), f"{dockerfile} copies missing {source}"
    assert re.search(r"^USER (?!root)", text, flags=re.MULTILINE)


def test_image_instance_config_is_valid_dagster_config(tmp_path, monkeypatch) -> None:
    """The dagster.yaml the images assemble: the project's file + PostgreSQL storage + Docker run launcher."""
    parts = [REPO / "dagster.yaml", DOCKER / "dagster.storage-postgres.yaml", DOCKER / "dagster.run-launcher.yaml"]
    (tmp_path / "dagster.yaml").write_text("\n".join(part.read_text() for part in parts))
    for name in ("HOST", "PORT", "USER", "PASSWORD", "DB"):
        monkeypatch.setenv(f"DAGSTER_POSTGRES_{name}", "5432" if name == "PORT" else "x")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert config["run_launcher"]["class"] == "DockerRunLauncher"
    assert config["concurrency"]["pools"]["default_limit"] == 1


def test_services_share_one_network_and_the_data_volume() -> None:
    for name, service in SERVICES.items():
        assert service["networks"] == ["ingest_platform"], name
    for name in ("webhook", "core_code", "browser_code"):
        assert "ingest_platform_data:/data" in SERVICES[name]["volumes"], name
    launcher = yaml.safe_load((DOCKER / "dagster.run-launcher.yaml").read_text())["run_launcher"]["config"]
    assert launcher["network"] == COMPOSE["networks"]["ingest_platform"]["name"]
    assert "ingest_platform_data:/data" in launcher["container_kwargs"]["volumes"]


def test_webhook_service_uses_the_gunicorn_config() -> None:
    command = SERVICES["webhook"]["command"]
    assert command[command.index("--config") + 1] == "webhook_app/gunicorn.conf.py"
    assert (REPO / "webhook_app" / "gunicorn.conf.py").exists()


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.browser"])
def test_images_copy_every_package_the_project_installs(dockerfile: str) -> None:
    import tomllib

    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {line.split()[0] for line in re.findall(r"^COPY (.+)$", (DOCKER / dockerfile).read_text(), re.MULTILINE)}
    assert {pattern.removesuffix("*") for pattern in include} <= copied


def test_the_migrate_service_runs_the_deploy_step_before_any_dagster_service() -> None:
    assert SERVICES["migrate"]["command"] == ["python", "-m", "ingest_platform.locations"]
    assert SERVICES["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    for name in ("core_code", "browser_code", "webserver", "daemon"):
        assert SERVICES[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
