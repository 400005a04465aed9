"""The turn orientation (the seed, draft-lear-callhome-03 section 7), both ends.

The device is TCP *and* SSH client: it dials the manager's SSH server (its own port, 4336
by default here, never 4334 where the manager is an SSH client), checks the manager's host
key against the keys it was given, logs in with its own key and opens the subsystem
``netconf-turn``. Above that channel the roles are the usual ones: the manager plays
NETCONF client and the device NETCONF server.

Manager: any key that proves possession may finish SSH authentication; then the key's
identity (the same SHA256 fingerprint as a reverse-ssh host key) goes to
``Admission.admit``. An unknown key is recorded as pending, a refused or pending one has
its subsystem request rejected and its connection closed (the seed's rule), so no NETCONF
is spoken to a device not approved. Judging the key only after the signature is checked
means a pending record is always made by the key's holder. Only ``netconf-turn`` is
served: shells, commands, other subsystems and forwarding are refused.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from callhome.config import KeepaliveConfig, SshAlgorithms
from callhome.identity import Identity
from callhome.net.accept import (
    ListenerLimits,
    ManagerListener,
    NoHello,
    exchange_hellos,
    no_hello,
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
from callhome.net.ssh_algorithms import (
    client_algorithm_options,
    restrict_host_keys,
    server_algorithm_options,
    warn_legacy,
)
from callhome.net.ssh_common import SSH_ERRORS, FeedingChannel

log = logging.getLogger(__name__)

TURN_SUBSYSTEM = "netconf-turn"

# --------------------------------------------------------------------------------------
# Manager side
# --------------------------------------------------------------------------------------


@dataclass
class ManagerTurnSettings:
    """What the manager's turn SSH server needs, resolved once at start."""

    host_key: asyncssh.SSHKey
    algorithms: SshAlgorithms
    limits: ListenerLimits = field(default_factory=ListenerLimits)


class _TurnChannel(FeedingChannel, asyncssh.SSHServerSession[bytes]):
    """The device's session channel on the manager: netconf-turn, then a NetconfClient."""

    eof_reason = "device closed the netconf-turn channel"

    def __init__(self, server: _TurnServer) -> None:
        self._server = server
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.feed = ClientFeed()

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self.chan = chan

    def subsystem_requested(self, subsystem: str) -> bool:
        return self._server.subsystem_allowed(subsystem)

    def shell_requested(self) -> bool:
        self._server.refuse_request("shell requested")
        return False

    def exec_requested(self, command: str) -> bool:
        self._server.refuse_request("command requested")
        return False

    def pty_requested(self, term_type: str, term_size: Any, term_modes: Any) -> bool:
        return False

    def session_started(self) -> None:
        self._server.start_netconf(self)


