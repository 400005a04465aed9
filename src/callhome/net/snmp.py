"""SNMP over an SSH channel (RFC 5592: the ``snmp`` subsystem), both ends.

Manager: :class:`SnmpClient` drives a :class:`~callhome.proto.snmp.SnmpStream` over one
channel: RFC 5343 contextEngineID discovery, then requests matched to responses by
request-id (Reports by msgID), each with a timeout. :func:`open_snmp_client` opens the
channel on an SSH connection the manager is client of.

Device: :class:`SnmpHandler` is what the SSH server asks for a channel's responder, given
the securityName the transport authenticated (the manager's SSH user name, RFC 5592
section 5.2 and RFC 5591 section 4.1: the tmSecurityName).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Protocol

import asyncssh

from callhome.errors import (
    LocalProtocolError,
    RemoteProtocolError,
    ServiceRefused,
    SessionClosed,
)
from callhome.identity import Identity
from callhome.proto.snmp import (
    AUTH_PRIV,
    LOCAL_ENGINE_ID,
    SNMP_ENGINE_ID_OID,
    Message,
    MsgFlags,
    Oid,
    Pdu,
    PduType,
    SnmpStream,
    ValueType,
    VarBind,
    discovery_message,
    get_request,
    getbulk_request,
    getnext_request,
    response,
    set_request,
)

log = logging.getLogger(__name__)

SNMP_SUBSYSTEM = "snmp"
"""The SSH subsystem name of RFC 5592 section 5.1."""
MAX_HELD_NOTIFICATIONS = 1000
"""Notifications a client keeps while nobody has asked for them yet; more are dropped."""


class SnmpReport(RemoteProtocolError):
    """The agent answered a request with a Report PDU (RFC 3412 section 7.2)."""

    def __init__(self, pdu: Pdu) -> None:
        self.pdu = pdu
        names = ", ".join(f"{'.'.join(map(str, vb.oid))}={vb.value}" for vb in pdu.varbinds)
        super().__init__(f"the agent reported {names or 'an error'}")


# -- device side -------------------------------------------------------------------------------


class SnmpChannel(Protocol):
    """The responder of one ``snmp`` channel on the device."""

    def feed(self, data: bytes) -> None: ...

    def feed_eof(self) -> None: ...

    def connection_lost(self) -> None: ...


class SnmpHandler(Protocol):
    """The device's SNMP engine, as the SSH server sees it."""

    def open_channel(
        self,
        security_name: str,
        manager: Identity | None,
        peer: str,
        write: Callable[[bytes], None],
        close: Callable[[], None],
    ) -> SnmpChannel:
        """A responder for a new ``snmp`` channel of the manager logged in as
        ``security_name``; ``write`` sends bytes, ``close`` ends the channel."""
        ...


# -- manager side ------------------------------------------------------------------------------


