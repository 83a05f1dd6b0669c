"""A PostgreSQL cluster of the test's own, to stop and start while the machine's shared server keeps serving others.

The server refuses to run as root, so as root the cluster belongs to the `postgres` user (its directory too).
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import free_port

BIN = Path(os.environ.get("TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))


class PrivatePostgres:
    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        # No pipes: the server pg_ctl starts would hold them open and the call would wait for it to end.
        subprocess.run(
            [*prefix, *command], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=120
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        data = str(self.directory / "data")
        self._run(
            str(BIN / "pg_ctl"), "-D", data, "-l", str(self.directory / "server.log"), "-o", options, "-w", "start"
        )

    def stop(self) -> None:
        """A fast shutdown: open sessions are ended (SQLSTATE 57P01), new connections refused."""
        self._run(str(BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    if not (BIN / "initdb").exists():
        raise RuntimeError(f"no PostgreSQL binaries at {BIN} (set TEST_POSTGRES_BIN)")
    directory = Path(tempfile.mkdtemp(prefix="private-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    server = PrivatePostgres(directory, free_port())
    server._run(
        str(BIN / "initdb"), "-D", str(directory / "data"), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"
    )
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)
