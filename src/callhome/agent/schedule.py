"""The device's call-home clients and their connection types, as data in its running datastore.

The data model (the call-home part of ietf-netconf-server, namespace ``NS``) is read and
written by :mod:`callhome.proto.call_home` and :mod:`callhome.proto.schedule`, shared with
the manager. Each ``[[endpoints]]`` entry of agent.toml belongs to a call-home client
(``client``, default ``default``): a ``netconf-client`` entry of that name, whose
``endpoints`` mirror agent.toml (:func:`clients_of`, written into running at start by
:func:`sync_endpoints`) and whose ``connection-type`` is the schedule the device keeps while
it is connected through one of them. The endpoints are agent.toml's to set: a change to a
configured client's endpoints over NETCONF is refused (:func:`endpoint_guard`); its
connection type is anyone's with the right to write it.

``check`` is a validator for ``NetconfService.add_validator``: a change that leaves an invalid
connection type is refused (invalid-value, bad-element) before the datastore commits it.
``ScheduleState`` holds the connection type in force for the client in use and re-reads it
when running changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lxml import etree

from callhome.agent.datastore.core import Datastore
from callhome.agent.datastore.events import ChangeEvent
from callhome.agent.datastore.xmldata import CONFIG_TAG, OP_ATTR
from callhome.config import AgentConfig
from callhome.errors import ErrorPath, ErrorTag, RpcError, RpcErrorInfo
from callhome.net.dial import address_of, model_transport
from callhome.proto.call_home import CallHomeEndpoint, endpoints_element, read_clients
from callhome.proto.schedule import (
    NS,
    ConnectionType,
    Persistent,
    connection_type_element,
    read_connection_type,
)

__all__ = [
    "CALL_HOME_LIST_KEYS",
    "NS",
    "ScheduleState",
    "check",
    "clients_of",
    "endpoint_guard",
    "parse",
    "sync_endpoints",
]

log = logging.getLogger(__name__)

CALL_HOME_LIST_KEYS: Mapping[str, tuple[str, ...]] = {
    f"{{{NS}}}netconf-client": (f"{{{NS}}}name",),
    f"{{{NS}}}endpoint": (f"{{{NS}}}name",),
}
"""The keys of the call-home lists, for the schemaless datastore."""


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def clients_of(config: AgentConfig) -> dict[str, list[CallHomeEndpoint]]:
    """Each call-home client agent.toml names, with its NETCONF endpoints in order (turn and
    SNMP-over-TLS endpoints have no place in the model and are left out)."""
    clients: dict[str, list[CallHomeEndpoint]] = {}
    for e in config.endpoints:
        ends = clients.setdefault(e.client, [])
        transport = model_transport(e.orientation)
        if transport is None or e.service != "netconf":
            continue
        host, port = address_of(e)
        name = e.name or f"{host}:{port}"
        taken = {x.name for x in ends}
        unique, n = name, 2
        while unique in taken:
            unique, n = f"{name}-{n}", n + 1
        ends.append(CallHomeEndpoint(unique, transport, host, port))
    return clients


def _endpoints_of(root: etree._Element, client: str) -> tuple[CallHomeEndpoint, ...] | None:
    """The endpoints of the entry ``client`` under ``root`` (None: there is no entry)."""
    return next((c.endpoints for c in read_clients(root) if c.name == client), None)


def sync_endpoints(datastore: Datastore, clients: Mapping[str, Sequence[CallHomeEndpoint]]) -> None:
    """Make running's call-home clients carry agent.toml's endpoints (the device's own edit:
    its connection types are kept)."""
    running = datastore.read("running")
    for name, endpoints in clients.items():
        if _endpoints_of(running, name) == tuple(endpoints):
            continue
        wanted = endpoints_element(endpoints)
        config = etree.Element(CONFIG_TAG)
        nsmap: dict[Any, str] = {None: NS}
        top = etree.SubElement(config, _q("netconf-server"), nsmap=nsmap)
        entry = etree.SubElement(etree.SubElement(top, _q("call-home")), _q("netconf-client"))
        etree.SubElement(entry, _q("name")).text = name
        wanted.set(OP_ATTR, "replace")
        entry.append(wanted)
        datastore.edit_config("running", config)
        log.info("call-home client %r: endpoints from agent.toml written to running", name)


def endpoint_guard(
    clients: Mapping[str, Sequence[CallHomeEndpoint]],
) -> Callable[[etree._Element, etree._Element], list[RpcErrorInfo]]:
    """A validator refusing a change to the endpoints of a client agent.toml configures."""
    wanted = {name: tuple(ends) for name, ends in clients.items()}

    def guard(old: etree._Element, new: etree._Element) -> list[RpcErrorInfo]:
        errors = []
        for name, configured in wanted.items():
            after = _endpoints_of(new, name)
            if after is None or after == configured or after == _endpoints_of(old, name):
                continue
            path = ErrorPath(
                f"/ncs:netconf-server/ncs:call-home/ncs:netconf-client[ncs:name='{name}']"
                "/ncs:endpoints",
                {"ncs": NS},
            )
            errors.append(
                RpcError.single(
                    ErrorTag.INVALID_VALUE,
                    f"the endpoints of call-home client {name!r} are set in the device's "
                    "agent.toml; change them there",
                    path=path,
                    app_tag="endpoints-configured-locally",
                ).errors[0]
            )
        return errors

    return guard


def parse(root: etree._Element, client: str | None = None) -> ConnectionType:
    """The connection type of ``client`` (None: the first) in a datastore's ``<data>`` root;
    RpcError if invalid."""
    return read_connection_type(root, client=client)


def check(old: etree._Element, new: etree._Element) -> list[RpcErrorInfo]:
    """The problems of the connection types in ``new`` that the change touched."""
    errors: list[RpcErrorInfo] = []
    for client in read_clients(new):
        before = connection_type_element(old, client.name)
        after = connection_type_element(new, client.name)
        if after is None:
            continue
        if before is not None and etree.tostring(before) == etree.tostring(after):
            continue
        read_connection_type(new, errors, client=client.name)
    return errors


class ScheduleState:
    """The connection type of each call-home client and when it was applied; ``client`` is
    the one whose endpoint the device uses (set by the dialer); ``on_change`` hears of a new
    connection type of that client."""

    def __init__(
        self,
        running: etree._Element,
        *,
        read: Callable[[], etree._Element],
        clients: Sequence[str] = ("default",),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._read = read
        self._clock = clock
        self.on_change: Callable[[], None] | None = None
        self.client = clients[0] if clients else "default"
        now = clock()
        self._kinds: dict[str, ConnectionType] = {}
        self._applied: dict[str, float] = {}
        for name in clients or ("default",):
            try:
                self._kinds[name] = parse(running, name)
            except RpcError as exc:
                log.error("call-home client %r: schedule invalid (%s); persistent", name, exc)
                self._kinds[name] = Persistent()
            self._applied[name] = now

    @property
    def kind(self) -> ConnectionType:
        """The connection type of the client in use."""
        return self._kinds.get(self.client, Persistent())

    @property
    def applied_at(self) -> float:
        """Seconds since the epoch when the client in use's connection type took effect: the
        anchor of a periodic schedule that names none."""
        return self._applied.get(self.client, self._clock())

    def changed(self, event: ChangeEvent) -> None:
        """A change listener: re-read the connection types when running changed."""
        if event.datastore != "running":
            return
        root = self._read()
        for name, old in list(self._kinds.items()):
            try:
                kind = parse(root, name)
            except RpcError as exc:
                log.error("call-home client %r: schedule not applied: %s", name, exc)
                continue
            if kind == old:
                continue
            log.info("call-home client %r: schedule is now %s", name, kind)
            self._kinds[name] = kind
            self._applied[name] = self._clock()
            if name == self.client and self.on_change is not None:
                self.on_change()
