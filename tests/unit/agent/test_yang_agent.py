"""The agent with YANG modules: its wiring, and its refusal to start on invalid stored data."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest
from lxml import etree

from callhome.agent.service import Agent
from callhome.agent.yang.library import GET_SCHEMA, MONITORING_NS, YANG_LIBRARY_CAPABILITY
from callhome.config import AgentConfig
from callhome.errors import ConfigError, ErrorTag, RpcError

YANG_DIR = Path(__file__).parent / "yang"
EXD = "urn:example:device"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


def make_config(state_dir: Path, **yang: object) -> AgentConfig:
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    return AgentConfig.model_validate(
        {
            "state_dir": str(state_dir),
            "endpoints": [{"address": "127.0.0.1:1"}],
            "manager_keys": [key],
            "notifications": {"enabled": False},
            "yang": yang,
        }
    )


def write_running(state_dir: Path, body: str) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "running.xml").write_text(f'<data xmlns="{NC}">{body}</data>')


def test_agent_with_modules_advertises_serves_and_validates(tmp_path):
    agent = Agent(
        make_config(tmp_path, modules=[str(YANG_DIR)], search_path=[str(YANG_DIR / "lib")])
    )
    assert agent.yang is not None
    assert any(c.startswith(YANG_LIBRARY_CAPABILITY) for c in agent.netconf.capabilities)
    session = agent.netconf.open_session(lambda: None)
    request = etree.Element(GET_SCHEMA)
    etree.SubElement(request, f"{{{MONITORING_NS}}}identifier").text = "example-legacy"
    reply = agent.netconf.handle(session, request)
    assert reply is not None and reply.text == (YANG_DIR / "example-legacy.yang").read_text()
    config = etree.fromstring(
        f'<config xmlns="{NC}"><system xmlns="{EXD}"><mtu>1</mtu></system></config>'
    )
    with pytest.raises(RpcError) as info:
        agent.datastore.edit_config("running", config)
    assert info.value.errors[0].tag is ErrorTag.INVALID_VALUE


def test_agent_without_modules_is_schemaless(tmp_path):
    agent = Agent(make_config(tmp_path))
    assert agent.yang is None
    # the protocol modules are advertised all the same (RFC 7950 section 5.6.4)
    assert any(c.startswith(YANG_LIBRARY_CAPABILITY) for c in agent.netconf.capabilities)
    config = etree.fromstring(
        f'<config xmlns="{NC}"><system xmlns="{EXD}"><mtu>1</mtu></system></config>'
    )
    agent.datastore.edit_config("running", config)


def test_agent_refuses_to_start_on_a_stored_configuration_that_does_not_conform(tmp_path):
    write_running(tmp_path, f'<system xmlns="{EXD}"><mtu>1</mtu></system>')
    config = make_config(tmp_path, modules=[str(YANG_DIR)], search_path=[str(YANG_DIR / "lib")])
    with pytest.raises(ConfigError, match=r"running datastore .* /device:system/device:mtu"):
        Agent(config)


def test_agent_starts_on_a_conforming_stored_configuration(tmp_path):
    write_running(
        tmp_path,
        f'<system xmlns="{EXD}"><mtu>1400</mtu></system><x xmlns="urn:example:other">1</x>',
    )
    config = make_config(tmp_path, modules=[str(YANG_DIR)], search_path=[str(YANG_DIR / "lib")])
    agent = Agent(config)
    assert agent.datastore.read().find(f"{{{EXD}}}system") is not None
