"""Short-lived claims shared by every worker and surviving restarts: VIEW dedup windows and idempotency keys.

A request's claims are one call, one round trip to the store: `claim_in_stages` takes rows of claims (one row per
event) stage by stage. Every row's first claim is tried in row order, then the second claim of the rows that got
their first, and so on; a row stops at its first refused claim, and an empty cell (None) passes. A key is granted
only if it is not held yet (or has expired), so the first copy of a key wins. Redis (`CLAIMS_URL=redis://…`)
serves several hosts; the SQLite fallback serves every worker of one host (its file lives next to the landing zone
by default).
"""

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from webhook_app.landing import PRIVATE_FILE_MODE, make_private_dirs

Claim = tuple[str, float]  # key, seconds to hold it
ClaimRow = Sequence[Claim | None]

# Expired rows are deleted every this many claims, through the index on expires_at (a table scan per purge made
# every claim cost in proportion to the live keys: 7 days of idempotency keys).
_PURGE_EVERY = 1_000
# Two parameters a claim, far below SQLite's 32 766 variables per statement.
_CLAIMS_PER_STATEMENT = 5_000
_RELEASES_PER_STATEMENT = 10_000
# An expired claim is taken over; RETURNING names the keys this statement inserted or took over.
_CLAIM_SQL = (
    "INSERT INTO claims (key, expires_at) VALUES {values} ON CONFLICT (key) DO UPDATE "
    "SET expires_at = excluded.expires_at WHERE claims.expires_at <= ? RETURNING key"
)
_RELEASE_SQL = "DELETE FROM claims WHERE key IN ({keys})"
# The same stages in Redis, in one script (one round trip, and atomic). ARGV: rows, width, then every cell (row by
# row, stage by stage) as its claim's milliseconds, "0" for an empty cell, comma-separated in one argument; KEYS: the
# non-empty cells' keys in the same order. Returns how many stages each row passed, comma-separated. One argument and
# one string each way instead of one per cell: redis-py packs and parses every element in Python.
_CLAIM_LUA = """
local rows, width = tonumber(ARGV[1]), tonumber(ARGV[2])
local ttl_of, key_of, next_key, cell = {}, {}, 0, 0
for ttl in string.gmatch(ARGV[3], '[^,]+') do
  cell = cell + 1
  ttl_of[cell] = ttl
  if ttl ~= '0' then
    next_key = next_key + 1
    key_of[cell] = next_key
  end
end
local passed = {}
for row = 1, rows do passed[row] = 0 end
for stage = 1, width do
  for row = 1, rows do
    if passed[row] == stage - 1 then
      local cell = (row - 1) * width + stage
      local key = key_of[cell]
      if key == nil or redis.call('SET', KEYS[key], '1', 'NX', 'PX', ttl_of[cell]) then
        passed[row] = stage
      end
    end
  end
end
return table.concat(passed, ',')
"""


class ClaimStoreUnavailable(Exception):
    """The store cannot be reached; the request is refused (503) rather than stored without its dedup."""


class ClaimStore(Protocol):
    def claim_in_stages(self, rows: Sequence[ClaimRow]) -> list[int]:
        """How many stages (cells) each row passed; a row got all its claims when that is its length."""
        ...

    def claim(self, claims: Sequence[Claim]) -> list[bool]: ...

    def release(self, keys: Sequence[str]) -> None: ...


def claimed_keys(rows: Sequence[ClaimRow], passed: Sequence[int]) -> list[str]:
    """The keys granted by a `claim_in_stages` call: to give back if what they guard is not stored after all."""
    return [claim[0] for row, count in zip(rows, passed, strict=True) for claim in row[:count] if claim is not None]


