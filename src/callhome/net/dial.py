"""The device's side of every orientation: dial this endpoint, whatever its orientation.

The orientation of a call-home connection is decided here and in the adapters beside this
module, nowhere else (DESIGN.md): the agent gives an ``[[endpoints]]`` entry and gets a
live :class:`CallHomeConnection`. :class:`DeviceTransports` holds what each orientation
needs, built once from agent.toml (:meth:`DeviceTransports.from_config`) with the services
the connections carry (the NETCONF handler, terminals, SNMP).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Protocol

import asyncssh

from callhome.config import (
    DEFAULT_SNMP_TLS_PORT,
    AgentConfig,
    Endpoint,
    parse_hostport,
)
from callhome.errors import AuthError, ConfigError
from callhome.net.channels import DeviceServices
from callhome.net.keys import parse_public_key
from callhome.net.netconf import NetconfHandler
from callhome.net.reverse_ssh import DeviceSshSettings, dial_reverse_ssh
from callhome.net.reverse_tls import DeviceTlsSettings, dial_reverse_tls
from callhome.net.session import Orientation
from callhome.net.snmp import SnmpHandler
from callhome.net.snmp_tls import SnmpTlsService, dial_snmp_tls
from callhome.net.turn import DeviceTurnSettings, dial_turn

__all__ = [
    "DIAL_ERRORS",
    "AcceptedManagers",
    "CallHomeConnection",
    "DeviceTransports",
    "accepted_managers",
    "address_of",
    "default_port",
    "load_manager_keys",
    "model_transport",
]

DIAL_ERRORS = (OSError, asyncssh.Error, TimeoutError, AuthError)
"""What a failed dial raises, whatever the orientation (``failures.dial_failure`` says why)."""


class CallHomeConnection(Protocol):
    """One live call-home connection, whatever its orientation."""

    async def wait_closed(self) -> None: ...

    def abort(self) -> None: ...


def default_port(endpoint: Endpoint) -> int:
    """The manager port an endpoint without one dials."""
    if endpoint.service == "snmp":
        return DEFAULT_SNMP_TLS_PORT
    return Orientation(endpoint.orientation).default_port


def address_of(endpoint: Endpoint) -> tuple[str, int]:
    """(host, port) an endpoint dials."""
    return parse_hostport(endpoint.address, default_port(endpoint))


def model_transport(orientation: str) -> str | None:
    """The transport (the choice's case in ietf-netconf-server's call-home endpoints) a
    device's own endpoint in ``orientation`` is written with: ``ssh``, ``tls``, or None for
    turn, which the model has no place for (a device does not mirror its turn endpoints;
    the manager, matching a turn session against a device's endpoints, takes it for ssh:
    ``Orientation.model_transport``)."""
    kind = Orientation(orientation)
    return None if kind is Orientation.TURN else kind.model_transport


def load_manager_keys(config: AgentConfig) -> list[asyncssh.SSHKey]:
    """The manager keys this device accepts, from the config and its authorized-keys file."""
    lines = list(config.manager_keys)
    lines += [m.key for m in config.managers if m.key and not m.key.startswith("SHA256:")]
    if config.manager_keys_file is not None:
        path = config.path(config.manager_keys_file)
        try:
            lines += path.read_text().splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read manager_keys_file {path}: {exc.strerror}") from None
    keys = [parse_public_key(line) for line in lines if line.strip() and not line.startswith("#")]
    if not keys:
        raise ConfigError("no manager key configured: this device would accept no manager")
    return keys


@dataclass(frozen=True)
class AcceptedManagers:
    """The managers a device accepts, by what authenticates them in the orientations its
    endpoints use: SSH user keys (reverse-ssh), certificate fingerprints (reverse-tls) and
    SSH host keys (turn)."""

    keys: list[asyncssh.SSHKey]
    certificates: list[str]
    host_keys: list[str]


def accepted_managers(config: AgentConfig) -> AcceptedManagers:
    """What authenticates a manager to this device (see :class:`AcceptedManagers`)."""
    uses = {e.orientation for e in config.endpoints}
    return AcceptedManagers(
        keys=load_manager_keys(config) if "reverse-ssh" in uses else [],
        certificates=list(config.tls.manager_fingerprints) if "reverse-tls" in uses else [],
        host_keys=list(config.turn.manager_host_keys) if "turn" in uses else [],
    )


@dataclass
class DeviceTransports:
    """What the device dials with, per orientation (None where no endpoint uses it)."""

    ssh: DeviceSshSettings
    tls: DeviceTlsSettings | None = None
    snmp_tls: SnmpTlsService | None = None
    turn: DeviceTurnSettings | None = None

    @classmethod
    def from_config(
        cls,
        config: AgentConfig,
        *,
        host_key: asyncssh.SSHKey,
        manager_keys: Sequence[asyncssh.SSHKey],
        handler: NetconfHandler,
        services: DeviceServices | None = None,
        snmp: SnmpHandler | None = None,
    ) -> DeviceTransports:
        uses = {e.orientation for e in config.endpoints}
        ssh = DeviceSshSettings(
            host_key=host_key,
            manager_keys=list(manager_keys),
            handler=handler,
            auth_timeout=config.auth_timeout,
            keepalive=config.keepalive,
            algorithms=config.algorithms,
            max_message_size=config.max_message_size,
            services=services,
            snmp=snmp,
        )
        tls = cls._tls(config, handler) if "reverse-tls" in uses else None
        turn = cls._turn(config, host_key, handler) if "turn" in uses else None
        return cls(ssh, tls, cls._snmp_tls(config, snmp), turn)

    @staticmethod
    def _tls(config: AgentConfig, handler: NetconfHandler) -> DeviceTlsSettings:
        tls = config.tls
        return DeviceTlsSettings.from_files(
            config.path(tls.cert),
            config.path(tls.key),
            manager_ca=[config.path(p) for p in tls.manager_ca],
            manager_crl=[config.path(p) for p in tls.manager_crl],
            manager_fingerprints=tls.manager_fingerprints,
            handler=handler,
            auth_timeout=config.auth_timeout,
            keepalive=config.keepalive,
            max_message_size=config.max_message_size,
            minimum_version=tls.minimum_version,
            ciphers=tls.ciphers,
        )

    @staticmethod
    def _snmp_tls(config: AgentConfig, snmp: SnmpHandler | None) -> SnmpTlsService | None:
        """SNMP over TLS (RFC 6353), if an endpoint asks for it."""
        if not any(e.service == "snmp" for e in config.endpoints):
            return None
        if snmp is None:
            raise ConfigError("endpoints with service 'snmp' need [snmp] enabled = true")
        rules = config.snmp.cert_to_name
        if not rules:
            raise ConfigError(
                "SNMP over TLS needs [[snmp.cert_to_name]]: how a manager's certificate "
                "maps to its securityName"
            )
        return SnmpTlsService(snmp, rules)

    @staticmethod
    def _turn(
        config: AgentConfig, host_key: asyncssh.SSHKey, handler: NetconfHandler
    ) -> DeviceTurnSettings:
        keys = [parse_public_key(k) for k in config.turn.manager_host_keys]
        if not keys:
            raise ConfigError("turn endpoints need turn.manager_host_keys (the manager's host key)")
        return DeviceTurnSettings(
            user_key=host_key,  # one key, one identity, whichever orientation
            manager_host_keys=keys,
            handler=handler,
            auth_timeout=config.auth_timeout,
            keepalive=config.keepalive,
            algorithms=config.algorithms,
            username=config.turn.username,
            max_message_size=config.max_message_size,
        )

    def dial(self, endpoint: Endpoint) -> Awaitable[CallHomeConnection]:
        """Open a call-home connection to ``endpoint`` and serve it; done once the manager
        has authenticated."""
        host, port = address_of(endpoint)
        if endpoint.service == "snmp" and self.tls is not None and self.snmp_tls is not None:
            return dial_snmp_tls(host, port, self.tls, self.snmp_tls)
        if endpoint.orientation == "reverse-tls" and self.tls is not None:
            return dial_reverse_tls(host, port, self.tls)
        if endpoint.orientation == "turn" and self.turn is not None:
            return dial_turn(host, port, self.turn)
        return dial_reverse_ssh(host, port, self.ssh)

    def identities(self, endpoint: Endpoint, key_fingerprint: str) -> list[str]:
        """What a manager may know this device by on ``endpoint``: its key's fingerprint;
        over reverse-tls its certificate's, or the name a cert-to-name rule maps it to."""
        if endpoint.orientation != "reverse-tls" or self.tls is None:
            return [key_fingerprint]
        found = [str(self.tls.identity)] if self.tls.identity is not None else []
        return [*found, "x509-name:NAME where a cert-to-name rule maps its certificate"]
