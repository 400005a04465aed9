"""``callhome init``: write a commented config and keys for a manager or a device."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from callhome.config import DEFAULT_API_PORT, DEFAULT_SSH_PORT, DEFAULT_TLS_PORT, DEFAULT_TURN_PORT
from callhome.errors import ConfigError
from callhome.net.keys import ensure_key, identity_of, public_line, write_private

MANAGER_TOML = """\
# callhome manager configuration. Paths are relative to state_dir.
state_dir = "."
# database = "sqlite+aiosqlite:///manager.db"   # default: manager.db in state_dir

[manager]
# Where devices call home (reverse-ssh, RFC 8071; IANA port {ssh_port}).
listen = {listen}
# The SSH user name and key the manager presents to devices.
username = "callhome"
key = "manager_key"
# Seconds a device may take to finish SSH and the NETCONF hello.
handshake_timeout = 20.0
# Seconds to wait for a device's reply to one operation.
rpc_timeout = 60.0

[manager.keepalive]
interval = 15.0
count_max = 3

[api]
# The HTTP API the CLI uses. Keep it on loopback.
listen = "{api}"
token_file = "api-token"
{client_file}"""

AGENT_TOML = """\
# callhome device (agent) configuration. Paths are relative to state_dir.
state_dir = "."
host_key = "ssh_host_ed25519_key"
datastore = "running.xml"
# Close the connection if the manager has not authenticated by then (RFC 8071 S5).
auth_timeout = 30.0

# Managers this device accepts (OpenSSH public key lines).
manager_keys = [
{keys}]

# Managers to call, in order (failover).
{endpoints}
[reconnect]
start_with = "first-listed"   # first-listed | last-connected | random-selection
max_attempts = 3              # attempts per endpoint before the next one
max_wait = 30.0               # seconds one attempt may take
backoff_initial = 0.5
backoff_max = 60.0

[keepalive]
interval = 15.0
count_max = 3

# Lists of the schemaless datastore and their key leaves ({{namespace}}name), and containers
# that exist once (empty list). Undeclared elements starting with a leaf are keyed by it.
[list_keys]
{list_keys}"""


CONFIG_FILES = {"manager": "manager.toml", "agent": "agent.toml"}


def existing_config(directory: Path, role: str) -> Path | None:
    """The config file ``callhome init ROLE DIR`` would write, if it is there already
    (the CLI then refuses to overwrite it unless told to; keys are never overwritten)."""
    path = directory / CONFIG_FILES[role]
    return path if path.exists() else None


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def init_manager(
    directory: Path,
    listen: list[str] | None = None,
    api: str | None = None,
    client_file: Path | None = None,
    *,
    tls_listen: Sequence[str] = (),
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    tls_ca: Sequence[Path] = (),
    tls_crl: Sequence[Path] = (),
    tls_map: str = "san-dns-name",
    turn_listen: Sequence[str] = (),
) -> str:
    """Write manager.toml and the manager key; returns the public key line for devices.

    With ``tls_listen`` the reverse-tls listener is on (certificate and key needed; each CA
    gets a cert-to-name rule of ``tls_map``); with ``turn_listen`` the turn SSH server is on
    (its host key is written to ``turn_host_key``).
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ensure_key(directory / "manager_key")
    listen = listen or [f"0.0.0.0:{DEFAULT_SSH_PORT}", f"[::]:{DEFAULT_SSH_PORT}"]
    text = MANAGER_TOML.format(
        ssh_port=DEFAULT_SSH_PORT,
        listen="[" + ", ".join(_toml_str(a) for a in listen) + "]",
        api=api or f"127.0.0.1:{DEFAULT_API_PORT}",
        client_file=(
            "# Where the manager leaves the API address and token for the CLI (0600).\n"
            f"client_file = {_toml_str(str(client_file))}\n"
            if client_file
            else "# Where the manager leaves the API address and token for the CLI (0600);\n"
            "# absolute, or relative to state_dir. Unset: the CLI needs --api and --token.\n"
            '# client_file = "/home/me/.config/callhome/client.toml"\n'
        ),
    )
    text += _manager_orientations(
        directory, tls_listen, tls_cert, tls_key, tls_ca, tls_crl, tls_map, turn_listen
    )
    write_private(directory / "manager.toml", text.encode())
    return public_line(key, "callhome-manager")


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_toml_str(v) for v in values) + "]"


def _abs(path: Path) -> str:
    return _toml_str(str(path.expanduser().resolve()))


