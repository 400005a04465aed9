"""What the manager's and the agent's configurations share: the default ports, the base
model, host:port parsing, SSH algorithms, keepalives, cert-to-name rules and TLS versions."""

from __future__ import annotations

import difflib
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from callhome.errors import ConfigError

DEFAULT_SSH_PORT = 4334
"""IANA port for NETCONF Call Home over SSH (RFC 8071)."""
DEFAULT_TLS_PORT = 4335
"""IANA port for NETCONF Call Home over TLS (RFC 8071)."""
DEFAULT_TURN_PORT = 4336
"""Port of the manager's SSH server for the turn orientation (the seed's section 7): this
project's choice, as no port is assigned; never 4334, where the manager is an SSH client."""
DEFAULT_API_PORT = 4380
"""Port of the manager's HTTP API, on loopback by default."""
DEFAULT_SNMP_TLS_PORT = 10162
"""Where the manager takes SNMP over TLS call home (RFC 6353, with the TLS roles reversed as
in RFC 8071): RFC 6353's snmptls-trap port, where a manager receives devices' TLS connections
and notifications. A host that also runs a standard TLS trap receiver moves one of them."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """Split ``host:port``, ``[v6]:port``, ``host`` or ``[v6]`` into (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ConfigError(f"bad address {text!r}: missing ']'")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ConfigError(f"bad port in {text!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"port out of range in {text!r}")
    return host, port


DEFAULT_KEX = [
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
]
"""OpenSSH 9.x's default key exchanges, less sntrup761x25519 (asyncssh has no sntrup761)."""
DEFAULT_CIPHERS = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "chacha20-poly1305@openssh.com",
]
"""OpenSSH 9.x's default ciphers, least CPU per MB first as bench/bench_ssh_ciphers.py
measures asyncssh: GCM, then CTR (with the MACs below), then chacha20-poly1305."""
DEFAULT_MACS = [
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
]
"""OpenSSH 9.x's default MACs less SHA-1: encrypt-then-MAC first, then the cheapest. Only a
CTR cipher uses one; the umac ones are left out where asyncssh has no UMAC (libnettle)."""
DEFAULT_SIGNATURES = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256",
]
"""OpenSSH 9.x's default host key and user key signatures, less certificates (identities
are keys here, not certificates): no ssh-rsa (SHA-1), no ssh-dss."""

AlgorithmKind = Literal["kex", "ciphers", "macs", "signatures"]
ALGORITHM_KINDS: tuple[AlgorithmKind, ...] = ("kex", "ciphers", "macs", "signatures")

_KIND_NAMES: dict[str, str] = {
    "kex": "key exchange",
    "ciphers": "cipher",
    "macs": "MAC",
    "signatures": "signature",
}


def legacy_reason(kind: AlgorithmKind, name: str) -> str | None:
    """Why ``name`` is a legacy algorithm (CBC, RC4, SHA-1, MD5, DSA), or None if it is not.

    Legacy algorithms are never in the defaults; an operator opts in by listing one."""
    if kind == "ciphers":
        if name.endswith("-cbc") or "-cbc@" in name:
            return "CBC"
        if name.startswith("arcfour"):
            return "RC4"
        return None
    if kind == "signatures":
        return {"ssh-rsa": "SHA-1", "ssh-dss": "DSA"}.get(name)
    if "md5" in name:
        return "MD5"
    if "sha1" in name:
        return "SHA-1"
    return None


def supported_algorithms(kind: AlgorithmKind) -> list[str]:
    """The names asyncssh accepts here for ``kind`` (what it has depends on the libraries
    installed: UMAC needs libnettle, ML-KEM a recent cryptography)."""
    from asyncssh.encryption import get_encryption_algs
    from asyncssh.kex import get_kex_algs
    from asyncssh.mac import get_mac_algs
    from asyncssh.public_key import get_public_key_algs

    getter = {
        "kex": get_kex_algs,
        "ciphers": get_encryption_algs,
        "macs": get_mac_algs,
        "signatures": get_public_key_algs,
    }[kind]
    return [name.decode("ascii") for name in getter()]


