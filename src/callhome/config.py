"""Typed configuration of the manager, the agent and the CLI.

Each model is loaded from a TOML file and may be overridden by environment variables
``CALLHOME_<SECTION>__<KEY>`` (for instance ``CALLHOME_API__LISTEN=127.0.0.1:9000``).
Relative paths in a file are taken relative to the file's folder.
"""

from __future__ import annotations

import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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


class Credential(_Model):
    """A key the manager presents to the devices bound to it (RFC 8071 C7: chosen by device key).

    The SSH user name is the manager-wide ``manager.username``.
    """

    key: Path = Field(description="Private key file (OpenSSH format) of this credential.")


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


class ManagerSection(_Model):
    """The call-home listener."""

    listen: list[str] = Field(
        default_factory=lambda: [f"0.0.0.0:{DEFAULT_SSH_PORT}", f"[::]:{DEFAULT_SSH_PORT}"],
        description="host:port pairs to accept reverse-ssh call-home connections on.",
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
        16 * 1024 * 1024, ge=4096, description="Largest NETCONF message accepted, in bytes."
    )
    max_unauthenticated: int = Field(
        256, ge=1, description="Connections allowed at once in handshake (flood guard)."
    )
    keepalive: KeepaliveConfig = Field(default_factory=KeepaliveConfig)
    algorithms: SshAlgorithms = Field(default_factory=SshAlgorithms)
    tls: ManagerTlsSection = Field(default_factory=ManagerTlsSection)
    turn: ManagerTurnSection = Field(default_factory=ManagerTurnSection)


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


def load_api_tokens(path: Path) -> list[ApiToken]:
    """The tokens listed in ``path``; none if the file does not exist."""
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text())
        return ApiTokens.model_validate(data).token
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc


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

    def path(self, p: Path) -> Path:
        """A path from the config, relative to state_dir unless absolute."""
        return p if p.is_absolute() else self.state_dir / p

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.path(Path('manager.db'))}"


class StartWith(StrEnum):
    """Which endpoint a device tries first (ietf-netconf-server reconnect-strategy)."""

    FIRST_LISTED = "first-listed"
    LAST_CONNECTED = "last-connected"
    RANDOM_SELECTION = "random-selection"


class ReconnectConfig(_Model):
    """How the device redials (ietf-netconf-server reconnect-strategy, plus back-off)."""

    start_with: StartWith = Field(StartWith.FIRST_LISTED, description="First endpoint to try.")
    max_attempts: int = Field(3, ge=1, description="Attempts per endpoint before the next one.")
    max_wait: float = Field(
        30.0, gt=0, description="Seconds to wait for one connection attempt to be accepted."
    )
    backoff_initial: float = Field(0.5, gt=0, description="First back-off delay, seconds.")
    backoff_max: float = Field(60.0, gt=0, description="Cap on the back-off delay, seconds.")
    backoff_jitter: float = Field(0.5, ge=0, le=1, description="Random share of each delay.")


class Endpoint(_Model):
    """One manager endpoint the device dials."""

    name: str = Field("", description="A label for logs and events.")
    address: str = Field(description="host:port of the manager's call-home listener.")
    orientation: Literal["reverse-ssh", "reverse-tls", "turn"] = Field(
        "reverse-ssh",
        description="reverse-ssh (RFC 8071, port 4334), reverse-tls (RFC 8071, port 4335) or "
        f"turn (the seed's section 7, port {DEFAULT_TURN_PORT} here).",
    )
    service: Literal["netconf", "snmp"] = Field(
        "netconf",
        description="What this connection carries. 'snmp' (reverse-tls only): SNMP over TLS "
        f"(RFC 6353; default port {DEFAULT_SNMP_TLS_PORT}) instead of NETCONF; reverse-ssh "
        "and turn carry SNMP beside NETCONF whenever [snmp] is enabled.",
    )

    @model_validator(mode="after")
    def _service_fits(self) -> Endpoint:
        if self.service == "snmp" and self.orientation != "reverse-tls":
            raise ValueError("service 'snmp' is for reverse-tls endpoints")
        return self


class AgentTlsSection(_TlsCompat):
    """What a device needs for reverse-tls endpoints."""

    cert: Path = Field(
        Path("tls/device.crt"),
        description="The device's certificate (PEM), chain certificates after it.",
    )
    key: Path = Field(Path("tls/device.key"), description="Its private key (PEM).")
    manager_ca: list[Path] = Field(
        default_factory=list,
        description="Trust anchors for the manager's client certificate: CA certificates, or "
        "the manager's own certificate (pinned as it is).",
    )
    manager_crl: list[Path] = Field(
        default_factory=list, description="CRL files of those CAs (checked for the leaf)."
    )
    manager_fingerprints: list[str] = Field(
        default_factory=list,
        description="If set, the manager's certificate must also have one of these SHA-256 "
        "fingerprints (pinned).",
    )


