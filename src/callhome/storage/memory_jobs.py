"""Jobs in the store in memory: :class:`MemoryJobsMixin`.

It behaves as :class:`~callhome.storage.sql_jobs.SqlJobsMixin` does (one test suite runs
against both). No method awaits anything, so each one is atomic, as a transaction is.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from callhome.errors import Conflict, NotFound
from callhome.storage.jobs import (
    INTERRUPTED_BY_RESTART,
    Job,
    JobInput,
    JobState,
    JobSummary,
    advance,
    after_interruption,
    check_finish,
    event_detail,
    event_kind,
    not_cancellable,
    queue_full,
    summary_of,
)
from callhome.storage.model import Event, json_detail


class MemoryJobsMixin:
    """The JobStore methods of a store in memory, for ``class S(MemoryJobsMixin, MemoryStore)``.

    It relies on the store class to set, in its ``__init__``, ``self._events``: the list of
    :class:`~callhome.storage.model.Event` that :class:`~callhome.storage.memory.MemoryStore`
    keeps, in ascending id order, and to give new event ids by ``self._next_event_id()``.
    Each change of a job's state appends its event there, as ``MemoryStore.record_event``
    does. The mixin's own ``__init__`` passes its arguments on and then adds the jobs.
    """

    _events: list[Event]

    if TYPE_CHECKING:

        def _next_event_id(self) -> int: ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Ids start at 1 and grow (never reused, once pruned either): this dict is in id order.
        self._jobs: dict[int, Job] = {}
        self._last_job_id = 0
        # The ids of each device's queued jobs, ascending.
        self._job_queues: dict[str, list[int]] = {}

    async def enqueue_job(
        self,
        device: str,
        kind: str,
        payload: Mapping[str, Any],
        *,
        actor: str,
        now: float,
        read_only: bool = False,
        not_before: float | None = None,
        expires: float | None = None,
        max_queued: int | None = None,
    ) -> Job:
        stored = json_detail(payload)
        queue = self._job_queues.setdefault(device, [])
        if max_queued is not None and len(queue) >= max_queued:
            raise queue_full(device, len(queue), max_queued)
        self._last_job_id += 1
        job = Job(
            id=self._last_job_id,
            device=device,
            kind=kind,
            payload=stored,
            actor=actor,
            created=now,
            not_before=now if not_before is None else not_before,
            expires=expires,
            state=JobState.QUEUED,
            updated=now,
            attempts=0,
            read_only=read_only,
            retry_safe=False,
            result={},
        )
        self._jobs[job.id] = job
        queue.append(job.id)
        self._log_job(job, now)
        return _copy(job)

    async def claim_next_job(
        self, device: str, now: float, *, read_only_only: bool = False
    ) -> Job | None:
        for job_id in self._job_queues.get(device, ()):
            job = self._jobs[job_id]
            if job.not_before <= now and _alive(job, now):
                if read_only_only and not job.read_only:
                    return None
                return _copy(self._move(job, JobInput.CLAIM, now))
        return None

    async def finish_job(
        self,
        job_id: int,
        event: JobInput,
        now: float,
        result: Mapping[str, Any] | None = None,
    ) -> Job:
        check_finish(event)
        stored = None if result is None else json_detail(result)
        return _copy(self._move(self._get_job(job_id), event, now, stored))

    async def set_job_retry_safe(self, job_id: int, retry_safe: bool, now: float) -> Job:
        job = self._get_job(job_id)
        if job.final:
            raise Conflict(f"job {job_id} is {job.state.value}: a final job cannot change")
        job = dataclasses.replace(job, retry_safe=retry_safe, updated=now)
        self._jobs[job_id] = job
        return _copy(job)

    async def cancel_job(self, job_id: int, now: float) -> Job:
        job = self._get_job(job_id)
        if job.state is not JobState.QUEUED:
            raise not_cancellable(job)
        return _copy(self._move(job, JobInput.CANCEL, now))

    async def expire_jobs(self, now: float) -> list[Job]:
        due = sorted(
            job_id
            for queue in self._job_queues.values()
            for job_id in queue
            if not _alive(self._jobs[job_id], now)
        )
        return [_copy(self._move(self._jobs[i], JobInput.EXPIRE, now)) for i in due]

    async def recover_jobs(self, now: float) -> list[Job]:
        running = [j for j in self._jobs.values() if j.state is JobState.RUNNING]
        return [
            _copy(
                self._move(
                    job,
                    after_interruption(job.read_only, job.retry_safe),
                    now,
                    dict(INTERRUPTED_BY_RESTART),
                )
            )
            for job in running
        ]

    async def get_job(self, job_id: int) -> Job:
        return _copy(self._get_job(job_id))

    async def list_jobs(
        self,
        *,
        device: str | None = None,
        state: JobState | None = None,
        after_id: int = 0,
        limit: int = 100,
        newest: bool = False,
    ) -> list[Job]:
        if limit <= 0:
            return []
        found: list[Job] = []
        for job in self._jobs.values():
            if job.id <= after_id:
                continue
            if device is not None and job.device != device:
                continue
            if state is not None and job.state is not state:
                continue
            found.append(job)
            if not newest and len(found) >= limit:
                break
        return [_copy(job) for job in found[-limit:]]

    async def list_job_summaries(
        self,
        *,
        device: str | None = None,
        state: JobState | None = None,
        after_id: int = 0,
        limit: int = 100,
        newest: bool = False,
    ) -> list[JobSummary]:
        found = await self.list_jobs(
            device=device, state=state, after_id=after_id, limit=limit, newest=newest
        )
        return [summary_of(job) for job in found]

    async def prune_jobs(self, *, before: float | None, keep: int | None, batch: int) -> int:
        finished = [job for job in self._jobs.values() if job.final]
        doomed = [] if keep is None else finished[: max(len(finished) - keep, 0)]
        if before is not None:
            doomed += [job for job in finished[len(doomed) :] if job.updated < before]
        for job in doomed:
            del self._jobs[job.id]
        return len(doomed)

    async def next_not_before(self, device: str, now: float | None = None) -> float | None:
        times = [
            job.not_before
            for job in map(self._jobs.__getitem__, self._job_queues.get(device, ()))
            if now is None or _alive(job, now)
        ]
        return min(times, default=None)

    async def queue_length(self, device: str) -> int:
        return len(self._job_queues.get(device, ()))

    async def cancel_device_jobs(self, device: str, now: float) -> list[Job]:
        queued = list(self._job_queues.get(device, ()))
        return [_copy(self._move(self._jobs[i], JobInput.CANCEL, now)) for i in queued]

    # --- helpers -------------------------------------------------------------------------

    def _get_job(self, job_id: int) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job has id {job_id}")
        return job

    def _move(
        self,
        job: Job,
        event: JobInput,
        now: float,
        result: dict[str, Any] | None = None,
    ) -> Job:
        moved = advance(job, event, now, result)
        self._jobs[job.id] = moved
        queue = self._job_queues.setdefault(job.device, [])
        if job.state is JobState.QUEUED:
            queue.remove(job.id)
        if moved.state is JobState.QUEUED:
            bisect.insort(queue, job.id)
        self._log_job(moved, now)
        return moved

    def _log_job(self, job: Job, now: float) -> None:
        event = Event(
            id=self._next_event_id(),
            time=now,
            kind=event_kind(job.state),
            device=job.device,
            fingerprint=None,
            detail=json_detail(event_detail(job)),
        )
        self._events.append(event)


def _alive(job: Job, now: float) -> bool:
    """Whether ``job`` has not expired at ``now``."""
    return job.expires is None or job.expires > now


def _copy(job: Job) -> Job:
    """A copy whose payload and result are the caller's own, as read back from storage."""
    return dataclasses.replace(
        job, payload=json_detail(job.payload), result=json_detail(job.result)
    )
