"""The device's notification originator (RFC 3413 section 3.3) over the call-home connection.

The device's own code calls :meth:`Notifier.notify`; the notification is written at once to
a durable buffer, one queue per target (``[[snmp.targets]]``), and sent in order as an
SNMPv2-Trap or an InformRequest on the ``snmp`` channel the manager keeps open on the
call-home connection (RFC 3430: once a connection exists it may be used for any purpose).

Policies (the seed, section 8):

- ``deferred``: held until a connection exists and the manager's ``snmp`` channel is open.
- ``immediate``: the same, and if the device is away it is woken to dial at once, skipping
  its back-off (``wake``).

Traps are removed from the buffer once written to the connection. An Inform is removed when
the manager's Response arrives; it is resent ``retries`` times ``timeout`` seconds apart,
and if none is acknowledged it stays at the head of its queue until the next channel.

The buffer (:class:`NotificationBuffer`) is an SQLite file in the agent's state folder,
written with ``synchronous=FULL`` (each notification is on disk before ``notify`` returns),
so that held notifications survive a restart. Each target holds at most ``max_held``; a new
notification into a full queue drops that queue's oldest, and the drop is counted: the
counters are served as NOTIFICATION-LOG-MIB's nlmStatsGlobalNotificationsLogged and
nlmStatsGlobalNotificationsBumped (RFC 3014) and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callhome.agent.snmp.agent import NotificationSink, SnmpAgent, SnmpResponderChannel
from callhome.config import SnmpTarget
from callhome.errors import LocalProtocolError, SessionClosed
from callhome.proto.snmp import (
    AUTH_PRIV,
    Message,
    MsgFlags,
    Oid,
    Pdu,
    PduType,
    Value,
    ValueType,
    VarBind,
    encode_message,
    format_oid,
    inform,
    parse_oid,
    trap,
)

log = logging.getLogger(__name__)

NLM_STATS_LOGGED: Oid = (1, 3, 6, 1, 2, 1, 92, 1, 2, 1, 0)
"""nlmStatsGlobalNotificationsLogged.0: notifications taken into the buffer."""
NLM_STATS_BUMPED: Oid = (1, 3, 6, 1, 2, 1, 92, 1, 2, 2, 0)
"""nlmStatsGlobalNotificationsBumped.0: notifications dropped because a queue was full."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS held (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    created REAL NOT NULL,
    uptime INTEGER NOT NULL,
    trap_oid TEXT NOT NULL,
    varbinds TEXT NOT NULL,
    inform INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS held_by_target ON held (target, id);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


# -- variable bindings as JSON -----------------------------------------------------------------


def varbind_to_json(vb: VarBind) -> dict[str, Any]:
    """``{"oid", "type", "value"}``: octets as hex, an OID as its dotted form."""
    v = vb.value.value
    value: Any = v.hex() if isinstance(v, bytes) else format_oid(v) if isinstance(v, tuple) else v
    return {"oid": format_oid(vb.oid), "type": vb.value.type.value, "value": value}


def varbind_from_json(item: dict[str, Any]) -> VarBind:
    vtype = ValueType(item["type"])
    raw = item.get("value")
    value: int | bytes | Oid | None
    if vtype in (ValueType.OCTET_STRING, ValueType.IP_ADDRESS, ValueType.OPAQUE):
        value = bytes.fromhex(str(raw))
    elif vtype is ValueType.OBJECT_IDENTIFIER:
        value = parse_oid(str(raw))
    else:
        value = raw if raw is None else int(raw)
    return VarBind(parse_oid(item["oid"]), Value(vtype, value))


# -- the durable buffer --------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldNotification:
    """One notification waiting in a target's queue."""

    id: int
    target: str
    created: float
    uptime: int
    trap_oid: Oid
    varbinds: tuple[VarBind, ...]
    inform: bool

    def pdu(self) -> Pdu:
        """The Trap or Inform PDU; its request-id is the buffer's row id (stable across
        resends and restarts, so that the manager can recognise a resent Inform)."""
        build = inform if self.inform else trap
        return build(self.id % 2**31, self.uptime, self.trap_oid, self.varbinds)


