"""The device side: dial the managers in turn, forever, and serve NETCONF on each connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

import asyncssh
from lxml import etree

from callhome.agent.access.managers import ManagerDirectory
from callhome.agent.access.nacm import Nacm, NacmError
from callhome.agent.datastore.core import Datastore
from callhome.agent.failures import dial_failure
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
from callhome.config import (
    DEFAULT_SNMP_TLS_PORT,
    DEFAULT_SSH_PORT,
    DEFAULT_TLS_PORT,
    DEFAULT_TURN_PORT,
    AgentConfig,
    Endpoint,
    load,
    parse_hostport,
)
from callhome.errors import AuthError, ConfigError
from callhome.net.keys import ensure_key, identity_of, parse_public_key
from callhome.net.reverse_ssh import DeviceSshSettings, dial_reverse_ssh
from callhome.net.reverse_tls import DeviceTlsSettings, dial_reverse_tls
from callhome.net.snmp_tls import SnmpTlsService, dial_snmp_tls
from callhome.net.turn import DeviceTurnSettings, dial_turn
from callhome.proto.reconnect import ReconnectPlan
from callhome.proto.schedule import Periodic, next_dial
from callhome.proto.snmp import Oid, VarBind

log = logging.getLogger(__name__)

WAKE_SPACING = 1.0
"""Least time, in seconds, between two dials that a notification woke early."""

CLOSE_GRACE = 0.5
"""Seconds a periodic device leaves the connection up after a close-session, so that the
reply reaches the manager before the device hangs up."""

DEFAULT_PORTS = {
    "reverse-ssh": DEFAULT_SSH_PORT,
    "reverse-tls": DEFAULT_TLS_PORT,
    "turn": DEFAULT_TURN_PORT,
}


def default_port(endpoint: Endpoint) -> int:
    """The manager port an endpoint without one dials."""
    if endpoint.service == "snmp":
        return DEFAULT_SNMP_TLS_PORT
    return DEFAULT_PORTS[endpoint.orientation]


class CallHomeConnection(Protocol):
    """One live call-home connection, whatever its orientation."""

    async def wait_closed(self) -> None: ...

    def abort(self) -> None: ...


def load_manager_keys(config: AgentConfig) -> list[asyncssh.SSHKey]:
    """The manager keys this device accepts, from the config and its authorized-keys file."""
    lines = list(config.manager_keys)
    lines += [m.key for m in config.managers if m.key and not m.key.startswith("SHA256:")]
    if config.manager_keys_file is not None:
        path = config.path(config.manager_keys_file)
        try:
            lines += path.read_text().splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read manager_keys_file {path}: {exc.strerror}") from None
    keys = [parse_public_key(line) for line in lines if line.strip() and not line.startswith("#")]
    if not keys:
        raise ConfigError("no manager key configured: this device would accept no manager")
    return keys


class Agent:
    """One device: its datastore, its NETCONF service and its call-home dialer."""

    def __init__(self, config: AgentConfig, *, rng: random.Random | None = None) -> None:
        self.config = config
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
        uses = {e.orientation for e in config.endpoints}
        manager_keys = load_manager_keys(config) if "reverse-ssh" in uses else []
        self.managers = ManagerDirectory(
            config.managers,
            [identity_of(k).fingerprint for k in manager_keys],
            certificates=config.tls.manager_fingerprints if "reverse-tls" in uses else (),
            host_keys=config.turn.manager_host_keys if "turn" in uses else (),
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
            )
        except NacmError as exc:
            raise ConfigError(f"NACM rules in the running datastore: {exc}") from None
        self.library.serve(self.netconf)
        self.nacm.check_startup([e.name or e.address for e in config.endpoints])
        clients = clients_of(config, DEFAULT_PORTS)
        sync_endpoints(self.datastore, clients)
        self.schedule = ScheduleState(
            self.datastore.read("running"), read=self.datastore.read, clients=list(clients)
        )
        """The call-home clients' connection types in running (``callhome.agent.schedule``),
        live; ``schedule.client`` is the one of the endpoint in use."""
        self.schedule.on_change = self._schedule_changed
        self.netconf.add_validator(check_schedule)
        self.netconf.add_validator(endpoint_guard(clients))
        self.datastore.add_change_listener(self.schedule.changed)
        self.netconf.add_session_end_listener(self._session_ended)
        self._replan = asyncio.Event()
        self._session_done = False
        """The connection's work is done (close-session, or idle): a periodic device waits."""
        self._ended_by = ""
        """Why the device itself ended the connection ("" : it did not)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self.endpoints = [parse_hostport(e.address, default_port(e)) for e in config.endpoints]
        self.connection: CallHomeConnection | None = None
        self._wake = asyncio.Event()
        self._last_dial = 0.0
        self.snmp = (
            build_agent(
                config, self.host_key.export_public_key(), groups_of=self.managers.groups_of
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
        self.settings = DeviceSshSettings(
            host_key=self.host_key,
            manager_keys=manager_keys,
            handler=self.netconf,
            auth_timeout=config.auth_timeout,
            keepalive=config.keepalive,
            algorithms=config.algorithms,
            max_message_size=config.max_message_size,
            services=DeviceAccess(config.access, self.managers) if config.access else None,
            snmp=self.snmp,
        )
        self.tls_settings = self._tls_settings() if "reverse-tls" in uses else None
        self.snmp_tls = self._snmp_tls()
        self.turn_settings = self._turn_settings() if "turn" in uses else None
        rc = config.reconnect
        self.plan = ReconnectPlan(
            endpoints=len(self.endpoints),
            start_with=rc.start_with,
            max_attempts=rc.max_attempts,
            initial=rc.backoff_initial,
            cap=rc.backoff_max,
            jitter=rc.backoff_jitter,
            rng=rng or random.Random(),
        )
        self.connected = asyncio.Event()
        self.connections_made = 0

    def _tls_settings(self) -> DeviceTlsSettings:
        config, tls = self.config, self.config.tls
        return DeviceTlsSettings.from_files(
            config.path(tls.cert),
            config.path(tls.key),
            manager_ca=[config.path(p) for p in tls.manager_ca],
            manager_crl=[config.path(p) for p in tls.manager_crl],
            manager_fingerprints=tls.manager_fingerprints,
            handler=self.netconf,
            auth_timeout=config.auth_timeout,
            keepalive=config.keepalive,
            max_message_size=config.max_message_size,
            minimum_version=tls.minimum_version,
            ciphers=tls.ciphers,
        )

    def _snmp_tls(self) -> SnmpTlsService | None:
        """SNMP over TLS (RFC 6353), if an endpoint asks for it."""
        if not any(e.service == "snmp" for e in self.config.endpoints):
            return None
        if self.snmp is None:
            raise ConfigError("endpoints with service 'snmp' need [snmp] enabled = true")
        rules = self.config.snmp.cert_to_name
        if not rules:
            raise ConfigError(
                "SNMP over TLS needs [[snmp.cert_to_name]]: how a manager's certificate "
                "maps to its securityName"
            )
        return SnmpTlsService(self.snmp, rules)

    def _turn_settings(self) -> DeviceTurnSettings:
        config = self.config
        keys = [parse_public_key(k) for k in config.turn.manager_host_keys]
        if not keys:
            raise ConfigError("turn endpoints need turn.manager_host_keys (the manager's host key)")
        return DeviceTurnSettings(
            user_key=self.host_key,  # one key, one identity, whichever orientation
            manager_host_keys=keys,
            handler=self.netconf,
            auth_timeout=config.auth_timeout,
            keepalive=config.keepalive,
            algorithms=config.algorithms,
            username=config.turn.username,
            max_message_size=config.max_message_size,
        )

    def _dial(self, endpoint: int, host: str, port: int) -> Awaitable[CallHomeConnection]:
        orientation = self.config.endpoints[endpoint].orientation
        service = self.config.endpoints[endpoint].service
        if service == "snmp" and self.tls_settings is not None and self.snmp_tls is not None:
            return dial_snmp_tls(host, port, self.tls_settings, self.snmp_tls)
        if orientation == "reverse-tls" and self.tls_settings is not None:
            return dial_reverse_tls(host, port, self.tls_settings)
        if orientation == "turn" and self.turn_settings is not None:
            return dial_turn(host, port, self.turn_settings)
        return dial_reverse_ssh(host, port, self.settings)

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
        if self.connection is None:
            self._wake.set()

    def _soon(self, delay: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the dialer's loop after ``delay``, from any thread."""
        loop = self._loop
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.call_later, delay, callback)

    def _schedule_changed(self) -> None:
        self._soon(0.0, self._replan.set)

    def _session_ended(self, session_id: int, reason: str) -> None:
        """When the last NETCONF session on the connection ends with close-session, the
        device closes the connection (RFC 8071: the connection exists for the session) and
        dials again as its schedule says: at once when persistent, at the next boundary when
        periodic. A session that ends otherwise leaves the connection to its keepalives."""
        conn = self.connection
        if reason != "closed" or conn is None or self.netconf.session_ids:
            return
        self._session_done = True
        self._ended_by = "the manager closed the session"
        log.info("NETCONF session %d: %s; closing the connection", session_id, self._ended_by)
        self._soon(CLOSE_GRACE, conn.abort)

    def _last_activity(self) -> float:
        """``time.monotonic()`` when a manager last used the device: a NETCONF operation, an
        SNMP request served or an SNMP notification sent, whichever came last."""
        if self.snmp is None:
            return self.netconf.last_rpc
        return max(self.netconf.last_rpc, self.snmp.last_activity)

    async def _watch_idle(self, conn: CallHomeConnection) -> None:
        """Drop ``conn`` when a periodic schedule's idle-timeout passes without activity (an
        rpc, or SNMP: see :meth:`_last_activity`)."""
        self.netconf.last_rpc = time.monotonic()  # the connection itself counts
        while True:
            self._replan.clear()
            kind = self.schedule.kind
            remaining: float | None = None
            if isinstance(kind, Periodic) and kind.idle_timeout > 0:
                remaining = self._last_activity() + kind.idle_timeout - time.monotonic()
                if remaining <= 0:
                    self._session_done = True
                    self._ended_by = f"not used for {kind.idle_timeout:g}s (idle-timeout)"
                    log.info("%s; hanging up until the next period", self._ended_by)
                    conn.abort()
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._replan.wait(), remaining)

    async def _await_period(self) -> None:
        """After a graceful end, wait for the next periodic boundary (re-planned when the
        schedule changes; cut short by :meth:`wake`)."""
        while True:
            self._replan.clear()
            now = time.time()
            kind = self.schedule.kind
            when = next_dial(kind, now=now, graceful=True, applied_at=self.schedule.applied_at)
            if when <= now:
                return
            log.info("next call home in %.1fs", when - now)
            replan = asyncio.ensure_future(self._replan.wait())
            wake = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait(
                    {replan, wake}, timeout=when - now, return_when="FIRST_COMPLETED"
                )
            finally:
                replan.cancel()
                wake.cancel()
            if self._wake.is_set():
                self._wake.clear()
                return
            if not self._replan.is_set():
                return

    async def _pause(self, delay: float) -> None:
        """The back-off before the next dial, cut short by :meth:`wake`."""
        if not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
        if self._wake.is_set():
            self._wake.clear()
            rest = self._last_dial + WAKE_SPACING - asyncio.get_running_loop().time()
            if rest > 0:
                await asyncio.sleep(min(rest, delay))

    async def run(self) -> None:
        """Dial and serve until cancelled (a device never gives up), and send notifications."""
        sender = asyncio.create_task(self.notifier.run()) if self.notifier is not None else None
        try:
            await self._dial_forever()
        finally:
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender

    async def _dial_forever(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            attempt = self.plan.next_attempt()
            if attempt.delay:
                await self._pause(attempt.delay)
            host, port = self.endpoints[attempt.endpoint]
            self._last_dial = asyncio.get_running_loop().time()
            try:
                conn = await asyncio.wait_for(
                    self._dial(attempt.endpoint, host, port),
                    self.config.reconnect.max_wait,
                )
            except (OSError, asyncssh.Error, TimeoutError, AuthError) as exc:
                why = dial_failure(
                    exc,
                    where=f"{host}:{port}",
                    identities=self._identities(attempt.endpoint),
                    max_wait=self.config.reconnect.max_wait,
                )
                log.info("call home to %s:%d failed: %s", host, port, why)
                self.plan.failed()
                continue
            self.plan.connected(attempt.endpoint)
            self.schedule.client = self.config.endpoints[attempt.endpoint].client
            self._ended_by = ""
            self.connection = conn
            self.connections_made += 1
            self.connected.set()
            self._wake.clear()
            self._session_done = False
            log.info("called home to %s:%d", host, port)
            idle = asyncio.create_task(self._watch_idle(conn))
            try:
                await conn.wait_closed()
            finally:
                idle.cancel()
                self.connected.clear()
                self.connection = None
                conn.abort()
            self.plan.disconnected()
            if self._session_done:
                periodic = isinstance(self.schedule.kind, Periodic)
                after = "waiting for the next period" if periodic else "calling again"
                log.info("connection to %s:%d ended: %s; %s", host, port, self._ended_by, after)
                await self._await_period()
            else:
                log.info("connection to %s:%d lost; redialing", host, port)

    def _identities(self, endpoint: int) -> list[str]:
        """What a manager may know this device by on ``endpoint``."""
        settings = self.tls_settings
        if self.config.endpoints[endpoint].orientation != "reverse-tls" or settings is None:
            return [self.identity.fingerprint]
        found = [str(settings.identity)] if settings.identity is not None else []
        return [*found, "x509-name:NAME where a cert-to-name rule maps its certificate"]


async def run_agent(path: Path) -> None:
    """Run the device configured in ``path`` until SIGINT or SIGTERM."""
    agent = Agent(load(AgentConfig, path))
    print(f"callhome agent {agent.identity} calling {agent.endpoints}", flush=True)
    if agent.tls_settings is not None and agent.tls_settings.identity is not None:
        print(f"callhome agent certificate {agent.tls_settings.identity}", flush=True)
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
