"""Who each manager is on this device: its identity mapped to a user name and groups.

One mapping (``[[managers]]`` in agent.toml) serves NETCONF access control (``agent.nacm``),
terminals, commands and forwards (``[[access]] group = ...``) and SNMP views
(``[[snmp.users]] group = ...``), so that one place says what a manager may do.

An identity is a fingerprint: of the manager's SSH key in reverse-ssh, of its certificate in
reverse-tls, of its host key in turn. A key listed only in ``manager_keys`` maps to the SSH
user name it logs in with and no group.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from callhome.config import ManagerEntry
from callhome.errors import ConfigError
from callhome.net.keys import identity_of, parse_public_key
from callhome.net.netconf import Principal

__all__ = ["KnownManager", "ManagerDirectory", "fingerprint_of"]


def fingerprint_of(key: str) -> str:
    """The SHA256 fingerprint of a ``[[managers]] key``: a fingerprint as it is, or a key."""
    key = key.strip()
    if key.startswith("SHA256:"):
        return key
    try:
        return identity_of(parse_public_key(key)).fingerprint
    except Exception as exc:  # asyncssh raises several kinds for a bad key
        raise ConfigError(f"managers: cannot read key {key[:40]!r}: {exc}") from None


@dataclass(frozen=True)
class KnownManager:
    """One configured manager: its fingerprint, the user it maps to ('' = its SSH user name)
    and its groups."""

    fingerprint: str
    user: str
    groups: tuple[str, ...]


class ManagerDirectory:
    """Maps the principal a transport authenticated to the user and groups of ``[[managers]]``."""

    def __init__(self, entries: Sequence[ManagerEntry] = (), accepted: Iterable[str] = ()) -> None:
        self._by_fingerprint: dict[str, KnownManager] = {}
        for entry in entries:
            fingerprint = fingerprint_of(entry.key)
            if fingerprint in self._by_fingerprint:
                raise ConfigError(f"managers: two entries for {fingerprint}")
            self._by_fingerprint[fingerprint] = KnownManager(
                fingerprint, entry.user, tuple(dict.fromkeys(entry.groups))
            )
        for fingerprint in accepted:
            self._by_fingerprint.setdefault(fingerprint, KnownManager(fingerprint, "", ()))

    @property
    def managers(self) -> list[KnownManager]:
        """Every manager known: those of ``[[managers]]`` and the other accepted keys."""
        return list(self._by_fingerprint.values())

    @property
    def groups(self) -> set[str]:
        """Every group some manager is in."""
        return {g for m in self._by_fingerprint.values() for g in m.groups}

    def groups_of(self, fingerprint: str) -> tuple[str, ...]:
        known = self._by_fingerprint.get(fingerprint)
        return () if known is None else known.groups

    def resolve(self, principal: Principal) -> Principal:
        """``principal`` with the user name and groups configured for its identity."""
        known = self._by_fingerprint.get(principal.identity) if principal.identity else None
        if known is None:
            return principal
        return Principal(
            identity=principal.identity,
            user=known.user or principal.user,
            groups=tuple(dict.fromkeys((*principal.groups, *known.groups))),
            transport=principal.transport,
        )
