"""The call-home part of ietf-netconf-server as data: clients, their endpoints, and edits.

A NETCONF server that calls home keeps a list of ``netconf-client`` entries (the managers it
calls), each with an ordered list of endpoints (where it dials, with failover) and its own
``connection-type`` (persistent, or periodic: see :mod:`callhome.proto.schedule`)::

    <netconf-server xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-server">
      <call-home>
        <netconf-client>
          <name>noc</name>                                      named by the server
          <endpoints><endpoint>
            <name>east</name>
            <ssh><tcp-client-parameters>                        or <tls>
              <remote-address>mgr.example.net</remote-address>
              <remote-port>4334</remote-port>                   default 4334 (ssh), 4335 (tls)
            </tcp-client-parameters></ssh>
          </endpoint></endpoints>
          <connection-type>...</connection-type>
        </netconf-client>
      </call-home>
    </netconf-server>

Revisions: this structure is that of every revision from 2019-04-29 (the first with
``endpoints/endpoint/{ssh,tls}/tcp-client-parameters``) to 2025-04-24 (``SUPPORTED_FROM``);
older drafts' structure (endpoints below the transport, ``address``/``port`` leaves, a
``reconnect-timeout``) is not supported. Within the supported revisions, ``period`` is a
whole number of minutes (uint16), ``idle-timeout`` whole seconds (uint16), and
``anchor-time`` a date-and-time of minute granularity; in 2019-04-29 to 2022-05-24 the
pattern that restricts ``anchor-time`` leaves out the seconds that date-and-time itself
requires, so no value satisfies both (:func:`anchor_allowed`).

:func:`read_clients` reads the entries (from a ``<get-config>`` reply or a datastore),
:func:`pick_client` finds the one a connection belongs to, by the address and port the
server dialled, and :func:`connection_type_edit` writes the ``<config>`` content that sets
one entry's connection type and nothing else.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from lxml import etree

from callhome.proto.netconf.xmltools import NS_BASE
from callhome.proto.schedule import NS, ConnectionType, Persistent, read_connection_type

__all__ = [
    "DEFAULT_PORTS",
    "FILTER",
    "SUPPORTED_FROM",
    "CallHomeClient",
    "CallHomeEndpoint",
    "NoClientMatch",
    "anchor_allowed",
    "connection_type_edit",
    "endpoints_element",
    "format_anchor",
    "pick_client",
    "read_clients",
    "revision_supported",
]

SUPPORTED_FROM: Final = "2019-04-29"
"""The oldest revision of ietf-netconf-server whose call-home structure this module reads."""
_ANCHOR_FIXED: Final = "2023-12-28"
"""The first revision whose anchor-time pattern admits a value (with ``:00`` seconds)."""
DEFAULT_PORTS: Final = {"ssh": 4334, "tls": 4335}
"""remote-port when an endpoint gives none (RFC 8071's IANA ports)."""
FILTER: Final = f'<netconf-server xmlns="{NS}"><call-home/></netconf-server>'
"""A subtree filter that selects the call-home configuration (for ``<get-config>``)."""
_MINUTE_ANCHOR: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00(\.0+)?(Z|[+-]\d{2}:\d{2})\Z")


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _text(parent: etree._Element, *path: str) -> str | None:
    node: etree._Element | None = parent
    for name in path:
        node = None if node is None else node.find(_q(name))
    return None if node is None or node.text is None else node.text.strip()


def revision_supported(revision: str | None) -> bool:
    """Whether this module reads and writes the call-home structure of ``revision`` (None:
    a server that advertises no revision is taken to follow the current structure)."""
    return revision is None or revision >= SUPPORTED_FROM


def anchor_allowed(revision: str | None, anchor: str) -> str | None:
    """Why ``anchor`` cannot be sent as anchor-time to a server of ``revision`` (None: it
    can). Every supported revision wants minute granularity (seconds ``00``)."""
    if revision is not None and revision < _ANCHOR_FIXED:
        return (
            f"ietf-netconf-server revision {revision}'s anchor-time admits no value (its pattern "
            "leaves out the seconds that date-and-time requires): leave the anchor out"
        )
    if not _MINUTE_ANCHOR.match(anchor):
        return (
            f"anchor-time is a date-and-time on a whole minute, e.g. 2024-01-01T00:15:00Z, "
            f"not {anchor!r}"
        )
    return None


@dataclass(frozen=True, slots=True)
class CallHomeEndpoint:
    """One endpoint of a call-home client: where the server dials."""

    name: str
    transport: str
    """``ssh`` or ``tls`` (the YANG choice's case); "" when neither is there."""
    address: str
    port: int | None
    """remote-port; None: the transport's default (``DEFAULT_PORTS``)."""

    @property
    def effective_port(self) -> int | None:
        return self.port if self.port is not None else DEFAULT_PORTS.get(self.transport)

    def describe(self) -> str:
        where = f"{self.address}:{self.effective_port}" if self.address else "?"
        return f"{self.name} ({self.transport or 'no transport'} {where})"


@dataclass(frozen=True, slots=True)
class CallHomeClient:
    """One ``netconf-client`` entry: a manager the server calls, and how."""

    name: str
    endpoints: tuple[CallHomeEndpoint, ...]
    connection_type: ConnectionType

    def describe(self) -> str:
        ends = ", ".join(e.describe() for e in self.endpoints) or "no endpoints"
        return f"{self.name!r} [{ends}]"


def _endpoint(entry: etree._Element) -> CallHomeEndpoint:
    transport, address, port = "", "", None
    for case in ("ssh", "tls"):
        container = entry.find(_q(case))
        if container is None:
            continue
        transport = case
        address = _text(container, "tcp-client-parameters", "remote-address") or ""
        port_text = _text(container, "tcp-client-parameters", "remote-port")
        if port_text is not None and port_text.isdigit() and int(port_text) <= 65535:
            port = int(port_text)
        break
    return CallHomeEndpoint(_text(entry, "name") or "", transport, address, port)


def read_clients(root: etree._Element) -> list[CallHomeClient]:
    """The ``netconf-client`` entries under ``root`` (a ``<data>`` or ``<config>``), in order.
    A connection type that does not parse reads as persistent; ask
    :func:`callhome.proto.schedule.read_connection_type` for its problems."""
    clients = []
    path = f"{_q('netconf-server')}/{_q('call-home')}/{_q('netconf-client')}"
    for entry in root.findall(path):
        name = _text(entry, "name") or ""
        endpoints = tuple(
            _endpoint(e) for e in entry.findall(f"{_q('endpoints')}/{_q('endpoint')}")
        )
        kind = read_connection_type(root, [], client=name)
        clients.append(CallHomeClient(name, endpoints, kind))
    return clients


class NoClientMatch(ValueError):
    """No entry, or more than one, fits a connection; the message names what was found."""


def _host_key(host: str) -> str:
    text = host.strip().strip("[]").lower()
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return text.rstrip(".")
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.compressed


def pick_client(
    clients: Sequence[CallHomeClient],
    *,
    transport: str,
    dialled: Iterable[tuple[str, int]],
    name: str | None = None,
) -> CallHomeClient:
    """The entry a connection belongs to.

    ``name`` picks an entry by its name. Otherwise the one entry with an endpoint of this
    ``transport`` (``ssh``/``tls``) whose remote-address and port are one of ``dialled``
    (the address the connection reached, and the names the manager is known by) is it.
    NoClientMatch, naming the entries found, when there is none or there are several.
    """
    found = ", ".join(c.describe() for c in clients) or "none"
    if name is not None:
        for client in clients:
            if client.name == name:
                return client
        raise NoClientMatch(f"the device has no call-home client named {name!r} (found: {found})")
    wanted = {(_host_key(h), p) for h, p in dialled}
    matches = [
        c
        for c in clients
        if any(
            e.transport == transport and (_host_key(e.address), e.effective_port) in wanted
            for e in c.endpoints
        )
    ]
    if len(matches) == 1:
        return matches[0]
    places = ", ".join(sorted(f"{h}:{p}" for h, p in wanted)) or "nowhere"
    if not matches:
        raise NoClientMatch(
            f"none of the device's call-home clients has a {transport} endpoint at "
            f"{places} (found: {found}); name one with --client"
        )
    names = ", ".join(repr(c.name) for c in matches)
    raise NoClientMatch(
        f"several of the device's call-home clients dial {places}: {names}; name one with --client"
    )


def _default(ns: str) -> dict[Any, str]:
    return {None: ns}


def _leaf(parent: etree._Element, name: str, text: str) -> etree._Element:
    el = etree.SubElement(parent, _q(name))
    el.text = text
    return el


def connection_type_edit(
    client: str, kind: ConnectionType, *, idle_timeout: bool = True
) -> etree._Element:
    """The ``<config>`` of an edit-config that sets ``client``'s connection type only (the
    whole ``connection-type`` replaced). A periodic ``kind`` must carry whole minutes and
    whole seconds, and an anchor on a whole minute (written in UTC). ``idle_timeout``
    False leaves that leaf out, so the device's default applies (120 s in revisions
    2019-04-29 to 2022-05-24, 180 s later)."""
    config = etree.Element(f"{{{NS_BASE}}}config", nsmap=_default(NS_BASE))
    top = etree.SubElement(config, _q("netconf-server"), nsmap=_default(NS))
    entry = etree.SubElement(etree.SubElement(top, _q("call-home")), _q("netconf-client"))
    _leaf(entry, "name", client)
    ctype = etree.SubElement(entry, _q("connection-type"), nsmap={"nc": NS_BASE})
    ctype.set(f"{{{NS_BASE}}}operation", "replace")
    if isinstance(kind, Persistent):
        etree.SubElement(ctype, _q("persistent"))
        return config
    periodic = etree.SubElement(ctype, _q("periodic"))
    _leaf(periodic, "period", _whole(kind.period / 60, "period in minutes"))
    if kind.anchor is not None:
        _leaf(periodic, "anchor-time", format_anchor(kind.anchor))
    if idle_timeout:
        _leaf(periodic, "idle-timeout", _whole(kind.idle_timeout, "idle-timeout in seconds"))
    return config


def format_anchor(anchor: float) -> str:
    """An anchor (seconds since the epoch, on a whole minute) as anchor-time, in UTC."""
    if anchor % 60:
        raise ValueError(f"anchor-time is on a whole minute, not {anchor!r}")
    return datetime.fromtimestamp(anchor, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _whole(value: float, what: str) -> str:
    if value != int(value):
        raise ValueError(f"{what} must be whole, not {value!r}")
    return str(int(value))


def endpoints_element(endpoints: Iterable[CallHomeEndpoint]) -> etree._Element:
    """An ``endpoints`` element listing ``endpoints`` in order."""
    top = etree.Element(_q("endpoints"), nsmap=_default(NS))
    for e in endpoints:
        entry = etree.SubElement(top, _q("endpoint"))
        _leaf(entry, "name", e.name)
        params = etree.SubElement(
            etree.SubElement(entry, _q(e.transport)), _q("tcp-client-parameters")
        )
        _leaf(params, "remote-address", e.address)
        if e.port is not None:
            _leaf(params, "remote-port", str(e.port))
    return top
