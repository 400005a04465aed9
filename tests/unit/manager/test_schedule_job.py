"""callhome schedule as a job, run against our agent's NETCONF service with two call-home
clients: the entry that is this connection is found and only its connection-type changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncssh
import pytest
from lxml import etree

from callhome.agent.service import Agent
from callhome.config import AgentConfig
from callhome.errors import ConfigError, RpcError
from callhome.manager.schedule_job import run_schedule_job, schedule_payload
from callhome.net.session import Orientation
from callhome.proto.call_home import read_clients
from callhome.proto.netconf.capabilities import ModuleInfo, ModuleSet
from callhome.proto.netconf.events import RpcReply
from callhome.proto.netconf.messages import rpc_error_to_xml
from callhome.proto.schedule import Periodic, Persistent

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NCS = "urn:ietf:params:xml:ns:yang:ietf-netconf-server"
SERVER = ModuleInfo("ietf-netconf-server", "2023-12-28", NCS)


def two_client_agent(state_dir: Path) -> Agent:
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    return Agent(
        AgentConfig.model_validate(
            {
                "state_dir": str(state_dir),
                "endpoints": [
                    {"name": "here", "address": "127.0.0.1:4334", "client": "noc"},
                    {"name": "there", "address": "192.0.2.9:4334", "client": "lab"},
                ],
                "manager_keys": [key],
            }
        )
    )


class _Session:
    orientation = Orientation.REVERSE_SSH
    name = "dev"

    def __init__(self, capabilities: list[str]) -> None:
        self.capabilities = tuple(capabilities)


class Device:
    """Runs what the job sends through the agent's service, as a transport would."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.session = agent.netconf.open_session(lambda: None)
        self.sent: list[tuple[str, bool]] = []

    async def send(self, operation: etree._Element, changes: bool) -> RpcReply:
        self.sent.append((etree.QName(operation).localname, changes))
        try:
            data = self.agent.netconf.handle(self.session, operation)
        except RpcError as exc:
            reply = etree.Element(f"{{{NC}}}rpc-reply")
            for e in exc.errors:
                reply.append(rpc_error_to_xml(e))
            return RpcReply("1", False, None, exc.errors, reply, etree.tostring(reply))
        reply = etree.Element(f"{{{NC}}}rpc-reply")
        reply.append(data if data is not None else etree.Element(f"{{{NC}}}ok"))
        return RpcReply("1", True, data, [], reply, etree.tostring(reply))

    def clients(self) -> dict[str, Any]:
        return {c.name: c.connection_type for c in read_clients(self.agent.datastore.read())}


async def run(
    device: Device,
    payload: dict[str, Any],
    dialled: list[tuple[str, int]],
    modules: ModuleSet | None = None,
    capabilities: list[str] | None = None,
) -> tuple[bool, dict[str, Any]]:
    modules = modules if modules is not None else ModuleSet([], [SERVER])
    caps = device.agent.netconf.capabilities if capabilities is None else capabilities
    return await run_schedule_job(_Session(caps), payload, modules, dialled, device.send)  # type: ignore[arg-type]


async def test_the_entry_of_the_dialled_endpoint_is_edited_and_only_it(tmp_path: Path) -> None:
    device = Device(two_client_agent(tmp_path))
    assert device.clients() == {"noc": Persistent(), "lab": Persistent()}
    ok, result = await run(
        device, schedule_payload(periodic=True, period=900, idle_timeout=60), [("127.0.0.1", 4334)]
    )
    assert ok, result
    assert result["client"] == "noc" and result["revision"] == "2023-12-28"
    assert device.clients() == {
        "noc": Periodic(period=900.0, idle_timeout=60.0),
        "lab": Persistent(),
    }
    # one read that changes nothing, one edit
    assert device.sent == [("get-config", False), ("edit-config", True)]
    # the endpoints stayed as agent.toml has them
    running = device.agent.datastore.read()
    (noc,) = [c for c in read_clients(running) if c.name == "noc"]
    assert [(e.name, e.address, e.port) for e in noc.endpoints] == [("here", "127.0.0.1", 4334)]


