"""Which manager endpoint a device dials next, and after how long (sans-IO).

The rules follow the reconnect-strategy of the ietf-netconf-server call-home model:
``start-with`` (first-listed, last-connected, random-selection) picks where a round of
attempts begins; each endpoint gets ``max-attempts`` tries before the next one in the list;
when every endpoint failed, a new round begins. A device never gives up.

Between failed attempts the delay grows exponentially from ``initial`` to ``cap``, and a
random share (``jitter``) of it is taken off so that a fleet that lost its manager at once
does not return in lockstep. A connection that was up resets the delay: after it drops,
the device redials at once.

Randomness is passed in (``random.Random``) so that tests are deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from callhome.config import StartWith


@dataclass
class Attempt:
    """The next dial: which endpoint (index into the list) and how long to wait first."""

    endpoint: int
    delay: float


@dataclass
class ReconnectPlan:
    endpoints: int
    start_with: StartWith = StartWith.FIRST_LISTED
    max_attempts: int = 3
    initial: float = 0.5
    cap: float = 60.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)
    last_connected: int | None = None
    _current: int = -1
    _tries_here: int = 0
    _failures: int = 0

    def __post_init__(self) -> None:
        if self.endpoints < 1:
            raise ValueError("a device needs at least one endpoint")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def _round_start(self) -> int:
        if self.start_with is StartWith.LAST_CONNECTED and self.last_connected is not None:
            return self.last_connected
        if self.start_with is StartWith.RANDOM_SELECTION:
            return self.rng.randrange(self.endpoints)
        return 0

    def _delay(self) -> float:
        if self._failures == 0:
            return 0.0
        base = min(self.cap, self.initial * (2.0 ** (self._failures - 1)))
        share: float = self.rng.random()
        return base * (1.0 - self.jitter * share)

    def next_attempt(self) -> Attempt:
        """The next attempt to make; call failed() or connected() after it."""
        if self._current < 0:
            self._current = self._round_start()
            self._tries_here = 0
        elif self._tries_here >= self.max_attempts:
            self._current = (self._current + 1) % self.endpoints
            self._tries_here = 0
        self._tries_here += 1
        return Attempt(self._current, self._delay())

    def failed(self) -> None:
        """The last attempt did not give a connection."""
        self._failures += 1

    def connected(self, endpoint: int) -> None:
        """A connection to ``endpoint`` was made; the delay starts again from zero."""
        self.last_connected = endpoint
        self._failures = 0

    def disconnected(self) -> None:
        """The connection ended: the next round begins afresh, without delay."""
        self._current = -1
        self._tries_here = 0
