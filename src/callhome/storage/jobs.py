"""Jobs: every operation asked of a device, durable, with one state machine.

The seed (section 7): "the manager cannot configure the agent until it connects and so
completion of a configuration request may be deferred ... The manager must retain
configuration requests." A job is such a retained request. The table below is the whole
life of a job; every Store moves jobs only through ``next_state``.

::

    queued ──claim──> running ──succeed──> succeeded
      │  │               │ ├────fail─────> failed
      │  │               │ ├──requeue────> queued           (not sent yet, or safe to resend)
      │  │               │ └──lost───────> outcome-unknown  (a write whose reply never came)
      │  ├──cancel──> cancelled
      │  └──expire──> expired

A write that was in flight when the manager died, or when the device's connection broke
after it was sent, cannot be resent blindly: it becomes ``outcome-unknown``, for an operator
to look at. A read-only job is resent. A job is also resent while it is marked
``retry_safe``: a write group between its confirmed commit and the confirming commit, whose
changes the device rolls back by itself if the confirm never comes (RFC 6241 section 8.4).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from callhome.errors import Conflict, ErrorTag, LocalProtocolError, QueueFull


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    OUTCOME_UNKNOWN = "outcome-unknown"

    @property
    def final(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


class JobInput(StrEnum):
    CLAIM = "claim"
    SUCCEED = "succeed"
    FAIL = "fail"
    REQUEUE = "requeue"
    LOST = "lost"
    CANCEL = "cancel"
    EXPIRE = "expire"


TRANSITIONS: Mapping[tuple[JobState, JobInput], JobState] = {
    (JobState.QUEUED, JobInput.CLAIM): JobState.RUNNING,
    (JobState.QUEUED, JobInput.CANCEL): JobState.CANCELLED,
    (JobState.QUEUED, JobInput.EXPIRE): JobState.EXPIRED,
    (JobState.RUNNING, JobInput.SUCCEED): JobState.SUCCEEDED,
    (JobState.RUNNING, JobInput.FAIL): JobState.FAILED,
    (JobState.RUNNING, JobInput.REQUEUE): JobState.QUEUED,
    (JobState.RUNNING, JobInput.LOST): JobState.OUTCOME_UNKNOWN,
}


def next_state(state: JobState, event: JobInput) -> JobState:
    """The state after ``event``; LocalProtocolError if the table has no such move."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(f"a {state.value} job cannot {event.value}") from None


def after_interruption(read_only: bool, retry_safe: bool) -> JobInput:
    """What to do with a job found running after a crash or a broken connection."""
    return JobInput.REQUEUE if read_only or retry_safe else JobInput.LOST


