"""tests/peers.py: a test whose program is missing skips and names it, with its package."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from peers import DEBIAN_PACKAGES, missing_reason, require


def test_a_program_that_is_there_is_found_by_its_full_path() -> None:
    assert require(sys.executable) == {sys.executable: sys.executable}


def test_a_missing_program_skips_naming_it_and_its_package(tmp_path: Path) -> None:
    absent = str(tmp_path / "sshd")
    with pytest.raises(pytest.skip.Exception) as skipped:
        require(sys.executable, "callhome-no-such-program", absent)
    reason = str(skipped.value)
    assert "callhome-no-such-program" in reason
    assert f"{absent} (Debian package openssh-server)" in reason
    assert sys.executable not in reason
    assert "make test" in reason


def test_each_program_is_named_with_its_debian_package() -> None:
    reason = missing_reason(["socat", "/usr/sbin/netconfd", "pgrep", "tmux"])
    for named in ("socat (Debian package socat)", "netconfd (Debian package netconfd)"):
        assert named in reason
    assert "pgrep (Debian package procps)" in reason


def test_make_test_installs_every_package_a_skip_names() -> None:
    """The packages the skip reasons name are the ones `.ci/debian-packages.sh test` installs."""
    script = Path(__file__).parents[2] / ".ci" / "debian-packages.sh"
    [line] = [ln for ln in script.read_text().splitlines() if ln.startswith("test=(")]
    installed = set(line.removeprefix("test=(").removesuffix(")").split())
    assert set(DEBIAN_PACKAGES.values()) <= installed
