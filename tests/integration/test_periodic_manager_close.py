"""The manager ends a periodic device's session by itself once there is nothing left to do
(``periodic_linger``), and the device returns at its next boundary; a persistent device is
never ended. Real manager and agent processes over reverse-ssh; no close-session from the CLI.
"""

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness import ManagerProc, wait_until

pytestmark = pytest.mark.integration

PERIOD = 6.0
IDLE = 300  # the device's idle-timeout: far too long to explain any hang-up here
LINGER = "0.5"


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[ManagerProc]:
    m = ManagerProc(tmp_path / "manager", env={"CALLHOME_MANAGER__PERIODIC_LINGER": LINGER}).start()
    yield m
    m.stop()


def approve(manager: ManagerProc, fingerprint: str, name: str) -> None:
    wait_until(lambda: manager.status(fingerprint) == "pending")
    result = manager.cli("approve", fingerprint, "--name", name)
    assert result.returncode == 0, result.stderr
    wait_until(lambda: manager.status(fingerprint) == "online")


KINDS = ("connected", "disconnected", "job-queued", "job-succeeded", "session-ended")


def events(manager: ManagerProc, device: str) -> list[dict]:
    return [e for e in manager.events(device=device) if e["kind"] in KINDS]


def test_the_manager_ends_a_periodic_session_when_done(manager, make_agent):
    dev = make_agent("dev").start()
    steady = make_agent("steady").start()
    approve(manager, dev.fingerprint, "dev1")
    approve(manager, steady.fingerprint, "dev2")
    result = manager.cli("schedule", "dev2", "--persistent")
    assert result.returncode == 0, result.stderr

    anchor = math.floor(time.time())
    anchor_text = datetime.fromtimestamp(anchor, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = manager.short_schedule("dev1", PERIOD, anchor_text, IDLE)
    assert result.returncode == 0, result.stderr

    # the schedule job done, nothing is left: the manager ends the session by itself
    wait_until(
        lambda: any(e["kind"] == "session-ended" for e in events(manager, "dev1")), timeout=15
    )
    wait_until(lambda: manager.status(dev.fingerprint) != "online", timeout=15)

    # a job queued while the device is away runs when it calls, then the session is ended
    queued = manager.cli("netconf", "dev1", "get-config")
    assert queued.returncode == 0, queued.stderr
    assert "queued" in queued.stderr
    job_id = int(queued.stdout.strip())

    def after_queued() -> list[dict]:
        ev = events(manager, "dev1")
        start = next(
            i
            for i, e in enumerate(ev)
            if e["kind"] == "job-queued" and e["detail"].get("job") == job_id
        )
        return ev[start + 1 :]

    def cycle() -> list[dict] | None:
        ev = after_queued()
        kinds = [e["kind"] for e in ev]
        if "job-succeeded" not in kinds:
            return None
        tail = ev[kinds.index("job-succeeded") :]
        return (
            tail
            if [e["kind"] for e in tail][:4]
            == ["job-succeeded", "session-ended", "disconnected", "connected"]
            else None
        )

    tail = wait_until(cycle, timeout=PERIOD * 3 + 15)
    ran = after_queued()
    # it called (at a boundary) and then the job ran
    assert ran[0]["kind"] == "connected"
    done, ended, left, back = tail[:4]
    assert ended["detail"] == {"reason": "periodic: nothing left to do"}
    assert ended["time"] >= done["time"]
    # ended gracefully: the device waited for its next boundary (an ungraceful end would
    # have it redial at once); a little slack for clocks
    boundary = anchor + math.ceil((left["time"] - anchor) / PERIOD) * PERIOD
    assert back["time"] >= boundary - 0.2
    assert "ended: the manager closed the session; waiting for the next period" in (
        dev.proc.output()
    )

    # the persistent device was never ended and never left
    steady_events = events(manager, "dev2")
    assert [e["kind"] for e in steady_events].count("connected") == 1
    assert not any(e["kind"] in ("session-ended", "disconnected") for e in steady_events)
    assert manager.status(steady.fingerprint) == "online"
