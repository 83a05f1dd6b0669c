"""Finding the Chromium processes one test started, on a machine where other Chromium may be running."""

import os
import time
from pathlib import Path


def chromium_processes(marker: str) -> dict[int, str]:
    """pid → executable of every live Chromium process whose environment holds `marker` (NAME=value).

    Playwright's driver passes the test's environment to Chromium and Chromium to its children, so a marker set
    in the test's environment before the launch tags exactly that test's browser.
    """
    found: dict[int, str] = {}
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            executable = os.readlink(entry / "exe")
        except OSError:  # gone meanwhile, or a zombie
            continue
        if needle in environ.split(b"\0") and "chromium" in executable:
            found[int(entry.name)] = executable
    return found


def wait_for_no_chromium(marker: str, timeout_s: float = 10.0) -> dict[int, str]:
    """Chromium's children exit a moment after the browser; what is still alive after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while (alive := chromium_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive
