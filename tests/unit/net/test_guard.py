"""The manager's handshake flood guard, alone (the listeners use it in their own tests)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from callhome.config import KeepaliveConfig, SshAlgorithms
from callhome.identity import Identity
from callhome.net import pki
from callhome.net.guard import HandshakeGuard
from callhome.net.reverse_ssh import ManagerSshSettings, ReverseSshListener
from callhome.net.reverse_tls import ManagerTlsSettings, ReverseTlsListener
from callhome.net.session import DeviceSession
from callhome.net.turn import ManagerTurnSettings, TurnListener

LOG = logging.getLogger("callhome.net.some_adapter")


@dataclass
class Settings:
    handshake_timeout: float = 30.0
    max_unauthenticated: int = 2


async def test_counts_caps_and_settles_once(caplog: pytest.LogCaptureFixture) -> None:
    guard = HandshakeGuard(Settings(), LOG)
    first, second = guard.begin("a:1"), guard.begin("a:2")
    assert not first.over_limit and not second.over_limit
    assert caplog.records == []
    with caplog.at_level(logging.WARNING):
        third = guard.begin("a:3")
    assert third.over_limit
    assert guard.in_progress == 3  # the one too many stays counted until it is settled
    [record] = caplog.records
    assert record.name == "callhome.net.some_adapter"  # the adapter's logger, as before
    assert record.getMessage() == "too many handshakes in progress; dropping a:3"
    third.end()
    first.settle()
    first.settle()  # settled twice (authenticated, then lost): counted down once
    first.end()
    assert guard.in_progress == 1
    assert not guard.begin("a:4").over_limit  # room again
    second.end()
    assert guard.in_progress == 1


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

KEEP = KeepaliveConfig(interval=5, count_max=3)


class Failures:
    """An Admission that admits nobody and records handshake failures."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def preferred(self, identities: Sequence[Identity]) -> Identity:
        return identities[0]

    def admit(self, identity: Identity, address: str) -> str | None:
        return None

    def handshake_failed(
        self, address: str, identity: Identity | None, reason: str, *, auth: bool = False
    ) -> None:
        self.failures.append(reason)

    async def session_ready(self, session: DeviceSession) -> None:
        raise AssertionError("nobody is admitted")

    async def session_closed(self, session: DeviceSession) -> None:
        raise AssertionError("nobody is admitted")


def reverse_ssh(admission: Failures, _: Path) -> ReverseSshListener:
    key = asyncssh.generate_private_key("ssh-ed25519")
    settings = ManagerSshSettings("mgr", {"": key}, KEEP, SshAlgorithms(), max_unauthenticated=1)
    return ReverseSshListener(admission, settings)


def turn(admission: Failures, _: Path) -> TurnListener:
    key = asyncssh.generate_private_key("ssh-ed25519")
    settings = ManagerTurnSettings(key, KEEP, SshAlgorithms(), max_unauthenticated=1)
    return TurnListener(admission, settings)


def reverse_tls(admission: Failures, directory: Path) -> ReverseTlsListener:
    ca = pki.init_ca(directory / "ca", "Test CA", key_type="ed25519")
    manager = pki.issue(ca, "manager", "mgr", out=directory / "out")
    settings = ManagerTlsSettings.from_files(
        manager.cert_file, manager.key_file, ca=[ca.cert_file], keepalive=KEEP
    )
    settings.max_unauthenticated = 1
    return ReverseTlsListener(admission, settings)


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("never came true")


@pytest.mark.parametrize("make", [reverse_ssh, turn, reverse_tls])
async def test_listener_drops_the_handshake_too_many_without_an_event(
    make: Callable[[Failures, Path], Any], tmp_path: Path
) -> None:
    admission = Failures()
    listener = make(admission, tmp_path)
    port = await listener.listen("127.0.0.1", 0)
    try:
        _, stalled = await asyncio.open_connection("127.0.0.1", port)  # says nothing
        await until(lambda: listener.guard.in_progress == 1)
        reader, extra = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.wait_for(reader.read(), 10)  # dropped: end of stream
        extra.close()
        await until(lambda: listener.guard.in_progress == 1)
        assert admission.failures == []  # nothing known of it: a warning, no event
        stalled.close()
        await until(lambda: listener.guard.in_progress == 0)
        await until(lambda: len(admission.failures) == 1)  # the stalled one failed
    finally:
        await listener.close()
