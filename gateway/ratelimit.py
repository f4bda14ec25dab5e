"""Brute-force protection for the token endpoint: too many failed sign-ins for one username or
from one address within a window answer 429 until the oldest failure leaves the window."""

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FailureLimiter:
    def __init__(
        self,
        *,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.window = window_seconds
        self.clock = clock
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        horizon = self.clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, key: str, limit: int) -> int | None:
        """Seconds to wait when `key` has `limit` recent failures, else None."""
        failures = self._recent(key)
        if len(failures) < limit:
            return None
        return max(1, int(failures[-limit] + self.window - self.clock()) + 1)

    def record_failure(self, key: str) -> None:
        failures = self._failures.setdefault(key, deque())
        failures.append(self.clock())
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)
