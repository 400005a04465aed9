"""A command whose reader goes away (`callhome events | head`) ends quietly: no traceback,
and the exit code of a command ended by SIGPIPE. Against a real manager with enough
devices and events that each listing is several times what the pipe holds."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import subprocess

import httpx
import pytest

from harness import PY, ManagerProc

pytestmark = pytest.mark.integration

EXIT_PIPE = 141


def identity(n: int) -> str:
    """A well-formed SSH key fingerprint nobody holds."""
    digest = hashlib.sha256(f"device {n}".encode()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _read_one_line_then_close(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with stdout on a pipe of one page; read its first line, then close the
    pipe while the CLI still has much more to write. Its exit code and stderr."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    capacity = fcntl.fcntl(read_end, fcntl.F_GETPIPE_SZ)
    proc = subprocess.Popen(
        [*PY, *args], stdout=write_end, stderr=subprocess.PIPE, env={**os.environ, **env}
    )
    os.close(write_end)
    first = b""
    while b"\n" not in first:
        chunk = os.read(read_end, 1)
        assert chunk, "the CLI wrote nothing"
        first += chunk
    os.close(read_end)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, f"(pipe of {capacity} bytes)\n" + err.decode()


def test_every_command_ends_quietly_when_its_output_is_closed(manager: ManagerProc) -> None:
    with httpx.Client(
        base_url=manager.url, headers={"Authorization": f"Bearer {manager.token}"}, timeout=30
    ) as api:
        for n in range(300):
            response = api.post(f"/v1/devices/{identity(n)}/approve", json={"name": f"dev{n}"})
            response.raise_for_status()
    env = dict(manager.env)
    events = ["events", "--limit", "1000"]
    commands = [["devices"], ["devices", "--json"], events, [*events, "--json"]]
    for args in commands:
        whole = manager.cli(*args)
        assert whole.returncode == 0, whole.stderr
        assert len(whole.stdout) > 3 * 4096, args  # far more than the pipe holds

        code, err = _read_one_line_then_close(args, env)
        assert "Traceback" not in err and "BrokenPipe" not in err, err
        assert "Exception ignored" not in err, err
        assert code == EXIT_PIPE, (args, code, err)
