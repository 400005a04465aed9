"""``callhome init``: write a commented config and keys for a manager or a device."""

from __future__ import annotations

from pathlib import Path

from callhome.config import DEFAULT_API_PORT, DEFAULT_SSH_PORT
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


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def init_manager(
    directory: Path,
    listen: list[str] | None = None,
    api: str | None = None,
    client_file: Path | None = None,
) -> str:
    """Write manager.toml and the manager key; returns the public key line for devices."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ensure_key(directory / "manager_key")
    listen = listen or [f"0.0.0.0:{DEFAULT_SSH_PORT}", f"[::]:{DEFAULT_SSH_PORT}"]
    text = MANAGER_TOML.format(
        ssh_port=DEFAULT_SSH_PORT,
        listen="[" + ", ".join(_toml_str(a) for a in listen) + "]",
        api=api or f"127.0.0.1:{DEFAULT_API_PORT}",
        client_file=(
            f"# Where the CLI finds the API address and token.\nclient_file = "
            f"{_toml_str(str(client_file))}\n"
            if client_file
            else '# client_file = "~/.config/callhome/client.toml"\n'
        ),
    )
    write_private(directory / "manager.toml", text.encode())
    return public_line(key, "callhome-manager")


def init_agent(
    directory: Path,
    managers: list[str],
    manager_keys: list[str],
    list_keys: dict[str, list[str]] | None = None,
) -> str:
    """Write agent.toml and the host key; returns the fingerprint to approve on the manager."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ensure_key(directory / "ssh_host_ed25519_key")
    endpoints = "".join(
        f"[[endpoints]]\nname = {_toml_str(f'manager-{i + 1}')}\naddress = {_toml_str(m)}\n\n"
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
    write_private(directory / "agent.toml", text.encode())
    return identity_of(key).fingerprint
