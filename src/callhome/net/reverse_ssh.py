"""The reverse-ssh orientation (RFC 8071 section 3), both ends.

Manager: accepts TCP on 4334, then plays SSH *client*: it checks the device's host key
against the registry (through ``Admission.admit``) before offering any credential, then
authenticates with the key chosen for that device, opens the ``netconf`` subsystem and
hands a ready ``DeviceSession`` up.

Device: dials the manager, then plays SSH *server*: it accepts only the manager keys it
was given, closes the connection if the manager has not authenticated within the
configured time (RFC 8071 S5), and serves the ``netconf`` subsystem.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from callhome.config import KeepaliveConfig, SshAlgorithms
from callhome.errors import DeviceError, ServiceRefused
from callhome.identity import Identity
from callhome.net.accept import (
    ListenerLimits,
    ManagerListener,
    NoHello,
    exchange_hellos,
    no_hello,
)
from callhome.net.channels import (
    DeviceChannel,
    DeviceServices,
    ProcessHandle,
    PtyRequest,
    open_session_channel,
    open_tcp_channel,
)
from callhome.net.guard import AcceptGate, Handshake
from callhome.net.keys import identity_of
from callhome.net.netconf import (
    ClientFeed,
    NetconfClient,
    NetconfHandler,
    NetconfServerDriver,
    Principal,
)
from callhome.net.session import (
    Admission,
    DeviceSession,
    Orientation,
    local_address,
    peer_address,
)
from callhome.net.snmp import SNMP_SUBSYSTEM, SnmpChannel, SnmpHandler, open_snmp_client
from callhome.net.ssh_algorithms import (
    client_algorithm_options,
    restrict_host_keys,
    server_algorithm_options,
    warn_legacy,
)
from callhome.net.ssh_common import SSH_ERRORS, FeedingChannel

log = logging.getLogger(__name__)

NETCONF_SUBSYSTEM = "netconf"


# --------------------------------------------------------------------------------------
# Manager side
# --------------------------------------------------------------------------------------


@dataclass
class ManagerSshSettings:
    """What the manager's reverse-ssh listener needs, resolved once at start."""

    username: str
    credentials: dict[str, asyncssh.SSHKey]  # "" is the default credential
    algorithms: SshAlgorithms
    limits: ListenerLimits = field(default_factory=ListenerLimits)


class _ChannelToClient(FeedingChannel, asyncssh.SSHClientSession[bytes]):
    """Feeds an SSH channel's bytes to a NetconfClient."""

    def __init__(self) -> None:
        self.feed = ClientFeed()


class _ManagerSshClient(asyncssh.SSHClient):
    """One accepted call-home socket, while it becomes a DeviceSession."""

    def __init__(self, listener: ReverseSshListener) -> None:
        self._listener = listener
        self.conn: asyncssh.SSHClientConnection | None = None
        self.address = "unknown"
        self.identity: Identity | None = None
        self.refused = False  # a failure has been reported (or is to be kept quiet)
        self.key_offered = False
        self.netconf: NetconfClient | None = None  # once the netconf channel is open
        self.session: DeviceSession | None = None
        self.authenticated = False
        self._handshake: Handshake | None = None  # counted until SSH authentication

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self.conn = conn
        self.address = peer_address(conn.get_extra_info)
        self._handshake = self._listener.guard.begin(
            self.address,
            self._handshake_timeout,
            heard=lambda: bool(conn.get_extra_info("server_version")),
            drop=self._dropped,
        )
        if self._handshake.over_limit:
            self.refused = True
            conn.abort()

    def fail(self, reason: str, *, auth: bool = False) -> None:
        """The connection will not become a session: the first cause is the one reported."""
        if not self.refused:
            self.refused = True
            self._listener.admission.handshake_failed(
                self.address, self.identity, reason, auth=auth
            )

    def made(self, netconf: NetconfClient) -> None:
        self.netconf = netconf

    def _handshake_timeout(self) -> None:
        if self.session is None and self.conn is not None:
            self.fail("handshake timed out")
            self.conn.abort()

    def _dropped(self) -> None:
        """The flood guard drops this connection (its peer said nothing): quietly, the guard
        counts it."""
        if self.conn is not None:
            self.refused = True
            self.conn.abort()

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.identity = identity_of(key)
        if self._listener.guard.shuts_out(self.identity.fingerprint):
            self.refused = True  # counted and logged by the guard
            return False
        credential = self._listener.admission.admit(self.identity, self.address)
        if credential is None:
            self.refused = True
            return False
        self._credential = self._listener.settings.credentials.get(
            credential, self._listener.settings.credentials[""]
        )
        return True

    def public_key_auth_requested(self) -> asyncssh.SSHKey | None:
        if self.key_offered or self.refused:
            return None
        self.key_offered = True
        return self._credential

    def auth_completed(self) -> None:
        self.authenticated = True
        if self._handshake is not None:
            self._handshake.settle()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._handshake is not None:
            self._handshake.end()
        reason = str(exc) if exc else "connection closed"
        if self.session is not None:
            self._listener.end_session(self.session, self.session.netconf, reason)
        else:  # a hello that broke a rule closed the connection before this: say that
            self.fail(no_hello(self.netconf, reason) if self.netconf is not None else reason)

    def handshake_done(self) -> None:
        if self._handshake is not None:
            self._handshake.stop_timer()


