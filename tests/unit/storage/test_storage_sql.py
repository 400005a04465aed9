"""What only the SQL store has: a file, a life across restarts, concurrency."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from callhome.errors import Conflict, StoreError
from callhome.storage import DeviceStatus, MemoryStore, SqlStore, Store, open_store

StoreFactory = Callable[[], Awaitable[Store]]

T0 = 1_700_000_000.75


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_survives_close_and_reopen(open_sql: StoreFactory, db_path: Path) -> None:
    store = await open_sql()
    await store.note_unknown("SHA256:p", "ssh-ed25519", "192.0.2.1:1", T0)
    await store.pre_approve("SHA256:a", "ssh-ed25519", "router1", T0, credential="lab")
    device = await store.mark_online(
        "SHA256:a", T0 + 1, address="192.0.2.2:2", orientation="turn", capabilities=["c1"]
    )
    event = await store.record_event("connected", T0 + 1, device="router1", detail={"n": [1]})
    entry = await store.record_audit("alice", "pre-approve", "router1", T0)
    devices = await store.list_devices()
    await store.close()

    store = await open_sql()
    assert await store.list_devices() == devices
    assert await store.device_by_name("router1") == device
    assert await store.list_events() == [event]
    assert await store.list_audit() == [entry]
    # Ids keep growing across a restart.
    assert (await store.record_event("x", T0 + 2)).id == event.id + 1
    assert await store.mark_all_offline(T0 + 3) == 1
    assert db_path.exists()


async def test_the_store_may_be_reopened(open_sql: StoreFactory) -> None:
    store = await open_sql()
    await store.close()
    await store.open()
    await store.note_unknown("SHA256:p", "ssh-ed25519", None, T0)
    assert len(await store.list_devices()) == 1


async def test_database_files_are_private(open_sql: StoreFactory, db_path: Path) -> None:
    store = await open_sql()
    await store.record_event("x", T0)  # a write, so that WAL files exist

    assert mode(db_path) == 0o600
    assert mode(db_path.parent) == 0o700
    wal = db_path.with_name(db_path.name + "-wal")
    assert wal.exists(), "the database is in WAL mode"
    assert mode(wal) == 0o600


async def test_an_existing_file_and_directory_are_left_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "manager.db"
    path.touch()
    os.chmod(path, 0o640)
    before = mode(tmp_path)

    store = SqlStore.for_path(path)
    await store.open()
    await store.close()

    assert (mode(path), mode(tmp_path)) == (0o640, before)


async def test_an_unusable_path_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.touch()
    store = SqlStore.for_path(blocker / "manager.db")
    with pytest.raises(StoreError):
        await store.open()


@pytest.mark.parametrize("kind", ["sqlite", "aiosqlite"])
async def test_using_a_store_not_open_is_an_error(
    kind: str, new_store: Callable[[str], Store]
) -> None:
    store = new_store(kind)
    with pytest.raises(StoreError):
        await store.list_devices()
    await store.open()
    await store.close()
    with pytest.raises(StoreError):
        await store.device_by_fingerprint("SHA256:x")


async def test_many_devices_connect_at_once(open_sql: StoreFactory) -> None:
    store = await open_sql()
    count = 200
    for n in range(count):
        await store.pre_approve(f"SHA256:{n}", "ssh-ed25519", f"dev{n}", T0)

    async def connect(n: int) -> None:
        fingerprint = f"SHA256:{n}"
        device = await store.device_by_fingerprint(fingerprint)
        assert device is not None
        await store.mark_online(
            fingerprint, T0 + 1, address=None, orientation="reverse-ssh", capabilities=["x"]
        )
        await store.record_event("connected", T0 + 1, device=device.name, fingerprint=fingerprint)

    await asyncio.gather(*(connect(n) for n in range(count)))

    devices = await store.list_devices()
    assert {d.status for d in devices} == {DeviceStatus.ONLINE}
    events = await store.list_events(limit=1000)
    assert [e.id for e in events] == list(range(1, count + 1))


async def test_racing_approvals_of_one_name(open_sql: StoreFactory) -> None:
    store = await open_sql()
    fingerprints = [f"SHA256:{n}" for n in range(10)]
    for fingerprint in fingerprints:
        await store.note_unknown(fingerprint, "ssh-ed25519", None, T0)

    results = await asyncio.gather(
        *(store.approve(fp, "router1", T0 + 1) for fp in fingerprints), return_exceptions=True
    )

    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    assert await store.device_by_name("router1") == winners[0]


async def test_open_store(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)

    by_path = open_store(tmp_path / "a.db")
    by_text = open_store(str(tmp_path / "b.db"))
    by_url = open_store(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    for store in (by_path, by_text, by_url):
        assert isinstance(store, SqlStore)
        await store.open()
        await store.note_unknown("SHA256:x", "ssh-ed25519", None, T0)
        await store.close()
    assert {p.name for p in tmp_path.glob("*.db")} == {"a.db", "b.db", "c.db"}
    assert "c.db" in repr(by_url)


async def test_an_in_memory_database(tmp_path: Path) -> None:
    for url in ("sqlite://", "sqlite+aiosqlite://"):
        store = SqlStore(url)
        await store.open()
        await store.pre_approve("SHA256:x", "ssh-ed25519", "r", T0)
        assert (await store.device_by_name("r")) is not None
        await store.close()
    assert list(tmp_path.iterdir()) == []
