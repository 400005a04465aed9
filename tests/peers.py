"""Programs the tests start that are not ours (socat, sshd, tmux, netconfd, snmpd, openssl ...).

A test that starts one calls :func:`require` first: where the program is missing the test
skips and says which program and which Debian package has it (``make test`` and ``.ci/run``
install them all with ``.ci/debian-packages.sh test``), instead of crashing in ``Popen``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

DEBIAN_PACKAGES = {
    "socat": "socat",
    "ssh": "openssh-client",
    "scp": "openssh-client",
    "ssh-keygen": "openssh-client",
    "sshd": "openssh-server",
    "tmux": "tmux",
    "netconfd": "netconfd",
    "netconf-subsystem": "netconfd",
    "snmpd": "snmpd",
    "snmpget": "snmp",
    "snmpwalk": "snmp",
    "snmpbulkwalk": "snmp",
    "snmpset": "snmp",
    "dbclient": "dropbear-bin",
    "openssl": "openssl",
    "pgrep": "procps",
}
"""Which Debian package has each program (by base name), for the skip reason."""


def find_program(program: str) -> str | None:
    """The full path of ``program`` (a name looked up on PATH, or an absolute path), if it
    is there and executable."""
    if os.path.isabs(program):
        return program if os.access(program, os.X_OK) else None
    return shutil.which(program)


def missing_reason(programs: list[str]) -> str:
    """Why a test that needs ``programs`` skips: each one named with its Debian package."""
    named = []
    for program in programs:
        package = DEBIAN_PACKAGES.get(Path(program).name)
        named.append(f"{program} (Debian package {package})" if package else program)
    return (
        f"not installed: {', '.join(named)}; `make test` installs the tests' programs "
        "(.ci/debian-packages.sh test)"
    )


def require(*programs: str) -> dict[str, str]:
    """The full path of each program, or skip the calling test naming what is missing."""
    __tracebackhide__ = True  # the skip is reported at the caller's line
    found: dict[str, str] = {}
    missing: list[str] = []
    for program in programs:
        path = find_program(program)
        if path is None:
            missing.append(program)
        else:
            found[program] = path
    if missing:
        pytest.skip(missing_reason(missing))
    return found


def require_sshd_runtime() -> None:
    """sshd run as root refuses to start without its privilege separation folder."""
    privsep = Path("/run/sshd")
    if os.geteuid() != 0 or privsep.is_dir():
        return
    try:
        privsep.mkdir(mode=0o755, parents=True)
    except OSError as exc:
        pytest.skip(f"sshd needs {privsep} and it cannot be created: {exc.strerror}")
