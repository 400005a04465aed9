"""One NETCONF suite over the three orientations, with a real manager and real devices.

reverse-ssh and reverse-tls are RFC 8071's; turn is the seed's (section 7). Above the
adapters nothing differs: the same registry, jobs, API and CLI serve all three.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncssh
import pytest

from harness import OrientedAgentProc, OrientedManagerProc, TestPki, wait_until

pytestmark = pytest.mark.integration

SYS = '<system xmlns="urn:example:demo"><hostname>{}</hostname></system>'
ORIENTATIONS = ["reverse-ssh", "reverse-tls", "turn"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def manager(
    tmp_path_factory: pytest.TempPathFactory, pki: TestPki
) -> Iterator[OrientedManagerProc]:
    """One manager for the module, listening in all three orientations."""
    m = OrientedManagerProc(
        tmp_path_factory.mktemp("manager"), pki, env={"CALLHOME_MANAGER__HANDSHAKE_TIMEOUT": "2"}
    ).start()
    yield m
    m.stop()


@pytest.fixture
def agents() -> Iterator[list[OrientedAgentProc]]:
    started: list[OrientedAgentProc] = []
    yield started
    for agent in started:
        agent.stop()


def approve(manager: OrientedManagerProc, identity: str, name: str) -> int:
    response = manager.api("POST", f"/v1/devices/{identity}/approve", json={"name": name})
    return response.status_code


def netconf(manager: OrientedManagerProc, name: str, **body: object) -> dict[str, Any]:
    response = manager.api("POST", f"/v1/devices/{name}/netconf", json=body)
    response.raise_for_status()
    job: dict[str, Any] = response.json()
    return job


def job_state(manager: OrientedManagerProc, job_id: int) -> str:
    response = manager.api("GET", f"/v1/jobs/{job_id}")
    response.raise_for_status()
    state: str = response.json()["state"]
    return state


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_netconf_suite(orientation, manager, tmp_path, agents):
    name = f"dev-{orientation}"
    agent = OrientedAgentProc(tmp_path / name, orientation, manager)
    # known in advance, and given work while it is away: the job runs when it calls
    assert approve(manager, agent.fingerprint, name) == 200
    queued = netconf(manager, name, operation="edit-config", config=SYS.format("queued"))
    assert queued["state"] == "queued"
    agents.append(agent.start())
    wait_until(lambda: job_state(manager, queued["id"]) == "succeeded")
    device = manager.devices()[agent.fingerprint]
    assert (device["status"], device["orientation"]) == ("online", orientation)

    got = netconf(manager, name, operation="get-config")
    assert "<hostname>queued</hostname>" in got["result"]["reply"]
    edit = netconf(manager, name, operation="edit-config", config=SYS.format("alpha"))
    assert edit["state"] == "succeeded", edit
    got = netconf(
        manager, name, operation="get-config", filter='<system xmlns="urn:example:demo"/>'
    )
    assert "<hostname>alpha</hostname>" in got["result"]["reply"]
    create = (
        '<system xmlns="urn:example:demo" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"'
        ' nc:operation="create"><hostname>alpha</hostname></system>'
    )
    failed = netconf(manager, name, operation="edit-config", config=create)
    assert failed["state"] == "failed"
    (error,) = failed["result"]["errors"]
    assert (error["type"], error["tag"]) == ("application", "data-exists")
    # the session goes on after an rpc-error
    assert netconf(manager, name, operation="get")["state"] == "succeeded"
    assert [e["kind"] for e in manager.events(device=name)].count("connected") == 1


def _swap_certificate(agent: OrientedAgentProc, issued: Any) -> None:
    """Give a (stopped) device another certificate, in the files its config names."""
    agent.cert.cert_file.write_bytes(issued.cert_file.read_bytes())
    agent.cert.key_file.write_bytes(issued.key_file.read_bytes())


def test_tls_identities_against_the_registry(manager, pki, tmp_path, agents):
    """Pinned certificates behave like SSH keys; CA-issued ones go by name, until revoked."""
    from callhome.net import pki as pkimod

    other = pkimod.init_ca(tmp_path / "other", "Other CA")
    pinned_cert = pkimod.issue(other, "device", "pinned", out=tmp_path / "other-issued")
    pinned = OrientedAgentProc(tmp_path / "pinned", "reverse-tls", manager, cert=pinned_cert)
    # known by its SHA256 fingerprint, as `openssl x509 -fingerprint -sha256` prints it
    assert pinned.fingerprint == pinned_cert.fingerprint
    mapped = OrientedAgentProc(tmp_path / "mapped", "reverse-tls", manager)
    assert mapped.fingerprint == "x509-name:mapped.example.net"
    # the identifier known in advance: approved before the device ever calls
    assert approve(manager, mapped.fingerprint, "by-name") == 200
    agents += [pinned.start(), mapped.start()]
    wait_until(lambda: manager.status(pinned.fingerprint) == "pending")
    assert approve(manager, pinned.fingerprint, "by-pin") == 200
    wait_until(lambda: manager.status(pinned.fingerprint) == "online")
    wait_until(lambda: manager.status(mapped.fingerprint) == "online")

    # the pinned device gets a new certificate; the mapped one's is revoked
    pinned.stop()
    mapped.stop()
    renewed = pkimod.issue(other, "device", "pinned", out=tmp_path / "renewed")
    _swap_certificate(pinned, renewed)
    pkimod.revoke(pki.ca, mapped.cert.cert)  # the manager re-reads the CRL file
    pinned.start()
    mapped.start()
    # a new pinned certificate is another identity: pending, and never re-bound to a name
    wait_until(lambda: manager.status(renewed.fingerprint) == "pending")
    assert approve(manager, renewed.fingerprint, "by-pin") == 409

    def refused_as_revoked() -> bool:
        return any("revoked" in str(e["detail"].get("reason")) for e in manager.events())

    wait_until(refused_as_revoked)
    assert manager.status(mapped.fingerprint) == "offline"

    # a new certificate from the CA for the same name is the same device, at once
    mapped.stop()
    _swap_certificate(mapped, pki.issue("device", "mapped.example.net"))
    mapped.start()
    wait_until(lambda: manager.status(mapped.fingerprint) == "online")
    assert manager.devices()[mapped.fingerprint]["name"] == "by-name"


def test_a_mapped_certificate_approved_by_its_fingerprint_is_that_device(
    manager, pki, tmp_path, agents
):
    """`callhome init agent` prints the certificate's fingerprint; a manager whose
    cert-to-name rule maps that certificate takes an approval of either identity."""
    dev = OrientedAgentProc(tmp_path / "printed", "reverse-tls", manager)
    assert dev.fingerprint == "x509-name:printed.example.net"
    printed = dev.cert.fingerprint
    assert approve(manager, printed, "by-print") == 200
    queued = manager.cli("netconf", "by-print", "--wait", "0", "get-config")
    assert queued.returncode == 0 and "has never called home" in queued.stderr
    agents.append(dev.start())
    wait_until(lambda: manager.status(printed) == "online")
    assert manager.devices()[printed]["name"] == "by-print"
    assert manager.status(dev.fingerprint) is None  # never recorded pending under its name
    got = manager.cli("netconf", "by-print", "get-config")
    assert got.returncode == 0 and "<data" in got.stdout, got.stderr


async def _bad_peers(manager: OrientedManagerProc, approved_key: asyncssh.SSHKey) -> None:
    # garbage on the TLS port, from 127.0.0.2
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", manager.tls_port, local_addr=("127.0.0.2", 0)
    )
    writer.write(b"\x16\x03\x01\x02\x00" + bytes(range(256)) * 4)
    await asyncio.wait_for(reader.read(), 10)
    writer.close()
    # a peer that stalls in the TLS handshake, from 127.0.0.3 (handshake timeout: 2 s)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", manager.tls_port, local_addr=("127.0.0.3", 0)
    )
    await asyncio.wait_for(reader.read(), 10)
    writer.close()
    # an approved turn device asking for another subsystem
    conn = await asyncssh.connect(
        "127.0.0.1",
        manager.turn_port,
        username="callhome",
        client_keys=[approved_key],
        known_hosts=None,
        config=None,
        agent_path=None,
    )
    with pytest.raises(asyncssh.ChannelOpenError):
        await conn.create_session(asyncssh.SSHClientSession, subsystem="sftp")
    conn.close()


def test_bad_peers_are_refused_with_events_and_others_undisturbed(manager, tmp_path, agents):
    good = OrientedAgentProc(tmp_path / "good", "reverse-tls", manager)
    assert approve(manager, good.fingerprint, "good") == 200
    agents.append(good.start())
    wait_until(lambda: manager.status(good.fingerprint) == "online")
    key = asyncssh.generate_private_key("ssh-ed25519")
    from callhome.net.keys import identity_of

    fingerprint = identity_of(key).fingerprint
    assert approve(manager, fingerprint, "nosy") == 200
    asyncio.run(_bad_peers(manager, key))

    def reasons() -> dict[str, str]:
        return {
            e["detail"].get("address", "").split(":")[0] + "|" + str(e["fingerprint"]): str(
                e["detail"].get("reason")
            )
            for e in manager.events()
            if e["kind"] in ("protocol-error", "auth-failed")
        }

    found = wait_until(lambda: len(reasons()) >= 3 and reasons())
    assert "TLS handshake failed" in found["127.0.0.2|None"]
    assert "timed out" in found["127.0.0.3|None"]
    assert "'sftp'" in found[f"127.0.0.1|{fingerprint}"]
    assert manager.status(good.fingerprint) == "online"
    assert netconf(manager, "good", operation="get-config")["state"] == "succeeded"

    # every orientation in one table: the CLI's devices listing
    table = manager.cli("devices").stdout.splitlines()
    column = table[0].index("ORIENTATION")  # columns are aligned: by character position
    shown = {line.split()[0]: line[column:].split()[0] for line in table[1:]}
    assert shown["good"] == "reverse-tls"
    for name, orientation in shown.items():  # the suite's devices, when it ran first
        if name.startswith("dev-"):
            assert orientation == name.removeprefix("dev-"), table
