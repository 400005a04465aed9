"""The manager's retention: what one prune deletes as [retention] says, and the task that
prunes at start and every interval (its clock and its sleep given, nothing waited for)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from callhome.config import ManagerConfig, RetentionSection
from callhome.errors import StoreError
from callhome.identity import Identity
from callhome.manager.retention import DAY, Pruned, Retention, prune_once
from callhome.manager.service import Manager
from callhome.storage import EventKind, MemoryStore
from callhome.storage.jobs import JobInput, JobState

NOW = 1_800_000_000.0


def section(**rules: dict[str, float]) -> RetentionSection:
    return RetentionSection.model_validate({"batch": 2, **rules})


async def filled() -> MemoryStore:
    """Events and audit entries 40, 20 and 1 days old; a finished and a queued job 40 days
    old, a finished one a day old."""
    store = MemoryStore()
    for age in (40, 20, 1):
        await store.record_event("x", NOW - age * DAY)
        await store.record_audit("token:a", "x", None, NOW - age * DAY)
    for _ in range(3):
        await store.enqueue_job("r1", "netconf", {}, actor="a", now=NOW - 40 * DAY)
    for when in (NOW - 40 * DAY, NOW - DAY):
        job = await store.claim_next_job("r1", when)
        assert job is not None
        await store.finish_job(job.id, JobInput.SUCCEED, when, {"reply": "<ok/>"})
    return store


async def test_the_defaults_keep_30_days() -> None:
    store = await filled()
    events_before = len(await store.list_events(limit=100))
    pruned = await prune_once(store, RetentionSection(), NOW)
    # the 40-day-old event, and the events of the jobs' moves 40 days ago (3 queued, 1
    # claimed, 1 succeeded)
    assert pruned == Pruned(events=6, jobs=1, audit=1)
    assert [e.time for e in await store.list_audit()] == [NOW - 20 * DAY, NOW - DAY]
    assert len(await store.list_events(limit=100)) == events_before - 6
    states = [j.state for j in await store.list_jobs()]
    assert states == [JobState.SUCCEEDED, JobState.QUEUED]  # the old queued job stays


async def test_rows_and_age_and_zero_for_no_limit() -> None:
    store = await filled()
    rules = {
        "events": {"max_age": 0, "max_rows": 0},  # kept
        "audit": {"max_age": 0, "max_rows": 1},
        "jobs": {"max_age": 0.5, "max_rows": 0},
    }
    pruned = await prune_once(store, section(**rules), NOW)
    assert pruned == Pruned(events=0, jobs=2, audit=2)
    assert [e.time for e in await store.list_audit()] == [NOW - DAY]
    assert [j.state for j in await store.list_jobs()] == [JobState.QUEUED]


async def test_the_task_prunes_at_once_then_every_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = await filled()
    now = [NOW]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            raise asyncio.CancelledError
        now[0] += 30 * DAY  # the next prune comes a month later
        await store.record_audit("token:a", "new", None, now[0])

    caplog.set_level(logging.INFO, logger="callhome.manager.retention")
    task = Retention(store, section(interval=600), clock=lambda: now[0], sleep=sleep)
    with pytest.raises(asyncio.CancelledError):
        await task.run()
    assert slept == [600, 600]
    assert [e.action for e in await store.list_audit()] == ["new"]  # the rest aged out
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "retention: pruned 6 events, 1 finished jobs and 1 audit entries"
    assert len(lines) == 2


async def test_a_failed_prune_is_logged_and_tried_again(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await filled()
    calls: list[int] = []

    async def broken(**kwargs: object) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise StoreError("the store is not open")
        return 0

    monkeypatch.setattr(store, "prune_jobs", broken)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await Retention(store, section(), clock=lambda: NOW, sleep=sleep).run()
    assert len(calls) == 2
    assert "pruning the store failed" in caplog.text


def identity(n: int) -> Identity:
    return Identity("ssh-key", f"SHA256:{n:043d}", "ssh-ed25519")


async def test_the_manager_keeps_at_most_max_pending(tmp_path: Path) -> None:
    config = ManagerConfig.model_validate({"state_dir": tmp_path, "manager": {"max_pending": 10}})
    store = MemoryStore()
    manager = Manager(config, store)
    for n in range(25):
        manager.admit(identity(n), f"192.0.2.{n}:1")
        await asyncio.gather(*manager._tasks)  # one at a time, as calls come
    pending = [d.fingerprint for d in await store.list_devices()]
    assert len(pending) <= 10 and identity(24).fingerprint in pending
    assert set(manager.registry.devices) == set(pending)  # the registry copy forgot them too
    evictions = await store.list_events(kinds=[EventKind.PENDING_EVICTED])
    assert sum(e.detail["count"] for e in evictions) == 25 - len(pending)
    assert len(evictions) < 25 - len(pending)  # in batches
