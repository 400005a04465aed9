"""The reverse-tls orientation (RFC 8071 section 4; NETCONF over TLS, RFC 7589), both ends.

Manager: accepts TCP on 4335, then plays TLS *client* with its client certificate. It
judges the certificate chain the device presents by its own rules (``pki.CertPolicy``:
pinned fingerprint, or a configured CA plus a cert-to-name rule; CRLs; never the host name)
and asks ``Admission.admit`` with the resulting x509 Identity before any NETCONF is spoken;
then it plays NETCONF client (RFC 6242 framing, base:1.1 chunks when both offer it).

Device: dials the manager, then plays TLS *server* with its certificate and chain. It
requires a client certificate that verifies to its configured anchors (a CA, or the
manager's own certificate) and, if configured, has a pinned fingerprint; otherwise, or if
the manager has not completed the handshake within ``auth_timeout``, it closes the
connection (RFC 8071 S5). Then it serves NETCONF.

TLS 1.2 is the minimum (unless ``minimum_version`` lowers it for an old peer); TLS 1.3 is
negotiated whenever both ends have it.

The TLS handshake, the judgement of the device and its admission are the same whatever
runs above them: :class:`ReverseTlsListener` serves NETCONF, and a subclass may serve
another protocol (``callhome.net.snmp_tls``: SNMP, RFC 6353) by overriding
``_open_session`` and ``_probe``; :func:`dial_tls` takes the service to start.

Keepalives (RFC 8071 C4/S7): Python's ``ssl`` module has no TLS heartbeat (RFC 6520), so
both ends turn on TCP keepalives (idle, interval and count from the keepalive config), and
the manager sends a NETCONF probe (``<get>`` with an empty subtree filter, which selects
nothing) when the connection has been silent for one keepalive interval; a probe not
answered within ``count_max`` intervals ends the session.

Python's ``ssl`` offers no hook between receiving the device's certificate and sending the
manager's, so the manager's certificate (public data) is sent before the device is judged;
no NETCONF, and so no operation and no credential beyond that, follows unless the device
is admitted.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509

from callhome.config import CertToNameRule, KeepaliveConfig, ManagerConfig
from callhome.errors import AuthError, ConfigError, ProtocolError, SessionClosed
from callhome.identity import Identity
from callhome.net.accept import (
    ListenerLimits,
    ManagerListener,
    NoHello,
    StreamClient,
    exchange_hellos,
)
from callhome.net.guard import LISTEN_BACKLOG, Handshake
from callhome.net.netconf import (
    NetconfHandler,
    NetconfServerDriver,
    Principal,
)
from callhome.net.pki import (
    CertPolicy,
    cert_identity,
    common_name,
    load_certificates,
    normalize_fingerprint,
)
from callhome.net.session import Admission, DeviceSession, Orientation, local_address, peer_address

log = logging.getLogger(__name__)

PROBE = '<get xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><filter type="subtree"/></get>'
"""The manager's liveness probe: a get that selects nothing, so the reply is ``<data/>``."""

CLOSE_GRACE = 5.0
"""Seconds a closing TLS connection may take to flush before it is cut."""


