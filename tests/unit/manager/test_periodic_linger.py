"""The manager ends a periodic device's session once there is nothing left to do."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from callhome.clock import FakeClock
from callhome.manager.periodic import EVENT_KIND, REASON, Activity, Linger, PeriodicSessions
from callhome.storage import Device, DeviceStatus, Schedule, ScheduleKind

FP = "SHA256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
T0 = 1_700_000_000.0
IDLE = Activity(busy=False, replaying=False, done=0)
BUSY = Activity(busy=True, replaying=False, done=0)


# -- the decision ----------------------------------------------------------------------------


def test_ends_only_after_linger_seconds_idle() -> None:
    linger = Linger(5.0, 65.0, T0)
    assert not linger.observe(T0, IDLE)
    assert not linger.observe(T0 + 4.9, IDLE)
    assert linger.observe(T0 + 5.0, IDLE)


def test_zero_linger_ends_at_the_first_idle_look() -> None:
    linger = Linger(0.0, 60.0, T0)
    assert not linger.observe(T0, BUSY)
    assert linger.observe(T0 + 0.1, IDLE)


def test_anything_busy_restarts_the_wait() -> None:
    linger = Linger(5.0, 65.0, T0)
    assert not linger.observe(T0, IDLE)
    assert not linger.observe(T0 + 4.0, BUSY)  # a job runs (or a terminal is open)
    assert not linger.observe(T0 + 6.0, IDLE)  # counted from here
    assert not linger.observe(T0 + 10.9, IDLE)
    assert linger.observe(T0 + 11.0, IDLE)


def test_a_job_done_between_two_looks_restarts_the_wait() -> None:
    linger = Linger(5.0, 65.0, T0)
    assert not linger.observe(T0, IDLE)
    # a job was claimed and finished between two looks: never seen busy, but counted
    assert not linger.observe(T0 + 4.0, Activity(busy=False, replaying=False, done=1))
    assert not linger.observe(T0 + 8.9, Activity(busy=False, replaying=False, done=1))
    assert linger.observe(T0 + 9.0, Activity(busy=False, replaying=False, done=1))


def test_a_replay_is_waited_for_but_not_forever() -> None:
    linger = Linger(1.0, 3.0, T0)
    replaying = Activity(busy=False, replaying=True, done=0)
    assert not linger.observe(T0, replaying)
    assert not linger.observe(T0 + 2.9, replaying)
    # past the cap, the replay no longer counts: the linger starts
    assert not linger.observe(T0 + 3.0, replaying)
    assert not linger.observe(T0 + 3.9, replaying)
    assert linger.observe(T0 + 4.0, replaying)


def test_a_replay_completed_starts_the_linger() -> None:
    linger = Linger(1.0, 60.0, T0)
    assert not linger.observe(T0, Activity(busy=False, replaying=True, done=0))
    assert not linger.observe(T0 + 0.5, IDLE)
    assert linger.observe(T0 + 1.5, IDLE)


# -- the watcher, on a clock that moves when told -------------------------------------------


@dataclass
class _Netconf:
    closed: bool = False


@dataclass
class _Session:
    """Enough of a DeviceSession for PeriodicSessions."""

    fingerprint: str = FP
    name: str = "r1"
    carries_netconf: bool = True
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    netconf: _Netconf = field(default_factory=_Netconf)
    ended: list[bool] = field(default_factory=list)

    async def close(self, graceful: bool = True) -> None:
        self.ended.append(graceful)
        self.netconf.closed = True
        self.closed.set()


def _device(kind: ScheduleKind | None) -> Device:
    schedule = None
    if kind is not None:
        schedule = Schedule(kind=kind, since=T0, period=60.0, anchor=None, idle_timeout=300.0)
    return Device(
        fingerprint=FP,
        key_type="ssh-ed25519",
        name="r1",
        status=DeviceStatus.ONLINE,
        status_since=T0,
        address=None,
        first_seen=T0,
        last_seen=T0,
        orientation="reverse-ssh",
        capabilities=(),
        credential=None,
        schedule=schedule,
    )


class _Rig:
    def __init__(self, linger: float | None, kind: ScheduleKind | None) -> None:
        self.device = _device(kind)
        self.activity = IDLE
        self.events: list[tuple[str, Mapping[str, Any]]] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.clock = FakeClock()
        self.sessions = PeriodicSessions(
            linger,
            0.2,
            lambda _s: self.activity,
            lambda _fp: self.device,
            self._record,
            self._spawn,
            clock=self.clock,
            tick=0.01,
        )

    async def _record(self, kind: str, _session: Any, detail: Mapping[str, Any]) -> None:
        self.events.append((kind, detail))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coro))

    async def settle(self, seconds: float) -> None:
        await self.clock.advance(seconds)

    async def finish(self) -> None:
        """Move time on, a tick at a time, until every watch has ended (at most a minute)."""
        for _ in range(6000):
            if all(task.done() for task in self.tasks):
                break
            await self.clock.advance(0.01)
        assert all(task.done() for task in self.tasks), "a watch never ended"
        await asyncio.gather(*self.tasks)


async def test_a_periodic_session_is_ended_gracefully_once_idle() -> None:
    rig = _Rig(0.05, ScheduleKind.PERIODIC)
    session = _Session()
    rig.activity = BUSY
    rig.sessions.watch(session, rig.device)  # type: ignore[arg-type]
    rig.sessions.watch(session, rig.device)  # type: ignore[arg-type]  # watched once
    await rig.settle(0.2)
    assert session.ended == [] and rig.events == []  # a job runs: kept
    rig.activity = IDLE
    await rig.finish()
    assert session.ended == [True]
    assert rig.events == [(EVENT_KIND, {"reason": REASON})]
    assert len(rig.tasks) == 1


@pytest.mark.parametrize("kind", [ScheduleKind.PERSISTENT, None])
async def test_persistent_or_unknown_is_never_watched(kind: ScheduleKind | None) -> None:
    rig = _Rig(0.0, kind)
    session = _Session()
    rig.sessions.watch(session, rig.device)  # type: ignore[arg-type]
    await rig.settle(0.1)
    assert rig.tasks == [] and session.ended == []


async def test_switched_to_persistent_while_connected_is_left_alone() -> None:
    rig = _Rig(0.05, ScheduleKind.PERIODIC)
    session = _Session()
    rig.activity = BUSY
    rig.sessions.watch(session, rig.device)  # type: ignore[arg-type]
    await rig.settle(0.05)
    rig.device = _device(ScheduleKind.PERSISTENT)
    rig.activity = IDLE
    await rig.finish()  # the watch ends by itself
    await rig.settle(0.1)
    assert session.ended == [] and rig.events == []


@pytest.mark.parametrize("linger", [None, -1.0])
async def test_never_when_linger_is_off(linger: float | None) -> None:
    rig = _Rig(linger, ScheduleKind.PERIODIC)
    session = _Session()
    rig.sessions.watch(session, rig.device)  # type: ignore[arg-type]
    await rig.settle(0.1)
    assert rig.tasks == [] and session.ended == []


async def test_snmp_only_connections_are_left_alone() -> None:
    rig = _Rig(0.0, ScheduleKind.PERIODIC)
    session = _Session(carries_netconf=False)
    rig.sessions.watch(session, rig.device)  # type: ignore[arg-type]
    await rig.settle(0.1)
    assert rig.tasks == [] and session.ended == []


async def test_a_session_closed_meanwhile_is_not_ended_again() -> None:
    rig = _Rig(0.05, ScheduleKind.PERIODIC)
    session = _Session()
    rig.activity = BUSY
    rig.sessions.watch(session, rig.device)  # type: ignore[arg-type]
    session.closed.set()  # the device hung up
    await rig.finish()
    assert session.ended == [] and rig.events == []
