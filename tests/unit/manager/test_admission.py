"""The manager's admission decisions and its flood guard, over the in-memory Store."""

import asyncio
from pathlib import Path

from callhome.config import ManagerConfig
from callhome.identity import Identity
from callhome.manager.service import Manager
from callhome.storage import DeviceStatus, MemoryStore


def identity(n: int) -> Identity:
    return Identity("ssh-key", f"SHA256:{n:043d}", "ssh-ed25519")


async def settle(manager: Manager) -> None:
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.gather(*manager._tasks)


async def test_unknown_keys_are_refused_and_noted_once_per_interval(tmp_path: Path):
    store = MemoryStore()
    manager = Manager(ManagerConfig(state_dir=tmp_path), store)
    for _ in range(50):
        assert manager.admit(identity(1), "127.0.0.1:999") is None
    await settle(manager)
    events = await store.list_events()
    assert [e.kind for e in events] == ["unknown-device"]
    device = await store.device_by_fingerprint(identity(1).fingerprint)
    assert device is not None and device.status is DeviceStatus.PENDING


async def test_approved_keys_get_their_credential_and_refused_ones_nothing(tmp_path: Path):
    store = MemoryStore()
    manager = Manager(ManagerConfig(state_dir=tmp_path), store)
    await manager.approve(identity(2).fingerprint, "two", "tester")
    assert manager.admit(identity(2), "127.0.0.2:1") == ""
    manager.admit(identity(3), "127.0.0.3:1")
    await settle(manager)
    await manager.reject(identity(3).fingerprint, "tester")
    for _ in range(20):
        assert manager.admit(identity(3), "127.0.0.3:1") is None
    await settle(manager)
    kinds = [e.kind for e in await store.list_events()]
    assert kinds.count("refused-connection") == 1


async def test_garbage_from_one_host_is_noted_once(tmp_path: Path):
    store = MemoryStore()
    manager = Manager(ManagerConfig(state_dir=tmp_path), store)
    for port in range(100):
        manager.handshake_failed(f"127.0.1.7:{port}", None, "bad version")
    manager.handshake_failed("127.0.1.8:1", None, "bad version")
    await settle(manager)
    events = await store.list_events()
    assert [e.detail["address"] for e in events] == ["127.0.1.7:0", "127.0.1.8:1"]
