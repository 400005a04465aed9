"""ncclient, a NETCONF client nobody here wrote, meets the agent's access control through call
home: an access-denied reply is a proper RPCError, and denied data is left out of replies."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from interop_helpers import make_manager_key

from harness import AgentProc, os_port

ncclient_manager = pytest.importorskip("ncclient.manager", reason="ncclient is not installed")
RPCError = pytest.importorskip("ncclient.operations").RPCError

pytestmark = pytest.mark.interop

BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
NACM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
DEMO = "urn:example:demo"

RUNNING = f"""<data xmlns="{BASE_NS}">
<nacm xmlns="{NACM_NS}">
  <rule-list><name>viewers</name><group>viewer</group>
    <rule><name>no-secrets</name><path>/demo:system/demo:secrets</path>
      <access-operations>read</access-operations><action>deny</action></rule>
    <rule><name>no-lock</name><rpc-name>lock</rpc-name><action>deny</action></rule>
  </rule-list>
  <rule-list><name>admin</name><group>admin</group>
    <rule><name>all</name><action>permit</action></rule></rule-list>
</nacm>
<system xmlns="{DEMO}"><hostname>dev</hostname>
  <secrets><token>hidden-value</token></secrets></system>
</data>
"""


def test_ncclient_sees_access_denied_as_rpc_error(tmp_path: Path) -> None:
    key = make_manager_key(tmp_path / "manager")
    port = os_port()
    agent = AgentProc(tmp_path / "agent", [f"127.0.0.1:{port}"], [key.public_line])
    with (agent.directory / "agent.toml").open("a") as f:
        f.write(
            f'\n[[managers]]\nkey = "{key.public_line.strip()}"\ngroups = ["viewer"]\n'
            '\n[[managers]]\nkey = "SHA256:nobody-has-this-key"\nuser = "root"\n'
            'groups = ["admin"]\n'
            f'\n[nacm_modules]\n"{DEMO}" = "demo"\n'
        )
    (agent.directory / "running.xml").write_text(RUNNING)
    agent.start()
    try:
        nc = ncclient_manager.call_home(
            host="127.0.0.1",
            port=port,
            username="netconf",
            key_filename=str(key.private),
            hostkey_verify=False,
            allow_agent=False,
            look_for_keys=False,
            timeout=30,
        )
    except Exception as exc:
        agent.stop()
        output = agent.proc.output() if agent.proc else ""
        pytest.fail(f"ncclient got no session from the agent ({exc!r}); agent said:\n{output}")
    try:
        reply = nc.get_config(source="running")
        assert reply.ok
        assert "<hostname>dev</hostname>" in reply.xml
        assert "hidden-value" not in reply.xml and "rule-list" not in reply.xml
        with pytest.raises(RPCError) as caught:
            nc.lock(target="running")
        assert caught.value.tag == "access-denied"
        assert caught.value.type == "protocol"
        assert caught.value.severity == "error"
        with pytest.raises(RPCError) as caught:
            nc.edit_config(
                target="running",
                config=f'<config xmlns="{BASE_NS}"><system xmlns="{DEMO}">'
                "<hostname>x</hostname></system></config>",
            )
        assert caught.value.tag == "access-denied"
        assert caught.value.type == "application"
        assert (caught.value.path or "").startswith("/demo:system")
        # the session survives the refusals
        assert nc.get_config(source="running").ok
        assert agent.proc is not None
        assert "user 'netconf'" in agent.proc.output()
    finally:
        with contextlib.suppress(Exception):
            nc.close_session()
        agent.stop()
