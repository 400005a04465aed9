"""SNMP over a reverse-tls call-home connection (the TLS Transport Model, RFC 6353), both ends.

The connection is made as for NETCONF over TLS (``callhome.net.reverse_tls``): the device
dials, then plays TLS *server* with its certificate; the manager plays TLS *client* with its
own, judges the device's certificate chain (``pki.CertPolicy``) and asks
``Admission.admit`` before anything else is said. Above TLS the roles are SNMP's usual ones:
the manager is command generator and notification receiver, the device command responder
and notification originator. Messages are SNMPv3 with the Transport Security Model
(msgSecurityModel 4, RFC 5591) at authPriv, framed on the stream as RFC 3430 says (each
message's BER encoding, nothing else), exactly as over SSH (``callhome.net.snmp``).

Manager: once the device is admitted it performs RFC 5343 contextEngineID discovery (a GET
of snmpEngineID.0 in the localEngineID context, reportable); the answer's engine ID is the
contextEngineID of every later request. The session carries SNMP only: its ``netconf`` is
closed and NETCONF jobs fail. Its securityName is local (TSM sends none): the
``snmp_security_name`` setting, by default the CN of the manager's certificate.

Device: the manager's certificate must verify to the device's anchors (and a pin, if set);
RFC 6353's certToTSN rules (``[[snmp.cert_to_name]]``: fingerprint of the certificate or a
CA above it; specified name, subjectAltName rfc822Name, dNSName or iPAddress, or CN) map it
to the securityName whose ``[[snmp.users]]`` access applies. A certificate no rule maps is
refused: the device closes the connection.

Keepalives: TCP keepalives at both ends, and the manager repeats engine discovery as a probe
when the connection has been silent for a keepalive interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from callhome.config import CertToNameRule, ManagerConfig
from callhome.errors import AuthError, SessionClosed
from callhome.identity import Identity
from callhome.net.netconf import NetconfClient
from callhome.net.pki import MAX_SECURITY_NAME, common_name, load_certificates, security_name_for
from callhome.net.reverse_tls import (
    AcceptedConnection,
    DeviceTlsSettings,
    ManagerTlsSettings,
    ReverseTlsListener,
    StreamDriver,
    TlsDeviceConnection,
    TlsPeer,
    dial_tls,
)
from callhome.net.session import Admission, DeviceSession, Orientation
from callhome.net.snmp import SnmpClient, SnmpHandler

log = logging.getLogger(__name__)

NO_NETCONF = "this connection carries SNMP only (SNMP over TLS)"
MAX_SNMP_MESSAGE = 65535
"""Largest SNMP message the manager takes on this transport, in bytes."""


# -- manager side ------------------------------------------------------------------------------


class SnmpTlsListener(ReverseTlsListener):
    """The manager's SNMP-over-TLS accept loop: admitted devices become SNMP-only sessions."""

    first_reply = "answer to SNMP engine discovery"

    def __init__(
        self, admission: Admission, settings: ManagerTlsSettings, security_name: str
    ) -> None:
        super().__init__(admission, settings)
        self.security_name = security_name

    async def _open_session(
        self, conn: AcceptedConnection, tls: asyncio.Transport, identity: Identity
    ) -> DeviceSession:
        """RFC 5343 discovery on the admitted connection, then the session."""
        limits = self.limits
        client = SnmpClient(
            tls.write,
            conn.close,  # the connection exists for this client: it ends with it
            timeout=limits.rpc_timeout,
            max_message_size=min(limits.netconf.max_message_size, MAX_SNMP_MESSAGE),
        )
        client.security_name = self.security_name
        conn.attach(client)
        engine_id = await client.discover(limits.handshake_timeout)
        log.info(
            "SNMP over TLS with %s at %s: snmpEngineID %s, securityName %r",
            identity,
            conn.address,
            engine_id.hex(),
            self.security_name,
        )
        return DeviceSession(
            identity=identity,
            orientation=Orientation.REVERSE_TLS,
            address=conn.address,
            netconf=NetconfClient.unavailable(NO_NETCONF),
            close_transport=conn.close,
            snmp_opener=_reuse(client),
            services=("snmp",),
            local_address=conn.local_address,
        )

    async def _probe(self, conn: AcceptedConnection, session: DeviceSession) -> None:
        """Keepalive: engine discovery again on a connection silent for an interval; no
        answer within ``count_max`` intervals ends the session."""
        keepalive = self.limits.keepalive
        while await self._silent(conn, session):
            try:
                client = await session.snmp()
                await client.discover(keepalive.interval * keepalive.count_max)
            except TimeoutError:
                log.info("SNMP over TLS with %s: keepalive unanswered", session.identity)
                session.close_transport()
                return
            except Exception as exc:  # closed, or a protocol error: the client has said why
                log.debug("SNMP over TLS keepalive of %s ends: %r", session.identity, exc)
                return


def snmp_security_name(config: ManagerConfig) -> str:
    """The manager's securityName for SNMP over TLS: as configured, else its certificate's
    CN (at most 32 octets)."""
    tls = config.manager.tls
    if tls.snmp_security_name:
        return tls.snmp_security_name
    name = common_name(load_certificates(config.path(tls.cert))[0])
    return name.encode()[:MAX_SECURITY_NAME].decode(errors="ignore")


def _reuse(client: SnmpClient) -> Callable[[], Awaitable[SnmpClient]]:
    """The session's SNMP opener: the connection's one client while it lasts."""

    async def opener() -> SnmpClient:
        if client.closed:
            raise SessionClosed(client.close_reason or "SNMP over TLS closed")
        return client

    return opener


# -- device side -------------------------------------------------------------------------------


@dataclass
class SnmpTlsService:
    """The device's SNMP engine on a reverse-tls connection, with its certToTSN rules."""

    handler: SnmpHandler
    rules: Sequence[CertToNameRule]

    def start(
        self, peer: TlsPeer, write: Callable[[bytes], None], close: Callable[[], None]
    ) -> StreamDriver:
        """The responder for an authenticated manager; AuthError if no rule names it."""
        name = security_name_for(peer.chain, self.rules)
        if name is None:
            raise AuthError(
                f"manager certificate {peer.identity.fingerprint} maps to no securityName "
                "(snmp.cert_to_name): refused"
            )
        log.info("SNMP over TLS: manager %s is securityName %r", peer.identity, name)
        return self.handler.open_channel(name, peer.identity, peer.address, write, close)


async def dial_snmp_tls(
    host: str, port: int, settings: DeviceTlsSettings, service: SnmpTlsService
) -> TlsDeviceConnection:
    """Call the manager and serve SNMP over TLS; returns once the manager has spoken (it
    admitted us). Errors as :func:`callhome.net.reverse_tls.dial_tls`."""
    return await dial_tls(host, port, settings, service.start)


__all__ = [
    "NO_NETCONF",
    "SnmpTlsListener",
    "SnmpTlsService",
    "dial_snmp_tls",
    "snmp_security_name",
]
