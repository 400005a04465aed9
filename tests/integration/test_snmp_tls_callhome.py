"""SNMP over TLS call home (RFC 6353 on a reverse-tls connection): a real manager process, and
devices as real processes (jobs, access) or in the test's own loop (notifications)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from callhome.agent.service import Agent
from callhome.cli.setup import init_agent, init_manager
from callhome.config import AgentConfig, ReconnectConfig, load
from callhome.net.pki import cert_identity
from callhome.proto.snmp import Value, VarBind
from harness import PY, ManagerProc, Proc, TestPki, os_port, wait_until

pytestmark = pytest.mark.integration

LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
SYS_DESCR, SYS_CONTACT = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.4.0"

SNMP = """
[snmp]
enabled = true
interfaces = false
sys_descr = "tls box"

[[snmp.users]]
name = "ops"
read = ["1.3.6.1"]
write = ["1.3.6.1.2.1.1"]

[[snmp.users]]
name = "manager"
read = ["1.3.6.1"]

[[snmp.cert_to_name]]
fingerprint = "{fingerprint}"
map_type = "{map_type}"
name = "{name}"
"""


class SnmpTlsManager(ManagerProc):
    """A manager whose SNMP-over-TLS listener is on; device certificates are mapped to
    ``x509-name:`` and their DNS name. Its own certificate's CN is 'manager'."""

    def __init__(self, directory: Path, pki: TestPki) -> None:
        super().__init__(directory)
        self.pki = pki
        self.snmp_port = os_port()
        self.cert = pki.issue("manager", "manager")
        init_manager(
            directory,
            [f"127.0.0.1:{self.port}"],
            "127.0.0.1:0",
            self.client_file,
            tls_cert=self.cert.cert_file,
            tls_key=self.cert.key_file,
            tls_ca=[pki.ca.cert_file],
            tls_crl=[pki.ca.crl_file],
        )
        toml = directory / "manager.toml"
        text = toml.read_text()
        section = "[manager.tls]\nlisten = []\n"
        assert section in text
        toml.write_text(
            text.replace(section, f'{section}snmp_listen = ["127.0.0.1:{self.snmp_port}"]\n')
        )


def device_files(
    directory: Path, manager: SnmpTlsManager, *, maps_to: str, targets: str = ""
) -> str:
    """agent.toml for a device calling ``manager`` with SNMP over TLS; returns its identity.

    ``maps_to``: 'ops' (the manager's certificate by fingerprint: read-write) or 'manager'
    (any certificate of the CA, by CN: read-only)."""
    pki = manager.pki
    cert = pki.issue("device", f"{directory.name}.example.net")
    init_agent(
        directory,
        [f"127.0.0.1:{manager.snmp_port}"],
        [manager.public_key],
        orientation="reverse-tls",
        tls_cert=cert.cert_file,
        tls_key=cert.key_file,
        manager_ca=[pki.ca.cert_file],
        manager_fingerprints=[manager.cert.fingerprint],
    )
    if maps_to == "ops":
        rule = {"fingerprint": manager.cert.fingerprint, "map_type": "specified", "name": "ops"}
    else:
        ca = cert_identity(pki.ca.cert).fingerprint
        rule = {"fingerprint": ca, "map_type": "common-name", "name": ""}
    toml = directory / "agent.toml"
    text = toml.read_text()
    assert 'orientation = "reverse-tls"\n' in text
    text = text.replace(
        'orientation = "reverse-tls"\n', 'orientation = "reverse-tls"\nservice = "snmp"\n'
    )
    toml.write_text(text + SNMP.format(**rule) + targets)
    return f"x509-name:{directory.name}.example.net"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def manager(tmp_path: Path, pki: TestPki) -> Iterator[SnmpTlsManager]:
    m = SnmpTlsManager(tmp_path / "manager", pki)
    m.start()
    yield m
    m.stop()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


def start_device(directory: Path, procs: list[Proc]) -> Proc:
    env = {"CALLHOME_RECONNECT__BACKOFF_INITIAL": "0.1", "CALLHOME_RECONNECT__BACKOFF_MAX": "0.5"}
    proc = Proc([*PY, "agent", "--config", str(directory / "agent.toml")], env, directory.name)
    procs.append(proc)
    return proc


def snmp(manager: SnmpTlsManager, *args: str) -> Any:
    return manager.cli("snmp", "--numeric", *args)


