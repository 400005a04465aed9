"""Which YANG modules a connected device implements: its hello, and its YANG library.

YANG 1.1 modules are not announced in a hello (RFC 7950 section 5.6.4), only in the YANG
library; ietf-netconf-server, whose call-home part holds the schedule, is one of them in
every revision in use. ``ModuleCatalog.modules(session)`` gives the device's
:class:`~callhome.proto.netconf.capabilities.ModuleSet`: from the hello alone when it
announces no YANG library, else with the library read once (RFC 7895 ``modules-state`` for
``yang-library:1.0``, RFC 8525 ``yang-library`` for 1.1) and kept by the device's identity
and the library's module-set-id or content-id, so that a device reconnecting with the same
library costs no round trip. Entries are bounded in number (least recently used go first).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Final

from callhome.errors import RpcError, SessionClosed
from callhome.net.session import DeviceSession
from callhome.proto.netconf.capabilities import (
    YANG_LIBRARY_NS,
    ModuleInfo,
    ModuleSet,
    parse_modules_state,
    parse_yang_library,
)

__all__ = ["MAX_ENTRIES", "ModuleCatalog"]

log = logging.getLogger(__name__)

MAX_ENTRIES: Final = 100_000
"""Devices whose library is kept at once."""
_FILTERS: Final = {
    "1.0": f'<modules-state xmlns="{YANG_LIBRARY_NS}"/>',
    "1.1": f'<yang-library xmlns="{YANG_LIBRARY_NS}"/>',
}


class ModuleCatalog:
    """Devices' module sets, read when first needed and kept (see the module)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max = max_entries
        self._known: OrderedDict[tuple[str, str], tuple[ModuleInfo, ...]] = OrderedDict()
        self._reading: dict[tuple[str, str], asyncio.Future[tuple[ModuleInfo, ...] | None]] = {}
        self.reads = 0
        """YANG library reads made so far (for tests and benchmarks)."""

    async def modules(self, session: DeviceSession) -> ModuleSet:
        """The modules ``session``'s device implements. A library that cannot be read (no
        reply, an rpc-error, nothing in it) leaves the hello's modules alone."""
        hello = ModuleSet(session.capabilities)
        library = hello.library
        if library is None:
            return hello
        key = (session.fingerprint, library.key)
        rows = self._known.get(key)
        if rows is not None:
            self._known.move_to_end(key)
            return ModuleSet(session.capabilities, rows)
        pending = self._reading.get(key)
        if pending is not None:  # another connect of the same device reads it now
            shared = await asyncio.shield(pending)
            return ModuleSet(session.capabilities, shared) if shared is not None else hello
        future: asyncio.Future[tuple[ModuleInfo, ...] | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._reading[key] = future
        got: tuple[ModuleInfo, ...] | None = None
        try:
            got = await self._read(session, library.version)
        finally:
            del self._reading[key]
            future.set_result(got)
        if got is None:
            return hello
        self._known[key] = got
        while len(self._known) > self._max:
            self._known.popitem(last=False)
        return ModuleSet(session.capabilities, got)

    async def _read(self, session: DeviceSession, version: str) -> tuple[ModuleInfo, ...] | None:
        self.reads += 1
        try:
            reply = await session.netconf.get(_FILTERS[version])
        except (RpcError, SessionClosed, TimeoutError) as exc:
            log.info("device %s: YANG library not read: %s", session.name, exc or "timeout")
            return None
        data = reply.data
        if data is None:
            return None
        parse = parse_modules_state if version == "1.0" else parse_yang_library
        _id, rows = parse(data)
        return tuple(rows) if rows else None

    def forget(self, fingerprint: str) -> None:
        """Drop what is known of a device (it was forgotten, or re-keyed)."""
        for key in [k for k in self._known if k[0] == fingerprint]:
            del self._known[key]
