"""Durable writes to the landing zone: the contract between this app and the Dagster platform.

A request's document is written to a temporary file, fsynced, renamed to `<stream>/<ns>-<request id>.json` and the
directory fsynced, all before the response. The name's nanosecond time is taken just before the rename so names
sort by arrival (the platform's sensor relies on that; a rename keeps the temporary file's mtime).
"""

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

TMP_DIR = ".tmp"


class LandingUnavailable(Exception):
    """The landing zone could not store a request durably; the client gets a 503 and retries."""


class LandingWriter:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def land(self, *, stream: str, request_id: str, received_at: datetime, payload: Any) -> Path:
        """Write one accepted request; returns its final path only once it is durable."""
        try:
            return self._land(stream=stream, request_id=request_id, received_at=received_at, payload=payload)
        except OSError as error:
            raise LandingUnavailable(f"{stream}: {error.strerror or error}") from error

    def _land(self, *, stream: str, request_id: str, received_at: datetime, payload: Any) -> Path:
        document = {
            "stream": stream,
            "request_id": request_id,
            "received_at": received_at.isoformat(),
            "payload": payload,
        }
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        stream_dir = self.root / stream
        tmp_dir = stream_dir / TMP_DIR
        if not tmp_dir.is_dir():
            tmp_dir.mkdir(parents=True, exist_ok=True)
            _fsync_dir(stream_dir)
            _fsync_dir(self.root)
        tmp_path = tmp_dir / f"{request_id}.tmp"
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            try:
                view = memoryview(body)
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
        _fsync_dir(stream_dir)
        return final_path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
