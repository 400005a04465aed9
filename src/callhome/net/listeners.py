"""The manager's side of every orientation: start the listeners its configuration asks for.

The orientation of a call-home connection is decided here and in the adapters beside this
module, nowhere else (DESIGN.md): the manager gives its ``[manager]`` section, its keys and
its :class:`~callhome.net.session.Admission`, and gets the listeners bound, each turning
accepted connections into ``DeviceSession`` objects. Adding an orientation adds an adapter
and its lines here.

- reverse-ssh (RFC 8071 section 3): ``[manager] listen``, always;
- reverse-tls (RFC 8071 section 4): ``[manager.tls] listen``;
- SNMP over TLS (RFC 6353): ``[manager.tls] snmp_listen``;
- turn (the seed's section 7): ``[manager.turn] listen``.

Every listener gets the same :class:`~callhome.net.accept.ListenerLimits`: the time and size
budgets of ``[manager]`` and the flood guard of ``[manager.guard]``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import asyncssh

from callhome.config import (
    DEFAULT_SNMP_TLS_PORT,
    DEFAULT_SSH_PORT,
    DEFAULT_TLS_PORT,
    DEFAULT_TURN_PORT,
    ManagerConfig,
    parse_hostport,
)
from callhome.net.accept import ListenerLimits, ManagerListener
from callhome.net.keys import ensure_key
from callhome.net.reverse_ssh import ManagerSshSettings, ReverseSshListener
from callhome.net.reverse_tls import ManagerTlsSettings, ReverseTlsListener
from callhome.net.session import Admission, hostport
from callhome.net.snmp_tls import SnmpTlsListener, snmp_security_name
from callhome.net.turn import ManagerTurnSettings, TurnListener

__all__ = ["Listeners", "start_listeners"]

log = logging.getLogger(__name__)


@dataclass
class Listeners:
    """The listeners a manager runs, and where they are bound."""

    running: list[ManagerListener] = field(default_factory=list)
    """Reverse-ssh first (always there), then the others ``[manager]`` asks for."""
    ports: list[int] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    """Where the listeners are bound, as ``host:port``, in the order of ``ports``."""

    async def add(
        self, what: str, listener: ManagerListener, at: Sequence[str], default: int
    ) -> None:
        """Bind ``listener`` on each address of ``at`` and log where."""
        self.running.append(listener)
        bound = []
        for address in at:
            host, port = parse_hostport(address, default)
            self.ports.append(await listener.listen(host, port))
            bound.append(hostport(host, self.ports[-1]))
            self.addresses.append(bound[-1])
        log.info("manager listening for %s on %s", what, ", ".join(bound))

    async def close(self) -> None:
        for listener in self.running:
            await listener.close()
        self.running.clear()


async def start_listeners(
    config: ManagerConfig,
    admission: Admission,
    credentials: Mapping[str, asyncssh.SSHKey],
) -> Listeners:
    """Start every listener ``config`` asks for; ``credentials`` are the keys the manager
    presents to devices over reverse-ssh ("" the default one)."""
    listeners = Listeners()
    try:
        await _start(listeners, config, admission, credentials)
    except BaseException:
        await listeners.close()  # what did bind is let go: a failed start holds no port
        raise
    return listeners


async def _start(
    listeners: Listeners,
    config: ManagerConfig,
    admission: Admission,
    credentials: Mapping[str, asyncssh.SSHKey],
) -> None:
    section = config.manager
    limits = ListenerLimits.from_config(section)
    ssh = ManagerSshSettings(section.username, dict(credentials), section.algorithms, limits)
    await listeners.add(
        "reverse-ssh call home",
        ReverseSshListener(admission, ssh),
        section.listen,
        DEFAULT_SSH_PORT,
    )
    tls, turn = section.tls, section.turn
    if tls.listen or tls.snmp_listen:
        tls_settings = ManagerTlsSettings.from_config(config, limits)
        if tls.listen:
            await listeners.add(
                "reverse-tls call home",
                ReverseTlsListener(admission, tls_settings),
                tls.listen,
                DEFAULT_TLS_PORT,
            )
        if tls.snmp_listen:
            await listeners.add(
                "SNMP over TLS call home",
                SnmpTlsListener(admission, tls_settings, snmp_security_name(config)),
                tls.snmp_listen,
                DEFAULT_SNMP_TLS_PORT,
            )
    if turn.listen:
        host_key = ensure_key(config.path(turn.host_key))
        settings = ManagerTurnSettings(host_key, section.algorithms, limits)
        await listeners.add(
            "turn (netconf-turn over SSH)",
            TurnListener(admission, settings),
            turn.listen,
            DEFAULT_TURN_PORT,
        )
