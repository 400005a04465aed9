"""A device on a periodic schedule, set from the manager's CLI, over reverse-ssh."""

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


PERIOD = 3.0
CLOSE = '<close-session xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>'
FILTER = '<netconf-server xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-server"/>'


def approve(manager: ManagerProc, fingerprint: str, name: str) -> None:
    wait_until(lambda: manager.status(fingerprint) == "pending")
    result = manager.cli("approve", fingerprint, "--name", name)
    assert result.returncode == 0, result.stderr
    wait_until(lambda: manager.status(fingerprint) == "online")


def connections(manager: ManagerProc) -> list[float]:
    return sorted(e["time"] for e in manager.events() if e["kind"] == "connected")


def test_periodic_device_returns_at_the_next_boundary(manager, make_agent):
    agent = make_agent("dev").start()
    approve(manager, agent.fingerprint, "dev1")

    anchor = math.floor(time.time())
    anchor_text = datetime.fromtimestamp(anchor, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = manager.short_schedule("dev1", PERIOD, anchor_text)
    assert result.returncode == 0, result.stderr

    # an invalid schedule is refused by the device and the old one stays
    refused = manager.short_schedule("dev1", 3, "noon")
    assert refused.returncode == 1
    assert "invalid-value" in refused.stderr and "anchor-time" in refused.stderr
    # callhome schedule follows the model: whole minutes, refused before anything is queued
    jobs_before = len(manager.api("GET", "/v1/jobs", params={"limit": 1000}).json())
    refused = manager.cli("schedule", "dev1", "--periodic", "90s")
    assert refused.returncode == 1 and "whole number of minutes" in refused.stderr
    assert len(manager.api("GET", "/v1/jobs", params={"limit": 1000}).json()) == jobs_before
    got = manager.cli("netconf", "dev1", "get-config", "--filter", FILTER)
    assert got.returncode == 0, got.stderr
    assert "<period>0.05</period>" in got.stdout and anchor_text in got.stdout

    before = len(connections(manager))
    closed_at = time.time()
    close = manager.cli("netconf", "dev1", "rpc", CLOSE)
    close_done = time.time()
    assert close.returncode == 0, close.stderr
    wait_until(lambda: len(connections(manager)) > before, timeout=15)
    back = connections(manager)[before]

    def boundary(t: float) -> float:
        return anchor + math.ceil((t - anchor) / PERIOD) * PERIOD

    # the device hung up somewhere between closed_at and close_done: it returns at the first
    # boundary after that, not before (a little slack for clocks), and skips none
    assert back >= boundary(closed_at) - 0.2
    assert back < boundary(close_done) + PERIOD
