"""What the manager's and the agent's configurations share: the default ports, the base
model, host:port parsing, SSH algorithms, keepalives, cert-to-name rules and TLS versions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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


class SshAlgorithms(_Model):
    """SSH algorithm preferences. Empty lists mean asyncssh's defaults."""

    kex: list[str] = Field(
        default_factory=lambda: ["curve25519-sha256", "curve25519-sha256@libssh.org"],
        description="Key exchange algorithms, most preferred first. Add "
        "'mlkem768x25519-sha256' for hybrid post-quantum key exchange (costs ~27% more CPU).",
    )
    ciphers: list[str] = Field(
        default_factory=lambda: ["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"],
        description="Encryption algorithms, most preferred first.",
    )


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
