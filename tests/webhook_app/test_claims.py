"""The claim stores behind the events dedup: first copy wins, expiry hands a key over, release gives it back."""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.webhook_app.intake_support import REDIS_URL, redis_prefix
from webhook_app.claims import RedisClaimStore, SqliteClaimStore, claim_store


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
