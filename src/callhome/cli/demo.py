"""``callhome demo``: a manager on SQLite and a few local devices calling home to it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

from callhome.cli.client import Api, ApiError, ApiTarget
from callhome.cli.setup import init_agent, init_manager
from callhome.config import default_client_file
from callhome.net.keys import identity_of, parse_public_key

SAMPLE_CONFIG = """<system xmlns="urn:example:demo"><hostname>{name}</hostname>\
<location>rack {n}</location><ntp-server><address>ntp1.example.net</address></ntp-server>\
</system>"""
EXAMPLE_EDIT = '<system xmlns="urn:example:demo"><location>lab</location></system>'
REFUSED_EDIT = (
    '<system xmlns="urn:example:demo"><ntp-server><address>ntp2.example.net</address>'
    "<port>0</port></ntp-server></system>"
)
GET_SCHEMA = (
    '<get-schema xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring">'
    "<identifier>callhome-demo</identifier></get-schema>"
)
DEVICE_EXTRAS = """
# the demo manager may open terminals and run commands on this device (seed section 9)
[[access]]
manager = "{manager}"
shell = true
exec = true

# and speak SNMP to it over the same connection (RFC 5592; seed section 8)
[snmp]
enabled = true
sys_descr = "callhome demo device {name}"
sys_location = "rack {n}"

[[snmp.users]]
name = "callhome"          # the manager's SSH user name is its securityName
read = ["1.3.6.1"]
write = ["1.3.6.1.2.1.1"]
"""
DEMO_MODULE = "callhome-demo@2024-06-01.yang"
"""The demo devices' YANG module (package data, ``callhome/cli/yang``): the edits above are
checked against it; the refused one is out of its range."""


def _install_module(directory: Path) -> Path:
    """The demo module, copied out of the package into ``directory/yang`` for the devices."""
    text = resources.files("callhome.cli").joinpath("yang", DEMO_MODULE).read_text("utf-8")
    target = directory / "yang" / DEMO_MODULE
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_text("utf-8") != text:
        target.write_text(text, "utf-8")
    return target


def _wait_for(pattern: str, proc: subprocess.Popen[str], timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        sys.stdout.write(line)
        if match := re.search(pattern, line):
            return match
    raise SystemExit("the manager did not start (see above); is port busy?")


def run_demo(directory: Path, devices: int, port: int, api_port: int) -> int:
    directory = directory.resolve()
    client_file = default_client_file()
    manager_key = init_manager(
        directory / "manager",
        [f"127.0.0.1:{port}", f"[::1]:{port}"],
        f"127.0.0.1:{api_port}",
        client_file,
    )
    manager_identity = identity_of(parse_public_key(manager_key)).fingerprint
    module = _install_module(directory)
    exe = [sys.executable, "-m", "callhome.cli.main"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    manager = subprocess.Popen(
        [*exe, "manager", "--config", str(directory / "manager" / "manager.toml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    procs: list[subprocess.Popen[Any]] = [manager]
    try:
        _wait_for(r"API on (\S+)", manager, 30)
        api = Api(ApiTarget.find())
        for n in range(1, devices + 1):
            name = f"demo-{n}"
            fp = init_agent(
                directory / name,
                [f"127.0.0.1:{port}"],
                [manager_key],
                {"{urn:example:demo}system": []},
            )
            with (directory / name / "agent.toml").open("a", encoding="utf-8") as toml:
                toml.write("\n# the demo's YANG module: edits are checked against it\n")
                toml.write(f"[yang]\nmodules = [{json.dumps(str(module))}]\n")
                toml.write(DEVICE_EXTRAS.format(manager=manager_identity, name=name, n=n))
            try:
                api.call("POST", f"/v1/devices/{fp}/approve", json={"name": name})
            except ApiError as exc:
                if exc.status != 409:
                    raise
            log = open(directory / f"{name}.log", "a")  # noqa: SIM115 - kept for the child
            procs.append(
                subprocess.Popen(
                    [*exe, "agent", "--config", str(directory / name / "agent.toml")],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            online = [d for d in api.call("GET", "/v1/devices") if d["status"] == "online"]
            if len(online) >= devices:
                break
            time.sleep(0.2)
        for n in range(1, devices + 1):
            name = f"demo-{n}"
            config = SAMPLE_CONFIG.format(name=name, n=n)
            try:
                api.call(
                    "POST",
                    f"/v1/devices/{name}/netconf",
                    json={"operation": "edit-config", "config": config},
                )
            except ApiError as exc:
                print(f"{name}: {exc}")
        print(
            f"""
The demo is running: a manager (call home on 127.0.0.1:{port}, API on 127.0.0.1:{api_port})
and {devices} devices that called home to it. Files are in {directory}.
From another terminal:
  .venv/bin/callhome devices
  .venv/bin/callhome netconf demo-1 get-config
  .venv/bin/callhome netconf demo-1 edit-config --config '{EXAMPLE_EDIT}'
The devices check edits against the YANG module {module.name}; this one is refused
(port 0 is out of range):
  .venv/bin/callhome netconf demo-1 edit-config --config '{REFUSED_EDIT}'
  .venv/bin/callhome netconf demo-1 rpc '{GET_SCHEMA}'
A terminal, a command and SNMP, over the same call-home connection:
  .venv/bin/callhome shell demo-1
  .venv/bin/callhome exec demo-1 -- uname -a
  .venv/bin/callhome snmp demo-1 get sysDescr.0 sysLocation.0
  .venv/bin/callhome snmp demo-1 walk system
What happened, and who did what:
  .venv/bin/callhome events
  .venv/bin/callhome audit
Press Ctrl-C to stop.""",
            flush=True,
        )
        assert manager.stdout is not None
        for line in manager.stdout:
            sys.stdout.write(line)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0
