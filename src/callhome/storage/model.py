"""What the Store keeps: plain frozen records, free of any database library.

Times are unix seconds (``float``) given by the caller. ``detail`` mappings are kept as
JSON would keep them (tuples come back as lists, keys as strings), whichever Store is used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class DeviceStatus(StrEnum):
    """Where a device stands with the manager."""

    PENDING = "pending"
    """It called, its key is not bound to a name yet: refused until an operator approves it."""
    ONLINE = "online"
    """Approved, with a call-home connection now."""
    OFFLINE = "offline"
    """Approved, with no connection now."""
    REFUSED = "refused"
    """An operator rejected it: it stays refused until approved."""


APPROVED_STATUSES = frozenset({DeviceStatus.ONLINE, DeviceStatus.OFFLINE})
"""The statuses of a device whose key is bound to a name."""


class ScheduleKind(StrEnum):
    """A device's call-home connection type (ietf-netconf-server's ``connection-type``)."""

    PERSISTENT = "persistent"
    """It keeps a connection up and redials whenever it ends."""
    PERIODIC = "periodic"
    """It calls at ``anchor + n * period`` and hangs up when done or idle."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a device calls home, as the manager last learned it from the device.

    Durations are seconds; times are unix seconds. ``period`` and ``idle_timeout`` are set for
    a periodic schedule only (an ``idle_timeout`` of 0 means never). ``anchor`` is the
    schedule's anchor-time, None when it names none: the device then counts from when it
    applied the schedule, which the manager knows only as ``since``, the time it saw the
    schedule take effect (the change, or the connection on which it first read it).
    """

    kind: ScheduleKind
    since: float
    period: float | None = None
    anchor: float | None = None
    idle_timeout: float | None = None

    def same_as(self, other: Schedule | None) -> bool:
        """Whether ``other`` is the same schedule (``since`` aside)."""
        return other is not None and (
            self.kind,
            self.period,
            self.anchor,
            self.idle_timeout,
        ) == (other.kind, other.period, other.anchor, other.idle_timeout)


@dataclass(frozen=True, slots=True)
class Device:
    """One device as the registry knows it, identified by its key fingerprint.

    ``status_since`` is when ``status`` last changed. ``first_seen`` is when the record was
    made (by the first call, or by a pre-approval), ``last_seen`` when it last called or
    left. ``address`` and ``orientation`` are those of its latest connection (an address
    is never an identity). ``credential`` names the credential set the manager presents
    to this device (RFC 8071 C7); ``None`` means the default one. ``schedule`` is its
    call-home schedule as last learned, None while unknown.
    """

    fingerprint: str
    key_type: str
    name: str | None
    status: DeviceStatus
    status_since: float
    address: str | None
    first_seen: float
    last_seen: float
    orientation: str | None
    capabilities: tuple[str, ...]
    credential: str | None
    schedule: Schedule | None = None

    @property
    def approved(self) -> bool:
        """Whether the key is bound to a name (the device may connect)."""
        return self.status in APPROVED_STATUSES


def stored_schedule(schedule: Schedule | None) -> Schedule | None:
    """``schedule`` as it reads back from storage: its numbers as floats."""
    if schedule is None:
        return None

    def number(value: float | None) -> float | None:
        return None if value is None else float(value)

    return Schedule(
        kind=ScheduleKind(schedule.kind),
        since=float(schedule.since),
        period=number(schedule.period),
        anchor=number(schedule.anchor),
        idle_timeout=number(schedule.idle_timeout),
    )


class EventKind(StrEnum):
    """The kinds of event the manager records (others may be added as plain strings)."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    UNKNOWN_DEVICE = "unknown-device"
    KEY_MISMATCH = "key-mismatch"
    AUTH_FAILED = "auth-failed"
    PROTOCOL_ERROR = "protocol-error"
    APPROVED = "approved"
    REJECTED = "rejected"
    FORGOTTEN = "forgotten"
    REFUSED = "refused-connection"
    PENDING_EVICTED = "pending-evicted"
    """Pending devices forgotten to keep within ``max_pending``; detail ``count``."""


def after_eviction(max_pending: int) -> int:
    """How many pending devices an eviction leaves: nine tenths of the cap, so that under a
    flood of new keys evictions come in batches (one event each), not one per call."""
    return max_pending - max_pending // 10


@dataclass(frozen=True, slots=True)
class Noted:
    """What ``Store.note_pending`` did: the device as now recorded, and the fingerprints
    of the pending devices it forgot to keep within the cap (least recently seen first)."""

    device: Device
    evicted: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to or about a device; ``id`` grows with time."""

    id: int
    time: float
    kind: str
    device: str | None
    fingerprint: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Something an operator (``actor``) did; ``target`` is what it was done to."""

    id: int
    time: float
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any]


def json_detail(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """``detail`` as it reads back from storage: a fresh dict of JSON values.

    Raises ``TypeError`` or ``ValueError`` if it cannot be written as portable JSON
    (NaN and infinities are refused: PostgreSQL refuses them too).
    """
    if not detail:
        return {}
    result: dict[str, Any] = json.loads(json.dumps(dict(detail), allow_nan=False))
    return result
