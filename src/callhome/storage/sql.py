"""The Store in an SQL database, through SQLAlchemy Core.

``SqlStore(url)`` takes an SQLAlchemy URL. Every method is one transaction, written once as
a plain function over a ``Connection`` and carried out in one of two ways:

- with a synchronous SQLite driver (``sqlite:///path``, and a plain path given to
  :meth:`SqlStore.for_path` or ``open_store``), in a worker thread of the store's own: one
  thread hop per method, the fastest way to use SQLite from asyncio;
- with an asynchronous driver (``sqlite+aiosqlite:///path``, ``postgresql+asyncpg://...``),
  through SQLAlchemy's ``AsyncEngine`` and ``AsyncConnection.run_sync``.

The SQL is portable. The one statement that differs by dialect (an insert that updates on
conflict) is built by the dialect's own ``insert``, whose API is the same on SQLite and
PostgreSQL.

On SQLite the store holds one connection: SQLite lets one writer in at a time anyway, and a
single connection makes each transaction atomic without ``database is locked`` retries.
A new database file is made readable by its owner only (0600), and its directory (0700)
when that is made here too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from sqlalchemy import (
    JSON,
    Connection,
    Double,
    Engine,
    String,
    Table,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from callhome.errors import Conflict, NotFound, StoreError
from callhome.storage.model import (
    APPROVED_STATUSES,
    AuditEntry,
    Device,
    DeviceStatus,
    Event,
    EventKind,
    Noted,
    Schedule,
    ScheduleKind,
    after_eviction,
    json_detail,
    stored_schedule,
)
from callhome.storage.schema import (
    add_missing_columns,
    add_missing_indexes,
    audit,
    devices,
    events,
    metadata,
)
from callhome.storage.sql_jobs import SqlJobsMixin
from callhome.storage.sql_prune import prune

_P = ParamSpec("_P")
_T = TypeVar("_T")

# Columns in the order of the record's fields, so that a row maps onto it directly; the
# schedule (one field) is kept in columns of its own, last.
_SCHEDULE_FIELDS = tuple(f.name for f in dataclasses.fields(Schedule))
_SCHEDULE_COLUMNS = tuple(devices.c[f"schedule_{name}"] for name in _SCHEDULE_FIELDS)
_DEVICE_FIELDS = tuple(f.name for f in dataclasses.fields(Device) if f.name != "schedule")
_DEVICE_COLUMNS = (*(devices.c[name] for name in _DEVICE_FIELDS), *_SCHEDULE_COLUMNS)
_EVENT_COLUMNS = tuple(events.c[f.name] for f in dataclasses.fields(Event))
_AUDIT_COLUMNS = tuple(audit.c[f.name] for f in dataclasses.fields(AuditEntry))
_SELECT_DEVICE = select(*_DEVICE_COLUMNS)

_IS_APPROVED = or_(*(devices.c.status == s.value for s in sorted(APPROVED_STATUSES)))
_IS_ONLINE = devices.c.status == DeviceStatus.ONLINE.value

# Statements of the path every connecting device takes are built once, with named
# parameters (``p_...``); the others are built when used.
_FIND = _SELECT_DEVICE.where(devices.c.fingerprint == bindparam("p_fingerprint"))
_FIND_BY_NAME = _SELECT_DEVICE.where(devices.c.name == bindparam("p_name"))
_MARK_ONLINE = (
    update(devices)
    .where(devices.c.fingerprint == bindparam("p_fingerprint"), _IS_APPROVED)
    .values(
        status=DeviceStatus.ONLINE.value,
        status_since=case(
            (_IS_ONLINE, devices.c.status_since), else_=bindparam("p_now", type_=Double)
        ),
        last_seen=bindparam("p_now", type_=Double),
        address=bindparam("p_address", type_=String),
        orientation=bindparam("p_orientation", type_=String),
        capabilities=bindparam("p_capabilities", type_=JSON),
    )
    .returning(*_DEVICE_COLUMNS)
)
_MARK_OFFLINE = (
    update(devices)
    .where(devices.c.fingerprint == bindparam("p_fingerprint"), _IS_ONLINE)
    .values(
        status=DeviceStatus.OFFLINE.value,
        status_since=bindparam("p_now", type_=Double),
        last_seen=bindparam("p_now", type_=Double),
    )
    .returning(*_DEVICE_COLUMNS)
)
_APPEND = {table: insert(table).returning(table.c.id) for table in (events, audit)}


class SqlStore(SqlJobsMixin):
    """A Store in the database at ``url`` (an SQLAlchemy URL)."""

    def __init__(self, url: str | URL) -> None:
        self._url = make_url(url)
        self._file = _sqlite_file(self._url)
        options: dict[str, Any] = {}
        if self._file is not None:
            options.update(pool_size=1, max_overflow=0, pool_timeout=120)
        if self._url.get_dialect().is_async:
            self._runner: _AsyncRunner | _ThreadRunner = _AsyncRunner(self._url, options)
        else:
            self._runner = _ThreadRunner(self._url, options)
        self._open = False

    @classmethod
    def for_path(cls, path: str | os.PathLike[str]) -> Self:
        """A Store in the SQLite file at ``path``."""
        return cls(URL.create("sqlite+pysqlite", database=os.fspath(path)))

    @property
    def url(self) -> URL:
        return self._url

    def __repr__(self) -> str:
        return f"SqlStore({self._url.render_as_string(hide_password=True)!r})"

    async def open(self) -> None:
        if self._file is not None:
            await asyncio.to_thread(_create_private_file, self._file)
        await self._runner.start()
        self._open = True
        try:
            await self._run(metadata.create_all)
            await self._run(add_missing_columns)
            await self._run(add_missing_indexes)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        self._open = False
        await self._runner.stop()

    async def _run(
        self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """``fn(connection, ...)`` as one transaction; a broken uniqueness rule is Conflict."""
        if not self._open:
            raise StoreError("the store is not open")
        try:
            return await self._runner.run(fn, *args, **kwargs)
        except IntegrityError as exc:
            raise Conflict(f"the change clashes with a stored record: {exc.orig}") from exc

    # --- devices -------------------------------------------------------------------------

    async def device_by_fingerprint(self, fingerprint: str) -> Device | None:
        return await self._run(_find, fingerprint)

    async def device_by_name(self, name: str) -> Device | None:
        return await self._run(_find_by_name, name)

    async def list_devices(self) -> list[Device]:
        return await self._run(_list_devices)

    async def note_unknown(
        self, fingerprint: str, key_type: str, address: str | None, now: float
    ) -> Device:
        return await self._run(_note_unknown, fingerprint, key_type, address, now)

    async def note_pending(
        self,
        fingerprint: str,
        key_type: str,
        address: str | None,
        now: float,
        *,
        max_pending: int,
    ) -> Noted:
        return await self._run(_note_pending, fingerprint, key_type, address, now, max_pending)

    async def approve(
        self, fingerprint: str, name: str, now: float, *, credential: str | None = None
    ) -> Device:
        return await self._run(_approve, fingerprint, name, now, credential)

    async def pre_approve(
        self,
        fingerprint: str,
        key_type: str,
        name: str,
        now: float,
        *,
        credential: str | None = None,
    ) -> Device:
        return await self._run(_pre_approve, fingerprint, key_type, name, now, credential)

    async def reject(self, fingerprint: str, now: float) -> Device:
        return await self._run(_reject, fingerprint, now)

    async def forget(self, name: str) -> None:
        await self._run(_forget, name)

    async def mark_online(
        self,
        fingerprint: str,
        now: float,
        *,
        address: str | None,
        orientation: str,
        capabilities: Sequence[str],
        detail: Mapping[str, Any] | None = None,
    ) -> Device:
        event = None if detail is None else json_detail(detail)
        return await self._run(
            _mark_online, fingerprint, now, address, orientation, list(capabilities), event
        )

    async def mark_offline(
        self, fingerprint: str, now: float, *, detail: Mapping[str, Any] | None = None
    ) -> Device:
        event = None if detail is None else json_detail(detail)
        return await self._run(_mark_offline, fingerprint, now, event)

    async def mark_all_offline(self, now: float) -> int:
        return await self._run(_mark_all_offline, now)

    async def set_schedule(self, fingerprint: str, schedule: Schedule | None) -> Device:
        return await self._run(_set_schedule, fingerprint, stored_schedule(schedule))

    # --- events and audit ----------------------------------------------------------------

    async def record_event(
        self,
        kind: str,
        now: float,
        *,
        device: str | None = None,
        fingerprint: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Event:
        values: dict[str, Any] = {
            "time": now,
            "kind": str(kind),
            "device": device,
            "fingerprint": fingerprint,
            "detail": json_detail(detail),
        }
        new_id = await self._run(_append, events, values)
        return Event(id=new_id, **values)

    async def list_events(
        self,
        *,
        device: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        kinds: Sequence[str] | None = None,
        newest: bool = False,
    ) -> list[Event]:
        if limit <= 0:
            return []
        wanted = None if kinds is None else [str(k) for k in kinds]
        return await self._run(_list_events, device, after_id, limit, wanted, newest)

    async def record_audit(
        self,
        actor: str,
        action: str,
        target: str | None,
        now: float,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        values: dict[str, Any] = {
            "time": now,
            "actor": actor,
            "action": action,
            "target": target,
            "detail": json_detail(detail),
        }
        new_id = await self._run(_append, audit, values)
        return AuditEntry(id=new_id, **values)

    async def list_audit(
        self, *, after_id: int = 0, limit: int = 100, newest: bool = False
    ) -> list[AuditEntry]:
        if limit <= 0:
            return []
        return await self._run(_list_audit, after_id, limit, newest)

    # --- retention -------------------------------------------------------------------------

    async def prune_events(self, *, before: float | None, keep: int | None, batch: int) -> int:
        return await prune(self._run, events, events.c.time, before=before, keep=keep, batch=batch)

    async def prune_audit(self, *, before: float | None, keep: int | None, batch: int) -> int:
        return await prune(self._run, audit, audit.c.time, before=before, keep=keep, batch=batch)


# --- transactions: each runs on one Connection, in one transaction ----------------------


def _device(row: Any) -> Device:
    # Times go through float(): SQLite may hand back a whole REAL as an int (in RETURNING).
    (fp, key_type, name, status, since, address, first, last, orientation, caps, cred) = row[
        : len(_DEVICE_FIELDS)
    ]
    return Device(
        fingerprint=fp,
        key_type=key_type,
        name=name,
        status=DeviceStatus(status),
        status_since=float(since),
        address=address,
        first_seen=float(first),
        last_seen=float(last),
        orientation=orientation,
        capabilities=tuple(caps),
        credential=cred,
        schedule=_schedule(row[len(_DEVICE_FIELDS) :]),
    )


def _schedule(values: Sequence[Any]) -> Schedule | None:
    kind, since, period, anchor, idle_timeout = values
    if kind is None:
        return None
    return stored_schedule(
        Schedule(
            kind=ScheduleKind(kind),
            since=since,
            period=period,
            anchor=anchor,
            idle_timeout=idle_timeout,
        )
    )


def _schedule_values(schedule: Schedule | None) -> dict[str, Any]:
    """The schedule columns' values (all NULL for None)."""
    return {
        column.name: None if schedule is None else getattr(schedule, field)
        for field, column in zip(_SCHEDULE_FIELDS, _SCHEDULE_COLUMNS, strict=True)
    } | ({} if schedule is None else {"schedule_kind": schedule.kind.value})


