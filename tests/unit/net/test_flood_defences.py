"""What keeps a flooding device from costing the manager: the notification budget kept
across a device's sessions, the penalty of a device whose sessions break the protocol,
and the accept gate that turns sockets away before SSH is spoken."""

from __future__ import annotations

import asyncio
import logging

import asyncssh
import pytest
from net_testkit import ALGS, HELLO, Recorder, listener_limits, raw_ssh_device

from callhome.errors import SessionClosed
from callhome.net.guard import BROKEN_PENALTY, GuardLimits, HandshakeGuard
from callhome.net.netconf import NetconfClient, NetconfLimits, NotificationBudgets
from callhome.net.reverse_ssh import ManagerSshSettings, ReverseSshListener
from callhome.net.snmp import SnmpClient

LOG = logging.getLogger("callhome.net.reverse_ssh")


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_device_keeps_its_notification_budget_across_sessions() -> None:
    clock = Clock()
    budgets = NotificationBudgets(
        NetconfLimits(notification_rate=100, notification_burst=1000), clock=clock
    )
    first = budgets.of("SHA256:a")
    assert first.take(1000) and not first.take(1)
    again = budgets.of("SHA256:a")  # the device calls again: the bucket is still empty
    assert again is first and not again.take(1)
    assert budgets.of("SHA256:b").take(1000)  # another device has its own
    clock.now += 5  # 5 s at 100 bytes/s
    assert again.take(500) and not again.take(1)


def test_past_its_bound_the_budgets_forget_full_buckets_then_the_oldest() -> None:
    limits = NetconfLimits(notification_rate=10, notification_burst=100)
    budgets = NotificationBudgets(limits, clock=Clock(), keep=3)
    spent = budgets.of("spent")
    assert spent.take(100)
    budgets.of("full-1")
    budgets.of("full-2")
    budgets.of("new")  # the full ones go (a new bucket is the same), the spent one stays
    assert len(budgets) == 2 and budgets.of("spent") is spent
    assert budgets.of("x").take(100)
    assert budgets.of("y").take(100)  # "new", full, made room for it
    assert len(budgets) == 3
    budgets.of("z")  # none is full: the least recently used goes, "spent"
    assert len(budgets) == 3
    x = budgets.of("x")
    assert not x.take(1)  # "x" was kept, still spent
    assert budgets.of("spent") is not spent


def test_a_device_that_keeps_breaking_the_protocol_is_shut_out_for_a_while() -> None:
    clock = Clock()
    limits = GuardLimits(min_penalty=15.0, max_penalty=60.0)
    guard = HandshakeGuard(listener_limits(), LOG, limits, clock=clock)
    breaks = int(limits.min_penalty // BROKEN_PENALTY) + 1
    for _ in range(breaks - 1):
        guard.broke_protocol("SHA256:bad")
    assert not guard.shuts_out("SHA256:bad")  # not yet past min_penalty
    guard.broke_protocol("SHA256:bad")
    assert guard.shuts_out("SHA256:bad") and not guard.shuts_out("SHA256:good")
    clock.now += breaks * BROKEN_PENALTY - limits.min_penalty
    assert not guard.shuts_out("SHA256:bad")  # the penalty has been worked off


async def test_only_a_message_that_breaks_the_protocol_counts_against_the_device() -> None:
    written: list[bytes] = []
    broken = NetconfClient(written.append, lambda: None)
    broken.send_hello()
    broken.feed(HELLO + b"<notnetconf/>]]>]]>")
    assert broken.closed and broken.broke_protocol
    cut = NetconfClient(written.append, lambda: None)
    cut.send_hello()
    cut.feed(HELLO + b"<rpc-reply message-id='1'><da")
    cut.feed_eof("connection lost")  # a network can do that
    assert cut.closed and not cut.broke_protocol


async def test_sessions_that_break_the_protocol_shut_the_device_out_before_admission() -> None:
    """A known device whose sessions end in protocol errors is turned away by its key once it
    owes more than min_penalty, before admission is asked (the clock stands still here)."""
    clock = Clock()
    key = asyncssh.generate_private_key("ssh-ed25519")
    recorder = Recorder()
    limits = listener_limits(guard=GuardLimits(min_penalty=BROKEN_PENALTY * 1.5))
    listener = ReverseSshListener(recorder, ManagerSshSettings("mgr", {"": key}, ALGS, limits))
    listener.guard = HandshakeGuard(limits, LOG, limits.guard, clock=clock)
    port = await listener.listen("127.0.0.1", 0)
    device_key = asyncssh.generate_private_key("ssh-ed25519")
    try:
        for _ in range(2):  # two broken sessions: 2 x BROKEN_PENALTY owed
            conn = await raw_ssh_device(
                port, HELLO, recorder.allowed, device_key, answer=b"<notnetconf/>]]>]]>"
            )
            session = await asyncio.wait_for(recorder.ready.get(), 10)
            with pytest.raises(SessionClosed, match="protocol error"):
                await session.netconf.get_config()
            await asyncio.wait_for(recorder.closed.get(), 10)
            await asyncio.wait_for(conn.wait_closed(), 10)
        assert len(recorder.asked) == 2
        with pytest.raises((asyncssh.Error, OSError)):
            await asyncio.wait_for(raw_ssh_device(port, HELLO, recorder.allowed, device_key), 10)
        assert len(recorder.asked) == 2  # refused by the guard, admission never asked
        assert listener.guard.dropped_total >= 1
    finally:
        await listener.close()


async def test_the_accept_gate_turns_a_socket_away_before_ssh_is_spoken() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    recorder = Recorder()
    limits = listener_limits(guard=GuardLimits(max_per_source=0))  # every source is at its cap
    listener = ReverseSshListener(recorder, ManagerSshSettings("mgr", {"": key}, ALGS, limits))
    port = await listener.listen("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        said = await asyncio.wait_for(reader.read(), 10)  # the manager hangs up ...
        writer.close()
        assert said == b""  # ... without a version line: asyncssh never saw the socket
        assert listener.guard.dropped_total == 1
        assert recorder.reports == []  # counted by the guard, not reported per socket
    finally:
        await listener.close()


async def test_an_snmp_channel_that_breaks_the_protocol_counts_against_the_device() -> None:
    broken = SnmpClient(lambda data: None, lambda: None)
    broken.feed(b"\x04\x03abc")  # an OCTET STRING where a message must be a SEQUENCE
    assert broken.closed and broken.broke_protocol
    ended = SnmpClient(lambda data: None, lambda: None)
    ended.feed_eof("connection lost")
    assert ended.closed and not ended.broke_protocol
