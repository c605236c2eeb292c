"""Backoff for the operator's credentials: each client address that keeps guessing waits.

The dashboard and the health endpoint take a token or a password. After a few
failed attempts from one address, that address must wait before it may try
again, and the wait doubles with each further failure (up to a cap); a success
forgets the address. Counted per process, in memory, for a bounded number of
addresses (the least recently seen are forgotten first).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Failed attempts per client address, and how long each must wait.

    ``free`` failures cost nothing; the next waits ``base`` seconds, then twice
    as long for each further one, at most ``cap``. ``timer`` is monotonic seconds.
    """

    def __init__(
        self,
        *,
        free: int = 5,
        base: float = 1.0,
        cap: float = 300.0,
        addresses: int = 4096,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.base, self.cap = free, base, cap
        self._addresses = addresses
        self._timer = timer
        # address -> (failures, may try again at)
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, address: str) -> float:
        """Seconds ``address`` must still wait before it may try (0.0: it may)."""
        entry = self._seen.get(address[:64])
        if entry is None:
            return 0.0
        return max(0.0, entry[1] - self._timer())

    def failed(self, address: str) -> float:
        """Count a failure of ``address``; the seconds it must now wait."""
        key = address[:64]
        with self._lock:
            failures = self._seen.get(key, (0, 0.0))[0] + 1
            over = failures - self.free
            pause = 0.0 if over <= 0 else min(self.cap, self.base * 2.0 ** min(over - 1, 30))
            self._seen[key] = (failures, self._timer() + pause)
            self._seen.move_to_end(key)
            while len(self._seen) > self._addresses:
                self._seen.popitem(last=False)
        return pause

    def succeeded(self, address: str) -> None:
        """``address`` got in: its failures are forgotten."""
        with self._lock:
            self._seen.pop(address[:64], None)

    def __len__(self) -> int:
        return len(self._seen)
