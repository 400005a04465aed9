"""SNMP is activity: a periodic device keeps an SNMP-only connection up while a manager uses
it, and hangs up once the manager stops for idle-timeout. Real agent and listener in one
loop, over reverse-ssh (the ``snmp`` subsystem) and reverse-tls (SNMP over TLS)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from net_testkit import ALGS, Pki, Recorder, listener_settings

from callhome.agent.service import Agent
from callhome.config import AgentConfig
from callhome.net import pki
from callhome.net.reverse_ssh import ManagerSshSettings, ReverseSshListener
from callhome.net.session import DeviceSession
from callhome.net.snmp_tls import SnmpTlsListener
from callhome.proto.schedule import NS as SCHEDULE_NS

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IDLE = 2  # idle-timeout, in seconds (a whole number, as the model has it)
SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)


def periodic(state_dir: Path) -> None:
    """A running datastore whose schedule is periodic, an hour apart, idle-timeout IDLE."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "running.xml").write_text(
        f'<data xmlns="{NC}"><netconf-server xmlns="{SCHEDULE_NS}"><call-home>'
        "<netconf-client><name>default</name><connection-type><periodic>"
        f"<period>60</period><idle-timeout>{IDLE}</idle-timeout>"
        "</periodic></connection-type></netconf-client></call-home></netconf-server></data>"
    )


Setup = Callable[[Path], "AsyncIterator[tuple[Agent, Any, str]]"]


async def over_ssh(tmp_path: Path) -> AsyncIterator[tuple[Agent, Any, str]]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    recorder = Recorder()
    listener = ReverseSshListener(recorder, ManagerSshSettings("mgr", {"": key}, ALGS))
    port = await listener.listen("127.0.0.1", 0)
    config = {
        "endpoints": [{"address": f"127.0.0.1:{port}"}],
        "manager_keys": [key.export_public_key().decode()],
    }
    agent = make_agent(tmp_path, config)
    recorder.allowed.add(agent.identity.fingerprint)
    try:
        yield agent, recorder, "snmp subsystem"
    finally:
        await listener.close()


async def over_tls(tmp_path: Path) -> AsyncIterator[tuple[Agent, Any, str]]:
    d = tmp_path / "pki"
    ca = pki.init_ca(d / "ca", "Test CA", key_type="ed25519")
    certs = Pki(ca, ca, pki.issue(ca, "manager", "mgr", out=d / "out"), d)
    recorder = Recorder()
    listener = SnmpTlsListener(recorder, listener_settings(certs), "mgr")
    port = await listener.listen("127.0.0.1", 0)
    issued = certs.device("dev.example.net")
    recorder.allowed.add("x509-name:dev.example.net")
    config = {
        "endpoints": [
            {"address": f"127.0.0.1:{port}", "orientation": "reverse-tls", "service": "snmp"}
        ],
        "tls": {
            "cert": str(issued.cert_file),
            "key": str(issued.key_file),
            "manager_ca": [str(ca.cert_file)],
        },
    }
    rule = {"fingerprint": certs.manager.fingerprint, "map_type": "specified", "name": "mgr"}
    agent = make_agent(tmp_path, config, cert_to_name=[rule])
    try:
        yield agent, recorder, "SNMP over TLS"
    finally:
        await listener.close()


def make_agent(tmp_path: Path, config: dict[str, Any], **snmp: Any) -> Agent:
    state_dir = tmp_path / "device"
    periodic(state_dir)
    return Agent(
        AgentConfig.model_validate(
            {
                "state_dir": str(state_dir),
                "notifications": {"enabled": False},
                "snmp": {"enabled": True, "users": [{"name": "mgr"}], "interfaces": False, **snmp},
                **config,
            }
        )
    )


@pytest.mark.parametrize("setup", [over_ssh, over_tls])
async def test_snmp_requests_keep_a_periodic_connection_up_until_idle(
    setup: Setup, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callhome.agent.dialer")
    setups = setup(tmp_path)
    agent, recorder, how = await anext(setups)
    running = asyncio.create_task(agent.run())
    try:
        session: DeviceSession = await asyncio.wait_for(recorder.ready.get(), 10)
        client = await session.snmp()
        # requests for three times the idle-timeout, a tenth of it apart: each is activity
        for _ in range(30):
            pdu = await asyncio.wait_for(client.get([SYS_DESCR]), 10)
            assert pdu.ok, how
            await asyncio.sleep(IDLE / 10)
        assert not session.closed.is_set(), f"{how}: dropped while in use"
        assert "hanging up" not in caplog.text
        # then nothing: the device hangs up after idle-timeout, until the next period
        await asyncio.wait_for(session.closed.wait(), 10)
        assert f"not used for {IDLE}s (idle-timeout); hanging up" in caplog.text
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        if agent.connection is not None:
            agent.connection.abort()
        await setups.aclose()
