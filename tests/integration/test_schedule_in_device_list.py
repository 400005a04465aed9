"""The device list shows each device's call-home schedule and when it is next expected."""

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness import ManagerProc, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[ManagerProc]:
    """A manager that never ends a periodic session by itself: here the test (or the
    device's idle-timeout) ends it."""
    m = ManagerProc(tmp_path / "manager", env={"CALLHOME_MANAGER__PERIODIC_LINGER": "-1"}).start()
    yield m
    m.stop()


PERIOD = 20.0
CLOSE = '<close-session xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>'


def approve(manager: ManagerProc, fingerprint: str, name: str) -> None:
    wait_until(lambda: manager.status(fingerprint) == "pending")
    result = manager.cli("approve", fingerprint, "--name", name)
    assert result.returncode == 0, result.stderr
    wait_until(lambda: manager.status(fingerprint) == "online")


def listed(manager: ManagerProc, name: str) -> dict:
    result = manager.cli("devices", "--json")
    assert result.returncode == 0, result.stderr
    return next(d for d in json.loads(result.stdout) if d["name"] == name)


def row(manager: ManagerProc, name: str) -> dict[str, str]:
    result = manager.cli("devices")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines[0]
    starts = [header.index(h) for h in header.split()]
    line = next(line for line in lines[1:] if line.split()[0] == name)
    cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    return dict(zip(header.split(), cells, strict=True))


def test_schedule_and_next_expected_time_in_the_device_list(manager, make_agent):
    agent = make_agent("dev").start()
    approve(manager, agent.fingerprint, "dev1")

    # learned on connect (the stored copy was unknown): the default, persistent
    device = wait_until(lambda: (d := listed(manager, "dev1"))["schedule"] and d)
    assert device["schedule"]["kind"] == "persistent"
    assert device["next_expected"]["state"] == "connected"
    shown = row(manager, "dev1")
    assert (shown["SCHEDULE"], shown["NEXT"]) == ("persistent", "now")

    # an anchor half a period ahead, so the next boundary is never a moment away
    anchor = math.floor(time.time()) + PERIOD / 2
    anchor_text = datetime.fromtimestamp(anchor, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = manager.short_schedule("dev1", 20, anchor_text)
    assert result.returncode == 0, result.stderr

    schedule = wait_until(lambda: listed(manager, "dev1")["schedule"]["kind"] == "periodic")
    device = listed(manager, "dev1")
    schedule = device["schedule"]
    assert schedule["period"] == pytest.approx(PERIOD)
    assert schedule["anchor"] == anchor
    assert device["next_expected"]["state"] == "connected"
    shown = row(manager, "dev1")
    assert (shown["SCHEDULE"], shown["NEXT"]) == ("periodic 20s", "now")
    learned = [e for e in manager.events(device="dev1") if e["kind"] == "schedule-learned"]
    assert [e["detail"]["kind"] for e in learned] == ["persistent", "periodic"]
    assert learned[-1]["detail"]["source"] in ("job", "notification")

    # the manager ends the session: the device waits for its next boundary
    close = manager.cli("netconf", "dev1", "rpc", CLOSE)
    assert close.returncode == 0, close.stderr
    device = wait_until(lambda: (d := listed(manager, "dev1"))["status"] == "offline" and d)
    left = device["since"]
    expected = device["next_expected"]
    assert expected["state"] == "expected"
    n = (expected["time"] - anchor) / PERIOD
    assert n == pytest.approx(round(n), abs=1e-6)  # on anchor + n * period
    assert left <= expected["time"] < left + PERIOD  # the first one after it left
    shown = row(manager, "dev1")
    assert shown["SCHEDULE"] == "periodic 20s"
    assert shown["NEXT"] == time.strftime("%H:%M:%S", time.localtime(expected["time"]))
    assert shown["STATUS"] == "offline"

    # and it does come back then, not before
    wait_until(lambda: manager.status(agent.fingerprint) == "online", timeout=PERIOD + 15)
    back = [e for e in manager.events(device="dev1") if e["kind"] == "connected"][-1]
    assert back["time"] >= expected["time"] - 0.2
    assert listed(manager, "dev1")["next_expected"]["state"] == "connected"
