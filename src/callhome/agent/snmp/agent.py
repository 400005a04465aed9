"""The device's SNMP command responder (RFC 3413) over the call-home connection.

The manager opens the ``snmp`` subsystem (RFC 5592) on the connection the device dialed;
the securityName of every request is the SSH user name the manager authenticated with
(TSM, RFC 5591), and ``[[snmp.users]]`` says which subtrees that name may read and write.
Requests are processed in the device's own context ("" in its snmpEngineID, or in the
localEngineID of RFC 5343, which is how a manager discovers the engine ID).

:class:`SnmpAgent` is the engine (its :meth:`SnmpAgent.process` is pure: a message in, a
message out); :meth:`SnmpAgent.open_channel` gives the per-channel driver the SSH server
feeds. Objects live in a :class:`~callhome.agent.snmp.mib.MibRegistry` (``agent.mib``), to
which a device's own code may add its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from callhome import __version__ as _version
from callhome.agent.snmp.mib import (
    SNMP_ENGINE,
    SYSTEM,
    MibRegistry,
    Raw,
    SetError,
    default_sys_descr,
    default_sys_name,
    display_string,
    register_interfaces,
    register_ups_ident,
)
from callhome.config import AgentConfig, AgentSnmpSection
from callhome.errors import ConfigError, LocalProtocolError, RemoteProtocolError, SessionClosed
from callhome.identity import Identity
from callhome.proto.snmp import (
    LOCAL_ENGINE_ID,
    ErrorStatus,
    Message,
    Oid,
    Pdu,
    PduType,
    SnmpStream,
    Value,
    ValueType,
    VarBind,
    encode_message,
    parse_oid,
    report,
    response,
)

log = logging.getLogger(__name__)

SNMP_UNKNOWN_PDU_HANDLERS: Oid = (1, 3, 6, 1, 6, 3, 11, 2, 1, 3)
SNMP_UNKNOWN_CONTEXTS: Oid = (1, 3, 6, 1, 6, 3, 12, 1, 5)
MAX_BULK_VARBINDS = 2048
"""Most variable bindings one GETBULK response may hold, whatever max-repetitions asks."""
SYS_SERVICES = 72  # applications (7) and end-to-end (4), RFC 3418
_END_OF_MIB_VIEW = Value(ValueType.END_OF_MIB_VIEW)


@dataclass(frozen=True)
class UserAccess:
    """What one securityName may read and write: lists of OID subtrees."""

    read: tuple[Oid, ...]
    write: tuple[Oid, ...]

    def may_read(self, oid: Oid) -> bool:
        return _within(oid, self.readable)

    @cached_property
    def readable(self) -> tuple[Oid, ...]:
        """The read view: what may be read or written, and the snmpEngine group."""
        return (*self.read, *self.write, SNMP_ENGINE)

    def may_write(self, oid: Oid) -> bool:
        return _within(oid, self.write)


def _engine_get_only(pdu: Pdu) -> bool:
    return pdu.type is PduType.GET and all(_within(vb.oid, (SNMP_ENGINE,)) for vb in pdu.varbinds)


def _is_discovery(message: Message) -> bool:
    """RFC 5343 engine discovery (what a manager sends first, and as a keepalive)."""
    return message.context_engine_id == LOCAL_ENGINE_ID and _engine_get_only(message.pdu)


def _within(oid: Oid, subtrees: Iterable[Oid]) -> bool:
    return any(oid[: len(s)] == s for s in subtrees)


def _subtree(text: str) -> Oid:
    parts = text.strip().lstrip(".").split(".")
    return tuple(int(p) for p in parts if p != "")


class SnmpState:
    """What survives a restart: written system objects and snmpEngineBoots (a JSON file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = json.loads(path.read_text())
            self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            self.data = {}

    def get(self, key: str, default: Any) -> Any:
        return self.data.get(key, default)

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


class NotificationSink(Protocol):
    """What sends the device's notifications: told of every ``snmp`` channel and of the
    Response PDUs that arrive on it (acknowledgements of Informs)."""

    def channel_opened(self, channel: SnmpResponderChannel) -> None: ...

    def channel_closed(self, channel: SnmpResponderChannel) -> None: ...

    def response_received(self, channel: SnmpResponderChannel, message: Message) -> None: ...


def derive_engine_id(seed: bytes) -> bytes:
    """An snmpEngineID (RFC 3411 format 5, octets) from a stable seed such as a host key."""
    return bytes.fromhex("8000000005") + hashlib.sha256(seed).digest()[:16]


class SnmpAgent:
    """The SNMP engine of the device: access control, the MIB, and request processing."""

    def __init__(
        self,
        registry: MibRegistry,
        engine_id: bytes,
        users: Mapping[str, UserAccess],
        *,
        boots: int = 1,
        max_message_size: int = 65535,
        clock: Callable[[], float] = time.monotonic,
        group_users: Mapping[str, UserAccess] | None = None,
        groups_of: Callable[[str], tuple[str, ...]] | None = None,
    ) -> None:
        if not 5 <= len(engine_id) <= 32:
            raise ConfigError("an snmpEngineID is 5 to 32 octets")
        self.mib = registry
        self.engine_id = engine_id
        self.users = dict(users)
        self.group_users = dict(group_users or {})
        """Access by group of ``[[managers]]``, for a securityName not in ``users``."""
        self._groups_of = groups_of or (lambda fingerprint: ())
        self.boots = boots
        self.max_message_size = max_message_size
        self._clock = clock
        self._started = clock()
        self.unknown_pdu_handlers = 0
        self.unknown_contexts = 0
        self.sink: NotificationSink | None = None
        """Told of channels and Responses; set by the notification originator."""
        self.last_activity = clock()
        """``clock()`` (monotonic) when a manager's last message (a request, or a Response to an
        Inform) arrived or a notification last went out, on any channel. RFC 5343 discovery,
        which a manager also sends as a keepalive, is not activity. A periodic schedule's
        idle-timeout counts from it, as from ``NetconfService.last_rpc``."""
        self._register_engine()

    def uptime(self) -> int:
        """sysUpTime in hundredths of a second."""
        return int((self._clock() - self._started) * 100) % 2**32

    def _register_engine(self) -> None:
        r = self.mib
        r.scalar((*SNMP_ENGINE, 1), ValueType.OCTET_STRING, lambda: self.engine_id)
        r.scalar((*SNMP_ENGINE, 2), ValueType.INTEGER, lambda: self.boots)
        r.scalar((*SNMP_ENGINE, 3), ValueType.INTEGER, lambda: int(self._clock() - self._started))
        r.scalar((*SNMP_ENGINE, 4), ValueType.INTEGER, lambda: self.max_message_size)
        r.scalar(SNMP_UNKNOWN_PDU_HANDLERS, ValueType.COUNTER32, lambda: self.unknown_pdu_handlers)
        r.scalar(SNMP_UNKNOWN_CONTEXTS, ValueType.COUNTER32, lambda: self.unknown_contexts)

    # -- the SSH server's handler -----------------------------------------------------------
    def open_channel(
        self,
        security_name: str,
        manager: Identity | None,
        peer: str,
        write: Callable[[bytes], None],
        close: Callable[[], None],
    ) -> SnmpResponderChannel:
        log.info("SNMP channel opened by %s (securityName %r)", peer, security_name)
        channel = SnmpResponderChannel(self, security_name, peer, write, close)
        channel.groups = () if manager is None else self._groups_of(manager.fingerprint)
        if self.sink is not None:
            self.sink.channel_opened(channel)
        return channel

    # -- processing (RFC 3412 section 7.2, RFC 3413 section 3.2) ----------------------------
    def process(
        self, security_name: str, message: Message, groups: tuple[str, ...] = ()
    ) -> Message | None:
        """The message to send back for ``message``, or None (nothing is sent). ``groups``:
        the manager's groups, whose access counts when ``security_name`` has none."""
        pdu = message.pdu
        if pdu.type not in (PduType.GET, PduType.GETNEXT, PduType.GETBULK, PduType.SET):
            return None  # not a command responder's PDU: dropped
        if message.context_engine_id not in (self.engine_id, LOCAL_ENGINE_ID):
            self.unknown_pdu_handlers = (self.unknown_pdu_handlers + 1) % 2**32
            return self._report(message, SNMP_UNKNOWN_PDU_HANDLERS, self.unknown_pdu_handlers)
        if message.context_name:
            self.unknown_contexts = (self.unknown_contexts + 1) % 2**32
            return self._report(message, SNMP_UNKNOWN_CONTEXTS, self.unknown_contexts)
        access = self.users.get(security_name)
        if access is None:
            access = next((self.group_users[g] for g in groups if g in self.group_users), None)
        if access is None and _engine_get_only(pdu):
            access = UserAccess((), ())  # RFC 5343 discovery works for any transport user
        if access is None:
            reply = response(
                pdu.request_id,
                pdu.varbinds,
                ErrorStatus.AUTHORIZATION_ERROR,
                1 if pdu.varbinds else 0,
            )
        elif pdu.type is PduType.GET:
            reply = self._get(pdu, access)
        elif pdu.type is PduType.GETNEXT:
            reply = self._get_next(pdu, access)
        elif pdu.type is PduType.GETBULK:
            reply = self._get_bulk(pdu, access)
        else:
            reply = self._set(pdu, access)
        return self._fit(message, reply)

    def _answer(self, request: Message, pdu: Pdu) -> Message:
        return Message(
            msg_id=request.msg_id,
            pdu=pdu,
            context_engine_id=request.context_engine_id,
            context_name=request.context_name,
            flags=request.security_level,
            max_size=self.max_message_size,
        )

    def _report(self, request: Message, counter: Oid, value: int) -> Message | None:
        if not request.reportable:
            return None
        vb = VarBind((*counter, 0), Value(ValueType.COUNTER32, value))
        return self._answer(request, report(request.pdu.request_id, (vb,)))

    def _fit(self, request: Message, pdu: Pdu) -> Message:
        """The response, cut to what the manager and we accept (RFC 3416 section 4.2).

        A GETBULK response too big for that loses bindings from its end, an eighth (at
        least one) at a time, until it fits. The size grows with the bindings kept, so the
        first of those cuts that fits is found by bisection: a few encodings, not one per
        cut. The answer returned is the one last encoded, which the stream sends as is."""
        limit = min(request.max_size, self.max_message_size)
        answer = self._answer(request, pdu)
        if _size(answer) <= limit:
            return answer
        if request.pdu.type is PduType.GETBULK and pdu.ok:
            counts = []
            kept = len(pdu.varbinds)
            while kept:
                kept -= max(1, kept // 8)
                counts.append(kept)
            answers: dict[int, Message] = {}

            def fits(i: int) -> bool:
                cut = pdu.varbinds[: counts[i]]
                answers[i] = self._answer(request, response(pdu.request_id, cut))
                return _size(answers[i]) <= limit

            lo, hi = 0, len(counts)  # counts[hi:] fit, counts[:lo] do not
            while lo < hi:
                mid = (lo + hi) // 2
                if fits(mid):
                    hi = mid
                else:
                    lo = mid + 1
            if lo < len(counts):
                _size(answers[lo])  # encoded last, so sending it encodes nothing again
                return answers[lo]
        return self._answer(request, response(pdu.request_id, (), ErrorStatus.TOO_BIG, 0))

    # -- GET, GETNEXT, GETBULK --------------------------------------------------------------
    def _read(self, oid: Oid, access: UserAccess) -> Value:
        if not access.may_read(oid):
            return Value(ValueType.NO_SUCH_OBJECT)
        return self.mib.get(oid)

    def _walk(self, oid: Oid, access: UserAccess) -> Iterator[VarBind]:
        """The instances after ``oid`` that ``access`` may read, in order."""
        return self.mib.walk(oid, access.readable)

    def _next(self, oid: Oid, access: UserAccess) -> VarBind:
        found = next(self._walk(oid, access), None)
        return VarBind(oid, _END_OF_MIB_VIEW) if found is None else found

    def _each(self, pdu: Pdu, op: Callable[[VarBind], VarBind]) -> Pdu:
        out = []
        for i, vb in enumerate(pdu.varbinds, 1):
            try:
                out.append(op(vb))
            except Exception as exc:
                log.warning("SNMP read of %s failed: %s", vb.oid, exc)
                return response(pdu.request_id, pdu.varbinds, ErrorStatus.GEN_ERR, i)
        return response(pdu.request_id, out)

    def _get(self, pdu: Pdu, access: UserAccess) -> Pdu:
        return self._each(pdu, lambda vb: VarBind(vb.oid, self._read(vb.oid, access)))

    def _get_next(self, pdu: Pdu, access: UserAccess) -> Pdu:
        return self._each(pdu, lambda vb: self._next(vb.oid, access))

    def _get_bulk(self, pdu: Pdu, access: UserAccess) -> Pdu:
        """GETNEXT for the non-repeaters, then up to max-repetitions rows of the
        repeaters (RFC 3416 section 4.2.3): each repeater follows one walk of the MIB, so a
        row costs one step per repeater, not a search. A repeater past the end repeats its
        last name with endOfMibView; the response ends early once all of them have."""
        varbinds = pdu.varbinds
        n = min(max(pdu.non_repeaters, 0), len(varbinds))
        r = len(varbinds) - n
        reps = min(max(pdu.max_repetitions, 0), (MAX_BULK_VARBINDS - n) // r if r else 0)
        first = self._get_next(Pdu(PduType.GETNEXT, pdu.request_id, varbinds[:n]), access)
        if not first.ok:
            return first
        out = list(first.varbinds)
        if reps == 0:
            return response(pdu.request_id, out)
        repeaters = varbinds[n:]
        walks = [self._walk(vb.oid, access) for vb in repeaters]
        row = list(repeaters)
        ended = 0
        for _ in range(reps):
            for j, walk in enumerate(walks):
                last = row[j]
                if last.value is _END_OF_MIB_VIEW:
                    continue  # the same name and endOfMibView again
                try:
                    found = next(walk, None)
                except Exception as exc:
                    log.warning("SNMP read of %s failed: %s", last.oid, exc)
                    return response(pdu.request_id, varbinds, ErrorStatus.GEN_ERR, j + 1)
                if found is None:
                    row[j] = VarBind(last.oid, _END_OF_MIB_VIEW)
                    ended += 1
                else:
                    row[j] = found
            out += row
            if ended == r:
                break
        return response(pdu.request_id, out)

    # -- SET (RFC 3416 section 4.2.5) --------------------------------------------------------
    def _set(self, pdu: Pdu, access: UserAccess) -> Pdu:
        def fail(status: ErrorStatus, index: int) -> Pdu:
            return response(pdu.request_id, pdu.varbinds, status, index)

        nodes = []
        for i, vb in enumerate(pdu.varbinds, 1):
            if not access.may_write(vb.oid):
                return fail(ErrorStatus.NO_ACCESS, i)
            node = self.mib.find(vb.oid)
            if node is None:
                return fail(ErrorStatus.NOT_WRITABLE, i)
            if vb.value.type.is_exception or vb.value.type is ValueType.NULL:
                return fail(ErrorStatus.WRONG_TYPE, i)
            try:
                node.check_set(vb.oid, vb.value)
            except SetError as exc:
                return fail(exc.status, i)
            nodes.append(node)
        done: list[tuple[int, Value]] = []
        for i, (vb, node) in enumerate(zip(pdu.varbinds, nodes, strict=True), 1):
            old = node.get(vb.oid)
            try:
                node.set(vb.oid, vb.value)
            except Exception as exc:
                log.warning("SNMP set of %s failed: %s", vb.oid, exc)
                undo_ok = self._undo(pdu, nodes, done)
                return fail(ErrorStatus.COMMIT_FAILED if undo_ok else ErrorStatus.UNDO_FAILED, i)
            if old is not None:
                done.append((i - 1, old))
        return response(pdu.request_id, pdu.varbinds)

    def _undo(self, pdu: Pdu, nodes: list[Any], done: list[tuple[int, Value]]) -> bool:
        ok = True
        for index, old in reversed(done):
            try:
                nodes[index].set(pdu.varbinds[index].oid, old)
            except Exception:
                ok = False
        return ok


def _size(message: Message) -> int:
    return len(encode_message(message))


class SnmpResponderChannel:
    """One ``snmp`` channel: frames in, responses out; a protocol fault closes the channel."""

    def __init__(
        self,
        agent: SnmpAgent,
        security_name: str,
        peer: str,
        write: Callable[[bytes], None],
        close: Callable[[], None],
    ) -> None:
        self._agent = agent
        self.security_name = security_name
        self._security_name = security_name
        self.peer = peer
        self._peer = peer
        self._write = write
        self._close = close
        self._stream = SnmpStream(agent.max_message_size)
        self.closed = False
        self.groups: tuple[str, ...] = ()
        """The manager's groups (``[[managers]]``), set when the channel opens."""

    def feed(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self._stream.receive_data(data)
            while (message := self._stream.next_message()) is not None:
                if not _is_discovery(message):
                    self._agent.last_activity = self._agent._clock()
                sink = self._agent.sink
                if message.pdu.type is PduType.RESPONSE and sink is not None:
                    sink.response_received(self, message)
                    continue
                reply = self._agent.process(self._security_name, message, self.groups)
                if reply is not None:
                    self._write(self._stream.send(reply))
        except RemoteProtocolError as exc:
            log.warning("SNMP channel from %s closed: %s", self._peer, exc)
            self._shut()
        except (OSError, LocalProtocolError) as exc:
            log.warning("SNMP channel from %s failed: %s", self._peer, exc)
            self._shut()

    def send(self, message: Message) -> None:
        """Send a message the device originates (a notification) on this channel."""
        if self.closed:
            raise SessionClosed("the snmp channel is closed")
        data = self._stream.send(message)
        try:
            self._write(data)
        except OSError as exc:
            raise SessionClosed(f"the snmp channel failed: {exc}") from None
        self._agent.last_activity = self._agent._clock()

    def feed_eof(self) -> None:
        self._shut()

    def connection_lost(self) -> None:
        if not self.closed:
            self.closed = True
            self._ended()

    def _shut(self) -> None:
        if not self.closed:
            self.closed = True
            self._close()
            self._ended()

    def _ended(self) -> None:
        if self._agent.sink is not None:
            self._agent.sink.channel_closed(self)


# -- from the configuration --------------------------------------------------------------------


def build_agent(
    config: AgentConfig,
    host_key_seed: bytes,
    *,
    sysfs: Path = Path("/sys/class/net"),
    groups_of: Callable[[str], tuple[str, ...]] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SnmpAgent:
    """The SNMP engine the ``[snmp]`` section describes, with its state file loaded."""
    section: AgentSnmpSection = config.snmp
    state = SnmpState(config.path(section.state_file))
    boots = int(state.get("snmpEngineBoots", 0)) + 1
    state.put("snmpEngineBoots", boots)
    try:
        engine_id = bytes.fromhex(section.engine_id) if section.engine_id else None
        sys_object_id = parse_oid(section.sys_object_id)
    except (ValueError, LocalProtocolError) as exc:
        raise ConfigError(f"[snmp]: {exc}") from None
    registry = MibRegistry()
    agent = SnmpAgent(
        registry,
        engine_id or derive_engine_id(host_key_seed),
        {
            u.name: UserAccess(tuple(map(_subtree, u.read)), tuple(map(_subtree, u.write)))
            for u in section.users
            if u.name
        },
        boots=boots,
        max_message_size=section.max_message_size,
        group_users={
            u.group: UserAccess(tuple(map(_subtree, u.read)), tuple(map(_subtree, u.write)))
            for u in section.users
            if u.group
        },
        groups_of=groups_of,
        clock=clock,
    )
    register_system(registry, agent, state, section, sys_object_id)
    if section.interfaces:
        register_interfaces(registry, sysfs)
    if section.ups_ident is not None:
        ups = section.ups_ident
        register_ups_ident(
            registry, ups.manufacturer, ups.model, ups.software_version, f"callhome {_version}"
        )
    if not section.users:
        log.warning("[snmp] is enabled but lists no users: every request will be refused")
    return agent


def register_system(
    registry: MibRegistry,
    agent: SnmpAgent,
    state: SnmpState,
    section: AgentSnmpSection,
    sys_object_id: Oid,
) -> None:
    """The SNMPv2-MIB system group (RFC 3418); sysContact, sysName, sysLocation writable
    and kept in ``state``."""
    descr = section.sys_descr or default_sys_descr()
    registry.scalar((*SYSTEM, 1), ValueType.OCTET_STRING, lambda: descr)
    registry.scalar((*SYSTEM, 2), ValueType.OBJECT_IDENTIFIER, lambda: sys_object_id)
    registry.scalar((*SYSTEM, 3), ValueType.TIMETICKS, agent.uptime)
    initial = {
        "sysContact": section.sys_contact,
        "sysName": section.sys_name or default_sys_name(),
        "sysLocation": section.sys_location,
    }
    for column, key in ((4, "sysContact"), (5, "sysName"), (6, "sysLocation")):

        def getter(key: str = key) -> Raw:
            return str(state.get(key, initial[key]))

        def setter(value: Raw, key: str = key) -> None:
            assert isinstance(value, bytes)
            state.put(key, value.decode("ascii"))

        registry.scalar((*SYSTEM, column), ValueType.OCTET_STRING, getter, setter, display_string())
    registry.scalar((*SYSTEM, 7), ValueType.INTEGER, lambda: SYS_SERVICES)


__all__ = [
    "NotificationSink",
    "SnmpAgent",
    "SnmpResponderChannel",
    "SnmpState",
    "UserAccess",
    "build_agent",
    "derive_engine_id",
    "register_system",
]
