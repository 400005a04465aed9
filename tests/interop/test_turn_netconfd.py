"""The turn orientation (the seed's section 7) with a device made of parts nobody here wrote.

OpenSSH's ``ssh`` is the device's SSH client: it logs in to our manager's turn port with a
key and opens the ``netconf-turn`` subsystem; socat joins its standard input and output to
yuma123's ``netconf-subsystem``, which joins them to a running ``netconfd``. Our manager
then plays NETCONF client toward netconfd, as if it had dialed it.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from interop_helpers import NETCONF_SUBSYSTEM, NETCONFD, require, ssh_fingerprint

from harness import OrientedManagerProc, Proc, TestPki, os_port, wait_until

pytestmark = pytest.mark.interop

USER = pwd.getpwuid(os.getuid()).pw_name
SYSTEM_NS = "urn:ietf:params:xml:ns:yang:ietf-system"


@dataclass
class TurnDevice:
    """Scripts that make ssh + netconf-subsystem a netconf-turn device."""

    directory: Path
    key: Path
    ssh: Path
    subsystem: Path
    socat: str

    @property
    def fingerprint(self) -> str:
        return ssh_fingerprint(self.key.with_suffix(".pub"))

    def call_home(self, subsystem: str = "netconf-turn") -> Proc:
        """socat runs ssh (the call home) and netconf-subsystem, and joins them."""
        return Proc(
            [self.socat, f"EXEC:{self.ssh} {subsystem}", f"EXEC:{self.subsystem}"],
            name="socat+ssh",
        )

    def ssh_alone(self, subsystem: str) -> subprocess.CompletedProcess[str]:
        """ssh with nothing behind it, for refusals."""
        return subprocess.run(
            [str(self.ssh), subsystem],
            input="",
            capture_output=True,
            text=True,
            timeout=20,
        )


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrientedManagerProc]:
    require("ssh", "ssh-keygen", "socat")
    d = tmp_path_factory.mktemp("turn")
    m = OrientedManagerProc(d / "manager", TestPki(d / "pki")).start()
    yield m
    m.stop()


@pytest.fixture(scope="module")
def netconfd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """A running netconfd: its socket and the port netconf-subsystem must name."""
    require(NETCONFD, NETCONF_SUBSYSTEM)
    d = tmp_path_factory.mktemp("yuma")
    (d / "home").mkdir()
    sock, port = d / "ncxserver.sock", os_port()
    server = Proc(
        [
            NETCONFD,
            f"--ncxserver-sockname={sock}",
            f"--port={port}",
            f"--superuser={USER}",
            "--no-startup",
            f"--log={d / 'netconfd.log'}",
        ],
        env={"HOME": str(d / "home")},
        name="netconfd",
    )
    try:
        wait_until(lambda: sock.exists() or server.proc.poll() is not None, timeout=15)
        assert sock.exists(), f"netconfd did not start:\n{server.output()}"
        yield sock, port
    finally:
        server.stop()


def make_device(
    directory: Path, manager: OrientedManagerProc, netconfd: tuple[Path, int] | None
) -> TurnDevice:
    found = require("ssh", "ssh-keygen", "socat")
    directory.mkdir(parents=True)
    key = directory / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "turn-device", "-f", str(key)],
        check=True,
        timeout=10,
    )
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{manager.turn_port} {manager.turn_host_key}\n")
    ssh = directory / "ssh.sh"
    ssh.write_text(
        "#!/bin/sh\n"
        f"exec {found['ssh']} -F /dev/null -T -p {manager.turn_port} -i {key}"
        " -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes"
        f" -o UserKnownHostsFile={known_hosts} -o ConnectTimeout=10 -l callhome 127.0.0.1"
        ' -s "$1"\n'
    )
    ssh.chmod(0o755)
    subsystem = directory / "netconf-subsystem.sh"
    if netconfd is not None:
        sock, port = netconfd
        # netconf-subsystem picks netconfd's socket by the server port in SSH_CONNECTION and
        # names the user from USER: outside sshd, the wrapper sets both
        subsystem.write_text(
            "#!/bin/sh\n"
            f'SSH_CONNECTION="127.0.0.1 1 127.0.0.1 {port}"\n'
            f'USER="{USER}"\n'
            "export SSH_CONNECTION USER\n"
            f'exec {NETCONF_SUBSYSTEM} "--ncxserver-sockname={port}@{sock}"\n'
        )
        subsystem.chmod(0o755)
    return TurnDevice(directory, key, ssh, subsystem, found["socat"])


def netconf(manager: OrientedManagerProc, *args: str) -> str:
    result = manager.cli("netconf", "yuma-turn", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_manager_manages_netconfd_over_turn(manager, netconfd, tmp_path):
    device = make_device(tmp_path / "device", manager, netconfd)
    approved = manager.cli("approve", device.fingerprint, "--name", "yuma-turn")
    assert approved.returncode == 0, approved.stderr
    socat = device.call_home()
    try:
        try:
            wait_until(lambda: manager.status(device.fingerprint) == "online", timeout=30)
        except AssertionError:
            events = [(e["kind"], e["detail"]) for e in manager.events()]
            raise AssertionError(
                f"netconfd never came online; events: {events}\nssh said:\n{socat.output()}"
            ) from None
        listed = manager.devices()[device.fingerprint]
        assert listed["orientation"] == "turn"
        caps = listed["capabilities"]
        assert "urn:ietf:params:netconf:base:1.1" in caps
        assert any(c.startswith("http://netconfcentral.org/ns/yuma") for c in caps), caps
        got = netconf(
            manager, "get-config", "--filter", f'<system xmlns="{SYSTEM_NS}"><hostname/></system>'
        )
        assert "<data" in got
        assert "<ok/>" in netconf(
            manager,
            "edit-config",
            "--target",
            "candidate",
            "--config",
            f'<system xmlns="{SYSTEM_NS}"><hostname>turned</hostname></system>',
        )
        assert "<ok/>" in netconf(
            manager, "rpc", '<discard-changes xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>'
        )
    finally:
        socat.stop()
    wait_until(lambda: manager.status(device.fingerprint) == "offline")


def test_pending_key_and_other_subsystems_are_refused(manager, tmp_path):
    stranger = make_device(tmp_path / "stranger", manager, None)
    refused = stranger.ssh_alone("netconf-turn")
    assert refused.returncode != 0
    assert "subsystem request failed" in refused.stderr, refused.stderr
    wait_until(lambda: manager.status(stranger.fingerprint) == "pending")

    nosy = make_device(tmp_path / "nosy", manager, None)
    assert manager.cli("approve", nosy.fingerprint, "--name", "nosy").returncode == 0
    other = nosy.ssh_alone("sftp")
    assert other.returncode != 0
    assert "subsystem request failed" in other.stderr, other.stderr

    def refused_event() -> bool:
        return any(
            e["kind"] == "protocol-error" and "'sftp'" in str(e["detail"].get("reason"))
            for e in manager.events()
        )

    wait_until(refused_event)