class _SshChannels:
    """Terminals, commands and forwards on a reverse-ssh connection (manager side)."""

    def __init__(self, conn: asyncssh.SSHClientConnection) -> None:
        self._conn = conn

    async def open_terminal(
        self, term: str, size: tuple[int, int], command: str | None, limit: int
    ) -> DeviceChannel:
        what = "a terminal" if command is None else f"a terminal running {command!r}"
        try:
            return await open_session_channel(
                self._conn, "terminal", command=command, term=term, size=size, limit=limit
            )
        except asyncssh.ChannelOpenError as exc:
            raise _refused(what, exc) from None

    async def open_exec(self, command: str, limit: int) -> DeviceChannel:
        try:
            return await open_session_channel(
                self._conn, "exec", command=command, term=None, size=None, limit=limit
            )
        except asyncssh.ChannelOpenError as exc:
            raise _refused("running commands", exc) from None

    async def open_forward(self, host: str, port: int, limit: int) -> DeviceChannel:
        try:
            return await open_tcp_channel(self._conn, host, port, limit=limit)
        except asyncssh.ChannelOpenError as exc:
            if exc.code == asyncssh.OPEN_CONNECT_FAILED and "not allowed" not in exc.reason:
                raise DeviceError(
                    f"the device could not connect to {host}:{port}: {exc.reason}"
                ) from None
            raise _refused(f"forwarding to {host}:{port}", exc) from None


def _refused(what: str, exc: asyncssh.ChannelOpenError) -> DeviceError:
    if exc.code in (asyncssh.OPEN_REQUEST_PTY_FAILED, asyncssh.OPEN_REQUEST_SESSION_FAILED):
        return ServiceRefused(
            f"the device refused {what}: not allowed to this manager's key "
            "(see [[access]] in the device's agent.toml)"
        )
    if exc.code == asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED:
        return ServiceRefused(f"the device refused: {exc.reason}")
    return DeviceError(f"the device refused {what}: {exc.reason}")


class ReverseSshListener(ManagerListener):
    """The manager's reverse-ssh accept loop, turning sockets into DeviceSessions."""

    def __init__(self, admission: Admission, settings: ManagerSshSettings) -> None:
        super().__init__(admission, settings.limits, log)
        self.settings = settings
        self._acceptors: list[asyncssh.SSHAcceptor] = []
        self._options = asyncssh.SSHClientConnectionOptions(
            username=settings.username,
            known_hosts=([], [], []),  # nothing trusted up front: every key goes to admit()
            client_keys=None,
            agent_path=None,
            password_auth=False,
            kbdint_auth=False,
            host_based_auth=False,
            gss_host=None,
            keepalive_interval=settings.limits.keepalive.interval,
            keepalive_count_max=settings.limits.keepalive.count_max,
            config=None,
            **client_algorithm_options(settings.algorithms),
        )
        warn_legacy(settings.algorithms, "reverse-ssh manager")

    async def listen(self, host: str, port: int) -> int:
        """Start accepting on host:port; returns the port bound (useful with port 0)."""
        acceptor = await asyncssh.listen_reverse(
            host,
            port,
            options=self._options,
            client_factory=lambda: _ManagerSshClient(self),
            acceptor=self._accepted,
            error_handler=self._failed,
            tunnel=AcceptGate(self.guard),
        )
        self._acceptors.append(acceptor)
        return int(acceptor.get_port())

    def _failed(self, conn: asyncssh.SSHClientConnection, exc: Exception) -> None:
        client = conn.get_owner()
        if isinstance(client, _ManagerSshClient):
            client.fail(str(exc), auth=isinstance(exc, asyncssh.PermissionDenied))

    async def _accepted(self, conn: asyncssh.SSHClientConnection) -> None:
        client = conn.get_owner()
        assert isinstance(client, _ManagerSshClient) and client.identity is not None
        channel_session = _ChannelToClient()
        try:
            chan, _ = await conn.create_session(
                lambda: channel_session, subsystem=NETCONF_SUBSYSTEM, encoding=None
            )
        except (asyncssh.Error, OSError) as exc:
            client.fail(f"netconf subsystem refused: {exc}")
            conn.close()
            return
        try:
            netconf = await exchange_hellos(
                chan.write,
                conn.close,
                channel_session.feed.attach,
                self.limits,
                budget=self.budgets.of(client.identity.fingerprint),
                made=client.made,
                write_errors=SSH_ERRORS,
            )
        except NoHello as exc:
            client.fail(str(exc))
            conn.close()
            return
        rpc_timeout = self.limits.rpc_timeout
        session = DeviceSession(
            identity=client.identity,
            orientation=Orientation.REVERSE_SSH,
            address=client.address,
            netconf=netconf,
            close_transport=conn.close,
            channels=_SshChannels(conn),
            snmp_opener=lambda: open_snmp_client(conn, timeout=rpc_timeout),
            local_address=local_address(conn.get_extra_info),
        )
        client.session = session
        client.handshake_done()
        await self.ready(session)

    async def close(self) -> None:
        for acceptor in self._acceptors:
            acceptor.close()
        for acceptor in self._acceptors:
            await acceptor.wait_closed()
        self._acceptors.clear()
        self.cancel_tasks()


