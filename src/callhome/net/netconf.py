"""Drive the sans-IO NETCONF cores over a byte channel (an SSH channel, a TLS stream ...).

``NetconfClient`` is the manager's async NETCONF client with typed methods.
``NetconfServerDriver`` runs a device's NETCONF service for one session.
Both take bytes through ``feed()``/``feed_eof()`` and write through a callable, so the
orientation below them (reverse-ssh, reverse-tls, turn) does not matter to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from lxml import etree

from callhome.config import ManagerSection
from callhome.errors import (
    ErrorSeverity,
    ErrorTag,
    ErrorType,
    LocalProtocolError,
    RemoteProtocolError,
    RpcError,
    RpcErrorInfo,
    SessionClosed,
)
from callhome.proto.netconf import (
    BadRpc,
    ClientCore,
    Event,
    HelloReceived,
    Notification,
    RpcReply,
    RpcRequest,
    ServerCore,
    SessionEnded,
    operations,
    xmltools,
)
from callhome.proto.netconf.session import Message

log = logging.getLogger(__name__)

CLOSED_BY_US = "the manager ended the session (close-session)"
"""The close reason of a session this client ended with ``close_session``."""

CLOSED_AT_ONCE = "the device closed the channel as soon as it was open"
"""Why a device's hello never came when it closed the channel before ours could be sent."""

Write = Callable[[bytes], None]
Close = Callable[[], None]
XmlLike = etree._Element | str | bytes


@dataclass(frozen=True)
class NetconfLimits:
    """What one device may send the manager over NETCONF (``[manager]``'s budgets).

    ``max_message_size`` bytes and ``max_elements`` tags per message; a notification at
    most ``max_notification_size`` bytes, and notifications at most ``notification_rate``
    bytes per second on average with bursts of ``notification_burst``: a device that sends
    more has its session closed with the reason. The rate is the device's, across its
    sessions (``NotificationBudgets``): calling again does not bring a fresh burst. A
    notification nobody subscribed to is dropped unparsed.
    """

    max_message_size: int = 4 * 1024 * 1024
    max_elements: int = 250_000
    max_notification_size: int = 1024 * 1024
    notification_rate: float = 256 * 1024
    notification_burst: int = 4 * 1024 * 1024


def netconf_limits(section: ManagerSection) -> NetconfLimits:
    """The budgets ``[manager]`` sets."""
    return NetconfLimits(
        max_message_size=section.max_message_size,
        max_elements=section.max_elements,
        max_notification_size=section.max_notification_size,
        notification_rate=section.notification_rate,
        notification_burst=section.notification_burst,
    )


class NotificationBudget:
    """A token bucket over notification bytes: ``rate`` per second, at most ``burst``."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self, size: int) -> bool:
        """Spend ``size`` bytes; False when the bucket does not hold them."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if size > self._tokens:
            return False
        self._tokens -= size
        return True

    @property
    def full(self) -> bool:
        """Whether the bucket has refilled to its burst (a fresh one would be the same)."""
        return self._tokens + (self._clock() - self._at) * self._rate >= self._burst


