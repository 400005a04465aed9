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
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from callhome.errors import ConfigError

DEFAULT_SSH_PORT = 4334
"""IANA port for NETCONF Call Home over SSH (RFC 8071)."""
DEFAULT_TLS_PORT = 4335
"""IANA port for NETCONF Call Home over TLS (RFC 8071)."""
DEFAULT_API_PORT = 4380
"""Port of the manager's HTTP API, on loopback by default."""


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


class AgentConfig(_Model):
    """``agent.toml``."""

    state_dir: Path = Field(Path("."), description="Folder for host key and datastore.")
    host_key: Path = Field(
        Path("ssh_host_ed25519_key"), description="Host key; generated on first start (0600)."
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
    max_message_size: int = Field(16 * 1024 * 1024, ge=4096)
    datastore: Path = Field(Path("running.xml"), description="The running datastore file.")
    list_keys: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Lists of the schemaless datastore and their key leaves, by element name "
        "('{namespace}name' or 'name'); an empty list marks a single-instance container. "
        "Undeclared elements whose first child is a leaf are keyed by that leaf.",
    )

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
