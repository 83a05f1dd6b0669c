"""What the benchmarks share: a scratch PostgreSQL database, a gunicorn server on loopback, percentiles."""

import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg2

REPO = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("BENCH_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


@contextmanager
def scratch_postgres(admin_dsn: str = ADMIN_DSN) -> Iterator[str]:
    """A new, empty PostgreSQL database (dropped afterwards); yields its psycopg2 SQLAlchemy URL."""
    admin = psycopg2.connect(admin_dsn, connect_timeout=3)
    admin.autocommit = True
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    params = admin.get_dsn_parameters()
    try:
        yield f"postgresql+psycopg2://{params['user']}@{params['host']}:{params['port']}/{name}"
    finally:
        from ingest_platform.resources.warehouse import dispose_engines

        dispose_engines()
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn(
    app_spec: str,
    *,
    env: dict[str, str],
    workers: int = 2,
    log_path: Path | None = None,
    extra_args: Sequence[str] = (),
) -> Iterator[str]:
    """Serve `module:callable()` with gunicorn (the webhook app's config file) on a loopback port; yields the URL."""
    port = free_port()
    config = str(REPO / "webhook_app" / "gunicorn.conf.py")
    command = [sys.executable, "-m", "gunicorn", "--config", config, "--bind", f"127.0.0.1:{port}", "-w", str(workers)]
    with open(log_path or os.devnull, "ab") as log:
        process = subprocess.Popen(
            [*command, *extra_args, app_spec],
            cwd=REPO,
            env={**os.environ, **env, "PYTHONPATH": str(REPO)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base_url}/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"gunicorn did not start for {app_spec}") from None
                time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
