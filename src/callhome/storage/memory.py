"""A Store in memory, for the unit tests of the layers above storage.

It behaves as :class:`~callhome.storage.sql.SqlStore` does (one test suite runs against
both), keeps nothing after the process ends, and never blocks. It is usable at once:
``open()`` and ``close()`` do nothing (and ``close()`` keeps the data).
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

from callhome.errors import Conflict, NotFound
from callhome.storage.memory_jobs import MemoryJobsMixin
from callhome.storage.model import (
    AuditEntry,
    Device,
    DeviceStatus,
    Event,
    EventKind,
    Noted,
    Schedule,
    after_eviction,
    json_detail,
    stored_schedule,
)


class MemoryStore(MemoryJobsMixin):
    """Devices, events and audit entries in dicts and lists."""

    def __init__(self) -> None:
        # Insertion order of this dict is the order the records were made.
        self._devices: dict[str, Device] = {}
        self._names: dict[str, str] = {}
        # Ascending ids; pruning removes entries, so the last id given is kept apart.
        self._events: list[Event] = []
        self._audit: list[AuditEntry] = []
        self._last_event_id = 0
        self._last_audit_id = 0
        super().__init__()

    def _next_event_id(self) -> int:
        self._last_event_id += 1
        return self._last_event_id

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # --- devices -------------------------------------------------------------------------

    async def device_by_fingerprint(self, fingerprint: str) -> Device | None:
        return self._devices.get(fingerprint)

    async def device_by_name(self, name: str) -> Device | None:
        fingerprint = self._names.get(name)
        return None if fingerprint is None else self._devices[fingerprint]

    async def list_devices(self) -> list[Device]:
        return list(self._devices.values())

    async def note_unknown(
        self, fingerprint: str, key_type: str, address: str | None, now: float
    ) -> Device:
        device = self._devices.get(fingerprint)
        if device is None:
            device = Device(
                fingerprint=fingerprint,
                key_type=key_type,
                name=None,
                status=DeviceStatus.PENDING,
                status_since=now,
                address=address,
                first_seen=now,
                last_seen=now,
                orientation=None,
                capabilities=(),
                credential=None,
            )
        elif not device.approved:
            device = dataclasses.replace(
                device,
                last_seen=now,
                address=device.address if address is None else address,
            )
        return self._put(device)

    async def note_pending(
        self,
        fingerprint: str,
        key_type: str,
        address: str | None,
        now: float,
        *,
        max_pending: int,
    ) -> Noted:
        device = await self.note_unknown(fingerprint, key_type, address, now)
        if device.status is not DeviceStatus.PENDING:
            return Noted(device)
        pending = [d for d in self._devices.values() if d.status is DeviceStatus.PENDING]
        if len(pending) <= max_pending:
            return Noted(device)
        excess = len(pending) - after_eviction(max_pending)
        order = {fp: n for n, fp in enumerate(self._devices)}
        others = [d for d in pending if d.fingerprint != fingerprint]
        others.sort(key=lambda d: (d.last_seen, order[d.fingerprint]))
        evicted = tuple(d.fingerprint for d in others[:excess])
        for victim in evicted:
            del self._devices[victim]
        await self.record_event(
            EventKind.PENDING_EVICTED,
            now,
            detail={"count": len(evicted), "max_pending": max_pending},
        )
        return Noted(device, evicted)

    async def approve(
        self, fingerprint: str, name: str, now: float, *, credential: str | None = None
    ) -> Device:
        device = self._devices.get(fingerprint)
        if device is None:
            raise NotFound(f"no device has fingerprint {fingerprint}")
        self._check_name_free(name, fingerprint)
        return self._bind(device, name, now, credential)

    async def pre_approve(
        self,
        fingerprint: str,
        key_type: str,
        name: str,
        now: float,
        *,
        credential: str | None = None,
    ) -> Device:
        self._check_name_free(name, fingerprint)
        device = self._devices.get(fingerprint)
        if device is None:
            device = Device(
                fingerprint=fingerprint,
                key_type=key_type,
                name=None,
                status=DeviceStatus.OFFLINE,
                status_since=now,
                address=None,
                first_seen=now,
                last_seen=now,
                orientation=None,
                capabilities=(),
                credential=None,
            )
        return self._bind(device, name, now, credential)

    async def reject(self, fingerprint: str, now: float) -> Device:
        device = self._get(fingerprint)
        if device.name is not None:
            del self._names[device.name]
        device = _to_status(device, DeviceStatus.REFUSED, now)
        return self._put(dataclasses.replace(device, name=None, credential=None))

    async def forget(self, name: str) -> None:
        fingerprint = self._names.pop(name, None)
        if fingerprint is None:
            raise NotFound(f"no device is named {name!r}")
        del self._devices[fingerprint]

    async def mark_online(
        self,
        fingerprint: str,
        now: float,
        *,
        address: str | None,
        orientation: str,
        capabilities: Sequence[str],
        detail: Mapping[str, Any] | None = None,
    ) -> Device:
        device = self._get(fingerprint)
        if not device.approved:
            raise Conflict(f"device {fingerprint} is {device.status}, not approved")
        device = _to_status(device, DeviceStatus.ONLINE, now)
        device = self._put(
            dataclasses.replace(
                device,
                last_seen=now,
                address=address,
                orientation=orientation,
                capabilities=tuple(capabilities),
            )
        )
        if detail is not None:
            await self.record_event(
                EventKind.CONNECTED, now, device=device.name, fingerprint=fingerprint, detail=detail
            )
        return device

    async def mark_offline(
        self, fingerprint: str, now: float, *, detail: Mapping[str, Any] | None = None
    ) -> Device:
        device = self._get(fingerprint)
        if device.status is DeviceStatus.ONLINE:
            device = _to_status(device, DeviceStatus.OFFLINE, now)
            device = self._put(dataclasses.replace(device, last_seen=now))
        if detail is not None:
            await self.record_event(
                EventKind.DISCONNECTED,
                now,
                device=device.name,
                fingerprint=fingerprint,
                detail=detail,
            )
        return device

    async def mark_all_offline(self, now: float) -> int:
        online = [d for d in self._devices.values() if d.status is DeviceStatus.ONLINE]
        for device in online:
            self._put(_to_status(device, DeviceStatus.OFFLINE, now))
        return len(online)

    async def set_schedule(self, fingerprint: str, schedule: Schedule | None) -> Device:
        device = self._get(fingerprint)
        return self._put(dataclasses.replace(device, schedule=stored_schedule(schedule)))

    # --- events and audit ----------------------------------------------------------------

    async def record_event(
        self,
        kind: str,
        now: float,
        *,
        device: str | None = None,
        fingerprint: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Event:
        event = Event(
            id=self._next_event_id(),
            time=now,
            kind=str(kind),
            device=device,
            fingerprint=fingerprint,
            detail=json_detail(detail),
        )
        self._events.append(event)
        return _copy_event(event)

    async def list_events(
        self,
        *,
        device: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        kinds: Sequence[str] | None = None,
        newest: bool = False,
    ) -> list[Event]:
        if limit <= 0:
            return []
        wanted = None if kinds is None else {str(k) for k in kinds}
        result: list[Event] = []
        start = bisect.bisect_right(self._events, after_id, key=_id)
        candidates = self._events[start:]
        for event in reversed(candidates) if newest else candidates:
            if len(result) >= limit:
                break
            if device is not None and event.device != device:
                continue
            if wanted is not None and event.kind not in wanted:
                continue
            result.append(_copy_event(event))
        if newest:
            result.reverse()
        return result

    async def record_audit(
        self,
        actor: str,
        action: str,
        target: str | None,
        now: float,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        self._last_audit_id += 1
        entry = AuditEntry(
            id=self._last_audit_id,
            time=now,
            actor=actor,
            action=action,
            target=target,
            detail=json_detail(detail),
        )
        self._audit.append(entry)
        return dataclasses.replace(entry, detail=json_detail(entry.detail))

    async def list_audit(
        self, *, after_id: int = 0, limit: int = 100, newest: bool = False
    ) -> list[AuditEntry]:
        start = bisect.bisect_right(self._audit, after_id, key=_id)
        if newest:
            entries = self._audit[start:][-limit:] if limit > 0 else []
        else:
            entries = self._audit[start : start + max(limit, 0)]
        return [dataclasses.replace(e, detail=json_detail(e.detail)) for e in entries]

    # --- retention -----------------------------------------------------------------------

    async def prune_events(self, *, before: float | None, keep: int | None, batch: int) -> int:
        kept = _pruned(self._events, before, keep)
        removed = len(self._events) - len(kept)
        self._events = kept
        return removed

    async def prune_audit(self, *, before: float | None, keep: int | None, batch: int) -> int:
        kept = _pruned(self._audit, before, keep)
        removed = len(self._audit) - len(kept)
        self._audit = kept
        return removed

    # --- helpers -------------------------------------------------------------------------

    def _get(self, fingerprint: str) -> Device:
        device = self._devices.get(fingerprint)
        if device is None:
            raise NotFound(f"no device has fingerprint {fingerprint}")
        return device

    def _put(self, device: Device) -> Device:
        self._devices[device.fingerprint] = device
        return device

    def _check_name_free(self, name: str, fingerprint: str) -> None:
        holder = self._names.get(name)
        if holder is not None and holder != fingerprint:
            raise Conflict(f"name {name!r} is bound to another key ({holder})")

    def _bind(self, device: Device, name: str, now: float, credential: str | None) -> Device:
        if device.name is not None:
            del self._names[device.name]
        self._names[name] = device.fingerprint
        if not device.approved:
            device = _to_status(device, DeviceStatus.OFFLINE, now)
        return self._put(dataclasses.replace(device, name=name, credential=credential))


def _to_status(device: Device, status: DeviceStatus, now: float) -> Device:
    if device.status is status:
        return device
    return dataclasses.replace(device, status=status, status_since=now)


class _Logged(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def time(self) -> float: ...


def _id(entry: _Logged) -> int:
    return entry.id


_L = TypeVar("_L", bound=_Logged)


def _pruned(entries: list[_L], before: float | None, keep: int | None) -> list[_L]:
    """``entries`` (ascending ids) without those older than ``before`` or past the newest
    ``keep``."""
    kept = entries if keep is None else entries[max(len(entries) - keep, 0) :]
    return kept if before is None else [e for e in kept if e.time >= before]


def _copy_event(event: Event) -> Event:
    return dataclasses.replace(event, detail=json_detail(event.detail))
