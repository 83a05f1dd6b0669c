"""Where the platform keeps its state, resolved from the environment when asked (never at import time)."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The platform's data directory: `PLATFORM_DATA_DIR`, else `.data/` in the checkout."""
    return Path(os.environ.get("PLATFORM_DATA_DIR") or REPO_ROOT / ".data")


def landing_dir() -> Path:
    """The landing zone shared with the webhook app: `LANDING_DIR`, else `<data dir>/landing`."""
    return Path(os.environ.get("LANDING_DIR") or data_dir() / "landing")


def database_url() -> str:
    """The warehouse URL: `DATABASE_URL` (normalised to psycopg2), else a SQLite file in the data dir."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return normalize_database_url(url)
    return f"sqlite:///{data_dir() / 'warehouse.sqlite'}"


def normalize_database_url(url: str) -> str:
    """Point bare PostgreSQL URLs at psycopg2.

    SQLAlchemy 2.1 reads `postgresql://` as psycopg 3, which the platform does not install.
    """
    for bare in ("postgres://", "postgresql://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare) :]
    return url


DEFAULT_RECONCILE_MINUTES = 5.0


def reconcile_after_minutes() -> float:
    """How long an inbox file may wait before the landing sensors ask for it again whatever their cursor says, and
    the landing checks warn: `LANDING_RECONCILE_MINUTES` (minutes, fractions allowed), else 5."""
    value = os.environ.get("LANDING_RECONCILE_MINUTES")
    if not value:
        return DEFAULT_RECONCILE_MINUTES
    minutes = float(value)
    if minutes < 0:
        raise ValueError(f"LANDING_RECONCILE_MINUTES must be >= 0, not {value!r}")
    return minutes
