"""Jobs in the SQL store: the ``jobs`` table and the transactions on it.

:class:`SqlJobsMixin` gives a store class the :class:`~callhome.storage.jobs.JobStore`
methods. The class provides ``_run(fn, *args)``, which carries out ``fn(connection, *args)``
as one transaction, as :class:`~callhome.storage.sql.SqlStore` does::

    class SqlStore(SqlJobsMixin, ...): ...

Importing this module defines ``jobs`` on the shared ``metadata``, so a store opened after
that creates the table (in an existing database too). The module does not import
``callhome.storage.sql`` (which is to import it): it appends its events with its own
``INSERT`` on the ``events`` table, the same row ``SqlStore.record_event`` writes.

The SQL is portable: plain SELECT, INSERT and UPDATE, no upsert and no dialect's own
statement. A job moves by an UPDATE guarded by the state and attempts it was read with (a
claim adds an attempt, so that pair changes with every move that could come back to the
same state). Of two claims racing on a database with concurrent writers, one updates no row
and looks again; on SQLite, where the store holds one connection, no two ever race.
The queue limit of ``enqueue_job`` is a count then an insert: on a database with concurrent
writers (PostgreSQL at READ COMMITTED), enqueues racing for one device's last free place
may each get it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Double,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    case,
    cast,
    func,
    insert,
    or_,
    select,
    update,
)

from callhome.errors import Conflict, NotFound
from callhome.storage.jobs import (
    FINAL_STATES,
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
)
from callhome.storage.model import json_detail
from callhome.storage.schema import events, metadata
from callhome.storage.sql_prune import prune

_P = ParamSpec("_P")
_T = TypeVar("_T")

_CLAIM_TRIES = 8
"""How often a claim that lost a race looks again before it gives up (returns None)."""

jobs = Table(
    "jobs",
    metadata,
    # 64 bits on PostgreSQL, the rowid on SQLite (AUTOINCREMENT: an id is never reused).
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("device", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("actor", String, nullable=False),
    Column("created", Double, nullable=False),
    Column("not_before", Double, nullable=False),
    Column("expires", Double),
    Column("state", String(16), nullable=False),
    Column("updated", Double, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("read_only", Boolean, nullable=False),
    Column("retry_safe", Boolean, nullable=False),
    Column("result", JSON, nullable=False),
    # A device's queue, oldest first (claim, queue length, the next timer).
    Index(None, "device", "state", "id"),
    # Every job in one state (expiry each second, recovery at start).
    Index(None, "state", "expires"),
    # Finished jobs by when they finished (retention).
    Index(None, "state", "updated"),
    sqlite_autoincrement=True,
)

# Columns in the order of the record's fields, so that a row maps onto it directly.
_JOB_FIELDS = tuple(f.name for f in dataclasses.fields(Job))
_SELECT_JOB = select(*(jobs.c[name] for name in _JOB_FIELDS))
_IS_QUEUED = jobs.c.state == JobState.QUEUED.value
_IS_FINAL = jobs.c.state.in_([state.value for state in FINAL_STATES])
_NOT_EXPIRED = or_(jobs.c.expires.is_(None), jobs.c.expires > bindparam("p_now", type_=Double))

# Statements of the paths every job takes are built once, with named parameters (``p_...``).
_INSERT_JOB = insert(jobs).returning(jobs.c.id)
_INSERT_EVENT = insert(events)
_GET = _SELECT_JOB.where(jobs.c.id == bindparam("p_id", type_=Integer))
_OF_DEVICE = jobs.c.device == bindparam("p_device", type_=String)
_COUNT_QUEUED = select(func.count()).select_from(jobs).where(_OF_DEVICE, _IS_QUEUED)
_NEXT = (
    _SELECT_JOB.where(
        _OF_DEVICE,
        _IS_QUEUED,
        jobs.c.not_before <= bindparam("p_now", type_=Double),
        _NOT_EXPIRED,
    )
    .order_by(jobs.c.id)
    .limit(1)
)
_MOVE = (
    update(jobs)
    .where(
        jobs.c.id == bindparam("p_id", type_=Integer),
        jobs.c.state == bindparam("p_old_state", type_=String),
        jobs.c.attempts == bindparam("p_old_attempts", type_=Integer),
    )
    .values(
        state=bindparam("p_state", type_=String),
        updated=bindparam("p_now", type_=Double),
        attempts=bindparam("p_attempts", type_=Integer),
        result=bindparam("p_result", type_=JSON),
    )
)


class SqlJobsMixin:
    """The JobStore methods of an SQL store (see the module's docstring)."""

    if TYPE_CHECKING:

        async def _run(
            self,
            fn: Callable[Concatenate[Connection, _P], _T],
            *args: _P.args,
            **kwargs: _P.kwargs,
        ) -> _T:
            raise NotImplementedError

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
        values: dict[str, Any] = {
            "device": device,
            "kind": kind,
            "payload": json_detail(payload),
            "actor": actor,
            "created": now,
            "not_before": now if not_before is None else not_before,
            "expires": expires,
            "state": JobState.QUEUED.value,
            "updated": now,
            "attempts": 0,
            "read_only": read_only,
            "retry_safe": False,
            "result": {},
        }
        return await self._run(_enqueue, values, max_queued)

    async def claim_next_job(
        self, device: str, now: float, *, read_only_only: bool = False
    ) -> Job | None:
        return await self._run(_claim, device, now, read_only_only)

    async def finish_job(
        self,
        job_id: int,
        event: JobInput,
        now: float,
        result: Mapping[str, Any] | None = None,
    ) -> Job:
        check_finish(event)
        stored = None if result is None else json_detail(result)
        return await self._run(_finish, job_id, event, now, stored)

    async def set_job_retry_safe(self, job_id: int, retry_safe: bool, now: float) -> Job:
        return await self._run(_set_retry_safe, job_id, retry_safe, now)

    async def cancel_job(self, job_id: int, now: float) -> Job:
        return await self._run(_cancel, job_id, now)

    async def expire_jobs(self, now: float) -> list[Job]:
        return await self._run(_expire, now)

    async def recover_jobs(self, now: float) -> list[Job]:
        return await self._run(_recover, now)

    async def get_job(self, job_id: int) -> Job:
        return await self._run(_get, job_id)

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
        return await self._run(_list, device, state, after_id, limit, newest)

    async def list_job_summaries(
        self,
        *,
        device: str | None = None,
        state: JobState | None = None,
        after_id: int = 0,
        limit: int = 100,
        newest: bool = False,
    ) -> list[JobSummary]:
        if limit <= 0:
            return []
        return await self._run(_list_summaries, device, state, after_id, limit, newest)

    async def prune_jobs(self, *, before: float | None, keep: int | None, batch: int) -> int:
        return await prune(
            self._run, jobs, jobs.c.updated, before=before, keep=keep, batch=batch, only=_IS_FINAL
        )

    async def next_not_before(self, device: str, now: float | None = None) -> float | None:
        return await self._run(_next_not_before, device, now)

    async def queue_length(self, device: str) -> int:
        return await self._run(_queue_length, device)

    async def cancel_device_jobs(self, device: str, now: float) -> list[Job]:
        return await self._run(_cancel_device, device, now)


# --- transactions: each runs on one Connection, in one transaction ----------------------


def _job(row: Any) -> Job:
    # Times go through float(): SQLite may hand back a whole REAL as an int.
    (
        job_id,
        device,
        kind,
        payload,
        actor,
        created,
        not_before,
        expires,
        state,
        updated,
        attempts,
        read_only,
        retry_safe,
        result,
    ) = row
    return Job(
        id=job_id,
        device=device,
        kind=kind,
        payload=payload,
        actor=actor,
        created=float(created),
        not_before=float(not_before),
        expires=None if expires is None else float(expires),
        state=JobState(state),
        updated=float(updated),
        attempts=attempts,
        read_only=bool(read_only),
        retry_safe=bool(retry_safe),
        result=result,
    )


def _event_row(job: Job, now: float) -> dict[str, Any]:
    return {
        "time": now,
        "kind": event_kind(job.state),
        "device": job.device,
        "fingerprint": None,
        "detail": event_detail(job),
    }


def _get(conn: Connection, job_id: int) -> Job:
    row = conn.execute(_GET, {"p_id": job_id}).first()
    if row is None:
        raise NotFound(f"no job has id {job_id}")
    return _job(row)


def _move(
    conn: Connection,
    job: Job,
    event: JobInput,
    now: float,
    result: dict[str, Any] | None = None,
) -> Job | None:
    """Move ``job`` as read by ``event`` and log it; None if it changed since it was read."""
    moved = advance(job, event, now, result)
    params = {
        "p_id": job.id,
        "p_old_state": job.state.value,
        "p_old_attempts": job.attempts,
        "p_state": moved.state.value,
        "p_now": now,
        "p_attempts": moved.attempts,
        "p_result": moved.result,
    }
    if conn.execute(_MOVE, params).rowcount != 1:
        return None
    conn.execute(_INSERT_EVENT, _event_row(moved, now))
    return moved


def _move_one(
    conn: Connection,
    job_id: int,
    event: JobInput,
    now: float,
    result: dict[str, Any] | None = None,
) -> Job:
    job = _get(conn, job_id)
    if event is JobInput.CANCEL and job.state is not JobState.QUEUED:
        raise not_cancellable(job)
    moved = _move(conn, job, event, now, result)
    if moved is None:
        raise Conflict(f"job {job_id} changed while it was being moved; try again")
    return moved


def _move_all(
    conn: Connection,
    stmt: Any,
    params: Mapping[str, Any],
    now: float,
    event: JobInput | None,
) -> list[Job]:
    """Move every job ``stmt`` selects by ``event`` (None: as ``after_interruption`` says)."""
    moved: list[Job] = []
    for row in conn.execute(stmt, params).all():
        job = _job(row)
        if event is None:
            interrupted = after_interruption(job.read_only, job.retry_safe)
            done = _move(conn, job, interrupted, now, dict(INTERRUPTED_BY_RESTART))
        else:
            done = _move(conn, job, event, now)
        if done is not None:
            moved.append(done)
    return moved


def _enqueue(conn: Connection, values: dict[str, Any], max_queued: int | None) -> Job:
    device = values["device"]
    if max_queued is not None:
        queued: int = conn.execute(_COUNT_QUEUED, {"p_device": device}).scalar_one()
        if queued >= max_queued:
            raise queue_full(device, queued, max_queued)
    job_id = conn.execute(_INSERT_JOB, values).scalar_one()
    job = Job(id=job_id, **{**values, "state": JobState.QUEUED})
    conn.execute(_INSERT_EVENT, _event_row(job, job.created))
    return job


def _claim(conn: Connection, device: str, now: float, read_only_only: bool) -> Job | None:
    for _ in range(_CLAIM_TRIES):
        row = conn.execute(_NEXT, {"p_device": device, "p_now": now}).first()
        if row is None:
            return None
        job = _job(row)
        if read_only_only and not job.read_only:
            return None
        claimed = _move(conn, job, JobInput.CLAIM, now)
        if claimed is not None:
            return claimed
    return None


def _finish(
    conn: Connection,
    job_id: int,
    event: JobInput,
    now: float,
    result: dict[str, Any] | None,
) -> Job:
    return _move_one(conn, job_id, event, now, result)


def _cancel(conn: Connection, job_id: int, now: float) -> Job:
    return _move_one(conn, job_id, JobInput.CANCEL, now)


def _set_retry_safe(conn: Connection, job_id: int, retry_safe: bool, now: float) -> Job:
    job = _get(conn, job_id)
    if job.final:
        raise Conflict(f"job {job_id} is {job.state.value}: a final job cannot change")
    stmt = (
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.state == job.state.value)
        .values(retry_safe=retry_safe, updated=now)
    )
    if conn.execute(stmt).rowcount != 1:
        raise Conflict(f"job {job_id} changed while it was being marked; try again")
    return dataclasses.replace(job, retry_safe=retry_safe, updated=now)


