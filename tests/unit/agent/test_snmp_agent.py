"""The device's SNMP engine without a network: views, MIB order, errors of RFC 3416."""

from __future__ import annotations

from pathlib import Path

import pytest

from callhome.agent.snmp.agent import SnmpAgent, SnmpState, UserAccess, register_system
from callhome.agent.snmp.mib import (
    IF_ENTRY,
    MibRegistry,
    SetError,
    register_interfaces,
    register_ups_ident,
)
from callhome.config import AgentSnmpSection
from callhome.proto.snmp import (
    AUTH_PRIV,
    LOCAL_ENGINE_ID,
    ErrorStatus,
    Message,
    MsgFlags,
    PduType,
    SnmpStream,
    Value,
    ValueType,
    VarBind,
    get_request,
    getbulk_request,
    getnext_request,
    set_request,
)

SYS = (1, 3, 6, 1, 2, 1, 1)
ENGINE_ID = bytes.fromhex("800000000501020304")


def fake_sysfs(root: Path) -> Path:
    for name, index, up in (("eth0", 2, True), ("lo", 1, True)):
        d = root / name
        (d / "statistics").mkdir(parents=True)
        (d / "ifindex").write_text(f"{index}\n")
        (d / "type").write_text("772\n" if name == "lo" else "1\n")
        (d / "mtu").write_text("1500\n")
        (d / "address").write_text("02:00:00:00:00:01\n")
        (d / "flags").write_text("0x1003\n" if up else "0x1002\n")
        (d / "operstate").write_text("up\n" if name == "eth0" else "unknown\n")
        (d / "statistics" / "rx_bytes").write_text(str(2**32 + 5))
    return root


@pytest.fixture
def agent(tmp_path: Path) -> SnmpAgent:
    registry = MibRegistry()
    agent = SnmpAgent(
        registry,
        ENGINE_ID,
        {
            "admin": UserAccess(((1, 3, 6, 1),), (SYS,)),
            "viewer": UserAccess(((1, 3, 6, 1, 2, 1, 1),), ()),
        },
        clock=lambda: 100.0,
    )
    section = AgentSnmpSection(enabled=True, sys_descr="test box", sys_location="lab")
    register_system(registry, agent, SnmpState(tmp_path / "state.json"), section, (1, 3, 6, 1, 4))
    register_interfaces(registry, fake_sysfs(tmp_path / "net"))
    register_ups_ident(registry, "ACME", "UPS-1", "1.2", "agent 1")
    return agent


def ask(agent: SnmpAgent, pdu, user: str = "admin", **kw) -> Message:
    message = Message(
        7, pdu, kw.pop("engine", ENGINE_ID), flags=AUTH_PRIV | MsgFlags.REPORTABLE, **kw
    )
    reply = agent.process(user, message)
    assert reply is not None
    return reply


def test_get_scalars_and_exceptions(agent):
    pdu = get_request(1, [(*SYS, 1, 0), (*SYS, 1, 1), (1, 3, 6, 1, 2, 1, 99, 0), (*SYS, 6, 0)])
    reply = ask(agent, pdu)
    assert reply.msg_id == 7 and reply.flags == AUTH_PRIV  # reportable cleared
    values = [vb.value for vb in reply.pdu.varbinds]
    assert values[0] == Value.octets("test box")
    assert values[1].type is ValueType.NO_SUCH_INSTANCE
    assert values[2].type is ValueType.NO_SUCH_OBJECT
    assert values[3] == Value.octets("lab")


def test_discovery_in_the_local_engine_context(agent):
    reply = ask(
        agent,
        get_request(1, [(1, 3, 6, 1, 6, 3, 10, 2, 1, 1, 0)]),
        "viewer",
        engine=LOCAL_ENGINE_ID,
    )
    assert reply.pdu.varbinds[0].value == Value.octets(ENGINE_ID)


def test_unknown_context_engine_and_name_give_reports(agent):
    reply = ask(agent, get_request(1, [(*SYS, 1, 0)]), engine=b"\x80\0\0\0\x05zz")
    assert reply.pdu.type is PduType.REPORT
    assert reply.pdu.varbinds[0].oid == (1, 3, 6, 1, 6, 3, 11, 2, 1, 3, 0)
    reply = ask(agent, get_request(1, [(*SYS, 1, 0)]), context_name=b"other")
    assert reply.pdu.type is PduType.REPORT
    assert reply.pdu.varbinds[0].oid == (1, 3, 6, 1, 6, 3, 12, 1, 5, 0)


def test_unknown_user_gets_authorization_error(agent):
    reply = ask(agent, get_request(1, [(*SYS, 1, 0)]), "stranger")
    assert reply.pdu.error_status is ErrorStatus.AUTHORIZATION_ERROR


def test_getnext_walks_in_order_and_respects_the_view(agent):
    reply = ask(agent, getnext_request(1, [SYS, (*SYS, 7, 0)]), "viewer")
    first, after = reply.pdu.varbinds
    assert first.oid == (*SYS, 1, 0)
    # IF-MIB is outside viewer's view; the snmpEngine group is readable to every user
    assert after.oid == (1, 3, 6, 1, 6, 3, 10, 2, 1, 1, 0)
    reply = ask(agent, getnext_request(1, [(*SYS, 7, 0)]))
    assert reply.pdu.varbinds[0].oid == (1, 3, 6, 1, 2, 1, 2, 1, 0)  # ifNumber
    assert reply.pdu.varbinds[0].value == Value.integer(2)


