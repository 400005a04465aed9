"""Dispatch: every job runs on its device when the device is there, in order.

One worker per connected device drains that device's queue, oldest first, before anything
else is sent to it. A job that only reads may run beside the read-only jobs before it; a
write waits until every job before it has finished and runs alone. Jobs of different
devices run concurrently. The Store holds every state change (and its event) durably, so
that a manager killed at any instant loses no job and applies none twice (see
``callhome.storage.jobs`` for the rules).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from lxml import etree

from callhome.clock import SYSTEM, Clock
from callhome.errors import DeviceError, ErrorSeverity, ProtocolError, RpcError, SessionClosed
from callhome.manager import snmp
from callhome.net.session import DeviceSession
from callhome.proto.netconf import RpcReply, operations
from callhome.proto.netconf.xmltools import parse_xml
from callhome.storage import Store
from callhome.storage.jobs import Job, JobInput, JobState, after_interruption

log = logging.getLogger(__name__)

MAX_READS_IN_FLIGHT = 8
"""Read-only jobs one device may have running at once."""

CAP_CANDIDATE = "urn:ietf:params:netconf:capability:candidate:1.0"
CAP_CONFIRMED = "urn:ietf:params:netconf:capability:confirmed-commit:1.1"

CONFIRM_TIMEOUT = 120
"""Seconds a group's confirmed commit waits for its confirm before the device rolls back."""


Notify = Callable[[Job], Awaitable[None]]
Send = Callable[[etree._Element, bool], Awaitable[RpcReply]]
"""Sends one operation on a worker's session: (operation, whether it may change the device).
A session lost under an operation that may not have changed anything requeues the job."""
Executor = Callable[[DeviceSession, Job, Send], Awaitable[tuple[bool, dict[str, Any]]]]
"""Carries out a job of a kind registered with the Dispatcher: (succeeded, result). Raising
SessionClosed requeues the job (nothing was changed)."""


def reply_result(reply: RpcReply) -> dict[str, Any]:
    """A reply as stored in a job: the XML whole, and the errors with every field."""
    return {
        "reply": reply.xml.decode("utf-8", "replace"),
        "errors": [e.to_json() for e in reply.errors],
    }


_SENT: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar("job_sent", default=None)
"""Set by ``DeviceWorker._run_job`` for the job its task runs: whether a request that may
change the device has left (each read runs in a task of its own, so each has its flag)."""


def _mark_sent() -> None:
    flag = _SENT.get()
    if flag is not None:
        flag[0] = True


class _Interrupted(Exception):
    """The session ended under a job; ``sent`` says whether its request had left."""

    def __init__(self, sent: bool, reason: str) -> None:
        super().__init__(reason)
        self.sent = sent


