"""A periodic device drops an idle connection after idle-timeout, then calls at the next
boundary (anchor + n * period): real manager and agent processes over reverse-ssh."""

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


PERIOD = 6.0
IDLE = 2


def approve(manager: ManagerProc, fingerprint: str, name: str) -> None:
    wait_until(lambda: manager.status(fingerprint) == "pending")
    result = manager.cli("approve", fingerprint, "--name", name)
    assert result.returncode == 0, result.stderr
    wait_until(lambda: manager.status(fingerprint) == "online")


def test_an_idle_periodic_connection_is_dropped_and_the_device_returns_on_schedule(
    manager, make_agent
):
    agent = make_agent("dev").start()
    approve(manager, agent.fingerprint, "dev1")

    anchor = math.floor(time.time())
    anchor_text = datetime.fromtimestamp(anchor, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = manager.short_schedule("dev1", PERIOD, anchor_text, IDLE)
    assert result.returncode == 0, result.stderr
    # from here the manager sends nothing (it has no job to send, and the schedule is known)

    def kinds() -> list[dict]:
        return [
            e
            for e in manager.events(device="dev1")
            if e["kind"] in ("connected", "disconnected", "job-succeeded", "schedule-learned")
        ]

    def after_job() -> list[dict]:
        events = kinds()
        done = next(i for i, e in enumerate(events) if e["kind"] == "job-succeeded")
        return events[done:]

    # the idle connection is dropped, then the device calls again
    events = wait_until(
        lambda: (
            (ev := after_job())
            and [e["kind"] for e in ev if e["kind"] != "schedule-learned"][:3]
            == ["job-succeeded", "disconnected", "connected"]
            and ev
        ),
        timeout=PERIOD * 3 + 15,
    )
    ordered = [e for e in events if e["kind"] != "schedule-learned"]
    dropped, back = ordered[1], ordered[2]
    assert dropped["detail"]["reason"] == "peer closed the connection"  # the device hung up
    # the device said why, and waited for the period, in that order
    output = agent.proc.output()
    idle_at = output.index(f"not used for {IDLE}s (idle-timeout); hanging up")
    ended = output.index("(idle-timeout); waiting for the next period", idle_at + 1)
    assert ended < output.index("next call home in", idle_at)
    # not before idle-timeout after the job (the last rpc is at or after its reply)
    job_done = ordered[0]
    assert dropped["time"] >= job_done["time"] + IDLE - 0.5
    # it came back at the first boundary after it left (slack for clocks and dialing)
    boundary = anchor + math.ceil((dropped["time"] - anchor) / PERIOD) * PERIOD
    assert back["time"] >= boundary - 0.2
    assert back["time"] < boundary + PERIOD
