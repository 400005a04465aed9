"""callhome schedule against a NETCONF server nobody here wrote: yuma123 netconfd behind
OpenSSH sshd, calling home to our manager.

netconfd is loaded with ietf-netconf-server; no package installable here ships that module,
so the tests use a subset of its call-home part written for them
(``yang/ietf-netconf-server@2023-12-28.yang``). The device names its call-home clients
itself; the manager must find the one whose endpoint it is and edit only that entry's
connection-type, through the candidate (netconfd's running is not writable).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from test_netconfd_device import BASE_NS, YumaDevice, manager, netconf, yuma_device

from harness import ManagerProc, wait_until

pytestmark = pytest.mark.interop

__all__ = ["manager", "yuma_device"]  # fixtures used here

NCS = "urn:ietf:params:xml:ns:yang:ietf-netconf-server"
SUBSET = Path(__file__).parent / "yang" / "ietf-netconf-server@2023-12-28.yang"
FILTER = f'<netconf-server xmlns="{NCS}"><call-home/></netconf-server>'


def entry(name: str, host: str, port: int) -> str:
    return (
        f"<netconf-client><name>{name}</name><endpoints><endpoint><name>{name}-1</name><ssh>"
        f"<tcp-client-parameters><remote-address>{host}</remote-address>"
        f"<remote-port>{port}</remote-port></tcp-client-parameters></ssh></endpoint>"
        "</endpoints><connection-type><persistent/></connection-type></netconf-client>"
    )


def online(manager: ManagerProc, device: YumaDevice) -> object:
    (device.directory / "authorized_keys").write_text(manager.public_key + "\n")
    approved = manager.cli("approve", device.fingerprint, "--name", "yuma")
    assert approved.returncode == 0, approved.stderr
    socat = device.call_home(manager.port)
    wait_until(lambda: manager.status(device.fingerprint) == "online", timeout=30)
    return socat


def connection_types(manager: ManagerProc) -> dict[str, str]:
    got = netconf(manager, "get-config", "--filter", FILTER)
    root = etree.fromstring(got.encode(), etree.XMLParser(remove_blank_text=True))
    found = {}
    for client in root.iter(f"{{{NCS}}}netconf-client"):
        ctype = client.find(f"{{{NCS}}}connection-type")
        assert ctype is not None and len(ctype) == 1
        (choice,) = ctype
        leaves = {etree.QName(c).localname: c.text for c in choice}
        found[client.findtext(f"{{{NCS}}}name") or ""] = f"{etree.QName(choice).localname} {leaves}"
    return found


@pytest.mark.parametrize("yuma_device", [[SUBSET]], indirect=True)
def test_schedule_edits_netconfds_own_entry_for_this_manager(
    manager: ManagerProc, yuma_device: YumaDevice
) -> None:
    socat = online(manager, yuma_device)
    try:
        # netconfd's call-home clients, named by it: one for this manager, one for another
        config = (
            f'<netconf-server xmlns="{NCS}"><call-home>'
            f"{entry('corp-noc', '127.0.0.1', manager.port)}"
            f"{entry('lab', '192.0.2.9', 4334)}</call-home></netconf-server>"
        )
        assert "<ok/>" in netconf(
            manager, "edit-config", "--target", "candidate", "--config", config
        )
        assert "<ok/>" in netconf(manager, "rpc", f'<commit xmlns="{BASE_NS}"/>')

        done = manager.cli("schedule", "yuma", "--periodic", "15m", "--idle-timeout", "5m")
        assert done.returncode == 0, done.stderr
        assert connection_types(manager) == {
            "corp-noc": "periodic {'period': '15', 'idle-timeout': '300'}",
            "lab": "persistent {}",
        }
        jobs = manager.api("GET", "/v1/jobs", params={"device": "yuma"}).json()
        (listed,) = [j for j in jobs if j["kind"] == "schedule"]
        job = manager.api("GET", f"/v1/jobs/{listed['id']}").json()  # with its result
        assert job["result"]["client"] == "corp-noc"
        assert job["result"]["revision"] == "2023-12-28"

        # the one it names; and a name it does not know, refused with what it has
        done = manager.cli("schedule", "yuma", "--periodic", "2h", "--client", "lab")
        assert done.returncode == 0, done.stderr
        assert connection_types(manager)["lab"] == "periodic {'period': '120'}"
        unknown = manager.cli("schedule", "yuma", "--persistent", "--client", "nope")
        assert unknown.returncode == 1
        assert "no call-home client named 'nope'" in unknown.stderr
        assert "'corp-noc' [corp-noc-1 (ssh 127.0.0.1:" in unknown.stderr
    finally:
        socat.stop()  # type: ignore[attr-defined]


def test_a_server_without_ietf_netconf_server_is_told_so(
    manager: ManagerProc, yuma_device: YumaDevice
) -> None:
    socat = online(manager, yuma_device)
    try:
        refused = manager.cli("schedule", "yuma", "--persistent")
        assert refused.returncode == 1
        assert "does not implement ietf-netconf-server" in refused.stderr
        listed = manager.api("GET", "/v1/jobs", params={"device": "yuma", "limit": 1}).json()[0]
        sent = manager.api("GET", f"/v1/jobs/{listed['id']}").json()
        assert sent["state"] == "failed" and "reply" not in sent["result"]  # nothing was sent
    finally:
        socat.stop()  # type: ignore[attr-defined]
