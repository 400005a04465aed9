"""NETCONF event notifications on the device: RFC 5277 subscriptions and RFC 6470 events.

``NotificationCenter`` is one per agent, shared by all its NETCONF sessions:

* ``notify(element)`` emits one notification (``element`` is its content, the child of
  ``<notification>`` after ``<eventTime>``): it is appended to the ``EventLog`` (on disk when
  this returns) and sent to every live subscription whose filter selects it. The device's own
  code calls this; so do the RFC 6470 producers below.
* ``attach`` / ``detach`` give a session a sink (how a notification reaches that session)
  and emit ``netconf-session-start`` / ``netconf-session-end``.
* ``subscribe`` carries out ``<create-subscription>`` for one session.
* ``on_change`` / ``on_commit`` are the datastore's change and confirmed-commit listeners;
  they emit ``netconf-config-change`` (running and startup only, as RFC 6470 says) and
  ``netconf-confirmed-commit``.

Subscriptions (RFC 5277 section 2.1.1):

* one stream, ``NETCONF`` (the default); another name is ``invalid-value``;
* ``<filter>`` (in the notification namespace, or the base one as some clients send it)
  subtree (the default type) or ``type="xpath" select=...`` is applied to the
  notification's content as if it were the top-level node of a datastore: a notification
  is sent when the filter selects something in it. ``replayComplete`` and
  ``notificationComplete`` are never filtered. A malformed XPath is ``invalid-value``
  (bad-element ``filter``); a filter of another type is ``bad-attribute``;
* ``startTime`` replays the logged notifications whose eventTime is at or after it, in log
  order, then sends ``replayComplete``; a startTime in the future is ``bad-element``;
* ``stopTime`` (needs startTime, else ``missing-element``; earlier than startTime is
  ``bad-element``): notifications after it are not sent; once it has passed,
  ``notificationComplete`` is sent and the subscription ends (a new one may then be made);
* one subscription per session: a second while one is active is ``operation-failed``.
  It lasts until the session ends; RPCs keep being served meanwhile (``:interleave``).

Notifications that a subscribe call sends (replay included) go through the session's sink
while the rpc is being handled; the sink must send them after the rpc's reply (the NETCONF
driver does). ``notify`` may be called from another thread than the event loop's: delivery
is then handed to the loop the sessions run on.

The log (``EventLog``) is an append-only file of JSON lines, one per notification, each
written and fsync'd before ``notify`` returns. Bounds: at most ``max_events`` notifications
and none older than ``max_age`` seconds are kept; older ones are dropped from memory at each
append, and the file is rewritten (to a temporary file, fsync'd, renamed over) when it holds
twice as many lines as are kept, and at start when anything was dropped. A line torn by a
crash is skipped. eventTimes are the device clock's UTC time to the microsecond, made
strictly increasing within the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, TypeAlias

from lxml import etree

from callhome.agent.datastore.events import ChangeEvent, ConfirmedCommitEvent, ConfirmEvent
from callhome.agent.datastore.subtree import SubtreeFilter
from callhome.agent.datastore.xmldata import NETCONF_BASE_NS, PARSER, count, empty_root
from callhome.agent.datastore.xpath import XPathFilter
from callhome.errors import ErrorTag, ErrorType, RpcError

__all__ = [
    "DEFAULT_STREAM",
    "INTERLEAVE_CAPABILITY",
    "NOTIFICATION_CAPABILITY",
    "NS_NC_NOTIFICATIONS",
    "NS_NETMOD_NOTIF",
    "NS_NOTIF",
    "EventLog",
    "LoggedEvent",
    "NotificationCenter",
    "Sink",
    "format_time",
    "parse_time",
]

log = logging.getLogger(__name__)

NOTIFICATION_CAPABILITY: Final = "urn:ietf:params:netconf:capability:notification:1.0"
INTERLEAVE_CAPABILITY: Final = "urn:ietf:params:netconf:capability:interleave:1.0"
NS_NOTIF: Final = "urn:ietf:params:xml:ns:netconf:notification:1.0"
"""create-subscription and its parameters (RFC 5277)."""
NS_NETMOD_NOTIF: Final = "urn:ietf:params:xml:ns:netmod:notification"
"""replayComplete and notificationComplete (RFC 5277 section 4)."""
NS_NC_NOTIFICATIONS: Final = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
"""The base notifications of RFC 6470."""
DEFAULT_STREAM: Final = "NETCONF"
CREATE_SUBSCRIPTION: Final = f"{{{NS_NOTIF}}}create-subscription"

Sink: TypeAlias = Callable[[str, Sequence[etree._Element]], None]
"""Sends one notification (eventTime, content elements) to one session."""

_PARAMETERS: Final = frozenset({"stream", "filter", "startTime", "stopTime"})


def format_time(micros: int) -> str:
    """RFC 3339 UTC date-and-time of ``micros`` microseconds since the epoch."""
    seconds, fraction = divmod(micros, 1_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction:06d}Z"


def parse_time(text: str) -> int | None:
    """Microseconds since the epoch of an RFC 3339 date-and-time; None if it is not one."""
    text = text.strip()
    if "T" not in text.upper():
        return None
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _error(
    tag: ErrorTag, message: str, *, bad_element: str, info: dict[str, str] | None = None
) -> RpcError:
    items = {"bad-element": bad_element, **(info or {})}
    return RpcError.single(tag, message, type=ErrorType.PROTOCOL, info=items)


@dataclass(frozen=True)
class LoggedEvent:
    """One notification in the log."""

    micros: int
    """eventTime, in microseconds since the epoch."""
    content: bytes
    """The notification's content element, serialized."""

    @property
    def event_time(self) -> str:
        return format_time(self.micros)

    def element(self) -> etree._Element:
        return etree.fromstring(self.content, PARSER)