class NotificationBudgets:
    """Each device's ``NotificationBudget``, by identity, kept across its sessions, so that
    a device whose session was ended for sending too much does not call again to a fresh
    burst. At most ``keep`` are kept: past that, buckets that have refilled are forgotten
    (a new one is the same), then the least recently used."""

    def __init__(
        self,
        limits: NetconfLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        keep: int = 100_000,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._keep = keep
        self._budgets: OrderedDict[str, NotificationBudget] = OrderedDict()

    def __len__(self) -> int:
        return len(self._budgets)

    def of(self, device: str) -> NotificationBudget:
        """The budget of the device known by ``device`` (its identity's fingerprint)."""
        budget = self._budgets.get(device)
        if budget is not None:
            self._budgets.move_to_end(device)
            return budget
        if len(self._budgets) >= self._keep:
            for key in [k for k, b in self._budgets.items() if b.full]:
                del self._budgets[key]
            while len(self._budgets) >= self._keep:
                self._budgets.popitem(last=False)
        limits = self._limits
        budget = NotificationBudget(
            limits.notification_rate, limits.notification_burst, self._clock
        )
        self._budgets[device] = budget
        return budget


OFF_LOOP_PARSE = 256 * 1024
"""Messages of this many bytes or more are parsed in a worker thread (libxml2 lets go of
the GIL while it parses), so that one device's big replies do not hold up the others'."""


class NetconfClient:
    """An async NETCONF client over one channel; every method waits for the device's reply.

    Notifications reach ``on_notification``; while it is None (nobody subscribed) they are
    dropped before they are parsed. ``limits`` bound what the device may send; ``budget``
    is the device's notification budget (``NotificationBudgets.of``), a fresh one if None.
    """

    def __init__(
        self,
        write: Write,
        close: Close,
        *,
        timeout: float = 60.0,
        max_message_size: int | None = None,
        on_notification: Callable[[Notification], None] | None = None,
        limits: NetconfLimits | None = None,
        clock: Callable[[], float] | None = None,
        budget: NotificationBudget | None = None,
    ) -> None:
        limits = limits or NetconfLimits()
        if max_message_size is not None:
            limits = replace(limits, max_message_size=max_message_size)
        self.limits = limits
        self._budget = budget or NotificationBudget(
            limits.notification_rate,
            limits.notification_burst,
            clock or asyncio.get_running_loop().time,
        )
        self._core = ClientCore(
            max_message_size=limits.max_message_size,
            max_elements=limits.max_elements,
            max_notification_size=limits.max_notification_size,
            notification_gate=self._notification_wanted,
        )
        self._write = write
        self._close = close
        self._timeout = timeout
        self._pending: dict[str, asyncio.Future[RpcReply]] = {}
        self._hello: asyncio.Future[HelloReceived] = asyncio.get_running_loop().create_future()
        self._closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._closing = False
        self._parsing: asyncio.Future[None] | None = None
        """A big message being parsed in a worker thread (later ones wait for it)."""
        self._eof_reason: str | None = None
        self.on_notification = on_notification
        self.broke_protocol = False
        """Whether the session ended because what the device sent broke the protocol (a
        message over a budget, not well-formed, or not asked for)."""

    @classmethod
    def unavailable(cls, reason: str) -> NetconfClient:
        """The client of a connection that carries no NETCONF: closed from the start, every
        operation raises SessionClosed(``reason``)."""
        client = cls(lambda data: None, lambda: None)
        client._fail(reason)
        return client

    def _notification_wanted(self, size: int) -> bool:
        if self.on_notification is None:
            return False  # nobody subscribed: not worth parsing
        if not self._budget.take(size):
            raise RemoteProtocolError(
                f"notifications over the budget of {self.limits.notification_rate:g} bytes/s "
                f"(bursts of {self.limits.notification_burst})"
            )
        return True

    @property
    def dropped_notifications(self) -> int:
        """Notifications dropped unparsed because nobody had subscribed."""
        return self._core.dropped_notifications

    # -- feeding ---------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        try:
            self._core.receive_data(data)
            if self._parsing is None:
                self._drain()
            elif self._core.buffered > 2 * self.limits.max_message_size:
                raise RemoteProtocolError("the device sends faster than its messages are read")
        except RemoteProtocolError as exc:
            if not self._closed.done():
                self.broke_protocol = True
            self._fail(f"protocol error: {exc}")

    def broken(self, reason: str) -> None:
        """End the session now: the device broke a rule of the transport below, that this
        client cannot see (``reason`` says which)."""
        if not self._closed.done():
            self.broke_protocol = True
        self._fail(f"protocol error: {reason}")

    def feed_eof(self, reason: str = "channel closed") -> None:
        """The channel ended (a message cut short by it is an error, but not one the device
        is penalized for: a network can do that)."""
        if self._closing:  # the end of the session we ended
            reason = CLOSED_BY_US
        if self._parsing is not None:  # the end comes after the message being parsed
            self._eof_reason = reason
            with contextlib.suppress(RemoteProtocolError):
                self._core.receive_eof()
            return
        try:
            self._core.receive_eof()
            self._drain()
        except RemoteProtocolError as exc:
            reason = f"protocol error: {exc}"
        self._fail(reason)

    def _drain(self) -> None:
        """Hand out every whole message; one of ``OFF_LOOP_PARSE`` bytes or more is parsed
        in a worker thread, and what follows it waits for it, in order."""
        while (item := self._core.next_item()) is not None:
            if isinstance(item, Message):
                if len(item.data) >= OFF_LOOP_PARSE:
                    self._parsing = asyncio.ensure_future(self._parse_aside(item))
                    return
                event = self._core.accept(item, None)
                if event is None:
                    continue
            else:
                event = item
            self._handle(event)
        if self._eof_reason is not None:
            self._fail(self._eof_reason)

    async def _parse_aside(self, message: Message) -> None:
        try:
            try:
                root = await asyncio.to_thread(xmltools.parse_xml, message.data)
                event = self._core.accept(message, root)
            finally:
                self._parsing = None
            if event is not None:
                self._handle(event)
            self._drain()
        except RemoteProtocolError as exc:
            if not self._closed.done():
                self.broke_protocol = True
            self._fail(f"protocol error: {exc}")

    def _handle(self, event: Event) -> None:
        if isinstance(event, RpcReply):
            fut = self._pending.pop(event.message_id, None)
            if fut is not None and not fut.done():
                fut.set_result(event)
        elif isinstance(event, Notification):
            if self.on_notification is not None:
                self.on_notification(event)
        elif isinstance(event, HelloReceived):
            if not self._hello.done():
                self._hello.set_result(event)
        elif isinstance(event, SessionEnded):
            self._fail(event.reason)

    def _fail(self, reason: str) -> None:
        """The session is over: fail what waits, and close the channel below."""
        if not self._closed.done():
            self._closed.set_result(reason)
            self._close()
        exc = SessionClosed(reason)
        if not self._hello.done():
            self._hello.set_exception(exc)
            self._hello.exception()  # mark retrieved
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(exc)
        self._pending.clear()

    # -- session ---------------------------------------------------------------------------
    def send_hello(self) -> None:
        """Send our hello; do this before feeding the device's bytes."""
        self._write(self._core.hello())

    async def wait_hello(self, timeout: float | None = None) -> HelloReceived:
        """Wait for the device's hello."""
        return await asyncio.wait_for(asyncio.shield(self._hello), timeout or self._timeout)

    async def start(self, timeout: float | None = None) -> HelloReceived:
        """Send our hello and wait for the device's."""
        self.send_hello()
        return await self.wait_hello(timeout)

    @property
    def session_id(self) -> int | None:
        return self._core.session_id

    @property
    def capabilities(self) -> tuple[str, ...]:
        return tuple(self._core.peer_capabilities)

    @property
    def closed(self) -> bool:
        return self._closed.done()

    @property
    def close_reason(self) -> str | None:
        """Why the session ended, or None while it is up."""
        return self._closed.result() if self._closed.done() else None

    @property
    def closing(self) -> bool:
        """Whether ``close_session`` was called: nothing more should be sent."""
        return self._closing

    @property
    def pending(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._pending)

    async def wait_closed(self) -> str:
        return await asyncio.shield(self._closed)

    async def rpc_reply(self, operation: XmlLike, timeout: float | None = None) -> RpcReply:
        """Send one RPC and return the whole reply, rpc-errors included (never raised)."""
        if self._closed.done():
            raise SessionClosed(self._closed.result())
        message_id, data = self._core.rpc(operation)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[RpcReply] = loop.create_future()
        self._pending[message_id] = fut
        self._write(data)
        limit = timeout or self._timeout
        # one timer handle per call: cheaper than asyncio.wait_for's task and timeout scope
        timer = loop.call_later(limit, self._no_reply, message_id, limit)
        try:
            return await fut
        finally:
            timer.cancel()
            self._pending.pop(message_id, None)

    def _no_reply(self, message_id: str, limit: float) -> None:
        """A device that stalls mid-reply leaves the stream in an unknown state (and a late
        reply would carry a message-id nobody waits for): end the session."""
        fut = self._pending.pop(message_id, None)
        if fut is not None and not fut.done():
            fut.set_exception(TimeoutError(f"no reply to message {message_id} within {limit:g}s"))
        self._fail(f"no reply to message {message_id} within {limit:g}s")

    async def rpc(self, operation: XmlLike, timeout: float | None = None) -> RpcReply:
        """Send one RPC; raise RpcError if the reply holds an rpc-error of severity error."""
        reply = await self.rpc_reply(operation, timeout)
        errors = [e for e in reply.errors if e.severity is ErrorSeverity.ERROR]
        if errors:
            raise RpcError(list(reply.errors), reply.xml.decode("utf-8", "replace"))
        return reply

    # -- typed operations ------------------------------------------------------------------
    async def get_config(self, source: str = "running", filter: str | None = None) -> RpcReply:
        return await self.rpc(operations.op_get_config(source, filter))

    async def get(self, filter: str | None = None) -> RpcReply:
        return await self.rpc(operations.op_get(filter))

    async def edit_config(
        self,
        config: str,
        target: str = "running",
        *,
        default_operation: str | None = None,
        error_option: str | None = None,
        test_option: str | None = None,
    ) -> RpcReply:
        return await self.rpc(
            operations.op_edit_config(
                target,
                config,
                default_operation=default_operation,
                error_option=error_option,
                test_option=test_option,
            )
        )

    async def lock(self, target: str = "running") -> RpcReply:
        return await self.rpc(operations.op_lock(target))

    async def unlock(self, target: str = "running") -> RpcReply:
        return await self.rpc(operations.op_unlock(target))

    async def kill_session(self, session_id: int) -> RpcReply:
        return await self.rpc(operations.op_kill_session(session_id))

    async def close_session(self, timeout: float = 5.0) -> None:
        """End the NETCONF session politely; the channel is closed in any case, and the
        session's close reason says the manager ended it (unless it had ended already)."""
        self._closing = True
        try:
            if not self._closed.done():
                await self.rpc(operations.op_close_session(), timeout)
        except (SessionClosed, RpcError, TimeoutError):
            pass
        finally:
            self._fail(CLOSED_BY_US)


@dataclass(frozen=True)
class Principal:
    """Who a device's NETCONF session serves, as the transport authenticated it: plain data
    handed up to the device's service, which maps it to a user and groups (access control).

    ``identity`` is the manager's key or certificate fingerprint ('' when the transport does
    not tell), ``user`` the transport's user name (the SSH user name in reverse-ssh, the
    certificate's CN in reverse-tls, the device's own user name in turn), ``groups`` any groups
    the transport itself vouches for, ``transport`` the orientation.
    """

    identity: str = ""
    user: str = ""
    groups: tuple[str, ...] = ()
    transport: str = ""


class ClientFeed:
    """The bytes of a channel for a NetconfClient that may not exist yet.

    A device may send its hello in the same read as the channel's opening, before the client
    is made: those bytes (up to ``limit`` reads) and an early end are kept and fed on
    ``attach``. A device that sends more before then is not read at all: its stream ends
    with that reason (never with a gap in the middle of what it sent).
    """

    def __init__(self, limit: int = 64) -> None:
        self.client: NetconfClient | None = None
        self._early: list[bytes] = []
        self._early_end: str | None = None
        self._flooded = False
        self._limit = limit

    def attach(self, client: NetconfClient) -> None:
        self.client = client
        if self._flooded:
            client.broken(f"more than {self._limit} reads before the session began")
            return
        for data in self._early:
            client.feed(data)
        self._early.clear()
        if self._early_end is not None:
            client.feed_eof(self._early_end)

    def data(self, data: bytes) -> None:
        if self.client is not None:
            self.client.feed(data)
        elif self._flooded:
            return
        elif len(self._early) < self._limit:
            self._early.append(data)
        else:  # the session will not begin: what was kept is not worth reading
            self._early.clear()
            self._flooded = True

    def ended(self, reason: str) -> None:
        if self.client is not None:
            self.client.feed_eof(reason)
        elif self._early_end is None:
            self._early_end = reason


class NetconfHandler(Protocol):
    """What a device offers to a NETCONF session (implemented by the agent's service)."""

    @property
    def capabilities(self) -> list[str]: ...

    def open_session(
        self, on_kill: Callable[[], None], principal: Principal | None = None
    ) -> int: ...

    def close_session(self, session_id: int) -> None: ...

    def handle(self, session_id: int, operation: etree._Element) -> etree._Element | None:
        """None for ``<ok/>``; a base ``<data>`` element; or another element, the reply's
        only content (an rpc's output)."""
        ...


_BASE_DATA = "{urn:ietf:params:xml:ns:netconf:base:1.0}data"

NotificationSink = Callable[[str, Sequence[etree._Element]], None]
"""Sends one notification (eventTime, content elements) on one session."""


@runtime_checkable
class NotifyingHandler(Protocol):
    """A handler that also sends notifications (RFC 5277): the driver gives it a sink."""

    def attach_session(
        self,
        session_id: int,
        sink: NotificationSink,
        *,
        username: str = "",
        source_host: str = "",
    ) -> None: ...


class NetconfServerDriver:
    """One NETCONF server session of a device over one channel."""

    def __init__(
        self,
        handler: NetconfHandler,
        write: Write,
        close: Close,
        *,
        max_message_size: int = 16 * 1024 * 1024,
        peer: str = "",
        principal: Principal | None = None,
    ) -> None:
        self._handler = handler
        self._write = write
        self._close = close
        self._peer = peer
        # A transport that names nobody serves an anonymous principal: never None, which the
        # service keeps for the device's own code.
        self.principal = principal or Principal()
        self.session_id = handler.open_session(on_kill=self._killed, principal=self.principal)
        self._core = ServerCore(self.session_id, handler.capabilities, max_message_size)
        self._open = True
        self._held: list[bytes] | None = None  # notifications sent while an rpc is served
        self._write(self._core.hello())
        if isinstance(handler, NotifyingHandler):
            host = peer.rpartition(":")[0] if peer.count(":") == 1 else peer
            handler.attach_session(
                self.session_id,
                self.send_notification,
                username=self.principal.user,
                source_host=host,
            )

    def send_notification(self, event_time: str, content: Sequence[etree._Element]) -> None:
        """Send one ``<notification>`` on this session (dropped once it has ended). Sent
        while an rpc is being handled, it follows that rpc's reply."""
        if not self._open:
            return
        try:
            data = self._core.notification(event_time, content)
        except LocalProtocolError as exc:
            log.debug("session %d: notification not sent: %s", self.session_id, exc)
            return
        if self._held is not None:
            self._held.append(data)
        else:
            self._write(data)

    def _killed(self) -> None:
        log.info("session %d killed by another session", self.session_id)
        self._end()

    def _end(self) -> None:
        if self._open:
            self._open = False
            self._handler.close_session(self.session_id)
            self._close()

    def feed(self, data: bytes) -> None:
        if not self._open:
            return
        try:
            self._core.receive_data(data)
            while self._open and (event := self._core.next_event()) is not None:
                self._dispatch(event)
        except RemoteProtocolError as exc:
            log.warning("session %d from %s: %s; closing", self.session_id, self._peer, exc)
            self._end()

    def feed_eof(self) -> None:
        self._end()

    def connection_lost(self) -> None:
        self._open = False
        self._handler.close_session(self.session_id)

    def _dispatch(self, event: object) -> None:
        if isinstance(event, RpcRequest):
            self._serve(event)
        elif isinstance(event, BadRpc):
            self._write(self._core.reply_error(event.message_id, [event.error]))
        elif isinstance(event, SessionEnded):
            self._end()

    def _serve(self, request: RpcRequest) -> None:
        self._held = []
        try:
            self._answer(request)
        finally:
            held, self._held = self._held, None
            for data in held:
                if self._open:
                    self._write(data)

    def _answer(self, request: RpcRequest) -> None:
        op = request.operation
        try:
            data = self._handler.handle(self.session_id, op)
        except RpcError as exc:
            self._write(self._core.reply_error(request.message_id, exc.errors, request.rpc))
            return
        except Exception:  # a bug in the service must not kill the session silently
            log.exception("session %d: operation %s failed", self.session_id, op.tag)
            error = RpcErrorInfo(
                ErrorType.APPLICATION, ErrorTag.OPERATION_FAILED, message="internal error"
            )
            self._write(self._core.reply_error(request.message_id, [error], request.rpc))
            return
        if data is None:
            self._write(self._core.reply_ok(request.message_id, request.rpc))
        elif data.tag == _BASE_DATA:
            self._write(self._core.reply_data(request.message_id, data, request.rpc))
        else:  # an rpc's output, e.g. get-schema's <data> (RFC 6022)
            self._write(self._core.reply(request.message_id, [data], request.rpc))
        if etree.QName(op).localname == "close-session":
            self._end()
