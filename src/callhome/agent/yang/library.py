"""What the device tells of its YANG modules: the hello, the YANG library and get-schema.

A device implements two kinds of modules:

- **protocol modules**, implemented by the agent's own code whatever its configuration:
  ietf-netconf (with the features its datastore has), ietf-netconf-with-defaults,
  ietf-netconf-monitoring (get-schema, ``/netconf-state/schemas``), ietf-yang-library,
  ietf-netconf-acm (NACM), ietf-netconf-server (the call-home part: the schedule and the
  device's endpoints), and with notifications on, RFC 5277's notifications and
  nc-notifications and RFC 6470's ietf-netconf-notifications. The modules they import are
  listed as imported. ``PROTOCOL_MODULES`` is the table.
- **configured modules**, the ``[yang]`` section's (``callhome.agent.yang.modules.YangModules``),
  which the datastore also validates against. A configured module of the same name as a
  protocol module replaces it.

Advertised
    In the hello (RFC 7950 section 5.6.4): the yang-library capability with its revision and
    the module-set-id, and the RFC 6020 capability of every implemented YANG version 1 module
    (``NS?module=NAME&revision=DATE[&features=A,B]``); YANG 1.1 modules are listed in the YANG
    library only. Every module capability carries its revision.

State data (``get``)
    ``/modules-state`` (RFC 7895): every module, implemented or imported, with its revision,
    namespace, features, conformance-type and submodules; ``/netconf-state/schemas``
    (RFC 6022): every module and submodule whose text the device can serve.

get-schema (RFC 6022 section 3.1)
    Serves a module's or submodule's file exactly. The text of a configured module is its
    file; that of a protocol module is looked for, by exact name and revision, in
    ``[yang] standard_modules`` (folders where the system keeps the IETF modules: Debian's
    libyuma-base puts them in /usr/share/yuma/modules/ietf, pyang in its share/yang/modules)
    and in the ``[yang]`` folders. A module whose text is not installed is still advertised
    and listed, but not served: get-schema answers ``invalid-value`` saying so.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Protocol

from lxml import etree

from callhome.agent.datastore.xmldata import is_element, namespace
from callhome.agent.netconf_service import NetconfService
from callhome.agent.yang.files import Finder
from callhome.errors import ConfigError, ErrorTag, ErrorType, RpcError

__all__ = [
    "GET_SCHEMA",
    "MONITORING_NS",
    "PROTOCOL_MODULES",
    "STATE_LIST_KEYS",
    "YANG_LIBRARY_CAPABILITY",
    "YANG_LIBRARY_NS",
    "LibraryModule",
    "ModuleLibrary",
    "netconf_features",
]

log = logging.getLogger(__name__)

YANG_LIBRARY_NS: Final = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
YANG_LIBRARY_REVISION: Final = "2016-06-21"
YANG_LIBRARY_CAPABILITY: Final = "urn:ietf:params:netconf:capability:yang-library:1.0"
MONITORING_NS: Final = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
GET_SCHEMA: Final = f"{{{MONITORING_NS}}}get-schema"
NETCONF_NS: Final = "urn:ietf:params:xml:ns:netconf:base:1.0"
NETCONF_SERVER_NS: Final = "urn:ietf:params:xml:ns:yang:ietf-netconf-server"
NETCONF_SERVER_REVISION: Final = "2023-12-28"
"""The revision of ietf-netconf-server whose call-home structure the device follows."""


STATE_LIST_KEYS: Final = {
    f"{{{YANG_LIBRARY_NS}}}module": (
        f"{{{YANG_LIBRARY_NS}}}name",
        f"{{{YANG_LIBRARY_NS}}}revision",
    ),
    f"{{{YANG_LIBRARY_NS}}}submodule": (
        f"{{{YANG_LIBRARY_NS}}}name",
        f"{{{YANG_LIBRARY_NS}}}revision",
    ),
    f"{{{MONITORING_NS}}}schema": (
        f"{{{MONITORING_NS}}}identifier",
        f"{{{MONITORING_NS}}}version",
        f"{{{MONITORING_NS}}}format",
    ),
}
"""The keys of the lists in ``ModuleLibrary.state``, for the datastore that merges it."""

_CAP: Final = "urn:ietf:params:netconf:capability:"
_FEATURE_OF_CAPABILITY: Final = {
    f"{_CAP}writable-running:1.0": "writable-running",
    f"{_CAP}candidate:1.0": "candidate",
    f"{_CAP}confirmed-commit:1.1": "confirmed-commit",
    f"{_CAP}rollback-on-error:1.0": "rollback-on-error",
    f"{_CAP}validate:1.1": "validate",
    f"{_CAP}startup:1.0": "startup",
    f"{_CAP}url:1.0": "url",
    f"{_CAP}xpath:1.0": "xpath",
}


def netconf_features(capabilities: Iterable[str]) -> tuple[str, ...]:
    """The features of ietf-netconf that a service's capabilities stand for (RFC 6241)."""
    bare = {c.partition("?")[0] for c in capabilities}
    return tuple(f for cap, f in _FEATURE_OF_CAPABILITY.items() if cap in bare)


