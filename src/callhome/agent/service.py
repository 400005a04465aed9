"""The device: its datastore, NETCONF service, SNMP engine and access rules, wired together,
and the call-home loop that serves them (``callhome.agent.dialer``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Sequence
from pathlib import Path

from lxml import etree

from callhome.agent.access.managers import ManagerDirectory
from callhome.agent.access.nacm import Nacm, NacmError
from callhome.agent.datastore.core import Datastore
from callhome.agent.dialer import Dialer
from callhome.agent.netconf_service import CAPABILITIES, NetconfService
from callhome.agent.notifications import EventLog, LoggedEvent, NotificationCenter
from callhome.agent.schedule import (
    CALL_HOME_LIST_KEYS,
    ScheduleState,
    clients_of,
    endpoint_guard,
    sync_endpoints,
)
from callhome.agent.schedule import check as check_schedule
from callhome.agent.snmp.agent import build_agent
from callhome.agent.snmp.notify import Notifier, build_notifier
from callhome.agent.terminal import DeviceAccess
from callhome.agent.yang.library import STATE_LIST_KEYS, ModuleLibrary, protocol_modules
from callhome.agent.yang.modules import load_modules
from callhome.clock import SYSTEM, Clock
from callhome.config import AgentConfig, load
from callhome.errors import ConfigError
from callhome.net.dial import CallHomeConnection, DeviceTransports, accepted_managers
from callhome.net.keys import ensure_key, identity_of
from callhome.proto.reconnect import ReconnectPlan
from callhome.proto.snmp import Oid, VarBind

log = logging.getLogger(__name__)


class Agent:
    """One device: its datastore, its NETCONF service and its call-home dialer."""

    def __init__(
        self, config: AgentConfig, *, rng: random.Random | None = None, clock: Clock = SYSTEM
    ) -> None:
        self.config = config
        self.clock = clock
        config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.host_key = ensure_key(config.path(config.host_key))
        self.identity = identity_of(self.host_key)
        self.yang = load_modules(config.yang, config.path)
        """The device's YANG modules (``callhome.agent.yang.modules``); None: schemaless."""
        yang = self.yang
        wanted = config.notifications
        modules = config.yang
        self.library = ModuleLibrary(
            protocol_modules(CAPABILITIES, notifications=wanted.enabled),
            yang,
            folders=[config.path(p) for p in (*modules.modules, *modules.search_path)]
            + [config.path(p) for p in modules.standard_modules],
        )
        """What the device tells of its modules (``callhome.agent.yang.library``)."""
        list_keys: dict[str, Sequence[str]] = {
            **STATE_LIST_KEYS,
            **CALL_HOME_LIST_KEYS,
            **(yang.list_keys if yang else {}),
            **config.list_keys,
        }
        self.datastore = Datastore(
            config.path(config.datastore),
            list_keys=list_keys,
            defaults=yang.defaults if yang else None,
            schema=yang,
            state_providers=[self.library.state],
        )
        if yang is not None:
            yang.check_stored(self.datastore)
        self.notifications: NotificationCenter | None = None
        if wanted.enabled:
            event_log = EventLog(
                config.path(wanted.log), max_events=wanted.max_events, max_age=wanted.max_age
            )
            self.notifications = NotificationCenter(event_log, list_keys=list_keys)
        accepted = accepted_managers(config)
        manager_keys = accepted.keys
        self.managers = ManagerDirectory(
            config.managers,
            [identity_of(k).fingerprint for k in manager_keys],
            certificates=accepted.certificates,
            host_keys=accepted.host_keys,
            turn_user=config.turn.username,
            base_dir=config.state_dir,
        )
        self.nacm = Nacm(
            modules={
                **{m.namespace: m.name for m in self.library.modules.values() if m.implemented},
                **config.nacm_modules,
            },
            list_keys=list_keys,
            directory=self.managers,
            allow_lockout=config.nacm_allow_lockout,
        )
        try:
            self.netconf = NetconfService(
                self.datastore,
                notifications=self.notifications,
                nacm=self.nacm,
                clock=clock.monotonic,
            )
        except NacmError as exc:
            raise ConfigError(f"NACM rules in the running datastore: {exc}") from None
        self.library.serve(self.netconf)
        self.nacm.check_startup([e.name or e.address for e in config.endpoints])
        clients = clients_of(config)
        sync_endpoints(self.datastore, clients)
        self.schedule = ScheduleState(
            self.datastore.read("running"),
            read=self.datastore.read,
            clients=list(clients),
            clock=clock.time,
        )
        """The call-home clients' connection types in running (``callhome.agent.schedule``),
        live; ``schedule.client`` is the one of the endpoint in use."""
        self.netconf.add_validator(check_schedule)
        self.netconf.add_validator(endpoint_guard(clients))
        self.datastore.add_change_listener(self.schedule.changed)
        self.snmp = (
            build_agent(
                config,
                self.host_key.export_public_key(),
                groups_of=self.managers.groups_of,
                clock=clock.monotonic,
            )
            if config.snmp.enabled
            else None
        )
        self.notifier: Notifier | None = None
        if self.snmp is not None:
            section = config.snmp
            self.notifier = build_notifier(
                self.snmp,
                section.targets,
                config.path(section.notify_buffer),
                section.notify_max_held,
                wake=self.wake,
            )
        self.transports = DeviceTransports.from_config(
            config,
            host_key=self.host_key,
            manager_keys=manager_keys,
            handler=self.netconf,
            services=DeviceAccess(config.access, self.managers) if config.access else None,
            snmp=self.snmp,
        )
        """What each orientation dials with (``callhome.net.dial``)."""
        rc = config.reconnect
        self.dialer = Dialer(
            config.endpoints,
            self.transports,
            plan=ReconnectPlan(
                endpoints=len(config.endpoints),
                start_with=rc.start_with,
                max_attempts=rc.max_attempts,
                initial=rc.backoff_initial,
                cap=rc.backoff_max,
                jitter=rc.backoff_jitter,
                rng=rng or random.Random(),
            ),
            schedule=self.schedule,
            netconf=self.netconf,
            activity=self._last_activity,
            identity=self.identity.fingerprint,
            max_wait=rc.max_wait,
            clock=clock,
        )
        """The call-home loop (``callhome.agent.dialer``)."""

    @property
    def connection(self) -> CallHomeConnection | None:
        """The live call-home connection, if any."""
        return self.dialer.connection

    @property
    def connected(self) -> asyncio.Event:
        return self.dialer.connected

    @property
    def connections_made(self) -> int:
        return self.dialer.connections_made

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        """(host, port) of each endpoint, in order."""
        return self.dialer.addresses

    def notify(
        self,
        trap_oid: Oid | str,
        varbinds: list[VarBind] | tuple[VarBind, ...] = (),
        inform: bool = False,
    ) -> int:
        """Emit an SNMP notification to every ``[[snmp.targets]]``; it is on disk when this
        returns and is sent per each target's policy. Returns how many targets took it."""
        if self.notifier is None:
            raise ConfigError("SNMP notifications need [snmp] enabled = true")
        return self.notifier.notify(trap_oid, varbinds, inform)

    def notify_netconf(self, element: etree._Element) -> LoggedEvent:
        """Emit a NETCONF notification whose content is ``element`` (RFC 5277): it is in the
        replay log when this returns and has gone to every live subscription it passes."""
        if self.notifications is None:
            raise ConfigError("NETCONF notifications need [notifications] enabled = true")
        return self.notifications.notify(element)

    def wake(self) -> None:
        """Dial now if the device is away (an ``immediate`` notification waits)."""
        self.dialer.wake()

    def _last_activity(self) -> float:
        """``clock.monotonic()`` when a manager last used the device: a NETCONF operation,
        an SNMP request served or an SNMP notification sent, whichever came last."""
        if self.snmp is None:
            return self.netconf.last_rpc
        return max(self.netconf.last_rpc, self.snmp.last_activity)

    async def run(self) -> None:
        """Dial and serve until cancelled (a device never gives up), and send notifications."""
        sender = asyncio.create_task(self.notifier.run()) if self.notifier is not None else None
        try:
            await self.dialer.run()
        finally:
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender


async def run_agent(path: Path) -> None:
    """Run the device configured in ``path`` until SIGINT or SIGTERM."""
    agent = Agent(load(AgentConfig, path))
    print(f"callhome agent {agent.identity} calling {agent.endpoints}", flush=True)
    tls = agent.transports.tls
    if tls is not None and tls.identity is not None:
        print(f"callhome agent certificate {tls.identity}", flush=True)
    task = asyncio.create_task(agent.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        if agent.connection is not None:
            agent.connection.abort()
        if agent.notifier is not None:
            agent.notifier.close()
        if agent.notifications is not None:
            agent.notifications.log.close()
