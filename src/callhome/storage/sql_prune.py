"""Retention in the SQL store: the old rows of a table deleted in bounded batches.

:func:`prune` deletes the rows of a table (events, audit, finished jobs) that are older than
a time or not among the newest so many, ``batch`` rows per transaction: each batch is one
call of the store's ``run``, so the store's other work goes between them and no
transaction holds the database for long. The SQL is portable: a DELETE whose ids come from
a SELECT with LIMIT, which SQLite and PostgreSQL both take.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, delete, func, select

Run = Callable[..., Awaitable[Any]]
"""A store's ``_run(fn, *args)``: ``fn(connection, *args)`` as one transaction."""


async def prune(
    run: Run,
    table: Table,
    when: ColumnElement[Any],
    *,
    before: float | None,
    keep: int | None,
    batch: int,
    only: ColumnElement[bool] | None = None,
) -> int:
    """Delete the rows of ``table`` (those ``only`` selects) whose ``when`` is before
    ``before``, and those not among the newest ``keep`` by id; how many were deleted."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    removed = 0
    if keep is not None:
        cut: int | None = await run(_cut, table, keep, only)
        if cut is not None:
            removed += await _in_batches(run, table, _both(table.c.id <= cut, only), batch)
    if before is not None:
        removed += await _in_batches(run, table, _both(when < before, only), batch)
    return removed


def _both(condition: ColumnElement[bool], only: ColumnElement[bool] | None) -> ColumnElement[bool]:
    return condition if only is None else and_(condition, only)


async def _in_batches(run: Run, table: Table, condition: ColumnElement[bool], batch: int) -> int:
    removed = 0
    while True:
        done: int = await run(_delete_some, table, condition, batch)
        removed += done
        if done < batch:
            return removed
        await asyncio.sleep(0)  # let the others in


def _cut(conn: Connection, table: Table, keep: int, only: ColumnElement[bool] | None) -> int | None:
    """The id at and below which rows (of those ``only`` selects) are not among the newest
    ``keep``; None when there are no more than ``keep`` of them."""
    lowest, highest = conn.execute(select(func.min(table.c.id), func.max(table.c.id))).one()
    if lowest is None or highest - lowest + 1 <= keep:  # ids are unique: cheap and sure
        return None
    stmt = select(table.c.id).order_by(table.c.id.desc()).limit(1).offset(keep)
    if only is not None:
        stmt = stmt.where(only)
    cut: int | None = conn.execute(stmt).scalar()
    return cut


def _delete_some(conn: Connection, table: Table, condition: ColumnElement[bool], batch: int) -> int:
    doomed = select(table.c.id).where(condition).limit(batch)
    count: int = conn.execute(delete(table).where(table.c.id.in_(doomed))).rowcount
    return count