def test_getbulk_table_columns_and_end(agent):
    reply = ask(agent, getbulk_request(1, [(*SYS, 3), IF_ENTRY], 1, 4))
    vbs = reply.pdu.varbinds
    assert vbs[0].oid == (*SYS, 3, 0) and vbs[0].value.type is ValueType.TIMETICKS
    assert [vb.oid for vb in vbs[1:]] == [
        (*IF_ENTRY, 1, 1),
        (*IF_ENTRY, 1, 2),
        (*IF_ENTRY, 2, 1),
        (*IF_ENTRY, 2, 2),
    ]
    assert vbs[4].value == Value.octets("eth0")
    rx = ask(agent, get_request(2, [(*IF_ENTRY, 10, 2)])).pdu.varbinds[0].value
    assert rx == Value(ValueType.COUNTER32, 5)  # wrapped at 2^32
    end = ask(agent, getbulk_request(3, [(1, 3, 6, 1, 6, 3, 99)], 0, 5)).pdu.varbinds
    assert len(end) == 1 and end[0].value.type is ValueType.END_OF_MIB_VIEW


def test_ups_ident_added_by_device_code(agent):
    reply = ask(agent, getnext_request(1, [(1, 3, 6, 1, 2, 1, 33)]))
    assert reply.pdu.varbinds[0].value == Value.octets("ACME")


def test_set_checks_in_rfc_order_and_persists(agent, tmp_path):
    contact = (*SYS, 4, 0)
    cases = [
        (VarBind((*SYS, 1, 0), Value.octets("x")), ErrorStatus.NOT_WRITABLE),
        (VarBind((1, 3, 6, 1, 2, 1, 2, 1, 0), Value.integer(1)), ErrorStatus.NO_ACCESS),
        (VarBind(contact, Value.integer(1)), ErrorStatus.WRONG_TYPE),
        (VarBind(contact, Value.octets("x" * 256)), ErrorStatus.WRONG_LENGTH),
        (VarBind(contact, Value.octets(b"\xff")), ErrorStatus.WRONG_VALUE),
        (VarBind((*SYS, 4, 1), Value.octets("x")), ErrorStatus.NO_CREATION),
        (VarBind((*SYS, 99, 0), Value.octets("x")), ErrorStatus.NOT_WRITABLE),
    ]
    for vb, status in cases:
        reply = ask(agent, set_request(1, [VarBind(contact, Value.octets("ok")), vb]))
        assert (reply.pdu.error_status, reply.pdu.error_index) == (status, 2), vb
    assert ask(agent, get_request(1, [contact])).pdu.varbinds[0].value == Value.octets("")
    viewer = ask(agent, set_request(1, [VarBind(contact, Value.octets("v"))]), "viewer")
    assert viewer.pdu.error_status is ErrorStatus.NO_ACCESS
    reply = ask(agent, set_request(1, [VarBind(contact, Value.octets("ops@example.net"))]))
    assert reply.pdu.ok
    assert '"sysContact": "ops@example.net"' in (tmp_path / "state.json").read_text()
    assert ask(agent, get_request(1, [contact])).pdu.varbinds[0].value.value == b"ops@example.net"


def test_failed_commit_is_undone(agent):
    registry: MibRegistry = agent.mib
    store = {"a": b"1"}

    def broken(value: object) -> None:
        raise OSError("disk full")

    registry.scalar(
        (*SYS, 50), ValueType.OCTET_STRING, lambda: store["a"], lambda v: store.__setitem__("a", v)
    )  # type: ignore[arg-type]
    registry.scalar((*SYS, 51), ValueType.OCTET_STRING, lambda: b"", broken)
    pdu = set_request(
        1, [VarBind((*SYS, 50, 0), Value.octets("2")), VarBind((*SYS, 51, 0), Value.octets("3"))]
    )
    reply = ask(agent, pdu)
    assert (reply.pdu.error_status, reply.pdu.error_index) == (ErrorStatus.COMMIT_FAILED, 2)
    assert store["a"] == b"1"


def test_registry_refuses_overlaps():
    registry = MibRegistry()
    registry.scalar(SYS, ValueType.INTEGER, lambda: 1)
    with pytest.raises(Exception, match="overlaps"):
        registry.scalar((*SYS, 1), ValueType.INTEGER, lambda: 1)
    assert isinstance(SetError(ErrorStatus.WRONG_VALUE), Exception)


def test_non_command_pdus_are_dropped(agent):
    message = Message(1, getnext_request(1, [SYS]))
    trap = Message(1, message.pdu.__class__(PduType.TRAP, 1, ()))
    assert agent.process("admin", trap) is None


def test_requests_and_notifications_are_activity_but_discovery_is_not(agent):
    """What a periodic schedule's idle-timeout counts from (``last_activity``)."""
    stream, written = SnmpStream(), []
    channel = agent.open_channel("admin", None, "manager", written.append, lambda: None)

    def fed(message: Message) -> bool:
        agent.last_activity = 0.0
        channel.feed(stream.send(message))
        return agent.last_activity > 0.0

    discovery = Message(1, get_request(1, [(1, 3, 6, 1, 6, 3, 10, 2, 1, 1, 0)]), LOCAL_ENGINE_ID)
    assert not fed(discovery)  # a manager's keepalive keeps nobody busy
    assert len(written) == 1  # ... though it is answered
    assert fed(Message(2, get_request(2, [(*SYS, 1, 0)]), ENGINE_ID))
    assert fed(Message(3, get_request(3, [(1, 3, 6, 1, 6, 3, 10, 2, 1, 1, 0)]), ENGINE_ID))
    agent.last_activity = 0.0
    channel.send(Message(4, get_request(4, []), ENGINE_ID))  # as a notification goes out
    assert agent.last_activity > 0.0
