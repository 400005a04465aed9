"""Notifications from devices: the ``snmp`` channel kept open on each call-home connection.

When a device connects, the manager opens the ``snmp`` subsystem (RFC 5592) on its
connection; a device that refuses it offers no SNMP and nothing is recorded. On an open
channel every SNMPv2-Trap and InformRequest is recorded as an event of kind
``snmp-notification`` (device name, trap OID, sysUpTime, the other bindings as JSON, and
whether it was an Inform); an Inform is acknowledged with a Response once its event is
stored. A resent Inform already recorded (same request-id, sysUpTime and trap OID) is
acknowledged again but not recorded twice.

A notification that breaks RFC 3416 section 4.2.6 (it does not begin with sysUpTime.0 and
snmpTrapOID.0), or bytes that are not SNMP, close that channel only: a ``protocol-error``
event says why, and the channel is not reopened on that connection. NETCONF and the rest
of the connection are untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from callhome.errors import DeviceError, RemoteProtocolError, SessionClosed
from callhome.manager.snmp import varbind_json
from callhome.net.session import DeviceSession
from callhome.net.snmp import SnmpClient
from callhome.proto.snmp import (
    SNMP_TRAP_OID,
    SYS_UPTIME_OID,
    Message,
    PduType,
    ValueType,
    format_oid,
)

log = logging.getLogger(__name__)

EVENT_KIND = "snmp-notification"
MAX_QUEUED = 10_000
"""Notifications received and not yet recorded, per channel; more are dropped (and logged)."""
REMEMBERED_INFORMS = 1024
"""Informs remembered per device to recognise one resent after its Response was lost."""
REOPEN_DELAY = 1.0
MAX_REOPENS = 5
"""Times a channel the device closed is reopened on one connection."""

Record = Callable[[str, DeviceSession, Mapping[str, Any]], Awaitable[None]]
"""Stores one event: (kind, session, detail)."""


def describe(message: Message) -> dict[str, Any]:
    """The event detail of a Trap or Inform; RemoteProtocolError if it is malformed."""
    pdu = message.pdu
    vbs = pdu.varbinds
    if (
        len(vbs) < 2
        or vbs[0].oid != SYS_UPTIME_OID
        or vbs[0].value.type is not ValueType.TIMETICKS
        or vbs[1].oid != SNMP_TRAP_OID
        or vbs[1].value.type is not ValueType.OBJECT_IDENTIFIER
    ):
        raise RemoteProtocolError(
            f"an {pdu.type.value} must begin with sysUpTime.0 and snmpTrapOID.0 "
            "(RFC 3416 section 4.2.6)"
        )
    trap_oid = vbs[1].value.value
    assert isinstance(trap_oid, tuple)
    return {
        "trap_oid": format_oid(trap_oid),
        "uptime": vbs[0].value.value,
        "varbinds": [varbind_json(vb) for vb in vbs[2:]],
        "inform": pdu.type is PduType.INFORM,
        "request_id": pdu.request_id,
        "context_engine_id": message.context_engine_id.hex(),
    }


class NotificationReceiver:
    """Opens and keeps the ``snmp`` channel of each session; records what arrives on it."""

    def __init__(self, record: Record, spawn: Callable[[Coroutine[Any, Any, Any]], None]) -> None:
        self._record = record
        self._spawn = spawn
        self._seen: dict[str, deque[tuple[int, int, str]]] = {}
        self.received = 0

    def session_ready(self, session: DeviceSession) -> None:
        """Call on every new session, before anything else opens its snmp channel."""
        if session.snmp_opener is None:
            return
        session.on_snmp_channel = lambda client: self.attach(session, client)
        self._spawn(self.keep(session))

    def attach(self, session: DeviceSession, client: SnmpClient) -> None:
        """Receive the notifications of ``client`` (a channel of ``session``)."""
        queue: asyncio.Queue[tuple[dict[str, Any], Message] | None] = asyncio.Queue()

        def handler(message: Message) -> None:
            detail = describe(message)  # RemoteProtocolError closes the channel
            if queue.qsize() >= MAX_QUEUED:
                log.warning("notification from %s dropped: too many waiting", session.name)
                return
            queue.put_nowait((detail, message))

        async def closed() -> None:
            await client.wait_closed()
            queue.put_nowait(None)

        client.set_notification_handler(handler)
        self._spawn(closed())
        self._spawn(self._consume(session, client, queue))

    async def _consume(
        self,
        session: DeviceSession,
        client: SnmpClient,
        queue: asyncio.Queue[tuple[dict[str, Any], Message] | None],
    ) -> None:
        while (item := await queue.get()) is not None:
            detail, message = item
            key = (message.pdu.request_id, int(detail["uptime"]), str(detail["trap_oid"]))
            seen = self._seen.setdefault(session.fingerprint, deque(maxlen=REMEMBERED_INFORMS))
            if not (detail["inform"] and key in seen):
                await self._record(EVENT_KIND, session, detail)
                self.received += 1
                if detail["inform"]:
                    seen.append(key)
            if detail["inform"]:
                with contextlib.suppress(SessionClosed):
                    client.acknowledge(message)
        if client.close_reason.startswith("protocol error"):
            log.warning("snmp channel of %s closed: %s", session.name, client.close_reason)
            await self._record(
                "protocol-error", session, {"service": "snmp", "reason": client.close_reason}
            )

    async def keep(self, session: DeviceSession) -> None:
        """Open the session's snmp channel and reopen it if the device closes it (a few
        times); a refusal means the device offers no SNMP."""
        for _ in range(MAX_REOPENS + 1):
            try:
                client = await session.snmp()
            except DeviceError:
                log.debug("%s offers no snmp channel", session.name)
                return
            except (SessionClosed, TimeoutError, RemoteProtocolError) as exc:
                log.info("snmp channel of %s not opened: %s", session.name, exc or "timeout")
                return
            except Exception as exc:  # the connection went while the channel opened
                log.info("snmp channel of %s not opened: %r", session.name, exc)
                return
            closed = asyncio.ensure_future(client.wait_closed())
            ended = asyncio.ensure_future(session.wait_closed())
            try:
                await asyncio.wait({closed, ended}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closed.cancel()
                ended.cancel()
            if session.closed.is_set() or client.close_reason.startswith("protocol error"):
                return
            await asyncio.sleep(REOPEN_DELAY)
            if session.closed.is_set():
                return
