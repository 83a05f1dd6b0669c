"""Vivenu figures, each against its baseline measured in the same run, on loopback fakes:

1. Delivery of 1,000 charity tickets by `ingest-platform vivenu sync` (a process of its own, as an operator runs
   it) at a configured 20 requests/s: the rate achieved at the receiver (at least 0.95 times the limit, no
   one-second window above it) against the seed's loop (send, then sleep 1.8 s), timed on a sample of
   `--seed-sample` tickets.
2. Pull of 20,000 tickets in pages of 1,000 (tickets/s) against the seed's pages of 100.

Run: .venv/bin/python -m bench.vivenu_delivery   (SQLite warehouse in a temporary directory; DATABASE_URL to use
PostgreSQL). The machine may be shared: figures vary with its load.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import dagster as dg  # noqa: E402
import httpx  # noqa: E402

from ingest_platform.assets.vivenu import vivenu_events, vivenu_tickets  # noqa: E402
from ingest_platform.resources.vivenu import VivenuResource  # noqa: E402
from ingest_platform.resources.warehouse import WarehouseResource  # noqa: E402
from ingest_platform.vivenu.tickets import build_envelope  # noqa: E402
from tests.fakes.vivenu import FakeVivenu, make_tickets  # noqa: E402
from tests.fakes.webhook_receiver import WebhookReceiver  # noqa: E402

KEY = "bench-key"
DELIVERY_EVENT = "b000000000000000000000d1"
PULL_EVENT = "b000000000000000000000p2"
SEED_SPACING_SECONDS = 1.8


def achieved_rate(receiver: WebhookReceiver) -> float:
    times = sorted(arrival.at for arrival in receiver.arrivals)
    return (len(times) - 1) / (times[-1] - times[0])


def bench_delivery(vivenu_api: FakeVivenu, tickets: int, rate: float, seed_sample: int, data_dir: Path) -> dict:
    vivenu_api.events[DELIVERY_EVENT] = make_tickets(DELIVERY_EVENT, count=tickets, wrong_status=0, not_charity=0)
    dagster_home = data_dir / "dagster_home"
    dagster_home.mkdir(exist_ok=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with WebhookReceiver() as receiver:
        env = {
            **os.environ,
            "VIVENU_BASE_URL": vivenu_api.url,
            "VIVENU_WEBHOOK_PRODUCTION_URL": f"{receiver.url}/ticket-created",
            "DAGSTER_HOME": str(dagster_home),
        }
        command = [sys.executable, "-m", "ingest_platform.cli", "vivenu", "sync", "PROD", DELIVERY_EVENT]
        started = time.monotonic()
        subprocess.run(
            [*command, "--rate", str(rate), "--max-in-flight", "4"],
            cwd=REPO_ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        elapsed = time.monotonic() - started
        assert len(receiver.accepted) == tickets
        platform = {
            "tickets": tickets,
            "limit_per_s": rate,
            "achieved_per_s": round(achieved_rate(receiver), 3),
            "achieved_over_limit": round(achieved_rate(receiver) / rate, 4),
            "max_requests_in_any_1s_window": receiver.max_in_any_second(),
            "cli_seconds_including_start_and_pull": round(elapsed, 1),
        }

    # The seed's loop: one request, then 1.8 s, one ticket after the other.
    with WebhookReceiver() as receiver, httpx.Client(timeout=30) as client:
        endpoint = f"{receiver.url}/ticket-created"
        for ticket in vivenu_api.events[DELIVERY_EVENT][:seed_sample]:
            client.post(endpoint, json=build_envelope(ticket, endpoint=endpoint, mode="prod"))
            time.sleep(SEED_SPACING_SECONDS)
        seed_rate = achieved_rate(receiver)
    return {
        "platform": platform,
        "seed_baseline": {"sample_tickets": seed_sample, "achieved_per_s": round(seed_rate, 3)},
        "speedup_vs_seed": round(platform["achieved_per_s"] / seed_rate, 1),
        "seed_minutes_for_all": round(tickets / seed_rate / 60, 1),
    }


def bench_pull(vivenu_api: FakeVivenu, tickets: int) -> dict:
    vivenu_api.events[PULL_EVENT] = make_tickets(PULL_EVENT, count=tickets)
    vivenu = VivenuResource(production_base_url=vivenu_api.url)
    figures = {}
    for name, page_size in (("seed_pages_of_100", 100), ("pages_of_1000", 1000)):
        started = time.monotonic()
        pulled = vivenu.fetch_tickets(region="PROD", event_id=PULL_EVENT, page_size=page_size)
        elapsed = time.monotonic() - started
        assert len(pulled) == tickets
        figures[name] = {"seconds": round(elapsed, 2), "tickets_per_s": round(tickets / elapsed)}

    key = f"PROD:{PULL_EVENT}"
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(vivenu_events.name, [key])
        started = time.monotonic()
        result = dg.materialize(
            [vivenu_tickets],
            partition_key=key,
            instance=instance,
            resources={"warehouse": WarehouseResource(), "vivenu": VivenuResource(production_base_url=vivenu_api.url)},
            run_config={"ops": {"vivenu__raw__tickets": {"config": {"page_size": 1000}}}},
        )
        elapsed = time.monotonic() - started
        assert result.success
    figures["asset_pull_and_upsert_pages_of_1000"] = {
        "seconds": round(elapsed, 2),
        "tickets_per_s": round(tickets / elapsed),
    }
    figures["speedup_pages_of_1000_vs_100"] = round(
        figures["pages_of_1000"]["tickets_per_s"] / figures["seed_pages_of_100"]["tickets_per_s"], 2
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seed-sample", type=int, default=6)
    parser.add_argument("--pull-tickets", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        os.environ["PLATFORM_DATA_DIR"] = data_dir
        os.environ["PROD_API"] = KEY
        with FakeVivenu(keys={KEY}) as vivenu_api:
            figures = {
                "warehouse": WarehouseResource().backend,
                "delivery": bench_delivery(vivenu_api, args.tickets, args.rate, args.seed_sample, Path(data_dir)),
                "pull": bench_pull(vivenu_api, args.pull_tickets),
            }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