# --------------------------------------------------------------------------------------
# Device side
# --------------------------------------------------------------------------------------


class _ServerChannel(asyncssh.SSHServerSession[bytes]):
    """An SSH session channel on the device: the netconf subsystem, or, where the manager's
    key is allowed them (``DeviceServices``), a terminal or a command."""

    def __init__(
        self,
        handler: NetconfHandler,
        max_message_size: int,
        peer: str,
        server: _DeviceSshServer,
    ) -> None:
        self._handler = handler
        self._max = max_message_size
        self._peer = peer
        self._server = server
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None
        self._driver: NetconfServerDriver | None = None
        self._snmp: SnmpChannel | None = None
        self._pty: PtyRequest | None = None
        self._run: tuple[str | None] | None = None  # (command,) once shell/exec is granted
        self._process: ProcessHandle | None = None

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._chan = chan

    def _may(self, what: str) -> bool:
        services = self._server.services
        manager = self._server.manager_identity
        return services is not None and manager is not None and services.may_open(manager, what)

    def pty_requested(
        self, term_type: str, term_size: tuple[int, int, int, int], term_modes: Any
    ) -> bool:
        if not self._may("pty"):
            return False
        self._pty = PtyRequest(term_type, term_size[0] or 80, term_size[1] or 24)
        return True

    def terminal_size_changed(self, width: int, height: int, pixw: int, pixh: int) -> None:
        if self._process is not None:
            self._process.resize(width, height)
        elif self._pty is not None:
            self._pty = PtyRequest(self._pty.term, width or 80, height or 24)

    def subsystem_requested(self, subsystem: str) -> bool:
        if subsystem == SNMP_SUBSYSTEM and self._pty is None:
            return self._open_snmp()
        return subsystem == NETCONF_SUBSYSTEM and self._pty is None

    def _open_snmp(self) -> bool:
        handler, chan = self._server.snmp, self._chan
        if handler is None or chan is None:
            return False
        server = self._server
        self._snmp = handler.open_channel(
            server.manager_user, server.manager_identity, self._peer, chan.write, chan.close
        )
        return True

    def shell_requested(self) -> bool:
        if not self._may("shell"):
            return False
        self._run = (None,)
        return True

    def exec_requested(self, command: str) -> bool:
        if not self._may("exec"):
            return False
        self._run = (command,)
        return True

    def signal_received(self, signal: str) -> None:
        if self._process is not None:
            self._process.signal(signal)

    def break_received(self, msec: int) -> bool:
        if self._process is not None:
            self._process.signal("INT")
            return True
        return False

    def session_started(self) -> None:
        chan = self._chan
        assert chan is not None
        if self._run is not None:
            services, manager = self._server.services, self._server.manager_identity
            assert services is not None and manager is not None
            try:
                self._process = services.start(manager, chan, self._run[0], self._pty)
            except OSError as exc:
                chan.write_stderr(f"cannot start: {exc}\r\n".encode())
                chan.exit(127)
            return
        if self._snmp is not None:
            return
        self._driver = NetconfServerDriver(
            self._handler,
            chan.write,
            lambda: chan.exit(0),  # exit-status 0, then close (RFC 4254 section 6.10)
            max_message_size=self._max,
            peer=self._peer,
            principal=self._server.principal,
        )

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if datatype is not None:
            return
        if self._process is not None:
            self._process.data_received(data)
        elif self._driver is not None:
            self._driver.feed(data)
        elif self._snmp is not None:
            self._snmp.feed(data)

    def eof_received(self) -> bool:
        if self._process is not None:
            self._process.eof_received()
            return True  # keep sending output after the manager's EOF
        if self._driver is not None:
            self._driver.feed_eof()
        if self._snmp is not None:
            self._snmp.feed_eof()
        return False

    def pause_writing(self) -> None:
        if self._process is not None:
            self._process.pause()

    def resume_writing(self) -> None:
        if self._process is not None:
            self._process.resume()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._process is not None:
            self._process.close()
        if self._driver is not None:
            self._driver.connection_lost()
        if self._snmp is not None:
            self._snmp.connection_lost()


