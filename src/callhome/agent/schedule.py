"""The device's call-home connection type, as data in its running datastore.

A small subset of the ietf-netconf-server call-home model (RFC 8071), namespace ``NS``::

    <netconf-server xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-server">
      <call-home><netconf-client><name>default</name>
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

The first ``netconf-client`` entry's connection type applies; none, or an empty
``connection-type``, means persistent. The model's period is a whole number of minutes; a
fraction (``0.05`` for 3 s) is accepted here as a deviation, for short schedules.

``check`` is a validator for ``NetconfService.add_validator``: a change that leaves an invalid
schedule is refused (invalid-value, bad-element) before the datastore commits it.
``ScheduleState`` holds the schedule in force and re-reads it when running changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Final

from lxml import etree

from callhome.agent.events import ChangeEvent
from callhome.errors import ErrorTag, RpcError, RpcErrorInfo
from callhome.proto.schedule import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_PERIOD,
    ConnectionType,
    Periodic,
    Persistent,
    parse_date_and_time,
)

__all__ = ["NS", "ScheduleState", "check", "parse"]

log = logging.getLogger(__name__)

NS: Final = "urn:ietf:params:xml:ns:yang:ietf-netconf-server"
_PATH: Final = "/ncs:netconf-server/ncs:call-home/ncs:netconf-client/ncs:connection-type"
_PERIODIC_LEAVES: Final = ("period", "anchor-time", "idle-timeout")


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _error(tag: ErrorTag, message: str, element: str) -> RpcErrorInfo:
    return RpcError.single(tag, message, path=_PATH, info={"bad-element": element}).errors[0]


def _children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _subtree(root: etree._Element) -> etree._Element | None:
    """The first netconf-client's connection-type element, if any."""
    found = root.find(f"{_q('netconf-server')}/{_q('call-home')}/{_q('netconf-client')}")
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


def _parse(root: etree._Element, errors: list[RpcErrorInfo]) -> ConnectionType:
    el = _subtree(root)
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


def parse(root: etree._Element) -> ConnectionType:
    """The connection type held in a datastore's ``<data>`` root; RpcError if invalid."""
    errors: list[RpcErrorInfo] = []
    kind = _parse(root, errors)
    if errors:
        raise RpcError(errors)
    return kind


def check(old: etree._Element, new: etree._Element) -> list[RpcErrorInfo]:
    """The problems of ``new``'s schedule, if the change touched it (else none)."""
    before, after = _subtree(old), _subtree(new)
    if after is None:
        return []
    if before is not None and etree.tostring(before) == etree.tostring(after):
        return []
    errors: list[RpcErrorInfo] = []
    _parse(new, errors)
    return errors


class ScheduleState:
    """The schedule in force and when it was applied; ``on_change`` hears of a new one."""

    def __init__(
        self,
        running: etree._Element,
        *,
        read: Callable[[], etree._Element],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._read = read
        self._clock = clock
        self.on_change: Callable[[], None] | None = None
        try:
            self.kind: ConnectionType = parse(running)
        except RpcError as exc:
            log.error("call-home schedule in running is invalid (%s); persistent", exc)
            self.kind = Persistent()
        self.applied_at = clock()
        """Seconds since the epoch: the anchor of a periodic schedule that names none."""

    def changed(self, event: ChangeEvent) -> None:
        """A change listener: re-read the schedule when running changed."""
        if event.datastore != "running":
            return
        try:
            kind = parse(self._read())
        except RpcError as exc:
            log.error("call-home schedule not applied: %s", exc)
            return
        if kind == self.kind:
            return
        log.info("call-home schedule is now %s", kind)
        self.kind = kind
        self.applied_at = self._clock()
        if self.on_change is not None:
            self.on_change()
