"""OpenSSH ``ssh -s netconf`` accepts a call home from our agent and speaks NETCONF to it.

``ssh`` becomes a call-home manager through a ProxyCommand that listens instead of dialing
(``socat STDIO TCP-LISTEN``): our agent dials that port and then plays SSH server; ``ssh``
checks the agent's host key against a known-hosts file and authenticates with a key.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from interop_helpers import KeyPair, make_manager_key, require

from harness import AgentProc, os_port

pytestmark = pytest.mark.interop

EOM = b"]]>]]>"
BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
CLIENT_HELLO = (
    f'<?xml version="1.0" encoding="UTF-8"?><hello xmlns="{BASE_NS}"><capabilities>'
    "<capability>urn:ietf:params:netconf:base:1.0</capability>"
    "</capabilities></hello>]]>]]>"
)


def rpc(message_id: int, body: str) -> bytes:
    return f'<rpc xmlns="{BASE_NS}" message-id="{message_id}">{body}</rpc>]]>]]>'.encode()


class SshManager:
    """One ``ssh -s netconf`` process that waits for a device on ``port``, driven by pipes."""

    def __init__(self, port: int, known_hosts: Path, key: Path) -> None:
        found = require("ssh", "socat")  # already checked by the fixture; paths only
        proxy = f"{found['socat']} STDIO TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"
        self.proc = subprocess.Popen(
            [
                found["ssh"],
                "-F",
                "/dev/null",
                "-o",
                f"ProxyCommand={proxy}",
                "-o",
                "HostKeyAlias=dev1",
                "-o",
                f"UserKnownHostsFile={known_hosts}",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "UpdateHostKeys=no",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ServerAliveInterval=5",
                "-i",
                str(key),
                "-l",
                "root",
                "dev1",
                "-s",
                "netconf",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"},
            start_new_session=True,
        )
        self._buffer = b""
        self._stdout_done = False
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while chunk := os.read(fd, 65536):
            with self._changed:
                self._buffer += chunk
                self._changed.notify_all()
        with self._changed:
            self._stdout_done = True
            self._changed.notify_all()

    def send(self, data: str | bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data.encode() if isinstance(data, str) else data)
        self.proc.stdin.flush()

    def read_message(self, timeout: float = 20.0) -> str:
        """The next end-of-message framed message (RFC 6242 S4.3)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while EOM not in self._buffer:
                left = deadline - time.monotonic()
                if self._stdout_done or left <= 0:
                    raise AssertionError(
                        f"no NETCONF message from ssh (exit {self.proc.poll()}); "
                        f"got {self._buffer[:500]!r}; stderr: {self.stderr()}"
                    )
                self._changed.wait(left)
            message, _, self._buffer = self._buffer.partition(EOM)
        return message.decode()

    def unread(self, timeout: float = 10.0) -> bytes:
        """Everything not yet read as a message, once ssh has closed its output."""
        with self._changed:
            self._changed.wait_for(lambda: self._stdout_done, timeout)
            return self._buffer

    def wait(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(ssh still running)"
        return self.proc.stderr.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def ssh_manager() -> Iterator[Callable[[int, Path, Path], SshManager]]:
    require("ssh", "socat")
    started: list[SshManager] = []

    def start(port: int, known_hosts: Path, key: Path) -> SshManager:
        ssh = SshManager(port, known_hosts, key)
        started.append(ssh)
        return ssh

    yield start
    for ssh in started:
        ssh.stop()


def known_hosts_for(agent: AgentProc, path: Path) -> Path:
    algorithm, blob = (agent.directory / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    path.write_text(f"dev1 {algorithm} {blob}\n")
    return path


def test_ssh_netconf_subsystem_talks_to_the_agent(
    tmp_path: Path,
    manager_key: KeyPair,
    start_agent: Callable[..., AgentProc],
    ssh_manager: Callable[[int, Path, Path], SshManager],
) -> None:
    port = os_port()
    agent = start_agent(port, [manager_key.public_line])
    known_hosts = known_hosts_for(agent, tmp_path / "known_hosts")
    ssh = ssh_manager(port, known_hosts, manager_key.private)

    hello = ssh.read_message()
    assert "<hello" in hello and "<session-id>" in hello
    assert "urn:ietf:params:netconf:base:1.0" in hello
    assert "urn:ietf:params:netconf:base:1.1" in hello

    ssh.send(CLIENT_HELLO)
    ssh.send(rpc(1, "<get-config><source><running/></source></get-config>"))
    reply = ssh.read_message()
    assert "<rpc-reply" in reply and 'message-id="1"' in reply
    assert "<data" in reply and "rpc-error" not in reply

    system = '<system xmlns="urn:example:demo"><hostname>via-openssh</hostname></system>'
    ssh.send(
        rpc(
            2,
            f"<edit-config><target><running/></target><config>{system}</config></edit-config>",
        )
    )
    reply = ssh.read_message()
    assert 'message-id="2"' in reply and "<ok/>" in reply
    ssh.send(rpc(3, "<get-config><source><running/></source></get-config>"))
    reply = ssh.read_message()
    assert 'message-id="3"' in reply and "<hostname>via-openssh</hostname>" in reply

    ssh.send(rpc(4, "<close-session/>"))
    reply = ssh.read_message()
    assert 'message-id="4"' in reply and "<ok/>" in reply
    # the device ends the channel after close-session; ssh leaves on its own, quietly
    ssh.wait()
    assert "denied" not in ssh.stderr() and "rror" not in ssh.stderr()


def test_ssh_exits_zero_after_close_session(
    tmp_path: Path,
    manager_key: KeyPair,
    start_agent: Callable[..., AgentProc],
    ssh_manager: Callable[[int, Path, Path], SshManager],
) -> None:
    port = os_port()
    agent = start_agent(port, [manager_key.public_line])
    ssh = ssh_manager(port, known_hosts_for(agent, tmp_path / "known_hosts"), manager_key.private)
    assert "<hello" in ssh.read_message()
    ssh.send(CLIENT_HELLO)
    ssh.send(rpc(1, "<close-session/>"))
    assert "<ok/>" in ssh.read_message()
    assert ssh.wait() == 0, ssh.stderr()


def test_ssh_with_a_key_the_agent_does_not_know_is_refused(
    tmp_path: Path,
    manager_key: KeyPair,
    start_agent: Callable[..., AgentProc],
    ssh_manager: Callable[[int, Path, Path], SshManager],
) -> None:
    port = os_port()
    agent = start_agent(port, [manager_key.public_line])
    known_hosts = known_hosts_for(agent, tmp_path / "known_hosts")
    stranger = make_manager_key(tmp_path / "stranger")

    refused = ssh_manager(port, known_hosts, stranger.private)
    assert refused.wait() != 0
    stderr = refused.stderr()
    assert "Permission denied" in stderr and "publickey" in stderr, stderr
    assert refused.unread() == b""  # no NETCONF byte reached an unauthenticated manager
    assert agent.proc is not None
    agent.proc.wait_for(r"unknown key")

    # the agent redials after a refusal, and the right key still gets in
    accepted = ssh_manager(port, known_hosts, manager_key.private)
    assert "<hello" in accepted.read_message()
    accepted.send(CLIENT_HELLO)
    accepted.send(rpc(1, "<close-session/>"))
    assert "<ok/>" in accepted.read_message()
    accepted.wait()
