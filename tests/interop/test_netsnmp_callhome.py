"""SNMP over TLS call home (RFC 6353 on a reverse-tls connection) with Net-SNMP at the
other end, both ways round.

- **Our manager, snmpd as the device**: a real ``callhome manager`` process listens for
  SNMP over TLS (``[manager.tls] snmp_listen``, TLS 1.0 allowed for this peer only);
  Debian's snmpd is made a call-home device with socat (``TCP:MANAGER TCP:SNMPD``: socat
  dials, snmpd stays the TLS server). The manager maps snmpd's certificate by its DNS name
  (``x509-name:snmpd-agent``), keeps it pending until approved, then runs ``callhome snmp``
  jobs on it: get, getnext, a bulkwalk of snmpd's 10,000-row table, set. snmpd's
  ``certSecName`` says which securityName the manager's certificate is: read-write for one
  snmpd, read-only for another (whose refusal the manager reports).
- **Net-SNMP's commands, our agent as the device**: a real ``callhome agent`` process with
  an endpoint of ``service = "snmp"`` calls a socat listen-listen splice; ``snmpget``,
  ``snmpwalk``, ``snmpbulkwalk`` and ``snmpset`` connect to the splice's other port. The
  agent's ``[[snmp.cert_to_name]]`` rules map each client certificate to a securityName and
  its ``[[snmp.users]]`` view decides what it may read and write.

socat splices one connection and exits when it ends: a device refused while unknown calls
again once approved (a new socat), and each Net-SNMP command gets a splice of its own.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from interop_helpers import require
from netsnmp import (
    BIG_TABLE_COLUMN,
    BIG_TABLE_ROWS,
    SNMPD,
    SYS_CONTACT,
    SYS_DESCR,
    TLS_ALGORITHMS,
    NetSnmpClient,
    NetSnmpPki,
    Snmpd,
    big_table_line,
    free_port,
    listen_splice,
    listening,
    snmpd_calls_home,
)

from callhome.cli.setup import init_agent, init_manager
from callhome.net import pki
from callhome.proto.snmp import format_oid
from harness import AgentProc, ManagerProc, Proc, os_port, wait_until

pytestmark = pytest.mark.interop

SYSTEM = "1.3.6.1.2.1.1"
SYS_DESCR_TEXT = format_oid(SYS_DESCR)
SYS_CONTACT_TEXT = format_oid(SYS_CONTACT)
SYS_OBJECT_ID_TEXT = "1.3.6.1.2.1.1.2.0"
AGENT_DNS = "callhome-agent"
"""The DNS name (and CN) of our agent's certificate: the clients' ``their_hostname``."""
LEGACY_TLS = f'minimum_version = "TLSv1"\nciphers = "{TLS_ALGORITHMS}"\n'
"""What both ends of these connections allow, for Net-SNMP 5.9.3 (TLS 1.0) only."""


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    return require(SNMPD, "socat", "snmpget", "snmpwalk", "snmpbulkwalk", "snmpset")


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory, tools: dict[str, str]) -> NetSnmpPki:
    return NetSnmpPki(tmp_path_factory.mktemp("netsnmp-pki"))


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Processes a test starts (socat ...): stopped at its end, whatever happened."""
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        proc.stop()


# -- our manager, snmpd calling home through socat ------------------------------------------


class NetSnmpManager(ManagerProc):
    """A manager process whose SNMP-over-TLS listener is on, with the manager certificate
    of the Net-SNMP PKI (snmpd's certSecName maps it), the PKI's CA trusted and its device
    certificates mapped to ``x509-name:`` and their DNS name; TLS 1.0 allowed."""

    def __init__(self, directory: Path, ca: NetSnmpPki) -> None:
        super().__init__(directory)
        self.snmp_port = os_port()
        init_manager(
            directory,
            [f"127.0.0.1:{self.port}"],
            "127.0.0.1:0",
            self.client_file,
            tls_cert=ca.manager.cert_file,
            tls_key=ca.manager.key_file,
            tls_ca=[ca.ca.cert_file],
            tls_crl=[ca.ca.crl_file],
            tls_map="san-dns-name",
        )
        toml = directory / "manager.toml"
        text = toml.read_text()
        section = "[manager.tls]\nlisten = []\n"
        assert text.count(section) == 1
        extra = f'snmp_listen = ["127.0.0.1:{self.snmp_port}"]\n{LEGACY_TLS}'
        toml.write_text(text.replace(section, section + extra))

    def snmp(self, name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.cli("snmp", "--numeric", name, *args, timeout=timeout)

    def approve(self, identity: str, name: str) -> None:
        done = self.cli("approve", identity, "--name", name)
        assert done.returncode == 0, done.stderr


def mapped(cert: pki.Issued) -> str:
    """The identity the manager gives a device certificate of the Net-SNMP CA."""
    return f"{pki.MAPPED_PREFIX}{cert.cert_file.stem}"


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory, ca: NetSnmpPki) -> Iterator[NetSnmpManager]:
    m = NetSnmpManager(tmp_path_factory.mktemp("manager"), ca)
    m.start()
    yield m
    m.stop()


