"""NETCONF notifications replayed across a device's absence: real managers and a real device.

The device calls two managers in turn (A, then B). While A is down, the device is managed by
B, which changes its configuration; when A is back (and B gone), the device calls A again and
A's subscription replays, from the last notification A stored, everything the device logged
meanwhile: none lost, none stored twice.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness import AgentProc, ManagerProc, wait_until

pytestmark = pytest.mark.integration

SYS = '<system xmlns="urn:example:demo"><hostname>{}</hostname></system>'
KIND = "netconf-notification"


def approve(manager: ManagerProc, fingerprint: str, name: str) -> None:
    wait_until(lambda: manager.status(fingerprint) == "pending")
    result = manager.cli("approve", fingerprint, "--name", name)
    assert result.returncode == 0, result.stderr
    wait_until(lambda: manager.status(fingerprint) == "online")


def notifications(manager: ManagerProc) -> list[dict[str, Any]]:
    return [e for e in manager.events(device="dev1") if e["kind"] == KIND]


def edit(manager: ManagerProc, hostname: str) -> None:
    result = manager.cli("netconf", "dev1", "edit-config", "--config", SYS.format(hostname))
    assert result.returncode == 0, result.stderr


def changes(events: list[dict[str, Any]]) -> list[str]:
    return [e["detail"]["xml"] for e in events if e["detail"]["name"] == "netconf-config-change"]


def device_log(directory: Path) -> list[dict[str, Any]]:
    path = directory / "notifications.log"
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_notifications_replayed_after_manager_absence(tmp_path: Path) -> None:
    a = ManagerProc(tmp_path / "a").start()
    b = ManagerProc(tmp_path / "b")
    agent = AgentProc(
        tmp_path / "dev",
        [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"],
        [a.public_key, b.public_key],
    )
    try:
        agent.start()
        approve(a, agent.fingerprint, "dev1")
        edit(a, "alpha")
        wait_until(lambda: len(changes(notifications(a))) == 1)
        first_stored = notifications(a)[0]["detail"]["eventTime"]

        # A goes away; the device fails over to B, which changes the configuration twice
        a.stop()
        b.start()
        approve(b, agent.fingerprint, "dev1")
        edit(b, "beta")
        edit(b, "gamma")

        # A comes back on the same port and B goes: the device calls A again
        a.start()
        b.stop()
        wait_until(lambda: a.status(agent.fingerprint) == "online", timeout=30)
        # alpha (made through A), beta and gamma (through B, replayed to A)
        wait_until(lambda: len(changes(notifications(a))) >= 3, timeout=30)

        stored = notifications(a)
        assert len(changes(stored)) == 3
        assert all("system" in x and "merge" in x for x in changes(stored))
        pairs = Counter((e["detail"]["eventTime"], e["detail"]["digest"]) for e in stored)
        assert max(pairs.values()) == 1, "a notification was stored twice"

        # everything the device logged since A's first stored notification is on A, once
        def all_on_a() -> bool:
            logged = [r for r in device_log(agent.directory) if r["t"] >= 0]
            times = {e["detail"]["eventTime"] for e in notifications(a)}
            wanted = [r for r in logged if _iso(r["t"]) >= first_stored]
            return all(_iso(r["t"]) in times for r in wanted)

        wait_until(all_on_a, timeout=20)
        names = Counter(e["detail"]["name"] for e in notifications(a))
        assert names["netconf-session-start"] >= 2  # B's session and A's second one
        assert names["netconf-session-end"] >= 2

        # the CLI shows them
        shown = a.cli("events", "--device", "dev1", "--limit", "1000")
        assert shown.returncode == 0, shown.stderr
        assert KIND in shown.stdout and "netconf-config-change" in shown.stdout
    finally:
        agent.stop()
        a.stop()
        b.stop()


def test_follow_prints_new_notifications(tmp_path: Path) -> None:
    manager = ManagerProc(tmp_path / "m").start()
    agent = AgentProc(tmp_path / "dev", [f"127.0.0.1:{manager.port}"], [manager.public_key])
    follower: subprocess.Popen[str] | None = None
    try:
        agent.start()
        approve(manager, agent.fingerprint, "dev1")
        follower = subprocess.Popen(
            [*_cli(), "events", "--device", "dev1", "--follow"],
            stdout=subprocess.PIPE,
            text=True,
            env=_env(manager),
        )
        edit(manager, "delta")
        wait_until(lambda: changes(notifications(manager)))
    finally:
        if follower is not None:
            follower.terminate()
            out, _ = follower.communicate(timeout=10)
            assert "netconf-config-change" in out
        agent.stop()
        manager.stop()


def _cli() -> list[str]:
    from harness import PY

    return PY


def _env(manager: ManagerProc) -> dict[str, str]:
    import os

    return {**os.environ, **manager.env, "PYTHONUNBUFFERED": "1"}


def _iso(micros: int) -> str:
    from callhome.agent.notifications import format_time

    return format_time(micros)
