"""Our manager against OpenSSH sshd offering few algorithms, made to call home with socat.

Each device is ``socat TCP:manager EXEC:"sshd -i"`` (PEERS.md) with its own sshd_config:
its ``Ciphers``, ``MACs`` or ``HostKeyAlgorithms`` cut down to what an old or embedded
stack offers. Behind sshd, yuma123's netconfd serves the ``netconf`` subsystem (one for the
module), so a device that gets through comes online and answers a get-config.

- sshd offering only aes256-ctr and hmac-sha2-512-etm: the default [algorithms] reach it
  (the defaults before CTR modes did not: shown by configuring those explicitly).
- sshd offering only CBC, only a SHA-1 MAC, or only ssh-rsa host key signatures (SHA-1):
  refused by default, accepted once the operator lists that algorithm (with a warning).
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from collections.abc import Callable, Iterator
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

from callhome.config import SshAlgorithms
from callhome.config.common import AlgorithmKind, legacy_reason, supported_algorithms
from harness import ManagerProc, Proc, os_port, wait_until

pytestmark = pytest.mark.interop

SSH_USER = pwd.getpwuid(os.getuid()).pw_name  # sshd -i logs in only the user it runs as
OLD_DEFAULT_CIPHERS = "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com"


@dataclass
class Netconfd:
    """A running netconfd and the script sshd runs as its netconf subsystem."""

    subsystem: Path


@pytest.fixture(scope="module")
def netconfd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Netconfd]:
    require("socat", "ssh-keygen", SSHD, NETCONFD, NETCONF_SUBSYSTEM)
    require_sshd_runtime()
    d = tmp_path_factory.mktemp("netconfd")
    (d / "home").mkdir()
    sock, port = d / "ncxserver.sock", os_port()
    # netconf-subsystem finds netconfd by the server port in SSH_CONNECTION, which reads
    # UNKNOWN under `sshd -i` (PEERS.md): the script sets it.
    subsystem = d / "netconf-subsystem.sh"
    subsystem.write_text(
        f'#!/bin/sh\nSSH_CONNECTION="127.0.0.1 1 127.0.0.1 {port}" exec {NETCONF_SUBSYSTEM} '
        f'"--ncxserver-sockname={port}@{sock}"\n'
    )
    subsystem.chmod(0o755)
    server = Proc(
        [
            NETCONFD,
            f"--ncxserver-sockname={sock}",
            f"--port={port}",
            f"--superuser={SSH_USER}",
            "--no-startup",
            f"--log={d / 'netconfd.log'}",
        ],
        env={"HOME": str(d / "home")},
        name="netconfd",
        cwd=d,
    )
    try:
        wait_until(lambda: sock.exists() or server.proc.poll() is not None, timeout=15)
        assert sock.exists(), f"netconfd did not start:\n{server.output()}"
        yield Netconfd(subsystem)
    finally:
        server.stop()


@dataclass
class SshdDevice:
    config: Path
    fingerprint: str

    def call_home(self, manager_port: int) -> Proc:
        """socat dials the manager once and runs sshd in inetd mode on that connection."""
        socat = require("socat")["socat"]
        dial = f"TCP:127.0.0.1:{manager_port},retry=40,interval=0.25"
        return Proc(
            [socat, dial, f"EXEC:{SSHD} -i -e -f {self.config}"],
            name="socat+sshd",
        )


def sshd_device(
    directory: Path, netconfd: Netconfd, manager: ManagerProc, restrict: list[str], key: str
) -> SshdDevice:
    """An sshd_config with only the algorithms ``restrict`` names, a ``key`` host key, and
    the manager's key authorized."""
    directory.mkdir()
    host_key = directory / f"ssh_host_{key}_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key, "-N", "", "-C", "dev", "-f", str(host_key)],
        check=True,
        timeout=30,
    )
    (directory / "authorized_keys").write_text(manager.public_key + "\n")
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {directory / 'authorized_keys'}",
                "StrictModes no",
                "UsePAM no",
                "PidFile none",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "LogLevel VERBOSE",
                f"Subsystem netconf {netconfd.subsystem}",
                *restrict,
            ]
        )
        + "\n"
    )
    check = subprocess.run(
        [SSHD, "-t", "-f", str(config)], capture_output=True, text=True, timeout=10
    )
    assert check.returncode == 0, check.stderr
    return SshdDevice(config, ssh_fingerprint(host_key.with_suffix(".pub")))


Setup = Callable[..., tuple[ManagerProc, SshdDevice]]


@pytest.fixture
def setup(tmp_path: Path, netconfd: Netconfd) -> Iterator[Setup]:
    """A manager (with extra environment) and an sshd device it has approved already."""
    managers: list[ManagerProc] = []

    def start(
        restrict: list[str], env: dict[str, str], key: str = "ed25519"
    ) -> tuple[ManagerProc, SshdDevice]:
        manager = ManagerProc(
            tmp_path / "manager", env={"CALLHOME_MANAGER__USERNAME": SSH_USER, **env}
        )
        managers.append(manager.start())
        device = sshd_device(tmp_path / "device", netconfd, manager, restrict, key)
        approved = manager.cli("approve", device.fingerprint, "--name", "dev")
        assert approved.returncode == 0, approved.stderr
        return manager, device

    yield start
    for manager in managers:
        manager.stop()


