"""A real manager and real devices, as processes on loopback, over reverse-ssh."""

import json
import os
import signal

import httpx
import pytest

from harness import ManagerProc, Proc, os_port, wait_until
from peers import require

pytestmark = pytest.mark.integration

SYS = '<system xmlns="urn:example:demo"><hostname>{}</hostname></system>'


def approve(manager: ManagerProc, fingerprint: str, name: str) -> None:
    wait_until(lambda: manager.status(fingerprint) == "pending")
    result = manager.cli("approve", fingerprint, "--name", name)
    assert result.returncode == 0, result.stderr
    wait_until(lambda: manager.status(fingerprint) == "online")


def test_unknown_device_is_pending_until_approved(manager, make_agent):
    agent = make_agent("dev").start()
    wait_until(lambda: manager.status(agent.fingerprint) == "pending")
    # refused before any credential: the device never saw an authenticated manager
    result = manager.cli("netconf", agent.fingerprint, "get-config")
    assert result.returncode == 1
    assert "pending" in result.stderr

    listing = json.loads(manager.cli("devices", "--json").stdout)
    (entry,) = [d for d in listing if d["fingerprint"] == agent.fingerprint]
    assert entry["status"] == "pending" and entry["name"] is None
    assert entry["address"].startswith("127.0.0.1:")

    approve(manager, agent.fingerprint, "dev1")
    table = manager.cli("devices").stdout
    assert "dev1" in table and "online" in table and agent.fingerprint in table

    kinds = [e["kind"] for e in manager.events()]
    assert "unknown-device" in kinds and "approved" in kinds and "connected" in kinds


def test_get_config_and_edit_config_round_trip(manager, make_agent):
    agent = make_agent("dev").start()
    approve(manager, agent.fingerprint, "dev1")
    edit = manager.cli("netconf", "dev1", "edit-config", "--config", SYS.format("alpha"))
    assert edit.returncode == 0, edit.stderr
    assert "<ok/>" in edit.stdout
    got = manager.cli(
        "netconf", "dev1", "get-config", "--filter", '<system xmlns="urn:example:demo"/>'
    )
    assert got.returncode == 0, got.stderr
    assert "<hostname>alpha</hostname>" in got.stdout

    # an rpc-error comes back as a clear message and a non-zero exit
    create = (
        '<system xmlns="urn:example:demo" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"'
        ' nc:operation="create"><hostname>alpha</hostname></system>'
    )
    failed = manager.cli("netconf", "dev1", "edit-config", "--config", create)
    assert failed.returncode == 1
    assert "rpc-error: application/data-exists" in failed.stderr

    locked = manager.cli("netconf", "dev1", "lock")
    assert locked.returncode == 0, locked.stderr
    assert manager.cli("netconf", "dev1", "unlock").returncode == 0


def test_restart_either_side_keeps_name_and_data(tmp_path, manager, make_agent):
    agent = make_agent("dev").start()
    approve(manager, agent.fingerprint, "dev1")
    assert (
        manager.cli("netconf", "dev1", "edit-config", "--config", SYS.format("kept")).returncode
        == 0
    )

    agent.stop()
    wait_until(lambda: manager.status(agent.fingerprint) == "offline")
    agent.start()
    wait_until(lambda: manager.status(agent.fingerprint) == "online")
    got = manager.cli("netconf", "dev1", "get-config")
    assert "<hostname>kept</hostname>" in got.stdout

    manager.stop(signal.SIGKILL)
    manager.start()
    wait_until(lambda: manager.status(agent.fingerprint) == "online", timeout=30)
    assert manager.devices()[agent.fingerprint]["name"] == "dev1"
    got = manager.cli("netconf", "dev1", "get-config")
    assert "<hostname>kept</hostname>" in got.stdout


def test_changed_key_is_refused_never_rebound(manager, make_agent):
    first = make_agent("dev").start()
    approve(manager, first.fingerprint, "dev1")
    first.stop()
    impostor = make_agent("dev-new-key").start()
    wait_until(lambda: manager.status(impostor.fingerprint) == "pending")
    result = manager.cli("approve", impostor.fingerprint, "--name", "dev1")
    assert result.returncode == 1
    assert "dev1" in result.stderr
    assert manager.devices()[first.fingerprint]["name"] == "dev1"
    assert manager.devices()[impostor.fingerprint]["name"] is None
    assert any(e["kind"] == "key-mismatch" for e in manager.events())