@dataclass(frozen=True)
class LibraryModule:
    """One module (or the submodules it includes) as the YANG library lists it."""

    name: str
    revision: str
    namespace: str
    implemented: bool = True
    features: tuple[str, ...] = ()
    yang_version: str = "1"
    submodules: tuple[tuple[str, str], ...] = ()
    """(name, revision) of each submodule."""


def _ietf(name: str) -> str:
    return f"urn:ietf:params:xml:ns:yang:{name}"


def _imported(name: str, revision: str) -> LibraryModule:
    return LibraryModule(name, revision, _ietf(name), implemented=False)


_TYPES: Final = (
    _imported("ietf-yang-types", "2013-07-15"),
    _imported("ietf-inet-types", "2013-07-15"),
)
_NETCONF_SERVER_IMPORTS: Final = (
    _imported("ietf-x509-cert-to-name", "2014-12-10"),
    *(
        _imported(name, NETCONF_SERVER_REVISION)
        for name in (
            "ietf-tcp-common",
            "ietf-tcp-client",
            "ietf-tcp-server",
            "ietf-ssh-common",
            "ietf-ssh-server",
            "ietf-tls-common",
            "ietf-tls-server",
            "ietf-crypto-types",
            "ietf-keystore",
            "ietf-truststore",
        )
    ),
)


def protocol_modules(netconf_caps: Iterable[str], *, notifications: bool) -> list[LibraryModule]:
    """The modules the agent's own code implements, given its NETCONF service's capabilities
    (for ietf-netconf's features) and whether it sends notifications."""
    modules = [
        LibraryModule(
            "ietf-netconf", "2011-06-01", NETCONF_NS, features=netconf_features(netconf_caps)
        ),
        LibraryModule(
            "ietf-netconf-with-defaults", "2011-06-01", _ietf("ietf-netconf-with-defaults")
        ),
        LibraryModule("ietf-netconf-monitoring", "2010-10-04", MONITORING_NS),
        LibraryModule("ietf-yang-library", YANG_LIBRARY_REVISION, YANG_LIBRARY_NS),
        LibraryModule("ietf-netconf-acm", "2018-02-14", _ietf("ietf-netconf-acm")),
        LibraryModule(
            "ietf-netconf-server",
            NETCONF_SERVER_REVISION,
            NETCONF_SERVER_NS,
            features=("ssh-call-home", "tls-call-home", "central-netconf-server-supported"),
            yang_version="1.1",
        ),
    ]
    if notifications:
        modules += [
            LibraryModule(
                "notifications", "2008-07-14", "urn:ietf:params:xml:ns:netconf:notification:1.0"
            ),
            LibraryModule(
                "nc-notifications", "2008-07-14", "urn:ietf:params:xml:ns:netmod:notification"
            ),
            LibraryModule(
                "ietf-netconf-notifications", "2012-02-06", _ietf("ietf-netconf-notifications")
            ),
        ]
    return [*modules, *_TYPES, *_NETCONF_SERVER_IMPORTS]


PROTOCOL_MODULES: Final = tuple(
    m.name for m in protocol_modules((), notifications=True) if m.implemented
)
"""Names of the modules the agent's own code implements."""


