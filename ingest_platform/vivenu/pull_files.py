"""The seed's pull files: every ticket of an event as JSON, readable by the owner only."""

import json
import os
import re
import stat
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest_platform.settings import PRIVATE_FILE_MODE, make_private_dirs
from ingest_platform.vivenu.tickets import FilterCounts, select_tickets

# Anything but word characters, spaces, '-' and single dots; ".." never survives, nor does a separator.
_UNSAFE_FILE_CHARACTERS = re.compile(r"(?:[^\w .-]|\.{2,})+")


def safe_file_part(text: str, *, limit: int = 80) -> str:
    """A piece of a file name that cannot leave its directory or hide: no separators, no leading dots."""
    cleaned = " ".join(_UNSAFE_FILE_CHARACTERS.sub("_", text).split()).strip(" ._")
    return cleaned[:limit].rstrip(" ._") or "unnamed"


def holder_name(ticket: Mapping[str, Any]) -> str:
    parts = [str(ticket.get(name) or "").strip() for name in ("firstname", "lastname")]
    return " ".join(part for part in parts if part) or str(ticket.get("name") or "").strip()


def write_pull_files(
    tickets: Sequence[Mapping[str, Any]], *, region: str, event_id: str, root: Path
) -> tuple[Path, FilterCounts]:
    """The seed's pull layout, readable by the owner only (the files hold ticket holders' personal data):
    `<root>/<event_id>/all_tickets.json`, `metadata.json` and `individual/<id>_<name>.json`. The files are 0600,
    and so are the folders this creates 0700; a folder that exists keeps its mode (see `exposed_folder`)."""
    event_dir = root / safe_file_part(event_id)
    individual_dir = event_dir / "individual"
    make_private_dirs(individual_dir)
    _, counts = select_tickets(tickets)
    _write_private_json(event_dir / "all_tickets.json", list(tickets))
    _write_private_json(
        event_dir / "metadata.json",
        {
            "region": region,
            "event_id": event_id,
            "pulled_at": datetime.now(UTC).isoformat(),
            "total_tickets": len(tickets),
            "by_status": dict(Counter(str(ticket.get("status")) for ticket in tickets).most_common()),
            "by_ticket_name": dict(Counter(str(ticket.get("ticketName")) for ticket in tickets).most_common()),
            "filter": counts.as_metadata(),
        },
    )
    for ticket in tickets:
        name = f"{safe_file_part(str(ticket['_id']))}_{safe_file_part(holder_name(ticket))}.json"
        _write_private_json(individual_dir / name, ticket)
    return event_dir, counts


def exposed_folder(root: Path) -> str | None:
    """A warning when `root` exists and other users may list or read it, else None."""
    try:
        mode = root.stat().st_mode
    except FileNotFoundError:
        return None
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return None
    return (
        f"{root} is readable by other users (mode {stat.filemode(mode)}); the ticket files in it are owner-only, "
        f"but their names show ticket ids and holders' names: choose a private folder or run chmod 700 {root}"
    )


def _write_private_json(path: Path, document: Any) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    os.fchmod(descriptor, PRIVATE_FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(document, file, indent=2, ensure_ascii=False)
