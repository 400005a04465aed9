"""A device's worker keeps the queue's order where it matters: reads overlap (up to
MAX_READS_IN_FLIGHT), a write waits for the reads before it and runs alone, and the reads
after it wait for it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from lxml import etree
from test_worker_interruptions import READ, WRITE, FakeSession, ok_reply

from callhome.manager.jobs import MAX_READS_IN_FLIGHT, Dispatcher
from callhome.proto.netconf.events import RpcReply
from callhome.storage import MemoryStore
from callhome.storage.jobs import Job, JobState


class HeldNetconf:
    """Holds each rpc until the test lets it go, and says what overlapped what."""

    def __init__(self) -> None:
        self.closed = False
        self.closing = False
        self.close_reason: str | None = None
        self.capabilities: tuple[str, ...] = ()
        self.running: list[str] = []  # "n:kind" of each rpc in flight
        self.log: list[tuple[str, tuple[str, ...]]] = []  # (started, what was in flight)
        self.gates: dict[str, asyncio.Event] = {}

    async def rpc_reply(self, operation: etree._Element) -> RpcReply:
        n = operation.get("n", "?")
        kind = etree.QName(operation).localname
        tag = f"{n}:{kind}"
        self.log.append((tag, tuple(self.running)))
        self.running.append(tag)
        gate = self.gates.setdefault(n, asyncio.Event())
        try:
            await gate.wait()
        finally:
            self.running.remove(tag)
        return ok_reply()


def numbered(xml: str, n: int) -> str:
    element = etree.fromstring(xml)
    element.set("n", str(n))
    return etree.tostring(element).decode()


async def until(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never: {what}")


async def test_a_write_waits_for_earlier_reads_and_later_reads_wait_for_it() -> None:
    store = MemoryStore()
    await store.open()
    await store.pre_approve("SHA256:x", "ssh-ed25519", "dev", 0.0)

    async def notify(job: Job) -> None:
        return None

    dispatcher = Dispatcher(store, notify)
    order = [READ, READ, WRITE, READ, READ]
    jobs = [
        await dispatcher.submit(
            "dev", "netconf", {"operation": numbered(xml, n)}, "t", read_only=xml is READ
        )
        for n, xml in enumerate(order)
    ]
    session = FakeSession(random.Random(0))
    netconf = HeldNetconf()
    session.netconf = netconf  # type: ignore[assignment]
    dispatcher.device_online(session)  # type: ignore[arg-type]
    try:
        await until(lambda: len(netconf.running) == 2, "the two first reads overlap")
        assert sorted(netconf.running) == ["0:get-config", "1:get-config"]
        for _ in range(50):
            await asyncio.sleep(0)
        assert len(netconf.running) == 2  # the write is not sent while reads are in flight
        netconf.gates.setdefault("0", asyncio.Event()).set()
        netconf.gates.setdefault("1", asyncio.Event()).set()
        await until(lambda: netconf.running == ["2:edit-config"], "the write alone")
        for _ in range(50):
            await asyncio.sleep(0)
        assert netconf.running == ["2:edit-config"]  # the later reads wait for it
        netconf.gates.setdefault("2", asyncio.Event()).set()
        await until(lambda: len(netconf.running) == 2, "the later reads overlap")
        netconf.gates.setdefault("3", asyncio.Event()).set()
        netconf.gates.setdefault("4", asyncio.Event()).set()
        for _ in range(2000):
            states = [(await store.get_job(j.id)).state for j in jobs]
            if all(state is JobState.SUCCEEDED for state in states):
                break
            await asyncio.sleep(0)
        assert states == [JobState.SUCCEEDED] * 5
        started = dict(netconf.log)
        assert started["2:edit-config"] == ()  # nothing in flight when the write left
        assert "2:edit-config" not in started["3:get-config"] + started["4:get-config"]
    finally:
        await dispatcher.stop()


async def test_reads_in_flight_are_capped() -> None:
    store = MemoryStore()
    await store.open()
    await store.pre_approve("SHA256:x", "ssh-ed25519", "dev", 0.0)

    async def notify(job: Job) -> None:
        return None

    dispatcher = Dispatcher(store, notify)
    for n in range(MAX_READS_IN_FLIGHT + 3):
        await dispatcher.submit(
            "dev", "netconf", {"operation": numbered(READ, n)}, "t", read_only=True
        )
    session = FakeSession(random.Random(0))
    netconf = HeldNetconf()
    session.netconf = netconf  # type: ignore[assignment]
    dispatcher.device_online(session)  # type: ignore[arg-type]
    try:
        await until(lambda: len(netconf.running) == MAX_READS_IN_FLIGHT, "the cap reached")
        for _ in range(50):
            await asyncio.sleep(0)
        assert len(netconf.running) == MAX_READS_IN_FLIGHT
        netconf.gates.setdefault("0", asyncio.Event()).set()
        nxt = f"{MAX_READS_IN_FLIGHT}:get-config"
        await until(lambda: nxt in netconf.running, "one more once one ended")
        assert len(netconf.running) == MAX_READS_IN_FLIGHT
    finally:
        for gate in netconf.gates.values():
            gate.set()
        await dispatcher.stop()
