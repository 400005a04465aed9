"""Terminals, commands and forwards through call home: real manager, agent, CLI and tmux."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from harness import PY, AgentProc, ManagerProc, os_port, wait_until
from peers import require

pytestmark = pytest.mark.integration

SYS = '<system xmlns="urn:example:demo"><hostname>{}</hostname></system>'


def allow(agent: AgentProc, forward: list[str] | None = None, *, command: str = "/bin/sh") -> None:
    """Give every manager key shell, exec and the given forwards on this device."""
    targets = ", ".join(f'"{t}"' for t in forward or [])
    with open(agent.directory / "agent.toml", "a") as f:
        f.write(
            f'\n[[access]]\nmanager = "*"\nshell = true\nexec = true\n'
            f'forward = [{targets}]\ncommand = "{command}"\n'
        )


def online(manager: ManagerProc, agent: AgentProc, name: str) -> None:
    agent.start()
    wait_until(lambda: manager.status(agent.fingerprint) == "pending")
    assert manager.cli("approve", agent.fingerprint, "--name", name).returncode == 0
    wait_until(lambda: manager.status(agent.fingerprint) == "online")


def netconf_still_works(manager: ManagerProc, name: str, value: str) -> None:
    edit = manager.cli("netconf", name, "edit-config", "--config", SYS.format(value))
    assert edit.returncode == 0, edit.stderr
    got = manager.cli("netconf", name, "get-config")
    assert got.returncode == 0, got.stderr
    assert f"<hostname>{value}</hostname>" in got.stdout


def audit(manager: ManagerProc) -> list[dict]:
    response = manager.api("GET", "/v1/audit", params={"limit": 1000})
    response.raise_for_status()
    return response.json()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def device(manager, make_agent):
    agent = make_agent("dev")
    allow(agent, ["127.0.0.1:22"])
    online(manager, agent, "dev1")
    return agent


# -- shell in tmux --------------------------------------------------------------------------


class Tmux:
    def __init__(self, program: str, socket_path: Path) -> None:
        self.program = program
        self.socket = str(socket_path)

    def __call__(self, *args: str) -> str:
        out = subprocess.run(
            [self.program, "-S", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "t")

    def wait_for(self, text: str, timeout: float = 15) -> str:
        return wait_until(lambda: self.screen() if text in self.screen() else "", timeout)


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(require("tmux")["tmux"], tmp_path / "tmux.sock")
    yield t
    subprocess.run([t.program, "-S", t.socket, "kill-server"], capture_output=True, timeout=10)


def test_shell_in_tmux_output_resize_exit_status_and_restore(tmux, tmp_path, manager, device):
    before, after = tmp_path / "stty.before", tmp_path / "stty.after"
    cli = " ".join([*PY, "shell", "dev1"])
    script = tmp_path / "run.sh"
    script.write_text(
        f"export CALLHOME_CLIENT_FILE={manager.client_file}\n"
        f"stty -g > {before}\n{cli}\necho EXIT=$?\nstty -g > {after}\nsleep 60\n"
    )
    tmux("new-session", "-d", "-x", "100", "-y", "30", "-s", "t", f"sh {script}")
    tmux("send-keys", "-t", "t", "PS1='dev$ '", "Enter")
    tmux("send-keys", "-t", "t", "echo hello-$((6*7))", "Enter")
    tmux.wait_for("hello-42")
    tmux("send-keys", "-t", "t", "stty size", "Enter")
    tmux.wait_for("30 100")
    tmux("resize-window", "-t", "t", "-x", "120", "-y", "40")
    time.sleep(0.3)
    tmux("send-keys", "-t", "t", "clear; stty size", "Enter")
    tmux.wait_for("40 120")
    # Ctrl-C reaches the device: it interrupts a command there, the shell lives on
    tmux("send-keys", "-t", "t", "sleep 30; echo not-interrupted", "Enter")
    time.sleep(0.5)
    tmux("send-keys", "-t", "t", "C-c", "")
    tmux("send-keys", "-t", "t", "echo still-$((1+1))", "Enter")
    screen = tmux.wait_for("still-2")
    assert "not-interrupted" not in [line.strip() for line in screen.splitlines()]
    tmux("send-keys", "-t", "t", "exit 3", "Enter")
    tmux.wait_for("EXIT=3")
    wait_until(lambda: after.exists() and after.read_text().strip())
    assert before.read_text() == after.read_text()  # the local terminal is restored

    entries = [e for e in audit(manager) if e["action"] == "close terminal"]
    assert entries and entries[-1]["detail"]["exit_status"] == 3
    assert entries[-1]["detail"]["bytes_from_device"] > 0
    assert entries[-1]["detail"]["bytes_to_device"] > 0
    assert entries[-1]["target"] == "dev1" and entries[-1]["actor"].startswith("token:")
    netconf_still_works(manager, "dev1", "after-shell")


# -- exec -----------------------------------------------------------------------------------


def test_exec_streams_apart_and_returns_status(manager, device):
    r = manager.cli("exec", "dev1", "--", "sh", "-c", "echo out; echo err >&2; exit 7", input="")
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")
    r = manager.cli("exec", "dev1", "--", "cat", input="through stdin\n")
    assert (r.returncode, r.stdout) == (0, "through stdin\n")
    r = manager.cli("exec", "dev1", "--", "sh", "-c", "kill -TERM $$", input="")
    assert r.returncode == 128 + signal.SIGTERM
    big = manager.cli("exec", "-n", "dev1", "--", "head", "-c", "3000000", "/dev/zero")
    assert big.returncode == 0 and len(big.stdout) == 3_000_000
    last = [e for e in audit(manager) if e["action"] == "close exec"][-1]
    assert last["detail"]["bytes_from_device"] == 3_000_000
    assert last["detail"]["exit_status"] == 0


# -- forwards -------------------------------------------------------------------------------


def test_forwards_allowlist_and_closed_port(manager, make_agent):
    closed = os_port()
    with socket.create_server(("127.0.0.1", 0)) as echo_server:
        open_port = echo_server.getsockname()[1]
        agent = make_agent("dev")
        allow(agent, [f"127.0.0.1:{open_port}", f"127.0.0.1:{closed}"])
        online(manager, agent, "dev1")

        refused = manager.cli("connect", "dev1", "9", input="")
        assert refused.returncode == 255
        assert "forwarding to 127.0.0.1:9 is not allowed" in refused.stderr

        nothing = manager.cli("connect", "dev1", str(closed), input="")
        assert nothing.returncode == 255
        assert f"could not connect to 127.0.0.1:{closed}" in nothing.stderr

        proc = subprocess.Popen(
            [*PY, "connect", "dev1", str(open_port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **manager.env},
        )
        echo_server.settimeout(15)
        conn, _ = echo_server.accept()
        with conn:
            conn.settimeout(15)
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(b"ping\n")
            proc.stdin.flush()
            assert conn.recv(100) == b"ping\n"
            conn.sendall(b"pong\n")
            assert proc.stdout.readline() == b"pong\n"
            proc.stdin.close()
            assert conn.recv(100) == b""  # EOF crosses as a half-close
        assert proc.wait(15) == 0
    netconf_still_works(manager, "dev1", "after-forwards")
    actions = [e["action"] for e in audit(manager)]
    assert "close forward" in actions


# -- authorization --------------------------------------------------------------------------


def test_token_without_terminal_right_is_refused(tmp_path, make_agent):
    m = ManagerProc(tmp_path / "mgr")
    reader = "reader-token-123"
    (m.directory / "api-tokens.toml").write_text(
        '[[token]]\nname = "reader"\n'
        f'sha256 = "{hashlib.sha256(reader.encode()).hexdigest()}"\nrights = ["read"]\n'
    )
    m.start()
    try:
        agent = AgentProc(tmp_path / "dev", [f"127.0.0.1:{m.port}"], [m.public_key])
        allow(agent)
        online(m, agent, "dev1")
        ws_url = m.url.replace("http://", "ws://") + "/v1/devices/dev1/exec?command=true"
        with pytest.raises(InvalidStatus) as caught:
            connect(ws_url, additional_headers={"Authorization": f"Bearer {reader}"})
        assert caught.value.response.status_code == 403
        r = m.cli("--token", reader, "exec", "dev1", "--", "true", input="")
        assert r.returncode == 255
        assert "token:reader does not have the 'terminal' right" in r.stderr
        # the reader may read, not operate
        headers = {"Authorization": f"Bearer {reader}"}
        assert httpx.get(m.url + "/v1/devices", headers=headers).status_code == 200
        denied = httpx.post(m.url + "/v1/devices/x/reject", headers=headers)
        assert denied.status_code == 403
        assert (
            httpx.get(m.url + "/v1/devices", headers={"Authorization": "Bearer no"}).status_code
            == 401
        )
        ok = m.cli("exec", "dev1", "--", "true", input="")  # the admin token has every right
        assert ok.returncode == 0, ok.stderr
        refusals = [e for e in audit(m) if e["action"] == "refused exec"]
        assert [e["actor"] for e in refusals] == ["token:reader", "token:reader"]
        assert "does not have the 'terminal' right" in refusals[0]["detail"]["reason"]
        assert refusals[0]["detail"]["command"] == "true"
        agent.stop()
    finally:
        m.stop()


def test_device_away_is_said_at_once(manager, device):
    device.stop()
    wait_until(lambda: manager.status(device.fingerprint) == "offline")
    for args in (["shell", "dev1"], ["exec", "dev1", "--", "true"], ["connect", "dev1", "22"]):
        # refused, not waited for: a command that waited for the device would never end
        # (the run is bounded, and the refusal comes before any wait)
        r = manager.cli(*args, input="", timeout=20)
        assert r.returncode == 255, r
        assert "device 'dev1' is not connected" in r.stderr
    r = manager.cli("exec", "nosuch", "--", "true", input="")
    assert r.returncode == 255 and "no device named 'nosuch'" in r.stderr
    refused = [e for e in audit(manager) if e["action"].startswith("refused ")]
    assert [(e["action"], e["target"]) for e in refused] == [
        ("refused terminal", "dev1"),
        ("refused exec", "dev1"),
        ("refused forward", "dev1"),
        ("refused exec", "nosuch"),
    ]
    assert refused[0]["detail"]["reason"] == "device 'dev1' is not connected"
    assert refused[2]["detail"]["target"] == "127.0.0.1:22"


def test_refused_when_the_device_allows_nothing(manager, make_agent):
    agent = make_agent("dev")  # no [[access]]
    online(manager, agent, "dev1")
    r = manager.cli("exec", "dev1", "--", "true", input="")
    assert r.returncode == 255 and "not allowed to this manager's key" in r.stderr
    r = manager.cli("connect", "dev1", "22", input="")
    assert r.returncode == 255 and "not allowed" in r.stderr
    refused = {e["action"]: e["detail"] for e in audit(manager) if e["action"].startswith("ref")}
    assert set(refused) == {"refused exec", "refused forward"}
    assert refused["refused exec"]["error"] == "ServiceRefused"
    assert "not allowed to this manager's key" in refused["refused exec"]["reason"]
    netconf_still_works(manager, "dev1", "nothing-allowed")


# -- bad input ------------------------------------------------------------------------------


def test_terminal_closed_abruptly(manager, device):
    pgrep = require("pgrep")["pgrep"]

    def running() -> bool:
        found = subprocess.run([pgrep, "-f", "sleep 4242"], capture_output=True, timeout=10)
        return found.returncode == 0

    shell = subprocess.Popen(
        [*PY, "shell", "dev1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env={**os.environ, **manager.env},
    )
    try:
        assert shell.stdin is not None
        shell.stdin.write(b"sleep 4242\n")
        shell.stdin.flush()
        wait_until(running)
    finally:
        shell.kill()  # no goodbye: the WebSocket just drops
        shell.wait(10)
    closed = wait_until(
        lambda: [e for e in audit(manager) if e["action"] == "close terminal"], timeout=20
    )
    assert closed[-1]["detail"]["reason"] == "the operator went away"
    wait_until(lambda: not running())  # the device ended what ran in that terminal
    assert manager.status(device.fingerprint) == "online"
    netconf_still_works(manager, "dev1", "after-abrupt")


def test_client_that_never_reads_keeps_memory_bounded(manager, device):
    ws_url = manager.url.replace("http://", "ws://")
    with connect(
        ws_url + "/v1/devices/dev1/exec?command=cat+/dev/zero",
        additional_headers={"Authorization": f"Bearer {manager.token}"},
        max_queue=1,
        compression=None,
        close_timeout=1,
    ) as ws:
        sock = ws.socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        ws.send(json.dumps({"type": "eof"}))
        pids = {"manager": manager.proc.proc.pid, "agent": device.proc.proc.pid}
        base = {who: rss_kib(pid) for who, pid in pids.items()}
        time.sleep(3)  # the device could produce gigabytes meanwhile
        for who, pid in pids.items():
            grown = rss_kib(pid) - base[who]
            assert grown < 64 * 1024, f"the {who} grew by {grown} KiB"
    closed = wait_until(
        lambda: [e for e in audit(manager) if e["action"] == "close exec"], timeout=20
    )
    moved = closed[-1]["detail"]["bytes_from_device"]
    assert moved < 256 * 1024 * 1024
    netconf_still_works(manager, "dev1", "after-backpressure")


def test_recording_in_asciicast_v2(tmp_path, make_agent):
    m = ManagerProc(
        tmp_path / "mgr", env={"CALLHOME_TERMINAL__RECORD": "rec/{device}-{id}.cast"}
    ).start()
    try:
        agent = AgentProc(tmp_path / "dev", [f"127.0.0.1:{m.port}"], [m.public_key])
        allow(agent)
        online(m, agent, "dev1")
        r = m.cli("shell", "dev1", input="echo recorded-$((2*3))\nexit 5\n")
        assert r.returncode == 5, r.stderr
        (cast,) = (m.directory / "rec").glob("dev1-*.cast")
        lines = cast.read_text().splitlines()
        header = json.loads(lines[0])
        assert header["version"] == 2 and header["width"] > 0
        output = "".join(json.loads(line)[2] for line in lines[1:])
        assert "recorded-6" in output
        agent.stop()
    finally:
        m.stop()
