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


@dataclass(frozen=True, slots=True)
class Device:
    """One device as the registry knows it, identified by its key fingerprint.

    ``status_since`` is when ``status`` last changed. ``first_seen`` is when the record was
    made (by the first call, or by a pre-approval), ``last_seen`` when it last called or
    left. ``address`` and ``orientation`` are those of its latest connection (an address
    is never an identity). ``credential`` names the credential set the manager presents
    to this device (RFC 8071 C7); ``None`` means the default one.
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

    @property
    def approved(self) -> bool:
        """Whether the key is bound to a name (the device may connect)."""
        return self.status in APPROVED_STATUSES


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
