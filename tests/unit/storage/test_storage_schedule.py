"""A device's call-home schedule as the manager learned it: kept beside the device."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from callhome.errors import NotFound
from callhome.storage import DeviceStatus, Schedule, ScheduleKind, SqlStore, Store

FP_A = "SHA256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
FP_B = "SHA256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
T0 = 1_700_000_000.25

PERIODIC = Schedule(
    kind=ScheduleKind.PERIODIC, since=T0 + 1, period=900.0, anchor=T0 - 60, idle_timeout=180.0
)
PERSISTENT = Schedule(kind=ScheduleKind.PERSISTENT, since=T0 + 2)

StoreFactory = Callable[[], Awaitable[Store]]


async def test_a_device_starts_with_no_schedule(store: Store) -> None:
    device = await store.pre_approve(FP_A, "ssh-ed25519", "r1", T0)
    assert device.schedule is None
    unknown = await store.note_unknown(FP_B, "ssh-ed25519", None, T0)
    assert unknown.schedule is None


async def test_the_schedule_is_kept_and_read_back(store: Store) -> None:
    await store.pre_approve(FP_A, "ssh-ed25519", "r1", T0)

    device = await store.set_schedule(FP_A, PERIODIC)

    assert device.schedule == PERIODIC
    assert device.status is DeviceStatus.OFFLINE and device.status_since == T0
    assert await store.device_by_fingerprint(FP_A) == device
    assert await store.device_by_name("r1") == device
    assert await store.list_devices() == [device]

    device = await store.set_schedule(FP_A, PERSISTENT)
    assert device.schedule == PERSISTENT
    assert (device.schedule.period, device.schedule.anchor, device.schedule.idle_timeout) == (
        None,
        None,
        None,
    )
    assert (await store.set_schedule(FP_A, None)).schedule is None


async def test_numbers_read_back_as_floats(store: Store) -> None:
    await store.pre_approve(FP_A, "ssh-ed25519", "r1", T0)
    whole = Schedule(kind=ScheduleKind.PERIODIC, since=10, period=60, anchor=0, idle_timeout=0)

    schedule = (await store.set_schedule(FP_A, whole)).schedule

    assert schedule == whole
    assert schedule is not None
    assert all(
        type(v) is float
        for v in (schedule.since, schedule.period, schedule.anchor, schedule.idle_timeout)
    )


async def test_the_schedule_outlives_connections_and_renames(store: Store) -> None:
    await store.pre_approve(FP_A, "ssh-ed25519", "r1", T0)
    await store.set_schedule(FP_A, PERIODIC)

    online = await store.mark_online(
        FP_A, T0 + 5, address="192.0.2.1:1", orientation="reverse-ssh", capabilities=["c"]
    )
    offline = await store.mark_offline(FP_A, T0 + 6)
    renamed = await store.approve(FP_A, "r2", T0 + 7)
    await store.mark_all_offline(T0 + 8)

    assert online.schedule == offline.schedule == renamed.schedule == PERIODIC
    assert (await store.device_by_name("r2")) == renamed


async def test_an_unknown_fingerprint_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.set_schedule(FP_A, PERSISTENT)


async def test_the_schedule_survives_a_restart(open_sql: StoreFactory) -> None:
    store = await open_sql()
    await store.pre_approve(FP_A, "ssh-ed25519", "r1", T0)
    await store.set_schedule(FP_A, PERIODIC)
    await store.close()

    store = await open_sql()
    device = await store.device_by_fingerprint(FP_A)
    assert device is not None and device.schedule == PERIODIC


# A devices table as the store made it before the schedule columns existed.
_OLD_DEVICES = """
CREATE TABLE devices (
    id INTEGER NOT NULL, fingerprint VARCHAR NOT NULL, key_type VARCHAR NOT NULL,
    name VARCHAR, status VARCHAR(16) NOT NULL, status_since FLOAT NOT NULL,
    address VARCHAR, first_seen FLOAT NOT NULL, last_seen FLOAT NOT NULL,
    orientation VARCHAR, capabilities JSON NOT NULL, credential VARCHAR,
    CONSTRAINT pk_devices PRIMARY KEY (id),
    CONSTRAINT uq_devices_fingerprint UNIQUE (fingerprint),
    CONSTRAINT uq_devices_name UNIQUE (name)
)
"""


@pytest.mark.parametrize("url", ["sqlite", "aiosqlite"])
async def test_a_database_from_before_the_schedule_opens(tmp_path: Path, url: str) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(_OLD_DEVICES)
        db.execute(
            "INSERT INTO devices VALUES (1, ?, 'ssh-ed25519', 'r1', 'offline', ?, NULL, ?, ?,"
            " 'reverse-ssh', '[\"c1\"]', NULL)",
            (FP_A, T0, T0, T0),
        )
    db.close()
    store = SqlStore.for_path(path) if url == "sqlite" else SqlStore(f"sqlite+aiosqlite:///{path}")

    await store.open()
    try:
        device = await store.device_by_name("r1")
        assert device is not None
        assert (device.fingerprint, device.capabilities, device.schedule) == (FP_A, ("c1",), None)
        assert (await store.set_schedule(FP_A, PERIODIC)).schedule == PERIODIC
    finally:
        await store.close()

    # and a second start finds nothing more to add
    await store.open()
    try:
        device = await store.device_by_fingerprint(FP_A)
        assert device is not None and device.schedule == PERIODIC
    finally:
        await store.close()