class NotificationBuffer:
    """Held notifications in an SQLite file, a FIFO queue per target of at most ``max_held``."""

    def __init__(self, path: Path, max_held: int = 1000) -> None:
        if max_held < 1:
            raise ValueError("max_held must be at least 1")
        self.path = path
        self.max_held = max_held
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(
        self,
        target: str,
        trap_oid: Oid,
        varbinds: Sequence[VarBind],
        *,
        inform: bool,
        uptime: int,
        created: float,
    ) -> int:
        """Append one notification to ``target``'s queue; returns how many of the oldest
        were dropped to keep the queue within ``max_held`` (0 or more)."""
        encoded = json.dumps([varbind_to_json(vb) for vb in varbinds], separators=(",", ":"))
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT INTO held (target, created, uptime, trap_oid, varbinds, inform)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (target, created, uptime, format_oid(trap_oid), encoded, int(inform)),
            )
            (count,) = db.execute(
                "SELECT COUNT(*) FROM held WHERE target = ?", (target,)
            ).fetchone()
            dropped = max(0, int(count) - self.max_held)
            if dropped:
                db.execute(
                    "DELETE FROM held WHERE id IN"
                    " (SELECT id FROM held WHERE target = ? ORDER BY id LIMIT ?)",
                    (target, dropped),
                )
                self._bump(("bumped", f"bumped:{target}"), dropped)
            self._bump(("logged", f"logged:{target}"), 1)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return dropped

    def _bump(self, names: Iterable[str], by: int) -> None:
        for name in names:
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                (name, by),
            )

    def head(self, target: str) -> HeldNotification | None:
        """The oldest notification of ``target``, or None."""
        row = self._db.execute(
            "SELECT id, target, created, uptime, trap_oid, varbinds, inform FROM held"
            " WHERE target = ? ORDER BY id LIMIT 1",
            (target,),
        ).fetchone()
        if row is None:
            return None
        ident, name, created, uptime, trap_oid, varbinds, is_inform = row
        return HeldNotification(
            int(ident),
            str(name),
            float(created),
            int(uptime),
            parse_oid(trap_oid),
            tuple(varbind_from_json(item) for item in json.loads(varbinds)),
            bool(is_inform),
        )

    def remove(self, ident: int) -> None:
        self._db.execute("DELETE FROM held WHERE id = ?", (ident,))

    def held(self, target: str | None = None) -> int:
        """How many notifications are held (for one target, or all)."""
        if target is None:
            row = self._db.execute("SELECT COUNT(*) FROM held").fetchone()
        else:
            row = self._db.execute("SELECT COUNT(*) FROM held WHERE target = ?", (target,))
            row = row.fetchone()
        return int(row[0])

    def counter(self, name: str) -> int:
        """``logged``, ``bumped``, or either per target (``bumped:NAME``)."""
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0


# -- the originator ------------------------------------------------------------------------------


@dataclass(eq=False)
class _Target:
    config: SnmpTarget
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    stalled_on: SnmpResponderChannel | None = None
    """The channel on which an Inform went unacknowledged: the next one is waited for."""
    sent: int = 0