class DeviceWorker:
    """Drains one device's queue over one session."""

    def __init__(self, dispatcher: Dispatcher, session: DeviceSession) -> None:
        self.dispatcher = dispatcher
        self.session = session
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.idle = False
        """True while the worker sleeps with no job running and none to claim now."""
        self.claimed = 0
        """Jobs claimed so far on this session (grows with each one)."""

    def _now(self) -> float:
        return self.dispatcher.clock.time()

    @property
    def busy(self) -> bool:
        """Whether a job runs, may be claimed now, or was just submitted."""
        return not self.idle or self.wakeup.is_set()

    async def run(self) -> None:
        """Claim and run this device's jobs until its session closes.

        Jobs run in queue order, one write at a time; reads (``read_only``) may overlap,
        up to ``MAX_READS_IN_FLIGHT``, and while any is in flight only reads are claimed,
        so that no write overtakes a read submitted before it. With nothing to claim the
        worker waits: for a read in flight to end or a wake-up (a job submitted) when reads
        are running, else until the session closes, a wake-up, or the earliest
        ``not_before`` of its queue. Cancelled (the dispatcher stopping, the device gone),
        it cancels its reads, and each job follows the crash rules of ``_run_job``."""
        store = self.dispatcher.store
        name = self.session.name
        reads: set[asyncio.Task[None]] = set()
        try:
            while not self.session.closed.is_set():
                self.wakeup.clear()
                only_reads = bool(reads)
                if len(reads) >= MAX_READS_IN_FLIGHT or name not in self.dispatcher.has_work:
                    job = None
                else:
                    job = await store.claim_next_job(name, self._now(), read_only_only=only_reads)
                if job is None:
                    if reads:
                        waiters: set[asyncio.Future[Any]] = {*reads, self._wakeup_task()}
                        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                        reads -= done
                        for task in waiters - done - reads:
                            task.cancel()
                        continue
                    await self._sleep_until_work(name)
                    continue
                self.claimed += 1
                await self.dispatcher.notify(job)
                if job.read_only:
                    task = asyncio.create_task(self._run_job(job))
                    reads.add(task)
                else:
                    await self._run_job(job)
        finally:
            for task in reads:
                task.cancel()
            await asyncio.gather(*reads, return_exceptions=True)

    def _wakeup_task(self) -> asyncio.Task[Any]:
        return asyncio.create_task(self.wakeup.wait())

    async def _sleep_until_work(self, name: str) -> None:
        delay = 3600.0
        if name in self.dispatcher.has_work:
            # Taken out first: a job submitted during the query puts it back (and wakes us).
            self.dispatcher.has_work.discard(name)
            nxt = await self.dispatcher.store.next_not_before(name, self._now())
            if nxt is not None:
                self.dispatcher.has_work.add(name)
                delay = max(0.0, min(delay, nxt - self._now()))
        self.idle = True
        try:
            await self.dispatcher.clock.wait([self.session.closed, self.wakeup], delay)
        finally:
            self.idle = False

    async def _run_job(self, job: Job) -> None:
        """Run one claimed job to a final state, or back to the queue, whatever happens:
        a session lost under it and this task cancelled (the worker stopping) follow the
        crash rules (``after_interruption``): a job whose request never left is requeued,
        a read that left is requeued, a write that left is outcome-unknown."""
        store = self.dispatcher.store
        sent = [False]
        token = _SENT.set(sent)
        try:
            event, result = await self._execute(job)
        except asyncio.CancelledError:
            event = (
                after_interruption(job.read_only, job.retry_safe) if sent[0] else JobInput.REQUEUE
            )
            result = {"interrupted": self.session.close_reason or "the device's session ended"}
            # shielded: the job's row must change even if this task is cancelled again
            finished = await asyncio.shield(store.finish_job(job.id, event, self._now(), result))
            await asyncio.shield(self.dispatcher.job_changed(finished))
            raise
        except _Interrupted as exc:
            event = (
                after_interruption(job.read_only, job.retry_safe) if exc.sent else JobInput.REQUEUE
            )
            result = {"interrupted": str(exc)}
        except Exception as exc:  # a bug must not strand the job in running
            log.exception("job %d failed unexpectedly", job.id)
            event, result = JobInput.FAIL, {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            _SENT.reset(token)
        finished = await store.finish_job(job.id, event, self._now(), result)
        denied = [e for e in result.get("errors", ()) if e.get("tag") == "access-denied"]
        if event is JobInput.FAIL and denied:
            await store.record_event(
                "access-denied",
                self._now(),
                device=job.device,
                detail={"job": job.id, "kind": job.kind, "errors": denied},
            )
        await self.dispatcher.job_changed(finished)

    async def _send(self, operation: etree._Element, changes: bool = True) -> RpcReply:
        netconf = self.session.netconf
        if netconf.closed or netconf.closing:
            raise _Interrupted(False, netconf.close_reason or "session closing")
        if changes:
            _mark_sent()
        try:
            return await netconf.rpc_reply(operation)
        except SessionClosed as exc:
            raise _Interrupted(changes, str(exc)) from None
        except TimeoutError:
            raise _Interrupted(changes, "no reply in time") from None

    async def _execute(self, job: Job) -> tuple[JobInput, dict[str, Any]]:
        if job.kind.startswith("netconf") and not self.session.carries_netconf:
            return JobInput.FAIL, {
                "error": f"the device's {self.session.orientation.value} connection carries "
                f"{' and '.join(self.session.services)} only, not NETCONF"
            }
        if job.kind == "netconf":
            reply = await self._send(parse_xml(str(job.payload["operation"]).encode()))
            return (JobInput.SUCCEED if reply.ok else JobInput.FAIL), reply_result(reply)
        if job.kind == "netconf-group":
            return await self._execute_group(job)
        if job.kind == "snmp":
            return await self._execute_snmp(job)
        executor = self.dispatcher.executors.get(job.kind)
        if executor is None:
            return JobInput.FAIL, {"error": f"unknown job kind {job.kind!r}"}
        if not self.session.carries_netconf:
            return JobInput.FAIL, {"error": f"a {job.kind} job needs NETCONF on the connection"}
        try:
            ok, result = await executor(self.session, job, self._send)
        except SessionClosed as exc:
            raise _Interrupted(False, str(exc)) from None
        return (JobInput.SUCCEED if ok else JobInput.FAIL), result

    async def _execute_snmp(self, job: Job) -> tuple[JobInput, dict[str, Any]]:
        """One SNMP operation. The connection ending requeues a read and makes a SET's
        outcome unknown; the snmp channel failing while the connection stays up fails a
        read (it would fail again) and makes a SET's outcome unknown."""
        session = self.session
        try:
            client = await session.snmp()
        except (SessionClosed, TimeoutError) as exc:
            if session.closed.is_set():
                raise _Interrupted(False, session.close_reason or str(exc)) from None
            return JobInput.FAIL, {"error": f"SNMP engine discovery failed: {exc or 'timeout'}"}
        except (DeviceError, ProtocolError) as exc:
            return JobInput.FAIL, {"error": str(exc)}
        _mark_sent()
        try:
            ok, result = await snmp.execute(client, job.payload)
        except (SessionClosed, TimeoutError) as exc:
            reason = str(exc) or "no reply in time"
            if session.closed.is_set() or not job.read_only:
                raise _Interrupted(True, reason) from None
            return JobInput.FAIL, {"error": reason}
        except ProtocolError as exc:
            return JobInput.FAIL, {"error": str(exc)}
        return (JobInput.SUCCEED if ok else JobInput.FAIL), result

    async def _execute_group(self, job: Job) -> tuple[JobInput, dict[str, Any]]:
        """Several edits as one candidate commit: all or nothing."""
        caps = set(self.session.capabilities)
        if CAP_CANDIDATE not in caps:
            return JobInput.FAIL, {"error": "the device does not support :candidate"}
        edits = list(job.payload["edits"])
        steps: list[dict[str, Any]] = []

        async def step(op: etree._Element) -> RpcReply:
            reply = await self._send(op)
            steps.append(reply_result(reply))
            if not reply.ok:
                raise RpcError(
                    [e for e in reply.errors if e.severity is ErrorSeverity.ERROR],
                    reply.xml.decode("utf-8", "replace"),
                )
            return reply

        locked = False
        try:
            await step(operations.op_lock("candidate"))
            locked = True
            await step(operations.op_discard_changes())
            for config in edits:
                await step(operations.op_edit_config("candidate", str(config)))
            if CAP_CONFIRMED in caps:
                # Between the confirmed commit and its confirm, a crash is harmless: the
                # device rolls the commit back when our session ends, so a retry is safe.
                store = self.dispatcher.store
                await store.set_job_retry_safe(job.id, True, self._now())
                await step(operations.op_commit(confirmed=True, confirm_timeout=CONFIRM_TIMEOUT))
                await store.set_job_retry_safe(job.id, False, self._now())
            await step(operations.op_commit())
            await step(operations.op_unlock("candidate"))
            locked = False
        except RpcError as exc:
            await self._abandon(locked)
            return JobInput.FAIL, {"steps": steps, "errors": [e.to_json() for e in exc.errors]}
        return JobInput.SUCCEED, {"steps": steps}

    async def _abandon(self, locked: bool) -> None:
        if not locked:
            return
        for op in (operations.op_discard_changes(), operations.op_unlock("candidate")):
            try:
                await self._send(op)
            except _Interrupted:
                return


class Dispatcher:
    """The manager's job service: submit, wait, cancel; and a worker per connected device."""

    def __init__(
        self,
        store: Store,
        notify: Notify,
        executors: Mapping[str, Executor] | None = None,
        *,
        clock: Clock = SYSTEM,
    ) -> None:
        self.store = store
        self.notify = notify
        self.clock = clock
        self.executors: dict[str, Executor] = dict(executors or {})
        """Job kinds beyond netconf, netconf-group and snmp, and what carries them out."""
        self.workers: dict[str, DeviceWorker] = {}
        self.has_work: set[str] = set()
        """Devices that may have queued jobs: a device not in it costs no query on connect."""
        self._waiters: dict[int, list[asyncio.Future[Job]]] = {}
        self._expiry: asyncio.Task[None] | None = None

    def _now(self) -> float:
        return self.clock.time()

    async def start(self, expiry_interval: float = 1.0) -> list[Job]:
        """Recover what a crash left running, and start the expiry timer."""
        recovered = await self.store.recover_jobs(self._now())
        after = 0
        while page := await self.store.list_jobs(state=JobState.QUEUED, after_id=after, limit=1000):
            self.has_work.update(job.device for job in page)
            after = page[-1].id
        self._expiry = asyncio.create_task(self._expire_loop(expiry_interval))
        return recovered

    async def stop(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        workers = [w.task for w in self.workers.values() if w.task is not None]
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self.workers.clear()

    async def _expire_loop(self, interval: float) -> None:
        while True:
            await self.clock.sleep(interval)
            try:
                for job in await self.store.expire_jobs(self._now()):
                    await self.job_changed(job)
            except Exception:
                log.exception("expiring jobs failed")

    async def job_changed(self, job: Job) -> None:
        if job.final:
            for fut in self._waiters.pop(job.id, []):
                if not fut.done():
                    fut.set_result(job)
        await self.notify(job)

    def device_online(self, session: DeviceSession) -> None:
        old = self.workers.get(session.name)
        if old is not None and old.task is not None:
            old.task.cancel()
        worker = DeviceWorker(self, session)
        self.workers[session.name] = worker
        worker.task = asyncio.create_task(worker.run())
        worker.task.add_done_callback(lambda _t: self._worker_done(worker))

    def _worker_done(self, worker: DeviceWorker) -> None:
        if self.workers.get(worker.session.name) is worker:
            del self.workers[worker.session.name]

    def poke(self, device: str) -> None:
        worker = self.workers.get(device)
        if worker is not None:
            worker.wakeup.set()

    async def submit(
        self,
        device: str,
        kind: str,
        payload: Mapping[str, Any],
        actor: str,
        *,
        read_only: bool = False,
        not_before: float | None = None,
        expires: float | None = None,
        max_queued: int | None = None,
    ) -> Job:
        job = await self.store.enqueue_job(
            device,
            kind,
            payload,
            actor=actor,
            now=self._now(),
            read_only=read_only,
            not_before=not_before,
            expires=expires,
            max_queued=max_queued,
        )
        self.has_work.add(device)
        await self.notify(job)
        self.poke(device)
        return job

    async def wait(self, job_id: int, timeout: float) -> Job:
        """The job once final, or as it stands when ``timeout`` runs out."""
        fut: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(fut)
        job = await self.store.get_job(job_id)
        if job.final:
            return job
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return await self.store.get_job(job_id)
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._waiters[job_id]

    async def cancel(self, job_id: int) -> Job:
        job = await self.store.cancel_job(job_id, self._now())
        await self.job_changed(job)
        return job
