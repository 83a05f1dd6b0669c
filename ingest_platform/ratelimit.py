"""A request-rate limiter that schedules start times, safe to share between sender threads."""

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """Lets requests start so that no one-second window ever holds more than `rate` starts.

    Two parts, both under one lock:

    - a schedule hands each caller a slot to sleep until, one every `interval` (a slot nobody was ready for is
      lost, not made up later: with the steady pace at the window's limit there is no room to catch up);
    - an admission check when the caller wakes up, against the starts that really happened: at most `burst` starts
      (the rate rounded down; 1 below one per second) in any `window` (a second, or one spacing below one per
      second, stretched by `headroom`), and never closer than half an interval. A caller that woke too late to pass
      (its process was not scheduled in time) queues for a new slot instead of starting next to another.

    The window is checked on real start times, not on slots, so lateness can cost throughput but never breaks the
    promise; the headroom's margin absorbs the jitter between the start and the receiver's clock.
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
        self._scheduled: float | None = None  # the next slot of the steady schedule
        self._slots: deque[float] = deque()  # slots handed out and not yet used or given back, ascending
        self._starts: deque[float] = deque()  # real starts, back to one window before the newest

    def acquire(self) -> float:
        """Block until this caller may start; returns its start time on the limiter's clock."""
        while True:
            slot = self.reserve()
            wait = slot - self._clock()
            if wait > 0:
                self._sleep(wait)
            started = self.try_start(slot)
            if started is not None:
                return started

    def reserve(self) -> float:
        """Hand out the next slot to sleep until."""
        with self._lock:
            now = self._clock()
            slot = now if self._scheduled is None else max(now, self._scheduled)
            taken = sorted([*self._starts, *self._slots])
            if taken:
                slot = max(slot, taken[-1] + self._min_spacing)
            if len(taken) >= self.burst:
                slot = max(slot, taken[-self.burst] + self.window)
            self._scheduled = slot + self.interval
            self._slots.append(slot)
            return slot

    def try_start(self, slot: float) -> float | None:
        """Start now if the real starts leave room, and return the time; else give the slot back (None)."""
        with self._lock:
            self._slots.remove(slot)
            now = self._clock()
            if self._starts and now < self._starts[-1] + self._min_spacing:
                return None
            if len(self._starts) >= self.burst and now < self._starts[-self.burst] + self.window:
                return None
            self._starts.append(now)
            while self._starts[0] < now - self.window:
                self._starts.popleft()
            return now
