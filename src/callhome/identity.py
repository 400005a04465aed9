"""Who a peer is: the one type the registry, the audit log and authorization share.

An identity is never an address or a port (they change: that is the point of call home).
For SSH it is the SHA-256 fingerprint of the public key, written as OpenSSH writes it
(``SHA256:`` and unpadded base64), so that operators can compare it with ``ssh-keygen -lf``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Literal

IdentityKind = Literal["ssh-key", "x509"]


def ssh_fingerprint(public_blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key in SSH wire format."""
    digest = hashlib.sha256(public_blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


@dataclass(frozen=True, slots=True)
class Identity:
    """A peer's identity: its kind, a fingerprint and the key or certificate type."""

    kind: IdentityKind
    fingerprint: str
    key_type: str

    @classmethod
    def from_ssh_public_blob(cls, key_type: str, public_blob: bytes) -> Identity:
        return cls("ssh-key", ssh_fingerprint(public_blob), key_type)

    def __str__(self) -> str:
        return self.fingerprint
