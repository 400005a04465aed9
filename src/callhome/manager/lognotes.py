"""Log lines that a flood cannot multiply: :class:`LogLimiter`.

The manager writes one line per connect, disconnect, refusal and protocol error, of a kind
(``connected``, ``unknown-device`` ...) and a key (a device's identity, a host). Under a
flood (thousands of fresh keys, a device that reconnects in a loop) that would be a line
per connection. The limiter lets through at most one line per kind and key per
``interval``, and at most ``burst`` lines of a kind per interval; what it holds back is
counted, and the count is said with the next line of that kind, or by :meth:`flush` once
an interval has passed. Time comes from ``clock`` (monotonic seconds), so tests pass
their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Kind:
    window: float
    """When the current interval of this kind began."""
    lines: int = 0
    """Lines let through in it."""
    held: int = 0
    """Lines held back since the last one let through (or flushed)."""
    held_since: float = 0.0
    """When the first of those was held back."""


@dataclass(frozen=True)
class Held:
    """Lines of ``kind`` held back: ``count`` of them over the last ``seconds``."""

    kind: str
    count: int
    seconds: float


class LogLimiter:
    """Decides which log lines of a kind and key are written (see the module)."""

    def __init__(
        self,
        interval: float = 30.0,
        burst: int = 20,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.interval = interval
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._kinds: dict[str, _Kind] = {}
        self._keys: dict[tuple[str, str], float] = {}

    def allow(self, kind: str, key: str) -> int | None:
        """None: keep this line back (it is counted). Otherwise write it: the number is
        how many lines of ``kind`` were held back since the last one written (say so)."""
        now = self._clock()
        state = self._kinds.get(kind)
        if state is None:
            state = self._kinds[kind] = _Kind(window=now)
        if now - state.window >= self.interval:
            state.window, state.lines = now, 0
        last = self._keys.get((kind, key))
        if (last is not None and now - last < self.interval) or state.lines >= self.burst:
            if state.held == 0:
                state.held_since = now
            state.held += 1
            return None
        self._remember(kind, key, now)
        state.lines += 1
        held, state.held = state.held, 0
        return held

    def flush(self) -> list[Held]:
        """Counts of lines held back for at least an interval and not said yet (each once)."""
        now = self._clock()
        due = []
        for kind, state in self._kinds.items():
            if state.held and now - state.held_since >= self.interval:
                due.append(Held(kind, state.held, now - state.held_since))
                state.held = 0
        return due

    def _remember(self, kind: str, key: str, now: float) -> None:
        keys = self._keys
        keys[(kind, key)] = now
        if len(keys) > self._max_keys:  # forget the keys whose interval is over
            self._keys = {k: t for k, t in keys.items() if now - t < self.interval}


def held_note(held: int) -> str:
    """What a line adds about the lines of its kind held back before it ("" for none)."""
    if not held:
        return ""
    return f" ({held} more like this not logged)"
