"""``manager.toml``: the call-home listeners (reverse-ssh, reverse-tls, SNMP over TLS, turn),
the HTTP API and its tokens, jobs, terminals, notifications and retention."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from callhome.config.common import (
    DEFAULT_API_PORT,
    DEFAULT_SNMP_TLS_PORT,
    DEFAULT_SSH_PORT,
    DEFAULT_TLS_PORT,
    DEFAULT_TURN_PORT,
    CertToNameRule,
    KeepaliveConfig,
    SshAlgorithms,
    _Model,
    _TlsCompat,
)


class Credential(_Model):
    """A key the manager presents to the devices bound to it (RFC 8071 C7: chosen by device key).

    The SSH user name is the manager-wide ``manager.username``.
    """

    key: Path = Field(description="Private key file (OpenSSH format) of this credential.")


class ManagerTlsSection(_TlsCompat):
    """The reverse-tls listener (RFC 8071 section 4, NETCONF over TLS, RFC 7589). Off unless
    ``listen`` is set."""

    listen: list[str] = Field(
        default_factory=list,
        description=f"host:port pairs to accept reverse-tls call home on (IANA port "
        f"{DEFAULT_TLS_PORT}); empty: off.",
    )
    cert: Path = Field(
        Path("tls/manager.crt"),
        description="The manager's client certificate (PEM; chain certificates may follow).",
    )
    key: Path = Field(Path("tls/manager.key"), description="Its private key (PEM).")
    ca: list[Path] = Field(
        default_factory=list,
        description="CA certificate files (PEM) that issue device certificates.",
    )
    crl: list[Path] = Field(
        default_factory=list,
        description="CRL files (PEM or DER) of those CAs; re-read when they change.",
    )
    cert_to_name: list[CertToNameRule] = Field(
        default_factory=list,
        description="Rules mapping a CA-issued certificate to a device identity "
        "'x509-name:NAME'; other certificates are known by their fingerprint.",
    )
    allow_pinned: bool = Field(
        True,
        description="Consider certificates not issued by a configured CA (self-signed ...), "
        "known by their fingerprint like SSH keys; false: refuse them.",
    )
    snmp_listen: list[str] = Field(
        default_factory=list,
        description="host:port pairs to accept SNMP over TLS call home on (RFC 6353 TLSTM, "
        f"device as TLS server; default port {DEFAULT_SNMP_TLS_PORT}); empty: off. The "
        "certificate, CAs and rules above apply to it as well.",
    )
    snmp_security_name: str = Field(
        "",
        max_length=32,
        description="The manager's own securityName for SNMP over TLS (logged with each "
        "session; the device derives its own from this manager's certificate); default: the "
        "CN of the manager's certificate.",
    )


class ManagerTurnSection(_Model):
    """The turn listener (the seed's section 7): an SSH server devices log in to and open
    the ``netconf-turn`` subsystem on. Off unless ``listen`` is set."""

    listen: list[str] = Field(
        default_factory=list,
        description=f"host:port pairs of the turn SSH server (default port {DEFAULT_TURN_PORT}"
        "); empty: off.",
    )
    host_key: Path = Field(
        Path("turn_host_key"), description="Its SSH host key; generated on first start (0600)."
    )


class ManagerSnmpSection(_Model):
    """``[manager.snmp]``: MIB modules, so that ``callhome snmp`` takes and shows names
    (``sysDescr.0``, ``SNMPv2-MIB::sysName.0``) as well as numeric OIDs."""

    mib_dirs: list[Path] = Field(
        default_factory=list,
        description="Folders of MIB modules: ASN.1 source files (compiled with pysmi on first "
        "use into mib-cache/ under state_dir, again when a source changes) or modules already "
        "compiled for pysnmp (NAME.py). A module's imports are looked up here too.",
    )
    mib_modules: list[str] = Field(
        default_factory=list,
        description="MIB modules to load by name (e.g. IF-MIB); SNMPv2-MIB is always loaded. "
        "One that cannot be found or compiled stops the manager at start.",
    )


class GuardSection(_Model):
    """``[manager.guard]``: what the listeners do against floods before authentication
    (``callhome.net.guard``); ``max_unauthenticated`` and ``handshake_timeout`` are in
    ``[manager]``."""

    first_bytes_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds a device has to send its SSH version line before the "
        "connection is dropped (reverse-ssh, turn).",
    )
    max_per_source: int = Field(
        32, ge=1, description="Handshakes one address may have in progress at once."
    )
    min_penalty: float = Field(
        15.0,
        ge=0,
        description="Seconds of penalty an address may owe before its connections are "
        "refused (a failed handshake owes 1, a silent one 5; one second wears off per second); "
        "likewise a device, by its identity, whose sessions it ended by breaking the protocol "
        "(5 each).",
    )
    max_penalty: float = Field(
        60.0, gt=0, description="Most seconds of penalty an address or a device owes."
    )
    trusted: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR) exempt from max_per_source and penalties, e.g. a NAT "
        "with many devices behind one address.",
    )
    log_interval: float = Field(
        10.0, gt=0, description="Seconds between two log lines that count what was dropped."
    )

    @field_validator("trusted")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError as exc:
                raise ValueError(f"not a network: {text!r} ({exc})") from None
        return value


class ManagerSection(_Model):
    """The call-home listener."""

    listen: list[str] = Field(
        default_factory=lambda: [f"0.0.0.0:{DEFAULT_SSH_PORT}", f"[::]:{DEFAULT_SSH_PORT}"],
        description="host:port pairs to accept reverse-ssh call-home connections on.",
    )
    public_addresses: list[str] = Field(
        default_factory=list,
        description="host:port names devices dial to reach this manager when that is not the "
        "address a listener is bound to (a DNS name, a NAT's or load balancer's address). "
        "`callhome schedule` finds the device's call-home client whose endpoint is one of "
        "these, or the address the connection reached.",
    )
    username: str = Field("callhome", description="Default SSH user name toward devices.")
    key: Path = Field(Path("manager_key"), description="Default SSH private key toward devices.")
    credentials: dict[str, Credential] = Field(
        default_factory=dict,
        description="Named credential sets; a device bound to one uses it instead of the default.",
    )
    handshake_timeout: float = Field(
        20.0, gt=0, description="Seconds an accepted socket may take to finish SSH and hello."
    )
    rpc_timeout: float = Field(60.0, gt=0, description="Seconds to wait for a device's reply.")
    max_message_size: int = Field(
        4 * 1024 * 1024,
        ge=4096,
        description="Largest NETCONF message accepted from a device, in bytes (raise it for "
        "devices whose get replies are bigger).",
    )
    max_elements: int = Field(
        250_000,
        ge=100,
        description="Most XML elements (tags) in one message from a device: a message of "
        "millions of tiny elements takes seconds to parse.",
    )
    max_notification_size: int = Field(
        1024 * 1024, ge=1024, description="Largest NETCONF notification accepted, in bytes."
    )
    notification_rate: float = Field(
        256 * 1024,
        gt=0,
        description="Bytes per second of notifications a device may send on average, across "
        "its sessions; one that sends more has its session closed, with the reason.",
    )
    notification_burst: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="Bytes of notifications a device may send at once, above the rate.",
    )
    max_unauthenticated: int = Field(
        256, ge=1, description="Connections allowed at once in handshake (flood guard)."
    )
    max_pending: int = Field(
        1000,
        ge=1,
        description="Pending devices (unknown keys that called, waiting for approval) kept "
        "at most; past it the least recently seen are forgotten, down to nine tenths of it, "
        "a pending-evicted event saying how many (a device evicted is pending again when it "
        "calls again).",
    )
    log_interval: float = Field(
        30.0,
        gt=0,
        description="Seconds over which the log lines of connects, disconnects, refusals and "
        "protocol errors are limited: one per kind and device (or host), and log_burst per "
        "kind; those held back are counted in the next line.",
    )
    log_burst: int = Field(
        20, ge=1, description="Log lines of one kind (connects ...) written per log_interval."
    )
    periodic_linger: float | None = Field(
        5.0,
        description="Seconds a periodic device's NETCONF session is kept once there is nothing "
        "left to do (no job queued or running, no reply awaited, notification replay complete "
        "or not awaited, no terminal, command or forward open) before the manager ends it with "
        "<close-session>, so that the device calls again at its next anchor + n x period. "
        "Anything done meanwhile starts the wait again; 0 ends it as soon as it is idle; a "
        "negative value or none never (the device's own idle-timeout then ends it). A replay "
        "that never completes is waited for at most periodic_linger + rpc_timeout seconds.",
    )
    keepalive: KeepaliveConfig = Field(default_factory=KeepaliveConfig)
    algorithms: SshAlgorithms = Field(default_factory=SshAlgorithms)
    guard: GuardSection = Field(default_factory=GuardSection)
    tls: ManagerTlsSection = Field(default_factory=ManagerTlsSection)
    turn: ManagerTurnSection = Field(default_factory=ManagerTurnSection)
    snmp: ManagerSnmpSection = Field(default_factory=ManagerSnmpSection)


class ApiSection(_Model):
    """The manager's HTTP API, used by the CLI."""

    listen: str = Field(
        f"127.0.0.1:{DEFAULT_API_PORT}", description="host:port of the HTTP API (loopback!)."
    )
    token_file: Path = Field(
        Path("api-token"), description="File holding the bearer token (created 0600)."
    )
    client_file: Path | None = Field(
        None,
        description="If set, the manager writes the API address and token here (0600) for the "
        "CLI, e.g. ~/.config/callhome/client.toml.",
    )
    tokens_file: Path = Field(
        Path("api-tokens.toml"),
        description="Further bearer tokens with their rights ([[token]] name, sha256, rights); "
        "optional. The token in token_file is the admin token and has every right.",
    )


class JobsSection(_Model):
    """Durable jobs: every operation asked of a device."""

    max_queued_per_device: int = Field(
        1000, ge=1, description="Queued jobs one device may have; more are refused."
    )
    default_expiry: float = Field(
        7 * 86400.0,
        ge=0,
        description="Seconds a job may wait for its device before it expires (0: never).",
    )


class TerminalSection(_Model):
    """Terminals, commands and forwards opened through the manager."""

    record: str | None = Field(
        None,
        description="If set, record each terminal in asciicast v2 format to this path "
        "template (relative to state_dir); fields {device}, {actor}, {time}, {id}.",
    )
    buffer: int = Field(
        256 * 1024,
        ge=4096,
        description="Bytes read from a device channel and not yet sent on to the operator "
        "before reading that channel pauses (back-pressure).",
    )


Right = Literal["read", "operate", "terminal"]


class ApiToken(_Model):
    """One entry of ``api-tokens.toml``: a named bearer token and what it may do."""

    name: str = Field(min_length=1, description="Who holds it; recorded as token:NAME.")
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the token, in lower-case hex."
    )
    rights: list[Right] = Field(
        default_factory=lambda: list[Right](["read"]),
        description="read: GET routes; operate: changes and NETCONF jobs; terminal: shell, "
        "exec and forwards.",
    )