def set_tcp_keepalive(sock: socket.socket | None, keepalive: KeepaliveConfig) -> None:
    """Turn on TCP keepalives: idle and interval from ``interval``, probes ``count_max``."""
    if sock is None:
        return
    seconds = max(1, round(keepalive.interval))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, seconds)
        elif hasattr(socket, "TCP_KEEPALIVE"):  # macOS
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPALIVE, seconds)
        if hasattr(socket, "TCP_KEEPINTVL"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, seconds)
        if hasattr(socket, "TCP_KEEPCNT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, keepalive.count_max)
    except OSError as exc:
        log.debug("cannot set TCP keepalives: %s", exc)


def peer_chain(sslobj: Any) -> list[bytes]:
    """The certificates the peer sent, leaf first, as DER (unverified: we judge them)."""
    leaf = sslobj.getpeercert(binary_form=True)
    chain: list[bytes] = []
    getter = getattr(sslobj, "get_unverified_chain", None)  # public from Python 3.13
    if getter is None:  # 3.10 to 3.12 have it on the inner object; else the leaf alone
        getter = getattr(getattr(sslobj, "_sslobj", None), "get_unverified_chain", None)
    if getter is not None:
        for cert in getter() or []:
            chain.append(cert if isinstance(cert, bytes) else cert.public_bytes(2))  # DER
    if leaf and (not chain or chain[0] != leaf):
        chain.insert(0, leaf)
    return chain


TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
"""The values of the ``minimum_version`` settings."""


def _tls_context(
    server_side: bool, minimum_version: str = "TLSv1.2", ciphers: str = ""
) -> ssl.SSLContext:
    """A context with TLS 1.2 at least, unless an old peer needs less (``minimum_version``
    and ``ciphers``: a weaker connection, for that peer only)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    if minimum_version not in TLS_VERSIONS:
        raise ConfigError(f"unknown TLS version {minimum_version!r}")
    version = TLS_VERSIONS[minimum_version]
    with warnings.catch_warnings():  # Python deprecates TLS 1.0/1.1: the operator asked
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        log.warning("TLS below 1.2 allowed (minimum_version %s): for old peers only", version.name)
    if ciphers:
        try:
            ctx.set_ciphers(ciphers)
        except ssl.SSLError as exc:
            raise ConfigError(f"bad TLS cipher string {ciphers!r}: {exc}") from None
    ctx.options |= ssl.OP_NO_COMPRESSION
    if hasattr(ssl, "OP_NO_RENEGOTIATION"):
        ctx.options |= ssl.OP_NO_RENEGOTIATION
    return ctx


def _load_chain(ctx: ssl.SSLContext, cert: Path, key: Path) -> None:
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load certificate {cert} with key {key}: {exc}") from None


def _is_auth_failure(exc: BaseException | None) -> bool:
    text = str(exc).upper()
    return isinstance(exc, ssl.SSLError) and ("CERTIFICATE" in text or "UNKNOWN_CA" in text)


# --------------------------------------------------------------------------------------
# Manager side
# --------------------------------------------------------------------------------------


@dataclass
class ManagerTlsSettings:
    """What the manager's reverse-tls listener needs, resolved once at start."""

    context: ssl.SSLContext
    policy: CertPolicy
    limits: ListenerLimits = field(default_factory=ListenerLimits)
    probe: bool = True

    @classmethod
    def from_config(
        cls, config: ManagerConfig, limits: ListenerLimits | None = None
    ) -> ManagerTlsSettings:
        """The settings ``[manager.tls]`` describes, under ``limits`` (by default those of
        ``[manager]``)."""
        section = config.manager
        tls = section.tls
        return cls.from_files(
            config.path(tls.cert),
            config.path(tls.key),
            ca=[config.path(p) for p in tls.ca],
            crl=[config.path(p) for p in tls.crl],
            rules=tls.cert_to_name,
            allow_pinned=tls.allow_pinned,
            limits=limits or ListenerLimits.from_config(section),
            minimum_version=tls.minimum_version,
            ciphers=tls.ciphers,
        )

    @classmethod
    def from_files(
        cls,
        cert: Path,
        key: Path,
        *,
        ca: Sequence[Path] = (),
        crl: Sequence[Path] = (),
        rules: Sequence[CertToNameRule] = (),
        allow_pinned: bool = True,
        limits: ListenerLimits | None = None,
        minimum_version: str = "TLSv1.2",
        ciphers: str = "",
    ) -> ManagerTlsSettings:
        ctx = _tls_context(False, minimum_version, ciphers)
        ctx.check_hostname = False  # identity is judged by CertPolicy, never by host name
        ctx.verify_mode = ssl.CERT_NONE  # ... on the whole chain, after the handshake
        _load_chain(ctx, cert, key)
        policy = CertPolicy.from_files(ca, crl, rules, allow_pinned=allow_pinned)
        return cls(ctx, policy, limits or ListenerLimits())


class AcceptedConnection(asyncio.Protocol):
    """One accepted call-home socket: the TLS handshake, the judgement, then the session."""

    def __init__(self, listener: ReverseTlsListener) -> None:
        self._listener = listener
        self.address = "unknown"
        self.local_address: tuple[str, int] | None = None
        self.raw: asyncio.Transport | None = None
        self.tls: asyncio.Transport | None = None
        self.identity: Identity | None = None
        self.client: StreamClient | None = None
        self.session: DeviceSession | None = None
        self.last_received = time.monotonic()
        self.done = False  # a failure has been reported, or the session exists
        self.handshake: Handshake | None = None  # counted until done
        self._early: list[bytes] = []
        self._lost = False
        self._cause: str | None = None  # see _note_cause

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.raw = transport
        self.address = peer_address(transport.get_extra_info)
        self.local_address = local_address(transport.get_extra_info)
        listener = self._listener
        set_tcp_keepalive(transport.get_extra_info("socket"), listener.limits.keepalive)
        # no timer: establish() bounds the whole handshake, being one task
        self.handshake = listener.guard.begin(
            self.address,
            heard=lambda: self.tls is not None,
            drop=lambda: self.fail("dropped by the flood guard", report=False),
            deadline=False,  # the manager speaks first here; a slow device may be slow
        )
        if self.handshake.over_limit:
            self.fail("too many handshakes in progress", report=False)
            return
        listener.spawn(listener.establish(self))

    def data_received(self, data: bytes) -> None:
        self.last_received = time.monotonic()
        if self.client is not None:
            self.client.feed(data)
        elif len(self._early) < 64:
            self._early.append(data)

    def eof_received(self) -> bool:
        if self.client is not None:
            self._note_cause()
            self.client.feed_eof("device closed the connection")
        return False

    def _note_cause(self) -> None:
        """The device's end of the stream came: keep what ended the client's session
        before it (a hello that broke a rule ...), the first cause, if anything did."""
        if self._cause is None and self.client is not None:
            self._cause = self.client.close_reason or ""

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        reason = f"connection lost: {exc}" if exc else "connection closed"
        self._note_cause()
        cause = self._cause
        if self.session is not None and self.client is not None:
            self._listener.end_session(self.session, self.client, reason)
            return
        if self.client is not None:
            self.client.feed_eof(reason)
        if cause:
            self.fail(f"no {self._listener.first_reply}: {cause}")
        elif exc is None and self.tls is not None and self.client is not None:
            # what a device that refuses our certificate looks like from here under TLS 1.3
            # (asyncio drops the alert that would say so)
            self.fail(
                "device closed the connection after the TLS handshake, before its "
                f"{self._listener.first_reply} (does it accept the manager's certificate?)",
                auth=True,
            )
        else:
            self.fail(reason, auth=_is_auth_failure(exc))

    # -- helpers ---------------------------------------------------------------------------
    def attach(self, client: StreamClient) -> None:
        self.client = client
        for data in self._early:
            client.feed(data)
        self._early.clear()

    def fail(self, reason: str, *, auth: bool = False, report: bool = True) -> None:
        """The connection will not become a session: say why once, and cut it."""
        if not self.done:
            self.done = True
            if self.handshake is not None:
                self.handshake.end()  # a failed handshake: its address is penalized
            if report:
                self._listener.admission.handshake_failed(
                    self.address, self.identity, reason, auth=auth
                )
        self.abort()

    def close(self) -> None:
        """Close politely (TLS close_notify), and cut the socket if that does not finish."""
        transport = self.tls or self.raw
        if transport is not None and not self._lost:
            transport.close()
            asyncio.get_running_loop().call_later(CLOSE_GRACE, self.abort)

    def abort(self) -> None:
        if self.raw is not None and not self._lost:
            self.raw.abort()


class ReverseTlsListener(ManagerListener):
    """The manager's reverse-tls accept loop, turning sockets into DeviceSessions."""

    first_reply = "NETCONF hello"
    """What the device sends first once admitted (for the messages that say it did not)."""

    def __init__(self, admission: Admission, settings: ManagerTlsSettings) -> None:
        super().__init__(admission, settings.limits, log)
        self.settings = settings
        self._servers: list[asyncio.Server] = []

    async def listen(self, host: str, port: int) -> int:
        """Start accepting on host:port; returns the port bound (useful with port 0)."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: AcceptedConnection(self),
            host,
            port,
            reuse_address=True,
            backlog=LISTEN_BACKLOG,
        )
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def establish(self, conn: AcceptedConnection) -> None:
        """TLS handshake, certificate judgement, admission and NETCONF hello, in bounded time."""
        settings = self.settings
        try:
            async with asyncio.timeout(self.limits.handshake_timeout):
                session = await self._handshake(conn)
        except TimeoutError:
            conn.fail("handshake timed out")
            return
        except (ssl.SSLError, OSError) as exc:
            conn.fail(f"TLS handshake failed: {exc}", auth=_is_auth_failure(exc))
            return
        except (SessionClosed, ProtocolError) as exc:
            conn.fail(f"no {self.first_reply}: {exc}")
            return
        except NoHello as exc:
            conn.fail(str(exc))
            return
        if session is None:
            return
        if conn.done:  # lost between its hello and now
            session.mark_closed("connection lost")
            return
        conn.session = session
        conn.done = True
        if conn.handshake is not None:
            conn.handshake.settle()
        await self.ready(session)
        if settings.probe and not session.closed.is_set():
            self.spawn(self._probe(conn, session))

    async def _handshake(self, conn: AcceptedConnection) -> DeviceSession | None:
        tls = await self._admit(conn)
        if tls is None or conn.identity is None:
            return None
        return await self._open_session(conn, tls, conn.identity)

    async def _admit(self, conn: AcceptedConnection) -> asyncio.Transport | None:
        """The TLS handshake, the device's certificate judged and the device admitted; the
        TLS transport, or None (the connection has been failed and the reason given)."""
        settings = self.settings
        loop = asyncio.get_running_loop()
        assert conn.raw is not None
        tls = await loop.start_tls(
            conn.raw,
            conn,
            settings.context,
            server_side=False,
            server_hostname=None,
            ssl_handshake_timeout=self.limits.handshake_timeout,
        )
        if tls is None:
            raise ConnectionResetError("connection closed during the TLS handshake")
        conn.tls = tls
        decision = settings.policy.decide(peer_chain(tls.get_extra_info("ssl_object")), time.time())
        conn.identity = decision.leaf
        if decision.identity is None:
            conn.fail(decision.reason, auth=True)
            return None
        identity = decision.identity
        if decision.mapped_name is not None:
            log.info("device %s at %s: %s", decision.leaf, conn.address, decision.reason)
            if decision.leaf is not None:
                # an operator may have approved the certificate's fingerprint instead
                identity = self.admission.preferred([identity, decision.leaf])
        conn.identity = identity
        if self.guard.shuts_out(identity.fingerprint):
            conn.fail("penalized device", report=False)  # counted and logged by the guard
            return None
        if self.admission.admit(identity, conn.address) is None:
            conn.fail("not admitted", report=False)  # admit() has said why
            return None
        return tls

    async def _open_session(
        self, conn: AcceptedConnection, tls: asyncio.Transport, identity: Identity
    ) -> DeviceSession:
        """NETCONF over the admitted connection: the hellos, then the session."""
        budget = self.budgets.of(identity.fingerprint)
        netconf = await exchange_hellos(
            tls.write, conn.close, conn.attach, self.limits, budget=budget
        )
        return DeviceSession(
            identity=identity,
            orientation=Orientation.REVERSE_TLS,
            address=conn.address,
            netconf=netconf,
            close_transport=conn.close,
            local_address=conn.local_address,
        )

    async def _probe(self, conn: AcceptedConnection, session: DeviceSession) -> None:
        """NETCONF-level keepalive: probe a connection that has been silent for an interval."""
        keepalive = self.limits.keepalive
        netconf = session.netconf
        while not netconf.closed:
            if not await self._silent(conn, session):
                return
            try:
                await netconf.rpc_reply(PROBE, keepalive.interval * keepalive.count_max)
            except (SessionClosed, TimeoutError):
                return  # the client has closed the session and said why

    async def _silent(self, conn: AcceptedConnection, session: DeviceSession) -> bool:
        """Wait until the connection has been silent for a keepalive interval (True), or
        the session ends (False)."""
        interval = self.limits.keepalive.interval
        while not session.closed.is_set():
            try:
                await asyncio.wait_for(session.closed.wait(), interval)
                return False
            except TimeoutError:
                pass
            if time.monotonic() - conn.last_received >= interval:
                return True
        return False

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self.cancel_tasks()


# --------------------------------------------------------------------------------------
# Device side
# --------------------------------------------------------------------------------------


@dataclass
class DeviceTlsSettings:
    """What a device needs to serve a reverse-tls call-home connection."""

    context: ssl.SSLContext
    handler: NetconfHandler
    auth_timeout: float
    keepalive: KeepaliveConfig
    manager_fingerprints: frozenset[str] = frozenset()
    max_message_size: int = 16 * 1024 * 1024
    identity: Identity | None = field(default=None)

    @classmethod
    def from_files(
        cls,
        cert: Path,
        key: Path,
        *,
        manager_ca: Sequence[Path],
        manager_crl: Sequence[Path] = (),
        manager_fingerprints: Sequence[str] = (),
        handler: NetconfHandler,
        auth_timeout: float,
        keepalive: KeepaliveConfig,
        max_message_size: int = 16 * 1024 * 1024,
        minimum_version: str = "TLSv1.2",
        ciphers: str = "",
    ) -> DeviceTlsSettings:
        if not manager_ca:
            raise ConfigError(
                "reverse-tls needs tls.manager_ca: the CA of the manager's certificate, "
                "or that certificate itself"
            )
        ctx = _tls_context(True, minimum_version, ciphers)
        _load_chain(ctx, cert, key)
        ctx.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no connection
        # a file may hold the manager's own certificate (not a root): trust it as it is
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        for path in manager_ca:
            try:
                ctx.load_verify_locations(cafile=str(path))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot load manager_ca {path}: {exc}") from None
        for path in manager_crl:
            try:
                ctx.load_verify_locations(cafile=str(path))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot load manager_crl {path}: {exc}") from None
        if manager_crl:
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        pins = frozenset(normalize_fingerprint(f) for f in manager_fingerprints)
        identity = cert_identity(load_certificates(cert)[0])
        return cls(
            ctx,
            handler,
            auth_timeout,
            keepalive,
            manager_fingerprints=pins,
            max_message_size=max_message_size,
            identity=identity,
        )


class StreamDriver(Protocol):
    """What a device runs over a reverse-tls connection (NETCONF server, SNMP responder)."""

    def feed(self, data: bytes) -> None: ...

    def feed_eof(self) -> None: ...

    def connection_lost(self) -> None: ...


@dataclass(frozen=True)
class TlsPeer:
    """The manager, as the device's TLS handshake authenticated it."""

    identity: Identity
    """The fingerprint of its certificate."""
    chain: tuple[x509.Certificate, ...]
    """Its verified chain: its certificate first, the trust anchor last."""
    address: str


StartService = Callable[[TlsPeer, Callable[[bytes], None], Callable[[], None]], StreamDriver]
"""Starts the service for an authenticated manager, given how to write and to close; raises
AuthError to refuse the manager."""


class _DeviceProtocol(asyncio.Protocol):
    """The device's end of one reverse-tls connection."""

    def __init__(self) -> None:
        self.peer = "unknown"
        self.driver: StreamDriver | None = None
        loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.heard: asyncio.Future[None] = loop.create_future()  # the manager's first bytes
        # a dial that failed before it waited for them leaves nobody to read the exception
        self.heard.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.raw: asyncio.Transport | None = None
        self.tls: asyncio.Transport | None = None
        self._early: list[bytes] = []  # what came with the end of the handshake
        self._early_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.raw = transport
        self.peer = peer_address(transport.get_extra_info)

    def serve(self, driver: StreamDriver) -> None:
        self.driver = driver
        for data in self._early:
            self.driver.feed(data)
        self._early.clear()
        if self._early_eof:
            self.driver.feed_eof()

    def data_received(self, data: bytes) -> None:
        if not self.heard.done():
            self.heard.set_result(None)
        if self.driver is not None:
            self.driver.feed(data)
        elif len(self._early) < 64:
            self._early.append(data)

    def eof_received(self) -> bool:
        if self.driver is not None:
            self.driver.feed_eof()
        else:
            self._early_eof = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.driver is not None:
            self.driver.connection_lost()
        if not self.closed.done():
            self.closed.set_result(None)
        if not self.heard.done():
            self.heard.set_exception(
                ConnectionResetError(
                    "the manager closed the connection before it spoke "
                    "(is this device approved there?)"
                )
            )

    def close(self) -> None:
        transport = self.tls or self.raw
        if transport is not None and not self.closed.done():
            transport.close()
            asyncio.get_running_loop().call_later(CLOSE_GRACE, self.abort)

    def abort(self) -> None:
        if self.raw is not None and not self.closed.done():
            self.raw.abort()


class TlsDeviceConnection:
    """A device's live reverse-tls connection (what ``dial_reverse_tls`` returns)."""

    def __init__(self, protocol: _DeviceProtocol, manager: Identity) -> None:
        self._protocol = protocol
        self.manager_identity = manager

    @property
    def tls_version(self) -> str | None:
        """The TLS version negotiated ('TLSv1.3' ...)."""
        tls = self._protocol.tls
        sslobj = tls.get_extra_info("ssl_object") if tls is not None else None
        return sslobj.version() if sslobj is not None else None

    async def wait_closed(self) -> None:
        await asyncio.shield(self._protocol.closed)

    def close(self) -> None:
        self._protocol.close()

    def abort(self) -> None:
        self._protocol.abort()


def verified_chain(sslobj: Any) -> tuple[x509.Certificate, ...]:
    """The peer's chain as the handshake verified it (leaf to trust anchor); the leaf alone
    where Python does not tell."""
    getter = getattr(sslobj, "get_verified_chain", None)  # public from Python 3.13
    if getter is None:
        getter = getattr(getattr(sslobj, "_sslobj", None), "get_verified_chain", None)
    found = (getter() or []) if getter is not None else []
    ders = [c if isinstance(c, bytes) else c.public_bytes(2) for c in found]  # 2: DER
    if not ders:
        ders = [sslobj.getpeercert(binary_form=True)]
    return tuple(x509.load_der_x509_certificate(d) for d in ders)


def serve_netconf(settings: DeviceTlsSettings) -> StartService:
    """NETCONF (RFC 7589) for the manager, known by its certificate (user: its CN)."""

    def start(
        peer: TlsPeer, write: Callable[[bytes], None], close: Callable[[], None]
    ) -> StreamDriver:
        principal = Principal(
            identity=peer.identity.fingerprint,
            user=common_name(peer.chain[0]),
            transport="reverse-tls",
        )
        return NetconfServerDriver(
            settings.handler,
            write,
            close,
            max_message_size=settings.max_message_size,
            peer=peer.address,
            principal=principal,
        )

    return start


async def dial_reverse_tls(
    host: str, port: int, settings: DeviceTlsSettings
) -> TlsDeviceConnection:
    """Open a call-home connection to a manager and serve NETCONF on it (see dial_tls)."""
    return await dial_tls(host, port, settings, serve_netconf(settings))


async def dial_tls(
    host: str, port: int, settings: DeviceTlsSettings, start: StartService
) -> TlsDeviceConnection:
    """Open a call-home connection to a manager and serve it; returns once the manager's
    certificate has been accepted and the manager has spoken (it has admitted us).

    Raises ``ssl.SSLError``/``OSError`` if the handshake fails or the manager hangs up
    first, and ``AuthError`` if the manager's certificate is not a pinned one or the
    service refuses it."""
    loop = asyncio.get_running_loop()
    protocol = _DeviceProtocol()
    raw, _ = await loop.create_connection(lambda: protocol, host, port)
    set_tcp_keepalive(raw.get_extra_info("socket"), settings.keepalive)
    try:
        tls = await loop.start_tls(
            raw,
            protocol,
            settings.context,
            server_side=True,
            ssl_handshake_timeout=settings.auth_timeout,  # RFC 8071 S5
        )
    except BaseException:
        raw.close()  # lets the alert that says why go out first
        loop.call_later(CLOSE_GRACE, raw.abort)
        raise
    if tls is None:
        raw.abort()
        raise ConnectionResetError("connection closed during the TLS handshake")
    protocol.tls = tls
    chain = verified_chain(tls.get_extra_info("ssl_object"))
    manager = cert_identity(chain[0])
    if settings.manager_fingerprints and manager.fingerprint not in settings.manager_fingerprints:
        raw.abort()
        raise AuthError(f"manager certificate {manager.fingerprint} is not a pinned one")
    try:
        driver = start(TlsPeer(manager, chain, protocol.peer), tls.write, protocol.close)
    except AuthError:
        raw.abort()
        raise
    protocol.serve(driver)
    # the manager speaks only once it has admitted this device: until then the connection
    # does not count as made (a refused device backs off instead of redialing at once)
    try:
        await asyncio.wait_for(asyncio.shield(protocol.heard), settings.auth_timeout)
    except BaseException:
        protocol.abort()
        raise
    return TlsDeviceConnection(protocol, manager)
