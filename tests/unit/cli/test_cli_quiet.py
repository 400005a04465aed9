"""No noise: the CLI hides asyncssh's DSA deprecation warning, and only that one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PY = [sys.executable, "-m", "callhome.cli.main"]

DSA_WARNING = "DSA is deprecated"


def _asyncssh_warns() -> bool:
    plain = subprocess.run(
        [sys.executable, "-c", "import asyncssh"], capture_output=True, text=True, timeout=60
    )
    return DSA_WARNING in plain.stderr


def test_a_command_that_loads_asyncssh_prints_no_dsa_warning(tmp_path: Path) -> None:
    if not _asyncssh_warns():
        pytest.skip("this asyncssh and cryptography do not warn about DSA: nothing to hide")
    done = subprocess.run(
        [*PY, "init", "manager", str(tmp_path / "m"), "--no-client-file"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert DSA_WARNING not in done.stderr
    assert "Warning" not in done.stderr, done.stderr


def test_other_warnings_still_show(tmp_path: Path) -> None:
    """The filter is for that one message of that one category, nothing more."""
    script = "\n".join(
        [
            "import sys, warnings",
            "from callhome.cli.main import main",
            f"code = main(['init', 'manager', {str(tmp_path / 'm')!r}, '--no-client-file'])",
            "from cryptography.utils import CryptographyDeprecationWarning as W",
            "warnings.warn('TripleDES has moved', W)",
            "warnings.warn('a DSA key is fine here', UserWarning)",
            "import asyncssh.crypto.dsa",
            "sys.exit(code)",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "CryptographyDeprecationWarning: TripleDES has moved" in done.stderr
    assert "UserWarning: a DSA key is fine here" in done.stderr
    assert DSA_WARNING not in done.stderr