class SnmpClient:
    """An SNMPv3/TSM command generator over one channel; every method awaits the reply."""

    def __init__(
        self,
        write: Callable[[bytes], None],
        close: Callable[[], None],
        *,
        timeout: float = 60.0,
        max_message_size: int = 65535,
    ) -> None:
        self._stream = SnmpStream(max_message_size)
        self._write = write
        self._close = close
        self._timeout = timeout
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[int, asyncio.Future[Pdu]]] = {}  # msgID -> (reqID, fut)
        self.engine_id: bytes | None = None
        """The agent's snmpEngineID, once discovered (RFC 5343)."""
        self.security_name = ""
        """The securityName this manager uses on the channel (TSM: the transport's, never
        sent; for logs and the operator)."""
        self.closed = False
        self.close_reason = ""
        self.broke_protocol = False
        """Whether the channel ended because what the device sent broke the protocol."""
        self._closed_event = asyncio.Event()
        self._on_notification: Callable[[Message], None] | None = None
        self._held: list[Message] = []

    # -- notifications (SNMPv2-Trap and InformRequest from the agent) ------------------------
    def set_notification_handler(self, handler: Callable[[Message], None]) -> None:
        """Give every Trap and Inform received to ``handler`` (those held so far first).

        The handler raising RemoteProtocolError closes the channel as a protocol error; an
        Inform is acknowledged only by :meth:`acknowledge`."""
        self._on_notification = handler
        held, self._held = self._held, []
        try:
            for message in held:
                handler(message)
        except RemoteProtocolError as exc:
            self._broke(exc)

    def _broke(self, exc: RemoteProtocolError) -> None:
        if not self.closed:
            self.broke_protocol = True
        self._fail(f"protocol error: {exc}")
        self._close()

    def _notification(self, message: Message) -> None:
        if self._on_notification is not None:
            self._on_notification(message)
        elif len(self._held) < MAX_HELD_NOTIFICATIONS:
            self._held.append(message)
        else:
            log.warning("SNMP notification %d dropped: none is being read", message.msg_id)

    def acknowledge(self, message: Message) -> None:
        """Send the Response that confirms an InformRequest (RFC 3416 section 4.2.7)."""
        if self.closed:
            raise SessionClosed(self.close_reason or "SNMP channel closed")
        pdu = message.pdu
        reply = Message(
            msg_id=message.msg_id,
            pdu=response(pdu.request_id, pdu.varbinds),
            context_engine_id=message.context_engine_id,
            context_name=message.context_name,
            flags=message.security_level,
            max_size=self._stream.max_message_size,
        )
        self._write(self._stream.send(reply))

    async def wait_closed(self) -> None:
        await self._closed_event.wait()

    # -- feeding -----------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        try:
            self._stream.receive_data(data)
            while (message := self._stream.next_message()) is not None:
                self._dispatch(message)
        except RemoteProtocolError as exc:
            self._broke(exc)

    def feed_eof(self, reason: str = "channel closed") -> None:
        self._fail(reason)

    def _dispatch(self, message: Message) -> None:
        pdu = message.pdu
        if pdu.type in (PduType.TRAP, PduType.INFORM):
            self._notification(message)
            return
        entry = self._pending.get(message.msg_id)
        if entry is None:
            log.debug("SNMP message %d matches no request; dropped", message.msg_id)
            return
        request_id, fut = entry
        if pdu.type is PduType.REPORT:
            del self._pending[message.msg_id]
            if not fut.done():
                fut.set_exception(SnmpReport(pdu))
        elif pdu.type is PduType.RESPONSE and pdu.request_id == request_id:
            del self._pending[message.msg_id]
            if not fut.done():
                fut.set_result(pdu)
        else:
            log.debug("SNMP %s with request-id %d dropped", pdu.type.value, pdu.request_id)

    def _fail(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._closed_event.set()
        pending, self._pending = self._pending, {}
        for _, fut in pending.values():
            if not fut.done():
                fut.set_exception(SessionClosed(reason))

    def close(self, reason: str = "closed by the manager") -> None:
        self._fail(reason)
        self._close()

    def write_raw(self, data: bytes) -> None:
        """Send bytes as they are, with no framing (for diagnostics and tests)."""
        self._write(data)

    # -- requests ----------------------------------------------------------------------------
    def _next_id(self) -> int:
        value = next(self._ids)
        if value > 2**31 - 1:
            self._ids = itertools.count(1)
            value = next(self._ids)
        return value

    async def _exchange(self, message: Message, timeout: float | None) -> Pdu:
        if self.closed:
            raise SessionClosed(self.close_reason or "SNMP channel closed")
        fut: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._pending[message.msg_id] = (message.pdu.request_id, fut)
        try:
            self._write(self._stream.send(message))
            return await asyncio.wait_for(fut, timeout or self._timeout)
        finally:
            self._pending.pop(message.msg_id, None)

    async def discover(self, timeout: float | None = None) -> bytes:
        """The agent's snmpEngineID by RFC 5343 discovery; kept in ``engine_id``."""
        ident = self._next_id()
        pdu = await self._exchange(discovery_message(ident, ident), timeout)
        for vb in pdu.varbinds:
            if vb.oid == SNMP_ENGINE_ID_OID and vb.value.type is ValueType.OCTET_STRING:
                assert isinstance(vb.value.value, bytes)
                self.engine_id = vb.value.value
                return self.engine_id
        if not pdu.ok:
            raise RemoteProtocolError(f"engine discovery answered {pdu.error_status.wire_name}")
        raise RemoteProtocolError("the agent did not say its snmpEngineID")

    async def request(self, pdu: Pdu, timeout: float | None = None) -> Pdu:
        """Send a confirmed-class PDU (its request-id is replaced) and return the Response."""
        if not pdu.type.confirmed:
            raise LocalProtocolError(f"{pdu.type.value} gets no response")
        if self.engine_id is None:
            await self.discover(timeout)
        ident = self._next_id()
        message = Message(
            msg_id=ident,
            pdu=Pdu(
                pdu.type,
                ident,
                pdu.varbinds,
                pdu.error_status,
                pdu.error_index,
                pdu.non_repeaters,
                pdu.max_repetitions,
            ),
            context_engine_id=self.engine_id or LOCAL_ENGINE_ID,
            flags=AUTH_PRIV | MsgFlags.REPORTABLE,
            max_size=self._stream.max_message_size,
        )
        return await self._exchange(message, timeout)

    async def get(self, oids: list[Oid]) -> Pdu:
        return await self.request(get_request(0, oids))

    async def get_next(self, oids: list[Oid]) -> Pdu:
        return await self.request(getnext_request(0, oids))

    async def get_bulk(self, oids: list[Oid], non_repeaters: int, max_repetitions: int) -> Pdu:
        return await self.request(getbulk_request(0, oids, non_repeaters, max_repetitions))

    async def set(self, varbinds: list[VarBind]) -> Pdu:
        return await self.request(set_request(0, varbinds))


class _ChannelToSnmp(asyncssh.SSHClientSession[bytes]):
    def __init__(self) -> None:
        self.client: SnmpClient | None = None
        self._early = bytearray()  # what arrived before the client was attached

    def attach(self, client: SnmpClient) -> None:
        self.client = client
        if self._early:
            data, self._early = bytes(self._early), bytearray()
            client.feed(data)

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if datatype is not None:
            return
        if self.client is not None:
            self.client.feed(data)
        elif len(self._early) < 1 << 20:
            self._early += data

    def eof_received(self) -> bool:
        if self.client is not None:
            self.client.feed_eof("the device closed the snmp channel")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.client is not None:
            self.client.feed_eof(f"snmp channel lost: {exc}" if exc else "snmp channel closed")


async def open_snmp_client(
    conn: asyncssh.SSHClientConnection, *, timeout: float, max_message_size: int = 65535
) -> SnmpClient:
    """Open the ``snmp`` subsystem on ``conn`` (a new channel) and return its client."""
    side = _ChannelToSnmp()
    try:
        chan, _ = await conn.create_session(lambda: side, subsystem=SNMP_SUBSYSTEM, encoding=None)
    except asyncssh.ChannelOpenError as exc:
        raise ServiceRefused(
            f"the device refused the snmp subsystem ({exc.reason}): is [snmp] enabled there?"
        ) from None
    client = SnmpClient(chan.write, chan.close, timeout=timeout, max_message_size=max_message_size)
    side.attach(client)
    return client