@dataclass(frozen=True, slots=True)
class Job:
    """One operation asked of one device.

    ``payload`` is what to send (for ``kind`` "netconf", the operation element as XML text;
    for a group, ``{"edits": [...]}``), ``result`` what came back, stored whole (the reply
    XML, or the rpc-errors with every field). Times are unix seconds.
    """

    id: int
    device: str
    kind: str
    payload: Mapping[str, Any]
    actor: str
    created: float
    not_before: float
    expires: float | None
    state: JobState
    updated: float
    attempts: int = 0
    read_only: bool = False
    retry_safe: bool = False
    result: Mapping[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.state.final


@dataclass(frozen=True, slots=True)
class JobSummary:
    """A job without its payload and result, for listings: ``operation`` is the payload's
    ``name`` (the NETCONF operation, ``snmp get`` ...) or else the kind, ``result_size``
    the length of the result's JSON text (0 while there is none)."""

    id: int
    device: str
    kind: str
    operation: str
    actor: str
    created: float
    not_before: float
    expires: float | None
    state: JobState
    updated: float
    attempts: int
    read_only: bool
    result_size: int


def summary_of(job: Job) -> JobSummary:
    """The summary of ``job`` (as every Store makes it)."""
    name = job.payload.get("name")
    return JobSummary(
        id=job.id,
        device=job.device,
        kind=job.kind,
        operation=name if isinstance(name, str) else job.kind,
        actor=job.actor,
        created=job.created,
        not_before=job.not_before,
        expires=job.expires,
        state=job.state,
        updated=job.updated,
        attempts=job.attempts,
        read_only=job.read_only,
        result_size=len(json.dumps(dict(job.result))) if job.result else 0,
    )


FINAL_STATES = tuple(state for state in JobState if state.final)
"""The states a job ends in (the only ones retention ever prunes)."""


def advance(job: Job, event: JobInput, now: float, result: Mapping[str, Any] | None = None) -> Job:
    """``job`` after ``event`` at ``now``: its next state, one attempt more for a claim,
    ``result`` when given (else the one it had). LocalProtocolError on an illegal move."""
    return replace(
        job,
        state=next_state(job.state, event),
        updated=now,
        attempts=job.attempts + 1 if event is JobInput.CLAIM else job.attempts,
        result=job.result if result is None else result,
    )


INTERRUPTED_BY_RESTART: Mapping[str, Any] = {
    "interrupted": "the manager stopped while the job was running"
}
"""The result a job found running at manager start is left with (by ``recover_jobs``)."""

FINISH_INPUTS = frozenset({JobInput.SUCCEED, JobInput.FAIL, JobInput.REQUEUE, JobInput.LOST})
"""The inputs that end a run (``JobStore.finish_job``); each moves a running job."""


def check_finish(event: JobInput) -> None:
    """LocalProtocolError unless ``event`` is one that ends a run."""
    if event not in FINISH_INPUTS:
        raise LocalProtocolError(f"{event.value} does not end a run of a job")


def event_kind(state: JobState) -> str:
    """The kind of the event recorded when a job enters ``state`` (``job-running`` ...)."""
    return f"job-{state.value}"


def event_detail(job: Job) -> dict[str, Any]:
    """The detail of the event recorded when ``job`` entered its state.

    It names the job and never holds its payload or its result (either may hold secrets);
    a final state adds a one-line ``summary``.
    """
    detail: dict[str, Any] = {
        "job": job.id,
        "state": job.state.value,
        "attempts": job.attempts,
        "kind": job.kind,
    }
    if job.final:
        detail["summary"] = job_summary(job)
    return detail


_ERROR_TAGS = frozenset(tag.value for tag in ErrorTag)
_MAX_TAGS = 4


def job_summary(job: Job) -> str:
    """How a job ended, in one line that is safe to log: from its state, its attempts and
    the rpc-error tags of its result (a fixed vocabulary), never from free text."""
    tries = f"{job.attempts} attempt{'' if job.attempts == 1 else 's'}"
    if job.state is JobState.SUCCEEDED:
        return f"succeeded after {tries}"
    if job.state is JobState.FAILED:
        tags = _error_tags(job.result)
        return f"failed after {tries}" + (f": {', '.join(tags)}" if tags else "")
    if job.state is JobState.OUTCOME_UNKNOWN:
        return f"sent, but its reply never came (after {tries}): the outcome is unknown"
    if job.state is JobState.CANCELLED:
        return "cancelled while queued"
    if job.state is JobState.EXPIRED:
        return "expired while queued"
    return job.state.value


def _error_tags(result: Mapping[str, Any]) -> list[str]:
    errors = result.get("errors")
    tags: list[str] = []
    if not isinstance(errors, list):
        return tags
    for error in errors:
        tag = error.get("tag") if isinstance(error, Mapping) else None
        if isinstance(tag, str) and tag in _ERROR_TAGS and tag not in tags:
            tags.append(tag)
    return tags[:_MAX_TAGS]


def queue_full(device: str, queued: int, limit: int) -> QueueFull:
    """The error for an enqueue refused because ``device`` has ``queued`` jobs waiting."""
    return QueueFull(
        f"device {device!r} already has {queued} queued jobs (the limit is {limit}):"
        " nothing was queued"
    )


def not_cancellable(job: Job) -> Conflict:
    """The error for cancelling ``job`` when it is not queued."""
    return Conflict(f"job {job.id} is {job.state.value}: only a queued job can be cancelled")


class JobStore(Protocol):
    """The jobs of a Store: durable requests that wait for their device.

    Every method is one transaction. A job changes state only as ``next_state`` allows, and
    each change appends an event (kind ``event_kind(state)``, device the job's device,
    detail ``event_detail(job)``) in the same transaction. Ids grow: the oldest job has the
    lowest id, and lists are in ascending id order. ``payload`` and ``result`` are kept as
    JSON keeps them (a fresh plain dict comes back each time). Times are given (``now``).
    """

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
        """Queue a job for ``device`` (the device's name), to run from ``not_before``
        (default ``now``) and only before ``expires`` (if given).

        Raises QueueFull, queueing nothing, if the device already has ``max_queued`` or
        more queued jobs; TypeError or ValueError if ``payload`` is not portable JSON.
        """
        ...

    async def claim_next_job(
        self, device: str, now: float, *, read_only_only: bool = False
    ) -> Job | None:
        """Start the oldest queued job of ``device`` that may run at ``now`` (``not_before``
        reached, ``expires`` not): it becomes running, with one attempt more.

        With ``read_only_only``, that oldest job is claimed only if it is read-only
        (otherwise None): no job ever overtakes an older one that may run. Two claims
        never get the same job. None if there is nothing to claim.
        """
        ...

    async def finish_job(
        self,
        job_id: int,
        event: JobInput,
        now: float,
        result: Mapping[str, Any] | None = None,
    ) -> Job:
        """End a run: SUCCEED, FAIL, REQUEUE or LOST a running job, storing ``result``
        whole (when given; otherwise the stored result is kept).

        Raises NotFound for an unknown id and LocalProtocolError for any other input or a
        job that is not running.
        """
        ...

    async def set_job_retry_safe(self, job_id: int, retry_safe: bool, now: float) -> Job:
        """Mark whether a queued or running job may be resent after an interruption.

        Not a change of state: no event. Raises NotFound, or Conflict if the job is final.
        """
        ...

    async def cancel_job(self, job_id: int, now: float) -> Job:
        """Cancel a queued job. Raises NotFound, or Conflict if the job is not queued."""
        ...

    async def expire_jobs(self, now: float) -> list[Job]:
        """Expire every queued job whose ``expires`` is at or before ``now``; those jobs."""
        ...

    async def recover_jobs(self, now: float) -> list[Job]:
        """At manager start: every job left running is requeued or, if it may not be resent
        (``after_interruption``), becomes outcome-unknown; those jobs."""
        ...

    async def get_job(self, job_id: int) -> Job:
        """The job with this id; raises NotFound if there is none."""
        ...

    async def list_jobs(
        self,
        *,
        device: str | None = None,
        state: JobState | None = None,
        after_id: int = 0,
        limit: int = 100,
        newest: bool = False,
    ) -> list[Job]:
        """Up to ``limit`` jobs with id above ``after_id``, optionally of one device and in
        one state, ascending; the first ones, or with ``newest`` the last ones."""
        ...

    async def list_job_summaries(
        self,
        *,
        device: str | None = None,
        state: JobState | None = None,
        after_id: int = 0,
        limit: int = 100,
        newest: bool = False,
    ) -> list[JobSummary]:
        """:meth:`list_jobs` as summaries: neither payload nor result is read."""
        ...

    async def prune_jobs(self, *, before: float | None, keep: int | None, batch: int) -> int:
        """Delete the finished jobs (a final state) last changed before ``before`` and
        those that are not among the newest ``keep`` finished jobs (None: no such limit),
        in transactions of at most ``batch`` each; how many were deleted. A queued or
        running job is never deleted, nor counted. Their events are the events' business
        (``prune_events``)."""
        ...

    async def next_not_before(self, device: str, now: float | None = None) -> float | None:
        """The earliest ``not_before`` among the queued jobs of ``device`` (None if none is
        queued), for a timer. Given ``now``, jobs already expired at ``now`` do not count."""
        ...

    async def queue_length(self, device: str) -> int:
        """How many jobs of ``device`` are queued."""
        ...

    async def cancel_device_jobs(self, device: str, now: float) -> list[Job]:
        """Cancel every queued job of ``device`` (which is being forgotten); those jobs.
        Running jobs are left to finish."""
        ...
