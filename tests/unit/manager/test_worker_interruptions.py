"""No job left behind: whatever ends a device's worker (its session lost, or the worker
cancelled when the device reconnects), every job it claimed reaches a final state or goes
back to the queue by the crash rules: reads are requeued, a write that left is
outcome-unknown, a job whose request never left is requeued."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from lxml import etree

from callhome.errors import SessionClosed
from callhome.manager.jobs import Dispatcher
from callhome.net.session import Orientation
from callhome.proto.netconf.events import RpcReply
from callhome.storage import MemoryStore
from callhome.storage.jobs import Job, JobState

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
READ = f'<get-config xmlns="{NC}"><source><running/></source></get-config>'
WRITE = f'<edit-config xmlns="{NC}"><target><running/></target><config/></edit-config>'


def ok_reply() -> RpcReply:
    element = etree.fromstring(f'<rpc-reply xmlns="{NC}" message-id="1"><ok/></rpc-reply>')
    return RpcReply("1", True, None, [], element, etree.tostring(element))


class FakeNetconf:
    """Replies after a random number of loop turns; fails every pending rpc once closed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.closed = False
        self.closing = False
        self.close_reason: str | None = None
        self.capabilities: tuple[str, ...] = ()
        self.sent: list[str] = []

    async def rpc_reply(self, operation: etree._Element) -> RpcReply:
        self.sent.append(etree.QName(operation).localname)
        for _ in range(self.rng.randint(0, 6)):
            await asyncio.sleep(0)
            if self.closed:
                raise SessionClosed("connection lost")
        return ok_reply()


class FakeSession:
    orientation = Orientation.REVERSE_SSH
    services = ("netconf",)
    carries_netconf = True
    capabilities: tuple[str, ...] = ()

    def __init__(self, rng: random.Random) -> None:
        self.name = "dev"
        self.fingerprint = "SHA256:x"
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.netconf = FakeNetconf(rng)

    def lose(self) -> None:
        self.close_reason = "connection lost"
        self.netconf.closed = True
        self.netconf.close_reason = "connection lost"
        self.closed.set()


async def one_run(seed: int) -> tuple[list[Job], list[str]]:
    rng = random.Random(seed)
    store = MemoryStore()
    await store.open()
    await store.pre_approve("SHA256:x", "ssh-ed25519", "dev", 0.0)

    async def notify(job: Job) -> None:
        return None

    dispatcher = Dispatcher(store, notify)
    for i in range(rng.randint(1, 12)):
        read = rng.random() < 0.6
        await dispatcher.submit(
            "dev", "netconf", {"operation": READ if read else WRITE, "n": i}, "t", read_only=read
        )
    session = FakeSession(rng)
    dispatcher.device_online(session)  # type: ignore[arg-type]
    worker = dispatcher.workers["dev"]
    for _ in range(rng.randint(0, 60)):
        await asyncio.sleep(0)
    how = rng.choice(["lose", "reconnect", "stop"])
    if how == "lose":
        session.lose()
    elif how == "reconnect":  # the device called again: the old worker is cancelled
        dispatcher.device_online(FakeSession(rng))  # type: ignore[arg-type]
        session.lose()
    else:
        await dispatcher.stop()
    assert worker.task is not None
    await asyncio.wait({worker.task}, timeout=10)
    assert worker.task.done()
    await dispatcher.stop()
    jobs = await store.list_jobs(limit=100)
    return jobs, session.netconf.sent


async def test_no_job_is_left_running_whatever_ends_the_worker() -> None:
    outcomes: dict[str, int] = {}
    for seed in range(300):
        jobs, _sent = await one_run(seed)
        for job in jobs:
            assert job.state is not JobState.RUNNING, (seed, job)
            if job.read_only:
                assert job.state in (JobState.SUCCEEDED, JobState.QUEUED), (seed, job)
            outcomes[job.state.value] = outcomes.get(job.state.value, 0) + 1
    # the runs did reach every case: done, put back, and a write lost in flight
    assert {"succeeded", "queued", "outcome-unknown"} <= set(outcomes), outcomes


async def test_a_write_that_never_left_is_requeued_not_lost() -> None:
    """Cancelled while it waits for earlier reads, a write was never sent: queued again."""
    store = MemoryStore()
    await store.open()
    await store.pre_approve("SHA256:x", "ssh-ed25519", "dev", 0.0)
    dispatcher = Dispatcher(store, lambda job: asyncio.sleep(0))
    gate = asyncio.Event()
    session = FakeSession(random.Random(0))

    async def held(operation: Any) -> RpcReply:
        await gate.wait()
        return ok_reply()

    session.netconf.rpc_reply = held  # type: ignore[method-assign]
    read = await dispatcher.submit("dev", "netconf", {"operation": READ}, "t", read_only=True)
    write = await dispatcher.submit("dev", "netconf", {"operation": WRITE}, "t")
    dispatcher.device_online(session)  # type: ignore[arg-type]
    for _ in range(50):
        await asyncio.sleep(0)
    await dispatcher.stop()
    assert (await store.get_job(read.id)).state is JobState.QUEUED
    assert (await store.get_job(write.id)).state is JobState.QUEUED
