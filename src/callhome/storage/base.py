"""The one interface through which the manager reaches its storage.

Methods are named for what the manager does; each one is a transaction of its own.
Times are given by the caller as unix seconds (``now``); no Store reads the clock.

Rules every implementation keeps (the shared test suite checks them):

- A device is found by its key fingerprint. A name, once bound to a key, is never re-bound
  to another key silently: approving or pre-approving a name held by another fingerprint
  raises :class:`~callhome.errors.Conflict`.
- ``status_since`` changes only when ``status`` changes.
- An operation on an unknown fingerprint or name raises :class:`~callhome.errors.NotFound`.
- Events and audit entries have ids that grow; lists of them are in ascending id order.
  An id is never used again, even once its entry has been pruned.
- The ``prune_*`` methods delete in transactions of at most ``batch`` rows each, so that
  other work goes between them (the one exception to "a method is a transaction").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from callhome.storage.jobs import JobStore
from callhome.storage.model import AuditEntry, Device, Event, Noted, Schedule


class Store(JobStore, Protocol):
    """Devices and their identities, events and the audit log (jobs come later)."""

    async def open(self) -> None:
        """Make the storage ready: create what is missing (schema, file)."""
        ...

    async def close(self) -> None:
        """Release connections; the Store may be opened again."""
        ...

    # --- devices -------------------------------------------------------------------------

    async def device_by_fingerprint(self, fingerprint: str) -> Device | None:
        """The device with this key fingerprint, if any."""
        ...

    async def device_by_name(self, name: str) -> Device | None:
        """The device bound to this name, if any."""
        ...

    async def list_devices(self) -> list[Device]:
        """Every device, in the order their records were made."""
        ...

    async def note_unknown(
        self, fingerprint: str, key_type: str, address: str | None, now: float
    ) -> Device:
        """Record that a device not approved (yet) called.

        A new fingerprint becomes a PENDING device seen first and last at ``now``. A PENDING
        or REFUSED one gets ``last_seen = now`` and the new ``address`` (when given). An
        approved device is returned unchanged.
        """
        ...

    async def note_pending(
        self,
        fingerprint: str,
        key_type: str,
        address: str | None,
        now: float,
        *,
        max_pending: int,
    ) -> Noted:
        """:meth:`note_unknown`, keeping at most ``max_pending`` PENDING devices.

        When a new one makes more, the least recently seen others (``last_seen``, then the
        oldest record) are deleted in the same transaction, down to nine tenths of the cap
        (``after_eviction``: a flood evicts in batches), and one ``pending-evicted`` event
        records how many (detail ``count`` and ``max_pending``); their fingerprints are in
        the answer. REFUSED and approved devices are never evicted nor counted.
        """
        ...

    async def approve(
        self, fingerprint: str, name: str, now: float, *, credential: str | None = None
    ) -> Device:
        """Bind ``name`` to the device's key, and set its credential set.

        A PENDING or REFUSED device becomes OFFLINE; an approved one keeps its status (so
        approving again renames it). Raises NotFound for an unknown fingerprint and Conflict
        if ``name`` is bound to another fingerprint.
        """
        ...

    async def pre_approve(
        self,
        fingerprint: str,
        key_type: str,
        name: str,
        now: float,
        *,
        credential: str | None = None,
    ) -> Device:
        """Bind ``name`` to a key before the device ever called (OFFLINE from ``now``).

        For a fingerprint already known this is :meth:`approve` (its stored key type is
        kept). Raises Conflict if ``name`` is bound to another fingerprint.
        """
        ...

    async def reject(self, fingerprint: str, now: float) -> Device:
        """Refuse the device from now on: status REFUSED, name and credential released.

        The record is kept so that the key stays refused. Raises NotFound if unknown.
        """
        ...

    async def forget(self, name: str) -> None:
        """Delete the device bound to ``name`` (raises NotFound if none is)."""
        ...

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
        """An approved device has connected: ONLINE, seen at ``now``, connection facts kept.

        With ``detail``, the ``connected`` event is recorded in the same transaction.
        Raises NotFound if the fingerprint is unknown, Conflict if it is not approved.
        """
        ...

    async def mark_offline(
        self, fingerprint: str, now: float, *, detail: Mapping[str, Any] | None = None
    ) -> Device:
        """The device's connection ended: an ONLINE device becomes OFFLINE, seen at ``now``.

        A device that was not ONLINE is returned unchanged. With ``detail``, the
        ``disconnected`` event is recorded in the same transaction. NotFound if unknown.
        """
        ...

    async def mark_all_offline(self, now: float) -> int:
        """Set every ONLINE device OFFLINE (at manager start); returns how many were."""
        ...

    async def set_schedule(self, fingerprint: str, schedule: Schedule | None) -> Device:
        """Keep the device's call-home schedule as learned (None: unknown from now on).

        Nothing else of the device changes. Raises NotFound if the fingerprint is unknown.
        """
        ...

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
        """Append an event; ``device`` is the device's name, ``detail`` JSON-able."""
        ...

    async def list_events(
        self,
        *,
        device: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        kinds: Sequence[str] | None = None,
        newest: bool = False,
    ) -> list[Event]:
        """Up to ``limit`` events with id above ``after_id``, ascending, optionally only
        those of one device (by name) and of the given kinds; with ``newest``, the last
        ``limit`` of them (still ascending)."""
        ...

    async def record_audit(
        self,
        actor: str,
        action: str,
        target: str | None,
        now: float,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append an entry to the audit log."""
        ...

    async def list_audit(
        self, *, after_id: int = 0, limit: int = 100, newest: bool = False
    ) -> list[AuditEntry]:
        """Up to ``limit`` audit entries with id above ``after_id``, ascending; with
        ``newest``, the last ``limit`` of them (still ascending)."""
        ...

    # --- retention -------------------------------------------------------------------------

    async def prune_events(self, *, before: float | None, keep: int | None, batch: int) -> int:
        """Delete the events older than ``before`` (``time`` < ``before``) and those that are
        not among the newest ``keep`` (None: no such limit); how many were deleted."""
        ...

    async def prune_audit(self, *, before: float | None, keep: int | None, batch: int) -> int:
        """:meth:`prune_events` for the audit log."""
        ...

    # Jobs (durable requests that wait for their device: ``enqueue_job``,
    # ``claim_next_job(device)``, ``finish_job`` ...) belong here, beside their table.
