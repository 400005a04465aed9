"""The README's "Using it", followed as written: only `callhome` commands, each a process of
its own, with a home of their own (HOME and XDG_CONFIG_HOME in a temporary folder) and no
client file, API address or token given to the CLI. The only changes are loopback addresses
and ports from the OS for the listeners, and a quick redial for the device."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from harness import PY, Proc, os_port, wait_until

pytestmark = pytest.mark.integration

CHANGE = '<system xmlns="urn:example:demo"><hostname>pdu-7.lab</hostname></system>'


class Operator:
    """An operator's shell: `callhome ...` with their own home and nothing else set."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            # whatever the caller's environment says, the CLI is told nothing
            "CALLHOME_CLIENT_FILE": "",
            "CALLHOME_API_URL": "",
            "CALLHOME_API_TOKEN": "",
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PY, *args],
            capture_output=True,
            text=True,
            timeout=90,
            cwd=self.home,
            env={**os.environ, **self.env},
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"callhome {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def start(self, *args: str, env: dict[str, str] | None = None) -> Proc:
        return Proc([*PY, *args], {**self.env, **(env or {})}, args[0], cwd=self.home)


def test_using_it_as_the_readme_says(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    me = Operator(home)
    etc, var = tmp_path / "etc-callhome", tmp_path / "var-lib-callhome"
    port = os_port()

    # callhome init manager /etc/callhome
    said = me.ok(
        "init", "manager", str(etc), "--listen", f"127.0.0.1:{port}", "--api", "127.0.0.1:0"
    )
    manager_key = said.strip().splitlines()[-1]
    assert manager_key.startswith("ssh-ed25519 ")

    # callhome manager --config /etc/callhome/manager.toml
    procs = [me.start("manager", "--config", str(etc / "manager.toml"))]
    try:
        procs[0].wait_for(r"API on http://")
        client_file = home / ".config" / "callhome" / "client.toml"
        assert stat.S_IMODE(client_file.stat().st_mode) == 0o600

        # callhome init agent /var/lib/callhome --manager ... --manager-key "ssh-ed25519 ..."
        said = me.ok(
            "init",
            "agent",
            str(var),
            "--manager",
            f"127.0.0.1:{port}",
            "--manager-key",
            manager_key,
        )
        fingerprint = re.search(r"callhome approve (SHA256:\S+) --name NAME", said)
        assert fingerprint, said
        fp = fingerprint.group(1)

        # callhome agent --config /var/lib/callhome/agent.toml
        fast = {
            "CALLHOME_RECONNECT__BACKOFF_INITIAL": "0.1",
            "CALLHOME_RECONNECT__BACKOFF_MAX": "0.5",
        }
        procs.append(me.start("agent", "--config", str(var / "agent.toml"), env=fast))

        # callhome devices: the device is there, pending
        def pending_row() -> str:
            rows = [ln for ln in me.ok("devices").splitlines() if fp in ln]
            return rows[0] if rows and " pending " in rows[0] else ""

        assert wait_until(pending_row, timeout=30).startswith("-")  # no name yet

        # callhome approve SHA256:... --name pdu-7
        assert me.ok("approve", fp, "--name", "pdu-7").strip() == f"approved {fp} as pdu-7"

        def online() -> bool:
            return any(
                ln.startswith("pdu-7 ") and " online " in ln for ln in me.ok("devices").splitlines()
            )

        wait_until(online, timeout=30)

        # callhome netconf pdu-7 edit-config --config @change.xml, then get-config --filter
        (home / "change.xml").write_text(CHANGE)
        me.ok("netconf", "pdu-7", "edit-config", "--config", "@change.xml")
        got = me.ok(
            "netconf", "pdu-7", "get-config", "--filter", '<system xmlns="urn:example:demo"/>'
        )
        assert "<hostname>pdu-7.lab</hostname>" in got

        # callhome jobs --device pdu-7, callhome events
        jobs = me.ok("jobs", "--device", "pdu-7")
        assert "edit-config" in jobs and "get-config" in jobs and "succeeded" in jobs
        events = me.ok("events")
        assert "approved" in events and "connected" in events

        # init again does not overwrite what is there
        again = me.run("init", "agent", str(var), "--manager", f"127.0.0.1:{port}")
        assert again.returncode == 1 and "not overwritten" in again.stderr
        assert manager_key in (var / "agent.toml").read_text()
    finally:
        for proc in reversed(procs):
            proc.stop()
