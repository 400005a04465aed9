"""Log lines a flood cannot multiply: the limiter with its own clock, then the manager's
lines under a flood of fresh keys and of garbage."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from callhome.config import ManagerConfig
from callhome.identity import Identity
from callhome.manager.lognotes import Held, LogLimiter
from callhome.manager.service import Manager
from callhome.storage import MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_kind_and_key_per_interval() -> None:
    clock = Clock()
    limiter = LogLimiter(30, 10, clock=clock)
    assert limiter.allow("connected", "a") == 0
    assert [limiter.allow("connected", "a") for _ in range(5)] == [None] * 5
    assert limiter.allow("connected", "b") == 5  # another key: said, with what was held
    assert limiter.allow("disconnected", "a") == 0  # another kind
    clock.now += 29.9
    assert limiter.allow("connected", "a") is None
    clock.now += 0.1
    assert limiter.allow("connected", "a") == 1


def test_a_kind_has_at_most_burst_lines_per_interval() -> None:
    clock = Clock()
    limiter = LogLimiter(30, 3, clock=clock)
    written = [limiter.allow("unknown-device", f"key{n}") for n in range(1000)]
    assert written[:3] == [0, 0, 0] and written[3:] == [None] * 997
    clock.now += 30
    assert limiter.allow("unknown-device", "key5000") == 997


def test_what_was_held_is_flushed_once_after_an_interval() -> None:
    clock = Clock()
    limiter = LogLimiter(30, 1, clock=clock)
    limiter.allow("protocol-error", "10.0.0.1")
    for _ in range(40):
        limiter.allow("protocol-error", "10.0.0.1")
    clock.now += 10
    assert limiter.flush() == []  # not an interval yet
    clock.now += 20
    assert limiter.flush() == [Held("protocol-error", 40, 30.0)]
    assert limiter.flush() == []
    clock.now += 30
    assert limiter.allow("protocol-error", "10.0.0.1") == 0  # said already


def test_keys_are_forgotten_once_their_interval_is_over() -> None:
    clock = Clock()
    limiter = LogLimiter(30, 100_000, clock=clock, max_keys=100)
    for n in range(100):
        limiter.allow("connected", f"old{n}")
    clock.now += 31
    for n in range(50):
        limiter.allow("connected", f"new{n}")
    assert len(limiter._keys) <= 100


def identity(n: int) -> Identity:
    return Identity("ssh-key", f"SHA256:{n:043d}", "ssh-ed25519")


async def test_a_flood_of_fresh_keys_is_a_few_lines_and_a_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manager = Manager(ManagerConfig(state_dir=tmp_path), MemoryStore())
    clock = Clock()
    manager.log_notes = LogLimiter(30, 5, clock=clock)
    caplog.set_level(logging.INFO, logger="callhome.manager.service")
    for n in range(5000):
        assert manager.admit(identity(n), f"192.0.2.{n % 250}:{1024 + n}") is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5
    assert lines[0] == (
        f"unknown device {identity(0)} from 192.0.2.0:1024 refused until approved "
        f"(callhome approve {identity(0)} --name NAME)"
    )
    clock.now += 30
    manager.admit(identity(9999), "192.0.2.9:9999")
    assert caplog.records[-1].getMessage().endswith("(4995 more like this not logged)")
    for task in list(manager._tasks):  # the registry writes the flood guard let through
        task.cancel()


async def test_garbage_from_many_ports_of_one_host_is_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manager = Manager(ManagerConfig(state_dir=tmp_path), MemoryStore())
    caplog.set_level(logging.INFO, logger="callhome.manager.service")
    for port in range(300):
        manager.handshake_failed(f"198.51.100.7:{port}", None, "bad version\x1b[2J" + "x" * 500)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("handshake with 198.51.100.7:0 failed: bad version?[2Jxxx")
    assert line.endswith("...") and len(line) < 260  # one line, printable, cut short
    for task in list(manager._tasks):
        task.cancel()
