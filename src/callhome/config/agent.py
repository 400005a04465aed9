"""``agent.toml``: the device's endpoints and reconnect strategy, its keys and TLS, access
rights, managers, SNMP, notifications and YANG modules."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from callhome.config.common import (
    DEFAULT_SNMP_TLS_PORT,
    DEFAULT_TURN_PORT,
    CertToNameRule,
    KeepaliveConfig,
    SshAlgorithms,
    _Model,
    _TlsCompat,
    parse_hostport,
)


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
    client: str = Field(
        "default",
        min_length=1,
        description="The call-home client (a netconf-client entry of ietf-netconf-server in "
        "running) this endpoint belongs to: its connection-type is the schedule kept while "
        "connected through it, and its endpoints list this one.",
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


STANDARD_MODULE_FOLDERS = (
    "/usr/share/yuma/modules/ietf",
    "/usr/share/yang/modules",
    "/usr/share/yang/modules/ietf",
    "/usr/share/yang/modules/libyang",
    f"{sys.prefix}/share/yang/modules/ietf",
)
"""Where systems keep the IETF modules' texts: Debian's libyuma-base (with netconfd), the
conventional folder and libyang's, pyang's (PyPI) in the environment."""


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
    standard_modules: list[Path] = Field(
        default_factory=lambda: [Path(p) for p in STANDARD_MODULE_FOLDERS],
        description="Folders where the system keeps the IETF modules the agent's own code "
        "implements (ietf-netconf, ietf-netconf-monitoring, ietf-netconf-acm ...): their "
        "texts are served by get-schema when found here by name and revision. Folders that do "
        "not exist are skipped.",
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
