"""Failed sign-ins per client address, in this process's memory: a sliding window.

An admin token is 256 random bits, so guessing is hopeless; the limit keeps a scripted
attempt from filling the logs and the database with failures.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class FailedSignIns:
    def __init__(self, max_failures: int = 5, window_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self.clock()
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def retry_after(self, key: str) -> int | None:
        """None if ``key`` may try again now, else the seconds until it may."""
        failures = self._recent(key)
        if len(failures) < self.max_failures:
            return None
        return max(1, math.ceil(failures[0] + self.window - self.clock()))

    def failed(self, key: str) -> None:
        if len(self._failures) > 10_000:
            self._failures.clear()  # bounded memory under a spray of addresses
        self._recent(key).append(self.clock())