def _default_macs() -> list[str]:
    have = set(supported_algorithms("macs"))
    return [name for name in DEFAULT_MACS if name in have]


def _check_names(kind: AlgorithmKind, names: list[str]) -> list[str]:
    names = [name.strip() for name in names]
    if not names and kind != "macs":
        raise ValueError(f"list at least one {_KIND_NAMES[kind]} algorithm")
    supported = supported_algorithms(kind)
    for name in names:
        if name not in supported:
            close = difflib.get_close_matches(name, supported, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"unknown {_KIND_NAMES[kind]} algorithm {name!r}{hint} "
                f"(asyncssh here supports: {', '.join(supported)})"
            )
    return names


class SshAlgorithms(_Model):
    """SSH algorithms offered and accepted, most preferred first, on both ends of every SSH
    connection (reverse-ssh and turn). The defaults are what OpenSSH 9.x offers, less CBC,
    SHA-1 and DSA; listing a legacy algorithm is the way to allow it (logged at start)."""

    kex: list[str] = Field(
        default_factory=lambda: list(DEFAULT_KEX),
        description="Key exchange algorithms, most preferred first. Add "
        "'mlkem768x25519-sha256' (first) for hybrid post-quantum key exchange "
        "(costs ~27% more CPU per handshake).",
    )
    ciphers: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CIPHERS),
        description="Encryption algorithms, most preferred first.",
    )
    macs: list[str] = Field(
        default_factory=_default_macs,
        description="MAC algorithms, most preferred first (used with CTR and CBC ciphers only; "
        "GCM and chacha20-poly1305 carry their own).",
    )
    signatures: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SIGNATURES),
        description="Public key signature algorithms for host keys and user keys, most "
        "preferred first: what a host key may sign with, what a client key signs with.",
    )

    @field_validator("kex", "ciphers", "macs", "signatures")
    @classmethod
    def _known(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return _check_names(cast(AlgorithmKind, info.field_name), value)

    def legacy(self) -> list[tuple[AlgorithmKind, str, str]]:
        """(kind, name, reason) of every legacy algorithm listed."""
        found: list[tuple[AlgorithmKind, str, str]] = []
        for kind in ALGORITHM_KINDS:
            for name in getattr(self, kind):
                reason = legacy_reason(kind, name)
                if reason:
                    found.append((kind, name, reason))
        return found


class KeepaliveConfig(_Model):
    """SSH keepalives on every persistent call-home connection."""

    interval: float = Field(15.0, gt=0, description="Seconds between keepalive probes.")
    count_max: int = Field(3, ge=1, description="Unanswered probes before the peer is dead.")


MapType = Literal[
    "specified", "san-rfc822-name", "san-dns-name", "san-ip-address", "san-any", "common-name"
]


class CertToNameRule(_Model):
    """One cert-to-name rule (RFC 7407, as RFC 7589 uses it): certificate to device name.

    Rules are tried in order on a certificate whose chain verified to a configured CA;
    the first that yields a name wins.
    """

    fingerprint: str = Field(
        description="SHA-256 fingerprint ('SHA256:AB:CD:...', as `openssl x509 -fingerprint "
        "-sha256` prints it) of the device certificate or of any CA certificate in its chain."
    )
    map_type: MapType = Field(
        description="specified: the name below; san-rfc822-name, san-dns-name, "
        "san-ip-address: that subjectAltName; san-any: the first of those; common-name: the CN."
    )
    name: str = Field("", description="The name, for map_type 'specified'.")


TlsVersion = Literal["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]


class _TlsCompat(_Model):
    """The TLS versions and ciphers a call-home TLS connection allows."""

    minimum_version: TlsVersion = Field(
        "TLSv1.2",
        description="Oldest TLS version accepted. Below TLSv1.2 weakens security: only for an "
        "old peer that speaks nothing newer (Net-SNMP 5.9's tlstcp speaks TLS 1.0 only).",
    )
    ciphers: str = Field(
        "",
        description="OpenSSL cipher string for TLS 1.2 and older; empty: Python's defaults. "
        "'DEFAULT:@SECLEVEL=0' (needed with TLSv1) weakens security: only for old peers.",
    )
