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

TLS 1.2 is the minimum; TLS 1.3 is negotiated whenever both ends have it.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from callhome.config import CertToNameRule, KeepaliveConfig
from callhome.errors import AuthError, ConfigError, SessionClosed
from callhome.identity import Identity
from callhome.net.netconf import NetconfClient, NetconfHandler, NetconfServerDriver, Principal
from callhome.net.pki import (
    CertPolicy,
    cert_identity,
    common_name,
    load_certificates,
    normalize_fingerprint,
)
from callhome.net.session import Admission, DeviceSession, Orientation

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


def _address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if not peer:
        return "unknown"
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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


def _tls_context(server_side: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
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
    keepalive: KeepaliveConfig
    handshake_timeout: float = 20.0
    rpc_timeout: float = 60.0
    max_message_size: int = 16 * 1024 * 1024
    max_unauthenticated: int = 256
    probe: bool = True

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
        keepalive: KeepaliveConfig,
        handshake_timeout: float = 20.0,
        rpc_timeout: float = 60.0,
        max_message_size: int = 16 * 1024 * 1024,
        max_unauthenticated: int = 256,
    ) -> ManagerTlsSettings:
        ctx = _tls_context(server_side=False)
        ctx.check_hostname = False  # identity is judged by CertPolicy, never by host name
        ctx.verify_mode = ssl.CERT_NONE  # ... on the whole chain, after the handshake
        _load_chain(ctx, cert, key)
        policy = CertPolicy.from_files(ca, crl, rules, allow_pinned=allow_pinned)
        return cls(
            ctx,
            policy,
            keepalive,
            handshake_timeout=handshake_timeout,
            rpc_timeout=rpc_timeout,
            max_message_size=max_message_size,
            max_unauthenticated=max_unauthenticated,
        )


class _Accepted(asyncio.Protocol):
    """One accepted call-home socket: the TLS handshake, the judgement, then the session."""

    def __init__(self, listener: ReverseTlsListener) -> None:
        self._listener = listener
        self.address = "unknown"
        self.raw: asyncio.Transport | None = None
        self.tls: asyncio.Transport | None = None
        self.identity: Identity | None = None
        self.client: NetconfClient | None = None
        self.session: DeviceSession | None = None
        self.last_received = time.monotonic()
        self.done = False  # a failure has been reported, or the session exists
        self._early: list[bytes] = []
        self._lost = False

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.raw = transport
        self.address = _address(transport)
        listener = self._listener
        set_tcp_keepalive(transport.get_extra_info("socket"), listener.settings.keepalive)
        listener.unauthenticated += 1
        if listener.unauthenticated > listener.settings.max_unauthenticated:
            log.warning("too many handshakes in progress; dropping %s", self.address)
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
            self.client.feed_eof("device closed the connection")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        reason = f"connection lost: {exc}" if exc else "connection closed"
        if self.client is not None:
            self.client.feed_eof(reason)
        if self.session is not None:
            self.session.mark_closed(self.session.netconf.close_reason or reason)
            self._listener.spawn(self._listener.admission.session_closed(self.session))
        elif exc is None and self.tls is not None and self.client is not None:
            # what a device that refuses our certificate looks like from here under TLS 1.3
            # (asyncio drops the alert that would say so)
            self.fail(
                "device closed the connection after the TLS handshake, before its hello "
                "(does it accept the manager's certificate?)",
                auth=True,
            )
        else:
            self.fail(reason, auth=_is_auth_failure(exc))

    # -- helpers ---------------------------------------------------------------------------
    def attach(self, client: NetconfClient) -> None:
        self.client = client
        for data in self._early:
            client.feed(data)
        self._early.clear()

    def fail(self, reason: str, *, auth: bool = False, report: bool = True) -> None:
        """The connection will not become a session: say why once, and cut it."""
        if not self.done:
            self.done = True
            self._listener.unauthenticated -= 1
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


