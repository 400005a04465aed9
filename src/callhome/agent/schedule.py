"""The device's call-home connection type, as data in its running datastore.

The data model (a subset of ietf-netconf-server's call-home, namespace ``NS``) and its
reading live in :mod:`callhome.proto.schedule`, shared with the manager.

``check`` is a validator for ``NetconfService.add_validator``: a change that leaves an invalid
schedule is refused (invalid-value, bad-element) before the datastore commits it.
``ScheduleState`` holds the schedule in force and re-reads it when running changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from lxml import etree

from callhome.agent.events import ChangeEvent
from callhome.errors import RpcError, RpcErrorInfo
from callhome.proto.schedule import (
    NS,
    ConnectionType,
    Persistent,
    connection_type_element,
    read_connection_type,
)

__all__ = ["NS", "ScheduleState", "check", "parse"]

log = logging.getLogger(__name__)


def parse(root: etree._Element) -> ConnectionType:
    """The connection type held in a datastore's ``<data>`` root; RpcError if invalid."""
    return read_connection_type(root)


def check(old: etree._Element, new: etree._Element) -> list[RpcErrorInfo]:
    """The problems of ``new``'s schedule, if the change touched it (else none)."""
    before, after = connection_type_element(old), connection_type_element(new)
    if after is None:
        return []
    if before is not None and etree.tostring(before) == etree.tostring(after):
        return []
    errors: list[RpcErrorInfo] = []
    read_connection_type(new, errors)
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