class AgentTurnSection(_Model):
    """What a device needs for turn endpoints: it logs in with its key (``host_key``)."""

    username: str = Field("callhome", description="SSH user name toward the manager.")
    manager_host_keys: list[str] = Field(
        default_factory=list,
        description="Host keys (OpenSSH one-line format) of the managers' turn servers.",
    )


class Access(_Model):
    """What one manager key may open on the device besides NETCONF (``[[access]]``).

    Everything is off unless an entry for the manager's key allows it.
    """

    manager: str = Field(
        "",
        description="SHA256 fingerprint of the manager key this entry is for ('SHA256:...'), "
        "or '*' for every manager key the device accepts.",
    )
    group: str = Field(
        "",
        description="Instead of 'manager': every manager that [[managers]] puts in this group.",
    )
    shell: bool = Field(False, description="Allow interactive terminals (a PTY).")
    exec: bool = Field(False, description="Allow running commands (ssh exec requests).")
    forward: list[str] = Field(
        default_factory=list,
        description="host:port targets the manager may open TCP streams to (direct-tcpip), "
        "e.g. '127.0.0.1:22'. Nothing else is reachable.",
    )
    user: str = Field(
        "",
        description="Local user whose login shell runs terminals and commands "
        "(default: the agent's own user; another user needs the agent to run as root).",
    )
    command: str = Field(
        "",
        description="If set, terminals run this command line instead of the login shell "
        "(a restricted terminal); exec requests are still governed by 'exec'.",
    )

    @model_validator(mode="after")
    def _whom(self) -> Access:
        if bool(self.manager) == bool(self.group):
            raise ValueError("give either manager or group")
        return self

    @field_validator("forward")
    @classmethod
    def _targets(cls, value: list[str]) -> list[str]:
        for target in value:
            host, port = parse_hostport(target, 0)
            if not host or not port:
                raise ValueError(f"forward target {target!r} needs host:port")
        return value


class SnmpUser(_Model):
    """What one securityName (the manager's SSH user name, RFC 5592, or the name its TLS
    certificate maps to, RFC 6353) may read and write."""

    name: str = Field(
        "",
        description="The SSH user name the manager logs in with, or the securityName "
        "snmp.cert_to_name maps its certificate to (SNMP over TLS).",
    )
    group: str = Field(
        "",
        description="Instead of 'name': every manager that [[managers]] puts in this group.",
    )
    read: list[str] = Field(
        default_factory=lambda: ["1.3.6.1"],
        description="OID subtrees this user may read (GET, GETNEXT, GETBULK).",
    )
    write: list[str] = Field(
        default_factory=list,
        description="OID subtrees this user may write (SET); empty: read-only.",
    )

    @model_validator(mode="after")
    def _whom(self) -> SnmpUser:
        if bool(self.name) == bool(self.group):
            raise ValueError("give either name or group")
        return self

    @field_validator("read", "write")
    @classmethod
    def _numeric(cls, value: list[str]) -> list[str]:
        for oid in value:
            parts = oid.strip().lstrip(".").split(".")
            if not all(p.isdigit() for p in parts) or len(parts) < 1:
                raise ValueError(f"{oid!r} is not a numeric OID")
        return value


class UpsIdentConfig(_Model):
    """The upsIdent group of the UPS MIB (RFC 1628), for a device that is a UPS."""

    manufacturer: str = Field("", max_length=31, description="upsIdentManufacturer.")
    model: str = Field("", max_length=63, description="upsIdentModel.")
    software_version: str = Field("", max_length=63, description="upsIdentUPSSoftwareVersion.")


class SnmpTarget(_Model):
    """Where the device's notifications go: the ``snmp`` channel the manager keeps open on
    the call-home connection. Each target holds its own notifications in order."""

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The target's name (letters, digits, '_', '.', '-').",
    )
    policy: Literal["immediate", "deferred"] = Field(
        "deferred",
        description="'deferred': held until a connection exists; 'immediate': an away "
        "device dials at once (skipping its back-off) to deliver.",
    )
    inform: bool = Field(
        False, description="Send InformRequests (acknowledged, retried) instead of traps."
    )
    retries: int = Field(
        3, ge=0, le=100, description="Resends of an unacknowledged Inform per connection."
    )
    timeout: float = Field(5.0, gt=0, description="Seconds to wait for an Inform's Response.")
    user: str = Field(
        "",
        description="Send only on channels of this securityName (manager SSH user); "
        "empty: any manager channel.",
    )


