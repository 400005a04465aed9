"""Net-SNMP over TLS (RFC 6353, tlstcp) as a real peer: certificates, snmpd, the client
commands, socat pieces for call home, and a bare Python TLS/TSM probe.

What Debian's Net-SNMP 5.9.3 needs, found by running it here:

- TLS 1.0 only, so both sides use ``tlsAlgorithms DEFAULT:@SECLEVEL=0`` (Python:
  ``minimum_version = TLSv1`` and ``set_ciphers("DEFAULT:@SECLEVEL=0")``).
- ``$SNMPCONFPATH/tls/{certs,private,ca-certs}``: ``certs/NAME.crt``, ``private/NAME.key``
  (mode 600, the certificate's base name); every file in ``ca-certs`` is trusted by the
  clients. Certificates are named by that base name in ``localCert``, ``trustCert``,
  ``-T our_identity=`` ...
- ``certSecName PRIORITY FINGERPRINT --sn NAME`` takes the SHA-256 fingerprint as hex with
  colons (what ``callhome.net.pki`` prints, without its ``SHA256:`` prefix).
- ``MIBS=`` (empty) in snmpd's environment keeps it from logging hundreds of lines about
  the IETF MIB files Debian does not ship; the clients take ``-m ''``.
- snmpd does not set SO_REUSEADDR on its tlstcp listener: a port it used minutes ago may
  be in TIME_WAIT, so :meth:`Snmpd.start` tries another free port.
- RFC 5343 discovery (GET snmpEngineID.0 with contextEngineID 80:00:00:00:06) is answered
  with a Response (not a Report) carrying snmpEngineID, reportable flag or not, at whatever
  security level was asked. Any other GET in that context is dropped without an answer.
  Requests in any other contextEngineID are answered (an empty one with a Response whose
  contextEngineID is 64 octets, the engine ID followed by uninitialised memory).

Usage (see ``test_netsnmp_harness.py``)::

    pki = NetSnmpPki(tmp / "pki")
    snmpd = Snmpd(tmp / "snmpd", pki).start()          # snmpd.port: its tlstcp port
    client = NetSnmpClient(tmp / "client", pki.manager, [pki.ca.cert_file])
    client.get(snmpd.port, "1.3.6.1.2.1.1.1.0")        # [VarLine(oid, type, value)]
    client.bulkwalk(snmpd.port, BIG_TABLE_COLUMN)      # 10,000 VarLines
    with TsmProbe(snmpd.port, pki.manager, pki.ca.cert_file, AGENT_NAME) as probe:
        engine_id = probe.discover(); probe.get([SYS_DESCR])
    snmpd.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from callhome.net import pki
from callhome.net.snmp import SnmpClient
from callhome.proto.snmp import (
    AUTH_PRIV,
    ErrorStatus,
    Message,
    MsgFlags,
    Oid,
    Pdu,
    SnmpStream,
    ValueType,
    VarBind,
    discovery_message,
    format_oid,
    get_request,
    getbulk_request,
)
from harness import Proc, wait_until

SNMPD = "/usr/sbin/snmpd"
TLS_ALGORITHMS = "DEFAULT:@SECLEVEL=0"
AGENT_NAME = "snmpd-agent"
"""The base name (and CN, and DNS name) of snmpd's certificate."""
MANAGER_NAME = "snmp-manager"
READER_NAME = "snmp-reader"
BIG_TABLE_NAME = "bigtable"
BIG_TABLE_ROWS = 10_000

SYS_DESCR: Oid = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_CONTACT: Oid = (1, 3, 6, 1, 2, 1, 1, 4, 0)
NS_EXTEND_OUT_LINE: Oid = (1, 3, 6, 1, 4, 1, 8072, 1, 3, 2, 4, 1, 2)
"""nsExtendOutLine (NET-SNMP-EXTEND-MIB nsExtendOutput2Table): one row per output line."""
BIG_TABLE_COLUMN: Oid = (*NS_EXTEND_OUT_LINE, len(BIG_TABLE_NAME), *BIG_TABLE_NAME.encode())
"""nsExtendOutLine."bigtable": the 10,000 lines of the table file, indexed 1..10,000."""


def big_table_line(row: int) -> str:
    """What row ``row`` (1-based) of the big table holds, in snmpd and in our own agent."""
    return f"row-{row:05d}"


