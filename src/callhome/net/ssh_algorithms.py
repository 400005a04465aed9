"""``[algorithms]`` as asyncssh connection options, for either end of an SSH connection.

The names were checked against asyncssh when the configuration was loaded
(:class:`~callhome.config.SshAlgorithms`); here they become options, the host keys a
server offers are narrowed to the signatures allowed, and legacy algorithms an operator
listed are logged once per listener or device setting, at start.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncssh

from callhome.config import SshAlgorithms
from callhome.errors import ConfigError

log = logging.getLogger(__name__)


def _common(algorithms: SshAlgorithms) -> dict[str, Any]:
    return {
        "kex_algs": list(algorithms.kex),
        "encryption_algs": list(algorithms.ciphers),
        "mac_algs": list(algorithms.macs),
        "signature_algs": list(algorithms.signatures),
    }


def client_algorithm_options(algorithms: SshAlgorithms) -> dict[str, Any]:
    """Options of an SSH client: it also accepts only host keys that sign with these."""
    return {**_common(algorithms), "server_host_key_algs": list(algorithms.signatures)}


def server_algorithm_options(algorithms: SshAlgorithms) -> dict[str, Any]:
    """Options of an SSH server (its host key algorithms: see ``restrict_host_keys``)."""
    return _common(algorithms)


def restrict_host_keys(
    options: asyncssh.SSHServerConnectionOptions, algorithms: SshAlgorithms
) -> None:
    """Offer a host key only with the signature algorithms allowed (an RSA key offers
    rsa-sha2-512 and rsa-sha2-256, not ssh-rsa, unless ssh-rsa is listed); ConfigError if
    that leaves the server no host key algorithm at all."""
    allowed = {name.encode("ascii") for name in algorithms.signatures}
    offered = options.server_host_keys
    for alg in [alg for alg in offered if alg not in allowed]:
        del offered[alg]
    if not offered:
        raise ConfigError(
            "no host key algorithm left: the host key signs with none of [algorithms] "
            f"signatures ({', '.join(algorithms.signatures)})"
        )


def warn_legacy(algorithms: SshAlgorithms, where: str) -> None:
    """Log a warning naming each legacy algorithm (CBC, RC4, SHA-1, MD5, DSA) listed."""
    legacy = algorithms.legacy()
    if legacy:
        log.warning(
            "%s: [algorithms] allows legacy algorithms, only for peers that offer nothing "
            "better: %s",
            where,
            ", ".join(f"{kind} {name} ({reason})" for kind, name, reason in legacy),
        )
