"""The manager: its listeners, live sessions, jobs and operator actions, over the device
registry (``callhome.manager.registry``, which also decides admission)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

from lxml import etree

from callhome.clock import SYSTEM, Clock
from callhome.config import (
    ManagerConfig,
    parse_hostport,
)
from callhome.errors import (
    ConfigError,
    Conflict,
    DeviceError,
    DeviceOffline,
    NotFound,
    SessionClosed,
    UnknownDevice,
)
from callhome.identity import Identity
from callhome.manager.jobs import Dispatcher, Send
from callhome.manager.lognotes import LogLimiter, held_note
from callhome.manager.mibs import CACHE_DIR, MibNames
from callhome.manager.modules import ModuleCatalog
from callhome.manager.notifications import EVENT_KIND as NOTIFICATION_EVENT
from callhome.manager.notifications import NetconfNotifications
from callhome.manager.periodic import Activity, PeriodicSessions
from callhome.manager.registry import Registry, shown
from callhome.manager.retention import Retention
from callhome.manager.schedule import EVENT_KIND as SCHEDULE_EVENT
from callhome.manager.schedule import ScheduleWatcher
from callhome.manager.schedule_job import KIND as SCHEDULE_JOB
from callhome.manager.schedule_job import run_schedule_job
from callhome.manager.snmp_events import NotificationReceiver
from callhome.net.keys import ensure_key, load_private_key
from callhome.net.listeners import Listeners, start_listeners
from callhome.net.session import DeviceSession
from callhome.proto.netconf import operations
from callhome.storage import AuditEntry, Device, DeviceStatus, Event, EventKind, Schedule, Store
from callhome.storage.jobs import Job, JobState, JobSummary

log = logging.getLogger(__name__)


class Manager:
    """Everything the manager does; the API is a thin layer on top of this."""

    def __init__(self, config: ManagerConfig, store: Store, *, clock: Clock = SYSTEM) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        """Where the manager's time comes from (``callhome.clock``)."""
        self.sessions: dict[str, DeviceSession] = {}
        self.listeners = Listeners()
        """The call-home listeners, once started (``callhome.net.listeners``)."""
        self.log_notes = LogLimiter(
            config.manager.log_interval, config.manager.log_burst, clock=clock.monotonic
        )
        """Limits the log lines of connects, disconnects, refusals and protocol errors."""
        self.registry = Registry(
            store,
            max_pending=config.manager.max_pending,
            clock=clock,
            note=self._note,
            event=self._event,
            spawn=self._spawn,
        )
        """The devices and who may call in (``callhome.manager.registry``)."""
        self.retention = Retention(store, config.retention, clock=clock.time, sleep=clock.sleep)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._mibs: MibNames | None = None
        self.changed = asyncio.Condition()
        self.jobs = Dispatcher(
            store, self._job_changed, {SCHEDULE_JOB: self._run_schedule}, clock=clock
        )
        self.modules = ModuleCatalog()
        """What each connected device implements (``callhome.manager.modules``)."""
        self.netconf_notifications = NetconfNotifications(
            store, config.notifications, self._session_event, self._spawn, clock=clock
        )
        self.snmp_receiver = NotificationReceiver(self._session_event, self._spawn)
        """SNMP notifications from devices (``callhome.manager.snmp_events``)."""
        self.schedules = ScheduleWatcher(
            store,
            self.registry.find,
            self._schedule_learned,
            self._spawn,
            catalog=self.modules,
            dialled=self.dialled,
            notified=config.notifications.subscribe,
            clock=clock.time,
        )
        self.periodic = PeriodicSessions(
            config.manager.periodic_linger,
            config.manager.rpc_timeout,
            self._activity,
            self.registry.find,
            self._session_event,
            self._spawn,
            clock=clock,
        )

    # -- life cycle ------------------------------------------------------------------------
    async def start(self) -> list[int]:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        section = cfg.manager
        credentials = {"": ensure_key(cfg.path(section.key))}
        for name, cred in section.credentials.items():
            credentials[name] = load_private_key(cfg.path(cred.key))
        self._mibs = await asyncio.to_thread(
            MibNames.load,
            cfg.manager.snmp.mib_modules,
            [cfg.path(d) for d in cfg.manager.snmp.mib_dirs],
            cfg.path(Path(CACHE_DIR)),
        )
        await self.store.open()
        await self.store.mark_all_offline(self.clock.time())
        await self.registry.load()
        recovered = await self.jobs.start()
        if recovered:
            log.info("recovered %d jobs that were running when the manager stopped", len(recovered))
        self._spawn(self.retention.run())  # prunes now, then every [retention] interval
        self.listeners = await start_listeners(cfg, self, credentials)
        self._spawn(self._say_held_back())
        return self.ports

    @property
    def ports(self) -> list[int]:
        """The ports the listeners are bound to."""
        return self.listeners.ports

    @property
    def addresses(self) -> list[str]:
        """Where the listeners are bound, as ``host:port``, in the order of ``ports``."""
        return self.listeners.addresses

    @property
    def mibs(self) -> MibNames:
        """The MIB modules of ``[manager.snmp]``, loaded at start (SNMPv2-MIB alone before)."""
        if self._mibs is None:
            self._mibs = MibNames.load()
        return self._mibs

    async def stop(self) -> None:
        await self.listeners.close()
        await self.jobs.stop()
        for session in list(self.sessions.values()):
            session.close_for("the manager stopped")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.store.mark_all_offline(self.clock.time())
        await self.store.close()

    # -- the log -------------------------------------------------------------------------
    def _note(self, kind: str, key: str, message: str, *args: object) -> None:
        """Log one INFO line of ``kind`` about ``key`` (an identity, a host), unless the
        limiter holds it back (a flood: it is counted, and said with the next one)."""
        held = self.log_notes.allow(kind, key)
        if held is not None:
            log.info(message + "%s", *args, held_note(held))

    async def _say_held_back(self) -> None:
        """Say, once an interval, how many lines the limiter held back and nothing said."""
        while True:
            await self.clock.sleep(self.log_notes.interval)
            for held in self.log_notes.flush():
                log.info(
                    "%d more %s lines not logged in the last %.0f s",
                    held.count,
                    held.kind,
                    held.seconds,
                )

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _event(
        self,
        kind: str,
        *,
        device: str | None = None,
        fingerprint: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        await self.store.record_event(
            kind, self.clock.time(), device=device, fingerprint=fingerprint, detail=detail
        )
        await self._wake_followers()

    async def _session_event(
        self, kind: str, session: DeviceSession, detail: Mapping[str, Any]
    ) -> None:
        await self._event(kind, device=session.name, fingerprint=session.fingerprint, detail=detail)
        if kind == NOTIFICATION_EVENT:
            self.schedules.notification(session, detail)

    async def _wake_followers(self) -> None:
        """Wake API clients that wait for new events."""
        async with self.changed:
            self.changed.notify_all()

    # -- admission (called by the orientation adapters; decided by the registry) ----------
    def preferred(self, identities: Sequence[Identity]) -> Identity:
        return self.registry.preferred(identities)

    def admit(self, identity: Identity, address: str) -> str | None:
        return self.registry.admit(identity, address)

    def handshake_failed(
        self, address: str, identity: Identity | None, reason: str, *, auth: bool = False
    ) -> None:
        self.registry.handshake_failed(address, identity, reason, auth=auth)

    async def session_ready(self, session: DeviceSession) -> None:
        fp = session.fingerprint
        device = self.registry.devices.get(fp)
        if device is None or not device.approved or device.name is None:
            # forgotten or rejected while the handshake ran
            session.close_for("not approved any more")
            return
        session.name = device.name
        self.snmp_receiver.session_ready(session)
        old = self.sessions.get(fp)
        self.sessions[fp] = session
        if old is not None:
            old.close_for(f"replaced by a new connection from {session.address}")
        device = await self.store.mark_online(
            fp,
            self.clock.time(),
            address=session.address,
            orientation=session.orientation.value,
            capabilities=session.capabilities,
            detail={
                "address": session.address,
                "orientation": session.orientation.value,
                "session_id": session.netconf.session_id,
            },
        )
        self.registry.update(device)
        self._note(
            EventKind.CONNECTED,
            fp,
            "device %s (%s) connected from %s over %s",
            session.name,
            fp,
            session.address,
            session.orientation.value,
        )
        await self._wake_followers()
        self.jobs.device_online(session)
        # after the job worker started: queued jobs do not wait for the subscription
        self.netconf_notifications.session_ready(session)
        self.schedules.session_ready(session, device)
        self.periodic.watch(session, device)

    async def session_closed(self, session: DeviceSession) -> None:
        fp = session.fingerprint
        if self.sessions.get(fp) is not session:
            return
        del self.sessions[fp]
        detail = {"reason": session.close_reason, "address": session.address}
        self._note(
            EventKind.DISCONNECTED,
            fp,
            "device %s (%s) disconnected: %s",
            session.name,
            fp,
            shown(session.close_reason or "connection closed"),
        )
        if fp in self.registry.devices:
            now = self.clock.time()
            self.registry.update(await self.store.mark_offline(fp, now, detail=detail))
        else:  # forgotten while connected
            await self.store.record_event(
                EventKind.DISCONNECTED,
                self.clock.time(),
                device=session.name,
                fingerprint=fp,
                detail=detail,
            )
        await self._wake_followers()

    # -- operator actions (each audited) -----------------------------------------------------
    async def approve(
        self, fingerprint: str, name: str, actor: str, credential: str | None = None
    ) -> Device:
        """Bind a key to a name: a pending device, or one not seen yet (pre-approval).

        ``credential`` names the credential set the manager presents to this device
        (RFC 8071 C7); None is the default key.
        """
        if credential is not None and credential not in self.config.manager.credentials:
            raise ConfigError(
                f"no credential named {credential!r} in the manager's configuration "
                f"(known: {', '.join(sorted(self.config.manager.credentials)) or 'none'})"
            )
        now = self.clock.time()
        try:
            try:
                device = await self.store.approve(fingerprint, name, now, credential=credential)
            except NotFound:
                # known in advance, before it ever called: bound now, admitted on first call
                device = await self.store.pre_approve(
                    fingerprint, "", name, now, credential=credential
                )
        except Conflict:
            holder = await self.store.device_by_name(name)
            await self._event(
                EventKind.KEY_MISMATCH,
                device=name,
                fingerprint=fingerprint,
                detail={"bound_to": holder.fingerprint if holder else None},
            )
            raise
        self.registry.update(device)
        await self.store.record_audit(
            actor, "approve", name, now, {"fingerprint": fingerprint, "credential": credential}
        )
        await self._event(EventKind.APPROVED, device=name, fingerprint=fingerprint)
        return device

    async def reject(self, fingerprint: str, actor: str) -> Device:
        now = self.clock.time()
        device = self.registry.update(await self.store.reject(fingerprint, now))
        session = self.sessions.get(fingerprint)
        if session is not None:
            session.close_for(f"rejected by {actor}")
        await self.store.record_audit(actor, "reject", fingerprint, now)
        await self._event(EventKind.REJECTED, device=device.name, fingerprint=fingerprint)
        return device

    async def forget(self, name: str, actor: str) -> None:
        """Forget a named device, given its name or its identity (fingerprint)."""
        device = await self.store.device_by_name(name)
        if device is None:
            device = await self.store.device_by_fingerprint(name)
        if device is None:
            raise UnknownDevice(f"no device named {name!r}")
        if device.name is None:
            raise DeviceError(
                f"device {name} is {device.status.value} and has no name to forget "
                "(`callhome reject` refuses it)"
            )
        name = device.name
        await self.store.cancel_device_jobs(name, self.clock.time())
        await self.store.forget(name)
        self.registry.drop(device.fingerprint)
        self.modules.forget(device.fingerprint)
        session = self.sessions.get(device.fingerprint)
        if session is not None:
            session.close_for(f"forgotten by {actor}")
        now = self.clock.time()
        await self.store.record_audit(
            actor, "forget", name, now, {"fingerprint": device.fingerprint}
        )
        await self._event(EventKind.FORGOTTEN, device=name, fingerprint=device.fingerprint)

    async def list_devices(self) -> list[Device]:
        return await self.store.list_devices()

    def resolve(self, name: str) -> Device:
        """The device with this name (or fingerprint), from the registry kept in memory."""
        return self.registry.get(name)

    async def session_for(self, name: str) -> DeviceSession:
        device = self.resolve(name)
        session = self.sessions.get(device.fingerprint)
        if session is None:
            raise DeviceOffline(f"device {device.name or name!r} is not connected")
        return session

    # -- jobs ----------------------------------------------------------------------------
    async def submit(
        self,
        name: str,
        kind: str,
        payload: Mapping[str, Any],
        actor: str,
        *,
        read_only: bool = False,
        not_before: float | None = None,
        expires: float | None = None,
    ) -> Job:
        """Queue one job for a device; it runs at once if the device is connected."""
        device = self.resolve(name)
        if device.status is DeviceStatus.REFUSED:
            raise DeviceError(f"device {name!r} is refused; approve it before sending it jobs")
        if device.name is None:
            raise DeviceError(f"device {name!r} is pending; approve it with a name first")
        jobs = self.config.jobs
        if expires is None and jobs.default_expiry:
            expires = self.clock.time() + jobs.default_expiry
        job = await self.jobs.submit(
            device.name,
            kind,
            payload,
            actor,
            read_only=read_only,
            not_before=not_before,
            expires=expires,
            max_queued=jobs.max_queued_per_device,
        )
        await self.store.record_audit(
            actor, f"submit {kind}", device.name, self.clock.time(), {"job": job.id, "kind": kind}
        )
        return job

    async def submit_netconf(
        self,
        name: str,
        operation: etree._Element,
        actor: str,
        *,
        not_before: float | None = None,
        expires: float | None = None,
    ) -> Job:
        xml = etree.tostring(operation).decode()
        return await self.submit(
            name,
            "netconf",
            {"operation": xml, "name": etree.QName(operation).localname},
            actor,
            read_only=operations.is_read_only(operation),
            not_before=not_before,
            expires=expires,
        )

    # -- what the API reads (it reaches no further than these) -----------------------------
    @property
    def online(self) -> int:
        """How many devices are connected now."""
        return len(self.sessions)

    async def get_job(self, job_id: int) -> Job:
        return await self.store.get_job(job_id)

    async def settle_job(self, job: Job, wait: float | None) -> Job:
        """``job`` once final, or as it stands after ``wait`` seconds (None: a reply's
        time if its device is connected, no wait if it is away)."""
        if wait is None:
            wait = self.config.manager.rpc_timeout + 5 if self.is_online(job.device) else 0
        if wait > 0 and not job.final:
            job = await self.jobs.wait(job.id, wait)
        return job

    async def list_job_summaries(
        self,
        *,
        device: str | None = None,
        state: JobState | None = None,
        after_id: int = 0,
        limit: int = 100,
        newest: bool = False,
    ) -> list[JobSummary]:
        return await self.store.list_job_summaries(
            device=device, state=state, after_id=after_id, limit=limit, newest=newest
        )

    async def list_events(
        self, *, device: str | None = None, after_id: int = 0, limit: int = 100, newest: bool
    ) -> list[Event]:
        return await self.store.list_events(
            device=device, after_id=after_id, limit=limit, newest=newest
        )

    async def list_audit(
        self, *, after_id: int = 0, limit: int = 100, newest: bool
    ) -> list[AuditEntry]:
        return await self.store.list_audit(after_id=after_id, limit=limit, newest=newest)

    def is_online(self, name: str) -> bool:
        return name in self.jobs.workers

    async def cancel_job(self, job_id: int, actor: str) -> Job:
        job = await self.jobs.cancel(job_id)
        await self.store.record_audit(
            actor, "cancel job", job.device, self.clock.time(), {"job": job_id}
        )
        return job

    async def _job_changed(self, job: Job) -> None:
        if job.final:
            device = self.registry.find(job.device)
            session = None if device is None else self.sessions.get(device.fingerprint)
            self.schedules.job_finished(job, session)
        await self._wake_followers()

    # -- call-home schedules (callhome.manager.schedule) ---------------------------------------
    def dialled(self, session: DeviceSession) -> list[tuple[str, int]]:
        """Where ``session``'s device may have dialled to reach this manager: the address
        its connection reached, and ``[manager] public_addresses``."""
        places = [] if session.local_address is None else [session.local_address]
        default = session.orientation.default_port
        places += [parse_hostport(a, default) for a in self.config.manager.public_addresses]
        return places

    async def _run_schedule(
        self, session: DeviceSession, job: Job, send: Send
    ) -> tuple[bool, dict[str, Any]]:
        modules = await self.modules.modules(session)
        if modules.needs_library and session.closed.is_set():
            raise SessionClosed(session.close_reason or "connection closed")
        return await run_schedule_job(
            session, dict(job.payload), modules, self.dialled(session), send
        )

    def display_name(self, key: str) -> str:
        """The name of the device known by ``key`` (a name or an identity), else ``key``."""
        return self.registry.display_name(key)

    async def _schedule_learned(self, device: Device, schedule: Schedule | None, how: str) -> None:
        current = self.registry.devices.get(device.fingerprint)
        if current is not None:  # only the schedule: a status change may have raced this
            current = self.registry.update(dataclasses.replace(current, schedule=device.schedule))
        session = self.sessions.get(device.fingerprint)
        if session is not None:
            self.periodic.watch(session, current)
        detail: dict[str, Any] = {"source": how, "kind": None}
        if schedule is not None:
            detail.update(
                kind=schedule.kind.value,
                period=schedule.period,
                anchor=schedule.anchor,
                idle_timeout=schedule.idle_timeout,
            )
        await self._event(
            SCHEDULE_EVENT, device=device.name, fingerprint=device.fingerprint, detail=detail
        )

    def _activity(self, session: DeviceSession) -> Activity:
        """What a session is doing now (for ``PeriodicSessions``)."""
        worker = self.jobs.workers.get(session.name)
        jobs_busy = worker is not None and worker.session is session and worker.busy
        return Activity(
            busy=jobs_busy or session.netconf.pending > 0 or session.operator_channels > 0,
            replaying=not self.netconf_notifications.replay_settled(session),
            done=worker.claimed if worker is not None and worker.session is session else 0,
        )

    async def wait_for_events(self, after_id: int, timeout: float) -> None:
        """Return when an event newer than ``after_id`` may exist, or at ``timeout``."""
        newest = await self.store.list_events(after_id=after_id, limit=1)
        if newest:
            return
        async with self.changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout)
