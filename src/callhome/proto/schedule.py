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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeAlias

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
