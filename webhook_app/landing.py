"""Durable writes to the landing zone: the contract between this app and the Dagster platform.

A request's document is written to a temporary file, fsynced, renamed to `<stream>/<ns>-<request id>.json` and the
directory fsynced, all before the response. Any failure (a full disk, a read-only or missing directory, a failed
fsync) leaves nothing behind: the temporary file is removed, and a file renamed into place whose directory fsync
failed is removed again before the client hears 503, so its retry cannot land a second copy.

The name's nanosecond time is taken just before the rename so names sort by arrival (the platform's sensor relies on
that; a rename keeps the temporary file's mtime). Concurrent requests share directory fsyncs (group commit): one
fsync makes every rename done before it began durable.

Request bodies carry personal data and tokens, so the folders this app creates are 0700 and its files 0600 (the
platform's loaders run as the same user); a folder that already exists keeps its mode.
"""

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

TMP_DIR = ".tmp"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


@dataclass(frozen=True, slots=True)
class RawJson:
    """A payload that is already one JSON document (a validated request body): landed as it is."""

    data: bytes


class LandingUnavailable(Exception):
    """The landing zone could not store a request durably; the client gets a 503 and retries."""


class DirectorySync:
    """fsyncs of one directory, shared by the threads that rename into it at the same time.

    A rename is durable once an fsync of its directory has begun after it. Each rename takes a ticket; a thread that
    finds an fsync already finished that began after its ticket was issued returns without one of its own.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tickets = threading.Lock()
        self._issued = 0
        self._syncing = threading.Lock()
        self._durable_through = 0

    def renamed(self) -> None:
        """Call after a rename into the directory; returns once that rename is durable."""
        with self._tickets:
            self._issued += 1
            ticket = self._issued
        with self._syncing:
            if self._durable_through >= ticket:
                return
            with self._tickets:
                covered = self._issued
            _fsync_dir(self.path)
            self._durable_through = covered


class LandingWriter:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._directory_syncs: dict[str, DirectorySync] = {}
        # Told (stream, bytes, seconds) of each durable write; the app's metrics (webhook_app/metrics.py) set it.
        self.observe: Callable[[str, int, float], None] | None = None

    def land(self, *, stream: str, request_id: str, received_at: datetime, payload: Any) -> Path:
        """Write one accepted request; returns its final path only once it is durable.

        `payload` is JSON-serialisable data, a pydantic model (serialised by pydantic-core, several times faster
        than dumping it to Python and then to JSON), or `RawJson`.
        """
        if isinstance(payload, RawJson):
            payload_json = payload.data
        elif isinstance(payload, BaseModel):
            payload_json = payload.model_dump_json().encode()
        else:
            payload_json = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        envelope = json.dumps(
            {"stream": stream, "request_id": request_id, "received_at": received_at.isoformat()}, separators=(",", ":")
        ).encode()
        # The envelope's closing brace gives way to the payload member: one document, without re-encoding the payload
        # or copying it into one buffer.
        parts = (envelope[:-1] + b',"payload":', payload_json, b"}")
        started = time.perf_counter()
        try:
            path = self._write(stream, request_id, parts)
        except OSError as error:
            raise LandingUnavailable(f"{stream}: {error.strerror or error}") from error
        if self.observe is not None:
            self.observe(stream, sum(len(part) for part in parts), time.perf_counter() - started)
        return path

    def _write(self, stream: str, request_id: str, parts: tuple[bytes, ...]) -> Path:
        stream_dir = self.root / stream
        tmp_path = stream_dir / TMP_DIR / f"{request_id}.tmp"
        try:
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        except FileNotFoundError:
            self._create_stream_dirs(stream_dir)
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        try:
            try:
                for part in parts:
                    view = memoryview(part)
                    while view:
                        view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            final_path = stream_dir / f"{time.time_ns():020d}-{request_id}.json"
            os.rename(tmp_path, final_path)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        try:
            self._directory_sync(stream, stream_dir).renamed()
        except BaseException:
            # The client is told 503 and retries; a file left in place would then be loaded twice (app events
            # without an idempotency key have nothing else to tell the copies apart). Taken back, it never existed.
            final_path.unlink(missing_ok=True)
            raise
        return final_path

    def _directory_sync(self, stream: str, stream_dir: Path) -> DirectorySync:
        sync = self._directory_syncs.get(stream)
        if sync is None:
            sync = self._directory_syncs.setdefault(stream, DirectorySync(stream_dir))
        return sync

    def _create_stream_dirs(self, stream_dir: Path) -> None:
        make_private_dirs(stream_dir / TMP_DIR)
        _fsync_dir(stream_dir)
        _fsync_dir(self.root)


def make_private_dirs(path: Path) -> None:
    """Create `path` and its missing parents owner-only (0700); folders that exist keep their mode."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # another worker made it first
        folder.chmod(PRIVATE_DIR_MODE)  # the umask may have taken the owner's own bits


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