class _DeviceSshServer(asyncssh.SSHServer):
    def __init__(self, device: DeviceSshSettings) -> None:
        self._device = device
        self._peer = "unknown"
        self.manager_identity: Identity | None = None
        self.manager_user = ""

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._peer = peer_address(conn.get_extra_info)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        identity = identity_of(key)
        if identity.fingerprint in self._device.manager_fingerprints:
            self.manager_identity = identity
            self.manager_user = username
            return True
        log.warning("manager at %s offered an unknown key %s", self._peer, identity)
        return False

    @property
    def principal(self) -> Principal:
        """The authenticated manager, as plain data for the NETCONF service."""
        identity = self.manager_identity
        return Principal(
            identity="" if identity is None else identity.fingerprint,
            user=self.manager_user,
            transport="reverse-ssh",
        )

    @property
    def services(self) -> DeviceServices | None:
        return self._device.services

    @property
    def snmp(self) -> SnmpHandler | None:
        return self._device.snmp

    def session_requested(self) -> asyncssh.SSHServerSession[bytes]:
        return _ServerChannel(self._device.handler, self._device.max_message_size, self._peer, self)

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        services, manager = self._device.services, self.manager_identity
        if services is None or manager is None:
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "forwarding is not allowed"
            )
        services.check_forward(manager, dest_host, dest_port)
        log.info("manager %s opens a stream to %s:%d", manager, dest_host, dest_port)
        return True  # asyncssh connects and splices, with flow control both ways


@dataclass
class DeviceSshSettings:
    """What a device needs to serve a reverse-ssh call-home connection."""

    host_key: asyncssh.SSHKey
    manager_keys: list[asyncssh.SSHKey]
    handler: NetconfHandler
    auth_timeout: float
    keepalive: KeepaliveConfig
    algorithms: SshAlgorithms
    max_message_size: int = 16 * 1024 * 1024
    services: DeviceServices | None = None
    snmp: SnmpHandler | None = None

    def __post_init__(self) -> None:
        self.manager_fingerprints = {identity_of(k).fingerprint for k in self.manager_keys}
        self.options = asyncssh.SSHServerConnectionOptions(
            server_host_keys=[self.host_key],
            authorized_client_keys=None,
            login_timeout=self.auth_timeout,
            keepalive_interval=self.keepalive.interval,
            keepalive_count_max=self.keepalive.count_max,
            allow_pty=self.services is not None,
            line_editor=False,
            encoding=None,
            agent_forwarding=False,
            x11_forwarding=False,
            gss_host=None,
            config=None,
            server_factory=lambda: _DeviceSshServer(self),
            **server_algorithm_options(self.algorithms),
        )
        restrict_host_keys(self.options, self.algorithms)
        warn_legacy(self.algorithms, "reverse-ssh device")


async def dial_reverse_ssh(
    host: str, port: int, settings: DeviceSshSettings
) -> asyncssh.SSHServerConnection:
    """Open a call-home connection to a manager and serve it; returns once authenticated."""
    return await asyncssh.connect_reverse(host, port, options=settings.options)


def manager_keys_from(lines: Iterable[str]) -> list[asyncssh.SSHKey]:
    """Parse public keys, one per line, skipping blanks and comments."""
    keys = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            keys.append(asyncssh.import_public_key(line))
    return keys
