"""RateLimiter on an injected clock: start times, not wall time, are what it promises."""

import itertools
import threading

import pytest

from ingest_platform.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []
        self.advance_on_sleep = False
        self.oversleep = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.advance_on_sleep:
            self.now += seconds + self.oversleep


def test_slots_are_one_interval_apart_from_the_first_request() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, clock=clock, sleep=clock.sleep)

    slots = [limiter.acquire() for _ in range(5)]

    assert slots == pytest.approx([100.0, 100.05, 100.10, 100.15, 100.20])
    assert clock.slept == pytest.approx([0.05, 0.10, 0.15, 0.20])


def test_a_caller_that_wakes_too_late_gives_up_its_slot_instead_of_bunching() -> None:
    clock = FakeClock()
    clock.advance_on_sleep = True
    limiter = RateLimiter(20, clock=clock, sleep=clock.sleep)
    assert limiter.acquire() == pytest.approx(100.0)
    clock.oversleep = 0.2  # the process was not scheduled for 200 ms

    late = limiter.acquire()

    assert late == pytest.approx(100.25)  # a fresh slot at the time it really woke, not 100.05
    clock.oversleep = 0.0
    assert limiter.acquire() == pytest.approx(100.30)


def test_an_idle_limiter_does_not_save_up_a_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 60

    assert [limiter.reserve() for _ in range(3)] == pytest.approx([160.0, 160.1, 160.2])


def test_headroom_keeps_the_spacing_that_much_wider() -> None:
    assert RateLimiter(20, headroom=0.03).interval == pytest.approx(1 / 19.4)
    assert RateLimiter(1 / 1.8).interval == pytest.approx(1.8)


def test_threads_never_share_or_crowd_a_slot() -> None:
    clock = FakeClock()
    limiter = RateLimiter(50, clock=clock, sleep=clock.sleep)
    slots: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(200):
            slot = limiter.reserve()
            with lock:
                slots.append(slot)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ordered = sorted(slots)
    assert len(ordered) == 1600
    gaps = [later - earlier for earlier, later in itertools.pairwise(ordered)]
    assert min(gaps) == pytest.approx(0.02)


@pytest.mark.parametrize(("rate", "headroom"), [(0, 0), (-1, 0), (10, 1.0), (10, -0.1)], ids=str)
def test_rejects_impossible_settings(rate: float, headroom: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, headroom=headroom)
