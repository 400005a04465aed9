"""Retention: the manager prunes what it keeps, at start and every ``[retention] interval``.

Events, finished jobs and audit entries older than their ``max_age`` (days) or past their
``max_rows`` (the newest kept) are deleted, in transactions of ``[retention] batch`` rows
(``Store.prune_*``). A queued or running job is never pruned. Time is given (``clock``) and
waiting is ``sleep``, so that tests run it without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from callhome.config import RetentionRule, RetentionSection
from callhome.storage import Store

log = logging.getLogger(__name__)

DAY = 86400.0


@dataclass(frozen=True)
class Pruned:
    """How many records one prune deleted."""

    events: int = 0
    jobs: int = 0
    audit: int = 0

    @property
    def total(self) -> int:
        return self.events + self.jobs + self.audit


def limits(rule: RetentionRule, now: float) -> tuple[float | None, int | None]:
    """``before`` and ``keep`` for a Store's ``prune_*`` (None where the rule sets none)."""
    before = None if rule.max_age == 0 else now - rule.max_age * DAY
    keep = None if rule.max_rows == 0 else rule.max_rows
    return before, keep


async def prune_once(store: Store, section: RetentionSection, now: float) -> Pruned:
    """Prune jobs, events and the audit log as ``section`` says, as of ``now``."""
    batch = section.batch
    before, keep = limits(section.jobs, now)
    jobs = await store.prune_jobs(before=before, keep=keep, batch=batch)
    before, keep = limits(section.events, now)
    events = await store.prune_events(before=before, keep=keep, batch=batch)
    before, keep = limits(section.audit, now)
    audit = await store.prune_audit(before=before, keep=keep, batch=batch)
    return Pruned(events=events, jobs=jobs, audit=audit)


class Retention:
    """The manager's pruning task: :meth:`run` until cancelled."""

    def __init__(
        self,
        store: Store,
        section: RetentionSection,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.section = section
        self._clock = clock
        self._sleep = sleep

    async def run(self) -> None:
        """Prune now, then every interval; a failed prune is logged and tried again."""
        while True:
            try:
                pruned = await prune_once(self.store, self.section, self._clock())
            except Exception:  # the next interval tries again
                log.exception("pruning the store failed")
            else:
                if pruned.total:
                    log.info(
                        "retention: pruned %d events, %d finished jobs and %d audit entries",
                        pruned.events,
                        pruned.jobs,
                        pruned.audit,
                    )
            await self._sleep(self.section.interval)