class ApiTokens(_Model):
    """``api-tokens.toml``: ``[[token]]`` tables."""

    token: list[ApiToken] = Field(default_factory=list)


class ManagerNotificationsSection(_Model):
    """``[notifications]``: NETCONF notifications (RFC 5277) from devices."""

    subscribe: bool = Field(
        True,
        description="On every connection of a device that offers :notification, subscribe "
        "to its NETCONF stream (replaying from the last notification stored for it).",
    )
    lookback: float | None = Field(
        None,
        ge=0,
        description="First subscription to a device (none stored yet): replay this many "
        "seconds of its log; None asks for no replay, only what comes from then on.",
    )
    max_content: int = Field(
        65536,
        ge=256,
        description="Largest notification XML stored in an event, in bytes; longer is cut.",
    )


class RetentionRule(_Model):
    """How long one kind of record is kept: whichever limit is reached first applies."""

    max_age: float = Field(
        30.0, ge=0, description="Days a record is kept after it was made (0: no age limit)."
    )
    max_rows: int = Field(
        1_000_000, ge=0, description="Records kept at most, the newest (0: no such limit)."
    )


class RetentionSection(_Model):
    """``[retention]``: what the manager prunes, at start and every ``interval``: events,
    finished jobs (never a queued or running one; by when they finished) and the audit log."""

    interval: float = Field(
        3600.0, gt=0, description="Seconds between two prunes (one runs at start too)."
    )
    batch: int = Field(
        1000,
        ge=1,
        description="Rows deleted per transaction, so that pruning never holds the database "
        "for long (other work goes between batches).",
    )
    events: RetentionRule = Field(default_factory=RetentionRule)
    jobs: RetentionRule = Field(default_factory=RetentionRule)
    audit: RetentionRule = Field(default_factory=RetentionRule)


class ManagerConfig(_Model):
    """``manager.toml``."""

    state_dir: Path = Field(Path("."), description="Folder for keys, database and token.")
    database: str | None = Field(
        None,
        description="SQLAlchemy URL (sqlite:///..., postgresql+asyncpg://...); default: SQLite "
        "file manager.db in state_dir, driven from a worker thread (the fastest way here).",
    )
    manager: ManagerSection = Field(default_factory=ManagerSection)
    api: ApiSection = Field(default_factory=ApiSection)
    jobs: JobsSection = Field(default_factory=JobsSection)
    terminal: TerminalSection = Field(default_factory=TerminalSection)
    notifications: ManagerNotificationsSection = Field(default_factory=ManagerNotificationsSection)
    retention: RetentionSection = Field(default_factory=RetentionSection)

    def path(self, p: Path) -> Path:
        """A path from the config, relative to state_dir unless absolute."""
        return p if p.is_absolute() else self.state_dir / p

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.path(Path('manager.db'))}"
