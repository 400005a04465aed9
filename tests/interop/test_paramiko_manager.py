"""paramiko, an SSH client stack of its own, as the call-home manager of our agent.

The test accepts the agent's TCP connection itself (RFC 8071: the device dials) and runs a
paramiko client Transport over it, its ciphers restricted to aes*-ctr and its MACs to
hmac-sha2-256/512 (-etm): it checks the agent's host key, authenticates with the manager
key, opens the ``netconf`` subsystem and does a hello and get-config.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from interop_helpers import EOM, KeyPair, netconf_messages, netconf_script

from harness import AgentProc

paramiko = pytest.importorskip("paramiko", reason="interop peer not installed: paramiko")

pytestmark = pytest.mark.interop

OLD_DEFAULT_CIPHERS = "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com"
Called = tuple[AgentProc, socket.socket]


@pytest.fixture
def call_home(tmp_path: Path) -> Iterator[Callable[..., Called]]:
    """An agent dialing a socket the test listens on; returns it and the accepted socket."""
    opened: list[Called] = []

    def start(manager: KeyPair, env: dict[str, str] | None = None) -> Called:
        with socket.create_server(("127.0.0.1", 0)) as server:
            server.settimeout(30)
            port = server.getsockname()[1]
            agent = AgentProc(tmp_path / "agent", [f"127.0.0.1:{port}"], [manager.public_line], env)
            agent.start()
            try:
                sock, _ = server.accept()
            except TimeoutError:
                agent.stop()
                said = agent.proc.output() if agent.proc else ""
                raise AssertionError(f"the agent never called:\n{said}") from None
        opened.append((agent, sock))
        return agent, sock

    yield start
    for agent, sock in opened:
        sock.close()
        agent.stop()


def transport(sock: socket.socket, ciphers: tuple[str, ...], macs: tuple[str, ...]) -> Any:
    t = paramiko.Transport(sock)
    options = t.get_security_options()
    options.ciphers = ciphers
    options.digests = macs
    return t


def read_messages(channel: Any, count: int) -> list[str]:
    """``count`` complete messages from the channel, or fewer if it closes first."""
    data = b""
    while data.count(EOM) < count:
        chunk = channel.recv(65536)
        if not chunk:
            break
        data += chunk
    return netconf_messages(data)


@pytest.mark.parametrize(
    ("cipher", "mac"),
    [
        ("aes128-ctr", "hmac-sha2-256-etm@openssh.com"),
        ("aes192-ctr", "hmac-sha2-256"),
        ("aes256-ctr", "hmac-sha2-512-etm@openssh.com"),
        ("aes256-ctr", "hmac-sha2-512"),
    ],
)
def test_paramiko_with_ctr_and_sha2_macs_gets_netconf_from_the_agent(
    manager_key: KeyPair,
    call_home: Callable[..., Called],
    cipher: str,
    mac: str,
) -> None:
    agent, sock = call_home(manager_key)
    t = transport(sock, (cipher,), (mac,))
    blob = (agent.directory / "ssh_host_ed25519_key.pub").read_text().split()[1]
    host_key = paramiko.Ed25519Key(data=base64.b64decode(blob))
    try:
        t.connect(
            hostkey=host_key,  # the agent's host key, checked during the key exchange
            username="root",
            pkey=paramiko.Ed25519Key(filename=str(manager_key.private)),
        )
        assert (t.local_cipher, t.local_mac) == (cipher, mac)
        channel = t.open_session(timeout=30)
        channel.settimeout(30)
        channel.invoke_subsystem("netconf")
        channel.sendall(netconf_script("<get-config><source><running/></source></get-config>"))
        hello, reply = read_messages(channel, 2)
        assert "<hello" in hello and "<session-id>" in hello
        assert 'message-id="1"' in reply and "<data" in reply and "rpc-error" not in reply
    finally:
        t.close()


def test_the_old_default_ciphers_turn_a_ctr_only_paramiko_away(
    manager_key: KeyPair, call_home: Callable[..., Called]
) -> None:
    """What happened before [algorithms] offered CTR modes, configured here explicitly."""
    agent, sock = call_home(manager_key, {"CALLHOME_ALGORITHMS__CIPHERS": OLD_DEFAULT_CIPHERS})
    t = transport(sock, ("aes128-ctr", "aes192-ctr", "aes256-ctr"), ("hmac-sha2-256",))
    try:
        with pytest.raises(paramiko.SSHException, match="no acceptable ciphers"):
            t.connect(username="root", pkey=paramiko.Ed25519Key(filename=str(manager_key.private)))
    finally:
        t.close()
    assert agent.proc is not None
    # which side finds no match first is a race (see the dbclient test)
    agent.proc.wait_for(
        r"No matching encryption algorithm found|closed the connection during the handshake"
    )