def _expire(conn: Connection, now: float) -> list[Job]:
    stmt = _SELECT_JOB.where(
        _IS_QUEUED, jobs.c.expires <= bindparam("p_now", type_=Double)
    ).order_by(jobs.c.id)
    return _move_all(conn, stmt, {"p_now": now}, now, JobInput.EXPIRE)


def _recover(conn: Connection, now: float) -> list[Job]:
    stmt = _SELECT_JOB.where(jobs.c.state == JobState.RUNNING.value).order_by(jobs.c.id)
    return _move_all(conn, stmt, {}, now, None)


def _cancel_device(conn: Connection, device: str, now: float) -> list[Job]:
    stmt = _SELECT_JOB.where(_OF_DEVICE, _IS_QUEUED).order_by(jobs.c.id)
    return _move_all(conn, stmt, {"p_device": device}, now, JobInput.CANCEL)


def _list(
    conn: Connection,
    device: str | None,
    state: JobState | None,
    after_id: int,
    limit: int,
    newest: bool,
) -> list[Job]:
    stmt = _SELECT_JOB.where(jobs.c.id > after_id)
    if device is not None:
        stmt = stmt.where(jobs.c.device == device)
    if state is not None:
        stmt = stmt.where(jobs.c.state == state.value)
    order = jobs.c.id.desc() if newest else jobs.c.id
    found = [_job(row) for row in conn.execute(stmt.order_by(order).limit(limit))]
    if newest:
        found.reverse()
    return found


