"""Who each manager is on this device: its identity mapped to a user name and groups.

One mapping (``[[managers]]`` in agent.toml) serves NETCONF access control (``agent.nacm``),
terminals, commands and forwards (``[[access]] group = ...``) and SNMP views
(``[[snmp.users]] group = ...``), so that one place says what a manager may do.

An identity is a fingerprint, looked up by the transport that authenticated it: of the
manager's SSH user key in reverse-ssh (``key``), of its client certificate in reverse-tls
(``certificate``), of its host key in turn (``host_key``). A manager accepted otherwise (a key
listed only in ``manager_keys``, a certificate accepted by ``[tls]``, a host key of
``turn.manager_host_keys``) maps to the SSH user name it logs in with, its certificate's CN or
``turn.username``, and no group.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from callhome.config import ManagerEntry
from callhome.errors import ConfigError
from callhome.net.keys import identity_of, parse_public_key
from callhome.net.netconf import Principal
from callhome.net.pki import (
    cert_identity,
    common_name,
    load_certificates,
    normalize_fingerprint,
)

__all__ = [
    "KIND_OF_TRANSPORT",
    "KnownManager",
    "ManagerDirectory",
    "certificate_of",
    "fingerprint_of",
]

KIND_OF_TRANSPORT: Final = {"reverse-ssh": "key", "reverse-tls": "certificate", "turn": "host_key"}
"""Which ``[[managers]]`` field names a principal's identity, by its transport ('' = key)."""
TRANSPORT_OF_KIND: Final = {kind: transport for transport, kind in KIND_OF_TRANSPORT.items()}


def fingerprint_of(key: str) -> str:
    """The SHA256 fingerprint of a ``[[managers]] key``: a fingerprint as it is, or a key."""
    key = key.strip()
    if key.startswith("SHA256:"):
        return key
    try:
        return identity_of(parse_public_key(key)).fingerprint
    except Exception as exc:  # asyncssh raises several kinds for a bad key
        raise ConfigError(f"managers: cannot read key {key[:40]!r}: {exc}") from None


def certificate_of(text: str, base_dir: Path | None = None) -> tuple[str, str]:
    """The fingerprint and CN ('' when only a fingerprint is given) of a ``[[managers]]
    certificate``: a fingerprint in any form ``pki`` normalises, or a PEM file."""
    try:
        return normalize_fingerprint(text), ""
    except ConfigError:
        pass
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        cert = load_certificates(path)[0]
    except ConfigError as exc:
        raise ConfigError(f"managers: certificate {text!r} is no fingerprint and {exc}") from None
    return cert_identity(cert).fingerprint, common_name(cert)


@dataclass(frozen=True)
class KnownManager:
    """One configured manager: its fingerprint, the user it maps to ('' = the name its
    transport gives: SSH user name, certificate CN), its groups, and the transport whose
    identities it is one of."""

    fingerprint: str
    user: str
    groups: tuple[str, ...]
    transport: str = "reverse-ssh"


class ManagerDirectory:
    """Maps the principal a transport authenticated to the user and groups of ``[[managers]]``.

    ``accepted``: fingerprints of the SSH keys reverse-ssh accepts; ``certificates``: of the
    certificates reverse-tls pins; ``host_keys``: of the host keys turn accepts, whose user is
    ``turn_user``. ``base_dir``: where relative certificate files are.
    """

    def __init__(
        self,
        entries: Sequence[ManagerEntry] = (),
        accepted: Iterable[str] = (),
        *,
        certificates: Iterable[str] = (),
        host_keys: Iterable[str] = (),
        turn_user: str = "",
        base_dir: Path | None = None,
    ) -> None:
        self._known: dict[tuple[str, str], KnownManager] = {}
        for entry in entries:
            user = entry.user
            if entry.certificate:
                kind = "certificate"
                fingerprint, cn = certificate_of(entry.certificate, base_dir)
                user = user or cn
            elif entry.host_key:
                kind, fingerprint = "host_key", fingerprint_of(entry.host_key)
                user = user or turn_user
            else:
                kind, fingerprint = "key", fingerprint_of(entry.key)
            if (kind, fingerprint) in self._known:
                raise ConfigError(f"managers: two entries for {kind} {fingerprint}")
            self._known[kind, fingerprint] = KnownManager(
                fingerprint, user, tuple(dict.fromkeys(entry.groups)), TRANSPORT_OF_KIND[kind]
            )
        for kind, fingerprints, user in (
            ("key", accepted, ""),
            ("certificate", (normalize_fingerprint(f) for f in certificates), ""),
            ("host_key", (fingerprint_of(k) for k in host_keys), turn_user),
        ):
            for fingerprint in fingerprints:
                self._known.setdefault(
                    (kind, fingerprint),
                    KnownManager(fingerprint, user, (), TRANSPORT_OF_KIND[kind]),
                )

    @property
    def managers(self) -> list[KnownManager]:
        """Every manager known: those of ``[[managers]]`` and the other accepted identities."""
        return list(self._known.values())

    @property
    def groups(self) -> set[str]:
        """Every group some manager is in."""
        return {g for m in self._known.values() for g in m.groups}

    def groups_of(self, fingerprint: str) -> tuple[str, ...]:
        """The groups of the manager whose SSH user key, or else TLS certificate (SNMP over
        TLS), has ``fingerprint`` (the two kinds of fingerprint never look alike)."""
        known = self._known.get(("key", fingerprint)) or self._known.get(
            ("certificate", fingerprint)
        )
        return () if known is None else known.groups

    def lookup(self, principal: Principal) -> KnownManager | None:
        """The manager ``principal``'s identity names, for its transport."""
        if not principal.identity:
            return None
        kind = KIND_OF_TRANSPORT.get(principal.transport, "key")
        return self._known.get((kind, principal.identity))

    def resolve(self, principal: Principal) -> Principal:
        """``principal`` with the user name and groups configured for its identity."""
        known = self.lookup(principal)
        if known is None:
            return principal
        return Principal(
            identity=principal.identity,
            user=known.user or principal.user,
            groups=tuple(dict.fromkeys((*principal.groups, *known.groups))),
            transport=principal.transport,
        )
