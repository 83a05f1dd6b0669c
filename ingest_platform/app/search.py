"""The full-text index over rules and crawl items, and the query that ranks it.

PostgreSQL: a table with a weighted `tsvector` (title A, tags B, summary C) and a GIN index, ranked by
`ts_rank` (not `ts_rank_cd`: cover density rewards words standing next to each other so much that two adjacent
tags outrank the same words in the title, which defeats the weights). SQLite: an FTS5 table (porter stemming),
ranked by `bm25` with the same order of weights.
A rebuild writes the whole index into a table aside, then swaps it in with one transaction (drop the live table,
rename the new one), so a reader sees the old index or the new one, never an empty or half-built one. The swap is
the only moment a reader may wait, and only for that transaction. The index tables are not in the SQLAlchemy
metadata (nor in a migration): the rebuild creates them, and they hold nothing that cannot be rebuilt.

Ranking: text rank first; among documents of equal text rank, the rule with the higher trending score (the newest
day of `rule_metric_daily`) comes first; then kind and id, so the order is deterministic.
"""

import re
import zlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ingest_platform.warehouse.tables import crawl_items, landing_ledger, rule_tags, rules

INDEX_TABLE = "search_documents"
BUILD_TABLE = "search_documents_next"
TRENDING_TABLE = "rule_metric_daily"
# bm25() weights of title, tags, summary: the same order as PostgreSQL's A > B > C.
FTS_WEIGHTS = (10.0, 4.0, 1.0)
TEXT_CONFIG = "english"
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class SearchHit:
    kind: str  # "rule" or "crawl"
    id: str  # the rule id, or "<source_id>/<external_id>" of a crawl item
    title: str
    summary: str | None
    tags: str
    url: str | None
    score: float  # the text rank: higher is better on both backends
    trending: float | None


def rebuild_index(connection: sa.Connection) -> int:
    """Build the index aside and swap it in; returns how many documents it holds. Commits its own transactions."""
    _serialize_rebuilds(connection)
    build = _build_postgresql if connection.dialect.name == "postgresql" else _build_sqlite
    count = build(connection)
    connection.commit()
    _serialize_rebuilds(connection)
    swap = _swap_postgresql if connection.dialect.name == "postgresql" else _swap_sqlite
    swap(connection)
    connection.commit()
    return count


def search(connection: sa.Connection, terms: str, *, limit: int = 20) -> list[SearchHit]:
    """The documents matching every word of `terms`, best first; empty when there are no words or no index."""
    words = _WORD.findall(terms)
    if not words or limit <= 0 or not sa.inspect(connection).has_table(INDEX_TABLE):
        return []
    if connection.dialect.name == "postgresql":
        query, parameters = _postgresql_query(), {"terms": " ".join(words)}
    else:
        query, parameters = _sqlite_query(), {"terms": " ".join(f'"{word}"' for word in words)}
    rows = connection.execute(sa.text(query), {**parameters, "limit": limit})
    return [SearchHit(**row._mapping) for row in rows]


# --- PostgreSQL -----------------------------------------------------------------------------------------------


def _documents_select(tags_aggregate: str) -> str:
    """Rules with their tags (space-separated) and crawl items (no tags), as one row shape."""
    return f"""
        SELECT 'rule' AS kind, r.rule_id AS id, r.rule_id AS rule_id, r.title, r.summary,
               COALESCE((SELECT {tags_aggregate} FROM {rule_tags.name} t WHERE t.rule_id = r.rule_id), '')
                   AS tags,
               NULL AS url
        FROM {rules.name} r
        UNION ALL
        SELECT 'crawl', c.source_id || '/' || c.external_id, NULL, c.title, c.summary, '', c.url
        FROM {crawl_items.name} c
    """