async def test_no_matching_entry_is_refused_naming_the_entries_and_a_name_settles_it(
    tmp_path: Path,
) -> None:
    device = Device(two_client_agent(tmp_path))
    payload = schedule_payload(periodic=True, period=3600)
    ok, result = await run(device, payload, [("198.51.100.1", 4334)])
    assert not ok
    assert "'noc' [here (ssh 127.0.0.1:4334)]" in result["error"]
    assert "'lab' [there (ssh 192.0.2.9:4334)]" in result["error"]
    assert result["clients"] == ["noc", "lab"]
    assert device.sent == [("get-config", False)]  # nothing was edited
    ok, result = await run(device, {**payload, "client": "lab"}, [("198.51.100.1", 4334)])
    assert ok and result["client"] == "lab"
    assert device.clients()["lab"] == Periodic(period=3600.0)


async def test_a_device_without_the_module_or_with_an_old_revision_is_told_so(
    tmp_path: Path,
) -> None:
    device = Device(two_client_agent(tmp_path))
    payload = schedule_payload(periodic=False)
    ok, result = await run(device, payload, [], modules=ModuleSet([]))
    assert not ok and "does not implement ietf-netconf-server" in result["error"]
    old = ModuleSet([], [ModuleInfo("ietf-netconf-server", "2016-11-02", NCS)])
    ok, result = await run(device, payload, [], modules=old)
    assert not ok and "revision 2016-11-02" in result["error"] and "2019-04-29" in result["error"]
    anchored = schedule_payload(periodic=True, period=60, anchor="2024-01-01T00:15:00Z")
    rev2019 = ModuleSet([], [ModuleInfo("ietf-netconf-server", "2019-07-02", NCS)])
    ok, result = await run(device, anchored, [("127.0.0.1", 4334)], modules=rev2019)
    assert not ok and "admits no value" in result["error"]
    assert device.sent == []  # nothing was sent for any of these


async def test_without_writable_running_the_edit_goes_through_the_candidate(
    tmp_path: Path,
) -> None:
    device = Device(two_client_agent(tmp_path))
    caps = [c for c in device.agent.netconf.capabilities if "writable-running" not in c]
    payload = schedule_payload(periodic=True, period=600)
    ok, result = await run(device, payload, [("127.0.0.1", 4334)], capabilities=caps)
    assert ok, result
    assert [name for name, _ in device.sent] == [
        "get-config",
        "lock",
        "edit-config",
        "commit",
        "unlock",
    ]
    assert device.clients()["noc"] == Periodic(period=600.0)
    # a candidate the device cannot lock (another session holds it) changes nothing
    other = device.agent.netconf.open_session(lambda: None)
    lock = etree.fromstring(f'<lock xmlns="{NC}"><target><candidate/></target></lock>')
    device.agent.netconf.handle(other, lock)
    device.sent.clear()
    ok, result = await run(
        device, schedule_payload(periodic=False), [("127.0.0.1", 4334)], capabilities=caps
    )
    assert not ok and result["step"] == "lock candidate"
    assert [name for name, _ in device.sent] == ["get-config", "lock"]
    assert device.clients()["noc"] == Periodic(period=600.0)
    ok, result = await run(device, payload, [("127.0.0.1", 4334)], capabilities=[])
    assert not ok and "neither :writable-running nor :candidate" in result["error"]


def test_what_the_model_cannot_hold_is_refused_before_queueing() -> None:
    with pytest.raises(ConfigError, match="whole number of minutes"):
        schedule_payload(periodic=True, period=90)
    with pytest.raises(ConfigError, match="whole number of minutes"):
        schedule_payload(periodic=True, period=float("nan"))
    with pytest.raises(ConfigError, match="whole number of minutes"):
        schedule_payload(periodic=True, period=60 * 65536)
    with pytest.raises(ConfigError, match="whole number of seconds"):
        schedule_payload(periodic=True, period=60, idle_timeout=1.5)
    with pytest.raises(ConfigError, match="whole minute"):
        schedule_payload(periodic=True, period=60, anchor="2024-01-01T00:15:30Z")
    with pytest.raises(ConfigError, match="takes no period"):
        schedule_payload(periodic=False, period=60)
    assert schedule_payload(periodic=True)["period_minutes"] == 60
