"""Where the platform keeps its state, resolved from the environment when asked (never at import time).

Everything the platform creates there can hold personal data or secrets (ticket holders in the warehouse, request
bodies in the landing zone, run logs in DAGSTER_HOME), so what it creates is owner-only: folders 0700, files 0600.
A folder that already exists is left as its owner set it.
"""

import os
from collections.abc import Callable, Iterable
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

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


def _non_negative(name: str, parse: Callable[[str], float], default: float | None) -> float | None:
    """The variable `name` parsed, `default` when it is unset or blank; a negative value is an error naming it."""
    value = os.environ.get(name)
    if not value:
        return default
    number = parse(value)
    if number < 0:
        raise ValueError(f"{name} must be >= 0, not {value!r}")
    return number


def reconcile_after_minutes() -> float:
    """How long an inbox file may wait before the landing sensors ask for it again whatever their cursor says, and
    the landing checks warn: `LANDING_RECONCILE_MINUTES` (minutes, fractions allowed), else 5."""
    return _non_negative("LANDING_RECONCILE_MINUTES", float, DEFAULT_RECONCILE_MINUTES)


def read_variables(names: Iterable[str]) -> dict[str, str]:
    """The variables among `names` that are set and not blank, read now: the values of the optional settings a
    resource's fields name (`resources.EnvironmentSettingsResource`)."""
    values = {}
    for name in names:
        value = os.environ.get(name, "")
        if value.strip():
            values[name] = value
    return values


def make_private_dirs(path: Path) -> list[Path]:
    """Create `path` and its missing parents owner-only (0700); returns the folders created, outermost first.
    Folders that exist keep their mode: `--output-dir ~` must not lock the home folder."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    created = []
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # another process made it first; its mode is its business
        # mkdir's mode passes through the umask, which may not take the owner's own bits away.
        folder.chmod(PRIVATE_DIR_MODE)
        created.append(folder)
    return created


def create_private_file(path: Path) -> bool:
    """Create `path` empty and owner-only (0600) unless it exists, its folder with `make_private_dirs`; True when
    created. For files other programs then open (SQLite keeps its -wal and -shm files at the database's mode)."""
    make_private_dirs(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    os.fchmod(descriptor, PRIVATE_FILE_MODE)
    os.close(descriptor)
    return True


DEFAULT_COMPACT_AFTER_DAYS = 7


def landing_compact_after_days() -> int:
    """Archived landing days older than this many days are compacted: `LANDING_COMPACT_AFTER_DAYS`, else 7."""
    return _non_negative("LANDING_COMPACT_AFTER_DAYS", int, DEFAULT_COMPACT_AFTER_DAYS)


def landing_retention_days() -> int | None:
    """Compacted landing days older than this many days are deleted: `LANDING_RETENTION_DAYS`; unset keeps them."""
    return _non_negative("LANDING_RETENTION_DAYS", int, None)
