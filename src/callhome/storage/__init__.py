"""Storage: the one Store interface, its SQL implementation and a fake in memory.

Everything above this package reaches storage through :class:`Store` only::

    store = open_store("/var/lib/callhome/manager.db")
    await store.open()
    try:
        device = await store.device_by_fingerprint(fingerprint)
    finally:
        await store.close()
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from callhome.storage.base import Store
from callhome.storage.memory import MemoryStore
from callhome.storage.model import (
    AuditEntry,
    Device,
    DeviceStatus,
    Event,
    EventKind,
    Noted,
    Schedule,
    ScheduleKind,
)
from callhome.storage.sql import SqlStore

__all__ = [
    "AuditEntry",
    "Device",
    "DeviceStatus",
    "Event",
    "EventKind",
    "MemoryStore",
    "Noted",
    "Schedule",
    "ScheduleKind",
    "SqlStore",
    "Store",
    "open_store",
]

MEMORY_URL = "memory://"


def open_store(url_or_path: str | os.PathLike[str]) -> Store:
    """The Store that ``url_or_path`` names; the caller then awaits its ``open()``.

    ``memory://`` gives a :class:`MemoryStore`; any other ``scheme://`` is an SQLAlchemy
    async URL (``sqlite+aiosqlite:///...``, ``postgresql+asyncpg://...``); anything else is
    the path of an SQLite file.
    """
    if isinstance(url_or_path, str):
        if url_or_path in (MEMORY_URL, "memory:"):
            return MemoryStore()
        if "://" in url_or_path:
            return SqlStore(url_or_path)
    return SqlStore.for_path(url_or_path)


if TYPE_CHECKING:  # both implementations must satisfy the interface

    def _conforms(memory: MemoryStore, sql: SqlStore) -> tuple[Store, Store]:
        return memory, sql