class ConfiguredModules(Protocol):
    """What ``ModuleLibrary`` needs of the ``[yang]`` modules (``YangModules``)."""

    def library_modules(self) -> Iterable[LibraryModule]:
        """Every module, implemented or imported, as the YANG library lists it."""
        ...

    def texts(self) -> Iterable[tuple[LibraryModule, str]]:
        """(module or submodule, its file's text), each file once."""
        ...


@dataclass(frozen=True)
class _Schema:
    """A file get-schema serves: a module or a submodule (``namespace`` is its module's)."""

    name: str
    revision: str
    namespace: str
    text: str


class ModuleLibrary:
    """The device's modules: hello capabilities, YANG library, schemas and get-schema."""

    def __init__(
        self,
        protocol: Sequence[LibraryModule],
        configured: ConfiguredModules | None = None,
        *,
        folders: Sequence[Path] = (),
    ) -> None:
        modules: dict[str, LibraryModule] = {}
        schemas: dict[tuple[str, str], _Schema] = {}
        if configured is not None:
            for module in configured.library_modules():
                modules[module.name] = module
            for module, text in configured.texts():
                key = (module.name, module.revision)
                schemas[key] = _Schema(module.name, module.revision, module.namespace, text)
        finder = Finder([p for p in folders if p.is_dir()])
        for module in protocol:
            if module.name in modules:
                continue  # a configured file of the same module wins
            found = self._find(finder, module)
            if found is not None:
                header_version, text = found
                module = replace(module, yang_version=header_version)
                key = (module.name, module.revision)
                schemas[key] = _Schema(module.name, module.revision, module.namespace, text)
            modules[module.name] = module
        self._modules = modules
        self._schemas = schemas
        self.module_set_id = self._set_id()
        """Changes whenever the set of modules, revisions or features changes."""
        missing = sorted(m.name for m in protocol if (m.name, m.revision) not in schemas)
        if missing:
            log.debug("YANG: no text installed for %s (not served by get-schema)", missing)

    @staticmethod
    def _find(finder: Finder, module: LibraryModule) -> tuple[str, str] | None:
        try:
            found = finder.find(module.name, module.revision)
        except ConfigError as exc:  # a misnamed file in a system folder: not ours to refuse
            log.warning("%s", exc)
            return None
        if found is None or found[1].revision != module.revision:
            return None
        _path, header, text = found
        if header.namespace != module.namespace:
            return None
        return header.yang_version, text

    def _set_id(self) -> str:
        parts = sorted(
            f"{m.name}@{m.revision}:{int(m.implemented)}:{','.join(m.features)}"
            for m in self._modules.values()
        )
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    @property
    def modules(self) -> Mapping[str, LibraryModule]:
        """Every module listed, by name."""
        return dict(self._modules)

    @property
    def capabilities(self) -> list[str]:
        """The hello's module capabilities (see the module docstring)."""
        caps = [
            f"{YANG_LIBRARY_CAPABILITY}?revision={YANG_LIBRARY_REVISION}"
            f"&module-set-id={self.module_set_id}"
        ]
        for m in self._modules.values():
            if not m.implemented or m.yang_version != "1":
                continue
            cap = f"{m.namespace}?module={m.name}"
            if m.revision:
                cap += f"&revision={m.revision}"
            if m.features:
                cap += f"&features={','.join(m.features)}"
            caps.append(cap)
        return caps

    def state(self) -> list[etree._Element]:
        """``/modules-state`` and ``/netconf-state/schemas``, for ``get``."""
        lib = _top(YANG_LIBRARY_NS, "modules-state")
        _leaf(lib, YANG_LIBRARY_NS, "module-set-id", self.module_set_id)
        for m in self._modules.values():
            entry = _leaf(lib, YANG_LIBRARY_NS, "module", None)
            _leaf(entry, YANG_LIBRARY_NS, "name", m.name)
            _leaf(entry, YANG_LIBRARY_NS, "revision", m.revision)
            _leaf(entry, YANG_LIBRARY_NS, "namespace", m.namespace)
            for feature in m.features:
                _leaf(entry, YANG_LIBRARY_NS, "feature", feature)
            conformance = "implement" if m.implemented else "import"
            _leaf(entry, YANG_LIBRARY_NS, "conformance-type", conformance)
            for sub_name, sub_revision in m.submodules:
                sub = _leaf(entry, YANG_LIBRARY_NS, "submodule", None)
                _leaf(sub, YANG_LIBRARY_NS, "name", sub_name)
                _leaf(sub, YANG_LIBRARY_NS, "revision", sub_revision)
        mon = _top(MONITORING_NS, "netconf-state")
        schemas = _leaf(mon, MONITORING_NS, "schemas", None)
        for schema in self._schemas.values():
            row = _leaf(schemas, MONITORING_NS, "schema", None)
            _leaf(row, MONITORING_NS, "identifier", schema.name)
            _leaf(row, MONITORING_NS, "version", schema.revision)
            _leaf(row, MONITORING_NS, "format", "yang")
            _leaf(row, MONITORING_NS, "namespace", schema.namespace)
            _leaf(row, MONITORING_NS, "location", "NETCONF")
        return [lib, mon]

    def serve(self, service: NetconfService) -> None:
        """Advertise the modules in ``service``'s hello and serve get-schema on it."""
        for capability in self.capabilities:
            if capability not in service.capabilities:
                service.capabilities.append(capability)
        service.add_operation(GET_SCHEMA, lambda _session, op: self.get_schema(op))

    # -- get-schema ----------------------------------------------------------------------------

    def get_schema(self, operation: etree._Element) -> etree._Element:
        """The reply content of a ``<get-schema>``: ``<data>`` with the module's text."""
        params = _schema_params(operation)
        identifier = params.get("identifier")
        if not identifier:
            raise _rpc_error(
                ErrorTag.MISSING_ELEMENT, "get-schema needs an identifier", "identifier"
            )
        fmt = params.get("format", "yang").rpartition(":")[2]
        if fmt != "yang":
            raise _rpc_error(
                ErrorTag.INVALID_VALUE, f"schema format {fmt!r} is not offered: yang only", "format"
            )
        version = params.get("version")
        found = [
            s
            for s in self._schemas.values()
            if s.name == identifier and (not version or s.revision == version)
        ]
        if not found:
            at = f" revision {version}" if version else ""
            listed = self._modules.get(identifier)
            why = (
                "its text is not installed on this device"
                if listed is not None and (not version or listed.revision == version)
                else "no such schema on this device"
            )
            raise _rpc_error(
                ErrorTag.INVALID_VALUE, f"schema {identifier!r}{at}: {why}", "identifier"
            )
        if len(found) > 1:
            raise RpcError.single(
                ErrorTag.OPERATION_FAILED,
                f"several revisions of {identifier!r}: give a version",
                app_tag="data-not-unique",
            )
        data = _top(MONITORING_NS, "data")
        data.text = found[0].text
        return data


def _schema_params(operation: etree._Element) -> dict[str, str]:
    params: dict[str, str] = {}
    for child in _elements(operation):
        name = etree.QName(child).localname
        if namespace(child.tag) != MONITORING_NS or name not in ("identifier", "version", "format"):
            raise _rpc_error(ErrorTag.UNKNOWN_ELEMENT, f"unexpected parameter {name!r}", name)
        if name in params:
            raise _rpc_error(ErrorTag.BAD_ELEMENT, f"parameter {name!r} given twice", name)
        params[name] = (child.text or "").strip()
    return params


def _elements(parent: etree._Element) -> Iterator[etree._Element]:
    return (c for c in parent if is_element(c))


def _top(ns: str, name: str) -> etree._Element:
    nsmap: dict[Any, str] = {None: ns}
    return etree.Element(f"{{{ns}}}{name}", nsmap=nsmap)


def _leaf(parent: etree._Element, ns: str, name: str, text: str | None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{name}")
    if text is not None:
        el.text = text
    return el


def _rpc_error(tag: ErrorTag, message: str, bad_element: str) -> RpcError:
    return RpcError.single(tag, message, type=ErrorType.PROTOCOL, info={"bad-element": bad_element})
