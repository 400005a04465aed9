"""One Store test suite, run against every implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from callhome.storage import MemoryStore, SqlStore, Store

# memory: the fake; sqlite: a file through the synchronous driver in the store's thread;
# aiosqlite: a file through SQLAlchemy's AsyncEngine (the road PostgreSQL takes too).
KINDS = ["memory", "sqlite", "aiosqlite"]
SQL_KINDS = ["sqlite", "aiosqlite"]


def make_store(kind: str, path: Path) -> Store:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SqlStore.for_path(path)
    return SqlStore(f"sqlite+aiosqlite:///{path}")


@pytest.fixture
def new_store(db_path: Path) -> Callable[[str], Store]:
    """Makes a store of a given kind on ``db_path`` (not opened)."""
    return lambda kind: make_store(kind, db_path)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "manager.db"


@pytest.fixture(params=KINDS)
async def store(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Store]:
    store = make_store(request.param, db_path)
    await store.open()
    yield store
    await store.close()


StoreFactory = Callable[[], Awaitable[Store]]


@pytest.fixture(params=SQL_KINDS)
async def open_sql(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[StoreFactory]:
    """Opens SQL stores on one database file (closing them all at the end)."""
    opened: list[Store] = []

    async def factory() -> Store:
        store = make_store(request.param, db_path)
        await store.open()
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()
