"""The job dispatcher on a fake clock: a job waits for its not-before and expires on time,
without real waiting."""

from __future__ import annotations

import asyncio
import random

from test_worker_interruptions import READ, FakeSession

from callhome.clock import FakeClock
from callhome.manager.jobs import Dispatcher
from callhome.storage import MemoryStore
from callhome.storage.jobs import Job, JobState


async def dispatcher(clock: FakeClock) -> tuple[Dispatcher, MemoryStore]:
    store = MemoryStore()
    await store.open()
    await store.pre_approve("SHA256:x", "ssh-ed25519", "dev", clock.time())

    async def notify(job: Job) -> None:
        return None

    return Dispatcher(store, notify, clock=clock), store


async def test_a_job_waits_for_its_not_before_on_the_clock() -> None:
    clock = FakeClock()
    jobs, store = await dispatcher(clock)
    job = await jobs.submit(
        "dev", "netconf", {"operation": READ}, "t", read_only=True, not_before=clock.time() + 60
    )
    jobs.device_online(FakeSession(random.Random(0)))  # type: ignore[arg-type]
    await clock.advance(59)
    assert (await store.get_job(job.id)).state is JobState.QUEUED
    await clock.advance(2)
    for _ in range(50):  # the fake device answers after a few loop turns
        if (await store.get_job(job.id)).final:
            break
        await asyncio.sleep(0)
    assert (await store.get_job(job.id)).state is JobState.SUCCEEDED
    await jobs.stop()


async def test_a_job_for_an_away_device_expires_when_the_clock_says() -> None:
    clock = FakeClock()
    jobs, store = await dispatcher(clock)
    await jobs.start(expiry_interval=1.0)
    job = await jobs.submit("dev", "netconf", {"operation": READ}, "t", expires=clock.time() + 5)
    await clock.advance(4)
    assert (await store.get_job(job.id)).state is JobState.QUEUED
    await clock.advance(2)
    assert (await store.get_job(job.id)).state is JobState.EXPIRED
    await jobs.stop()
