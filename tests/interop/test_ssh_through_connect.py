"""Real OpenSSH ``ssh`` and ``scp`` through ``callhome connect`` (ProxyCommand) to a real
``sshd`` on the device's side, reached only through the device's call-home connection."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_helpers import SSHD, require, require_sshd_runtime

from harness import AgentProc, ManagerProc, Proc, os_port, wait_until

pytestmark = pytest.mark.interop

USER = pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An sshd on a loopback port from the OS; returns its port and a client key."""
    require("ssh", "scp", "ssh-keygen", SSHD)
    require_sshd_runtime()
    d = tmp_path / "sshd"
    d.mkdir()
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
            check=True,
            timeout=10,
        )
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    sftp = next(
        (
            p
            for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server")
            if Path(p).exists()
        ),
        None,
    )
    port = os_port()
    config = d / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1:{port}\n"
        f"HostKey {d / 'host_key'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
        "StrictModes no\nUsePAM no\nPidFile none\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n" + (f"Subsystem sftp {sftp}\n" if sftp else "")
    )
    proc = Proc([SSHD, "-D", "-e", "-f", str(config)], name="sshd")
    try:
        proc.wait_for("Server listening", timeout=15)
        yield port, d
    finally:
        proc.stop()


def test_ssh_and_scp_through_callhome_connect(tmp_path: Path, sshd: tuple[int, Path]) -> None:
    port, d = sshd
    manager = ManagerProc(tmp_path / "manager").start()
    agent = AgentProc(tmp_path / "dev", [f"127.0.0.1:{manager.port}"], [manager.public_key])
    with open(agent.directory / "agent.toml", "a") as f:
        f.write(f'\n[[access]]\nmanager = "*"\nforward = ["127.0.0.1:{port}"]\n')
    try:
        agent.start()
        wait_until(lambda: manager.status(agent.fingerprint) == "pending")
        assert manager.cli("approve", agent.fingerprint, "--name", "dev1").returncode == 0
        wait_until(lambda: manager.status(agent.fingerprint) == "online")

        known = tmp_path / "known_hosts"
        known.write_text(f"dev1 {(d / 'host_key.pub').read_text()}")
        proxy = f"{sys.executable} -m callhome.cli.main connect %h {port}"
        opts = [
            "-o", f"ProxyCommand={proxy}",
            "-o", f"UserKnownHostsFile={known}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-i", str(d / "client_key"),
        ]  # fmt: skip
        env = {**os.environ, **manager.env}
        run = subprocess.run(
            ["ssh", *opts, "-l", USER, "dev1", "echo through-$((40+2))"],
            capture_output=True, text=True, timeout=30, env=env,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "through-42"

        payload = tmp_path / "payload.bin"
        payload.write_bytes(os.urandom(2_000_000))
        remote = tmp_path / "copied.bin"
        up = subprocess.run(
            ["scp", "-q", *opts, str(payload), f"{USER}@dev1:{remote}"],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        assert up.returncode == 0, up.stderr
        assert remote.read_bytes() == payload.read_bytes()
        back = tmp_path / "back.bin"
        down = subprocess.run(
            ["scp", "-q", *opts, f"{USER}@dev1:{remote}", str(back)],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        assert down.returncode == 0, down.stderr
        assert back.read_bytes() == payload.read_bytes()

        got = manager.cli("netconf", "dev1", "get-config")
        assert got.returncode == 0, got.stderr
        audit = manager.api("GET", "/v1/audit", params={"limit": 1000}).json()
        forwards = [e for e in audit if e["action"] == "close forward"]
        assert len(forwards) == 3
        assert max(e["detail"]["bytes_to_device"] for e in forwards) > 2_000_000
    finally:
        agent.stop()
        manager.stop()