class Notifier(NotificationSink):
    """Sends the device's notifications to its targets; the SNMP engine's notification sink."""

    def __init__(
        self,
        agent: SnmpAgent,
        targets: Sequence[SnmpTarget],
        buffer: NotificationBuffer,
        *,
        wake: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.agent = agent
        self.buffer = buffer
        self.targets = {t.name: _Target(t) for t in targets}
        self._wake = wake
        self._clock = clock
        self._channels: list[SnmpResponderChannel] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[SnmpResponderChannel, int, asyncio.Future[Pdu]]] = {}
        agent.sink = self
        agent.mib.scalar(
            NLM_STATS_LOGGED[:-1], ValueType.COUNTER32, lambda: buffer.counter("logged") % 2**32
        )
        agent.mib.scalar(
            NLM_STATS_BUMPED[:-1], ValueType.COUNTER32, lambda: buffer.counter("bumped") % 2**32
        )

    # -- the device's API ----------------------------------------------------------------------
    def notify(
        self, trap_oid: Oid | str, varbinds: Iterable[VarBind] = (), inform: bool = False
    ) -> int:
        """Emit a notification to every target; returns how many targets took it.

        It is sent as an InformRequest if ``inform`` or the target says ``inform = true``.
        The notification is on disk when this returns. LocalProtocolError if it could never
        be sent (a bad OID, or too big for one message)."""
        oid = parse_oid(trap_oid) if isinstance(trap_oid, str) else trap_oid
        bindings = tuple(varbinds)
        uptime = self.agent.uptime()
        probe = self._message(inform_pdu(oid, bindings, uptime), reportable=True)
        try:
            size = len(encode_message(probe))
        except LocalProtocolError:
            raise
        except Exception as exc:  # the codec refused a value
            raise LocalProtocolError(f"cannot encode the notification: {exc}") from None
        if size > self.agent.max_message_size:
            raise LocalProtocolError(
                f"a notification of {len(bindings)} bindings is over the largest SNMP message"
            )
        now = self._clock()
        for target in self.targets.values():
            dropped = self.buffer.add(
                target.config.name,
                oid,
                bindings,
                inform=inform or target.config.inform,
                uptime=uptime,
                created=now,
            )
            if dropped:
                log.warning(
                    "SNMP target %s is full (%d held): dropped its %d oldest notification(s)",
                    target.config.name,
                    self.buffer.max_held,
                    dropped,
                )
            target.changed.set()
        if not self.targets:
            log.info("SNMP notification %s not kept: no [[snmp.targets]]", format_oid(oid))
        return len(self.targets)

    def held(self, target: str | None = None) -> int:
        return self.buffer.held(target)

    # -- the SNMP engine's sink ----------------------------------------------------------------
    def channel_opened(self, channel: SnmpResponderChannel) -> None:
        self._channels.append(channel)
        self._poke()

    def channel_closed(self, channel: SnmpResponderChannel) -> None:
        with contextlib.suppress(ValueError):
            self._channels.remove(channel)
        for msg_id, (chan, _, fut) in list(self._pending.items()):
            if chan is channel:
                del self._pending[msg_id]
                if not fut.done():
                    fut.set_exception(SessionClosed("the snmp channel closed"))
        self._poke()

    def response_received(self, channel: SnmpResponderChannel, message: Message) -> None:
        entry = self._pending.get(message.msg_id)
        if entry is None or entry[0] is not channel or entry[1] != message.pdu.request_id:
            log.debug("SNMP Response %d matches no Inform; dropped", message.msg_id)
            return
        del self._pending[message.msg_id]
        if not entry[2].done():
            entry[2].set_result(message.pdu)

    def _poke(self) -> None:
        for target in self.targets.values():
            target.changed.set()

    # -- sending -------------------------------------------------------------------------------
    async def run(self) -> None:
        """Deliver until cancelled, one task per target."""
        await asyncio.gather(*(self._run_target(t) for t in self.targets.values()))

    def close(self) -> None:
        self.buffer.close()

    def _channel_for(self, target: _Target) -> SnmpResponderChannel | None:
        user = target.config.user
        for channel in reversed(self._channels):
            if channel.closed or channel is target.stalled_on:
                continue
            if not user or channel.security_name == user:
                return channel
        return None

    async def _run_target(self, target: _Target) -> None:
        name = target.config.name
        while True:
            target.changed.clear()
            item = self.buffer.head(name)
            channel = self._channel_for(target) if item is not None else None
            if item is None or channel is None:
                if item is not None and target.config.policy == "immediate" and self._wake:
                    self._wake()
                await target.changed.wait()
                continue
            try:
                delivered = await self._deliver(target, channel, item)
            except SessionClosed:
                delivered = False  # held for the next channel
            except LocalProtocolError as exc:  # cannot be encoded: it never will be
                log.error("SNMP notification %d to %s dropped: %s", item.id, name, exc)
                delivered = True
            if delivered:
                self.buffer.remove(item.id)
                target.sent += 1
            await asyncio.sleep(0)

    async def _deliver(
        self, target: _Target, channel: SnmpResponderChannel, item: HeldNotification
    ) -> bool:
        """True once the notification has gone (a trap) or been acknowledged (an Inform)."""
        if not item.inform:
            channel.send(self._message(item.pdu(), reportable=False))
            return True
        config = target.config
        for attempt in range(config.retries + 1):
            if channel.closed:
                return False
            message = self._message(item.pdu(), reportable=True)
            fut: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
            self._pending[message.msg_id] = (channel, message.pdu.request_id, fut)
            try:
                channel.send(message)
                await asyncio.wait_for(fut, config.timeout)
                return True
            except TimeoutError:
                log.info(
                    "SNMP Inform %d to %s unacknowledged (attempt %d of %d)",
                    item.id,
                    config.name,
                    attempt + 1,
                    config.retries + 1,
                )
            except SessionClosed:
                return False  # the channel ended under it: held for the next one
            finally:
                self._pending.pop(message.msg_id, None)
        log.warning(
            "SNMP Inform %d to %s got no Response: held for the next channel", item.id, config.name
        )
        target.stalled_on = channel
        return False

    def _message(self, pdu: Pdu, *, reportable: bool) -> Message:
        ident = next(self._ids)
        if ident > 2**31 - 1:
            self._ids = itertools.count(1)
            ident = next(self._ids)
        return Message(
            msg_id=ident,
            pdu=pdu,
            context_engine_id=self.agent.engine_id,
            flags=AUTH_PRIV | MsgFlags.REPORTABLE if reportable else AUTH_PRIV,
            max_size=self.agent.max_message_size,
        )


def inform_pdu(trap_oid: Oid, varbinds: tuple[VarBind, ...], uptime: int) -> Pdu:
    """The largest form of a notification (an Inform), to check it fits in a message."""
    return Pdu(PduType.INFORM, 2**31 - 1, inform(0, uptime, trap_oid, varbinds).varbinds)


def build_notifier(
    agent: SnmpAgent,
    targets: Sequence[SnmpTarget],
    path: Path,
    max_held: int,
    wake: Callable[[], None] | None = None,
) -> Notifier:
    """A notifier with its buffer at ``path`` (created if missing, reloaded if not)."""
    buffer = NotificationBuffer(path, max_held)
    notifier = Notifier(agent, targets, buffer, wake=wake)
    held = buffer.held()
    if held:
        log.info("%d SNMP notification(s) held from before; they will be sent", held)
    return notifier


__all__ = [
    "NLM_STATS_BUMPED",
    "NLM_STATS_LOGGED",
    "HeldNotification",
    "NotificationBuffer",
    "Notifier",
    "build_notifier",
    "varbind_from_json",
    "varbind_to_json",
]