class _TurnServer(asyncssh.SSHServer):
    """One device's SSH connection to the manager's turn server."""

    def __init__(self, listener: TurnListener) -> None:
        self._listener = listener
        self.conn: asyncssh.SSHServerConnection | None = None
        self.address = "unknown"
        self.identity: Identity | None = None
        self.admitted = False
        self.authenticated = False
        self.refused = False  # a refusal already reported (or to be kept quiet)
        self.channel: _TurnChannel | None = None
        self.netconf: NetconfClient | None = None  # once netconf-turn has started
        self.session: DeviceSession | None = None
        self._handshake: Handshake | None = None  # counted until SSH authentication

    # -- connection and authentication -----------------------------------------------------
    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.address = peer_address(conn.get_extra_info)
        self._handshake = self._listener.guard.begin(
            self.address,
            self._handshake_timeout,
            heard=lambda: bool(conn.get_extra_info("client_version")),
            drop=self._dropped,
        )
        if self._handshake.over_limit:
            self.refused = True
            conn.abort()

    def _handshake_timeout(self) -> None:
        if self.session is None and self.conn is not None:
            self._report("handshake timed out")
            self.conn.abort()

    def _dropped(self) -> None:
        """The flood guard drops this connection (its peer said nothing): quietly."""
        if self.conn is not None:
            self.refused = True
            self.conn.abort()

    def _report(self, reason: str, *, auth: bool = False) -> None:
        if not self.refused:
            self.refused = True
            self._listener.admission.handshake_failed(
                self.address, self.identity, reason, auth=auth
            )

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # any key may try: asyncssh checks the signature next, and the key is judged once
        # its holder has proved it (auth_completed), so nobody can make a key pending
        # without holding it
        self.identity = identity_of(key)
        return True

    def auth_completed(self) -> None:
        self.authenticated = True
        if self._handshake is not None:
            self._handshake.settle()
        identity = self.identity
        assert identity is not None
        if self._listener.guard.shuts_out(identity.fingerprint):
            self.refused = True  # counted and logged by the guard
            return
        self.admitted = self._listener.admission.admit(identity, self.address) is not None
        if not self.admitted:
            self.refused = True  # admit() has recorded why

    def connection_lost(self, exc: Exception | None) -> None:
        if self._handshake is not None:
            self._handshake.end()
        reason = str(exc) if exc else "connection closed"
        if self.session is not None:
            self._listener.end_session(self.session, self.session.netconf, reason)
        elif self.netconf is not None:  # a hello that broke a rule closed it: say that
            self._report(no_hello(self.netconf, reason))
        else:
            self._report(reason, auth=not self.authenticated)

    # -- channels --------------------------------------------------------------------------
    def session_requested(self) -> _TurnChannel | bool:
        if self.channel is not None:  # one netconf-turn session per connection
            return False
        self.channel = _TurnChannel(self)
        return self.channel

    def subsystem_allowed(self, subsystem: str) -> bool:
        if subsystem == TURN_SUBSYSTEM and self.admitted:
            return True
        if subsystem != TURN_SUBSYSTEM:
            self.refuse_request(f"subsystem {subsystem!r} requested; only {TURN_SUBSYSTEM}")
        else:
            self._close_soon()
        return False

    def refuse_request(self, reason: str) -> None:
        self._report(reason)
        self._close_soon()

    def _close_soon(self) -> None:
        """Close once the refusal has gone out (the connection exists for netconf-turn)."""
        conn = self.conn
        if conn is not None:
            asyncio.get_running_loop().call_soon(conn.close)

    def start_netconf(self, channel: _TurnChannel) -> None:
        self._listener.spawn(self._ready(channel))

    def _made(self, netconf: NetconfClient) -> None:
        self.netconf = netconf

    async def _ready(self, channel: _TurnChannel) -> None:
        assert channel.chan is not None and self.conn is not None and self.identity is not None
        try:
            netconf = await exchange_hellos(
                channel.chan.write,
                self.conn.close,
                channel.feed.attach,
                self._listener.limits,
                budget=self._listener.budgets.of(self.identity.fingerprint),
                made=self._made,
                write_errors=SSH_ERRORS,
            )
        except NoHello as exc:
            self._report(str(exc))
            self.conn.close()
            return
        if self.refused:
            return
        if self._handshake is not None:
            self._handshake.stop_timer()
        self.session = DeviceSession(
            identity=self.identity,
            orientation=Orientation.TURN,
            address=self.address,
            netconf=netconf,
            close_transport=self.conn.close,
            local_address=local_address(self.conn.get_extra_info),
        )
        await self._listener.ready(self.session)