class AgentSnmpSection(_Model):
    """SNMP over the call-home connection (RFC 5592 ``snmp`` subsystem, TSM): off by default."""

    enabled: bool = Field(False, description="Serve the snmp subsystem to managers.")
    users: list[SnmpUser] = Field(
        default_factory=list,
        description="Access by securityName (manager SSH user name); a user not listed gets "
        "authorizationError.",
    )
    engine_id: str = Field(
        "", description="snmpEngineID in hex; default: derived from the host key."
    )
    sys_descr: str = Field("", description="sysDescr; default: the host's uname.")
    sys_object_id: str = Field("0.0", description="sysObjectID (numeric OID).")
    sys_contact: str = Field("", max_length=255, description="sysContact (initial; writable).")
    sys_name: str = Field("", max_length=255, description="sysName (initial; default hostname).")
    sys_location: str = Field("", max_length=255, description="sysLocation (initial; writable).")
    state_file: Path = Field(
        Path("snmp-state.json"),
        description="Where written system objects and snmpEngineBoots are kept.",
    )
    interfaces: bool = Field(True, description="Serve IF-MIB ifNumber/ifTable from /sys/class/net.")
    max_message_size: int = Field(65535, ge=484, description="Largest SNMP message, in bytes.")
    ups_ident: UpsIdentConfig | None = Field(
        None, description="If set, serve upsIdent (RFC 1628) with these values."
    )
    targets: list[SnmpTarget] = Field(
        default_factory=list,
        description="Notification targets ([[snmp.targets]]); none: notifications are not kept.",
    )
    notify_buffer: Path = Field(
        Path("snmp-notify.sqlite"),
        description="The durable buffer of notifications not yet delivered (SQLite).",
    )
    cert_to_name: list[CertToNameRule] = Field(
        default_factory=list,
        description="SNMP over TLS: how a manager's certificate maps to its securityName "
        "(RFC 6353 snmpTlstmCertToTSNTable), tried in order; a certificate no rule maps is "
        "refused. The fingerprint is of the manager's certificate or a CA above it.",
    )
    notify_max_held: int = Field(
        1000,
        ge=1,
        description="Most notifications held per target; when full the oldest is dropped "
        "and counted (nlmStatsGlobalNotificationsBumped).",
    )

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, value: list[SnmpTarget]) -> list[SnmpTarget]:
        names = [t.name for t in value]
        if len(set(names)) != len(names):
            raise ValueError("notification target names must be unique")
        return value


class ManagerEntry(_Model):
    """Who one manager is on this device (``[[managers]]``): the user name and the groups its
    identity maps to, for NETCONF access control (RFC 8341), ``[[access]]`` and SNMP."""

    key: str = Field(
        "",
        description="reverse-ssh: the manager's public key (OpenSSH one-line format; it is then "
        "accepted like one in manager_keys) or its SHA256 fingerprint ('SHA256:...'; the key "
        "itself must be accepted some other way).",
    )
    certificate: str = Field(
        "",
        description="reverse-tls: the manager's client certificate, by SHA-256 fingerprint (any "
        "form tls.manager_fingerprints takes) or a PEM file (relative: to state_dir); it must "
        "be accepted by [tls] too.",
    )
    host_key: str = Field(
        "",
        description="turn: the manager's host key (OpenSSH one-line format) or its SHA256 "
        "fingerprint; it must be one of turn.manager_host_keys too.",
    )
    user: str = Field(
        "",
        description="The user name access control knows it by; default: its SSH user name "
        "(reverse-ssh), its certificate's CN (reverse-tls), turn.username (turn).",
    )
    groups: list[str] = Field(
        default_factory=list, description="Access-control groups it belongs to."
    )

    @field_validator("key", "certificate", "host_key")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def _one_identity(self) -> ManagerEntry:
        given = [n for n in ("key", "certificate", "host_key") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError("give exactly one of key, certificate, host_key")
        return self

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        for group in value:
            if not group.strip() or group == "*":
                raise ValueError(f"bad group name {group!r}")
        return value


class AgentNotificationsSection(_Model):
    """``[notifications]``: NETCONF notifications (RFC 5277, RFC 6470) the device sends."""

    enabled: bool = Field(True, description="Offer :notification and :interleave.")
    log: Path = Field(
        Path("notifications.log"),
        description="The replay log: an append-only file, each notification fsync'd.",
    )
    max_events: int = Field(10_000, ge=1, description="Most notifications the log keeps.")
    max_age: float = Field(
        7 * 86400.0, gt=0, description="Seconds a notification stays in the log at most."
    )


class YangSection(_Model):
    """``[yang]``: the device's YANG modules. Without modules the datastore is schemaless."""

    modules: list[Path] = Field(
        default_factory=list,
        description="YANG files (NAME.yang or NAME@REVISION.yang) and folders of them (*.yang) "
        "the device implements: advertised, served by get-schema, and configuration in their "
        "namespaces is validated against them. Folders are searched for imports too.",
    )
    search_path: list[Path] = Field(
        default_factory=list,
        description="More folders where imported modules and submodules are looked for; "
        "modules found only here are listed as imported, not implemented.",
    )
    features: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Features turned on: '*' (all of every module), 'MODULE:*' or "
        "'MODULE:FEATURE'; an empty list turns every feature off.",
    )


