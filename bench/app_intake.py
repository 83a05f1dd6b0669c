"""Benchmark of POST /ingest/events over HTTP under gunicorn, next to a bare handler measured in the same run.

The bare handler is the floor any durable intake pays: a Flask view that parses the JSON body, writes it to a
file and fsyncs it, nothing else. The app adds authentication, validation, the keyed IP hash, the rate limiter,
the dedup claims (SQLite file by default, Redis when given) and the landing protocol (temp file, fsync, rename,
directory fsync, audit record inside).

    .venv/bin/python -m bench.app_intake [--seconds 6] [--rounds 6] [--clients 8] [--workers 2] \
        [--redis redis://127.0.0.1:6379/0]

Every server runs at once and the load visits them in short rounds in turn, so a busy moment of the (shared)
machine weighs on each of them alike.
"""

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench.common import gunicorn

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"
EVENT_TYPES = ("VIEW", "COPY", "SAVE", "FORK", "VOTE")


# Every event of the run gets a fresh rule and idempotency key (next() on a count is atomic under the GIL).
_sequence = itertools.count()


def _batch(size: int) -> bytes:
    events = []
    for _ in range(size):
        number = next(_sequence)
        # Distinct rules so every VIEW claims a fresh window and is stored: the dedup path at full cost.
        events.append({"type": EVENT_TYPES[number % 5], "ruleId": f"rule_{number}", "idempotencyKey": f"k{number}"})
    return json.dumps({"events": events}).encode()