class TurnListener(ManagerListener):
    """The manager's turn SSH server, turning logged-in devices into DeviceSessions."""

    def __init__(self, admission: Admission, settings: ManagerTurnSettings) -> None:
        super().__init__(admission, settings.limits, log)
        self.settings = settings
        self._acceptors: list[asyncssh.SSHAcceptor] = []
        self._options = asyncssh.SSHServerConnectionOptions(
            server_host_keys=[settings.host_key],
            authorized_client_keys=None,
            login_timeout=settings.limits.handshake_timeout,
            keepalive_interval=settings.limits.keepalive.interval,
            keepalive_count_max=settings.limits.keepalive.count_max,
            password_auth=False,
            kbdint_auth=False,
            allow_pty=False,
            line_editor=False,
            encoding=None,
            agent_forwarding=False,
            x11_forwarding=False,
            gss_host=None,
            config=None,
            server_factory=lambda: _TurnServer(self),
            **server_algorithm_options(settings.algorithms),
        )
        restrict_host_keys(self._options, settings.algorithms)
        warn_legacy(settings.algorithms, "turn manager")

    async def listen(self, host: str, port: int) -> int:
        """Start accepting on host:port; returns the port bound (useful with port 0)."""
        acceptor = await asyncssh.listen(
            host, port, options=self._options, tunnel=AcceptGate(self.guard)
        )
        self._acceptors.append(acceptor)
        return int(acceptor.get_port())

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


class _DeviceTurnChannel(asyncssh.SSHClientSession[bytes]):
    """The device's netconf-turn channel: a NETCONF server session over it."""

    def __init__(self, settings: DeviceTurnSettings) -> None:
        self._settings = settings
        self.chan: asyncssh.SSHClientChannel[bytes] | None = None
        self.driver: NetconfServerDriver | None = None

    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:
        self.chan = chan

    def session_started(self) -> None:
        chan = self.chan
        assert chan is not None
        conn = chan.get_extra_info("connection")
        host_key = conn.get_server_host_key()
        manager = "" if host_key is None else identity_of(host_key).fingerprint
        self.driver = NetconfServerDriver(
            self._settings.handler,
            chan.write,
            conn.close,  # the connection exists for this session: it ends with it
            max_message_size=self._settings.max_message_size,
            peer=str(chan.get_extra_info("peername", "manager")),
            principal=Principal(identity=manager, user=self._settings.username, transport="turn"),
        )

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self.driver is not None and datatype is None:
            self.driver.feed(data)

    def eof_received(self) -> bool:
        if self.driver is not None:
            self.driver.feed_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.driver is not None:
            self.driver.connection_lost()
        if self.chan is not None:
            self.chan.get_extra_info("connection").close()


@dataclass
class DeviceTurnSettings:
    """What a device needs to call home in the turn orientation."""

    user_key: asyncssh.SSHKey
    manager_host_keys: list[asyncssh.SSHKey]
    handler: NetconfHandler
    auth_timeout: float
    keepalive: KeepaliveConfig
    algorithms: SshAlgorithms
    username: str = "callhome"
    max_message_size: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        self.options = asyncssh.SSHClientConnectionOptions(
            username=self.username,
            client_keys=[self.user_key],
            known_hosts=(  # only these manager keys, whatever host name they answer on
                [asyncssh.import_public_key(k.export_public_key()) for k in self.manager_host_keys],
                [],
                [],
            ),
            agent_path=None,
            password_auth=False,
            kbdint_auth=False,
            host_based_auth=False,
            gss_host=None,
            login_timeout=self.auth_timeout,
            keepalive_interval=self.keepalive.interval,
            keepalive_count_max=self.keepalive.count_max,
            config=None,
            **client_algorithm_options(self.algorithms),
        )
        warn_legacy(self.algorithms, "turn device")


async def dial_turn(
    host: str, port: int, settings: DeviceTurnSettings
) -> asyncssh.SSHClientConnection:
    """Log in to a manager's turn server and serve NETCONF on ``netconf-turn``; returns once
    the subsystem is open. Raises ``asyncssh.Error`` if the manager refuses (a pending key's
    subsystem request is rejected) or its host key is not one given."""
    conn = await asyncssh.connect(host, port, options=settings.options)
    try:
        await conn.create_session(
            lambda: _DeviceTurnChannel(settings), subsystem=TURN_SUBSYSTEM, encoding=None
        )
    except BaseException:
        conn.abort()
        raise
    return conn