class AgentConfig(_Model):
    """``agent.toml``."""

    state_dir: Path = Field(Path("."), description="Folder for host key and datastore.")
    host_key: Path = Field(
        Path("ssh_host_ed25519_key"),
        description="The device's SSH key: its host key in reverse-ssh, its user key in turn "
        "(one identity either way); generated on first start (0600).",
    )
    endpoints: list[Endpoint] = Field(description="Manager endpoints in order (failover).")
    manager_keys: list[str] = Field(
        default_factory=list,
        description="Public keys (OpenSSH one-line format) of managers this device accepts.",
    )
    manager_keys_file: Path | None = Field(
        None, description="An authorized_keys file of managers this device accepts."
    )
    auth_timeout: float = Field(
        30.0, gt=0, description="Close if the manager has not authenticated by then (RFC 8071 S5)."
    )
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    keepalive: KeepaliveConfig = Field(default_factory=KeepaliveConfig)
    algorithms: SshAlgorithms = Field(default_factory=SshAlgorithms)
    tls: AgentTlsSection = Field(default_factory=AgentTlsSection)
    turn: AgentTurnSection = Field(default_factory=AgentTurnSection)
    max_message_size: int = Field(16 * 1024 * 1024, ge=4096)
    datastore: Path = Field(Path("running.xml"), description="The running datastore file.")
    list_keys: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Lists of the schemaless datastore and their key leaves, by element name "
        "('{namespace}name' or 'name'); an empty list marks a single-instance container. "
        "Undeclared elements whose first child is a leaf are keyed by that leaf.",
    )
    access: list[Access] = Field(
        default_factory=list,
        description="Terminal, exec and forwarding rights by manager key; none by default.",
    )
    managers: list[ManagerEntry] = Field(
        default_factory=list,
        description="User name and groups of each manager identity (one accepted otherwise is "
        "known by its SSH user name, certificate CN or turn.username, in no group).",
    )
    nacm_modules: dict[str, str] = Field(
        default_factory=dict,
        description="Namespace -> module name, for NACM rules' module-name and path prefixes "
        "(the schemaless datastore knows no modules of its own).",
    )
    nacm_allow_lockout: bool = Field(
        False,
        description="Start, and accept NACM rules, even when a manager would be allowed no "
        "operation or no manager could change the rules again.",
    )
    snmp: AgentSnmpSection = Field(default_factory=AgentSnmpSection)
    notifications: AgentNotificationsSection = Field(default_factory=AgentNotificationsSection)
    yang: YangSection = Field(default_factory=YangSection)

    @field_validator("endpoints")
    @classmethod
    def _some_endpoint(cls, value: list[Endpoint]) -> list[Endpoint]:
        if not value:
            raise ValueError("at least one manager endpoint is needed")
        return value

    def path(self, p: Path) -> Path:
        return p if p.is_absolute() else self.state_dir / p


M = TypeVar("M", bound=BaseModel)


def _apply_env(data: dict[str, Any], prefix: str = "CALLHOME_") -> dict[str, Any]:
    for key, value in os.environ.items():
        if not key.startswith(prefix) or "__" not in key:
            continue
        parts = key[len(prefix) :].lower().split("__")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    return data


def load(model: type[M], path: Path) -> M:
    """Load a config file into ``model``, with environment overrides; ConfigError on any fault."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    data = _apply_env(data)
    data.setdefault("state_dir", ".")
    state_dir = Path(data["state_dir"])
    if not state_dir.is_absolute():
        data["state_dir"] = str((path.parent / state_dir).resolve())
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc


def default_client_file() -> Path:
    """Where the CLI finds the API address and token unless told otherwise."""
    explicit = os.environ.get("CALLHOME_CLIENT_FILE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "callhome" / "client.toml"