def _manager_orientations(
    directory: Path,
    tls_listen: Sequence[str],
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Sequence[Path],
    tls_crl: Sequence[Path],
    tls_map: str,
    turn_listen: Sequence[str],
) -> str:
    from callhome.net.pki import file_fingerprint

    if tls_listen and (tls_cert is None or tls_key is None):
        raise ConfigError("a reverse-tls listener needs the manager's certificate and key")
    out = [
        "",
        f"# reverse-tls (RFC 8071 section 4, NETCONF over TLS; IANA port {DEFAULT_TLS_PORT}):",
        "# off while listen is empty. Devices are known by certificate fingerprint, or, when",
        "# issued by a CA below and mapped by a cert-to-name rule, as x509-name:NAME.",
        "[manager.tls]",
        f"listen = {_toml_list(tls_listen)}",
        f"cert = {_abs(tls_cert)}" if tls_cert else '# cert = "tls/manager.crt"',
        f"key = {_abs(tls_key)}" if tls_key else '# key = "tls/manager.key"',
        "ca = [" + ", ".join(_abs(p) for p in tls_ca) + "]",
        "crl = [" + ", ".join(_abs(p) for p in tls_crl) + "]",
        "allow_pinned = true",
    ]
    for ca in tls_ca:
        out += [
            "[[manager.tls.cert_to_name]]",
            f"fingerprint = {_toml_str(file_fingerprint(ca))}",
            f"map_type = {_toml_str(tls_map)}",
        ]
    if turn_listen:
        ensure_key(directory / "turn_host_key")
    out += [
        "",
        "# turn (the seed's section 7): devices log in to this SSH server and open the",
        f"# netconf-turn subsystem; off while listen is empty (port {DEFAULT_TURN_PORT} here).",
        "[manager.turn]",
        f"listen = {_toml_list(turn_listen)}",
        'host_key = "turn_host_key"',
        "",
    ]
    return "\n".join(out)


def turn_host_key_line(directory: Path) -> str:
    """The turn server's host key line for devices (turn.manager_host_keys)."""
    return public_line(ensure_key(directory / "turn_host_key"), "callhome-manager-turn")


def init_agent(
    directory: Path,
    managers: list[str],
    manager_keys: list[str],
    list_keys: dict[str, list[str]] | None = None,
    *,
    orientation: str = "reverse-ssh",
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    manager_ca: Sequence[Path] = (),
    manager_crl: Sequence[Path] = (),
    manager_fingerprints: Sequence[str] = (),
    manager_host_keys: Sequence[str] = (),
) -> str:
    """Write agent.toml and the host key; returns the fingerprint to approve on the manager
    (for reverse-tls, the certificate's; its mapped name works too where a rule maps it)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ensure_key(directory / "ssh_host_ed25519_key")
    endpoints = "".join(
        f"[[endpoints]]\nname = {_toml_str(f'manager-{i + 1}')}\naddress = {_toml_str(m)}\n"
        + (f"orientation = {_toml_str(orientation)}\n\n" if orientation != "reverse-ssh" else "\n")
        for i, m in enumerate(managers)
    )
    keys = "".join(f"  {_toml_str(k.strip())},\n" for k in manager_keys)
    lists = (
        "".join(
            f"{_toml_str(name)} = [{', '.join(_toml_str(k) for k in key)}]\n"
            for name, key in (list_keys or {}).items()
        )
        or '# "{urn:example:if}interface" = ["{urn:example:if}name"]\n'
    )
    text = AGENT_TOML.format(keys=keys, endpoints=endpoints, list_keys=lists)
    fingerprint = identity_of(key).fingerprint
    if orientation == "reverse-tls":
        from callhome.net.pki import file_fingerprint, normalize_fingerprint

        if tls_cert is None or tls_key is None or not manager_ca:
            raise ConfigError("reverse-tls needs the device's certificate, key and manager CA")
        text += "\n".join(
            [
                "",
                "# reverse-tls: this device's certificate, and what it accepts of the manager",
                "[tls]",
                f"cert = {_abs(tls_cert)}",
                f"key = {_abs(tls_key)}",
                "manager_ca = [" + ", ".join(_abs(p) for p in manager_ca) + "]",
                "manager_crl = [" + ", ".join(_abs(p) for p in manager_crl) + "]",
                "manager_fingerprints = "
                + _toml_list([normalize_fingerprint(f) for f in manager_fingerprints]),
                "",
            ]
        )
        fingerprint = file_fingerprint(tls_cert)
    elif orientation == "turn":
        if not manager_host_keys:
            raise ConfigError("turn needs the manager's turn host key")
        keys_toml = "".join(f"  {_toml_str(k.strip())},\n" for k in manager_host_keys)
        text += (
            "\n# turn: this device logs in with its key (host_key) and checks the manager's\n"
            f'[turn]\nusername = "callhome"\nmanager_host_keys = [\n{keys_toml}]\n'
        )
    write_private(directory / "agent.toml", text.encode())
    return fingerprint
