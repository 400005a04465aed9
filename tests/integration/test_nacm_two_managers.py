"""NETCONF access control with real processes: one device, two managers of different rights."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import AgentProc, ManagerProc, wait_until

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


def managers_toml(ro: ManagerProc, admin: ManagerProc) -> str:
    return (
        f'\n[[managers]]\nkey = "{ro.public_key.strip()}"\nuser = "noc"\ngroups = ["viewer"]\n'
        f'\n[[managers]]\nkey = "{admin.public_key.strip()}"\nuser = "root"\n'
        'groups = ["admin"]\n'
        f'\n[nacm_modules]\n"{DEMO}" = "demo"\n'
    )


def approve(manager: ManagerProc, fingerprint: str, name: str) -> None:
    wait_until(lambda: manager.status(fingerprint) == "pending")
    result = manager.cli("approve", fingerprint, "--name", name)
    assert result.returncode == 0, result.stderr
    wait_until(lambda: manager.status(fingerprint) == "online")


def test_two_managers_with_different_rights(tmp_path: Path) -> None:
    ro = ManagerProc(tmp_path / "ro").start()
    admin = ManagerProc(tmp_path / "admin").start()
    agent = AgentProc(
        tmp_path / "dev",
        [f"127.0.0.1:{ro.port}", f"127.0.0.1:{admin.port}"],
        [ro.public_key, admin.public_key],
    )
    try:
        with (agent.directory / "agent.toml").open("a") as f:
            f.write(managers_toml(ro, admin))
        (agent.directory / "running.xml").write_text(RUNNING)
        agent.start()

        # the read-only manager: protected data and the rules are left out; edits are denied
        approve(ro, agent.fingerprint, "dev")
        got = ro.cli("netconf", "dev", "get-config")
        assert got.returncode == 0, got.stderr
        assert "<hostname>dev</hostname>" in got.stdout
        assert "hidden-value" not in got.stdout and "secrets" not in got.stdout
        assert "rule-list" not in got.stdout
        edit = ro.cli(
            "netconf",
            "dev",
            "edit-config",
            "--config",
            f'<system xmlns="{DEMO}"><hostname>x</hostname></system>',
        )
        assert edit.returncode != 0
        assert "access-denied" in edit.stdout + edit.stderr
        events = wait_until(lambda: [e for e in ro.events() if e["kind"] == "access-denied"])
        assert events[0]["detail"]["errors"][0]["tag"] == "access-denied"
        assert "job" in events[0]["detail"]
        assert agent.proc is not None
        wait_until(
            lambda: (
                "access denied: manager" in agent.proc.output() and "'noc'" in agent.proc.output()
            )
        )
        assert "hidden-value" not in agent.proc.output()

        # the same device, now calling the admin manager: everything, and it may edit
        ro.stop()
        approve(admin, agent.fingerprint, "dev")
        got = admin.cli("netconf", "dev", "get-config")
        assert got.returncode == 0, got.stderr
        assert "hidden-value" in got.stdout and "rule-list" in got.stdout
        edit = admin.cli(
            "netconf",
            "dev",
            "edit-config",
            "--config",
            f'<system xmlns="{DEMO}"><hostname>changed</hostname></system>',
        )
        assert edit.returncode == 0, edit.stderr
        # a rule change that would lock every manager out of the rules is refused
        lockout = admin.cli(
            "netconf",
            "dev",
            "edit-config",
            "--config",
            f'<nacm xmlns="{NACM_NS}" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">'
            '<rule-list nc:operation="delete"><name>admin</name></rule-list></nacm>',
        )
        assert lockout.returncode != 0
        assert "no manager could change the NACM rules" in lockout.stdout + lockout.stderr
        got = admin.cli("netconf", "dev", "get-config")
        assert "<name>admin</name>" in got.stdout and "changed" in got.stdout
    finally:
        agent.stop()
        ro.stop()
        admin.stop()


def test_agent_refuses_to_start_when_a_manager_may_do_nothing(tmp_path: Path) -> None:
    ro = ManagerProc(tmp_path / "ro")
    admin = ManagerProc(tmp_path / "admin")
    agent = AgentProc(
        tmp_path / "dev",
        [f"127.0.0.1:{ro.port}", f"127.0.0.1:{admin.port}"],
        [ro.public_key, admin.public_key],
    )
    with (agent.directory / "agent.toml").open("a") as f:
        f.write(managers_toml(ro, admin))
    (agent.directory / "running.xml").write_text(
        RUNNING.replace("<write-default>", "<exec-default>deny</exec-default><write-default>")
    )
    agent.start()
    try:
        assert agent.proc is not None
        assert agent.proc.proc.wait(30) != 0
        output = agent.proc.output()
        assert "would be allowed no NETCONF operation" in output
        assert "'noc'" in output and "manager-1" in output
    finally:
        agent.stop()
