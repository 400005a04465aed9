"""When a device calls home: its connection type, and the periodic arithmetic (sans-IO).

The connection types follow the ``connection-type`` choice of the ietf-netconf-server
call-home model (RFC 8071 section 4):

``Persistent``
    The device keeps a connection up; whenever it ends, it redials (with back-off).
``Periodic``
    The device connects at ``anchor + n * period``. When the manager ends the session
    gracefully (close-session), or the connection sat idle for ``idle_timeout``, the device
    waits for the next boundary; a connection that fails or drops otherwise is redialed at
    once, with the usual back-off.

Times are passed in (seconds since the epoch for anchors and ``now``), never read.

The schedule is data: the ``connection-type`` of a ``netconf-client`` entry of the
ietf-netconf-server call-home model (namespace ``NS``; the entries and their endpoints are in
:mod:`callhome.proto.call_home`)::

    <netconf-server xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-server">
      <call-home><netconf-client><name>noc</name>
        ...
        <connection-type>
          <persistent/>                       (or)
          <periodic>
            <period>15</period>                minutes; a decimal fraction is accepted
            <anchor-time>2024-01-01T00:00:00Z</anchor-time>   optional date-and-time
            <idle-timeout>180</idle-timeout>   seconds, 0: never; optional
          </periodic>
        </connection-type>
      </netconf-client></call-home>
    </netconf-server>

No entry, or an empty ``connection-type``, means persistent. The model's period is a whole
number of minutes; reading accepts a fraction (``0.05`` for 3 s) as this project's deviation,
for short schedules on our own agent (the manager only ever sends whole minutes).
:func:`read_connection_type` reads it (the device checks and applies it, the manager learns
it from a ``<get-config>`` reply or from an edit it sent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Final, TypeAlias

from lxml import etree

from callhome.errors import ErrorTag, RpcError, RpcErrorInfo

DEFAULT_PERIOD: Final = 3600.0
"""The model's default period: 60 minutes, in seconds."""

DEFAULT_IDLE_TIMEOUT: Final = 180.0
"""The model's default idle-timeout of a periodic connection, in seconds (0: never)."""


@dataclass(frozen=True)
class Persistent:
    """Keep a connection up at all times."""


@dataclass(frozen=True)
class Periodic:
    """Connect at ``anchor + n * period``; drop a connection idle for ``idle_timeout``."""

    period: float = DEFAULT_PERIOD
    """Seconds between two boundaries (positive)."""
    anchor: float | None = None
    """Seconds since the epoch of one boundary; None: when the schedule was applied."""
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    """Seconds without an rpc after which the device drops the connection; 0: never."""


ConnectionType: TypeAlias = Persistent | Periodic


def next_periodic_dial(now: float, anchor: float, period: float) -> float:
    """The first ``anchor + n * period`` (n any integer) that is at or after ``now``."""
    if not period > 0:
        raise ValueError(f"period must be positive, not {period!r}")
    n = -((anchor - now) // period)  # ceil((now - anchor) / period), exact for integers
    when = anchor + n * period
    if when < now:  # rounding, for floats
        when += period
    return when


def next_dial(kind: ConnectionType, *, now: float, graceful: bool, applied_at: float) -> float:
    """When to dial after a connection ended at ``now``: ``now`` for a persistent schedule or
    an ungraceful end, else the next periodic boundary (anchored at ``applied_at`` when the
    schedule names no anchor)."""
    if isinstance(kind, Persistent) or not graceful:
        return now
    anchor = applied_at if kind.anchor is None else kind.anchor
    return next_periodic_dial(now, anchor, kind.period)


_DATE_AND_TIME: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})\Z"
)


def parse_date_and_time(text: str) -> float:
    """Seconds since the epoch of an ietf-yang-types ``date-and-time`` (RFC 3339, with a zone:
    ``2024-01-01T00:00:00Z``); ValueError if it is not one."""
    if not _DATE_AND_TIME.match(text):
        raise ValueError(f"not a date-and-time: {text!r}")
    return datetime.fromisoformat(text).timestamp()