def test_rejected_device_stays_refused(manager, make_agent):
    agent = make_agent("dev").start()
    wait_until(lambda: manager.status(agent.fingerprint) == "pending")
    assert manager.cli("reject", agent.fingerprint).returncode == 0
    wait_until(lambda: any(e["kind"] == "refused-connection" for e in manager.events()))
    assert manager.status(agent.fingerprint) == "refused"
    assert manager.cli("forget", "nobody").returncode == 1


def test_cut_path_is_noticed_by_keepalives_and_redialed(manager, make_agent):
    found = require("socat")
    hop = os_port()
    socat = [
        found["socat"],
        f"TCP-LISTEN:{hop},bind=127.0.0.1,reuseaddr,fork",
        f"TCP:127.0.0.1:{manager.port}",
    ]
    forwarder = Proc(socat, name="socat")
    agent = make_agent(
        "dev",
        [f"127.0.0.1:{hop}"],
        {"CALLHOME_KEEPALIVE__INTERVAL": "0.3", "CALLHOME_KEEPALIVE__COUNT_MAX": "2"},
    ).start()
    try:
        approve(manager, agent.fingerprint, "dev1")
        # freeze the path: no FIN, no RST, nothing; only keepalives can tell
        os.killpg(forwarder.proc.pid, signal.SIGSTOP)
        agent.proc.wait_for(r"lost; redialing", timeout=30)
        os.killpg(forwarder.proc.pid, signal.SIGKILL)
        forwarder.proc.wait(5)
        forwarder = Proc(socat, name="socat")

        def reconnected() -> bool:
            events = manager.events(device="dev1")
            return sum(e["kind"] == "connected" for e in events) >= 2

        wait_until(reconnected, timeout=30)
        assert manager.status(agent.fingerprint) == "online"
        assert manager.cli("netconf", "dev1", "get-config").returncode == 0
    finally:
        forwarder.stop(signal.SIGKILL)


def test_offline_and_unknown_devices_give_clear_errors(manager):
    result = manager.cli("netconf", "ghost", "get-config")
    assert result.returncode == 1
    assert "no device named 'ghost'" in result.stderr
    no_token = httpx.get(manager.url + "/v1/devices", timeout=10)
    assert no_token.status_code == 401
    wrong = httpx.get(
        manager.url + "/v1/devices", headers={"Authorization": "Bearer wrong"}, timeout=10
    )
    assert wrong.status_code == 401


def test_credentials_are_chosen_by_device_key(tmp_path):
    """RFC 8071 C7: the key the manager presents depends on which device called."""
    from callhome.net.keys import ensure_key, public_line
    from harness import AgentProc

    manager = ManagerProc(tmp_path / "mgr")
    ops_key = ensure_key(manager.directory / "ops_key")
    with open(manager.directory / "manager.toml", "a") as f:
        f.write('\n[manager.credentials.ops]\nkey = "ops_key"\n')
    manager.start()
    agent = AgentProc(
        tmp_path / "dev", [f"127.0.0.1:{manager.port}"], [public_line(ops_key)]
    ).start()
    try:
        # with the default key the device refuses the manager: an auth failure is recorded
        assert manager.cli("approve", agent.fingerprint, "--name", "dev1").returncode == 0
        wait_until(lambda: any(e["kind"] == "auth-failed" for e in manager.events()))
        assert manager.status(agent.fingerprint) == "offline"
        unknown = manager.cli("approve", agent.fingerprint, "--name", "dev1", "--credential", "x")
        assert unknown.returncode == 1 and "no credential named 'x'" in unknown.stderr
        chosen = manager.cli("approve", agent.fingerprint, "--name", "dev1", "--credential", "ops")
        assert chosen.returncode == 0, chosen.stderr
        wait_until(lambda: manager.status(agent.fingerprint) == "online")
        assert manager.devices()[agent.fingerprint]["credential"] == "ops"
    finally:
        agent.stop()
        manager.stop()
