"""Short-lived claims shared by every worker and surviving restarts: VIEW dedup windows and idempotency keys.

`claim` sets each key only if it is not held yet (or has expired) and says which ones it got, in order, so two
copies of a key in one batch give one True. Redis (`CLAIMS_URL=redis://…`) serves several hosts; the SQLite
fallback serves every worker of one host (its file lives next to the landing zone by default).
"""

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from webhook_app.landing import PRIVATE_FILE_MODE, make_private_dirs

Claim = tuple[str, float]  # key, seconds to hold it

# Expired rows are deleted every this many claims, so the SQLite file stays as small as the live windows.
_PURGE_EVERY = 1_000
# Two parameters a claim, far below SQLite's 32 766 variables per statement.
_CLAIMS_PER_STATEMENT = 5_000
# An expired claim is taken over; RETURNING names the keys this statement inserted or took over.
_CLAIM_SQL = (
    "INSERT INTO claims (key, expires_at) VALUES {values} ON CONFLICT (key) DO UPDATE "
    "SET expires_at = excluded.expires_at WHERE claims.expires_at <= ? RETURNING key"
)


class ClaimStoreUnavailable(Exception):
    """The store cannot be reached; the request is refused (503) rather than stored without its dedup."""


class ClaimStore(Protocol):
    def claim(self, claims: Sequence[Claim]) -> list[bool]: ...

    def release(self, keys: Sequence[str]) -> None: ...


class RedisClaimStore:
    def __init__(self, url: str, *, prefix: str = "ingest:claims:") -> None:
        # Imported here: only a deployment that names a Redis store pays for the client library.
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._errors = redis.RedisError
        self._prefix = prefix

    def claim(self, claims: Sequence[Claim]) -> list[bool]:
        if not claims:
            return []
        pipeline = self._redis.pipeline(transaction=False)
        for key, seconds in claims:
            pipeline.set(self._prefix + key, b"1", nx=True, px=max(1, int(seconds * 1000)))
        try:
            return [bool(result) for result in pipeline.execute()]
        except self._errors as error:
            raise ClaimStoreUnavailable(str(error)) from error

    def release(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            self._redis.delete(*(self._prefix + key for key in keys))
        except self._errors as error:
            raise ClaimStoreUnavailable(str(error)) from error


class SqliteClaimStore:
    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._local = threading.local()
        self._claims_since_purge = 0
        # SQLite's busy handler sleeps in growing steps while another writer holds the lock; queueing this
        # process's threads on a plain lock leaves only the workers to contend, which keeps the tail short.
        self._write_lock = threading.Lock()

    def claim(self, claims: Sequence[Claim]) -> list[bool]:
        if not claims:
            return []
        try:
            with self._write_lock:
                return self._claim(claims, self._clock())
        except sqlite3.Error as error:
            raise ClaimStoreUnavailable(str(error)) from error

    def _claim(self, claims: Sequence[Claim], now: float) -> list[bool]:
        got = [False] * len(claims)
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            for start in range(0, len(claims), _CLAIMS_PER_STATEMENT):
                chunk = claims[start : start + _CLAIMS_PER_STATEMENT]
                # One statement per chunk: a key repeated in it is taken by its first copy only, since the
                # later copy meets a row that has not expired.
                statement = _CLAIM_SQL.format(values=", ".join(["(?, ?)"] * len(chunk)))
                parameters = [value for key, seconds in chunk for value in (key, now + seconds)]
                taken = {key for (key,) in connection.execute(statement, [*parameters, now])}
                for offset, (key, _) in enumerate(chunk):
                    if key in taken:
                        got[start + offset] = True
                        taken.discard(key)
            self._claims_since_purge += len(claims)
            if self._claims_since_purge >= _PURGE_EVERY:
                connection.execute("DELETE FROM claims WHERE expires_at <= ?", (now,))
                self._claims_since_purge = 0
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return got

    def release(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            connection = self._connection()
            connection.executemany("DELETE FROM claims WHERE key = ?", [(key,) for key in keys])
        except sqlite3.Error as error:
            raise ClaimStoreUnavailable(str(error)) from error

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread and per process: a gunicorn worker must not reuse its parent's.
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            return connection
        make_private_dirs(self.path.parent)
        # Owner-only before SQLite opens it: its -wal and -shm files take the database file's mode.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
        connection = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        # A claim lost to a power cut only lets one duplicate through; the warehouse load drops it.
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID"
        )
        self._local.connection = connection
        self._local.pid = os.getpid()
        return connection


def claim_store(url: str, *, landing_dir: str | os.PathLike[str], key_prefix: str) -> ClaimStore:
    """The store `url` names: `redis://…`/`rediss://…`/`unix://…` (keys under `key_prefix`), `sqlite:///<path>`,
    or empty for the default SQLite file `<landing dir>/.state/claims.sqlite`."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisClaimStore(url, prefix=key_prefix)
    if url.startswith("sqlite:///"):
        return SqliteClaimStore(url.removeprefix("sqlite:///"))
    if url:
        raise ValueError(f"CLAIMS_URL must be a redis:// or sqlite:/// URL, got {url.split(':', 1)[0]!r}")
    return SqliteClaimStore(Path(landing_dir) / ".state" / "claims.sqlite")