def come_online(manager: ManagerProc, device: SshdDevice) -> None:
    socat = device.call_home(manager.port)
    try:
        try:
            wait_until(lambda: manager.status(device.fingerprint) == "online", timeout=30)
        except AssertionError:
            events = [(e["kind"], e["detail"]) for e in manager.events()]
            raise AssertionError(
                f"never came online; events: {events}\nsocat/sshd said:\n{socat.output()}"
            ) from None
        got = manager.cli("netconf", "dev", "get-config")
        assert got.returncode == 0 and "<data" in got.stdout, got.stderr
    finally:
        socat.stop()


def assert_refused(manager: ManagerProc, device: SshdDevice, why: str | tuple[str, ...]) -> None:
    """The key exchange fails for ``why`` (one of them): in the reason the manager records,
    or in what sshd says when it is the side that finds no match first (the manager then
    sees the connection close before it read sshd's offer: which side finds it is a race)."""
    whys = (why,) if isinstance(why, str) else why
    socat = device.call_home(manager.port)
    try:
        event = wait_until(
            lambda: next((e for e in manager.events() if e["kind"] == "protocol-error"), None),
            timeout=30,
        )
        try:
            wait_until(
                lambda: any(w in f"{event['detail']['reason']}\n{socat.output()}" for w in whys),
                15,
            )
        except AssertionError:
            raise AssertionError(
                f"refused, but not for {why!r}: {event['detail']}\nsshd said:\n{socat.output()}"
            ) from None
        assert manager.status(device.fingerprint) != "online"
    finally:
        socat.stop()


OPENSSH_KEYS: dict[str, AlgorithmKind] = {
    "kexalgorithms": "kex",
    "ciphers": "ciphers",
    "macs": "macs",
    "hostkeyalgorithms": "signatures",
    "pubkeyacceptedalgorithms": "signatures",
}


def test_the_defaults_hold_all_that_openssh_offers_by_default_but_legacy() -> None:
    """Each algorithm OpenSSH's ssh offers when unconfigured is in our defaults, unless it
    is legacy (SHA-1 ...), a certificate (identities here are keys) or not in asyncssh."""
    ssh = require("ssh")["ssh"]
    out = subprocess.run(
        [ssh, "-F", "/dev/null", "-G", "dev1"], capture_output=True, text=True, timeout=10
    ).stdout
    offered = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    defaults = SshAlgorithms()
    for key, kind in OPENSSH_KEYS.items():
        names = offered[key].split(",")
        assert names, key
        have = set(supported_algorithms(kind))
        wanted = [
            n for n in names if not legacy_reason(kind, n) and "-cert-v01@" not in n and n in have
        ]
        missing = [n for n in wanted if n not in getattr(defaults, kind)]
        assert missing == [], f"{key}: OpenSSH offers {missing}, our defaults do not"


def test_manager_reaches_sshd_offering_only_aes256_ctr_and_sha512_etm(setup: Setup) -> None:
    manager, device = setup(["Ciphers aes256-ctr", "MACs hmac-sha2-512-etm@openssh.com"], {})
    come_online(manager, device)


def test_the_old_default_ciphers_do_not_reach_it(setup: Setup) -> None:
    """What happened before [algorithms] offered CTR modes, configured here explicitly."""
    manager, device = setup(
        ["Ciphers aes256-ctr", "MACs hmac-sha2-512-etm@openssh.com"],
        {"CALLHOME_MANAGER__ALGORITHMS__CIPHERS": OLD_DEFAULT_CIPHERS},
    )
    assert_refused(
        manager, device, f"No matching encryption algorithm found, sent {OLD_DEFAULT_CIPHERS}"
    )


LEGACY_PEERS = {
    "cbc-only": (
        ["Ciphers aes128-cbc"],
        "ed25519",
        ("No matching encryption algorithm", "no matching cipher found"),
        {"CALLHOME_MANAGER__ALGORITHMS__CIPHERS": "aes128-gcm@openssh.com,aes128-ctr,aes128-cbc"},
        "ciphers aes128-cbc (CBC)",
    ),
    "sha1-mac-only": (
        ["Ciphers aes128-ctr", "MACs hmac-sha1"],
        "ed25519",
        ("No matching MAC algorithm", "no matching MAC found"),
        {"CALLHOME_MANAGER__ALGORITHMS__MACS": '["hmac-sha2-256-etm@openssh.com", "hmac-sha1"]'},
        "macs hmac-sha1 (SHA-1)",
    ),
    "ssh-rsa-host-key-only": (
        ["HostKeyAlgorithms ssh-rsa"],
        "rsa",
        ("no matching host key type found", "No matching server host key algorithm"),
        {"CALLHOME_MANAGER__ALGORITHMS__SIGNATURES": "ssh-ed25519,rsa-sha2-256,ssh-rsa"},
        "signatures ssh-rsa (SHA-1)",
    ),
}


@pytest.mark.parametrize("peer", list(LEGACY_PEERS))
def test_a_legacy_only_peer_is_refused_by_default(setup: Setup, peer: str) -> None:
    restrict, key, reason, _, _ = LEGACY_PEERS[peer]
    manager, device = setup(restrict, {}, key)
    assert_refused(manager, device, reason)


@pytest.mark.parametrize("peer", list(LEGACY_PEERS))
def test_a_legacy_only_peer_is_accepted_when_the_operator_lists_it(setup: Setup, peer: str) -> None:
    restrict, key, _, opt_in, warning = LEGACY_PEERS[peer]
    manager, device = setup(restrict, opt_in, key)
    assert manager.proc is not None
    manager.proc.wait_for("allows legacy algorithms.*" + re.escape(warning))
    come_online(manager, device)
