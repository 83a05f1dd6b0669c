"""The search index on both backends: ranking of a small corpus, the trending tie-break, the atomic swap, the CLI."""

import threading
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from ingest_platform.app.search import rebuild_index, search
from ingest_platform.cli import main
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.tables import crawl_items, rule_metric_daily, rule_tags, rules
from tests.ingest_platform.assets.app_support import drop_search_index

AT = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_index_left_behind(warehouse: WarehouseResource):
    yield
    drop_search_index(warehouse)


def _add_rules(warehouse: WarehouseResource, *corpus: tuple[str, str, str | None, list[str]]) -> None:
    with warehouse.engine.begin() as connection:
        connection.execute(
            sa.insert(rules),
            [
                {
                    "rule_id": rule_id,
                    "author_id": "author",
                    "title": title,
                    "summary": summary,
                    "model": None,
                    "updated_at": AT,
                    "received_at": AT,
                    "request_id": "req",
                }
                for rule_id, title, summary, _ in corpus
            ],
        )
        tags = [{"rule_id": rule_id, "tag": tag} for rule_id, _, _, rule_tags_ in corpus for tag in rule_tags_]
        if tags:
            connection.execute(sa.insert(rule_tags), tags)


def _add_crawl_item(warehouse: WarehouseResource, external_id: str, title: str, summary: str | None) -> None:
    with warehouse.engine.begin() as connection:
        connection.execute(
            sa.insert(crawl_items),
            {
                "source_id": "partner",
                "external_id": external_id,
                "url": f"https://partner.example/{external_id}",
                "title": title,
                "summary": summary,
                "raw": None,
                "received_at": AT,
            },
        )


def _rebuild(warehouse: WarehouseResource) -> int:
    with warehouse.engine.connect() as connection:
        return rebuild_index(connection)


def _search(warehouse: WarehouseResource, terms: str, **kwargs):
    with warehouse.engine.connect() as connection:
        return search(connection, terms, **kwargs)


CORPUS = (
    ("r-title", "Window functions in SQL", "Rank and number rows per partition.", ["sql"]),
    ("r-tag", "Ranking rows", "Top N per group with a lateral join.", ["window", "sql"]),
    ("r-summary", "Moving averages", "A frame over a window of the seven previous days.", ["analytics"]),
    ("r-other", "Python logging", "Structured logs with context.", ["python"]),
    # Rules matching none of the terms: bm25's idf counts a word found in most documents as nearly worthless.
    *((f"r-filler-{n}", f"Filler topic {n}", "Nothing to see here.", ["misc"]) for n in range(10)),
)


def test_title_beats_tags_beats_summary_and_every_word_must_match(warehouse: WarehouseResource) -> None:
    _add_rules(warehouse, *CORPUS)
    _add_crawl_item(warehouse, "c-1", "A partner guide", "Windows and frames explained")

    assert _rebuild(warehouse) == 15

    hits = _search(warehouse, "window")
    assert [(hit.kind, hit.id) for hit in hits[:2]] == [("rule", "r-title"), ("rule", "r-tag")]
    assert [hit.id for hit in hits if hit.kind == "rule"] == ["r-title", "r-tag", "r-summary"]
    assert {(hit.kind, hit.id) for hit in hits} == {
        ("rule", "r-title"),
        ("rule", "r-tag"),
        ("rule", "r-summary"),
        ("crawl", "partner/c-1"),  # "Windows" stems to "window" on both backends
    }
    assert hits[0].score > hits[1].score > max(hit.score for hit in hits[2:])
    assert hits[1].tags == "sql window"
    assert [hit.id for hit in _search(warehouse, "window sql")] == ["r-title", "r-tag"]
    assert [hit.url for hit in _search(warehouse, "partner guide")] == ["https://partner.example/c-1"]
    assert _search(warehouse, "window", limit=1)[0].id == "r-title"
    assert _search(warehouse, "kubernetes") == []
    assert _search(warehouse, "  -- '\" ") == []  # no words: nothing, and no syntax error from the backend


TITLE_FIRST_CORPUS = (
    ("t-1", "Alpha joins", "Hash and merge.", []),
    ("t-2", "Alpha windows", "Frames.", []),
    ("t-3", "Alpha ranks", "Ties share a rank.", []),
    # The word in the tags and three times in the summary, never in the title.
    ("s-1", "Beta", "Alpha here, alpha there, alpha everywhere.", ["alpha"]),
    *((f"f-{n}", f"Filler {n}", "Nothing to see here.", ["misc"]) for n in range(10)),
)


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        pytest.param(3, {"t-1", "t-2", "t-3"}, id="enough-title-matches-rank-only-those"),
        pytest.param(4, {"t-1", "t-2", "t-3", "s-1"}, id="too-few-title-matches-rank-every-match"),
        pytest.param(2, None, id="ties-at-the-cut-stay-among-title-matches"),
    ],
)
def test_one_word_ranks_title_matches_first_however_often_elsewhere(
    warehouse: WarehouseResource, limit: int, expected: set[str] | None
) -> None:
    _add_rules(warehouse, *TITLE_FIRST_CORPUS)
    _rebuild(warehouse)

    hits = _search(warehouse, "alpha", limit=limit)

    assert len(hits) == limit
    assert {hit.id for hit in hits} <= (expected or {"t-1", "t-2", "t-3"})
    if expected is not None:
        assert {hit.id for hit in hits} == expected
    title_scores = [hit.score for hit in hits if hit.id.startswith("t-")]
    assert all(score > hit.score for hit in hits if hit.id == "s-1" for score in title_scores)


