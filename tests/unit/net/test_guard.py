"""The manager's handshake flood guard, alone (the listeners use it in their own tests)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from net_testkit import ALGS, Recorder, listener_limits

from callhome.net import pki
from callhome.net.guard import GuardLimits, HandshakeGuard
from callhome.net.reverse_ssh import ManagerSshSettings, ReverseSshListener
from callhome.net.reverse_tls import ManagerTlsSettings, ReverseTlsListener
from callhome.net.turn import ManagerTurnSettings, TurnListener

LOG = logging.getLogger("callhome.net.some_adapter")


@dataclass
class Settings:
    handshake_timeout: float = 30.0
    max_unauthenticated: int = 2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spoke() -> bool:
    return True


def silent() -> bool:
    return False


async def test_counts_caps_and_settles_once(caplog: pytest.LogCaptureFixture) -> None:
    guard = HandshakeGuard(Settings(), LOG)
    first, second = guard.begin("a:1", heard=spoke), guard.begin("a:2", heard=spoke)
    assert not first.over_limit and not second.over_limit
    assert caplog.records == []
    with caplog.at_level(logging.WARNING):
        third = guard.begin("a:3", heard=spoke)
    assert third.over_limit  # every one in progress has spoken: the newcomer is refused
    assert guard.in_progress == 3  # the one too many stays counted until it ends
    [record] = caplog.records
    assert record.name == "callhome.net.some_adapter"  # the adapter's logger
    assert record.getMessage() == (
        "flood guard dropped connections: 1 too many handshakes in progress"
    )
    third.end()
    first.settle()
    first.settle()  # settled twice (authenticated, then lost): counted down once
    first.end()
    assert guard.in_progress == 1
    assert not guard.begin("a:4").over_limit  # room again
    second.end()
    assert guard.in_progress == 1


async def test_the_oldest_silent_handshake_makes_room_not_the_newcomer() -> None:
    guard = HandshakeGuard(Settings(max_unauthenticated=3), LOG, clock=Clock())
    dropped: list[str] = []
    old = guard.begin("a:1", heard=silent, drop=lambda: dropped.append("old"))
    talker = guard.begin("b:1", heard=spoke, drop=lambda: dropped.append("talker"))
    newer = guard.begin("a:2", heard=silent, drop=lambda: dropped.append("newer"))
    fresh = guard.begin("c:1", heard=silent, drop=lambda: dropped.append("fresh"))
    assert not fresh.over_limit and dropped == ["old"]  # the oldest that said nothing
    old.end()  # its connection goes, as the adapter's drop does
    assert guard.in_progress == 3 and not talker.over_limit and not newer.over_limit


async def test_one_address_holds_a_few_handshakes_and_trusted_networks_more() -> None:
    limits = GuardLimits(max_per_source=2, trusted=["10.0.0.0/8"])
    guard = HandshakeGuard(Settings(max_unauthenticated=100), LOG, limits, clock=Clock())
    assert not guard.begin("192.0.2.1:1").over_limit
    assert not guard.begin("192.0.2.1:2").over_limit
    assert guard.begin("192.0.2.1:3").over_limit
    assert not guard.begin("192.0.2.2:1").over_limit  # another address is not held up
    assert not any(guard.begin(f"10.1.2.3:{i}").over_limit for i in range(5))
    assert not guard.begin("[2001:db8::1]:5").over_limit


async def test_an_address_that_fails_again_and_again_is_shut_out_for_a_while() -> None:
    clock = Clock()
    limits = GuardLimits(min_penalty=15.0, max_penalty=40.0, trusted=["127.0.0.2"])
    guard = HandshakeGuard(Settings(max_unauthenticated=100), LOG, limits, clock=clock)
    # a device that is refused now and then (not approved yet, backing off) is never shut out
    for _ in range(30):
        guard.begin("192.0.2.1:1", heard=spoke).end()  # 1 s each
        clock.now += 2
        assert not guard.begin("192.0.2.1:2").over_limit
    # three silent ones (5 s each) and a failed one: over 15 s, refused at once
    for _ in range(3):
        guard.begin("198.51.100.1:1", heard=silent).end()
    assert not guard.begin("198.51.100.1:2", heard=spoke).over_limit
    guard.begin("198.51.100.1:3", heard=spoke).end()
    assert guard.begin("198.51.100.1:4").over_limit
    assert not guard.begin("198.51.100.9:1").over_limit  # its neighbours are not
    clock.now += 1.1  # worn off below the threshold: let in again
    assert not guard.begin("198.51.100.1:5").over_limit
    # handshakes that were in progress together add up, to max_penalty at most
    many = [guard.begin(f"203.0.113.1:{i}", heard=silent) for i in range(20)]
    for h in many:
        h.end()
    clock.now += 40 - 15 - 0.1
    assert guard.begin("203.0.113.1:99").over_limit
    clock.now += 0.2
    assert not guard.begin("203.0.113.1:100").over_limit
    for i in range(10):  # trusted: never penalized
        guard.begin(f"127.0.0.2:{i}", heard=silent).end()
    assert not guard.begin("127.0.0.2:99").over_limit


async def test_a_silent_peer_is_dropped_at_the_first_bytes_deadline() -> None:
    guard = HandshakeGuard(Settings(max_unauthenticated=10), LOG, GuardLimits(0.01))
    dropped = asyncio.Event()
    quiet = guard.begin("a:1", heard=silent, drop=dropped.set)
    talking = guard.begin("a:2", heard=spoke, drop=lambda: pytest.fail("it spoke"))
    await asyncio.wait_for(dropped.wait(), 10)
    quiet.end()
    await asyncio.sleep(0.02)  # the other's deadline has passed as well
    assert talking.counted


async def test_a_flood_is_one_log_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limits = GuardLimits(max_per_source=1, log_interval=10.0)
    guard = HandshakeGuard(Settings(max_unauthenticated=1000), LOG, limits, clock=clock)
    with caplog.at_level(logging.WARNING):
        guard.begin("192.0.2.1:0")
        for i in range(1, 500):
            guard.begin(f"192.0.2.1:{i}").end()
        assert len(caplog.records) == 1  # the first drop is said at once
        clock.now += 11
        guard.begin("192.0.2.1:999")
    assert len(caplog.records) == 2
    assert caplog.records[1].getMessage() == (
        "flood guard dropped connections in the last 11s: 499 too many from one address"
    )
    assert guard.dropped_total == 500


async def test_times_out_unless_stopped() -> None:
    settings = Settings(handshake_timeout=0.01, max_unauthenticated=10)
    guard = HandshakeGuard(settings, LOG)
    fired: list[str] = []
    timed_out = asyncio.Event()

    def on_timeout(name: str) -> None:
        fired.append(name)
        timed_out.set()

    stopped = guard.begin("a:1", lambda: on_timeout("stopped"))
    ended = guard.begin("a:2", lambda: on_timeout("ended"))
    settled = guard.begin("a:3", lambda: on_timeout("settled"))
    stopped.stop_timer()
    ended.end()
    settled.settle()  # counted down, but its timer still runs (reverse-ssh after auth)
    await asyncio.wait_for(timed_out.wait(), 10)
    await asyncio.sleep(0.05)  # the stopped ones were due at the same time as the other
    assert fired == ["settled"]
    assert guard.in_progress == 1  # "stopped" finished in time but is still counted


async def test_reads_its_settings_live_and_arms_no_timer_over_the_cap() -> None:
    settings = Settings(handshake_timeout=30.0, max_unauthenticated=0)
    guard = HandshakeGuard(settings, LOG)
    fired: list[str] = []
    refused = guard.begin("a:1", lambda: fired.append("refused"))
    assert refused.over_limit
    refused.end()
    settings.max_unauthenticated = 1
    settings.handshake_timeout = 0.01
    timed_out = asyncio.Event()
    admitted = guard.begin("a:2", timed_out.set)
    assert not admitted.over_limit
    await asyncio.wait_for(timed_out.wait(), 10)
    assert fired == []


async def test_no_timer_when_no_callback() -> None:
    guard = HandshakeGuard(Settings(handshake_timeout=0.0), LOG)
    handshake = guard.begin("a:1")
    await asyncio.sleep(0.01)
    handshake.end()  # nothing to cancel, nothing fired
    assert guard.in_progress == 0


# -- the listeners drop the one handshake too many, and count down as handshakes end --------

ONE_AT_A_TIME = listener_limits(max_unauthenticated=1)


def reverse_ssh(admission: Recorder, _: Path) -> ReverseSshListener:
    key = asyncssh.generate_private_key("ssh-ed25519")
    settings = ManagerSshSettings("mgr", {"": key}, ALGS, ONE_AT_A_TIME)
    return ReverseSshListener(admission, settings)


def turn(admission: Recorder, _: Path) -> TurnListener:
    key = asyncssh.generate_private_key("ssh-ed25519")
    return TurnListener(admission, ManagerTurnSettings(key, ALGS, ONE_AT_A_TIME))


def reverse_tls(admission: Recorder, directory: Path) -> ReverseTlsListener:
    ca = pki.init_ca(directory / "ca", "Test CA", key_type="ed25519")
    manager = pki.issue(ca, "manager", "mgr", out=directory / "out")
    settings = ManagerTlsSettings.from_files(
        manager.cert_file, manager.key_file, ca=[ca.cert_file], limits=ONE_AT_A_TIME
    )
    return ReverseTlsListener(admission, settings)


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("never came true")


@pytest.mark.parametrize("make", [reverse_ssh, turn, reverse_tls])
async def test_listener_drops_a_silent_handshake_to_make_room_without_an_event(
    make: Callable[[Recorder, Path], Any], tmp_path: Path
) -> None:
    admission = Recorder()
    listener = make(admission, tmp_path)
    port = await listener.listen("127.0.0.1", 0)
    try:
        stalled_reader, stalled = await asyncio.open_connection("127.0.0.1", port)
        await until(lambda: listener.guard.in_progress == 1)
        _reader, extra = await asyncio.open_connection("127.0.0.1", port)
        # the one that said nothing goes: end of its stream; the newcomer is in progress
        await asyncio.wait_for(stalled_reader.read(), 10)
        await until(lambda: listener.guard.in_progress == 1)
        assert admission.failures == []  # nothing known of it: counted and logged, no event
        assert listener.guard.dropped_total == 1
        extra.close()
        stalled.close()
        await until(lambda: listener.guard.in_progress == 0)
        await until(lambda: len(admission.failures) == 1)  # the newcomer gave up: a failure
        assert admission.ready.empty() and admission.asked == []
    finally:
        await listener.close()