class EventLog:
    """The device's durable notification log (see the module for format and bounds).

    ``path`` None keeps the log in memory only.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        max_events: int = 10_000,
        max_age: float = 7 * 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_events < 1 or max_age <= 0:
            raise ValueError("max_events must be at least 1 and max_age positive")
        self.path = path
        self.max_events = max_events
        self.max_age = max_age
        self._clock = clock
        self._events: deque[LoggedEvent] = deque()
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._lines = 0
        self._last = 0
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        loaded = 0
        with contextlib.suppress(FileNotFoundError), path.open("rb") as f:
            for line in f:
                loaded += 1
                try:
                    record = json.loads(line)
                    event = LoggedEvent(int(record["t"]), str(record["x"]).encode("utf-8"))
                except (ValueError, KeyError, TypeError):
                    log.warning("%s: skipping a damaged line", path)
                    continue
                self._events.append(event)
                self._last = max(self._last, event.micros)
        self._trim()
        self._lines = loaded
        if len(self._events) != loaded:
            self._rewrite()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab")

    def __len__(self) -> int:
        return len(self._events)

    @property
    def first_time(self) -> int | None:
        """eventTime of the oldest notification kept (the replay log's start), if any."""
        with self._lock:
            return self._events[0].micros if self._events else None

    @property
    def last_time(self) -> int | None:
        """eventTime of the newest notification kept, if any."""
        with self._lock:
            return self._events[-1].micros if self._events else None

    def append(self, element: etree._Element) -> LoggedEvent:
        """Log ``element`` (durably when the log has a file) and return its record."""
        content = etree.tostring(element)
        with self._lock:
            micros = max(int(self._clock() * 1_000_000), self._last + 1)
            self._last = micros
            event = LoggedEvent(micros, content)
            self._events.append(event)
            if self._file is not None:
                line = json.dumps({"t": micros, "x": content.decode("utf-8")}) + "\n"
                self._file.write(line.encode("utf-8"))
                self._file.flush()
                os.fsync(self._file.fileno())
                self._lines += 1
            self._trim()
            if self._file is not None and self._lines >= 2 * max(len(self._events), 1):
                self._rewrite()
        return event

    def since(self, start: int, stop: int | None = None) -> list[LoggedEvent]:
        """The notifications with ``start`` <= eventTime (<= ``stop``), in log order."""
        with self._lock:
            return [
                e for e in self._events if e.micros >= start and (stop is None or e.micros <= stop)
            ]

    def __iter__(self) -> Iterator[LoggedEvent]:
        with self._lock:
            return iter(list(self._events))

    def _trim(self) -> None:
        horizon = int((self._clock() - self.max_age) * 1_000_000)
        events = self._events
        while events and (len(events) > self.max_events or events[0].micros < horizon):
            events.popleft()

    def _rewrite(self) -> None:
        path = self.path
        assert path is not None
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as f:
            for e in self._events:
                line = json.dumps({"t": e.micros, "x": e.content.decode("utf-8")}) + "\n"
                f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        if self._file is not None:
            self._file.close()
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._lines = len(self._events)
        if self._file is not None:
            self._file = path.open("ab")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


_Match: TypeAlias = Callable[[etree._Element], bool]


@dataclass
class _Session:
    session_id: int
    sink: Sink
    username: str
    source_host: str
    subscription: _Subscription | None = None


MayReceive: TypeAlias = Callable[[int, etree._Element], bool]
"""Whether session N may be sent a notification with this content (access control)."""


@dataclass
class _Subscription:
    match: _Match | None
    stop: int | None
    timer: asyncio.TimerHandle | None = None


def _default_ns(uri: str) -> dict[Any, str]:
    return {None: uri}


def _completion(name: str) -> etree._Element:
    return etree.Element(f"{{{NS_NETMOD_NOTIF}}}{name}", nsmap=_default_ns(NS_NETMOD_NOTIF))


def _leaf(parent: etree._Element, name: str, text: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{NS_NC_NOTIFICATIONS}}}{name}")
    el.text = text
    return el


