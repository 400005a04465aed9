"""The device's notification originator without a network: the durable buffer, order,
Inform acknowledgement and retries, the full-queue policy and the immediate policy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callhome.agent.snmp.agent import SnmpAgent, SnmpResponderChannel, UserAccess
from callhome.agent.snmp.mib import MibRegistry
from callhome.agent.snmp.notify import (
    NLM_STATS_BUMPED,
    NLM_STATS_LOGGED,
    NotificationBuffer,
    Notifier,
    varbind_from_json,
    varbind_to_json,
)
from callhome.config import AgentSnmpSection, SnmpTarget
from callhome.errors import LocalProtocolError
from callhome.proto.snmp import (
    SNMP_TRAP_OID,
    Message,
    PduType,
    SnmpStream,
    Value,
    ValueType,
    VarBind,
    encode_message,
    format_oid,
    response,
)

ENGINE_ID = bytes.fromhex("800000000501020304")
LINK_DOWN = (1, 3, 6, 1, 6, 3, 1, 1, 5, 3)
IF_INDEX = (1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 2)


def make_agent() -> SnmpAgent:
    return SnmpAgent(MibRegistry(), ENGINE_ID, {"mgr": UserAccess(((1, 3, 6, 1),), ())})


class Peer:
    """The manager's end of one snmp channel, in memory."""

    def __init__(self, agent: SnmpAgent, user: str = "mgr") -> None:
        self.stream = SnmpStream()
        self.received: list[Message] = []
        self.closed = False
        self.channel: SnmpResponderChannel = agent.open_channel(
            user, None, "test", self._write, self._close
        )

    def _write(self, data: bytes) -> None:
        self.stream.receive_data(data)
        while (message := self.stream.next_message()) is not None:
            self.received.append(message)

    def _close(self) -> None:
        self.closed = True

    def ack(self, message: Message) -> None:
        reply = Message(
            message.msg_id,
            response(message.pdu.request_id, message.pdu.varbinds),
            message.context_engine_id,
        )
        self.channel.feed(encode_message(reply))

    def trap_oids(self) -> list[str]:
        out = []
        for m in self.received:
            assert m.pdu.varbinds[1].oid == SNMP_TRAP_OID
            value = m.pdu.varbinds[1].value.value
            assert isinstance(value, tuple)
            out.append(format_oid(value))
        return out


async def until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


def target(name: str = "nms", **kw) -> SnmpTarget:
    return SnmpTarget(name=name, **kw)


def test_varbinds_survive_json():
    vbs = [
        VarBind(IF_INDEX, Value.integer(-5)),
        VarBind(IF_INDEX, Value.octets(b"\x00\xffeth0")),
        VarBind(IF_INDEX, Value.oid("1.3.6.1.4.1.99")),
        VarBind(IF_INDEX, Value(ValueType.IP_ADDRESS, bytes([10, 0, 0, 1]))),
        VarBind(IF_INDEX, Value(ValueType.COUNTER64, 2**64 - 1)),
        VarBind(IF_INDEX, Value(ValueType.TIMETICKS, 42)),
        VarBind(IF_INDEX, Value.null()),
    ]
    assert [varbind_from_json(varbind_to_json(vb)) for vb in vbs] == vbs


def test_buffer_keeps_order_across_reopen_and_drops_oldest_when_full(tmp_path: Path):
    path = tmp_path / "held.sqlite"
    buffer = NotificationBuffer(path, max_held=3)
    for i in range(5):
        dropped = buffer.add("a", (*LINK_DOWN, i), (), inform=False, uptime=i, created=0.0)
        assert dropped == (1 if i >= 3 else 0)
    buffer.add("b", LINK_DOWN, (), inform=True, uptime=9, created=0.0)
    buffer.close()

    again = NotificationBuffer(path, max_held=3)
    assert again.held("a") == 3 and again.held("b") == 1 and again.held() == 4
    order = []
    while (item := again.head("a")) is not None:
        order.append(item.trap_oid[-1])
        again.remove(item.id)
    assert order == [2, 3, 4]  # the two oldest were dropped
    assert again.counter("bumped") == 2 and again.counter("bumped:a") == 2
    assert again.counter("bumped:b") == 0 and again.counter("logged") == 6
    head_b = again.head("b")
    assert head_b is not None and head_b.inform and head_b.pdu().type is PduType.INFORM


