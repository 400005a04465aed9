"""SNMP notifications over the call-home connection: a real manager process, and the device
run in the test's own event loop (so that its code can emit notifications), dialing it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from callhome.agent.service import Agent
from callhome.cli.setup import init_agent
from callhome.config import AgentConfig, ReconnectConfig, load
from callhome.proto.snmp import (
    AUTH_PRIV,
    Message,
    Pdu,
    PduType,
    Value,
    ValueType,
    VarBind,
)
from harness import ManagerProc

pytestmark = pytest.mark.integration

LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
IF_INDEX = (1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 2)
BUMPED = "1.3.6.1.2.1.92.1.2.2.0"

SNMP = """
[snmp]
enabled = true
interfaces = false
notify_max_held = {max_held}

[[snmp.users]]
name = "callhome"
read = ["1.3.6.1"]
"""


def target(name: str, policy: str = "deferred", inform: bool = False, **extra: Any) -> str:
    lines = [
        "[[snmp.targets]]",
        f'name = "{name}"',
        f'policy = "{policy}"',
        f"inform = {'true' if inform else 'false'}",
    ]
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


class Device:
    """An agent in this process: made from files like a real one, restartable."""

    def __init__(
        self,
        directory: Path,
        manager: ManagerProc,
        targets: str,
        *,
        max_held: int = 1000,
        backoff: float = 0.1,
    ) -> None:
        self.directory = directory
        self.fingerprint = init_agent(
            directory, [f"127.0.0.1:{manager.port}"], [manager.public_key]
        )
        with (directory / "agent.toml").open("a") as f:
            f.write(SNMP.format(max_held=max_held) + targets)
        self.backoff = backoff
        self.agent = self._make()
        self.task: asyncio.Task[None] | None = None

    def _make(self) -> Agent:
        config = load(AgentConfig, self.directory / "agent.toml")
        config.reconnect = ReconnectConfig(
            backoff_initial=self.backoff, backoff_max=max(self.backoff, 0.5), backoff_jitter=0
        )
        return Agent(config)

    def notify(self, i: int, *, inform: bool = False) -> None:
        self.agent.notify(f"{LINK_DOWN}.{i}", [VarBind(IF_INDEX, Value.integer(i))], inform)

    def start(self) -> None:
        self.task = asyncio.create_task(self.agent.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        if self.agent.connection is not None:
            self.agent.connection.abort()
        assert self.agent.notifier is not None
        self.agent.notifier.close()

    async def restart(self) -> None:
        await self.stop()
        self.agent = self._make()
        self.start()


@pytest.fixture
async def devices(tmp_path: Path, manager: ManagerProc) -> AsyncIterator[Callable[..., Device]]:
    made: list[Device] = []

    def make(name: str, targets: str, **kw: Any) -> Device:
        device = Device(tmp_path / name, manager, targets, **kw)
        made.append(device)
        return device

    yield make
    for device in made:
        await device.stop()


async def cli(manager: ManagerProc, *args: str) -> Any:
    return await asyncio.to_thread(manager.cli, *args)


async def approve(manager: ManagerProc, device: Device, name: str) -> None:
    done = await cli(manager, "approve", device.fingerprint, "--name", name)
    assert done.returncode == 0, done.stderr


async def events(manager: ManagerProc, kind: str, device: str) -> list[dict[str, Any]]:
    found = await asyncio.to_thread(manager.events, after=0, device=device)
    return [e for e in found if e["kind"] == kind]


async def wait_events(
    manager: ManagerProc, kind: str, device: str, count: int, timeout: float = 20.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = await events(manager, kind, device)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    everything = await asyncio.to_thread(manager.events, after=0)
    raise AssertionError(
        f"{len(found)} of {count} {kind} events within {timeout}s; all events: {everything}"
    )


def trap_numbers(found: list[dict[str, Any]]) -> list[int]:
    return [int(e["detail"]["trap_oid"].rsplit(".", 1)[1]) for e in found]


async def test_deferred_notifications_kept_while_away_and_over_a_restart(manager, devices):
    dev = devices("dev", target("traps") + target("informs", inform=True, timeout=2))
    for i in range(3):
        dev.notify(i)  # the device has not run yet
    await dev.restart()  # held on disk: reloaded
    for i in range(3, 6):
        dev.notify(i)  # running, but the manager refuses it: away
    await asyncio.sleep(0.3)
    assert dev.agent.notifier is not None and dev.agent.notifier.held() == 12

    await approve(manager, dev, "dev1")
    found = await wait_events(manager, "snmp-notification", "dev1", 12)
    traps = [e for e in found if not e["detail"]["inform"]]
    informs = [e for e in found if e["detail"]["inform"]]
    assert trap_numbers(traps) == list(range(6))  # in order, none lost
    assert trap_numbers(informs) == list(range(6))
    first = traps[0]["detail"]
    assert first["trap_oid"] == f"{LINK_DOWN}.0" and isinstance(first["uptime"], int)
    assert first["varbinds"] == [{"oid": "1.3.6.1.2.1.2.2.1.1.2", "type": "Integer32", "value": 0}]
    # every Inform was acknowledged, so nothing is held any more
    notifier = dev.agent.notifier
    await asyncio.wait_for(_until(lambda: notifier.held() == 0), 10)

    # connected: a new notification goes at once
    dev.notify(6)
    found = await wait_events(manager, "snmp-notification", "dev1", 14)
    assert sorted(trap_numbers(found[-2:])) == [6, 6]


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.05)


async def test_immediate_policy_wakes_a_device_in_long_back_off(manager, devices):
    dev = devices("dev", target("now", policy="immediate"), backoff=60.0)
    dev.start()
    # refused while unknown: the device now waits a minute before it dials again
    deadline = time.monotonic() + 15
    while dev.agent.dialer.plan._failures == 0:
        assert time.monotonic() < deadline, "the device never dialed"
        await asyncio.sleep(0.05)
    await approve(manager, dev, "dev1")
    await asyncio.sleep(0.5)
    assert dev.agent.connection is None  # still in its back-off

    dev.notify(1)
    found = await wait_events(manager, "snmp-notification", "dev1", 1, timeout=10)
    assert trap_numbers(found) == [1]
    assert dev.agent.connections_made == 1


async def test_inform_resent_until_acknowledged_and_recorded_once(manager, devices):
    dev = devices("dev", target("informs", inform=True, timeout=0.3, retries=5))
    notifier = dev.agent.notifier
    assert notifier is not None
    lost: list[Message] = []
    original = notifier.response_received

    def lose_two(channel: Any, message: Message) -> None:
        if len(lost) < 2:
            lost.append(message)  # as if the manager's Response never came
            return
        original(channel, message)

    notifier.response_received = lose_two  # type: ignore[method-assign]
    await approve(manager, dev, "dev1")
    dev.start()
    dev.notify(7)
    await asyncio.wait_for(_until(lambda: notifier.held() == 0), 15)
    assert len(lost) == 2  # two Responses lost, the third try acknowledged
    found = await wait_events(manager, "snmp-notification", "dev1", 1)
    await asyncio.sleep(0.3)
    found = await events(manager, "snmp-notification", "dev1")
    assert trap_numbers(found) == [7] and found[0]["detail"]["inform"] is True


async def test_full_buffer_drops_the_oldest_and_counts(manager, devices):
    dev = devices("dev", target("traps"), max_held=3)
    for i in range(5):
        dev.notify(i)
    await approve(manager, dev, "dev1")
    dev.start()
    found = await wait_events(manager, "snmp-notification", "dev1", 3)
    await asyncio.sleep(0.3)
    found = await events(manager, "snmp-notification", "dev1")
    assert trap_numbers(found) == [2, 3, 4]
    got = await cli(manager, "snmp", "dev1", "get", BUMPED)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip().endswith("2"), got.stdout


async def test_malformed_notification_closes_only_the_snmp_channel(manager, devices):
    dev = devices("dev", target("traps"))
    await approve(manager, dev, "dev1")
    dev.start()
    dev.notify(1)
    await wait_events(manager, "snmp-notification", "dev1", 1)
    notifier = dev.agent.notifier
    assert notifier is not None and notifier._channels
    channel = notifier._channels[-1]
    bad = Pdu(PduType.TRAP, 99, (VarBind(IF_INDEX, Value(ValueType.INTEGER, 1)),))
    assert dev.agent.snmp is not None
    channel.send(Message(5000, bad, dev.agent.snmp.engine_id, flags=AUTH_PRIV))

    errors = await wait_events(manager, "protocol-error", "dev1", 1)
    assert errors[0]["detail"]["service"] == "snmp"
    assert "sysUpTime" in errors[0]["detail"]["reason"]
    await asyncio.wait_for(_until(lambda: channel.closed), 10)

    netconf = await cli(manager, "netconf", "dev1", "get-config")
    assert netconf.returncode == 0, netconf.stderr
    assert dev.agent.connections_made == 1  # the connection stayed up
    dev.notify(2)  # held until the manager opens a channel again
    await asyncio.sleep(0.3)
    assert notifier.held() == 1
