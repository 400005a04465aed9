"""MIB names in ``callhome snmp``: a real manager that compiles a MIB source at start, a real
agent, the CLI taking names and showing them (or numbers with --numeric)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import AgentProc, ManagerProc

pytestmark = pytest.mark.integration

MIB_SOURCES = Path(__file__).parents[1] / "mibs"

AGENT_SNMP = """
[snmp]
enabled = true
sys_descr = "named box"
sys_location = "shelf 2"

[[snmp.users]]
name = "callhome"
read = ["1.3.6.1"]
write = ["1.3.6.1.2.1.1"]
"""


@pytest.fixture
def mib_manager(tmp_path: Path) -> Iterator[ManagerProc]:
    manager = ManagerProc(tmp_path / "manager")
    shutil.copytree(MIB_SOURCES, tmp_path / "mibs")
    with (manager.directory / "manager.toml").open("a") as f:
        f.write(
            f'\n[manager.snmp]\nmib_dirs = ["{tmp_path / "mibs"}"]\n'
            'mib_modules = ["CALLHOME-EXAMPLE-MIB"]\n'
        )
    manager.start()
    yield manager
    manager.stop()


@pytest.fixture
def device(tmp_path: Path, mib_manager: ManagerProc) -> Iterator[AgentProc]:
    agent = AgentProc(tmp_path / "dev", [f"127.0.0.1:{mib_manager.port}"], [mib_manager.public_key])
    with (agent.directory / "agent.toml").open("a") as f:
        f.write(AGENT_SNMP)
    assert mib_manager.cli("approve", agent.fingerprint, "--name", "dev").returncode == 0
    agent.start()
    yield agent
    agent.stop()


def test_names_in_and_out_numbers_on_request(
    mib_manager: ManagerProc, device: AgentProc, tmp_path: Path
) -> None:
    assert (tmp_path / "manager" / "mib-cache" / "CALLHOME-EXAMPLE-MIB.py").exists()

    got = mib_manager.cli(
        "snmp", "dev", "--wait", "60", "get", "sysDescr.0", "SNMPv2-MIB::sysName.0"
    )
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0] == "SNMPv2-MIB::sysDescr.0 = OctetString: named box"
    assert lines[1].startswith("SNMPv2-MIB::sysName.0 = OctetString: ")

    numeric = mib_manager.cli("snmp", "dev", "--numeric", "get", "sysDescr.0", ".1.3.6.1.2.1.1.6.0")
    assert numeric.returncode == 0, numeric.stderr
    assert numeric.stdout.splitlines() == [
        "1.3.6.1.2.1.1.1.0 = OctetString: named box",
        "1.3.6.1.2.1.1.6.0 = OctetString: shelf 2",
    ]

    walk = mib_manager.cli("snmp", "dev", "walk", "system")
    assert walk.returncode == 0, walk.stderr
    names = [line.split(" = ")[0] for line in walk.stdout.splitlines()]
    assert names[:7] == [
        f"SNMPv2-MIB::{n}.0"
        for n in (
            "sysDescr",
            "sysObjectID",
            "sysUpTime",
            "sysContact",
            "sysName",
            "sysLocation",
            "sysServices",
        )
    ]
    walk_numeric = mib_manager.cli("snmp", "dev", "-n", "walk", "system")
    assert [line.split(" = ")[0] for line in walk_numeric.stdout.splitlines()][:7] == [
        f"1.3.6.1.2.1.1.{i}.0" for i in range(1, 8)
    ]

    # set by name; the job stores numbers, the API result names them too
    ok = mib_manager.cli("snmp", "dev", "--json", "set", "sysContact.0", "s", "noc@example.net")
    assert ok.returncode == 0, ok.stderr
    jobs = mib_manager.api("GET", "/v1/jobs", params={"device": "dev"}).json()
    newest_id = max(j["id"] for j in jobs)
    newest = mib_manager.api("GET", f"/v1/jobs/{newest_id}").json()  # the listing has no result
    assert newest["payload"]["varbinds"][0]["oid"] == "1.3.6.1.2.1.1.4.0"
    assert newest["result"]["varbinds"][0]["name"] == "SNMPv2-MIB::sysContact.0"

    # a name from the compiled source module: the device does not have it, but it is named
    example = mib_manager.cli("snmp", "dev", "get", "CALLHOME-EXAMPLE-MIB::exampleName.3")
    assert example.returncode == 0, example.stderr
    assert example.stdout.strip() == "CALLHOME-EXAMPLE-MIB::exampleName.3 = noSuchObject"


def test_unknown_names_are_refused_and_nothing_is_queued(
    mib_manager: ManagerProc, tmp_path: Path
) -> None:
    before = mib_manager.api("GET", "/v1/jobs").json()
    unknown = mib_manager.cli("snmp", "dev", "get", "sysDescr.0", "sysNoSuchThing.0")
    assert unknown.returncode != 0
    assert "unknown MIB name 'sysNoSuchThing'" in unknown.stderr
    assert "SNMPv2-MIB, CALLHOME-EXAMPLE-MIB" in unknown.stderr  # what is loaded
    not_loaded = mib_manager.cli("snmp", "dev", "walk", "IF-MIB::ifTable")
    assert not_loaded.returncode != 0 and "IF-MIB is not loaded" in not_loaded.stderr
    response = mib_manager.api(
        "POST", "/v1/devices/dev/snmp", json={"operation": "get", "oids": ["nope.0"]}
    )
    assert response.status_code == 400 and "unknown MIB name" in response.json()["message"]
    assert mib_manager.api("GET", "/v1/jobs").json() == before == []
