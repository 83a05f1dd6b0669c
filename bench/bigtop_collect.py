"""Big Top collection through Chromium vs fetching the same .ics files with plain httpx, in one process run.

    .venv/bin/python -m bench.bigtop_collect [--events 300] [--in-flight 6] [--repeat 3] [--latency-ms 0 50]

The fake site (tests/fakes/bigtop_site.py) serves N single events on loopback. For each per-file latency (0 ms is
loopback as is; 50 ms stands in for the real site's round trip) it times, alternately and `--repeat` times:
  browser  collect(): launch Chromium, open the page, GraphQL, N .ics through the page, parse, close
  httpx    the same N .ics URLs with one httpx.Client and the same number in flight (fetch only)
  httpx+p  the same plus the same iCal parsing, so the difference is the browser alone
  start-up Chromium launched and closed with nothing fetched: the browser's fixed cost
and prints the medians and the ratios browser/httpx (the goal is <= 1.5x), browser/httpx+p and start-up/httpx (a
floor no collection through Chromium can go under on this machine).
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from ingest_platform.bigtop.collector import collect
from ingest_platform.bigtop.ical import parse_ics
from tests.fakes.bigtop_site import FakeBigTopSite, bigtop_site, chromium_for_tests

WINDOW = {"window_start": datetime(2026, 1, 1, tzinfo=UTC), "window_end": datetime(2028, 1, 1, tzinfo=UTC)}


def populate(site: FakeBigTopSite, count: int) -> None:
    first = datetime(2026, 12, 1, 19)
    for number in range(count):
        start = first + timedelta(days=number // 3, hours=number % 3)
        site.add_event(
            f"event-{number:04d}",
            f"Event {number}",
            start,
            start + timedelta(hours=2),
            description="Live music on the patio. " * 8,
            categories=["Music"],
        )


def browser_run(site: FakeBigTopSite, in_flight: int) -> int:
    collection = collect(
        browser=chromium_for_tests(), options=site.options(delay_s=0.0, max_in_flight=in_flight, **WINDOW)
    )
    return len(collection.events)


def start_up_run() -> int:
    with chromium_for_tests().session():
        return 0


def httpx_run(site: FakeBigTopSite, in_flight: int, *, parse: bool) -> int:
    urls = [site.options().ics_url(slug) for slug in site.events]
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(max_workers=in_flight) as pool:
        texts = list(pool.map(lambda url: client.get(url).raise_for_status().text, urls))
    if not parse:
        return len(texts)
    return sum(len(parse_ics(text, **WINDOW).events) for text in texts)


def timed(run: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    count = run()
    return time.perf_counter() - started, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--in-flight", type=int, default=6, help="requests open at once, both clients")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 50.0])
    args = parser.parse_args()

    print(f"{args.events} events, {args.in_flight} in flight, delay 0, median of {args.repeat}")
    header = ("latency", "browser s", "httpx s", "httpx+p s", "start-up s", "browser/httpx", "browser/httpx+p")
    print("{:>9} {:>10} {:>8} {:>10} {:>11} {:>14} {:>16} {:>16}".format(*header, "start-up/httpx"))
    with bigtop_site() as site:
        populate(site, args.events)
        for latency_ms in args.latency_ms:
            site.ics_latency_s = latency_ms / 1000
            times: dict[str, list[float]] = {"browser": [], "httpx": [], "httpx+p": [], "start-up": []}
            for _ in range(args.repeat):
                elapsed, count = timed(lambda: browser_run(site, args.in_flight))
                assert count == args.events, f"browser collected {count} events"
                times["browser"].append(elapsed)
                times["httpx"].append(timed(lambda: httpx_run(site, args.in_flight, parse=False))[0])
                times["httpx+p"].append(timed(lambda: httpx_run(site, args.in_flight, parse=True))[0])
                times["start-up"].append(timed(start_up_run)[0])
            browser, plain, parsed, start_up = (statistics.median(values) for values in times.values())
            print(
                f"{latency_ms:>7g}ms {browser:>10.2f} {plain:>8.2f} {parsed:>10.2f} {start_up:>11.2f} "
                f"{browser / plain:>13.2f}x {browser / parsed:>15.2f}x {start_up / plain:>15.2f}x"
            )


if __name__ == "__main__":
    main()