def run_load(base_url: str, batch_size: int, seconds: float, clients: int) -> tuple[list[float], float]:
    """Request latencies of `clients` keep-alive clients posting for `seconds`, and the wall time taken."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        mine: list[float] = []
        headers = {"x-app-token": TOKEN, "Content-Type": "application/json"}
        with httpx.Client(base_url=base_url, timeout=30) as http:
            while time.monotonic() < stop_at:
                body = _batch(batch_size)
                started = time.perf_counter()
                response = http.post("/ingest/events", content=body, headers=headers)
                mine.append(time.perf_counter() - started)
                if response.status_code != 202:
                    failures.append(f"{response.status_code} {response.text[:200]}")
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return latencies, time.monotonic() - started


def server_cpu_seconds(base_url: str) -> float:
    """User and system CPU the gunicorn master serving `base_url` and its workers have used so far (Linux /proc).

    CPU per request is the figure a busy shared machine moves least: throughput and latency include the time spent
    waiting for a CPU, this does not.
    """
    bind = f"127.0.0.1:{base_url.rsplit(':', 1)[1]}"
    masters = [pid for pid in _pids() if bind in _cmdline(pid) and "gunicorn" in _cmdline(pid)]
    processes = {pid for pid in _pids() if _parent(pid) in masters} | set(masters)
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(_cpu_ticks(pid) for pid in processes) / ticks


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str]:
    try:
        # The command name in parentheses may hold spaces: the fields start after its closing one.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _parent(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else 0


def _cpu_ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0


def summarize(latencies: list[float], elapsed: float, batch_size: int) -> dict[str, float]:
    latencies = sorted(latencies)
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "eps": len(latencies) * batch_size / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def _delete_claims(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    batch = []
    for key in client.scan_iter(f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) == 1000:
            client.delete(*batch)
            batch.clear()
    if batch:
        client.delete(*batch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="load duration per server and batch size")
    parser.add_argument("--rounds", type=int, default=6, help="rounds the duration is split into, servers in turn")
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (same for every server)")
    parser.add_argument("--redis", default="", help="also measure the app with its claims in this Redis")
    args = parser.parse_args()

    results: dict[tuple[str, int], dict[str, float]] = {}
    round_rps: dict[int, list[dict[str, float]]] = {}
    prefix = f"bench:{uuid.uuid4().hex}:"
    with tempfile.TemporaryDirectory(prefix="bench-app-intake-") as scratch:
        root = Path(scratch)
        bare_dir = root / "bare"
        bare_dir.mkdir()
        app_env = {
            "PLATFORM_DATA_DIR": str(root / "data"),
            "LANDING_DIR": str(root / "data" / "landing"),
            "INGEST_APP_TOKEN": TOKEN,
            "INGEST_IP_HASH_SECRET": "bench-ip-key",
            "WEBHOOK_APP_EVENTS_RATE_LIMIT": "100000000 per minute",
        }
        servers = {
            "bare handler (parse + fsync)": (
                "bench.bare_handler:create_app()",
                {"BENCH_BARE_DIR": str(bare_dir)},
            ),
            "app, claims in SQLite": ("webhook_app:create_app()", app_env),
        }
        if args.redis:
            servers["app, claims in Redis"] = (
                "webhook_app:create_app()",
                {**app_env, "WEBHOOK_CLAIMS_URL": args.redis, "WEBHOOK_CLAIMS_KEY_PREFIX": prefix},
            )
        try:
            with ExitStack() as stack:
                urls = {
                    name: stack.enter_context(gunicorn(spec, env=env, workers=args.workers))
                    for name, (spec, env) in servers.items()
                }
                for batch_size in (1, 500):
                    for base_url in urls.values():
                        run_load(base_url, batch_size, 0.5, args.clients)  # warm-up
                    # Short rounds in turn, so every server sees the same mix of the shared machine's load; the order
                    # flips every round so a drift in that load does not favour the server that goes first.
                    collected = {name: ([], 0.0) for name in urls}
                    cpu = dict.fromkeys(urls, 0.0)
                    round_rps[batch_size] = []
                    for number in range(args.rounds):
                        order = list(urls.items()) if number % 2 == 0 else list(urls.items())[::-1]
                        this_round = {}
                        for name, base_url in order:
                            cpu_before = server_cpu_seconds(base_url)
                            latencies, elapsed = run_load(
                                base_url, batch_size, args.seconds / args.rounds, args.clients
                            )
                            cpu[name] += server_cpu_seconds(base_url) - cpu_before
                            collected[name][0].extend(latencies)
                            collected[name] = (collected[name][0], collected[name][1] + elapsed)
                            this_round[name] = len(latencies) / elapsed
                        round_rps[batch_size].append(this_round)
                    for name, (latencies, elapsed) in collected.items():
                        results[(name, batch_size)] = summarize(latencies, elapsed, batch_size)
                        results[(name, batch_size)]["cpu_ms"] = cpu[name] / max(1, len(latencies)) * 1000
        finally:
            if args.redis:
                _delete_claims(args.redis, prefix)

    print(
        f"POST /ingest/events over HTTP, gunicorn --workers {args.workers}, {args.clients} keep-alive clients, "
        f"{args.seconds:g} s per scenario in {args.rounds} interleaved rounds, {os.cpu_count()} CPUs (client and "
        "servers share them)"
    )
    print(
        f"{'server':32} {'batch':>5} {'requests':>9} {'req/s':>9} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU ms/req':>10}"
    )
    for (name, batch_size), figures in results.items():
        print(
            f"{name:32} {batch_size:>5} {figures['requests']:>9} {figures['rps']:>9.0f} {figures['eps']:>10.0f} "
            f"{figures['p50_ms']:>8.2f} {figures['p99_ms']:>8.2f} {figures['cpu_ms']:>10.2f}"
        )
    baseline = "bare handler (parse + fsync)"
    print(
        "\nratio to the bare handler (throughput: app / bare over the whole run, and the median of the rounds' ratios, "
        "each round's servers measured back to back; p99: app / bare; server CPU per request: bare / app, the "
        "throughput two saturated CPUs would allow)"
    )
    for (name, batch_size), figures in results.items():
        if name == baseline:
            continue
        bare = results[(baseline, batch_size)]
        # A round in which the bare handler answered nothing (a stalled machine) has no ratio.
        ratios = [rounds[name] / rounds[baseline] for rounds in round_rps[batch_size] if rounds[baseline]]
        per_round = statistics.median(ratios) if ratios else float("nan")
        print(
            f"{name:32} {batch_size:>5}  throughput x{figures['rps'] / bare['rps']:.2f} (rounds' median "
            f"x{per_round:.2f})   p99 x{figures['p99_ms'] / bare['p99_ms']:.2f}   "
            f"CPU-bound throughput x{bare['cpu_ms'] / figures['cpu_ms'] if figures['cpu_ms'] else float('nan'):.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