def netsnmp_fingerprint(cert: pki.Issued) -> str:
    """The SHA-256 fingerprint as certSecName takes it: hex pairs joined by colons."""
    return cert.fingerprint.removeprefix("SHA256:")


# -- certificates --------------------------------------------------------------------------


class NetSnmpPki:
    """A CA and three certificates: snmpd's (TLS server, DNS name ``snmpd-agent``), the
    manager's (mapped to securityName ``manager``, read-write) and a reader's (``reader``,
    read-only)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = pki.init_ca(directory / "ca", "Net-SNMP test CA")
        self.agent = self.issue("device", AGENT_NAME)
        self.manager = self.issue("manager", MANAGER_NAME)
        self.reader = self.issue("manager", READER_NAME)

    def issue(self, role: pki.Role, name: str) -> pki.Issued:
        return pki.issue(self.ca, role, name, out=self.directory / "issued")


def install_tls(conf_dir: Path, own: Sequence[pki.Issued], trust: Sequence[Path]) -> Path:
    """Lay out ``conf_dir/tls`` as Net-SNMP reads it; returns ``conf_dir``.

    Each of ``own`` goes to ``certs/NAME.crt`` and ``private/NAME.key`` (0600, written
    without ever passing through a log); each of ``trust`` to ``ca-certs/``."""
    tls = conf_dir / "tls"
    for sub in ("certs", "private", "ca-certs"):
        (tls / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    for issued in own:
        name = issued.cert_file.stem
        shutil.copyfile(issued.cert_file, tls / "certs" / f"{name}.crt")
        key_path = tls / "private" / f"{name}.key"
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(issued.key_file.read_bytes())
        os.chmod(key_path, 0o600)
    for anchor in trust:
        shutil.copyfile(anchor, tls / "ca-certs" / anchor.name)
    return conf_dir


# -- snmpd ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something listens on TCP ``port`` (read from /proc, without connecting)."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].endswith(wanted) and fields[3] == "0A":
                return True
    return False


class Snmpd:
    """Net-SNMP's snmpd on ``tlstcp:127.0.0.1:PORT`` with its own configuration and
    persistent folder, in the foreground, logging to its standard output.

    ``users`` maps a securityName to ``"ro"`` or ``"rw"`` (rouser/rwuser, TSM, authPriv);
    ``cert_names`` maps a client certificate to its securityName (certSecName --sn).
    snmpd serves a table of ``rows`` lines (``BIG_TABLE_COLUMN``), through ``extend``.
    ``identity``: snmpd's own certificate (default ``ca.agent``, DNS name ``snmpd-agent``).
    """

    def __init__(
        self,
        directory: Path,
        ca: NetSnmpPki,
        *,
        rows: int = BIG_TABLE_ROWS,
        users: Mapping[str, str] | None = None,
        cert_names: Sequence[tuple[pki.Issued, str]] | None = None,
        sys_descr: str = "Net-SNMP under test",
        extra_config: str = "",
        identity: pki.Issued | None = None,
    ) -> None:
        self.directory = directory
        self.pki = ca
        self.identity = identity or ca.agent
        self.conf = install_tls(directory / "conf", [self.identity], [ca.ca.cert_file])
        self.persistent = directory / "persistent"
        self.persistent.mkdir(parents=True, exist_ok=True, mode=0o700)
        table = directory / "bigtable.txt"
        table.write_text("".join(big_table_line(i) + "\n" for i in range(1, rows + 1)))
        users = users if users is not None else {"manager": "rw", "reader": "ro"}
        if cert_names is None:
            cert_names = [(ca.manager, "manager"), (ca.reader, "reader")]
        lines = [
            f"[snmp] localCert {self.identity.cert_file.stem}",
            f"[snmp] trustCert {ca.ca.cert_file.stem}",  # tls/ca-certs/ca.crt
            f"[snmp] tlsAlgorithms {TLS_ALGORITHMS}",
        ]
        lines += [
            f"certSecName {10 + i} {netsnmp_fingerprint(cert)} --sn {name}"
            for i, (cert, name) in enumerate(cert_names)
        ]
        lines += [
            f"{'rwuser' if access == 'rw' else 'rouser'} -s tsm {name} authpriv"
            for name, access in users.items()
        ]
        lines += [
            f"sysDescr {sys_descr}",
            f"extend {BIG_TABLE_NAME} /bin/cat {table}",
        ]
        if extra_config:
            lines.append(extra_config)
        self.config_file = self.conf / "snmpd.conf"
        self.config_file.write_text("\n".join(lines) + "\n")
        self.port = 0
        self.proc: Proc | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            "SNMPCONFPATH": str(self.conf),
            "SNMP_PERSISTENT_DIR": str(self.persistent),
            "MIBS": "",
        }

    def start(self, attempts: int = 5, timeout: float = 20.0) -> Snmpd:
        """Start on a free port; another one if that one was taken meanwhile."""
        last = ""
        for _ in range(attempts):
            port = free_port()
            proc = Proc(
                [SNMPD, "-f", "-Lo", "-C", "-c", str(self.config_file), f"tlstcp:127.0.0.1:{port}"],
                env=self.env,
                name="snmpd",
            )
            if self._ready(proc, port, timeout):
                self.proc, self.port = proc, port
                return self
            proc.stop()
            last = proc.output()
            if "Address already in use" not in last:
                break
        raise AssertionError(f"snmpd did not start:\n{last}")

    @staticmethod
    def _ready(proc: Proc, port: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.proc.poll() is not None:
                return False
            if "NET-SNMP version" in proc.output() and listening(port):
                return True
            time.sleep(0.02)
        return False

    def log(self) -> str:
        return self.proc.output() if self.proc else ""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


# -- the Net-SNMP commands -----------------------------------------------------------------


@dataclass(frozen=True)
class VarLine:
    """One line of snmpget/snmpwalk output (``-On``): numeric OID, type, value (a
    STRING's quotes removed; type "" for 'No Such Object ...' and the like)."""

    oid: str
    type: str
    value: str


_LINE = re.compile(r"^(\.[0-9.]+) = (?:([A-Za-z][A-Za-z0-9 -]*): )?(.*)$")


def parse_output(text: str) -> list[VarLine]:
    found = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        oid, vtype, value = m.group(1).lstrip("."), m.group(2) or "", m.group(3)
        if vtype == "STRING" and len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        found.append(VarLine(oid, vtype, value))
    return found


class NetSnmpError(AssertionError):
    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        super().__init__(
            f"{result.args[0]} exited {result.returncode}:\n{result.stderr}{result.stdout}"
        )


class NetSnmpClient:
    """snmpget, snmpbulkwalk, snmpset ... as ``identity`` (its certificate and key in a
    private SNMPCONFPATH), trusting the certificates in ``trust``."""

    def __init__(self, directory: Path, identity: pki.Issued, trust: Sequence[Path]) -> None:
        self.identity = identity
        self.conf = install_tls(directory, [identity], trust)
        (self.conf / "snmp.conf").write_text(f"tlsAlgorithms {TLS_ALGORITHMS}\n")
        self.persistent = directory / "persistent"
        self.persistent.mkdir(exist_ok=True, mode=0o700)
        self.env = {
            **os.environ,
            "SNMPCONFPATH": str(self.conf),
            "SNMP_PERSISTENT_DIR": str(self.persistent),
            "MIBS": "",
        }

    def argv(self, tool: str, port: int, *args: str, their_hostname: str = AGENT_NAME) -> list[str]:
        """The command line (``timeout -t`` 5 s, no retry: the caller bounds the process)."""
        return [
            tool,
            "-v3",
            "-l",
            "authPriv",
            "-T",
            f"our_identity={self.identity.cert_file.stem}",
            "-T",
            f"their_hostname={their_hostname}",
            "-m",
            "",
            "-On",
            "-t",
            "5",
            "-r",
            "0",
            f"tlstcp:127.0.0.1:{port}",
            *args,
        ]

    def run(
        self,
        tool: str,
        port: int,
        *args: str,
        their_hostname: str = AGENT_NAME,
        timeout: float = 60.0,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.argv(tool, port, *args, their_hostname=their_hostname),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
        )
        if check and result.returncode != 0:
            raise NetSnmpError(result)
        return result

    def get(self, port: int, *oids: str | Oid, their_hostname: str = AGENT_NAME) -> list[VarLine]:
        result = self.run("snmpget", port, *map(_text, oids), their_hostname=their_hostname)
        return parse_output(result.stdout)

    def walk(self, port: int, root: str | Oid, their_hostname: str = AGENT_NAME) -> list[VarLine]:
        result = self.run("snmpwalk", port, _text(root), their_hostname=their_hostname)
        return parse_output(result.stdout)

    def bulkwalk(
        self,
        port: int,
        root: str | Oid,
        max_repetitions: int = 50,
        their_hostname: str = AGENT_NAME,
    ) -> list[VarLine]:
        args = (f"-Cr{max_repetitions}", _text(root))
        result = self.run("snmpbulkwalk", port, *args, their_hostname=their_hostname)
        return parse_output(result.stdout)

    def set(
        self,
        port: int,
        oid: str | Oid,
        vtype: str,
        value: str,
        their_hostname: str = AGENT_NAME,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        args = (_text(oid), vtype, value)
        return self.run("snmpset", port, *args, their_hostname=their_hostname, check=check)


def _text(oid: str | Oid) -> str:
    return oid if isinstance(oid, str) else format_oid(oid)


# -- socat: a call-home snmpd, a splice for the Net-SNMP clients ----------------------------


def snmpd_calls_home(manager_port: int, snmpd_port: int, socat: str = "socat") -> Proc:
    """snmpd made a call-home device: socat dials the manager, then connects to snmpd and
    splices the two (snmpd stays the TLS server)."""
    return Proc(
        [
            socat,
            f"TCP:127.0.0.1:{manager_port},retry=40,interval=0.25",
            f"TCP:127.0.0.1:{snmpd_port}",
        ],
        name="socat call-home",
    )


def listen_splice(call_home_port: int, local_port: int, socat: str = "socat") -> Proc:
    """A listen-listen splice: a device calls ``call_home_port``, a Net-SNMP client
    connects to ``local_port``; socat joins them (accepting the device first)."""
    proc = Proc(
        [
            socat,
            f"TCP-LISTEN:{call_home_port},bind=127.0.0.1,reuseaddr",
            f"TCP-LISTEN:{local_port},bind=127.0.0.1,reuseaddr",
        ],
        name="socat splice",
    )
    # once a device has called, socat stops listening there and listens on local_port: a
    # device that redials often may be accepted between two looks at the first port
    try:
        wait_until(
            lambda: (
                listening(call_home_port) or listening(local_port) or proc.proc.poll() is not None
            ),
            10,
        )
    except BaseException:
        proc.stop()  # not left listening after a failed test
        raise
    return proc


# -- a bare Python TLS/TSM peer ------------------------------------------------------------


def legacy_tls_context(
    identity: pki.Issued, trust: Path, *, server: bool = False
) -> ssl.SSLContext:
    """A TLS context Net-SNMP 5.9.3 can talk to (TLS 1.0, SECLEVEL 0): mutual
    certificates, peers verified against ``trust``. For this interop only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1 is deprecated: we know
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers(TLS_ALGORITHMS)
    ctx.load_verify_locations(trust)
    ctx.load_cert_chain(identity.cert_file, identity.key_file)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class TsmProbe:
    """One TLS connection to an SNMP engine, spoken with the project's SNMPv3/TSM codec
    (``SnmpStream``: msgSecurityModel 4, empty msgSecurityParameters, one BER message
    after another on the stream, RFC 3430), synchronously, one request at a time."""

    def __init__(
        self,
        port: int,
        identity: pki.Issued,
        trust: Path,
        server_hostname: str = AGENT_NAME,
        *,
        timeout: float = 10.0,
        max_size: int = 65507,
    ) -> None:
        ctx = legacy_tls_context(identity, trust)
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname=server_hostname)
        self.stream = SnmpStream()
        self.max_size = max_size
        self.engine_id: bytes | None = None
        self._next = 0

    def __enter__(self) -> TsmProbe:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    @property
    def tls_version(self) -> str | None:
        return self.sock.version()

    def next_id(self) -> int:
        self._next += 1
        return self._next

    def exchange(self, message: Message) -> Message:
        """Send ``message``; the next message the engine sends back."""
        self.sock.sendall(self.stream.send(message))
        while (reply := self.stream.next_message()) is None:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the SNMP engine closed the connection")
            self.stream.receive_data(data)
        return reply

    def discover(self) -> Message:
        """RFC 5343 discovery; the reply (kept: ``engine_id``)."""
        ident = self.next_id()
        reply = self.exchange(discovery_message(ident, ident))
        for vb in reply.pdu.varbinds:
            if vb.value.type is ValueType.OCTET_STRING and isinstance(vb.value.value, bytes):
                self.engine_id = vb.value.value
        return reply

    def request(self, pdu: Pdu) -> Pdu:
        """``pdu`` (its request-id replaced) in the discovered engine's context."""
        if self.engine_id is None:
            self.discover()
        assert self.engine_id is not None
        ident = self.next_id()
        message = Message(
            msg_id=ident,
            pdu=Pdu(
                pdu.type,
                ident,
                pdu.varbinds,
                non_repeaters=pdu.non_repeaters,
                max_repetitions=pdu.max_repetitions,
            ),
            context_engine_id=self.engine_id,
            flags=AUTH_PRIV | MsgFlags.REPORTABLE,
            max_size=self.max_size,
        )
        reply = self.exchange(message)
        if reply.msg_id != ident or reply.pdu.request_id != ident:
            raise AssertionError(f"reply to another request: {reply}")
        return reply.pdu

    def get(self, oids: Sequence[Oid]) -> Pdu:
        return self.request(get_request(0, list(oids)))

    def bulkwalk(self, root: Oid, max_repetitions: int = 50) -> list[VarBind]:
        """Every binding under ``root``, by GETBULK."""
        return walk_subtree(root, lambda oid: self.request(_bulk(oid, max_repetitions)))


def _bulk(oid: Oid, max_repetitions: int) -> Pdu:
    return getbulk_request(0, [oid], 0, max_repetitions)


MAX_WALK = 1_000_000


def walk_subtree(root: Oid, fetch: Callable[[Oid], Pdu]) -> list[VarBind]:
    """Collect a subtree with ``fetch(oid) -> Pdu`` (a GETBULK or GETNEXT from ``oid``)."""
    found: list[VarBind] = []
    current = root
    while len(found) < MAX_WALK:
        pdu = fetch(current)
        if pdu.error_status is not ErrorStatus.NO_ERROR:
            raise AssertionError(f"walk stopped by {pdu.error_status.wire_name}")
        if not pdu.varbinds:
            return found
        for vb in pdu.varbinds:
            if vb.value.type is ValueType.END_OF_MIB_VIEW or vb.oid[: len(root)] != root:
                return found
            if vb.oid <= current:
                raise AssertionError(f"the agent went backwards at {format_oid(vb.oid)}")
            found.append(vb)
            current = vb.oid
    raise AssertionError(f"more than {MAX_WALK} bindings under {format_oid(root)}")


async def bulkwalk_async(client: SnmpClient, root: Oid, max_repetitions: int = 50) -> int:
    """Walk ``root`` with the manager's ``SnmpClient``; the number of bindings found."""
    count, current = 0, root
    while count < MAX_WALK:
        pdu = await client.get_bulk([current], 0, max_repetitions)
        if not pdu.ok:
            raise AssertionError(f"walk stopped by {pdu.error_status.wire_name}")
        if not pdu.varbinds:
            return count
        for vb in pdu.varbinds:
            if vb.value.type is ValueType.END_OF_MIB_VIEW or vb.oid[: len(root)] != root:
                return count
            if vb.oid <= current:
                raise AssertionError(f"the agent went backwards at {format_oid(vb.oid)}")
            count += 1
            current = vb.oid
    raise AssertionError(f"more than {MAX_WALK} bindings under {format_oid(root)}")


class TlsSnmpConnection:
    """The manager's ``SnmpClient`` (the project's asyncio command generator) over one TLS
    connection made with asyncio, to an engine that is a TLS server (snmpd, or a device
    reached through a splice)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.client = SnmpClient(writer.write, writer.close, timeout=30.0)
        self._reader_task = asyncio.create_task(self._read(reader))

    @classmethod
    async def open(
        cls, port: int, identity: pki.Issued, trust: Path, server_hostname: str = AGENT_NAME
    ) -> TlsSnmpConnection:
        ctx = legacy_tls_context(identity, trust)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=server_hostname),
            30,
        )
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            self.client.feed(data)
        self.client.feed_eof("the engine closed the connection")

    async def close(self) -> None:
        self.client.close()
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError, ssl.SSLError):
            await self._reader_task
        with contextlib.suppress(OSError, ssl.SSLError):
            await asyncio.wait_for(self.writer.wait_closed(), 5)
