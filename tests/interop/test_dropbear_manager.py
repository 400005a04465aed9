"""Dropbear's ``dbclient``, an SSH client stack of its own, as the call-home manager of our agent.

Embedded and old clients offer aes*-ctr and no GCM; dbclient 2022.83 offers
chacha20-poly1305, aes128-ctr and aes256-ctr. Restricted to one CTR cipher and
hmac-sha2-256 it must still reach the agent's NETCONF with the default ``[algorithms]``,
and must not with the two ciphers the defaults used to be.

dbclient becomes a call-home manager as ``ssh`` does (PEERS.md): ``-J`` runs
``socat STDIO TCP-LISTEN`` instead of dialing, the agent dials that port.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from interop_helpers import KeyPair, netconf_messages, netconf_script, require

from harness import AgentProc, os_port

pytestmark = pytest.mark.interop

OLD_DEFAULT_CIPHERS = "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com"
GET_CONFIG = "<get-config><source><running/></source></get-config>"


@pytest.fixture
def dbclient() -> dict[str, str]:
    return require("dbclient", "dropbearconvert", "socat")


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Callable[..., AgentProc]]:
    started: list[AgentProc] = []

    def start(port: int, manager: KeyPair, env: dict[str, str] | None = None) -> AgentProc:
        agent = AgentProc(tmp_path / "agent", [f"127.0.0.1:{port}"], [manager.public_line], env)
        started.append(agent.start())
        return agent

    yield start
    for agent in started:
        agent.stop()


def dropbear_key(tmp_path: Path, key: KeyPair, tools: dict[str, str]) -> Path:
    """The manager's key in dropbear's own format (dbclient 2022.83 does not read the
    OpenSSH-format file asyncssh writes: "String too long")."""
    out = tmp_path / "manager_key.dropbear"
    subprocess.run(
        [tools["dropbearconvert"], "openssh", "dropbear", str(key.private), str(out)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return out


def run_dbclient(
    tmp_path: Path,
    tools: dict[str, str],
    port: int,
    agent: AgentProc,
    key: Path,
    cipher: str,
    mac: str,
) -> subprocess.CompletedProcess[bytes]:
    """dbclient -s netconf through a listening socat, checking the agent's host key against
    $HOME/.ssh/known_hosts; it sends a hello, get-config and close-session, and leaves when
    the agent ends the channel."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    algorithm, blob = (agent.directory / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    (home / ".ssh" / "known_hosts").write_text(f"dev1 {algorithm} {blob}\n")
    proxy = f"{tools['socat']} STDIO TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"
    script = netconf_script(GET_CONFIG, "<close-session/>")
    args = [tools["dbclient"], "-J", proxy, "-i", str(key), "-l", "root"]
    args += ["-c", cipher, "-m", mac, "-s", "dev1", "netconf"]
    return subprocess.run(
        args,
        input=script,
        capture_output=True,
        env={"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        timeout=60,
    )


@pytest.mark.parametrize("cipher", ["aes128-ctr", "aes256-ctr"])
def test_dbclient_with_a_ctr_cipher_gets_netconf_from_the_agent(
    tmp_path: Path,
    manager_key: KeyPair,
    agents: Callable[..., AgentProc],
    dbclient: dict[str, str],
    cipher: str,
) -> None:
    port = os_port()
    agent = agents(port, manager_key)
    key = dropbear_key(tmp_path, manager_key, dbclient)
    done = run_dbclient(tmp_path, dbclient, port, agent, key, cipher, "hmac-sha2-256")

    assert done.returncode == 0, done.stderr.decode(errors="replace")
    hello, reply, closed = netconf_messages(done.stdout)
    assert "<hello" in hello and "<session-id>" in hello
    assert 'message-id="1"' in reply and "<data" in reply and "rpc-error" not in reply
    assert 'message-id="2"' in closed and "<ok/>" in closed


def test_the_old_default_ciphers_turn_a_ctr_only_dbclient_away(
    tmp_path: Path,
    manager_key: KeyPair,
    agents: Callable[..., AgentProc],
    dbclient: dict[str, str],
) -> None:
    """What happened before [algorithms] offered CTR modes, configured here explicitly."""
    port = os_port()
    agent = agents(port, manager_key, {"CALLHOME_ALGORITHMS__CIPHERS": OLD_DEFAULT_CIPHERS})
    key = dropbear_key(tmp_path, manager_key, dbclient)
    done = run_dbclient(tmp_path, dbclient, port, agent, key, "aes128-ctr", "hmac-sha2-256")

    assert done.returncode != 0
    assert b"No matching algo enc" in done.stderr, done.stderr
    assert done.stdout == b""
    assert agent.proc is not None
    # which side finds no match first is a race: dbclient may hang up before the agent
    # reads its KEXINIT, and the agent then only sees the handshake end
    agent.proc.wait_for(
        r"No matching encryption algorithm found, sent "
        + OLD_DEFAULT_CIPHERS
        + r"|closed the connection during the handshake"
    )