def test_search_before_any_rebuild_finds_nothing(warehouse: WarehouseResource) -> None:
    _add_rules(warehouse, *CORPUS)
    drop_search_index(warehouse)  # the PostgreSQL database is shared with earlier tests

    assert _search(warehouse, "window") == []


def test_a_rebuild_picks_up_changes_and_deletions(warehouse: WarehouseResource) -> None:
    _add_rules(warehouse, *CORPUS)
    _rebuild(warehouse)
    with warehouse.engine.begin() as connection:
        connection.execute(sa.update(rules).where(rules.c.rule_id == "r-other").values(title="Window logging"))
        connection.execute(sa.delete(rule_tags).where(rule_tags.c.rule_id == "r-tag"))

    assert "r-other" not in {hit.id for hit in _search(warehouse, "window")}
    _rebuild(warehouse)

    assert {hit.id for hit in _search(warehouse, "window")} == {"r-title", "r-summary", "r-other"}


def trending_row(day: date, rule_id: str, trending: float) -> dict:
    """A `rule_metric_daily` row that only carries a trending score (the search reads nothing else of it)."""
    counts = dict.fromkeys(("views", "copies", "saves", "forks", "votes", "events", "raw_views", "unique_viewers"), 0)
    return {"day": day, "rule_id": rule_id, **counts, "score": 0.0, "donations": 0, "trending": trending}


def test_trending_breaks_ties_between_equal_text_ranks(warehouse: WarehouseResource) -> None:
    twins = [(rule_id, "Window functions", "Rank rows.", ["sql"]) for rule_id in ("twin-a", "twin-b", "twin-c")]
    _add_rules(warehouse, *twins, ("solo", "Window functions window", "Rank rows.", ["sql"]))
    _rebuild(warehouse)
    without = [hit.id for hit in _search(warehouse, "window") if hit.id.startswith("twin")]

    with warehouse.engine.begin() as connection:
        connection.execute(
            sa.insert(rule_metric_daily),
            [
                # The newest day counts: yesterday's order was the other way round.
                trending_row(date(2026, 3, 1), "twin-a", 9.0),
                trending_row(date(2026, 3, 1), "twin-c", 1.0),
                trending_row(date(2026, 3, 2), "twin-a", 0.5),
                trending_row(date(2026, 3, 2), "twin-c", 4.0),
            ],
        )
    hits = _search(warehouse, "window")
    twins_ranked = [(hit.id, hit.trending) for hit in hits if hit.id.startswith("twin")]

    assert without == ["twin-a", "twin-b", "twin-c"]  # equal text rank, no trending: by id
    assert twins_ranked == [("twin-c", 4.0), ("twin-a", 0.5), ("twin-b", None)]
    assert len({hit.score for hit in hits if hit.id.startswith("twin")}) == 1
    assert hits[0].id == "solo"  # trending breaks ties only; it never lifts a weaker text match
    # A limit that cuts through the tie still picks by trending among all the tied documents.
    assert [hit.id for hit in _search(warehouse, "window", limit=2)] == ["solo", "twin-c"]


def test_a_reader_during_rebuilds_sees_the_old_or_the_new_index_never_an_empty_one(
    warehouse: WarehouseResource,
) -> None:
    batch = 300
    _add_rules(warehouse, *[(f"r{n:05d}", f"Common rule {n}", "shared words", ["common"]) for n in range(batch)])
    sizes = [_rebuild(warehouse)]
    seen: list[int] = []
    errors: list[BaseException] = []
    started, done = threading.Event(), threading.Event()

    def reader() -> None:
        try:
            with warehouse.engine.connect() as connection:
                while not done.is_set():
                    seen.append(len(search(connection, "common", limit=100_000)))
                    connection.rollback()  # a fresh snapshot for the next query
                    started.set()
        except BaseException as error:  # reported by the test thread below
            errors.append(error)
            started.set()

    thread = threading.Thread(target=reader)
    thread.start()
    started.wait(60)
    try:
        for round_ in range(1, 6):
            _add_rules(
                warehouse,
                *[(f"r{round_}-{n:05d}", f"Common rule {n}", "shared words", ["common"]) for n in range(batch)],
            )
            sizes.append(_rebuild(warehouse))
    finally:
        done.set()
        thread.join(60)

    assert not errors, errors
    assert sizes == [batch * n for n in range(1, 7)]
    assert seen, "the reader never queried"
    assert set(seen) <= set(sizes), sorted(set(seen) - set(sizes))
    assert seen == sorted(seen)  # never back to an older index either
    assert _search(warehouse, "common", limit=100_000).__len__() == sizes[-1]


def test_cli_prints_the_ranked_hits(warehouse: WarehouseResource, warehouse_url: str, monkeypatch, capsys) -> None:
    _add_rules(warehouse, *CORPUS)
    _rebuild(warehouse)
    monkeypatch.setenv("DATABASE_URL", warehouse_url)

    assert main(["app", "search", "window", "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[3] for line in lines] == ["r-title", "r-tag"]
    assert main(["app", "search", "kubernetes"]) == 1
    assert "no matches" in capsys.readouterr().err