class RedisClaimStore:
    def __init__(self, url: str, *, prefix: str = "ingest:claims:") -> None:
        # Imported here: only a deployment that names a Redis store pays for the client library.
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._redis.register_script(_CLAIM_LUA)
        self._errors = redis.RedisError
        self._prefix = prefix

    def claim(self, claims: Sequence[Claim]) -> list[bool]:
        return [count == 1 for count in self.claim_in_stages([(claim,) for claim in claims])]

    def claim_in_stages(self, rows: Sequence[ClaimRow]) -> list[int]:
        if not any(claim is not None for row in rows for claim in row):
            return [len(row) for row in rows]
        width = max(len(row) for row in rows)
        keys: list[str] = []
        cells: list[str] = []
        for row in rows:
            for claim in row:
                if claim is None:
                    cells.append("0")
                else:
                    keys.append(self._prefix + claim[0])
                    cells.append(str(max(1, int(claim[1] * 1000))))
            cells.extend(["0"] * (width - len(row)))
        try:
            passed = self._script(keys=keys, args=[len(rows), width, ",".join(cells)])
        except self._errors as error:
            raise ClaimStoreUnavailable(str(error)) from error
        # A row shorter than the width passes the padding, which is no claim of its own.
        return [min(int(count), len(row)) for row, count in zip(rows, passed.split(b","), strict=True)]

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
        # SQLite's busy handler sleeps in growing steps (1, 2, 5, 10 ms…) while another writer holds the lock, and
        # the queue of a worker's threads waits behind the sleeper. Writers queue instead: this process's threads on
        # a plain lock, the workers on an flock of a file beside the database, which wakes the next one as soon as
        # the holder is done. SQLite's own locking still guards the data.
        self._write_lock = threading.Lock()
        self._flock_fd: int | None = None
        self._flock_pid = 0

    def claim(self, claims: Sequence[Claim]) -> list[bool]:
        return [count == 1 for count in self.claim_in_stages([(claim,) for claim in claims])]

    def claim_in_stages(self, rows: Sequence[ClaimRow]) -> list[int]:
        if not any(claim is not None for row in rows for claim in row):
            return [len(row) for row in rows]
        try:
            with self._write_lock, self._between_workers():
                return self._claim_in_stages(rows, self._clock())
        except (sqlite3.Error, OSError) as error:
            # OSError: the store's directory cannot be created (the landing volume is read-only or not a directory).
            raise ClaimStoreUnavailable(str(error)) from error

    def _claim_in_stages(self, rows: Sequence[ClaimRow], now: float) -> list[int]:
        passed = [0] * len(rows)
        claims = 0
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            for stage in range(max(len(row) for row in rows)):
                # The rows still going, in order: their claim of this stage, or a pass for an empty cell.
                wanted: list[tuple[int, str, float]] = []
                for position, row in enumerate(rows):
                    if passed[position] != stage or len(row) <= stage:
                        continue
                    claim = row[stage]
                    if claim is None:
                        passed[position] = stage + 1
                    else:
                        wanted.append((position, claim[0], claim[1]))
                claims += len(wanted)
                for position in self._take(connection, wanted, now):
                    passed[position] = stage + 1
            self._claims_since_purge += claims
            if self._claims_since_purge >= _PURGE_EVERY:
                connection.execute("DELETE FROM claims WHERE expires_at <= ?", (now,))
                self._claims_since_purge = 0
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return passed

    @staticmethod
    def _take(connection: sqlite3.Connection, wanted: list[tuple[int, str, float]], now: float) -> list[int]:
        """The positions of `wanted` whose key this transaction got."""
        got: list[int] = []
        for start in range(0, len(wanted), _CLAIMS_PER_STATEMENT):
            chunk = wanted[start : start + _CLAIMS_PER_STATEMENT]
            # One statement per chunk: a key repeated in it is taken by its first copy only, since the later copy
            # meets a row that has not expired.
            statement = _CLAIM_SQL.format(values=", ".join(["(?, ?)"] * len(chunk)))
            parameters = [value for _, key, seconds in chunk for value in (key, now + seconds)]
            taken = {key for (key,) in connection.execute(statement, [*parameters, now])}
            for position, key, _ in chunk:
                if key in taken:
                    got.append(position)
                    taken.discard(key)
        return got

    def release(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            with self._write_lock, self._between_workers():
                connection = self._connection()
                connection.execute("BEGIN IMMEDIATE")
                try:
                    for start in range(0, len(keys), _RELEASES_PER_STATEMENT):
                        chunk = list(keys[start : start + _RELEASES_PER_STATEMENT])
                        connection.execute(_RELEASE_SQL.format(keys=", ".join(["?"] * len(chunk))), chunk)
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
        except (sqlite3.Error, OSError) as error:
            raise ClaimStoreUnavailable(str(error)) from error

    @contextmanager
    def _between_workers(self) -> Iterator[None]:
        """Hold the lock file's exclusive flock; call with `_write_lock` held (an flock is the process's, not the
        thread's)."""
        if self._flock_fd is None or self._flock_pid != os.getpid():
            # A worker forked from a process that held one opens its own: a shared descriptor is a shared lock.
            make_private_dirs(self.path.parent)
            self._flock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
            self._flock_pid = os.getpid()
        fcntl.flock(self._flock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._flock_fd, fcntl.LOCK_UN)

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
        # Files made before the index get it on their first connection.
        connection.execute("CREATE INDEX IF NOT EXISTS claims_expires_at ON claims (expires_at)")
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
