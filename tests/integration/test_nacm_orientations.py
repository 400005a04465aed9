"""NETCONF access control for a manager known by its client certificate (reverse-tls)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import OrientedAgentProc, OrientedManagerProc, TestPki, wait_until

pytestmark = pytest.mark.integration

NACM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
DEMO = "urn:example:demo"

RUNNING = f"""<data xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
<nacm xmlns="{NACM_NS}">
  <write-default>deny</write-default>
  <rule-list><name>admin</name><group>admin</group>
    <rule><name>all</name><action>permit</action></rule></rule-list>
  <rule-list><name>viewers</name><group>viewer</group>
    <rule><name>no-secrets</name><path>/demo:system/demo:secrets</path>
      <access-operations>read</access-operations><action>deny</action></rule></rule-list>
</nacm>
<system xmlns="{DEMO}"><hostname>dev</hostname>
  <secrets><token>hidden-value</token></secrets></system>
</data>
"""


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[OrientedManagerProc]:
    m = OrientedManagerProc(tmp_path / "manager", TestPki(tmp_path / "pki")).start()
    yield m
    m.stop()


def netconf(manager: OrientedManagerProc, name: str, **body: object) -> dict[str, Any]:
    response = manager.api("POST", f"/v1/devices/{name}/netconf", json=body)
    response.raise_for_status()
    job: dict[str, Any] = response.json()
    return job


def test_tls_manager_is_read_only_by_its_certificate(
    manager: OrientedManagerProc, tmp_path: Path
) -> None:
    agent = OrientedAgentProc(tmp_path / "dev", "reverse-tls", manager)
    with (agent.directory / "agent.toml").open("a") as f:
        f.write(
            f'\n[[managers]]\ncertificate = "{manager.cert.cert_file}"\n'
            'user = "noc"\ngroups = ["viewer"]\n'
            # the same manager's turn host key, an administrator there: another identity
            f'\n[[managers]]\nhost_key = "{manager.turn_host_key.strip()}"\n'
            'user = "root"\ngroups = ["admin"]\n'
            f'\n[nacm_modules]\n"{DEMO}" = "demo"\n'
        )
    (agent.directory / "running.xml").write_text(RUNNING)
    assert manager.api("POST", f"/v1/devices/{agent.fingerprint}/approve", json={"name": "dev"})
    agent.start()
    try:
        wait_until(lambda: manager.status(agent.fingerprint) == "online")

        got = netconf(manager, "dev", operation="get-config")
        assert got["state"] == "succeeded", got
        reply = got["result"]["reply"]
        assert "<hostname>dev</hostname>" in reply
        assert "hidden-value" not in reply and "secrets" not in reply
        assert "rule-list" not in reply

        edit = netconf(
            manager,
            "dev",
            operation="edit-config",
            config=f'<system xmlns="{DEMO}"><hostname>x</hostname></system>',
        )
        assert edit["state"] == "failed", edit
        (error,) = edit["result"]["errors"]
        assert error["tag"] == "access-denied"

        assert agent.proc is not None
        logged = wait_until(lambda: "access denied: manager" in agent.proc.output())
        assert logged
        output = agent.proc.output()
        assert manager.cert.fingerprint in output and "'noc'" in output
        assert "hidden-value" not in output
    finally:
        agent.stop()