def _one_device(
    conn: Connection, stmt: Any, params: Mapping[str, Any] | None = None
) -> Device | None:
    row = conn.execute(stmt, params).first()
    return None if row is None else _device(row)


def _find(conn: Connection, fingerprint: str) -> Device | None:
    return _one_device(conn, _FIND, {"p_fingerprint": fingerprint})


def _find_by_name(conn: Connection, name: str) -> Device | None:
    return _one_device(conn, _FIND_BY_NAME, {"p_name": name})


def _get(conn: Connection, fingerprint: str) -> Device:
    device = _find(conn, fingerprint)
    if device is None:
        raise NotFound(f"no device has fingerprint {fingerprint}")
    return device


def _list_devices(conn: Connection) -> list[Device]:
    return [_device(row) for row in conn.execute(_SELECT_DEVICE.order_by(devices.c.id))]


def _to_status(status: DeviceStatus, now: float) -> dict[str, Any]:
    """SET values that move a device to ``status``, keeping ``status_since`` if already there."""
    return {
        "status": status.value,
        "status_since": case(
            (devices.c.status == status.value, devices.c.status_since),
            else_=literal(now, Double),
        ),
    }


@functools.cache
def _note_unknown_statement(dialect: str) -> Any:
    """Insert a PENDING device, or bump one not approved: the dialect's own upsert."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = bindparam("p_now", type_=Double)
    stmt = dialect_insert(devices).values(
        fingerprint=bindparam("p_fingerprint", type_=String),
        key_type=bindparam("p_key_type", type_=String),
        name=None,
        status=DeviceStatus.PENDING.value,
        status_since=now,
        address=bindparam("p_address", type_=String),
        first_seen=now,
        last_seen=now,
        orientation=None,
        capabilities=[],
        credential=None,
    )
    return stmt.on_conflict_do_update(
        index_elements=[devices.c.fingerprint],
        set_={
            "last_seen": stmt.excluded.last_seen,
            "address": func.coalesce(stmt.excluded.address, devices.c.address),
        },
        where=~_IS_APPROVED,
    ).returning(*_DEVICE_COLUMNS)


def _note_unknown(
    conn: Connection, fingerprint: str, key_type: str, address: str | None, now: float
) -> Device:
    params = {
        "p_fingerprint": fingerprint,
        "p_key_type": key_type,
        "p_address": address,
        "p_now": now,
    }
    device = _one_device(conn, _note_unknown_statement(conn.dialect.name), params)
    # No row comes back when the device is known and approved: it is left as it is.
    return device or _get(conn, fingerprint)


_IS_PENDING = devices.c.status == DeviceStatus.PENDING.value
_COUNT_PENDING = select(func.count()).select_from(devices).where(_IS_PENDING)
_EVICT_CHUNK = 500  # fingerprints per DELETE: well within any driver's parameter limit


def _note_pending(
    conn: Connection,
    fingerprint: str,
    key_type: str,
    address: str | None,
    now: float,
    max_pending: int,
) -> Noted:
    device = _note_unknown(conn, fingerprint, key_type, address, now)
    if device.status is not DeviceStatus.PENDING:
        return Noted(device)
    pending: int = conn.execute(_COUNT_PENDING).scalar_one()
    if pending <= max_pending:
        return Noted(device)
    excess = pending - after_eviction(max_pending)
    oldest = (
        select(devices.c.fingerprint)
        .where(_IS_PENDING, devices.c.fingerprint != fingerprint)
        .order_by(devices.c.last_seen, devices.c.id)
        .limit(excess)
    )
    evicted = tuple(conn.execute(oldest).scalars())
    for start in range(0, len(evicted), _EVICT_CHUNK):
        chunk = evicted[start : start + _EVICT_CHUNK]
        conn.execute(delete(devices).where(devices.c.fingerprint.in_(chunk)))
    values = {
        "time": now,
        "kind": str(EventKind.PENDING_EVICTED),
        "device": None,
        "fingerprint": None,
        "detail": {"count": len(evicted), "max_pending": max_pending},
    }
    _append(conn, events, values)
    return Noted(device, evicted)


def _name_holder(conn: Connection, name: str, fingerprint: str) -> tuple[bool, str | None]:
    """Whether ``fingerprint`` is known, and which other fingerprint holds ``name``."""
    stmt = select(devices.c.fingerprint, devices.c.name).where(
        or_(devices.c.fingerprint == fingerprint, devices.c.name == name)
    )
    known, holder = False, None
    for row_fingerprint, row_name in conn.execute(stmt):
        if row_fingerprint == fingerprint:
            known = True
        elif row_name == name:
            holder = row_fingerprint
    return known, holder


def _check_free(name: str, holder: str | None) -> None:
    if holder is not None:
        raise Conflict(f"name {name!r} is bound to another key ({holder})")


def _bind(
    conn: Connection, fingerprint: str, name: str, now: float, credential: str | None
) -> Device:
    """Bind ``name`` and ``credential`` to a known device; one not approved goes OFFLINE."""
    stmt = (
        update(devices)
        .where(devices.c.fingerprint == fingerprint)
        .values(
            name=name,
            credential=credential,
            status=case(
                (_IS_APPROVED, devices.c.status),
                else_=literal(DeviceStatus.OFFLINE.value, String),
            ),
            status_since=case((_IS_APPROVED, devices.c.status_since), else_=literal(now, Double)),
        )
        .returning(*_DEVICE_COLUMNS)
    )
    return _device(conn.execute(stmt).one())


def _approve(
    conn: Connection, fingerprint: str, name: str, now: float, credential: str | None
) -> Device:
    known, holder = _name_holder(conn, name, fingerprint)
    if not known:
        raise NotFound(f"no device has fingerprint {fingerprint}")
    _check_free(name, holder)
    return _bind(conn, fingerprint, name, now, credential)


def _pre_approve(
    conn: Connection,
    fingerprint: str,
    key_type: str,
    name: str,
    now: float,
    credential: str | None,
) -> Device:
    known, holder = _name_holder(conn, name, fingerprint)
    _check_free(name, holder)
    if known:
        return _bind(conn, fingerprint, name, now, credential)
    stmt = (
        insert(devices)
        .values(
            fingerprint=fingerprint,
            key_type=key_type,
            name=name,
            status=DeviceStatus.OFFLINE.value,
            status_since=now,
            address=None,
            first_seen=now,
            last_seen=now,
            orientation=None,
            capabilities=[],
            credential=credential,
        )
        .returning(*_DEVICE_COLUMNS)
    )
    return _device(conn.execute(stmt).one())


def _reject(conn: Connection, fingerprint: str, now: float) -> Device:
    stmt = (
        update(devices)
        .where(devices.c.fingerprint == fingerprint)
        .values(name=None, credential=None, **_to_status(DeviceStatus.REFUSED, now))
        .returning(*_DEVICE_COLUMNS)
    )
    device = _one_device(conn, stmt)
    if device is None:
        raise NotFound(f"no device has fingerprint {fingerprint}")
    return device


def _forget(conn: Connection, name: str) -> None:
    if conn.execute(delete(devices).where(devices.c.name == name)).rowcount == 0:
        raise NotFound(f"no device is named {name!r}")


def _mark_online(
    conn: Connection,
    fingerprint: str,
    now: float,
    address: str | None,
    orientation: str,
    capabilities: list[str],
    event: dict[str, Any] | None = None,
) -> Device:
    params = {
        "p_fingerprint": fingerprint,
        "p_now": now,
        "p_address": address,
        "p_orientation": orientation,
        "p_capabilities": capabilities,
    }
    device = _one_device(conn, _MARK_ONLINE, params)
    if device is None:
        device = _get(conn, fingerprint)
        raise Conflict(f"device {fingerprint} is {device.status}, not approved")
    if event is not None:
        _status_event(conn, EventKind.CONNECTED, device, now, event)
    return device


def _mark_offline(
    conn: Connection, fingerprint: str, now: float, event: dict[str, Any] | None = None
) -> Device:
    device = _one_device(conn, _MARK_OFFLINE, {"p_fingerprint": fingerprint, "p_now": now})
    # No row comes back when the device was not online: it is left as it is.
    device = device or _get(conn, fingerprint)
    if event is not None:
        _status_event(conn, EventKind.DISCONNECTED, device, now, event)
    return device


def _status_event(
    conn: Connection, kind: str, device: Device, now: float, detail: dict[str, Any]
) -> None:
    """The connected/disconnected event, in the same transaction as the status change."""
    values = {
        "time": now,
        "kind": str(kind),
        "device": device.name,
        "fingerprint": device.fingerprint,
        "detail": detail,
    }
    _append(conn, events, values)


def _mark_all_offline(conn: Connection, now: float) -> int:
    stmt = (
        update(devices)
        .where(_IS_ONLINE)
        .values(status=DeviceStatus.OFFLINE.value, status_since=now)
    )
    return conn.execute(stmt).rowcount


def _set_schedule(conn: Connection, fingerprint: str, schedule: Schedule | None) -> Device:
    stmt = (
        update(devices)
        .where(devices.c.fingerprint == fingerprint)
        .values(**_schedule_values(schedule))
        .returning(*_DEVICE_COLUMNS)
    )
    device = _one_device(conn, stmt)
    if device is None:
        raise NotFound(f"no device has fingerprint {fingerprint}")
    return device


def _append(conn: Connection, table: Table, values: dict[str, Any]) -> int:
    """Insert one row into a log table; its new id."""
    new_id: int = conn.execute(_APPEND[table], values).scalar_one()
    return new_id


def _list_events(
    conn: Connection,
    device: str | None,
    after_id: int,
    limit: int,
    kinds: list[str] | None,
    newest: bool = False,
) -> list[Event]:
    stmt = select(*_EVENT_COLUMNS).where(events.c.id > after_id)
    if device is not None:
        stmt = stmt.where(events.c.device == device)
    if kinds is not None:
        stmt = stmt.where(events.c.kind.in_(kinds))
    order = events.c.id.desc() if newest else events.c.id
    stmt = stmt.order_by(order).limit(limit)
    found = [
        Event(id=i, time=float(t), kind=k, device=d, fingerprint=f, detail=detail)
        for i, t, k, d, f, detail in conn.execute(stmt)
    ]
    if newest:
        found.reverse()
    return found


def _list_audit(conn: Connection, after_id: int, limit: int, newest: bool) -> list[AuditEntry]:
    order = audit.c.id.desc() if newest else audit.c.id
    stmt = select(*_AUDIT_COLUMNS).where(audit.c.id > after_id).order_by(order).limit(limit)
    found = [
        AuditEntry(id=i, time=float(t), actor=actor, action=action, target=target, detail=detail)
        for i, t, actor, action, target, detail in conn.execute(stmt)
    ]
    return found[::-1] if newest else found


# --- runners: how a transaction is carried out ------------------------------------------


class _ThreadRunner:
    """Synchronous driver: every transaction in one worker thread of the store's own."""

    def __init__(self, url: URL, options: dict[str, Any]) -> None:
        self._engine: Engine = create_engine(url, **options)
        if url.get_backend_name() == "sqlite":
            event.listen(self._engine, "connect", _sqlite_pragmas)
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="callhome-store")

    async def stop(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._engine.dispose)
            executor.shutdown(wait=False)

    async def run(
        self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        assert self._executor is not None, "run() before start()"
        call = functools.partial(self._transaction, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _transaction(
        self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        with self._engine.begin() as conn:
            return fn(conn, *args, **kwargs)


class _AsyncRunner:
    """Asynchronous driver: every transaction through the AsyncEngine."""

    def __init__(self, url: URL, options: dict[str, Any]) -> None:
        self._engine: AsyncEngine = create_async_engine(url, **options)
        if url.get_backend_name() == "sqlite":
            event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self._engine.dispose()

    async def run(
        self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        async with self._engine.begin() as conn:
            return await conn.run_sync(fn, *args, **kwargs)


# --- SQLite specifics -------------------------------------------------------------------


def _sqlite_file(url: URL) -> Path | None:
    """The file an SQLite URL names, or None (another database, memory, a URI filename)."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or url.query.get("uri"):
        return None
    return Path(database)


def _create_private_file(path: Path) -> None:
    """Make an empty database file only its owner can read, unless it exists."""
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(f"cannot create the database file {path}: {exc}") from exc
    os.close(fd)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()