def start_snmpd(directory: Path, ca: NetSnmpPki, name: str, **kwargs: Any) -> Snmpd:
    """snmpd with a certificate of its own (DNS name ``name``)."""
    return Snmpd(directory, ca, identity=ca.issue("device", name), **kwargs).start()


@pytest.fixture(scope="module")
def snmpd_rw(tmp_path_factory: pytest.TempPathFactory, ca: NetSnmpPki) -> Iterator[Snmpd]:
    """snmpd whose certSecName makes the manager's certificate securityName 'manager' (rw)."""
    daemon = start_snmpd(
        tmp_path_factory.mktemp("snmpd-rw"), ca, "snmpd-rw", sys_descr="snmpd calling home"
    )
    yield daemon
    daemon.stop()


def call_home(snmpd: Snmpd, manager: NetSnmpManager, procs: list[Proc]) -> Proc:
    socat = snmpd_calls_home(manager.snmp_port, snmpd.port)
    procs.append(socat)
    return socat


def online(manager: NetSnmpManager, snmpd: Snmpd, name: str, procs: list[Proc]) -> None:
    """Approve ``snmpd`` as ``name`` (if it is not yet) and have it call home."""
    identity = mapped(snmpd.identity)
    if manager.status(identity) == "online":
        return
    if manager.devices().get(identity, {}).get("name") != name:
        manager.approve(identity, name)
    socat = call_home(snmpd, manager, procs)
    wait_until(lambda: manager.status(identity) == "online" or socat.proc.poll() is not None, 30)
    assert manager.status(identity) == "online", socat.output() + snmpd.log()


def test_snmpd_calling_home_is_pending_until_approved(manager, ca, tmp_path, procs):
    snmpd = start_snmpd(tmp_path / "snmpd", ca, "snmpd-new", sys_descr="new box")
    try:
        identity = mapped(snmpd.identity)
        first = call_home(snmpd, manager, procs)
        wait_until(lambda: manager.status(identity) == "pending")
        events = manager.events(after=0)
        assert any(
            e["kind"] == "unknown-device" and e.get("fingerprint") == identity for e in events
        )
        # refused: the manager closes the connection, socat ends with it; still pending
        first.proc.wait(30)
        assert manager.status(identity) == "pending"

        manager.approve(identity, "newbox")
        again = call_home(snmpd, manager, procs)  # snmpd "calls again"
        wait_until(lambda: manager.status(identity) == "online" or again.proc.poll() is not None)
        assert manager.status(identity) == "online", again.output() + snmpd.log()
        device = manager.devices()[identity]
        assert (device["name"], device["orientation"]) == ("newbox", "reverse-tls")
        got = manager.snmp("newbox", "get", SYS_DESCR_TEXT)
        assert got.returncode == 0, got.stderr
        assert got.stdout.strip() == f"{SYS_DESCR_TEXT} = OctetString: new box"
    finally:
        snmpd.stop()


def test_get_getnext_set_on_snmpd(manager, snmpd_rw, procs):
    online(manager, snmpd_rw, "snmpd-rw", procs)
    got = manager.snmp("snmpd-rw", "get", SYS_DESCR_TEXT)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == f"{SYS_DESCR_TEXT} = OctetString: snmpd calling home"

    nxt = manager.snmp("snmpd-rw", "getnext", SYS_DESCR_TEXT)
    assert nxt.returncode == 0, nxt.stderr
    # sysObjectID of Net-SNMP on Linux: enterprises.8072.3.2.10
    assert nxt.stdout.strip() == f"{SYS_OBJECT_ID_TEXT} = ObjectIdentifier: 1.3.6.1.4.1.8072.3.2.10"

    ok = manager.snmp("snmpd-rw", "set", SYS_CONTACT_TEXT, "s", "noc@example.net")
    assert ok.returncode == 0, ok.stderr
    assert f"{SYS_CONTACT_TEXT} = OctetString: noc@example.net" in ok.stdout
    back = manager.snmp("snmpd-rw", "get", SYS_CONTACT_TEXT)
    assert back.stdout.strip() == f"{SYS_CONTACT_TEXT} = OctetString: noc@example.net", back


