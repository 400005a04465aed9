"""`make run`'s demo shows the seed's three examples: NETCONF, a terminal and SNMP over the
devices' call-home connections, and the audit log of what was done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from harness import PY, Proc, os_port, wait_until

pytestmark = pytest.mark.integration


def test_the_demo_devices_offer_netconf_a_terminal_and_snmp(tmp_path: Path) -> None:
    env = {"CALLHOME_CLIENT_FILE": str(tmp_path / "client.toml"), "HOME": str(tmp_path)}
    port, api_port = os_port(), os_port()
    demo = Proc(
        [
            *PY,
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--devices",
            "2",
            "--port",
            str(port),
            "--api-port",
            str(api_port),
        ],
        env,
        "demo",
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PY, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
        )

    try:
        demo.wait_for(r"Press Ctrl-C to stop", timeout=90)
        banner = demo.output()
        for command in (
            "callhome shell demo-1",
            "callhome exec demo-1 -- uname -a",
            "callhome snmp demo-1 get sysDescr.0",
            "callhome audit",
        ):
            assert command in banner
        listed = json.loads(cli("devices", "--json").stdout)
        assert sorted(d["name"] for d in listed if d["status"] == "online") == ["demo-1", "demo-2"]

        ran = cli("exec", "demo-1", "--", "uname", "-s")
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == os.uname().sysname
        snmp = cli("snmp", "demo-2", "get", "sysDescr.0", "sysLocation.0")
        assert snmp.returncode == 0, snmp.stderr
        assert "callhome demo device demo-2" in snmp.stdout and "rack 2" in snmp.stdout
        refused = cli(
            "netconf",
            "demo-1",
            "edit-config",
            "--config",
            '<system xmlns="urn:example:demo"><ntp-server><address>x</address><port>0</port>'
            "</ntp-server></system>",
        )
        assert refused.returncode == 1 and "invalid-value" in refused.stderr

        def audited() -> list[dict]:
            shown = cli("audit", "--json")
            assert shown.returncode == 0, shown.stderr
            return json.loads(shown.stdout)

        entries = wait_until(
            lambda: (
                (got := audited())
                and any(e["action"].startswith("close exec") for e in got)
                and got
            )
        )
        actions = [e["action"] for e in entries]
        assert "submit snmp" in actions and "submit netconf" in actions
        table = cli("audit")
        assert table.returncode == 0 and table.stdout.startswith("ID")
    finally:
        demo.stop(signal.SIGINT)
