"""A request-rate limiter that schedules start times, safe to share between sender threads."""

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Hands out start times at least `1 / rate` apart, in the order callers ask.

    Each `acquire()` reserves the next free slot under a lock and sleeps, outside the lock, until that slot, so any
    number of threads together never start more than `rate` requests in any one-second window, and a slow request
    never lets the next ones bunch up behind it. A caller that wakes up too late for its slot (the process was not
    scheduled, the machine is busy) forfeits it and queues for a new one instead of starting next to the callers
    that woke up on time. `headroom` (a fraction) keeps the achieved rate that much below the limit, so the jitter
    between the sender and the receiver cannot push a window over it.
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
        self.interval = 1.0 / (rate * (1.0 - headroom))
        # Lateness that cannot crowd a one-second window: at most half the headroom's share of a second, and half
        # an interval; a millisecond at least, which any sleep overshoots now and then.
        self.grace = max(0.001, min(self.interval / 2, headroom / 2))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot: float | None = None

    def reserve(self) -> float:
        """Reserve the next slot and return its start time on the limiter's clock."""
        with self._lock:
            now = self._clock()
            slot = now if self._next_slot is None else max(now, self._next_slot)
            self._next_slot = slot + self.interval
            return slot

    def acquire(self) -> float:
        """Block until this caller may start; returns the slot it starts in."""
        while True:
            slot = self.reserve()
            wait = slot - self._clock()
            if wait > 0:
                self._sleep(wait)
            if self._clock() - slot <= self.grace:
                return slot
