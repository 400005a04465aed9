"""SNMP on the reverse-ssh connection with real asyncssh on 127.0.0.1, both ends in one loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh
import pytest
from net_testkit import ALGS, KEEP, EchoHandler

from callhome.agent.snmp.agent import SnmpAgent, SnmpState, UserAccess, register_system
from callhome.agent.snmp.mib import MibRegistry
from callhome.config import AgentSnmpSection
from callhome.errors import ServiceRefused, SessionClosed
from callhome.manager import snmp as snmp_jobs
from callhome.net.keys import identity_of
from callhome.net.reverse_ssh import DeviceSshSettings, dial_reverse_ssh
from callhome.net.session import DeviceSession
from callhome.proto.snmp import (
    ErrorStatus,
    Message,
    Value,
    encode_message,
    get_request,
)

SYS = (1, 3, 6, 1, 2, 1, 1)
ENGINE_ID = bytes.fromhex("80000000050a0b0c0d")


def snmp_agent(tmp_path: Path) -> SnmpAgent:
    registry = MibRegistry()
    agent = SnmpAgent(registry, ENGINE_ID, {"mgr": UserAccess(((1, 3, 6, 1),), (SYS,))})
    section = AgentSnmpSection(enabled=True, sys_descr="ssh box")
    register_system(registry, agent, SnmpState(tmp_path / "s.json"), section, (1, 3, 6, 1, 4))
    return agent


async def connect(ssh_manager, snmp: SnmpAgent | None):
    _listener, recorder, port, key = ssh_manager
    settings = DeviceSshSettings(
        host_key=asyncssh.generate_private_key("ssh-ed25519"),
        manager_keys=[key],
        handler=EchoHandler(),  # type: ignore[arg-type]
        auth_timeout=5,
        keepalive=KEEP,
        algorithms=ALGS,
        snmp=snmp,
    )
    recorder.allowed.add(identity_of(settings.host_key).fingerprint)
    conn = await dial_reverse_ssh("127.0.0.1", port, settings)
    session: DeviceSession = await asyncio.wait_for(recorder.ready.get(), 10)
    return conn, session


async def test_get_walk_and_set_over_the_callhome_connection(ssh_manager, tmp_path):
    conn, session = await connect(ssh_manager, snmp_agent(tmp_path))
    try:
        client = await session.snmp()
        assert client.engine_id == ENGINE_ID  # RFC 5343 discovery on first use
        assert await session.snmp() is client  # one channel, kept open
        ok, result = await snmp_jobs.execute(
            client, {"operation": "get", "oids": ["1.3.6.1.2.1.1.1.0"]}
        )
        assert ok and result["varbinds"][0]["value"] == "ssh box"
        ok, result = await snmp_jobs.execute(
            client, {"operation": "getnext", "oids": ["1.3.6.1.2.1.1.1.0"]}
        )
        assert result["varbinds"][0]["oid"] == "1.3.6.1.2.1.1.2.0"
        for op in ("walk", "bulkwalk"):
            payload = {"operation": op, "oids": ["1.3.6.1.2.1.1"], "max_repetitions": 3}
            ok, result = await snmp_jobs.execute(client, payload)
            assert ok and [v["oid"] for v in result["varbinds"]] == [
                f"1.3.6.1.2.1.1.{i}.0" for i in range(1, 8)
            ], op
        contact = {"oid": "1.3.6.1.2.1.1.4.0", "type": "s", "value": "noc@example.net"}
        ok, result = await snmp_jobs.execute(client, {"operation": "set", "varbinds": [contact]})
        assert ok
        descr = {"oid": "1.3.6.1.2.1.1.1.0", "type": "s", "value": "mine"}
        ok, result = await snmp_jobs.execute(client, {"operation": "set", "varbinds": [descr]})
        assert not ok and result["error_status"] == "notWritable" and result["error_index"] == 1
        pdu = await client.get([(*SYS, 4, 0)])
        assert pdu.varbinds[0].value == Value.octets("noc@example.net")
        # NETCONF on the same connection is untouched
        assert (await session.netconf.get_config()).data is not None
    finally:
        conn.close()


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x04\x02hi",  # not a SEQUENCE
        b"\x30\x84\x7f\xff\xff\xff",  # length beyond the cap
        b"\x30\x03\x02\x01\x01",  # SNMPv2c version, well framed
        encode_message(Message(1, get_request(1, [SYS]), security_model=3)),  # USM
    ],
    ids=["tag", "oversize", "version", "security-model"],
)
async def test_bad_input_closes_the_snmp_channel_only(ssh_manager, tmp_path, garbage):
    conn, session = await connect(ssh_manager, snmp_agent(tmp_path))
    try:
        client = await session.snmp()
        client.write_raw(garbage)
        pending = asyncio.ensure_future(client.get([(*SYS, 1, 0)]))
        with pytest.raises(SessionClosed):
            await asyncio.wait_for(pending, 10)
        assert client.closed
        assert (await session.netconf.get_config()).data is not None  # NETCONF stays up
        again = await session.snmp()  # a new channel on the same connection
        assert again is not client
        assert (await again.get([(*SYS, 1, 0)])).varbinds[0].value == Value.octets("ssh box")
    finally:
        conn.close()


async def test_truncated_message_then_eof(ssh_manager, tmp_path):
    conn, session = await connect(ssh_manager, snmp_agent(tmp_path))
    try:
        client = await session.snmp()
        client.write_raw(encode_message(Message(1, get_request(1, [SYS])))[:-2])
        client.close()
        assert (await session.netconf.get_config()).data is not None
        assert (await (await session.snmp()).get([(*SYS, 5, 0)])).varbinds
    finally:
        conn.close()


async def test_device_without_snmp_refuses_the_subsystem(ssh_manager):
    conn, session = await connect(ssh_manager, None)
    try:
        with pytest.raises(ServiceRefused):
            await session.snmp()
        assert (await session.netconf.get_config()).data is not None
    finally:
        conn.close()


async def test_unknown_user_is_refused_by_access_control(ssh_manager, tmp_path):
    agent = snmp_agent(tmp_path)
    agent.users = {"someone-else": agent.users["mgr"]}
    conn, session = await connect(ssh_manager, agent)
    try:
        client = await session.snmp()  # discovery itself answers with authorizationError
        pdu = await client.get([(*SYS, 1, 0)])
        assert pdu.error_status is ErrorStatus.AUTHORIZATION_ERROR
    finally:
        conn.close()
