"""The jobs SQL uses nothing only SQLite has, so that a PostgreSQL store can run it as is.

Every JobStore method runs against SQLite while each statement it executes is recorded; each
one must be a generic SQLAlchemy construct (no dialect's own insert, so no upsert), carry no
raw SQL text or prefixes (``INSERT OR ...``), call only functions both databases have, and
compile for PostgreSQL. The table and its indexes must compile for PostgreSQL too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar

import pytest
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ClauseElement, TextClause
from sqlalchemy.sql.functions import FunctionElement

from callhome.storage.jobs import JobInput, JobState, JobStore
from callhome.storage.schema import metadata
from callhome.storage.sql_jobs import SqlJobsMixin, jobs

_P = ParamSpec("_P")
_T = TypeVar("_T")

PORTABLE_FUNCTIONS = {"count", "min", "max", "coalesce", "length"}
T0 = 1_700_000_000.0


class Recorder(SqlJobsMixin):
    """The mixin over a synchronous SQLite engine, recording what it executes."""

    def __init__(self) -> None:
        self.engine = create_engine("sqlite://")
        metadata.create_all(self.engine)
        self.statements: list[ClauseElement] = []
        self.transactions: set[str] = set()
        event.listen(self.engine, "before_execute", self._record)

    def _record(self, _conn: Any, clause: Any, *_args: Any) -> None:
        self.statements.append(clause)

    async def _run(
        self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        self.transactions.add(fn.__name__)
        with self.engine.begin() as conn:
            return fn(conn, *args, **kwargs)


async def exercise(store: Recorder) -> None:
    """Call every JobStore method, along every branch that issues SQL."""
    for read_only in (True, False, False):
        await store.enqueue_job(
            "r1", "netconf", {"x": 1}, actor="a", now=T0, read_only=read_only, max_queued=9
        )
    await store.enqueue_job("r1", "netconf", {}, actor="a", now=T0, expires=T0 + 1)
    await store.claim_next_job("r1", T0, read_only_only=True)
    await store.claim_next_job("r1", T0)
    await store.finish_job(1, JobInput.SUCCEED, T0, {"reply": "<ok/>"})
    await store.set_job_retry_safe(2, True, T0)
    await store.recover_jobs(T0)
    await store.cancel_job(3, T0)
    await store.expire_jobs(T0 + 2)
    await store.get_job(1)
    await store.list_jobs(device="r1", state=None, after_id=0, limit=5, newest=True)
    await store.list_jobs(device=None, state=None, limit=5)
    await store.list_jobs(state=JobState.QUEUED)
    await store.next_not_before("r1")
    await store.next_not_before("r1", T0)
    await store.queue_length("r1")
    await store.list_job_summaries(device="r1", state=JobState.SUCCEEDED, limit=5, newest=True)
    await store.list_job_summaries(after_id=1)
    await store.cancel_device_jobs("r1", T0)
    await store.prune_jobs(before=T0 + 1, keep=1, batch=1)


def walk(clause: ClauseElement) -> Iterator[Any]:
    yield from visitors.iterate(clause)


def test_every_statement_is_portable() -> None:
    store = Recorder()
    try:
        asyncio.run(exercise(store))
    finally:
        store.engine.dispose()

    methods = {name for name in vars(JobStore) if not name.startswith("_")}
    assert methods <= set(vars(SqlJobsMixin)), "every JobStore method is in the mixin"
    assert len(store.transactions) >= 12
    assert store.statements
    for stmt in store.statements:
        assert type(stmt).__module__.startswith("sqlalchemy.sql."), type(stmt)
        assert not getattr(stmt, "_prefixes", ()), stmt
        for element in walk(stmt):
            assert not isinstance(element, TextClause), element
            assert "dialects" not in type(element).__module__, type(element)
            if isinstance(element, FunctionElement):
                assert element.name in PORTABLE_FUNCTIONS, element.name
        assert str(stmt.compile(dialect=postgresql.dialect()))


@pytest.mark.parametrize("ddl", [CreateTable(jobs), *(CreateIndex(i) for i in jobs.indexes)])
def test_the_table_compiles_for_postgresql(ddl: Any) -> None:
    text = str(ddl.compile(dialect=postgresql.dialect()))
    assert "AUTOINCREMENT" not in text.upper()
    if isinstance(ddl, CreateTable):
        assert "BIGSERIAL" in text.upper() or "BIGINT" in text.upper()
        assert "JSON" in text.upper()