def _build_postgresql(connection: sa.Connection) -> int:
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {BUILD_TABLE}")
    connection.exec_driver_sql(
        f"""
        CREATE TABLE {BUILD_TABLE} AS
        SELECT d.kind, d.id, d.rule_id, d.title, d.summary, d.tags, d.url,
               setweight(to_tsvector('{TEXT_CONFIG}', d.title), 'A')
               || setweight(to_tsvector('{TEXT_CONFIG}', d.tags), 'B')
               || setweight(to_tsvector('{TEXT_CONFIG}', COALESCE(d.summary, '')), 'C') AS document,
               to_tsvector('{TEXT_CONFIG}', d.title) AS title_document
        FROM ({_documents_select("string_agg(t.tag, ' ' ORDER BY t.tag)")}) d
        """
    )
    connection.exec_driver_sql(f"CREATE INDEX {BUILD_TABLE}_document ON {BUILD_TABLE} USING GIN (document)")
    connection.exec_driver_sql(f"CREATE INDEX {BUILD_TABLE}_title ON {BUILD_TABLE} USING GIN (title_document)")
    connection.exec_driver_sql(f"CREATE UNIQUE INDEX {BUILD_TABLE}_id ON {BUILD_TABLE} (id, kind)")
    connection.exec_driver_sql(f"ANALYZE {BUILD_TABLE}")
    return connection.exec_driver_sql(f"SELECT count(*) FROM {BUILD_TABLE}").scalar_one()


def _swap_postgresql(connection: sa.Connection) -> None:
    # Readers of the old table finish first (the DROP waits for them); readers arriving during this transaction
    # wait for it and then, the name resolved again, read the new table.
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {INDEX_TABLE}")
    connection.exec_driver_sql(f"ALTER TABLE {BUILD_TABLE} RENAME TO {INDEX_TABLE}")
    for suffix in ("document", "title", "id"):
        connection.exec_driver_sql(f"ALTER INDEX {BUILD_TABLE}_{suffix} RENAME TO {INDEX_TABLE}_{suffix}")


def _postgresql_query() -> str:
    # Ranking every match of a common word is what a slow query spends its time on, so a one-word query ranks
    # only the documents with the word in their title when at least `limit` do. That is exact: with ts_rank's
    # weights (A 1.0, B 0.4, C 0.2) and no length normalization, one title occurrence alone rates a word
    # 1.0/1.645 (ts_rank divides by the sum of 1/i², π²/6), while every occurrence in tags and summary together
    # stays below 0.4 · 1.645/1.645 = 0.4; so every document with the word in its title outranks every one
    # without, and ties at the cut are among the title matches too. Queries of several words (an AND, ranked by
    # word proximity) rank all their matches: their intersections are small.
    # Among the ranked, keep those scoring at least the limit-th best (ties at the cut included, so the tie-break
    # sees all of them), and only then look up their trending scores and texts: joining the trending table to
    # every match cost more than ranking them.
    ranked = "CAST(ts_rank(s.document, q.query) AS DOUBLE PRECISION)"
    return f"""
        WITH q AS MATERIALIZED (SELECT plainto_tsquery('{TEXT_CONFIG}', :terms) AS query),
        titled AS MATERIALIZED (
            SELECT s.kind, s.id, s.rule_id, {ranked} AS score
            FROM {INDEX_TABLE} s CROSS JOIN q
            WHERE numnode(q.query) = 1 AND s.title_document @@ q.query
        ),
        ranked AS MATERIALIZED (
            SELECT * FROM titled WHERE (SELECT count(*) FROM titled) >= :limit
            UNION ALL
            SELECT s.kind, s.id, s.rule_id, {ranked}
            FROM {INDEX_TABLE} s CROSS JOIN q
            WHERE s.document @@ q.query AND (SELECT count(*) FROM titled) < :limit
        ),
        candidates AS (
            SELECT * FROM ranked
            WHERE score >= COALESCE(
                (SELECT score FROM ranked ORDER BY score DESC OFFSET :limit - 1 LIMIT 1), '-infinity'
            )
        )
        SELECT c.kind, c.id, s.title, s.summary, s.tags, s.url, c.score, m.trending AS trending
        FROM candidates c
        JOIN {INDEX_TABLE} s ON s.kind = c.kind AND s.id = c.id
        LEFT JOIN {TRENDING_TABLE} m ON m.rule_id = c.rule_id
            AND m.day = (SELECT max(day) FROM {TRENDING_TABLE})
        ORDER BY c.score DESC, trending DESC NULLS LAST, c.kind DESC, c.id
        LIMIT :limit
    """


