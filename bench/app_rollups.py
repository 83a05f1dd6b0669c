"""P4 rollups: one UTC day of app events on PostgreSQL → rule and author metrics and every leaderboard, next to one
bare `SELECT rule_id, type, count(*) … GROUP BY 1, 2` over the same day, in the same run.

    .venv/bin/python -m bench.app_rollups [--events 1000000] [--history-days 30] [--history-events N] [--rounds 3]

First the day alone (an empty history), then the same day again after `--history-days` earlier days (of
`--history-events` each, default the day's size) were loaded and rolled up (their trending, windows and cumulative
snapshots in place): the day's cost must stay flat as history grows. Data goes in with COPY. Goals: rollup <= 3x
the bare query; with history <= 1.3x the rollup of the day alone.
"""

import argparse
import io
import random
import time
from datetime import UTC, date, datetime, timedelta

from bench.common import median, scratch_postgres
from ingest_platform.app import rollups
from ingest_platform.resources.warehouse import WarehouseResource

TYPES = ["VIEW"] * 14 + ["COPY"] * 2 + ["SAVE"] * 2 + ["FORK", "VOTE"]
DAY = date(2026, 11, 1)


def copy_events(engine, day: date, count: int, *, rules: int, ips: int, seed: int) -> None:
    """`count` events spread over `day`, COPYed in chunks; a few busy IPs repeat VIEWs so the cap bites."""
    rng = random.Random(seed)
    start = datetime.combine(day, datetime.min.time(), UTC)
    chunk = 200_000
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            for offset in range(0, count, chunk):
                buffer = io.StringIO()
                for i in range(offset, min(count, offset + chunk)):
                    ts = (start + timedelta(seconds=rng.random() * 86_399)).isoformat(sep=" ")
                    ip = rng.randrange(50) if i % 10 == 0 else rng.randrange(ips)
                    buffer.write(
                        f"{day}:{i}\t\\N\t{rng.choice(TYPES)}\tr{rng.randrange(rules)}\t\\N\t{ts}\t{ts}\tip{ip}\tbench\n"
                    )
                buffer.seek(0)
                cursor.copy_expert(
                    "COPY app_events (event_id, idempotency_key, type, rule_id, user_id, ts, received_at, ip_hash, "
                    "request_id) FROM STDIN",
                    buffer,
                )
        raw.commit()
    finally:
        raw.close()


def copy_rules(engine, *, rules: int, authors: int, tags: int, models: int) -> None:
    rng = random.Random(7)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            rows, tag_rows = io.StringIO(), io.StringIO()
            for i in range(rules):
                model = f"model{rng.randrange(models)}" if i % 4 else "\\N"
                stamp = "2026-01-01 00:00:00+00"
                rows.write(f"r{i}\ta{rng.randrange(authors)}\tRule {i}\t{model}\t{stamp}\t{stamp}\tbench\n")
                for tag in rng.sample(range(tags), rng.randint(1, 3)):
                    tag_rows.write(f"r{i}\ttag{tag}\n")
            rows.seek(0)
            tag_rows.seek(0)
            cursor.copy_expert(
                "COPY rules (rule_id, author_id, title, model, updated_at, received_at, request_id) FROM STDIN", rows
            )
            cursor.copy_expert("COPY rule_tags (rule_id, tag) FROM STDIN", tag_rows)
        raw.commit()
    finally:
        raw.close()


def analyze(engine) -> None:
    raw = engine.raw_connection()
    try:
        # Committed: `autocommit` set on the pool's proxy never reached psycopg2, and the pool's rollback on
        # close undid the statistics, so the planner guessed every day's rows at 0.5 % of the table.
        with raw.cursor() as cursor:
            cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def bare_query(engine, day: date) -> float:
    import sqlalchemy as sa

    start, end = rollups.day_bounds(day)
    started = time.perf_counter()
    with engine.connect() as connection:
        connection.execute(
            sa.text("SELECT rule_id, type, count(*) FROM app_events WHERE ts >= :start AND ts < :end GROUP BY 1, 2"),
            {"start": start, "end": end},
        ).fetchall()
    return time.perf_counter() - started


def roll_up(engine, day: date, settings: rollups.RollupSettings) -> float:
    """What app_rollup_job does for one day: the three assets' steps, each in its own transaction."""
    started = time.perf_counter()
    with engine.begin() as connection:
        rollups.compute_rule_metrics(connection, day, settings)
    with engine.begin() as connection:
        rollups.compute_author_metrics(connection, day)
    with engine.begin() as connection:
        rollups.compute_leaderboards(connection, day, settings)
        rollups.record_day(connection, day)
    return time.perf_counter() - started


def measure(engine, day: date, settings, rounds: int) -> tuple[float, float]:
    bare, rollup = [], []
    for _ in range(rounds):  # interleaved, so a busy moment of the shared machine weighs on both
        bare.append(bare_query(engine, day))
        rollup.append(roll_up(engine, day, settings))
    return median(bare), median(rollup)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--history-days", type=int, default=30)
    parser.add_argument("--history-events", type=int, default=None, help="events per history day (default --events)")
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--ips", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = rollups.RollupSettings()
    history_events = args.history_events or args.events
    with scratch_postgres() as url:
        engine = WarehouseResource(database_url=url).engine
        copy_rules(engine, rules=args.rules, authors=args.rules // 10, tags=50, models=6)
        loading = time.perf_counter()
        copy_events(engine, DAY, args.events, rules=args.rules, ips=args.ips, seed=0)
        analyze(engine)
        print(f"loaded {args.events:,} events of {DAY} in {time.perf_counter() - loading:.1f} s")
        bare_alone, rollup_alone = measure(engine, DAY, settings, args.rounds)

        loading = time.perf_counter()
        history = [DAY - timedelta(days=n) for n in range(args.history_days, 0, -1)]
        for seed, day in enumerate(history, start=1):
            copy_events(engine, day, history_events, rules=args.rules, ips=args.ips, seed=seed)
        analyze(engine)
        print(f"loaded {len(history)} days of {history_events:,} events in {time.perf_counter() - loading:.1f} s")
        rolling = time.perf_counter()
        for day in history:
            roll_up(engine, day, settings)
        print(f"rolled up the history in {time.perf_counter() - rolling:.1f} s")
        bare_history, rollup_history = measure(engine, DAY, settings, args.rounds)

    print(f"\n{args.events:,} events on {DAY}, {args.rules:,} rules, median of {args.rounds} interleaved rounds")
    print(f"history: {args.history_days} days of {history_events:,} events")
    print(f"{'':38} {'bare GROUP BY':>14} {'rollup':>9} {'ratio':>7}")
    print(f"{'day alone':38} {bare_alone:13.3f}s {rollup_alone:8.3f}s {rollup_alone / bare_alone:6.2f}x   goal <= 3x")
    print(
        f"{f'after {args.history_days} days of history':38} {bare_history:13.3f}s {rollup_history:8.3f}s "
        f"{rollup_history / bare_history:6.2f}x"
    )
    print(f"rollup with history / rollup of the day alone: {rollup_history / rollup_alone:.2f}x   goal <= 1.3x")


if __name__ == "__main__":
    main()
