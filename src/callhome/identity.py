"""Who a peer is: the one type the registry, the audit log and authorization share.

An identity is never an address or a port (they change: that is the point of call home).
For SSH it is the SHA-256 fingerprint of the public key, written as OpenSSH writes it
(``SHA256:`` and unpadded base64), so that operators can compare it with ``ssh-keygen -lf``.
For TLS it is the SHA-256 fingerprint of the certificate as ``openssl x509 -fingerprint
-sha256`` prints it (``SHA256:AB:CD:...``), or ``x509-name:NAME`` for a certificate a CA
issued and a cert-to-name rule mapped. :func:`parse_identity` checks what an operator typed.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from callhome.errors import ConfigError

IdentityKind = Literal["ssh-key", "x509"]

SSH_PREFIX = "SHA256:"
MAPPED_PREFIX = "x509-name:"
MAX_MAPPED_NAME = 1024
_SSH_FINGERPRINT = re.compile(r"[A-Za-z0-9+/]{43}")
_CERT_FINGERPRINT = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){31}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FORMS = (
    "an SSH key's SHA256: and 43 base64 characters (as ssh-keygen -lf prints it), a "
    "certificate's SHA256: and 32 colon-separated hex bytes (as openssl x509 -fingerprint "
    "-sha256 prints it), or x509-name:NAME"
)


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


def is_identity(text: str) -> bool:
    """Whether ``text`` is meant as an identity rather than a device name (names have no
    ``:``, identities always do)."""
    return ":" in text


def parse_identity(text: str) -> str:
    """An identity an operator typed, in the form the registry stores; ConfigError saying
    what is wrong and what is expected otherwise.

    ``SHA256:`` + 43 base64 characters is an SSH key fingerprint (kept as typed: base64 is
    case-sensitive); ``SHA256:`` + 32 colon-separated hex bytes a certificate fingerprint
    (upper-cased, as openssl prints it); ``x509-name:NAME`` a mapped certificate name
    (NAME not empty, no control characters, no space at either end).
    """
    if text[: len(SSH_PREFIX)].upper() == SSH_PREFIX:
        body = text[len(SSH_PREFIX) :]
        if _SSH_FINGERPRINT.fullmatch(body):
            return SSH_PREFIX + body
        if _CERT_FINGERPRINT.fullmatch(body):
            return SSH_PREFIX + body.upper()
        if ":" in body:
            why = "a certificate fingerprint is 32 hex bytes separated by ':'"
        elif body.endswith("="):
            why = "an SSH key fingerprint has no '=' padding"
        elif len(body) != 43:
            why = f"an SSH key fingerprint is 43 base64 characters, not {len(body)}"
        else:
            why = "an SSH key fingerprint has only A-Z, a-z, 0-9, '+' and '/'"
        raise ConfigError(f"not a device identity: {_shown(text)} ({why}); expected {_FORMS}")
    if text.startswith(MAPPED_PREFIX):
        name = text[len(MAPPED_PREFIX) :]
        if not name or name != name.strip() or _CONTROL.search(name):
            why = "the name is empty, has a space at an end or a control character"
        elif len(name) > MAX_MAPPED_NAME:
            why = f"the name is longer than {MAX_MAPPED_NAME} characters"
        else:
            return text
        raise ConfigError(f"not a device identity: {_shown(text)} ({why}); expected {_FORMS}")
    raise ConfigError(f"not a device identity: {_shown(text)}; expected {_FORMS}")


def _shown(text: str) -> str:
    return repr(text if len(text) <= 100 else text[:100] + "...")
