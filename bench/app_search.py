"""Search index on PostgreSQL: the rebuild for 100k rules, and the p99 of 1,000 queries through `search()`.

    .venv/bin/python -m bench.app_search [--rules 100000] [--crawl-items 10000] [--queries 1000]

Baselines, measured in the same run on the same rows:
- rebuild: `CREATE TABLE … AS SELECT` of the same rules and crawl items with their tags (a plain copy, no index);
- query: a bare `SELECT rule_id, title FROM rules WHERE title ILIKE '%word%' LIMIT 20` for the same words.
Words follow a Zipf distribution over a 5,000-word vocabulary of content words (ranks from 100 on: the stop words
above them are what the `english` text configuration drops), so the commonest words are in about one document in
twelve. `--stop-word-ranks 0` keeps them, to see the worst case of a word found in nearly every document.
`rule_metric_daily` (the trending tie-break) holds one day with a score for every rule.
"""

import argparse
import random
import time
from datetime import UTC, date, datetime

import sqlalchemy as sa

from bench.common import median, percentile, scratch_postgres
from ingest_platform.app.search import rebuild_index, search
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.tables import crawl_items, rule_metric_daily, rule_tags, rules
from ingest_platform.warehouse.upsert import upsert

VOCABULARY = [
    f"{stem}{suffix}"
    for stem in ("sql", "py", "log", "win", "rank", "agg", "join", "text", "vec", "ml")
    for suffix in ("ation", "er", "ing", "ify", "ous", "al", "ment", "ness", "ist", "ly")
]
VOCABULARY += [f"term{n}" for n in range(5_000 - len(VOCABULARY))]
# Zipf over content words: the commonest words of real text are stop words, which the `english` configuration
# drops, so the distribution starts at rank 100. The commonest word is then in about one document in twelve.
STOP_WORD_RANKS = 100


def zipf_weights(first_rank: int) -> list[float]:
    return [1 / (rank + 1 + first_rank) for rank in range(len(VOCABULARY))]


WEIGHTS = zipf_weights(STOP_WORD_RANKS)


def words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choices(VOCABULARY, WEIGHTS, k=count))


def populate(engine: sa.Engine, *, rule_count: int, crawl_count: int) -> None:
    rng = random.Random(3)
    at = datetime(2026, 3, 1, tzinfo=UTC)
    rule_rows = [
        {
            "rule_id": f"rule-{n:06d}",
            "author_id": f"author-{n % 5_000}",
            "title": words(rng, rng.randint(3, 8)),
            "summary": words(rng, rng.randint(10, 40)),
            "model": rng.choice(["gpt-4o", "claude", "llama", None]),
            "updated_at": at,
            "received_at": at,
            "request_id": "bench",
        }
        for n in range(rule_count)
    ]
    tag_rows = [
        {"rule_id": row["rule_id"], "tag": tag}
        for row in rule_rows
        for tag in sorted(set(rng.choices(VOCABULARY[:200], k=rng.randint(0, 4))))
    ]
    crawl_rows = [
        {
            "source_id": f"partner-{n % 20}",
            "external_id": f"item-{n}",
            "url": f"https://partner.example/{n}",
            "title": words(rng, rng.randint(3, 8)),
            "summary": words(rng, rng.randint(10, 40)),
            "raw": None,
            "received_at": at,
        }
        for n in range(crawl_count)
    ]
    with engine.begin() as connection:
        upsert(connection, rules, rule_rows, key=["rule_id"])
        upsert(connection, rule_tags, tag_rows, key=["rule_id", "tag"])
        upsert(connection, crawl_items, crawl_rows, key=["source_id", "external_id"])
        count_columns = ("views", "copies", "saves", "forks", "votes", "events", "raw_views", "unique_viewers")
        counts = dict.fromkeys(count_columns, 0)
        trending_rows = [
            {
                "day": date(2026, 3, 1),
                "rule_id": row["rule_id"],
                **counts,
                "score": 0.0,
                "donations": 0,
                "trending": rng.random(),
            }
            for row in rule_rows
        ]
        upsert(connection, rule_metric_daily, trending_rows, key=["day", "rule_id"])
        connection.exec_driver_sql("ANALYZE")


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def plain_copy(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS bench_copy")
        connection.exec_driver_sql(
            """
            CREATE TABLE bench_copy AS
            SELECT r.rule_id, r.title, r.summary,
                   (SELECT string_agg(t.tag, ' ' ORDER BY t.tag) FROM rule_tags t WHERE t.rule_id = r.rule_id) AS tags
            FROM rules r
            UNION ALL
            SELECT c.source_id || '/' || c.external_id, c.title, c.summary, '' FROM crawl_items c
            """
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--crawl-items", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stop-word-ranks", type=int, default=STOP_WORD_RANKS)
    args = parser.parse_args()
    global WEIGHTS  # the generator's distribution, chosen once per run
    WEIGHTS = zipf_weights(args.stop_word_ranks)

    with scratch_postgres() as url:
        engine = WarehouseResource(database_url=url).engine
        populate(engine, rule_count=args.rules, crawl_count=args.crawl_items)
        copies, rebuilds = [], []
        for _ in range(args.rounds):
            copies.append(timed(lambda: plain_copy(engine)))

            def rebuild() -> None:
                with engine.connect() as connection:
                    rebuild_index(connection)

            rebuilds.append(timed(rebuild))

        rng = random.Random(11)
        queries = [words(rng, rng.choice((1, 1, 2))) for _ in range(args.queries)]
        searched, scanned, hits = [], [], []
        with engine.connect() as connection:
            for terms in queries[:20]:  # warm the caches of both paths
                search(connection, terms)
                connection.exec_driver_sql(
                    "SELECT rule_id, title FROM rules WHERE title ILIKE %(p)s LIMIT 20", {"p": f"%{terms}%"}
                ).all()
            for terms in queries:
                started = time.perf_counter()
                hits.append(len(search(connection, terms)))
                searched.append(time.perf_counter() - started)
                started = time.perf_counter()
                connection.exec_driver_sql(
                    "SELECT rule_id, title FROM rules WHERE title ILIKE %(p)s LIMIT 20", {"p": f"%{terms}%"}
                ).all()
                scanned.append(time.perf_counter() - started)
                connection.rollback()

    documents = args.rules + args.crawl_items
    print(f"search index, PostgreSQL, {args.rules:,} rules + {args.crawl_items:,} crawl items ({documents:,} docs)")
    print(f"  rebuild (build aside + swap)       median {median(rebuilds):7.2f} s")
    print(f"  baseline: plain CREATE TABLE AS    median {median(copies):7.2f} s")
    print(f"  rebuild / plain copy               {median(rebuilds) / median(copies):7.2f}x")
    print(f"{args.queries:,} queries (1-2 words, Zipf), limit 20, mean {sum(hits) / len(hits):.1f} hits")
    for name, values in (("search()", searched), ("baseline: title ILIKE", scanned)):
        print(
            f"  {name:<22} p50 {percentile(values, 0.5) * 1000:7.2f} ms  p99 {percentile(values, 0.99) * 1000:7.2f} ms"
        )
    print(f"  p99 search / p99 ILIKE             {percentile(searched, 0.99) / percentile(scanned, 0.99):7.2f}x")
    print(f"  goal p99 <= 50 ms: {'met' if percentile(searched, 0.99) <= 0.050 else 'NOT met'}")


if __name__ == "__main__":
    main()
