"""A device the manager has not approved says so, and which key to approve, where it waits."""

from __future__ import annotations

from harness import wait_until


def test_a_pending_device_says_which_key_to_approve(manager, make_agent):
    agent = make_agent("dev").start()
    wait_until(lambda: manager.status(agent.fingerprint) == "pending")
    assert agent.proc is not None
    expected = (
        f"the manager at 127.0.0.1:{manager.port} has not approved this device yet: its key "
        f"is {agent.fingerprint} (run `callhome approve {agent.fingerprint} --name NAME` on "
        "the manager)"
    )
    wait_until(lambda: expected in agent.proc.output())  # type: ignore[union-attr]
    assert "Host key is not trusted" not in agent.proc.output()
    approved = manager.cli("approve", agent.fingerprint, "--name", "dev1")
    assert approved.returncode == 0, approved.stderr
    wait_until(lambda: manager.status(agent.fingerprint) == "online")