async def test_deferred_traps_wait_for_a_channel_then_go_in_order(tmp_path: Path):
    agent = make_agent()
    notifier = Notifier(agent, [target()], NotificationBuffer(tmp_path / "b.sqlite"))
    varbinds = [VarBind(IF_INDEX, Value.integer(2))]
    for i in range(5):
        assert notifier.notify((*LINK_DOWN, i), varbinds) == 1
    assert notifier.held() == 5
    task = asyncio.create_task(notifier.run())
    try:
        await asyncio.sleep(0.05)
        assert notifier.held() == 5  # nobody to send to
        peer = Peer(agent)
        await until(lambda: len(peer.received) == 5)
        assert peer.trap_oids() == [format_oid((*LINK_DOWN, i)) for i in range(5)]
        first = peer.received[0]
        assert first.pdu.type is PduType.TRAP and not first.reportable
        assert first.context_engine_id == ENGINE_ID
        assert first.pdu.varbinds[2:] == tuple(varbinds)
        assert notifier.held() == 0
        notifier.notify(LINK_DOWN)  # connected: sent at once
        await until(lambda: len(peer.received) == 6)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_inform_is_retried_then_held_for_the_next_channel(tmp_path: Path):
    agent = make_agent()
    notifier = Notifier(
        agent,
        [target(inform=True, retries=2, timeout=0.05)],
        NotificationBuffer(tmp_path / "b.sqlite"),
    )
    notifier.notify(LINK_DOWN)
    notifier.notify((*LINK_DOWN, 1))
    task = asyncio.create_task(notifier.run())
    try:
        mute = Peer(agent)
        await until(lambda: len(mute.received) == 3)  # the first try and two retries
        await asyncio.sleep(0.2)
        assert len(mute.received) == 3 and notifier.held() == 2
        msgs = mute.received
        assert all(m.pdu.type is PduType.INFORM and m.reportable for m in msgs)
        assert len({m.msg_id for m in msgs}) == 3  # a new msgID each time
        assert len({m.pdu.request_id for m in msgs}) == 1  # the same request-id

        peer = Peer(agent)  # the next connection
        await until(lambda: len(peer.received) == 1)
        peer.ack(peer.received[0])
        await until(lambda: len(peer.received) == 2)
        assert notifier.held() == 1
        peer.ack(peer.received[1])
        await until(lambda: notifier.held() == 0)
        assert peer.trap_oids() == [format_oid(LINK_DOWN), format_oid((*LINK_DOWN, 1))]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_response_that_matches_nothing_is_ignored(tmp_path: Path):
    agent = make_agent()
    notifier = Notifier(
        agent, [target(inform=True, timeout=5)], NotificationBuffer(tmp_path / "b.sqlite")
    )
    notifier.notify(LINK_DOWN)
    task = asyncio.create_task(notifier.run())
    try:
        peer = Peer(agent)
        await until(lambda: len(peer.received) == 1)
        sent = peer.received[0]
        wrong = Message(sent.msg_id, response(sent.pdu.request_id + 1, ()), ENGINE_ID)
        peer.channel.feed(encode_message(wrong))
        await asyncio.sleep(0.05)
        assert notifier.held() == 1 and not peer.closed
        peer.ack(sent)
        await until(lambda: notifier.held() == 0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_channel_lost_while_an_inform_waits_keeps_it(tmp_path: Path):
    agent = make_agent()
    notifier = Notifier(
        agent, [target(inform=True, timeout=30)], NotificationBuffer(tmp_path / "b.sqlite")
    )
    notifier.notify(LINK_DOWN)
    task = asyncio.create_task(notifier.run())
    try:
        peer = Peer(agent)
        await until(lambda: len(peer.received) == 1)
        peer.channel.connection_lost()
        await asyncio.sleep(0.05)
        assert notifier.held() == 1
        again = Peer(agent)
        await until(lambda: len(again.received) == 1)
        again.ack(again.received[0])
        await until(lambda: notifier.held() == 0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_immediate_policy_wakes_the_dialer_and_counters_are_served(tmp_path: Path):
    agent = make_agent()
    woken: list[int] = []
    notifier = Notifier(
        agent,
        [target("now", policy="immediate"), target("later")],
        NotificationBuffer(tmp_path / "b.sqlite", max_held=2),
        wake=lambda: woken.append(1),
    )
    task = asyncio.create_task(notifier.run())
    try:
        for i in range(3):
            notifier.notify((*LINK_DOWN, i))
        await until(lambda: bool(woken))
        assert notifier.held("now") == 2 and notifier.held("later") == 2
        assert agent.mib.get(NLM_STATS_LOGGED).value == 6
        assert agent.mib.get(NLM_STATS_BUMPED).value == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_targets_by_user_and_oversize_refused(tmp_path: Path):
    agent = make_agent()
    notifier = Notifier(agent, [target(user="ops")], NotificationBuffer(tmp_path / "b.sqlite"))
    with pytest.raises(LocalProtocolError):
        notifier.notify(LINK_DOWN, [VarBind(IF_INDEX, Value.octets(b"x" * 40000))] * 2)
    with pytest.raises(LocalProtocolError):
        notifier.notify("not.an.oid")
    assert notifier.held() == 0
    notifier.notify(LINK_DOWN)
    task = asyncio.create_task(notifier.run())
    try:
        other = Peer(agent, "mgr")
        await asyncio.sleep(0.05)
        assert other.received == []
        ops = Peer(agent, "ops")
        await until(lambda: len(ops.received) == 1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_config_targets_are_checked():
    section = AgentSnmpSection(targets=[{"name": "a", "policy": "immediate", "inform": True}])
    assert section.targets[0].policy == "immediate" and section.notify_max_held == 1000
    with pytest.raises(ValueError, match="unique"):
        AgentSnmpSection(targets=[{"name": "a"}, {"name": "a"}])
    with pytest.raises(ValueError):
        SnmpTarget(name="a", policy="sometimes")
