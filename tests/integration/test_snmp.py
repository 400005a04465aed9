"""SNMP over the call-home connection: real manager and agent processes, the CLI and jobs."""

from __future__ import annotations

import json

import pytest

from harness import wait_until

pytestmark = pytest.mark.integration

SNMP_CONFIG = """
[snmp]
enabled = true
sys_descr = "integration box"
sys_location = "rack 7"

[snmp.ups_ident]
manufacturer = "ACME"
model = "UPS-3000"
software_version = "4.2"

[[snmp.users]]
name = "callhome"
read = ["1.3.6.1"]
write = ["1.3.6.1.2.1.1"]
"""


def snmp_agent(make_agent, name: str = "dev"):
    agent = make_agent(name)
    with (agent.directory / "agent.toml").open("a") as f:
        f.write(SNMP_CONFIG)
    return agent


def job(manager, job_id: int) -> dict:
    response = manager.api("GET", f"/v1/jobs/{job_id}")
    response.raise_for_status()
    return response.json()


def test_snmp_job_waits_for_the_device_then_cli_operations(manager, make_agent):
    agent = snmp_agent(make_agent)
    assert manager.cli("approve", agent.fingerprint, "--name", "dev1").returncode == 0

    queued = manager.cli("snmp", "dev1", "get", "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.6.0")
    assert queued.returncode == 0, queued.stderr
    assert "queued" in queued.stderr
    job_id = int(queued.stdout.strip())
    assert job(manager, job_id)["read_only"] is True

    agent.start()
    done = wait_until(lambda: (j := job(manager, job_id))["state"] == "succeeded" and j, 30)
    values = [vb["value"] for vb in done["result"]["varbinds"]]
    assert values == ["integration box", "rack 7"]
    assert done["kind"] == "snmp"

    shown = manager.cli("job", "--numeric", str(job_id))
    assert shown.returncode == 0 and "1.3.6.1.2.1.1.1.0 = OctetString: integration box" in (
        shown.stdout
    )

    nxt = manager.cli("snmp", "dev1", "--numeric", "getnext", "1.3.6.1.2.1.1.1.0")
    assert nxt.returncode == 0 and nxt.stdout.startswith("1.3.6.1.2.1.1.2.0 = ObjectIdentifier")

    walk = manager.cli("snmp", "dev1", "-n", "walk", "1.3.6.1.2.1.1")
    assert walk.returncode == 0, walk.stderr
    assert [line.split(" = ")[0] for line in walk.stdout.splitlines()] == [
        f"1.3.6.1.2.1.1.{i}.0" for i in range(1, 8)
    ]

    bulk = manager.cli("snmp", "dev1", "--json", "bulkwalk", "1.3.6.1.2.1.2.2.1.2")
    assert bulk.returncode == 0, bulk.stderr
    names = [vb["value"] for vb in json.loads(bulk.stdout)["result"]["varbinds"]]
    assert "lo" in names  # ifDescr from /sys/class/net

    ups = manager.cli("snmp", "dev1", "get", "1.3.6.1.2.1.33.1.1.2.0")
    assert ups.returncode == 0 and "UPS-3000" in ups.stdout

    ok = manager.cli("snmp", "dev1", "set", "1.3.6.1.2.1.1.4.0", "s", "noc@example.net")
    assert ok.returncode == 0, ok.stderr
    got = manager.cli("snmp", "dev1", "get", "1.3.6.1.2.1.1.4.0")
    assert "noc@example.net" in got.stdout

    refused = manager.cli("snmp", "dev1", "-n", "set", "1.3.6.1.2.1.1.1.0", "s", "mine")
    assert refused.returncode == 1
    assert "notWritable" in refused.stderr and "1.3.6.1.2.1.1.1.0" in refused.stderr

    missing = manager.cli("snmp", "dev1", "get", "1.3.6.1.2.1.1.99.0")
    assert missing.returncode == 0 and "noSuchObject" in missing.stdout

    # NETCONF on the same connection is unaffected
    assert manager.cli("netconf", "dev1", "get-config").returncode == 0


def test_snmp_bad_requests_are_refused_before_queueing(manager, make_agent):
    agent = snmp_agent(make_agent)
    assert manager.cli("approve", agent.fingerprint, "--name", "dev1").returncode == 0
    bad_oid = manager.cli("snmp", "dev1", "get", "1.3.6.x")
    assert bad_oid.returncode == 1 and "numeric OID" in bad_oid.stderr
    bad_name = manager.cli("snmp", "dev1", "get", "sysDescr.0", "sysNoSuchThing.0")
    assert bad_name.returncode == 1 and "unknown MIB name 'sysNoSuchThing'" in bad_name.stderr
    bad_type = manager.cli("snmp", "dev1", "set", "1.3.6.1.2.1.1.4.0", "q", "x")
    assert bad_type.returncode == 1 and "unknown SNMP type" in bad_type.stderr
    assert manager.api("GET", "/v1/jobs").json() == []
