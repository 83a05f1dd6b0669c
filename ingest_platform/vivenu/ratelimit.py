"""A request-rate limiter for senders whose rate is judged at the receiver, safe to share between threads."""

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Permit:
    """One request: when it was let go, and when its answer (or error) came back."""

    started: float
    finished: float | None = None


class RateLimiter:
    """Lets requests go so that no one-second window at the receiver ever holds more than `rate` of them.

    A request cannot reach the receiver before it was let go, nor after its answer came back. So each request holds
    one of `burst` slots from the moment it is let go until `window` seconds after its answer, and a request goes
    only when a slot is free. If `burst` + 1 requests reached the receiver within `window`, then at the latest of
    those arrivals every one of them would still hold its slot (it had been let go, and its answer plus `window`
    lies beyond): `burst` + 1 slots at once, which the rule forbids. That holds however the sender, the network or
    the receiver delay them, and it does not hold up the rest for one slow answer: a request that hangs keeps
    only its own slot, and the others go on at `burst` - 1 per window until it is answered or times out. `burst`
    is the rate rounded down (1 below one per second), so below one request per second a hung request does hold
    everything until its timeout: its arrival time is unknown until then. `window` is one second (below one per
    second, one spacing) stretched by `headroom`, which only has to cover the difference between the two
    machines' clocks.

    Callers sleep until a slot of a steady schedule (one every `interval`), so they do not all wake at once; a
    caller that wakes too early for the rule above, or less than half an interval after the previous start (it
    woke late, together with another), waits for its turn. Use `with limiter.request():` around each request.
    """

    def __init__(
        self,
        rate: float,
        *,
        headroom: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if not 0 <= headroom < 1:
            raise ValueError(f"headroom must be in [0, 1), got {headroom}")
        self.burst = max(1, math.floor(rate))
        self.window = max(1.0, 1.0 / rate) / (1.0 - headroom)
        self.interval = self.window / self.burst
        self._min_spacing = self.interval / 2
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._scheduled: float | None = None
        self._holding: list[Permit] = []  # requests let go whose slot is not free yet
        self._last_start: float | None = None

    @contextmanager
    def request(self) -> Iterator[Permit]:
        """Wait for this request's turn; the block sends it (its end marks the answer)."""
        permit = self.acquire()
        try:
            yield permit
        finally:
            self.finish(permit)

    def acquire(self) -> Permit:
        """Block until a request may go; call `finish` with the permit once its answer or error is back."""
        self._sleep_until(self._reserve())
        while True:
            permit, not_before = self._try_start()
            if permit is not None:
                return permit
            self._sleep_until(not_before)

    def finish(self, permit: Permit) -> None:
        with self._lock:
            permit.finished = self._clock()

    def _reserve(self) -> float:
        """The next slot of the steady schedule; a slot nobody was ready for is not made up later."""
        with self._lock:
            now = self._clock()
            slot = now if self._scheduled is None else max(now, self._scheduled)
            self._scheduled = slot + self.interval
            return slot

    def _try_start(self) -> tuple[Permit | None, float]:
        with self._lock:
            now = self._clock()
            not_before = now if self._last_start is None else max(now, self._last_start + self._min_spacing)
            self._holding = [
                permit for permit in self._holding if permit.finished is None or permit.finished + self.window > now
            ]
            if len(self._holding) >= self.burst:
                frees_at = [permit.finished + self.window for permit in self._holding if permit.finished is not None]
                # All unanswered: any of them may be answered at any moment, so look again in a little while.
                not_before = max(not_before, min(frees_at) if frees_at else now + self._min_spacing / 2)
            if not_before > now:
                return None, not_before
            permit = Permit(started=now)
            self._holding.append(permit)
            self._last_start = now
            return permit, now

    def _sleep_until(self, moment: float) -> None:
        wait = moment - self._clock()
        if wait > 0:
            self._sleep(wait)
