"""The device registry as the manager holds it, and admission decided from it.

Admission is decided synchronously from an in-memory copy of the registry (the Store stays
the truth; the copy is loaded at start and updated on each change), so that an unknown or
refused key is turned away during the transport's handshake, before any credential is
offered. A flood of strangers costs at most one registry write per key and interval
(``NOTE_INTERVAL``), and their log lines are limited by the manager's ``LogLimiter``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from callhome.clock import Clock
from callhome.errors import UnknownDevice
from callhome.identity import Identity
from callhome.storage import Device, DeviceStatus, EventKind, Store

NOTE_INTERVAL = 30.0
"""Seconds between two events of one kind for the same unknown key or host (flood guard)."""

Note = Callable[..., None]
"""``note(kind, key, message, *args)``: one limited INFO line (``Manager._note``)."""
RecordEvent = Callable[..., Coroutine[Any, Any, None]]
"""``event(kind, device=, fingerprint=, detail=)``: an event recorded and announced."""
Spawn = Callable[[Coroutine[Any, Any, Any]], None]


class Registry:
    """Devices by fingerprint, as the store has them, and who may call in."""

    def __init__(
        self,
        store: Store,
        *,
        max_pending: int,
        clock: Clock,
        note: Note,
        event: RecordEvent,
        spawn: Spawn,
    ) -> None:
        self.store = store
        self.max_pending = max_pending
        self._clock = clock
        self._note = note
        self._event = event
        self._spawn = spawn
        self.devices: dict[str, Device] = {}
        self._noted: dict[tuple[str, str], float] = {}

    async def load(self) -> None:
        self.devices = {d.fingerprint: d for d in await self.store.list_devices()}

    # -- lookups ---------------------------------------------------------------------------
    def find(self, key: str) -> Device | None:
        """The device known by ``key``, its fingerprint or its name."""
        device = self.devices.get(key)
        if device is None:
            device = next((d for d in self.devices.values() if d.name == key), None)
        return device

    def get(self, key: str) -> Device:
        """The device known by ``key`` (fingerprint or name); UnknownDevice if none."""
        device = self.find(key)
        if device is None:
            raise UnknownDevice(f"no device named {key!r}")
        return device

    def display_name(self, key: str) -> str:
        """The name of the device known by ``key`` (a name or an identity), else ``key``."""
        device = self.find(key)
        return device.name if device is not None and device.name else key

    def update(self, device: Device) -> Device:
        """Keep the store's newer record of ``device``."""
        self.devices[device.fingerprint] = device
        return device

    def drop(self, fingerprint: str) -> None:
        self.devices.pop(fingerprint, None)

    # -- admission (the orientation adapters ask, through the Manager) ----------------------
    def preferred(self, identities: Sequence[Identity]) -> Identity:
        """Of several identities of one peer, the first approved one, else the first."""
        for identity in identities:
            device = self.devices.get(identity.fingerprint)
            if device is not None and device.approved:
                return identity
        return identities[0]

    def admit(self, identity: Identity, address: str) -> str | None:
        """The credential set to present to an approved device ("" the default); None for
        a refused or unknown one (an unknown one is recorded as pending)."""
        device = self.devices.get(identity.fingerprint)
        if device is not None and device.approved:
            return device.credential or ""
        if device is not None and device.status is DeviceStatus.REFUSED:
            self._note(
                EventKind.REFUSED,
                identity.fingerprint,
                "refused device %s from %s: rejected by an operator",
                identity,
                address,
            )
            if self._worth_noting(EventKind.REFUSED, identity.fingerprint):
                self._spawn(
                    self._event(
                        EventKind.REFUSED,
                        fingerprint=identity.fingerprint,
                        detail={"address": address, "reason": "rejected by an operator"},
                    )
                )
            return None
        self._note(
            EventKind.UNKNOWN_DEVICE,
            identity.fingerprint,
            "unknown device %s from %s refused until approved (callhome approve %s --name NAME)",
            identity,
            address,
            identity,
        )
        if self._worth_noting(EventKind.UNKNOWN_DEVICE, identity.fingerprint):
            self._spawn(self._note_unknown(identity, address, self._clock.time()))
        return None

    def handshake_failed(
        self, address: str, identity: Identity | None, reason: str, *, auth: bool = False
    ) -> None:
        """A connection ended before it became a session: logged, and recorded once per
        kind, key and interval."""
        device = self.devices.get(identity.fingerprint) if identity else None
        kind = EventKind.AUTH_FAILED if auth else EventKind.PROTOCOL_ERROR
        host = address.rpartition(":")[0]
        key = identity.fingerprint if identity else host
        named = device.name if device is not None and device.name else identity
        who = "" if named is None else f" ({named})"
        what = "authentication" if auth else "handshake"
        self._note(kind, key, "%s with %s%s failed: %s", what, address, who, shown(reason))
        if not self._worth_noting(kind, key):
            return
        self._spawn(
            self._event(
                kind,
                device=device.name if device else None,
                fingerprint=identity.fingerprint if identity else None,
                detail={"address": address, "reason": reason},
            )
        )

    def _worth_noting(self, kind: str, key: str) -> bool:
        """Flood guard: one registry write per kind and key (a key, a host) per interval."""
        now = self._clock.time()
        noted = self._noted
        if now - noted.get((kind, key), 0.0) < NOTE_INTERVAL:
            return False
        noted[(kind, key)] = now
        if len(noted) > 10_000:
            self._noted = {k: t for k, t in noted.items() if now - t < NOTE_INTERVAL}
        return True

    async def _note_unknown(self, identity: Identity, address: str, now: float) -> None:
        cap = self.max_pending
        noted = await self.store.note_pending(
            identity.fingerprint, identity.key_type, address, now, max_pending=cap
        )
        self.update(noted.device)
        for evicted in noted.evicted:
            known = self.devices.get(evicted)
            if known is not None and known.status is DeviceStatus.PENDING:  # not approved since
                del self.devices[evicted]
        if noted.evicted:
            self._note(
                EventKind.PENDING_EVICTED,
                "",
                "%d pending devices forgotten, the least recently seen (max_pending is %d)",
                len(noted.evicted),
                cap,
            )
        await self._event(
            EventKind.UNKNOWN_DEVICE,
            fingerprint=identity.fingerprint,
            detail={"address": address, "key_type": identity.key_type},
        )


def shown(text: str, limit: int = 200) -> str:
    """A peer's text as a log line shows it: printable, on one line, at most ``limit``."""
    printable = "".join(c if c.isprintable() else "?" for c in text)
    return printable if len(printable) <= limit else printable[: limit - 3] + "..."