class NotificationCenter:
    """The notifications of one agent: log, sessions, subscriptions (see the module)."""

    def __init__(
        self,
        event_log: EventLog,
        *,
        list_keys: Mapping[str, Sequence[str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.log = event_log
        self._list_keys: Mapping[str, Sequence[str]] = list_keys or {}
        self._clock = clock
        self._sessions: dict[int, _Session] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self.may_receive: MayReceive | None = None
        """Set by the NETCONF service when access control is on: denied ones are not sent."""

    capabilities: Final = (NOTIFICATION_CAPABILITY, INTERLEAVE_CAPABILITY)

    # -- sessions ------------------------------------------------------------------------------

    def attach(
        self, session_id: int, sink: Sink, *, username: str = "", source_host: str = ""
    ) -> None:
        """Give ``session_id`` its sink, and emit netconf-session-start."""
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
        self._sessions[session_id] = _Session(session_id, sink, username, source_host)
        content = self._element("netconf-session-start")
        self._session_parms(content, session_id)
        self.notify(content)

    def detach(
        self, session_id: int, reason: str = "dropped", killed_by: int | None = None
    ) -> None:
        """The session ended (``reason``: closed, killed, dropped, timeout, bad-hello, other):
        end its subscription, emit netconf-session-end (idempotent)."""
        session = self._sessions.get(session_id)
        if session is None:
            return
        if session.subscription is not None:
            self._cancel_timer(session.subscription)
        content = self._element("netconf-session-end")
        self._session_parms(content, session_id)
        if killed_by is not None:
            _leaf(content, "killed-by", str(killed_by))
        _leaf(content, "termination-reason", reason)
        del self._sessions[session_id]
        self.notify(content)

    def subscribed(self, session_id: int) -> bool:
        """Whether ``session_id`` has an active subscription."""
        session = self._sessions.get(session_id)
        return session is not None and session.subscription is not None

    # -- emitting ------------------------------------------------------------------------------

    def notify(self, element: etree._Element) -> LoggedEvent:
        """Emit one notification with ``element`` as its content: log it, then send it to
        the live subscriptions it passes the filter of."""
        event = self.log.append(element)
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            loop.call_soon_threadsafe(self._deliver, event, element)
        else:
            self._deliver(event, element)
        return event

    def _deliver(self, event: LoggedEvent, element: etree._Element) -> None:
        for session in list(self._sessions.values()):
            sub = session.subscription
            if sub is None:
                continue
            if sub.stop is not None and event.micros > sub.stop:
                self._complete(session)
                continue
            if sub.match is None or sub.match(element):
                self._send(session, event.event_time, element)

    def _send(self, session: _Session, event_time: str, element: etree._Element) -> None:
        if self.may_receive is not None and not self.may_receive(session.session_id, element):
            return
        try:
            session.sink(event_time, [element])
        except Exception:
            log.exception("sending a notification to a session failed")

    # -- create-subscription -------------------------------------------------------------------

    def subscribe(self, session_id: int, operation: etree._Element) -> None:
        """Carry out ``<create-subscription>`` for ``session_id``; raises RpcError."""
        session = self._sessions.get(session_id)
        if session is None:
            raise RpcError.single(
                ErrorTag.OPERATION_FAILED,
                "this session cannot receive notifications",
                type=ErrorType.PROTOCOL,
            )
        params = self._parameters(operation)
        if session.subscription is not None:
            raise RpcError.single(
                ErrorTag.OPERATION_FAILED,
                "this session already has an active subscription",
                type=ErrorType.PROTOCOL,
            )
        stream = params.get("stream")
        if stream is not None and (stream.text or "").strip() != DEFAULT_STREAM:
            raise _error(
                ErrorTag.INVALID_VALUE,
                f"no stream named {(stream.text or '').strip()!r}",
                bad_element="stream",
            )
        match = self._compile(params["filter"]) if "filter" in params else None
        now = int(self._clock() * 1_000_000)
        start = self._time(params, "startTime")
        stop = self._time(params, "stopTime")
        if stop is not None and start is None:
            raise _error(
                ErrorTag.MISSING_ELEMENT, "stopTime needs startTime", bad_element="startTime"
            )
        if start is not None and start > now:
            raise _error(
                ErrorTag.BAD_ELEMENT, "startTime is in the future", bad_element="startTime"
            )
        if start is not None and stop is not None and stop < start:
            raise _error(
                ErrorTag.BAD_ELEMENT, "stopTime is earlier than startTime", bad_element="stopTime"
            )
        sub = _Subscription(match, stop)
        session.subscription = sub
        if start is not None:
            for event in self.log.since(start, stop):
                element = event.element()
                if match is None or match(element):
                    self._send(session, event.event_time, element)
            self._send(
                session, format_time(max(now, self._latest())), _completion("replayComplete")
            )
        if stop is not None:
            if stop <= now:
                self._complete(session)
            else:
                self._schedule_stop(session, sub, (stop - now) / 1_000_000)

    def _latest(self) -> int:
        return self.log.last_time or 0

    @staticmethod
    def _parameters(operation: etree._Element) -> dict[str, etree._Element]:
        params: dict[str, etree._Element] = {}
        for child in operation.iterchildren(etree.Element):
            qname = etree.QName(child)
            # <filter> is also taken in the base namespace, as several clients send it
            base_filter = qname.namespace == NETCONF_BASE_NS and qname.localname == "filter"
            if (qname.namespace != NS_NOTIF and not base_filter) or (
                qname.localname not in _PARAMETERS
            ):
                raise _error(
                    ErrorTag.UNKNOWN_ELEMENT,
                    f"unexpected parameter {qname.localname!r}",
                    bad_element=qname.localname,
                )
            if qname.localname in params:
                raise _error(
                    ErrorTag.BAD_ELEMENT,
                    f"parameter {qname.localname!r} given twice",
                    bad_element=qname.localname,
                )
            params[qname.localname] = child
        return params

    @staticmethod
    def _time(params: dict[str, etree._Element], name: str) -> int | None:
        element = params.get(name)
        if element is None:
            return None
        micros = parse_time(element.text or "")
        if micros is None:
            raise _error(
                ErrorTag.INVALID_VALUE,
                f"{name} {(element.text or '').strip()!r} is not a date-and-time",
                bad_element=name,
            )
        return micros

    def _compile(self, element: etree._Element) -> _Match:
        kind = element.get("type", "subtree")
        if kind == "subtree":
            subtree = SubtreeFilter(element, self._list_keys)
            return lambda content: self._selects(subtree, content)
        if kind == "xpath":
            select = element.get("select")
            if select is None or not select.strip():
                raise _error(
                    ErrorTag.MISSING_ATTRIBUTE,
                    "an xpath filter needs a select attribute",
                    bad_element="filter",
                    info={"bad-attribute": "select"},
                )
            xpath = XPathFilter(select, dict(element.nsmap), self._list_keys)
            # evaluated once on a dummy notification, so that an unknown function or a
            # result that is not a node-set is refused now rather than at the first event
            self._selects(xpath, etree.Element(f"{{{NS_NC_NOTIFICATIONS}}}probe"))
            return lambda content: self._selects(xpath, content)
        raise _error(
            ErrorTag.BAD_ATTRIBUTE,
            f"unknown filter type {kind!r}",
            bad_element="filter",
            info={"bad-attribute": "type"},
        )

    @staticmethod
    def _selects(flt: SubtreeFilter | XPathFilter, content: etree._Element) -> bool:
        root = empty_root()
        root.append(copy.deepcopy(content))
        return len(flt.apply(root, count(root), owned=True)) > 0

    # -- stopTime ------------------------------------------------------------------------------

    def _schedule_stop(self, session: _Session, sub: _Subscription, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # checked at each notification and by expire()
        sub.timer = loop.call_later(delay, self._stop_due, session, sub)

    def _stop_due(self, session: _Session, sub: _Subscription) -> None:
        if session.subscription is sub:
            self._complete(session)

    def expire(self) -> None:
        """End the subscriptions whose stopTime has passed (timers do this in a loop)."""
        now = int(self._clock() * 1_000_000)
        for session in list(self._sessions.values()):
            sub = session.subscription
            if sub is not None and sub.stop is not None and sub.stop <= now:
                self._complete(session)

    def _complete(self, session: _Session) -> None:
        sub = session.subscription
        if sub is None:
            return
        self._cancel_timer(sub)
        session.subscription = None
        now = int(self._clock() * 1_000_000)
        self._send(
            session, format_time(max(now, self._latest())), _completion("notificationComplete")
        )

    @staticmethod
    def _cancel_timer(sub: _Subscription) -> None:
        if sub.timer is not None:
            sub.timer.cancel()
            sub.timer = None

    # -- RFC 6470 ------------------------------------------------------------------------------

    @staticmethod
    def _element(name: str) -> etree._Element:
        return etree.Element(
            f"{{{NS_NC_NOTIFICATIONS}}}{name}", nsmap=_default_ns(NS_NC_NOTIFICATIONS)
        )

    def _session_parms(self, parent: etree._Element, session_id: int) -> None:
        """username, session-id and source-host (what is known of them)."""
        session = self._sessions.get(session_id)
        if session is not None and session.username:
            _leaf(parent, "username", session.username)
        _leaf(parent, "session-id", str(session_id))
        if session is not None and session.source_host:
            _leaf(parent, "source-host", session.source_host)

    def on_change(self, event: ChangeEvent) -> None:
        """Change listener: netconf-config-change for running and startup."""
        if event.datastore not in ("running", "startup"):
            return
        content = self._element("netconf-config-change")
        changed_by = etree.SubElement(content, f"{{{NS_NC_NOTIFICATIONS}}}changed-by")
        if event.session_id is None:
            etree.SubElement(changed_by, f"{{{NS_NC_NOTIFICATIONS}}}server")
        else:
            self._session_parms(changed_by, event.session_id)
        _leaf(content, "datastore", event.datastore)
        for target in event.targets:
            edit = etree.SubElement(content, f"{{{NS_NC_NOTIFICATIONS}}}edit")
            # the instance-identifier's prefixes, bound where it stands (RFC 7950 9.13)
            prefixes: dict[Any, str] = dict(target.namespaces)
            path = etree.SubElement(edit, f"{{{NS_NC_NOTIFICATIONS}}}target", nsmap=prefixes)
            path.text = target.target
            _leaf(edit, "operation", target.operation)
        self.notify(content)

    def on_commit(self, event: ConfirmedCommitEvent) -> None:
        """Commit listener: netconf-confirmed-commit."""
        content = self._element("netconf-confirmed-commit")
        if event.session_id is not None and event.event is not ConfirmEvent.TIMEOUT:
            self._session_parms(content, event.session_id)
        _leaf(content, "confirm-event", event.event.value)
        if event.timeout is not None and event.event in (ConfirmEvent.START, ConfirmEvent.EXTEND):
            _leaf(content, "timeout", str(int(event.timeout)))
        self.notify(content)
