"""The webhook app as gunicorn runs it with webhook_app/gunicorn.conf.py: its own log lines print (one per event, with
the request id, no client address) and each instance on a host has its own control socket."""

import re
from pathlib import Path

import httpx

from bench.common import gunicorn
from tests.webhook_app.conftest import BIGTOP_TOKEN
from tests.webhook_app.test_bigtop import AUTH, URL, batch

CONTROL_SOCKET_LINE = re.compile(r"Control socket listening at (\S+)")
# Lines of the app's own loggers, as the config formats them.
APP_LINE = re.compile(r"\] webhook_app\.\S+ request_id=(\S+) (.*)$")


def app_lines(log: Path) -> list[tuple[str, str]]:
    return [match.groups() for line in log.read_text().splitlines() if (match := APP_LINE.search(line))]


def test_two_instances_log_landed_and_rejected_requests_with_ids_and_keep_separate_control_sockets(
    tmp_path: Path,
) -> None:
    env = {"BIGTOP_INGEST_TOKEN": BIGTOP_TOKEN, "LANDING_DIR": str(tmp_path / "landing")}
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    with (
        gunicorn("webhook_app:create_app()", env=env, workers=1, log_path=logs[0]) as first,
        gunicorn("webhook_app:create_app()", env=env, workers=1, log_path=logs[1]) as second,
    ):
        landed = [
            httpx.post(base + URL, json=batch(run_id=f"run-{n}"), headers=AUTH, timeout=10)
            for n, base in enumerate((first, second))
        ]
        rejected = httpx.post(first + URL, json=batch(), headers={"Authorization": "Bearer wrong"}, timeout=10)
        sockets = [CONTROL_SOCKET_LINE.search(log.read_text()) for log in logs]

    assert [response.status_code for response in landed] == [202, 202]
    assert rejected.status_code == 401
    assert all(sockets), "gunicorn did not report a control socket"
    paths = [match.group(1) for match in sockets]
    assert len(set(paths)) == 2, "the two instances share one control socket"
    assert not any(path.endswith("/.gunicorn/gunicorn.ctl") for path in paths)

    first_lines, second_lines = app_lines(logs[0]), app_lines(logs[1])
    assert (landed[0].json()["request_id"], "landed bigtop batch run_id=run-0 events=1") in first_lines
    assert (landed[1].json()["request_id"], "landed bigtop batch run_id=run-1 events=1") in second_lines
    rejections = [message for _, message in first_lines if message.startswith("rejected")]
    assert rejections == ["rejected POST /api/ingest/bigtop/events: 401 unauthorized"]
    for request_id, message in first_lines + second_lines:
        assert re.fullmatch(r"[0-9a-f]{32}", request_id), message
        assert "127.0.0.1" not in message and BIGTOP_TOKEN not in message
