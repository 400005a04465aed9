"""Sans-IO NETCONF sessions (RFC 6241): :class:`ClientCore` for the manager, :class:`ServerCore`
for the device.

A driver owns the connection and moves bytes: it writes what :meth:`hello`, ``rpc()`` or the
``reply_*()`` methods return, passes what it reads to ``receive_data()`` (or
``receive_eof()``), then calls ``next_event()`` until it returns ``None``::

    core = ClientCore()
    write(core.hello())
    while True:
        data = read()
        core.receive_eof() if not data else core.receive_data(data)
        while (event := core.next_event()) is not None:
            handle(event)

Each side sends its ``<hello>`` first (end-of-message framed); once both hellos are through,
both sides use chunked framing if both advertised base:1.1. Handle :class:`HelloReceived`
(send our hello if not sent yet) before reading further events. ``next_event()`` raises
:class:`RemoteProtocolError` when the peer breaks the protocol; the session is then broken.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, cast

from lxml import etree

from callhome.errors import (
    ErrorSeverity,
    ErrorTag,
    ErrorType,
    LocalProtocolError,
    RemoteProtocolError,
    RpcErrorInfo,
)
from callhome.proto.netconf.events import (
    BadRpc,
    Event,
    HelloReceived,
    Notification,
    RpcReply,
    RpcRequest,
    SessionEnded,
)
from callhome.proto.netconf.framing import DEFAULT_MAX_MESSAGE_SIZE, Framer
from callhome.proto.netconf.messages import (
    build_hello,
    parse_hello,
    rpc_error_from_xml,
    rpc_error_to_xml,
)
from callhome.proto.netconf.states import (
    CLIENT_TRANSITIONS,
    SERVER_TRANSITIONS,
    Input,
    SessionState,
    next_state,
)
from callhome.proto.netconf.xmltools import (
    BASE_CAPABILITIES,
    CAP_BASE_10,
    CAP_BASE_11,
    NS_BASE,
    NS_NOTIF,
    NS_XML,
    parse_fragment,
    parse_xml,
    qname,
    root_name,
    serialize,
    serialize_content,
)

__all__ = ["ClientCore", "Message", "ServerCore"]

_RPC = qname("rpc")
_RPC_REPLY = qname("rpc-reply")
_RPC_ERROR = qname("rpc-error")
_DATA = qname("data")
_CLOSE_SESSION = qname("close-session")
_NOTIFICATION = qname("notification", NS_NOTIF)
_EVENT_TIME = qname("eventTime", NS_NOTIF)

_RPC_OPEN = b'<rpc xmlns="' + NS_BASE.encode() + b'" message-id="'
_RPC_CLOSE = b"</rpc>"
_REPLY_OPEN = '<rpc-reply xmlns="' + NS_BASE + '"'
_REPLY_CLOSE = b"</rpc-reply>"
_OK_BODY = b"<ok/>"
_NOTIFICATION_OPEN = b'<notification xmlns="' + NS_NOTIF.encode() + b'"><eventTime>'
_NOTIFICATION_CLOSE = b"</notification>"
_DATE_AND_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.ASCII
)

Framing = Literal["eom", "chunked"]


def _escape_attr(value: str) -> str:
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\t", "&#9;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
    )


def _escape_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True, slots=True)
class Message:
    """A whole message after the hellos, not parsed yet (``_Core.next_item``)."""

    data: bytes


class _Core:
    """What both sides share: framing, hello exchange, the state table, end of stream."""

    _transitions: ClassVar[Mapping[tuple[SessionState, Input], SessionState]]

    def __init__(self, capabilities: Sequence[str], max_message_size: int) -> None:
        caps = tuple(capabilities)
        if not BASE_CAPABILITIES.intersection(caps):
            raise LocalProtocolError(f"capabilities must include {CAP_BASE_10} or {CAP_BASE_11}")
        self._capabilities = caps
        self._framer = Framer(max_message_size)
        self._state = SessionState.START
        self._peer_capabilities: tuple[str, ...] = ()
        self._error: str | None = None

    # -- properties ----------------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """Where the session stands."""
        return self._state

    @property
    def capabilities(self) -> tuple[str, ...]:
        """The capabilities we advertise."""
        return self._capabilities

    @property
    def peer_capabilities(self) -> tuple[str, ...]:
        """The capabilities of the peer's hello (empty until it came)."""
        return self._peer_capabilities

    @property
    def framing(self) -> Framing:
        """``"eom"`` (base:1.0 and during the hellos) or ``"chunked"`` (base:1.1)."""
        return "chunked" if self._framer.chunked else "eom"

    @property
    def buffered(self) -> int:
        """Bytes received and not handed out yet."""
        return self._framer.buffered

    @property
    def max_message_size(self) -> int:
        """The largest message accepted from the peer, in bytes."""
        return self._framer.max_message_size

    # -- input ---------------------------------------------------------------------------------

    def hello(self) -> bytes:
        """Our ``<hello>``, framed (end-of-message, as every hello)."""
        self._fire(Input.SEND_HELLO)
        data = self._framer.encode(self._hello_message())
        if self._state is SessionState.ESTABLISHED:
            self._negotiate()
        return data

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Bytes read from the peer."""
        if self._state is SessionState.BROKEN:
            return
        try:
            self._framer.receive_data(data)
        except RemoteProtocolError as exc:
            self._break(exc)
            raise

    def receive_eof(self) -> None:
        """The peer closed the connection; ``next_event()`` ends with :class:`SessionEnded`.

        A message cut short is reported by ``next_event()``, after the whole ones before it.
        """
        if self._state is SessionState.BROKEN or self._framer.at_eof:
            return
        # A cut message is raised by next_event(), once the complete ones are handed out.
        with contextlib.suppress(RemoteProtocolError):
            self._framer.receive_eof()

    def next_event(self) -> Event | None:
        """The next event, or ``None`` until more bytes arrive.

        Raises :class:`RemoteProtocolError` if the peer broke the protocol (then and on
        every later call), :class:`LocalProtocolError` if bytes after the peer's hello wait
        while our own hello was not sent yet.
        """
        while True:
            item = self.next_item()
            if not isinstance(item, Message):
                return item
            event = self.accept(item, None)
            if event is not None:
                return event

    def next_item(self) -> Event | Message | None:
        """Like :meth:`next_event`, but a message after the hellos comes as a
        :class:`Message` not parsed yet (its budgets checked): parse it (``parse_xml``, in
        a worker thread if it is big) and give it to :meth:`accept`, before the next item."""
        if self._state is SessionState.BROKEN:
            raise RemoteProtocolError(f"session is broken: {self._error}")
        while True:
            state = self._state
            if state is SessionState.ENDED:
                return None
            if state is SessionState.HELLO_RECEIVED and self._framer.buffered:
                raise LocalProtocolError(
                    "send our hello() before reading what follows the peer's hello"
                )
            try:
                message = self._framer.next_message()
                if message is None:
                    if not self._framer.at_eof:
                        return None
                    self._fire(Input.EOF)
                    if state is SessionState.CLOSED:
                        return SessionEnded("session closed")
                    return SessionEnded("peer closed the connection")
                if state is SessionState.START or state is SessionState.HELLO_SENT:
                    return self._on_hello(parse_xml(message))
                if self._wanted(message):
                    return Message(message)
            except RemoteProtocolError as exc:
                self._break(exc)
                raise

    def accept(self, message: Message, root: etree._Element | None) -> Event | None:
        """The event of a message :meth:`next_item` gave, parsed into ``root`` (None: parse
        it here). A message that breaks the protocol raises RemoteProtocolError."""
        try:
            return self._on_message(message.data, parse_xml(message.data) if root is None else root)
        except RemoteProtocolError as exc:
            self._break(exc)
            raise

    # -- internals -----------------------------------------------------------------------------

    def _fire(self, event: Input) -> None:
        self._state = next_state(self._transitions, self._state, event)

    def _break(self, exc: RemoteProtocolError) -> None:
        # the reason only: the exception's traceback holds the frames that raised it, hence
        # the message and its parsed tree, in a cycle with this core until a full collection
        self._error = str(exc)
        key = (self._state, Input.PEER_ERROR)
        self._state = self._transitions.get(key, SessionState.BROKEN)

    def _negotiate(self) -> None:
        if CAP_BASE_11 in self._capabilities and CAP_BASE_11 in self._peer_capabilities:
            self._framer.use_chunked()

    def _hello_message(self) -> bytes:
        raise NotImplementedError

    def _check_hello_session_id(self, session_id: int | None) -> None:
        raise NotImplementedError

    def _wanted(self, message: bytes) -> bool:
        """Whether a message is to be parsed (its budgets checked); RemoteProtocolError if it
        breaks them."""
        return True

    def _on_message(self, message: bytes, root: etree._Element) -> Event | None:
        raise NotImplementedError

    def _on_hello(self, root: etree._Element) -> HelloReceived:
        capabilities, session_id = parse_hello(root)
        self._check_hello_session_id(session_id)
        if not BASE_CAPABILITIES.intersection(self._capabilities, capabilities):
            raise RemoteProtocolError(
                "no NETCONF base capability in common: we offer "
                f"{sorted(BASE_CAPABILITIES.intersection(self._capabilities))}, the peer "
                f"{sorted(BASE_CAPABILITIES.intersection(capabilities))}"
            )
        self._peer_capabilities = capabilities
        self._fire(Input.RECV_HELLO)
        if self._state is SessionState.ESTABLISHED:
            self._negotiate()
        return HelloReceived(capabilities, session_id)


NotificationGate = Callable[[int], bool]
"""Asked, with its size in bytes, whether a notification is to be parsed (True) or dropped
unparsed (False); it raises RemoteProtocolError to end the session (a flood)."""


class ClientCore(_Core):
    """The manager's side of a NETCONF session: sends rpcs, reads replies and notifications.

    Message ids are increasing integers, as strings, from ``"1"``.

    Budgets, checked before a message is parsed: ``max_message_size`` (the framer's cap),
    ``max_elements`` (at most that many tags in one message, counted as ``<`` bytes: a
    flat message of millions of tiny elements costs seconds to parse), and for
    notifications ``max_notification_size`` and ``notification_gate``, which may drop a
    notification unparsed (``dropped_notifications`` counts them: one nobody subscribed to,
    or one over a rate the caller keeps) or end the session.
    """

    _transitions = CLIENT_TRANSITIONS

    def __init__(
        self,
        capabilities: Sequence[str] = (CAP_BASE_10, CAP_BASE_11),
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        *,
        max_elements: int | None = None,
        max_notification_size: int | None = None,
        notification_gate: NotificationGate | None = None,
    ) -> None:
        super().__init__(capabilities, max_message_size)
        self._max_elements = max_elements
        self._max_notification_size = max_notification_size
        self.notification_gate = notification_gate
        self.dropped_notifications = 0
        """Notifications dropped unparsed by the gate."""
        self._session_id: int | None = None
        # message-id -> whether it is a close-session, in the order sent
        self._pending: dict[str, bool] = {}
        self._next_id = 1

    @property
    def session_id(self) -> int | None:
        """The session-id the server gave in its hello."""
        return self._session_id

    @property
    def pending(self) -> tuple[str, ...]:
        """Message ids of our rpcs still waiting for their reply, oldest first."""
        return tuple(self._pending)

    def rpc(self, operation: etree._Element | bytes | str) -> tuple[str, bytes]:
        """Frame an ``<rpc>`` carrying ``operation``; return its message-id and the bytes.

        ``operation`` is the child of ``<rpc>``: an element (serialized, not moved), or XML
        text in which unprefixed names default to the NETCONF base namespace, so
        ``"<get-config><source><running/></source></get-config>"`` works. Raises
        :class:`LocalProtocolError` before the server's hello came, after close-session,
        or if ``operation`` is not a single element.
        """
        if isinstance(operation, etree._Element):
            tag = operation.tag
            if not isinstance(tag, str):
                raise LocalProtocolError("an rpc operation must be an element")
            body = serialize_content(operation)
        else:
            elements = parse_fragment(operation, default_namespace=NS_BASE)
            if len(elements) != 1:
                raise LocalProtocolError(
                    f"an rpc carries exactly one operation element, not {len(elements)}"
                )
            tag = elements[0].tag
            body = serialize(elements[0])
        if tag == _RPC:
            raise LocalProtocolError("pass the operation, not the whole <rpc>")
        is_close = tag == _CLOSE_SESSION
        state = next_state(
            self._transitions, self._state, Input.SEND_CLOSE if is_close else Input.SEND_RPC
        )
        message_id = str(self._next_id)
        message = b"".join((_RPC_OPEN, message_id.encode(), b'">', body, _RPC_CLOSE))
        framed = self._framer.encode(message)
        self._state = state
        self._next_id += 1
        self._pending[message_id] = is_close
        return message_id, framed

    def _hello_message(self) -> bytes:
        return etree.tostring(
            build_hello(self._capabilities), xml_declaration=True, encoding="UTF-8"
        )

    def _check_hello_session_id(self, session_id: int | None) -> None:
        if session_id is None:
            raise RemoteProtocolError("the server's <hello> carries no session-id")
        self._session_id = session_id

    def _wanted(self, message: bytes) -> bool:
        if root_name(message) == "notification":
            limit = self._max_notification_size
            if limit is not None and len(message) > limit:
                raise RemoteProtocolError(
                    f"a notification of {len(message)} bytes is over the limit of {limit}"
                )
            gate = self.notification_gate
            if gate is not None and not gate(len(message)):
                self.dropped_notifications += 1
                return False
        limit = self._max_elements
        if limit is not None and message.count(b"<") > limit:
            raise RemoteProtocolError(f"a message of more than {limit} elements")
        return True

    def _on_message(self, message: bytes, root: etree._Element) -> Event | None:
        tag = root.tag
        if tag == _RPC_REPLY:
            return self._on_reply(root, message)
        if tag == _NOTIFICATION:
            return self._on_notification(root)
        raise RemoteProtocolError(f"unexpected message {tag!r} from the server")

    def _on_reply(self, root: etree._Element, message: bytes) -> RpcReply:
        errors: list[RpcErrorInfo] = []
        data: etree._Element | None = None
        for child in root:
            tag = child.tag
            if tag == _RPC_ERROR:
                errors.append(rpc_error_from_xml(child))
            elif tag == _DATA and data is None:
                data = child
        message_id = root.get("message-id")
        if message_id is None:
            detail = "; ".join(e.describe() for e in errors) or "no rpc-error"
            raise RemoteProtocolError(f"rpc-reply without message-id: {detail}")
        is_close = self._pending.get(message_id)
        if is_close is None:
            raise RemoteProtocolError(f"rpc-reply to unknown message-id {message_id!r}")
        ok = not any(e.severity is ErrorSeverity.ERROR for e in errors)
        if is_close:
            self._fire(Input.RECV_CLOSE_OK if ok else Input.RECV_CLOSE_ERROR)
        else:
            self._fire(Input.RECV_REPLY)
        del self._pending[message_id]
        return RpcReply(message_id, ok, data, errors, root, message)

    def _on_notification(self, root: etree._Element) -> Notification:
        for child in root:
            if child.tag == _EVENT_TIME:
                event_time = (child.text or "").strip()
                if event_time:
                    break
        else:
            raise RemoteProtocolError("notification without eventTime")
        self._fire(Input.RECV_NOTIFICATION)
        return Notification(event_time, root)


class ServerCore(_Core):
    """The device's side of a NETCONF session: reads rpcs, sends replies and notifications.

    Every :class:`RpcRequest` and :class:`BadRpc` must be answered with one of the
    ``reply*`` methods. After a ``<close-session>`` further rpcs are ignored (RFC 6241
    section 7.8); once it is answered with ok nothing more may be sent. Once the session
    has ended or broken (see :attr:`state`), the reply methods raise
    :class:`LocalProtocolError`, like every other send.
    """

    _transitions = SERVER_TRANSITIONS

    def __init__(
        self,
        session_id: int,
        capabilities: Sequence[str],
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        if not 1 <= session_id <= 4294967295:
            raise LocalProtocolError(f"session-id {session_id} is outside 1..4294967295")
        super().__init__(capabilities, max_message_size)
        self._session_id = session_id
        # message-id (None for an rpc without one) -> number of rpcs awaiting a reply
        self._pending: dict[str | None, int] = {}
        self._close_id: str | None = None

    @property
    def session_id(self) -> int:
        """Our session-id, sent in our hello."""
        return self._session_id

    @property
    def pending(self) -> tuple[str | None, ...]:
        """Message ids of rpcs received and not answered yet (``None``: had no message-id)."""
        return tuple(mid for mid, count in self._pending.items() for _ in range(count))

    # -- replies -------------------------------------------------------------------------------

    def reply_ok(self, message_id: str, rpc: etree._Element | None = None) -> bytes:
        """``<rpc-reply><ok/></rpc-reply>``."""
        return self._reply(message_id, _OK_BODY, rpc, error=False)

    def reply_data(
        self, message_id: str, data: etree._Element, rpc: etree._Element | None = None
    ) -> bytes:
        """A reply carrying ``data``: a ``<data>`` element, or one element to wrap in one."""
        if data.tag == _DATA:
            body = serialize(data)
        else:
            body = b"".join((b"<data>", serialize_content(data), b"</data>"))
        return self._reply(message_id, body, rpc, error=False)

    def reply(
        self, message_id: str, content: Sequence[etree._Element], rpc: etree._Element | None = None
    ) -> bytes:
        """A reply carrying ``content`` as the children of ``<rpc-reply>`` (rpc output)."""
        body = b"".join(serialize_content(element) for element in content)
        return self._reply(message_id, body, rpc, error=False)

    def reply_error(
        self,
        message_id: str | None,
        errors: Sequence[RpcErrorInfo],
        rpc: etree._Element | None = None,
    ) -> bytes:
        """A reply carrying one ``<rpc-error>`` per item of ``errors``.

        ``message_id`` is ``None`` for a :class:`BadRpc` that had none: the reply then has
        no message-id either (RFC 6241 section 4.2).
        """
        if not errors:
            raise LocalProtocolError("reply_error() needs at least one error")
        body = b"".join(serialize(rpc_error_to_xml(error)) for error in errors)
        failed = any(error.severity is ErrorSeverity.ERROR for error in errors)
        return self._reply(message_id, body, rpc, error=failed)

    def notification(self, event_time: str, content: Sequence[etree._Element]) -> bytes:
        """A ``<notification>`` (RFC 5277) with ``eventTime`` (RFC 3339) and ``content``."""
        if not _DATE_AND_TIME.fullmatch(event_time):
            raise LocalProtocolError(f"eventTime {event_time!r} is not an RFC 3339 date-and-time")
        body = b"".join(serialize_content(element) for element in content)
        state = next_state(self._transitions, self._state, Input.SEND_NOTIFICATION)
        message = b"".join(
            (
                _NOTIFICATION_OPEN,
                event_time.encode("ascii"),
                b"</eventTime>",
                body,
                _NOTIFICATION_CLOSE,
            )
        )
        framed = self._framer.encode(message)
        self._state = state
        return framed

    def _reply(
        self, message_id: str | None, body: bytes, rpc: etree._Element | None, *, error: bool
    ) -> bytes:
        count = self._pending.get(message_id, 0)
        if not count:
            raise LocalProtocolError(f"no rpc with message-id {message_id!r} awaits a reply")
        closing = message_id is not None and message_id == self._close_id
        if closing:
            event = Input.SEND_CLOSE_ERROR if error else Input.SEND_CLOSE_OK
        else:
            event = Input.SEND_REPLY
        state = next_state(self._transitions, self._state, event)
        head = self._reply_head(message_id, rpc)
        framed = self._framer.encode(b"".join((head, body, _REPLY_CLOSE)))
        # Nothing changes unless the reply could be framed.
        self._state = state
        if closing:
            self._close_id = None
        if count == 1:
            del self._pending[message_id]
        else:
            self._pending[message_id] = count - 1
        return framed

    @staticmethod
    def _reply_head(message_id: str | None, rpc: etree._Element | None) -> bytes:
        """The ``<rpc-reply ...>`` start tag, echoing every attribute of ``rpc``."""
        parts = [_REPLY_OPEN]
        if rpc is not None:
            prefixes = 0
            attributes = cast("Mapping[str, str]", rpc.attrib)
            for name, value in attributes.items():
                if name == "message-id":
                    continue
                if name[:1] == "{":
                    namespace, _, local = name[1:].partition("}")
                    if namespace == NS_XML:
                        parts.append(f' xml:{local}="{_escape_attr(value)}"')
                    else:
                        prefixes += 1
                        parts.append(
                            f' xmlns:a{prefixes}="{_escape_attr(namespace)}"'
                            f' a{prefixes}:{local}="{_escape_attr(value)}"'
                        )
                else:
                    parts.append(f' {name}="{_escape_attr(value)}"')
        if message_id is not None:
            parts.append(f' message-id="{_escape_attr(message_id)}"')
        parts.append(">")
        return "".join(parts).encode("utf-8")

    # -- receiving -----------------------------------------------------------------------------

    def _hello_message(self) -> bytes:
        hello = build_hello(self._capabilities, self._session_id)
        return etree.tostring(hello, xml_declaration=True, encoding="UTF-8")

    def _check_hello_session_id(self, session_id: int | None) -> None:
        if session_id is not None:
            # RFC 6241 section 8.1: the server terminates the session.
            raise RemoteProtocolError("the client's <hello> carries a session-id")

    def accept(self, message: Message, root: etree._Element | None) -> Event | None:
        """As the base's, but a message that is not well-formed XML is answered with an
        rpc-error (malformed-message) and the session goes on."""
        if root is None:
            try:
                root = parse_xml(message.data)
            except RemoteProtocolError as exc:
                return self._bad_rpc(None, self._malformed(str(exc)), None)
        return super().accept(message, root)

    def _on_message(self, message: bytes, root: etree._Element) -> Event | None:
        message_id = root.get("message-id")
        tag = root.tag
        if tag != _RPC:
            return self._bad_rpc(message_id, _wrong_root(tag), root)
        if message_id is None:
            error = _error(
                ErrorTag.MISSING_ATTRIBUTE,
                ErrorType.RPC,
                "rpc has no message-id attribute",
                {"bad-attribute": "message-id", "bad-element": "rpc"},
            )
            return self._bad_rpc(None, error, root)
        operations = [child for child in root if isinstance(child.tag, str)]
        if len(operations) != 1:
            return self._bad_rpc(message_id, _operation_count_error(operations), root)
        operation = operations[0]
        is_close = operation.tag == _CLOSE_SESSION
        ignored = self._state is not SessionState.ESTABLISHED
        self._fire(Input.RECV_CLOSE if is_close else Input.RECV_RPC)
        if ignored:
            return None
        self._expect_reply(message_id)
        if is_close:
            self._close_id = message_id
        return RpcRequest(message_id, operation, root)

    def _bad_rpc(
        self, message_id: str | None, error: RpcErrorInfo, root: etree._Element | None
    ) -> BadRpc | None:
        ignored = self._state is not SessionState.ESTABLISHED
        self._fire(Input.RECV_RPC)
        if ignored:
            return None
        self._expect_reply(message_id)
        return BadRpc(message_id, error, root)

    def _expect_reply(self, message_id: str | None) -> None:
        self._pending[message_id] = self._pending.get(message_id, 0) + 1

    def _malformed(self, detail: str) -> RpcErrorInfo:
        # malformed-message is new in base:1.1 and must not go to base:1.0 clients.
        tag = ErrorTag.MALFORMED_MESSAGE if self._framer.chunked else ErrorTag.OPERATION_FAILED
        return _error(tag, ErrorType.RPC, detail, {})


def _error(tag: ErrorTag, type_: ErrorType, message: str, items: dict[str, str]) -> RpcErrorInfo:
    info = "".join(f"<{key}>{_escape_text(value)}</{key}>" for key, value in items.items())
    return RpcErrorInfo(
        type=type_, tag=tag, message=message, message_lang="en", info=info, info_items=items
    )


def _split(tag: str) -> tuple[str, str]:
    if tag[:1] == "{":
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _wrong_root(tag: object) -> RpcErrorInfo:
    namespace, local = _split(tag) if isinstance(tag, str) else ("", "")
    if namespace != NS_BASE:
        return _error(
            ErrorTag.UNKNOWN_NAMESPACE,
            ErrorType.PROTOCOL,
            f"expected <rpc> in namespace {NS_BASE}",
            {"bad-element": local, "bad-namespace": namespace},
        )
    return _error(
        ErrorTag.UNKNOWN_ELEMENT,
        ErrorType.PROTOCOL,
        f"expected <rpc>, got <{local}>",
        {"bad-element": local},
    )


def _operation_count_error(operations: list[etree._Element]) -> RpcErrorInfo:
    if not operations:
        return _error(
            ErrorTag.MISSING_ELEMENT,
            ErrorType.PROTOCOL,
            "rpc carries no operation",
            {"bad-element": "rpc"},
        )
    extra = operations[1].tag
    return _error(
        ErrorTag.UNKNOWN_ELEMENT,
        ErrorType.PROTOCOL,
        "rpc carries more than one operation",
        {"bad-element": _split(extra)[1] if isinstance(extra, str) else ""},
    )