# --- SQLite ---------------------------------------------------------------------------------------------------


def _build_sqlite(connection: sa.Connection) -> int:
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {BUILD_TABLE}")
    connection.exec_driver_sql(
        f"""
        CREATE VIRTUAL TABLE {BUILD_TABLE} USING fts5(
            title, tags, summary, kind UNINDEXED, id UNINDEXED, rule_id UNINDEXED, url UNINDEXED,
            tokenize = 'porter unicode61'
        )
        """
    )
    # group_concat has no ORDER BY before SQLite 3.44: tags come in the order the loader inserted them (sorted).
    tags = "group_concat(t.tag, ' ')"
    connection.exec_driver_sql(
        f"""
        INSERT INTO {BUILD_TABLE} (title, tags, summary, kind, id, rule_id, url)
        SELECT d.title, d.tags, COALESCE(d.summary, ''), d.kind, d.id, d.rule_id, d.url
        FROM ({_documents_select(tags)}) d
        """
    )
    return connection.exec_driver_sql(f"SELECT count(*) FROM {BUILD_TABLE}").scalar_one()


def _swap_sqlite(connection: sa.Connection) -> None:
    # One write transaction: WAL readers keep their snapshot of the old table until they start a new one.
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {INDEX_TABLE}")
    connection.exec_driver_sql(f"ALTER TABLE {BUILD_TABLE} RENAME TO {INDEX_TABLE}")


def _sqlite_query() -> str:
    trending_join = f"""LEFT JOIN {TRENDING_TABLE} m ON m.rule_id = s.rule_id
               AND m.day = (SELECT max(day) FROM {TRENDING_TABLE})"""
    trending_value = "m.trending"
    weights = ", ".join(str(weight) for weight in FTS_WEIGHTS)
    # bm25() is lower for better matches; its negation keeps "higher is better" on both backends.
    return f"""
        SELECT s.kind, s.id, s.title, NULLIF(s.summary, '') AS summary, s.tags, s.url,
               -bm25({INDEX_TABLE}, {weights}) AS score, {trending_value} AS trending
        FROM {INDEX_TABLE} s
        {trending_join}
        WHERE {INDEX_TABLE} MATCH :terms
        ORDER BY score DESC, trending IS NULL, trending DESC, s.kind DESC, s.id
        LIMIT :limit
    """


# --- both -----------------------------------------------------------------------------------------------------


def _serialize_rebuilds(connection: sa.Connection) -> None:
    """Open this transaction with a lock that makes concurrent rebuilds take turns (both build the same table).

    On SQLite the write statement also matters for atomicity: Python's sqlite3 opens a transaction only before
    a data change, so without it the DROP and the RENAME of the swap would each commit alone.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(INDEX_TABLE.encode())})
    else:
        connection.execute(sa.update(landing_ledger).where(sa.false()).values(rows=landing_ledger.c.rows))


def index_size(connection: sa.Connection) -> dict[str, Any]:
    """How many documents of each kind the live index holds (for the asset's metadata)."""
    if not sa.inspect(connection).has_table(INDEX_TABLE):
        return {"rule": 0, "crawl": 0}
    counts = dict(connection.exec_driver_sql(f"SELECT kind, count(*) FROM {INDEX_TABLE} GROUP BY kind").all())
    return {"rule": counts.get("rule", 0), "crawl": counts.get("crawl", 0)}
