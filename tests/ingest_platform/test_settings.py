import pytest

from ingest_platform import settings


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        pytest.param("postgresql://u:p@db:5432/w", "postgresql+psycopg2://u:p@db:5432/w", id="bare-postgresql"),
        pytest.param("postgres://u@db/w", "postgresql+psycopg2://u@db/w", id="heroku-style"),
        pytest.param("postgresql+psycopg2://u@db/w", "postgresql+psycopg2://u@db/w", id="already-psycopg2"),
        pytest.param("sqlite:////tmp/w.sqlite", "sqlite:////tmp/w.sqlite", id="sqlite"),
    ],
)
def test_database_url_is_normalised_to_psycopg2(url: str, normalized: str) -> None:
    assert settings.normalize_database_url(url) == normalized


def test_embedded_defaults_live_in_the_data_dir(data_dir) -> None:
    assert settings.database_url() == f"sqlite:///{data_dir / 'warehouse.sqlite'}"
    assert settings.landing_dir() == data_dir / "landing"


def test_environment_overrides(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1/w")
    monkeypatch.setenv("LANDING_DIR", str(tmp_path / "elsewhere"))
    assert settings.database_url() == "postgresql+psycopg2://postgres@127.0.0.1/w"
    assert settings.landing_dir() == tmp_path / "elsewhere"
