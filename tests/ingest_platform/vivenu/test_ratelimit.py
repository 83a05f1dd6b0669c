"""RateLimiter on an injected clock: when it lets requests go, and what any receiver can then see."""

import itertools
import random
import threading

import pytest

from ingest_platform.vivenu.ratelimit import Permit, RateLimiter


class FakeClock:
    """A clock that moves only when told; sleeping moves it by the time slept plus a random overshoot."""

    def __init__(self, overshoots: list[float] | None = None) -> None:
        self.now = 100.0
        self._overshoots = overshoots or [0.0]
        self._random = random.Random(3)
        self.on_sleep = lambda: None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + self._random.choice(self._overshoots)
        self.on_sleep()


def most_in_any_second(times: list[float]) -> int:
    ordered = sorted(times)
    return max(sum(1 for later in ordered[index:] if later < first + 1.0) for index, first in enumerate(ordered))


def test_steady_state_is_one_request_per_interval_from_the_first() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, headroom=0.01, clock=clock, sleep=clock.sleep)

    starts = []
    for _ in range(100):
        with limiter.request() as permit:
            starts.append(permit.started)

    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps == pytest.approx([1 / 19.8] * 99)


@pytest.mark.parametrize(
    ("rate", "in_flight"), [(20, 1), (20, 4), (40, 8), (5.5, 3), (1 / 1.8, 2)], ids=lambda value: str(value)
)
def test_no_second_at_the_receiver_ever_holds_more_than_the_rate(rate: float, in_flight: int) -> None:
    """Whatever the stalls before a request, the delay after it is let go and the receiver's latency: each
    request reaches the receiver somewhere between its start and its answer."""
    clock = FakeClock(overshoots=[0.0, 0.0, 0.0005, 0.004, 0.03, 0.2])
    limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
    chance = random.Random(5)
    open_requests: list[tuple[Permit, float]] = []  # permit, when its answer comes back
    arrivals = []

    def answer_due() -> None:
        for permit, due in list(open_requests):
            if due <= clock.now:
                limiter.finish(permit)
                open_requests.remove((permit, due))

    clock.on_sleep = answer_due
    for _ in range(400):
        clock.now += chance.choice([0.0, 0.0, 0.001, 0.02, 0.15, 0.6])  # the sender busy elsewhere
        answer_due()
        while len(open_requests) >= in_flight:  # no free sender: wait for the first answer
            clock.now = min(due for _, due in open_requests)
            answer_due()
        permit = limiter.acquire()
        latency = chance.choice([0.001, 0.002, 0.05, 0.3, 0.3, 4.0])  # and now and then one that hangs
        arrivals.append(permit.started + chance.uniform(0, latency))
        open_requests.append((permit, permit.started + latency))

    assert most_in_any_second(arrivals) <= max(1, int(rate))


def test_a_hung_request_holds_only_its_own_slot_and_the_others_go_on() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4, clock=clock, sleep=clock.sleep)
    hung = limiter.acquire()

    def never_forever() -> None:
        assert clock.now < 1_000, "the other requests waited for the hung one"

    clock.on_sleep = never_forever
    others = []
    for _ in range(30):
        with limiter.request() as permit:
            others.append(permit.started)

    assert hung.finished is None
    assert most_in_any_second(others) == 3  # the hung request may still reach the receiver in any of them
    assert most_in_any_second([hung.started, *others]) <= 4


def test_below_one_a_second_an_unanswered_request_holds_back_the_next_until_a_window_after_its_answer() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0.5, clock=clock, sleep=clock.sleep)
    hanging = limiter.acquire()

    def answer_after_five_seconds() -> None:
        if hanging.finished is None and clock.now >= 105.0:
            limiter.finish(hanging)

    clock.on_sleep = answer_after_five_seconds
    second = limiter.acquire()

    assert second.started >= hanging.finished + limiter.window


def test_after_a_stall_it_resumes_the_steady_pace_without_a_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, headroom=0.01, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        with limiter.request():
            pass
    clock.now += 0.3

    starts = []
    for _ in range(10):
        with limiter.request() as permit:
            starts.append(permit.started)

    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert starts[0] == pytest.approx(clock.now - 9 / 19.8)
    assert gaps == pytest.approx([1 / 19.8] * 9)


def test_headroom_widens_the_spacing_and_the_window() -> None:
    limiter = RateLimiter(20, headroom=0.03)
    assert (limiter.interval, limiter.burst, limiter.window) == pytest.approx((1 / 19.4, 20, 20 / 19.4))
    assert RateLimiter(1 / 1.8).interval == pytest.approx(1.8)
    assert RateLimiter(5.5).burst == 5  # no second may hold 6


def test_threads_sharing_a_limiter_never_crowd_a_second() -> None:
    limiter = RateLimiter(400)
    starts: list[float] = []
    lock = threading.Lock()

    def send() -> None:
        for _ in range(40):
            with limiter.request() as permit, lock:
                starts.append(permit.started)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(starts) == 320
    assert most_in_any_second(starts) <= 400


@pytest.mark.parametrize(("rate", "headroom"), [(0, 0), (-1, 0), (10, 1.0), (10, -0.1)], ids=str)
def test_rejects_impossible_settings(rate: float, headroom: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, headroom=headroom)