# A summary's columns: the payload's name (JSON, read in the database: the payload and the
# result never leave it) and the length of the result's JSON text (0 for ``{}``).
_RESULT_TEXT = cast(jobs.c.result, Text)
_SELECT_SUMMARY = select(
    jobs.c.id,
    jobs.c.device,
    jobs.c.kind,
    jobs.c.payload["name"].as_string(),
    jobs.c.actor,
    jobs.c.created,
    jobs.c.not_before,
    jobs.c.expires,
    jobs.c.state,
    jobs.c.updated,
    jobs.c.attempts,
    jobs.c.read_only,
    case((_RESULT_TEXT == "{}", 0), else_=func.length(_RESULT_TEXT)),
)


def _list_summaries(
    conn: Connection,
    device: str | None,
    state: JobState | None,
    after_id: int,
    limit: int,
    newest: bool,
) -> list[JobSummary]:
    stmt = _SELECT_SUMMARY.where(jobs.c.id > after_id)
    if device is not None:
        stmt = stmt.where(jobs.c.device == device)
    if state is not None:
        stmt = stmt.where(jobs.c.state == state.value)
    order = jobs.c.id.desc() if newest else jobs.c.id
    found = [
        JobSummary(
            id=job_id,
            device=device_name,
            kind=kind,
            operation=name if name is not None else kind,
            actor=actor,
            created=float(created),
            not_before=float(not_before),
            expires=None if expires is None else float(expires),
            state=JobState(job_state),
            updated=float(updated),
            attempts=attempts,
            read_only=bool(read_only),
            result_size=int(size or 0),
        )
        for (
            job_id,
            device_name,
            kind,
            name,
            actor,
            created,
            not_before,
            expires,
            job_state,
            updated,
            attempts,
            read_only,
            size,
        ) in conn.execute(stmt.order_by(order).limit(limit))
    ]
    if newest:
        found.reverse()
    return found


def _next_not_before(conn: Connection, device: str, now: float | None) -> float | None:
    stmt = select(func.min(jobs.c.not_before)).where(_OF_DEVICE, _IS_QUEUED)
    params: dict[str, Any] = {"p_device": device}
    if now is not None:
        stmt = stmt.where(_NOT_EXPIRED)
        params["p_now"] = now
    earliest = conn.execute(stmt, params).scalar_one()
    return None if earliest is None else float(earliest)


def _queue_length(conn: Connection, device: str) -> int:
    count: int = conn.execute(_COUNT_QUEUED, {"p_device": device}).scalar_one()
    return count