class ReverseTlsListener:
    """The manager's reverse-tls accept loop, turning sockets into DeviceSessions."""

    def __init__(self, admission: Admission, settings: ManagerTlsSettings) -> None:
        self.admission = admission
        self.settings = settings
        self.unauthenticated = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._servers: list[asyncio.Server] = []

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def listen(self, host: str, port: int) -> int:
        """Start accepting on host:port; returns the port bound (useful with port 0)."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Accepted(self), host, port, reuse_address=True, backlog=1024
        )
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def establish(self, conn: _Accepted) -> None:
        """TLS handshake, certificate judgement, admission and NETCONF hello, in bounded time."""
        settings = self.settings
        try:
            async with asyncio.timeout(settings.handshake_timeout):
                session = await self._handshake(conn)
        except TimeoutError:
            conn.fail("handshake timed out")
            return
        except (ssl.SSLError, OSError) as exc:
            conn.fail(f"TLS handshake failed: {exc}", auth=_is_auth_failure(exc))
            return
        except SessionClosed as exc:
            conn.fail(f"no NETCONF hello: {exc}")
            return
        if session is None:
            return
        if conn.done:  # lost between its hello and now
            session.mark_closed("connection lost")
            return
        conn.session = session
        conn.done = True
        self.unauthenticated -= 1
        await self.admission.session_ready(session)
        if settings.probe and not session.closed.is_set():
            self.spawn(self._probe(conn, session))

    async def _handshake(self, conn: _Accepted) -> DeviceSession | None:
        settings = self.settings
        loop = asyncio.get_running_loop()
        assert conn.raw is not None
        tls = await loop.start_tls(
            conn.raw,
            conn,
            settings.context,
            server_side=False,
            server_hostname=None,
            ssl_handshake_timeout=settings.handshake_timeout,
        )
        if tls is None:
            raise ConnectionResetError("connection closed during the TLS handshake")
        conn.tls = tls
        decision = settings.policy.decide(peer_chain(tls.get_extra_info("ssl_object")), time.time())
        conn.identity = decision.leaf
        if decision.identity is None:
            conn.fail(decision.reason, auth=True)
            return None
        conn.identity = decision.identity
        if decision.mapped_name is not None:
            log.info("device %s at %s: %s", decision.leaf, conn.address, decision.reason)
        if self.admission.admit(decision.identity, conn.address) is None:
            conn.fail("not admitted", report=False)  # admit() has said why
            return None
        netconf = NetconfClient(
            tls.write,
            conn.close,  # the connection exists for this session: it ends with it
            timeout=settings.rpc_timeout,
            max_message_size=settings.max_message_size,
        )
        netconf.send_hello()
        conn.attach(netconf)
        await netconf.wait_hello(settings.handshake_timeout)
        return DeviceSession(
            identity=decision.identity,
            orientation=Orientation.REVERSE_TLS,
            address=conn.address,
            netconf=netconf,
            close_transport=conn.close,
        )

    async def _probe(self, conn: _Accepted, session: DeviceSession) -> None:
        """NETCONF-level keepalive: probe a connection that has been silent for an interval."""
        keepalive = self.settings.keepalive
        netconf = session.netconf
        while not netconf.closed:
            try:
                await asyncio.wait_for(session.closed.wait(), keepalive.interval)
                return
            except TimeoutError:
                pass
            if time.monotonic() - conn.last_received < keepalive.interval:
                continue
            try:
                await netconf.rpc_reply(PROBE, keepalive.interval * keepalive.count_max)
            except (SessionClosed, TimeoutError):
                return  # the client has closed the session and said why

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        for task in list(self._tasks):
            task.cancel()


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
    ) -> DeviceTlsSettings:
        if not manager_ca:
            raise ConfigError(
                "reverse-tls needs tls.manager_ca: the CA of the manager's certificate, "
                "or that certificate itself"
            )
        ctx = _tls_context(server_side=True)
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


class _DeviceProtocol(asyncio.Protocol):
    """The device's end of one reverse-tls connection."""

    def __init__(self, settings: DeviceTlsSettings) -> None:
        self._settings = settings
        self.peer = "unknown"
        self.driver: NetconfServerDriver | None = None
        loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.heard: asyncio.Future[None] = loop.create_future()  # the manager's first bytes
        self.raw: asyncio.Transport | None = None
        self.tls: asyncio.Transport | None = None
        self._early: list[bytes] = []  # what came with the end of the handshake
        self._early_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.raw = transport
        self.peer = _address(transport)

    def serve(self, tls: asyncio.Transport, manager: Identity, user: str = "") -> None:
        self.tls = tls
        self.driver = NetconfServerDriver(
            self._settings.handler,
            tls.write,
            self.close,
            max_message_size=self._settings.max_message_size,
            peer=self.peer,
            principal=Principal(identity=manager.fingerprint, user=user, transport="reverse-tls"),
        )
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
                    "the manager closed the connection before its NETCONF hello "
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


async def dial_reverse_tls(
    host: str, port: int, settings: DeviceTlsSettings
) -> TlsDeviceConnection:
    """Open a call-home connection to a manager and serve it; returns once the manager's
    certificate has been accepted and the manager has spoken (it has admitted us).

    Raises ``ssl.SSLError``/``OSError`` if the handshake fails or the manager hangs up
    first, and ``AuthError`` if the manager's certificate is not a pinned one."""
    loop = asyncio.get_running_loop()
    protocol = _DeviceProtocol(settings)
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
    der = tls.get_extra_info("ssl_object").getpeercert(binary_form=True)
    manager_cert = x509.load_der_x509_certificate(der)
    manager = cert_identity(manager_cert)
    if settings.manager_fingerprints and manager.fingerprint not in settings.manager_fingerprints:
        raw.abort()
        raise AuthError(f"manager certificate {manager.fingerprint} is not a pinned one")
    protocol.serve(tls, manager, common_name(manager_cert))
    # the manager speaks only once it has admitted this device: until then the connection
    # does not count as made (a refused device backs off instead of redialing at once)
    try:
        await asyncio.wait_for(asyncio.shield(protocol.heard), settings.auth_timeout)
    except BaseException:
        protocol.abort()
        raise
    return TlsDeviceConnection(protocol, manager)
