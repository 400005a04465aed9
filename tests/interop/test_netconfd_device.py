"""Our manager against a NETCONF server nobody here wrote: yuma123 netconfd behind OpenSSH sshd.

socat makes the pair a call-home device (RFC 8071 S3): it dials our manager and runs
``sshd -i`` (inetd mode) on that connection; sshd serves the ``netconf`` subsystem through
``netconf-subsystem``, which joins the channel to netconfd's local socket. Our manager plays
SSH client and NETCONF client toward a real SSH server and a real NETCONF server.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from interop_helpers import (
    NETCONF_SUBSYSTEM,
    NETCONFD,
    SSHD,
    require,
    require_sshd_runtime,
    ssh_fingerprint,
)

from harness import ManagerProc, Proc, os_port, wait_until

pytestmark = pytest.mark.interop

SSH_USER = pwd.getpwuid(os.getuid()).pw_name  # sshd -i can log in only the user it runs as
MONITORING_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
SYSTEM_NS = "urn:ietf:params:xml:ns:yang:ietf-system"
BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"


@dataclass
class YumaDevice:
    """netconfd running, and what socat needs to make sshd call home."""

    sshd_config: Path
    host_key_pub: Path
    netconfd: Proc
    directory: Path

    @property
    def fingerprint(self) -> str:
        return ssh_fingerprint(self.host_key_pub)

    def call_home(self, manager_port: int) -> Proc:
        """socat dials the manager once and runs sshd in inetd mode on that connection."""
        found = require("socat")
        sshd = f"{SSHD} -i -e -f {self.sshd_config}"
        return Proc(
            [
                found["socat"],
                f"TCP:127.0.0.1:{manager_port},retry=40,interval=0.25",
                f"EXEC:{sshd}",
            ],
            name="socat+sshd",
        )


@pytest.fixture
def yuma_device(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[YumaDevice]:
    """netconfd with its own modules, and the module files given by indirect
    parametrization (``request.param``: a list of paths) loaded too."""
    require("socat", "ssh-keygen", SSHD, NETCONFD, NETCONF_SUBSYSTEM)
    more_modules: list[Path] = list(getattr(request, "param", []))
    require_sshd_runtime()
    d = tmp_path / "yuma"
    (d / "home").mkdir(parents=True)
    host_key = d / "ssh_host_ed25519_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "yuma", "-f", str(host_key)],
        check=True,
        timeout=10,
    )
    sock = d / "ncxserver.sock"
    # netconf-subsystem picks the socket whose PORT@ prefix matches the server port in
    # SSH_CONNECTION; under `sshd -i` that variable is useless, so the wrapper sets it.
    port = os_port()
    wrapper = d / "netconf-subsystem.sh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'SSH_CONNECTION="127.0.0.1 1 127.0.0.1 {port}"\n'
        "export SSH_CONNECTION\n"
        f'exec {NETCONF_SUBSYSTEM} "--ncxserver-sockname={port}@{sock}"\n'
    )
    wrapper.chmod(0o755)
    config = d / "sshd_config"
    config.write_text(
        f"HostKey {host_key}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "PidFile none\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "LogLevel VERBOSE\n"
        f"Subsystem netconf {wrapper}\n"
    )
    check = subprocess.run(
        [SSHD, "-t", "-f", str(config)], capture_output=True, text=True, timeout=10
    )
    assert check.returncode == 0, check.stderr

    netconfd = Proc(
        [
            NETCONFD,
            f"--ncxserver-sockname={sock}",
            f"--port={port}",
            f"--superuser={SSH_USER}",
            "--no-startup",
            f"--log={d / 'netconfd.log'}",
            *(f"--module={m}" for m in more_modules),
        ],
        env={"HOME": str(d / "home")},
        name="netconfd",
        cwd=d,  # it writes backup-cfg.xml into its working folder on commit
    )
    try:
        wait_until(lambda: sock.exists() or netconfd.proc.poll() is not None, timeout=15)
        assert sock.exists(), f"netconfd did not start:\n{netconfd.output()}"
        yield YumaDevice(config, host_key.with_suffix(".pub"), netconfd, d)
    finally:
        netconfd.stop()


def netconf(manager: ManagerProc, *args: str) -> str:
    result = manager.cli("netconf", "yuma", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[ManagerProc]:
    """Our manager, logging in to devices as the user sshd lets in."""
    m = ManagerProc(tmp_path / "manager", env={"CALLHOME_MANAGER__USERNAME": SSH_USER})
    try:
        yield m.start()
    finally:
        m.stop()


def test_manager_manages_netconfd_behind_sshd(
    manager: ManagerProc, yuma_device: YumaDevice
) -> None:
    (yuma_device.directory / "authorized_keys").write_text(manager.public_key + "\n")
    fingerprint = yuma_device.fingerprint
    # approved before it ever calls: admitted on its first call
    approved = manager.cli("approve", fingerprint, "--name", "yuma")
    assert approved.returncode == 0, approved.stderr

    socat = yuma_device.call_home(manager.port)
    try:
        try:
            wait_until(lambda: manager.status(fingerprint) == "online", timeout=30)
        except AssertionError:
            events = [(e["kind"], e["detail"]) for e in manager.events()]
            raise AssertionError(
                f"netconfd never came online; events: {events}\nsocat/sshd said:\n{socat.output()}"
            ) from None

        device = manager.devices()[fingerprint]
        assert device["name"] == "yuma"
        assert device["orientation"] == "reverse-ssh"
        caps = device["capabilities"]
        assert "urn:ietf:params:netconf:base:1.0" in caps
        assert "urn:ietf:params:netconf:base:1.1" in caps
        assert any(c.startswith("http://netconfcentral.org/ns/yuma") for c in caps), caps

        assert "<data" in netconf(manager, "get-config")

        state = netconf(
            manager,
            "get",
            "--filter",
            f'<netconf-state xmlns="{MONITORING_NS}"><sessions/></netconf-state>',
        )
        assert "<data" in state and "<sessions" in state
        assert f"<username>{SSH_USER}</username>" in state
        assert "<capabilities" not in state  # the subtree filter selected only sessions

        # a change through the candidate datastore and commit, read back from running
        assert "urn:ietf:params:netconf:capability:candidate:1.0" in caps
        hostname = f'<system xmlns="{SYSTEM_NS}"><hostname>called-home</hostname></system>'
        assert "<ok/>" in netconf(
            manager, "edit-config", "--target", "candidate", "--config", hostname
        )
        assert "<ok/>" in netconf(manager, "rpc", f'<commit xmlns="{BASE_NS}"/>')
        got = netconf(
            manager, "get-config", "--filter", f'<system xmlns="{SYSTEM_NS}"><hostname/></system>'
        )
        assert "<hostname>called-home</hostname>" in got

        # netconfd's own rpc-error comes back whole through our manager
        failed = manager.cli(
            "netconf",
            "yuma",
            "edit-config",
            "--target",
            "candidate",
            "--config",
            f'<system xmlns="{SYSTEM_NS}" xmlns:nc="{BASE_NS}">'
            '<hostname nc:operation="create">again</hostname></system>',
        )
        assert failed.returncode == 1
        assert "rpc-error: application/data-exists" in failed.stderr, failed.stderr
        # and the session goes on after it
        assert "<ok/>" in netconf(manager, "rpc", f'<discard-changes xmlns="{BASE_NS}"/>')

        # a job group: several edits as one candidate commit, all or nothing
        def host(name: str, op: str = "merge") -> str:
            return (
                f'<system xmlns="{SYSTEM_NS}" xmlns:nc="{BASE_NS}">'
                f'<hostname nc:operation="{op}">{name}</hostname></system>'
            )

        group = manager.cli(
            "netconf", "yuma", "commit-group", "--edit", host("grp-a"), "--edit", host("grp-b")
        )
        assert group.returncode == 0, group.stderr
        read = f'<system xmlns="{SYSTEM_NS}"><hostname/></system>'
        assert "<hostname>grp-b</hostname>" in netconf(manager, "get-config", "--filter", read)
        broken = manager.cli(
            "netconf",
            "yuma",
            "commit-group",
            "--edit",
            host("never"),
            "--edit",
            host("twice", "create"),
        )
        assert broken.returncode == 1 and "data-exists" in broken.stderr, broken.stderr
        assert "<hostname>grp-b</hostname>" in netconf(manager, "get-config", "--filter", read)

        kinds = [e["kind"] for e in manager.events(device="yuma")]
        assert "connected" in kinds
    finally:
        socat.stop()