def test_bulkwalk_of_snmpds_10000_rows(manager, snmpd_rw, procs):
    online(manager, snmpd_rw, "snmpd-rw", procs)
    root = format_oid(BIG_TABLE_COLUMN)
    walk = manager.snmp("snmpd-rw", "bulkwalk", root, "--max-repetitions", "50", timeout=150)
    assert walk.returncode == 0, walk.stderr
    lines = walk.stdout.splitlines()
    assert len(lines) == BIG_TABLE_ROWS
    expected = [
        f"{root}.{i} = OctetString: {big_table_line(i)}" for i in range(1, BIG_TABLE_ROWS + 1)
    ]
    assert lines == expected  # every row, in order, nothing past the column


def test_read_only_mapping_refuses_set(manager, ca, tmp_path, procs):
    """snmpd maps the manager's certificate to 'reader' (rouser): reads work, a SET is
    refused and the manager says by what and where."""
    snmpd = start_snmpd(
        tmp_path / "snmpd",
        ca,
        "snmpd-ro",
        sys_descr="read-only box",
        cert_names=[(ca.manager, "reader")],
    )
    try:
        online(manager, snmpd, "snmpd-ro", procs)  # approved before it ever called
        read = manager.snmp("snmpd-ro", "get", SYS_DESCR_TEXT)
        assert read.returncode == 0 and "read-only box" in read.stdout, read
        refused = manager.snmp("snmpd-ro", "set", SYS_CONTACT_TEXT, "s", "mine")
        assert refused.returncode == 1, refused
        # snmpd's VACM refuses the write view with noAccess (RFC 3416 section 4.2.5)
        errors = [ln for ln in refused.stderr.splitlines() if ln.startswith("snmp error: ")]
        assert errors == [f"snmp error: noAccess (index 1) at {SYS_CONTACT_TEXT}"], refused.stderr
        job = manager.snmp("snmpd-ro", "get", SYS_CONTACT_TEXT)
        assert "mine" not in job.stdout
    finally:
        snmpd.stop()


# -- Net-SNMP's commands, our agent calling a listen-listen splice -----------------------------

AGENT_SNMP = """
[snmp]
enabled = true
interfaces = false
sys_descr = "callhome agent box"

[[snmp.users]]
name = "ops"
read = ["1.3.6.1"]
write = ["1.3.6.1.2.1.1"]

[[snmp.users]]
name = "viewer"
read = ["1.3.6.1.2.1.1.1"]

[[snmp.cert_to_name]]
fingerprint = "{ops}"
map_type = "specified"
name = "ops"

[[snmp.cert_to_name]]
fingerprint = "{viewer}"
map_type = "specified"
name = "viewer"
"""


class SnmpTlsAgent(AgentProc):
    """Our agent with one endpoint of service 'snmp' (reverse-tls) to ``call_home_port``:
    its certificate from the Net-SNMP PKI (DNS name ``callhome-agent``); the PKI's manager
    certificate is securityName 'ops' (reads all, writes the system group), the reader's
    'viewer' (reads sysDescr only)."""

    def __init__(self, directory: Path, ca: NetSnmpPki, call_home_port: int) -> None:
        self.directory = directory
        self.call_home_port = call_home_port
        cert = ca.issue("device", AGENT_DNS)
        init_agent(
            directory,
            [f"127.0.0.1:{call_home_port}"],
            [],
            orientation="reverse-tls",
            tls_cert=cert.cert_file,
            tls_key=cert.key_file,
            manager_ca=[ca.ca.cert_file],
        )
        toml = directory / "agent.toml"
        text = toml.read_text()
        for old, new in (
            ('orientation = "reverse-tls"\n', 'orientation = "reverse-tls"\nservice = "snmp"\n'),
            ("[tls]\n", "[tls]\n" + LEGACY_TLS),
        ):
            assert text.count(old) == 1, old
            text = text.replace(old, new)
        rules = AGENT_SNMP.format(ops=ca.manager.fingerprint, viewer=ca.reader.fingerprint)
        toml.write_text(text + rules)
        self.fingerprint = cert.fingerprint
        self.env = {
            "CALLHOME_RECONNECT__BACKOFF_INITIAL": "0.1",
            "CALLHOME_RECONNECT__BACKOFF_MAX": "0.5",
        }
        self.proc = None

    def log(self) -> str:
        return self.proc.output() if self.proc else ""


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, ca: NetSnmpPki) -> Iterator[SnmpTlsAgent]:
    device = SnmpTlsAgent(tmp_path_factory.mktemp("agent"), ca, free_port())
    device.start()
    yield device
    device.stop()


