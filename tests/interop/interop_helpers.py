"""Helpers of the interop tests: where peers are, manager key pairs, fingerprints.

``require`` (skip naming a missing peer) lives in ``tests/peers.py``, shared with the
integration tests, and is re-exported here.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from callhome.cli.setup import init_manager
from peers import require, require_sshd_runtime

__all__ = [
    "NETCONFD",
    "NETCONF_SUBSYSTEM",
    "SSHD",
    "KeyPair",
    "make_manager_key",
    "require",
    "require_sshd_runtime",
    "ssh_fingerprint",
]

SSHD = "/usr/sbin/sshd"
NETCONFD = "/usr/sbin/netconfd"
NETCONF_SUBSYSTEM = "/usr/sbin/netconf-subsystem"


def ssh_fingerprint(public_key_file: Path) -> str:
    """The SHA256 fingerprint ``ssh-keygen -lf`` prints for a public key file."""
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(public_key_file)],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    fingerprint = out.split()[1]
    assert fingerprint.startswith("SHA256:"), out
    return fingerprint


@dataclass
class KeyPair:
    """A manager's SSH key pair on disk."""

    private: Path
    public_line: str


def make_manager_key(directory: Path) -> KeyPair:
    """A fresh manager key pair, written the way ``callhome init manager`` writes it."""
    line = init_manager(directory, ["127.0.0.1:0"], "127.0.0.1:0")
    return KeyPair(directory / "manager_key", line)


NETCONF_BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
EOM = b"]]>]]>"


def netconf_script(*rpc_bodies: str) -> bytes:
    """A NETCONF 1.0 client's whole side of a session, end-of-message framed (RFC 6242
    S4.3): its hello, then each body as an rpc with message-id 1, 2, ..."""
    hello = (
        f'<?xml version="1.0" encoding="UTF-8"?><hello xmlns="{NETCONF_BASE_NS}"><capabilities>'
        "<capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>"
    )
    rpcs = [
        f'<rpc xmlns="{NETCONF_BASE_NS}" message-id="{n}">{body}</rpc>'
        for n, body in enumerate(rpc_bodies, 1)
    ]
    return EOM.join(m.encode() for m in [hello, *rpcs]) + EOM


def netconf_messages(data: bytes) -> list[str]:
    """The complete end-of-message framed messages in ``data``."""
    return [m.decode() for m in data.split(EOM)[:-1]]