def test_snmp_over_tls_pending_until_approved_then_jobs_by_security_name(manager, tmp_path, procs):
    rw = device_files(tmp_path / "rwdev", manager, maps_to="ops")
    start_device(tmp_path / "rwdev", procs)
    # an unknown certificate is recorded as pending, and given no session
    wait_until(lambda: manager.status(rw) == "pending")
    assert any(e["kind"] == "unknown-device" for e in manager.events(after=0))
    time.sleep(0.5)
    assert manager.status(rw) == "pending"
    approved = manager.cli("approve", rw, "--name", "rwdev")
    assert approved.returncode == 0, approved.stderr
    wait_until(lambda: manager.status(rw) == "online")
    assert manager.devices()[rw]["orientation"] == "reverse-tls"

    got = snmp(manager, "rwdev", "get", SYS_DESCR)
    assert got.returncode == 0 and got.stdout.strip().endswith("tls box"), got
    nxt = snmp(manager, "rwdev", "getnext", SYS_DESCR)
    assert nxt.returncode == 0 and nxt.stdout.startswith("1.3.6.1.2.1.1.2.0 = "), nxt
    walk = snmp(manager, "rwdev", "bulkwalk", "1.3.6.1.2.1.1")
    assert walk.returncode == 0, walk.stderr
    assert [line.split(" = ")[0] for line in walk.stdout.splitlines()] == [
        f"1.3.6.1.2.1.1.{i}.0" for i in range(1, 8)
    ]
    # securityName 'ops' (the manager's certificate, by fingerprint) may write the system group
    ok = snmp(manager, "rwdev", "set", SYS_CONTACT, "s", "noc@example.net")
    assert ok.returncode == 0, ok.stderr
    assert "noc@example.net" in snmp(manager, "rwdev", "get", SYS_CONTACT).stdout
    # the connection carries SNMP only: a NETCONF job fails (it does not wait forever)
    netconf = manager.cli("netconf", "rwdev", "get-config")
    assert netconf.returncode != 0 and "not NETCONF" in netconf.stderr

    # known in advance by its identifier; its rule maps the manager's CN: read-only
    ro = device_files(tmp_path / "rodev", manager, maps_to="manager")
    assert manager.cli("approve", ro, "--name", "rodev").returncode == 0
    start_device(tmp_path / "rodev", procs)
    wait_until(lambda: manager.status(ro) == "online")
    read = snmp(manager, "rodev", "get", SYS_DESCR)
    assert read.returncode == 0 and "tls box" in read.stdout
    refused = snmp(manager, "rodev", "set", SYS_CONTACT, "s", "mine")
    assert refused.returncode == 1
    assert "noAccess" in refused.stderr and SYS_CONTACT in refused.stderr


# -- notifications, from a device running in this loop -------------------------------------


def target(name: str, policy: str, inform: bool) -> str:
    return (
        f'[[snmp.targets]]\nname = "{name}"\npolicy = "{policy}"\n'
        f"inform = {'true' if inform else 'false'}\ntimeout = 2\n"
    )


class Device:
    """An agent in this process, made from its files like a real one."""

    def __init__(self, directory: Path, manager: SnmpTlsManager, targets: str, backoff: float):
        self.identity = device_files(directory, manager, maps_to="ops", targets=targets)
        config = load(AgentConfig, directory / "agent.toml")
        config.reconnect = ReconnectConfig(
            backoff_initial=backoff, backoff_max=max(backoff, 0.5), backoff_jitter=0
        )
        self.agent = Agent(config)
        self.task: asyncio.Task[None] | None = None

    def notify(self, i: int) -> None:
        self.agent.notify(
            f"{LINK_DOWN}.{i}", [VarBind((1, 3, 6, 1, 2, 1, 2, 2, 1, 1, i), Value.integer(i))]
        )

    def start(self) -> None:
        self.task = asyncio.create_task(self.agent.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.agent.connection is not None:
            self.agent.connection.abort()
        if self.agent.notifier is not None:
            self.agent.notifier.close()


@pytest.fixture
async def devices(tmp_path: Path, manager: SnmpTlsManager) -> AsyncIterator[Any]:
    made: list[Device] = []

    def make(name: str, targets: str, backoff: float = 0.1) -> Device:
        made.append(Device(tmp_path / name, manager, targets, backoff))
        return made[-1]

    yield make
    for device in made:
        await device.stop()


async def notifications(manager: SnmpTlsManager, device: str, count: int) -> list[int]:
    """The trap OIDs' last numbers of ``device``'s notification events, once ``count`` came."""
    found: list[dict[str, Any]] = []
    for _ in range(200):
        events = await asyncio.to_thread(manager.events, after=0, device=device)
        found = [e for e in events if e["kind"] == "snmp-notification"]
        if len(found) >= count:
            return [int(e["detail"]["trap_oid"].rsplit(".", 1)[1]) for e in found]
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(found)} of {count} notifications from {device}")


async def test_deferred_informs_wait_for_the_connection_and_are_acknowledged(manager, devices):
    dev = devices("later", target("later", "deferred", inform=True))
    for i in range(3):
        dev.notify(i)  # the device is away: held
    assert dev.agent.notifier.held() == 3
    done = await asyncio.to_thread(manager.cli, "approve", dev.identity, "--name", "later")
    assert done.returncode == 0, done.stderr
    dev.start()
    assert await notifications(manager, "later", 3) == [0, 1, 2]
    for _ in range(100):  # each Inform acknowledged over TLS, so nothing is held
        if dev.agent.notifier.held() == 0:
            break
        await asyncio.sleep(0.1)
    assert dev.agent.notifier.held() == 0


async def test_immediate_trap_wakes_a_device_in_long_back_off(manager, devices):
    dev = devices("now", target("now", "immediate", inform=False), backoff=60.0)
    dev.start()
    deadline = time.monotonic() + 15
    while dev.agent.dialer.plan._failures == 0:  # refused while unknown: a minute's back-off now
        assert time.monotonic() < deadline, "the device never dialed"
        await asyncio.sleep(0.05)
    done = await asyncio.to_thread(manager.cli, "approve", dev.identity, "--name", "now")
    assert done.returncode == 0, done.stderr
    await asyncio.sleep(0.5)
    assert dev.agent.connection is None  # still in its back-off
    dev.notify(5)
    assert await notifications(manager, "now", 1) == [5]
    assert dev.agent.connections_made == 1