@contextlib.contextmanager
def spliced(agent: SnmpTlsAgent, timeout: float = 30.0) -> Iterator[int]:
    """A splice the agent calls: the local port a Net-SNMP client connects to, once the
    agent's call is in (socat listens there only after accepting it)."""
    local = free_port()
    splice = listen_splice(agent.call_home_port, local)
    try:
        wait_until(lambda: listening(local) or splice.proc.poll() is not None, timeout)
        assert listening(local), f"the agent did not call:\n{splice.output()}{agent.log()}"
        yield local
    finally:
        splice.stop()


def through_splice(agent: SnmpTlsAgent, command: Callable[[int], object]) -> object:
    with spliced(agent) as port:
        return command(port)


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory, ca: NetSnmpPki) -> NetSnmpClient:
    return NetSnmpClient(tmp_path_factory.mktemp("ops"), ca.manager, [ca.ca.cert_file])


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory, ca: NetSnmpPki) -> NetSnmpClient:
    return NetSnmpClient(tmp_path_factory.mktemp("viewer"), ca.reader, [ca.ca.cert_file])


def test_snmpget_sysdescr_from_our_agent(agent, ops):
    [line] = through_splice(agent, lambda port: ops.get(port, SYS_DESCR, their_hostname=AGENT_DNS))
    assert (line.oid, line.type, line.value) == (SYS_DESCR_TEXT, "STRING", "callhome agent box")


def test_snmpwalk_and_snmpbulkwalk_of_the_system_group(agent, ops):
    walked = through_splice(agent, lambda port: ops.walk(port, SYSTEM, their_hostname=AGENT_DNS))
    bulk = through_splice(
        agent, lambda port: ops.bulkwalk(port, SYSTEM, 5, their_hostname=AGENT_DNS)
    )
    oids = [f"{SYSTEM}.{i}.0" for i in range(1, 8)]  # sysDescr .. sysServices
    assert [line.oid for line in walked] == oids, walked
    uptime = f"{SYSTEM}.3.0"  # ticks on between the two walks
    assert [v for v in walked if v.oid != uptime] == [v for v in bulk if v.oid != uptime]
    by_oid = {line.oid: line for line in walked}
    assert by_oid[SYS_DESCR_TEXT].value == "callhome agent box"
    assert by_oid[f"{SYSTEM}.3.0"].type == "Timeticks"
    assert by_oid[f"{SYSTEM}.7.0"] == type(walked[0])(f"{SYSTEM}.7.0", "INTEGER", "72")


def test_snmpset_by_the_writer(agent, ops):
    set_ = through_splice(
        agent,
        lambda port: ops.set(port, SYS_CONTACT, "s", "ops@example.net", their_hostname=AGENT_DNS),
    )
    assert set_.returncode == 0
    [line] = through_splice(
        agent, lambda port: ops.get(port, SYS_CONTACT, their_hostname=AGENT_DNS)
    )
    assert line.value == "ops@example.net"


def test_the_viewers_view_and_its_refused_set(agent, viewer):
    """'viewer' reads sysDescr and nothing else; its SET is refused with noAccess."""
    [descr] = through_splice(
        agent, lambda port: viewer.get(port, SYS_DESCR, their_hostname=AGENT_DNS)
    )
    assert descr.value == "callhome agent box"
    [hidden] = through_splice(
        agent, lambda port: viewer.get(port, SYS_CONTACT, their_hostname=AGENT_DNS)
    )
    assert (hidden.oid, hidden.type) == (SYS_CONTACT_TEXT, "")
    assert hidden.value.startswith("No Such Object"), hidden
    walked = through_splice(agent, lambda port: viewer.walk(port, SYSTEM, their_hostname=AGENT_DNS))
    assert [line.oid for line in walked] == [SYS_DESCR_TEXT]
    refused = through_splice(
        agent,
        lambda port: viewer.set(
            port, SYS_CONTACT, "s", "intruder", their_hostname=AGENT_DNS, check=False
        ),
    )
    assert isinstance(refused, subprocess.CompletedProcess)
    assert refused.returncode != 0
    assert "noAccess" in refused.stderr, refused.stderr


def test_a_certificate_no_rule_maps_gets_nothing(agent, ca, tmp_path):
    """A client certificate of the same CA that no cert_to_name rule maps: the agent
    refuses the connection, so the command fails; the agent then calls again."""
    stranger = NetSnmpClient(
        tmp_path / "stranger", ca.issue("manager", "stranger"), [ca.ca.cert_file]
    )
    with spliced(agent) as port:
        result = stranger.run(
            "snmpget", port, SYS_DESCR_TEXT, their_hostname=AGENT_DNS, check=False
        )
    assert result.returncode != 0
    assert "stranger" not in result.stdout
    wait_until(lambda: "maps to no securityName" in agent.log(), 10)
