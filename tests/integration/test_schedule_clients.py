"""callhome schedule on a device with two call-home clients, through real processes: the
manager edits the entry whose endpoint it is (or the one named), and nothing else; a device
behind a relay needs the manager's public address or a name. And close-session: the device
closes the connection and, persistent, calls again at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from harness import AgentProc, ManagerProc, Proc, os_port, wait_until
from peers import require

NCS = "urn:ietf:params:xml:ns:yang:ietf-netconf-server"
FILTER = f'<netconf-server xmlns="{NCS}"><call-home/></netconf-server>'
CLOSE = '<close-session xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>'
NO_LINGER = {"CALLHOME_MANAGER__PERIODIC_LINGER": "-1"}


def give_clients(agent: AgentProc, *clients: str) -> None:
    """Put the agent's endpoints (manager-1, manager-2 ...) in these call-home clients."""
    path = agent.directory / "agent.toml"
    text = path.read_text()
    for i, client in enumerate(clients, start=1):
        line = f'name = "manager-{i}"\n'
        assert line in text
        text = text.replace(line, f'{line}client = "{client}"\n')
    path.write_text(text)


def approve(manager: ManagerProc, agent: AgentProc, name: str) -> None:
    wait_until(lambda: manager.status(agent.fingerprint) == "pending")
    done = manager.cli("approve", agent.fingerprint, "--name", name)
    assert done.returncode == 0, done.stderr
    wait_until(lambda: manager.status(agent.fingerprint) == "online")


def clients(manager: ManagerProc, name: str) -> dict[str, str]:
    """Each call-home client of the device, with its connection-type as XML text."""
    got = manager.cli("netconf", name, "get-config", "--filter", FILTER)
    assert got.returncode == 0, got.stderr
    root = etree.fromstring(got.stdout.encode(), etree.XMLParser(remove_blank_text=True))
    found = {}
    for entry in root.iter(f"{{{NCS}}}netconf-client"):
        ctype = entry.find(f"{{{NCS}}}connection-type")
        found[entry.findtext(f"{{{NCS}}}name") or ""] = (
            "" if ctype is None else "".join(etree.tostring(c).decode() for c in ctype)
        )
    return found


def connected(manager: ManagerProc, name: str) -> int:
    return sum(1 for e in manager.events(device=name) if e["kind"] == "connected")


@pytest.fixture
def quiet_manager(tmp_path: Path):
    m = ManagerProc(tmp_path / "manager", env=NO_LINGER).start()
    yield m
    m.stop()


def test_schedule_edits_the_client_whose_endpoint_the_manager_is(quiet_manager, tmp_path):
    manager = quiet_manager
    # the second endpoint never answers (TEST-NET-1): the device stays on the first
    agent = AgentProc(
        tmp_path / "dev", [f"127.0.0.1:{manager.port}", "192.0.2.9:4334"], [manager.public_key]
    )
    give_clients(agent, "noc", "lab")
    agent.start()
    try:
        approve(manager, agent, "dev1")
        assert clients(manager, "dev1") == {"noc": "", "lab": ""}

        # close-session: the device closes the connection and, persistent, calls again
        before = connected(manager, "dev1")
        closed = manager.cli("netconf", "dev1", "rpc", CLOSE)
        assert closed.returncode == 0, closed.stderr
        wait_until(lambda: connected(manager, "dev1") > before, timeout=20)
        assert agent.proc is not None
        wait_until(
            lambda: "ended: the manager closed the session; calling again" in agent.proc.output()  # type: ignore[union-attr]
        )

        done = manager.cli("schedule", "dev1", "--periodic", "1h", "--idle-timeout", "10m")
        assert done.returncode == 0, done.stderr
        assert clients(manager, "dev1") == {
            "noc": f'<periodic xmlns="{NCS}"><period>60</period>'
            "<idle-timeout>600</idle-timeout></periodic>",
            "lab": "",
        }

        def periodic() -> dict | None:
            d = manager.api("GET", "/v1/devices/dev1").json()
            return d if (d["schedule"] or {}).get("kind") == "periodic" else None

        shown = wait_until(periodic)
        assert shown["schedule"]["kind"] == "periodic"
        assert shown["schedule"]["period"] == 3600

        # the other client by name; the first stays as it was
        done = manager.cli("schedule", "dev1", "--persistent", "--client", "lab")
        assert done.returncode == 0, done.stderr
        got = clients(manager, "dev1")
        assert got["lab"] == f'<persistent xmlns="{NCS}"/>' and "<period>60" in got["noc"]

        # the model's units, before anything is queued
        jobs = len(manager.api("GET", "/v1/jobs", params={"limit": 1000}).json())
        refused = manager.cli("schedule", "dev1", "--periodic", "90s")
        assert refused.returncode == 1 and "whole number of minutes" in refused.stderr
        assert len(manager.api("GET", "/v1/jobs", params={"limit": 1000}).json()) == jobs

        # the endpoints are agent.toml's
        edit = (
            f'<netconf-server xmlns="{NCS}"><call-home><netconf-client><name>noc</name>'
            "<endpoints><endpoint><name>x</name><ssh><tcp-client-parameters>"
            "<remote-address>203.0.113.5</remote-address></tcp-client-parameters></ssh>"
            "</endpoint></endpoints></netconf-client></call-home></netconf-server>"
        )
        refused = manager.cli("netconf", "dev1", "edit-config", "--config", edit)
        assert refused.returncode == 1
        assert "set in the device's agent.toml" in refused.stderr
    finally:
        agent.stop()


def test_behind_a_relay_the_manager_needs_its_public_address_or_a_name(tmp_path: Path):
    found = require("socat")
    hop = os_port()
    manager = ManagerProc(tmp_path / "manager", env=NO_LINGER)
    relay_to = manager.port
    manager.start()
    relay = Proc(
        [
            found["socat"],
            f"TCP-LISTEN:{hop},bind=127.0.0.1,reuseaddr,fork",
            f"TCP:127.0.0.1:{relay_to}",
        ],
        name="socat",
    )
    agent = AgentProc(tmp_path / "dev", [f"127.0.0.1:{hop}"], [manager.public_key]).start()
    try:
        approve(manager, agent, "dev1")
        refused = manager.cli("schedule", "dev1", "--persistent")
        assert refused.returncode == 1
        assert f"ssh endpoint at 127.0.0.1:{relay_to}" in refused.stderr
        assert f"'default' [manager-1 (ssh 127.0.0.1:{hop})]" in refused.stderr
        assert "--client" in refused.stderr
        named = manager.cli("schedule", "dev1", "--persistent", "--client", "default")
        assert named.returncode == 0, named.stderr

        # told the address devices dial, the manager finds the entry by itself
        manager.stop()
        manager.env["CALLHOME_MANAGER__PUBLIC_ADDRESSES"] = f"127.0.0.1:{hop}"
        manager.start()
        wait_until(lambda: manager.status(agent.fingerprint) == "online", timeout=30)
        done = manager.cli("schedule", "dev1", "--periodic", "2h")
        assert done.returncode == 0, done.stderr
        assert "<period>120</period>" in clients(manager, "dev1")["default"]
    finally:
        agent.stop()
        relay.stop()
        manager.stop()
