"""RateLimiter on an injected clock: the start times it admits, not wall time, are what it promises."""

import itertools
import random
import threading

import pytest

from ingest_platform.ratelimit import RateLimiter


class FakeClock:
    """A clock that moves only when told; sleeping moves it by the time slept plus a random overshoot."""

    def __init__(self, overshoots: list[float] | None = None) -> None:
        self.now = 100.0
        self._overshoots = overshoots or [0.0]
        self._random = random.Random(3)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + self._random.choice(self._overshoots)


def most_in_any_second(starts: list[float]) -> int:
    ordered = sorted(starts)
    return max(sum(1 for later in ordered[index:] if later < first + 1.0) for index, first in enumerate(ordered))


def test_steady_state_is_one_start_per_interval_from_the_first() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, headroom=0.03, clock=clock, sleep=clock.sleep)

    starts = [limiter.acquire() for _ in range(100)]

    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps == pytest.approx([1 / 19.4] * 99)


@pytest.mark.parametrize(("rate", "headroom"), [(20, 0.03), (40, 0.03), (5.5, 0.05), (1 / 1.8, 0.03)], ids=str)
def test_no_second_ever_holds_more_than_the_rate_whatever_the_stalls(rate: float, headroom: float) -> None:
    clock = FakeClock(overshoots=[0.0, 0.0, 0.0005, 0.004, 0.03, 0.2])
    limiter = RateLimiter(rate, headroom=headroom, clock=clock, sleep=clock.sleep)
    busy = random.Random(5)
    starts = []
    for _ in range(400):
        # The caller is busy elsewhere (a request, a commit, the scheduler) for a random while between starts.
        clock.now += busy.choice([0.0, 0.0, 0.001, 0.02, 0.15, 0.6])
        starts.append(limiter.acquire())
    assert most_in_any_second(starts) <= max(1, int(rate))
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) >= limiter.interval / 2 - 1e-9


def test_after_a_stall_it_resumes_the_steady_pace_without_a_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, headroom=0.03, clock=clock, sleep=clock.sleep)
    first = [limiter.acquire() for _ in range(5)]
    clock.now += 0.3  # the sender was held up: about six slots went by unused

    after = [limiter.acquire() for _ in range(10)]

    assert after[0] == pytest.approx(first[-1] + 0.3)
    gaps = [later - earlier for earlier, later in itertools.pairwise(after)]
    assert gaps == pytest.approx([1 / 19.4] * 9)


def test_callers_that_wake_up_late_together_do_not_start_together() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, headroom=0.03, clock=clock, sleep=clock.sleep)
    first, second = limiter.reserve(), limiter.reserve()
    clock.now += 0.3  # both sleepers were descheduled past their slots

    assert limiter.try_start(first) == pytest.approx(100.3)
    assert limiter.try_start(second) is None  # it queues for a new slot instead
    assert limiter.acquire() == pytest.approx(100.3 + 1 / 19.4 / 2)


def test_an_idle_limiter_does_not_save_up_a_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 60

    assert [limiter.reserve() for _ in range(3)] == pytest.approx([160.0, 160.1, 160.2])


def test_headroom_widens_the_spacing_and_the_window() -> None:
    limiter = RateLimiter(20, headroom=0.03)
    assert (limiter.interval, limiter.burst, limiter.window) == pytest.approx((1 / 19.4, 20, 20 / 19.4))
    assert RateLimiter(1 / 1.8).interval == pytest.approx(1.8)
    assert RateLimiter(5.5).burst == 5  # no second may hold 6


def test_threads_never_crowd_a_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(50, clock=clock, sleep=lambda seconds: None)
    slots: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(100):
            slot = limiter.reserve()  # every thread asks at the same instant
            with lock:
                slots.append(slot)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(slots)) == 800
    assert most_in_any_second(slots) <= 50


@pytest.mark.parametrize(("rate", "headroom"), [(0, 0), (-1, 0), (10, 1.0), (10, -0.1)], ids=str)
def test_rejects_impossible_settings(rate: float, headroom: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, headroom=headroom)