NS: Final = "urn:ietf:params:xml:ns:yang:ietf-netconf-server"
"""Namespace of the ietf-netconf-server module, whose call-home part holds the schedule."""
PATH: Final = "/ncs:netconf-server/ncs:call-home/ncs:netconf-client/ncs:connection-type"
"""The error-path of a problem with the schedule (prefix ``ncs`` bound to ``NS``)."""
_PERIODIC_LEAVES: Final = ("period", "anchor-time", "idle-timeout")


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _error(tag: ErrorTag, message: str, element: str) -> RpcErrorInfo:
    return RpcError.single(tag, message, path=PATH, info={"bad-element": element}).errors[0]


def _children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def client_element(root: etree._Element, client: str | None = None) -> etree._Element | None:
    """The ``netconf-client`` entry named ``client`` (None: the first) under ``root`` (a
    datastore's ``<data>`` or an edit's ``<config>``), if any."""
    path = f"{_q('netconf-server')}/{_q('call-home')}/{_q('netconf-client')}"
    for entry in root.iterfind(path):
        if client is None or (entry.findtext(_q("name")) or "").strip() == client:
            return entry
    return None


def connection_type_element(
    root: etree._Element, client: str | None = None
) -> etree._Element | None:
    """The ``connection-type`` element of a netconf-client (``client`` by name; None: the
    first) under ``root``, if any."""
    found = client_element(root, client)
    return None if found is None else found.find(_q("connection-type"))


def _periodic(el: etree._Element, errors: list[RpcErrorInfo]) -> Periodic:
    period, anchor, idle = DEFAULT_PERIOD, None, DEFAULT_IDLE_TIMEOUT
    for child in _children(el):
        name = etree.QName(child).localname
        text = (child.text or "").strip()
        if child.tag not in {_q(n) for n in _PERIODIC_LEAVES}:
            errors.append(_error(ErrorTag.BAD_ELEMENT, f"unknown element {name!r}", name))
        elif name == "period":
            try:
                minutes = Decimal(text)
            except InvalidOperation:
                minutes = Decimal(0)
            if not minutes.is_finite() or minutes <= 0:
                errors.append(
                    _error(
                        ErrorTag.INVALID_VALUE,
                        f"period must be a positive number of minutes, not {text!r}",
                        name,
                    )
                )
            else:
                period = float(minutes * 60)
        elif name == "anchor-time":
            try:
                anchor = parse_date_and_time(text)
            except ValueError:
                errors.append(
                    _error(
                        ErrorTag.INVALID_VALUE,
                        f"anchor-time must be a date-and-time such as "
                        f"2024-01-01T00:00:00Z, not {text!r}",
                        name,
                    )
                )
        elif not text.isdigit() or int(text) > 65535:
            errors.append(
                _error(
                    ErrorTag.INVALID_VALUE,
                    f"idle-timeout must be a whole number of seconds (0-65535), not {text!r}",
                    name,
                )
            )
        else:
            idle = float(int(text))
    return Periodic(period=period, anchor=anchor, idle_timeout=idle)


def read_connection_type(
    root: etree._Element, errors: list[RpcErrorInfo] | None = None, *, client: str | None = None
) -> ConnectionType:
    """The connection type of a netconf-client (``client`` by name; None: the first) under
    ``root`` (persistent when there is none). Problems are appended to ``errors``; without a
    list, the first one raises :class:`RpcError`."""
    found: list[RpcErrorInfo] = []
    kind = _read(connection_type_element(root, client), found)
    if found and errors is None:
        raise RpcError(found)
    if errors is not None:
        errors.extend(found)
    return kind


def _read(el: etree._Element | None, errors: list[RpcErrorInfo]) -> ConnectionType:
    choices = [] if el is None else _children(el)
    if not choices:
        return Persistent()
    if len(choices) > 1:
        errors.append(
            _error(
                ErrorTag.BAD_ELEMENT,
                "connection-type takes one of persistent or periodic",
                etree.QName(choices[1]).localname,
            )
        )
        return Persistent()
    choice = choices[0]
    if choice.tag == _q("persistent"):
        if _children(choice):
            name = etree.QName(_children(choice)[0]).localname
            errors.append(_error(ErrorTag.BAD_ELEMENT, f"unknown element {name!r}", name))
        return Persistent()
    if choice.tag == _q("periodic"):
        return _periodic(choice, errors)
    name = etree.QName(choice).localname
    errors.append(_error(ErrorTag.BAD_ELEMENT, f"unknown connection-type {name!r}", name))
    return Persistent()
