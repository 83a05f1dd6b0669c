"""The claim stores behind the events dedup: first copy wins, stage by stage; expiry hands a key over, release gives it
back; racing workers never both get a key."""

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.webhook_app.intake_support import REDIS_URL, redis_prefix
from webhook_app.claims import RedisClaimStore, SqliteClaimStore, claim_store, claimed_keys


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqliteClaimStore | RedisClaimStore]:
    if request.param == "sqlite":
        yield SqliteClaimStore(tmp_path / "claims.sqlite")
        return
    with redis_prefix() as prefix:
        yield RedisClaimStore(REDIS_URL, prefix=prefix)


def test_first_copy_of_a_key_wins(store) -> None:
    assert store.claim([("a", 60), ("b", 60), ("a", 60)]) == [True, True, False]
    assert store.claim([("b", 60), ("c", 60)]) == [False, True]


def test_release_gives_keys_back(store) -> None:
    store.claim([("a", 60), ("b", 60)])
    store.release(["a"])
    assert store.claim([("a", 60), ("b", 60)]) == [True, False]


def test_large_batch_spans_statements(store) -> None:
    claims = [(f"k{number}", 60) for number in range(6_000)] + [("k1", 60), ("k5999", 60)]
    got = store.claim(claims)
    assert got == [True] * 6_000 + [False, False]


def test_expired_claim_is_taken_over(tmp_path: Path) -> None:
    now = [1_000.0]
    store = SqliteClaimStore(tmp_path / "claims.sqlite", clock=lambda: now[0])
    assert store.claim([("view", 600)]) == [True]
    now[0] += 599.9
    assert store.claim([("view", 600)]) == [False]
    now[0] += 0.2
    assert store.claim([("view", 600), ("view", 600)]) == [True, False]


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://127.0.0.1:6379/0", RedisClaimStore),
        ("sqlite:////tmp/x/claims.sqlite", SqliteClaimStore),
        ("", SqliteClaimStore),
    ],
    ids=["redis", "sqlite-url", "default"],
)
def test_store_from_url(tmp_path: Path, url: str, kind: type) -> None:
    store = claim_store(url, landing_dir=tmp_path, key_prefix="p:")
    assert isinstance(store, kind)
    if not url:
        assert store.path == tmp_path / ".state" / "claims.sqlite"


def test_unknown_store_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CLAIMS_URL"):
        claim_store("memcached://x", landing_dir=tmp_path, key_prefix="p:")


def test_stages_run_in_row_order_and_stop_at_the_first_refusal(store) -> None:
    rows = [
        (("idem:a", 60), ("view:r", 60)),  # gets both
        (("idem:a", 60), ("view:s", 60)),  # a repeated key: its window is never tried
        (None, ("view:s", 60)),  # so this row gets the window the row above did not take
        (None, ("view:r", 60)),  # taken by the first row
        (None, None),  # nothing to claim
        (("idem:b", 60),),  # a shorter row
    ]
    passed = store.claim_in_stages(rows)
    assert passed == [2, 0, 2, 1, 2, 1]
    assert claimed_keys(rows, passed) == ["idem:a", "view:r", "view:s", "idem:b"]
    assert store.claim([("idem:a", 60), ("view:r", 60), ("view:s", 60), ("idem:b", 60), ("idem:c", 60)]) == [
        False,
        False,
        False,
        False,
        True,
    ]


def test_second_stage_waits_for_the_first_stage_of_every_row(store) -> None:
    # The later row's first-stage key is the earlier row's second-stage key: stage order decides, not row order.
    passed = store.claim_in_stages([(("x", 60), ("y", 60)), (("y", 60), None)])
    assert passed == [1, 2]


def test_nothing_to_claim_is_no_call(store) -> None:
    assert store.claim_in_stages([]) == []
    assert store.claim_in_stages([(None, None), ()]) == [2, 0]


def test_release_of_staged_claims_frees_them_all(store) -> None:
    rows = [((f"idem:{n}", 60), (f"view:{n}", 60)) for n in range(300)]
    passed = store.claim_in_stages(rows)
    store.release(claimed_keys(rows, passed))
    assert store.claim_in_stages(rows) == [2] * 300


@pytest.fixture(params=["sqlite", "redis"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list]:
    """Two stores on one backing store, each with its own connection, like two gunicorn workers."""
    if request.param == "sqlite":
        yield [SqliteClaimStore(tmp_path / "claims.sqlite") for _ in range(2)]
        return
    with redis_prefix() as prefix:
        yield [RedisClaimStore(REDIS_URL, prefix=prefix) for _ in range(2)]


def test_racing_claims_grant_each_key_once(two_stores) -> None:
    keys = [f"idem:{n}" for n in range(400)]
    orders = [keys, keys[::-1]]  # opposite orders, so the racers meet in the middle
    start = threading.Barrier(2)
    results: list[dict[str, int]] = [{}, {}]

    def racer(index: int) -> None:
        start.wait()
        # Many small requests, so their transactions and scripts interleave.
        for offset in range(0, len(keys), 20):
            chunk = orders[index][offset : offset + 20]
            passed = two_stores[index].claim_in_stages([((key, 60), (f"view:{key}", 60)) for key in chunk])
            results[index].update(zip(chunk, passed, strict=True))

    threads = [threading.Thread(target=racer, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [sorted((results[0][key], results[1][key])) for key in keys] == [[0, 2]] * len(keys)


def test_the_claims_file_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        store = SqliteClaimStore(tmp_path / ".state" / "claims.sqlite")
        assert store.claim([("view", 600)]) == [True]
    finally:
        os.umask(previous)

    names = ["claims.sqlite", "claims.sqlite-wal", "claims.sqlite-shm"]
    modes = {name: stat.S_IMODE((tmp_path / ".state" / name).stat().st_mode) for name in names}
    assert modes == dict.fromkeys(names, 0o600)
    assert stat.S_IMODE((tmp_path / ".state").stat().st_mode) == 0o700
