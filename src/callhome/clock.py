"""Time, passed in: one ``Clock`` for every service that keeps time.

Services take a :class:`Clock` instead of reading ``time`` or sleeping on the event loop, so
that a test drives their timers with a :class:`FakeClock` and never sleeps through a real
period (the way aioquic passes ``now`` around). A clock gives the wall time
(:meth:`~Clock.time`, seconds since the epoch: schedules and anchors), a monotonic time
(:meth:`~Clock.monotonic`: intervals) and waiting (:meth:`~Clock.sleep`, and
:meth:`~Clock.wait` for the first of some events or a timeout).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["SYSTEM", "Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going back."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...

    async def wait(self, events: Sequence[asyncio.Event], timeout: float | None) -> bool:
        """Wait until one of ``events`` is set (True) or ``timeout`` seconds have passed
        (False; None: no timeout)."""
        ...


class SystemClock:
    """The real time and the event loop's waiting."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, events: Sequence[asyncio.Event], timeout: float | None) -> bool:
        if any(e.is_set() for e in events):
            return True
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        return bool(done)


SYSTEM = SystemClock()
"""The clock services use unless given another."""


class FakeClock:
    """A clock that moves only when told (:meth:`advance`), for tests.

    ``time()`` starts at ``start`` and ``monotonic()`` at 0; both move together. Sleepers and
    timed waits wake, in the order of their deadlines, as :meth:`advance` passes them.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._start = start
        self._now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self._start + self._now

    def monotonic(self) -> float:
        return self._now

    @property
    def sleepers(self) -> int:
        """How many waits are pending (for tests that wait until a service is waiting)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def next_deadline(self) -> float | None:
        """Monotonic time of the next pending wait's deadline, if any."""
        pending = [d for d, _, f in self._sleepers if not f.done()]
        return min(pending) if pending else None

    def _timer(self, seconds: float) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._order), future))
        return future

    async def sleep(self, seconds: float) -> None:
        await self._timer(seconds)

    async def wait(self, events: Sequence[asyncio.Event], timeout: float | None) -> bool:
        if any(e.is_set() for e in events):
            return True
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(e.wait()) for e in events]
        timer = self._timer(timeout) if timeout is not None else None
        try:
            await asyncio.wait(
                [*waiters, *([timer] if timer is not None else [])],
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
            if timer is not None and not timer.done():
                timer.cancel()
        return any(e.is_set() for e in events)

    async def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, waking every wait whose deadline it passes, in order,
        and letting each woken task run before the next deadline."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            if future.done():
                continue
            self._now = max(self._now, deadline)
            future.set_result(None)
            for _ in range(20):  # let the woken task and what it starts run
                await asyncio.sleep(0)
        self._now = target
        for _ in range(20):
            await asyncio.sleep(0)
