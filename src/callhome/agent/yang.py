"""YANG modules on the device: what it advertises, serves, and validates configuration against.

``YangModules`` is built once, when the agent starts, from the ``[yang]`` section of its config
(``callhome.config.YangSection``). Without modules the agent does not build one and its
datastore stays schemaless.

Modules
    Every module file named (or found in a named folder, ``*.yang``) is *implemented*; the
    modules they import, found in those folders or in ``search_path``, are listed with
    conformance-type *import* unless they are implemented too. Submodules are found the same
    way through ``include``. A file must be named ``NAME.yang`` or ``NAME@REVISION.yang``
    (RFC 7950 section 5.2). Their headers are read with yangson's YANG parser; the schema (a
    libyang context, ``callhome.agent.yang_lib.DataModel``) is built once. Features: ``*``
    turns on every feature of every module, ``MODULE:*`` those of one module,
    ``MODULE:FEATURE`` one of them.

Advertised
    In the hello (RFC 7950 section 5.6.4): the yang-library capability with its revision and
    the module-set-id; the RFC 6020 module capability (``NS?module=NAME&revision=DATE``,
    ``&features=...``) of each implemented YANG version 1 module, and of
    ietf-netconf-monitoring, which offers get-schema. YANG 1.1 modules are listed in the YANG
    library only, as RFC 7950 asks.

State data (``get``)
    ``/modules-state`` of ietf-yang-library (RFC 7895): every module with its revision,
    namespace, features, conformance-type and submodules (ietf-yang-library and
    ietf-netconf-monitoring themselves included), and ``/netconf-state/schemas`` of
    ietf-netconf-monitoring (RFC 6022): every module and submodule file, format yang, location
    NETCONF.

get-schema (RFC 6022 section 3.1)
    ``identifier`` (a module or submodule name), optional ``version`` (its revision) and
    ``format`` (only yang). The reply's ``<data>`` (ietf-netconf-monitoring namespace) holds
    the file's text exactly. No match: ``invalid-value``; several (revisions, no version
    given): ``operation-failed`` with error-app-tag ``data-not-unique``.

Validation
    ``validate(root)`` checks the top-level elements of a datastore in the namespaces of the
    implemented modules, as configuration (RFC 7950 section 8.3); elements in other namespaces
    stay schemaless and are not looked at. An empty configuration is checked too, so a module
    with a mandatory top-level node needs it. Problems found are reported as in
    ``callhome.agent.yang_errors``; the first problem libyang finds is reported, one at a time.
    ``same_modeled(before, after)`` tells whether two trees have the same modeled elements
    (compared serialised, with the namespaces in scope), so that the datastore can skip the
    check of a change that left them alone (``callhome.agent.validate``).

Schema facts for the schemaless machinery
    ``list_keys``: each list's key leaves and, as single-instance elements (empty key list),
    each container and leaf, by qualified name (``callhome.agent.edit``); a name declared
    differently in two places is left out. ``defaults``: the default value of each
    configuration leaf not below a choice, by Clark-name path (``callhome.agent.defaults``).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from lxml import etree

from callhome.agent.datastore import Datastore
from callhome.agent.netconf_service import NetconfService
from callhome.agent.xmldata import empty_root, is_element, namespace
from callhome.agent.yang_errors import schema_error, unknown_namespace
from callhome.agent.yang_lib import (
    DataModel,
    ModuleHeader,
    SchemaFacts,
    YangLibraryError,
    schema_facts,
    validate_config,
)
from callhome.agent.yang_load import Finder, module_files
from callhome.config import YangSection
from callhome.errors import ConfigError, ErrorTag, ErrorType, RpcError, RpcErrorInfo

__all__ = [
    "GET_SCHEMA",
    "MONITORING_NS",
    "YANG_LIBRARY_CAPABILITY",
    "YANG_LIBRARY_NS",
    "YangModules",
    "load_modules",
]

log = logging.getLogger(__name__)

YANG_LIBRARY_NS: Final = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
YANG_LIBRARY_REVISION: Final = "2016-06-21"
YANG_LIBRARY_CAPABILITY: Final = "urn:ietf:params:netconf:capability:yang-library:1.0"
MONITORING_NS: Final = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
MONITORING_REVISION: Final = "2010-10-04"
GET_SCHEMA: Final = f"{{{MONITORING_NS}}}get-schema"

_BUILT_IN: Final = (
    ("ietf-yang-library", YANG_LIBRARY_REVISION, YANG_LIBRARY_NS),
    ("ietf-netconf-monitoring", MONITORING_REVISION, MONITORING_NS),
)
_STATE_LISTS: Final = {
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
_MAX_DEPTH: Final = 64
"""Most levels of imports and includes followed from an implemented module."""


@dataclass(frozen=True)
class _Module:
    header: ModuleHeader
    path: Path
    text: str
    implemented: bool
    features: tuple[str, ...]
    submodules: tuple[ModuleHeader, ...]


class YangModules:
    """The device's YANG modules: hello capabilities, YANG library, get-schema, validation.

    ``modules`` are files or folders of implemented modules; ``search_path`` folders where
    imported modules and submodules are looked for as well; ``features`` as in the module
    docstring. ConfigError when a file cannot be read, an import is missing, or the schema
    cannot be built.
    """

    def __init__(
        self,
        modules: Sequence[Path],
        *,
        search_path: Sequence[Path] = (),
        features: Sequence[str] = ("*",),
    ) -> None:
        files = module_files(modules)
        if not files:
            raise ConfigError("yang: no module files found in " + ", ".join(map(str, modules)))
        folders = [p if p.is_dir() else p.parent for p in modules] + list(search_path)
        finder = Finder(folders)
        self._sub_texts: dict[tuple[str, str], tuple[Path, str]] = {}
        self._modules = self._collect(finder, files, features)
        self.module_set_id = self._set_id()
        """Changes whenever the set of modules, revisions or features changes."""
        library = self._library_json()
        mod_path = list(dict.fromkeys(str(m.path.parent) for m in self._modules.values()))
        for module in self._modules.values():
            for sub in module.submodules:
                found = finder.find(sub.name, sub.revision)
                if found is not None:
                    mod_path.append(str(found[0].parent))
        try:
            self._model = DataModel(library, list(dict.fromkeys(mod_path)))
        except YangLibraryError as exc:
            raise ConfigError(f"yang: the modules do not make a schema: {exc}") from None
        self._namespaces = {
            m.header.namespace: m.header.name for m in self._modules.values() if m.implemented
        }
        self._module_ns = {m.header.name: m.header.namespace for m in self._modules.values()}
        self._facts: SchemaFacts = schema_facts(self._model, self._module_ns)
        log.info(
            "YANG: %d modules (%s), module-set-id %s",
            len(self._modules),
            ", ".join(sorted(m.header.name for m in self._modules.values() if m.implemented)),
            self.module_set_id,
        )

    # -- loading -------------------------------------------------------------------------------

    def _collect(
        self, finder: Finder, files: Sequence[Path], features: Sequence[str]
    ) -> dict[str, _Module]:
        implemented: dict[str, tuple[Path, ModuleHeader, str]] = {}
        for path in files:
            header, text = finder.read(path)
            if header.kind == "submodule":
                continue  # taken in by the module that includes it
            if header.name in implemented:
                raise ConfigError(
                    f"yang: module {header.name!r} is given twice "
                    f"({implemented[header.name][0]} and {path})"
                )
            implemented[header.name] = (path, header, text)
        wanted = set(features)
        known_modules: set[str] = set()
        result: dict[str, _Module] = {}
        todo: list[tuple[Path, ModuleHeader, str, bool, int]] = [
            (p, h, t, True, 0) for p, h, t in implemented.values()
        ]
        while todo:
            path, header, text, is_impl, depth = todo.pop(0)
            if header.name in result:
                continue
            if depth > _MAX_DEPTH:
                raise ConfigError(f"yang: imports nested too deep at {header.name!r}")
            subs = self._submodules(finder, header, depth)
            declared = set(header.features).union(*(s.features for s in subs))
            on = tuple(
                sorted(
                    f
                    for f in declared
                    if "*" in wanted
                    or f"{header.name}:*" in wanted
                    or f"{header.name}:{f}" in wanted
                )
            )
            known_modules.add(header.name)
            result[header.name] = _Module(header, path, text, is_impl, on, tuple(subs))
            for name, revision in (*header.imports, *(i for s in subs for i in s.imports)):
                if name in result:
                    continue
                if name in implemented:
                    p, h, t = implemented[name]
                    todo.append((p, h, t, True, depth + 1))
                    continue
                found = finder.find(name, revision)
                if found is None:
                    at = f" revision {revision}" if revision else ""
                    raise ConfigError(
                        f"yang: module {header.name!r} imports {name!r}{at}, which is in none "
                        "of the module folders or search_path"
                    )
                todo.append((*found, False, depth + 1))
        for item in wanted - {"*"}:
            module, _, feature = item.partition(":")
            if module not in known_modules or (
                feature != "*" and feature not in _declared(result[module])
            ):
                raise ConfigError(f"yang: unknown feature {item!r} (give MODULE:FEATURE)")
        return result

    def _submodules(self, finder: Finder, header: ModuleHeader, depth: int) -> list[ModuleHeader]:
        subs: list[ModuleHeader] = []
        todo = list(header.includes)
        seen: set[str] = set()
        while todo:
            name, revision = todo.pop(0)
            if name in seen:
                continue
            seen.add(name)
            if len(seen) > _MAX_DEPTH * 4:
                raise ConfigError(f"yang: too many submodules in {header.name!r}")
            found = finder.find(name, revision)
            if found is None or found[1].kind != "submodule":
                raise ConfigError(
                    f"yang: module {header.name!r} includes submodule {name!r}, which is in "
                    "none of the module folders or search_path"
                )
            subs.append(found[1])
            todo.extend(found[1].includes)
        for sub in subs:
            found = finder.find(sub.name, sub.revision)
            if found is not None:
                self._sub_texts[(sub.name, sub.revision)] = (found[0], found[2])
        return subs

    def _set_id(self) -> str:
        parts = sorted(
            f"{m.header.name}@{m.header.revision}:{int(m.implemented)}:{','.join(m.features)}"
            for m in self._modules.values()
        )
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def _library_json(self) -> str:
        entries: list[dict[str, Any]] = []
        for m in self._modules.values():
            entry: dict[str, Any] = {
                "name": m.header.name,
                "revision": m.header.revision,
                "namespace": m.header.namespace,
                "conformance-type": "implement" if m.implemented else "import",
            }
            if m.features:
                entry["feature"] = list(m.features)
            if m.submodules:
                entry["submodule"] = [
                    {"name": s.name, "revision": s.revision} for s in m.submodules
                ]
            entries.append(entry)
        state = {"module-set-id": self.module_set_id, "module": entries}
        return json.dumps({"ietf-yang-library:modules-state": state})

    # -- what the device tells -----------------------------------------------------------------

    @property
    def namespaces(self) -> Mapping[str, str]:
        """Namespace -> name of each implemented module (for NACM's module-name)."""
        return dict(self._namespaces)

    @property
    def list_keys(self) -> Mapping[str, tuple[str, ...]]:
        """The schema's lists and single-instance elements, and the YANG library's lists."""
        return {**_STATE_LISTS, **self._facts.list_keys}

    @property
    def defaults(self) -> Mapping[str, str]:
        return self._facts.defaults

    @property
    def capabilities(self) -> list[str]:
        """The hello's capabilities for these modules (see the module docstring)."""
        caps = [
            f"{YANG_LIBRARY_CAPABILITY}?revision={YANG_LIBRARY_REVISION}"
            f"&module-set-id={self.module_set_id}",
            f"{MONITORING_NS}?module=ietf-netconf-monitoring&revision={MONITORING_REVISION}",
        ]
        for m in self._modules.values():
            if not m.implemented or m.header.yang_version != "1":
                continue
            cap = f"{m.header.namespace}?module={m.header.name}"
            if m.header.revision:
                cap += f"&revision={m.header.revision}"
            if m.features:
                cap += f"&features={','.join(m.features)}"
            caps.append(cap)
        return caps

    def state(self) -> list[etree._Element]:
        """``/modules-state`` and ``/netconf-state/schemas``, for ``get``."""
        lib = _top(YANG_LIBRARY_NS, "modules-state")
        _leaf(lib, YANG_LIBRARY_NS, "module-set-id", self.module_set_id)
        rows = [
            (m.header.name, m.header.revision, m.header.namespace) for m in self._modules.values()
        ]
        for name, revision, ns in _BUILT_IN:
            if name not in self._modules:
                rows.append((name, revision, ns))
        for name, revision, ns in rows:
            entry = _leaf(lib, YANG_LIBRARY_NS, "module", None)
            _leaf(entry, YANG_LIBRARY_NS, "name", name)
            _leaf(entry, YANG_LIBRARY_NS, "revision", revision)
            _leaf(entry, YANG_LIBRARY_NS, "namespace", ns)
            m = self._modules.get(name)
            for feature in m.features if m is not None else ():
                _leaf(entry, YANG_LIBRARY_NS, "feature", feature)
            implemented = m is None or m.implemented
            _leaf(
                entry, YANG_LIBRARY_NS, "conformance-type", "implement" if implemented else "import"
            )
            for sub in m.submodules if m is not None else ():
                sub_el = _leaf(entry, YANG_LIBRARY_NS, "submodule", None)
                _leaf(sub_el, YANG_LIBRARY_NS, "name", sub.name)
                _leaf(sub_el, YANG_LIBRARY_NS, "revision", sub.revision)
        mon = _top(MONITORING_NS, "netconf-state")
        schemas = _leaf(mon, MONITORING_NS, "schemas", None)
        for header, _path, _text in self._files():
            schema = _leaf(schemas, MONITORING_NS, "schema", None)
            _leaf(schema, MONITORING_NS, "identifier", header.name)
            _leaf(schema, MONITORING_NS, "version", header.revision)
            _leaf(schema, MONITORING_NS, "format", "yang")
            _leaf(schema, MONITORING_NS, "namespace", header.namespace)
            _leaf(schema, MONITORING_NS, "location", "NETCONF")
        return [lib, mon]

    def _files(self) -> Iterable[tuple[ModuleHeader, Path, str]]:
        for m in self._modules.values():
            yield m.header, m.path, m.text
            for sub in m.submodules:
                path, text = self._sub_texts[(sub.name, sub.revision)]
                yield sub.with_namespace(m.header.namespace), path, text

    def serve(self, service: NetconfService) -> None:
        """Advertise the modules in ``service``'s hello and serve get-schema on it."""
        for capability in self.capabilities:
            if capability not in service.capabilities:
                service.capabilities.append(capability)
        service.add_operation(GET_SCHEMA, lambda _session, op: self.get_schema(op))

    def check_stored(self, datastore: Datastore) -> None:
        """ConfigError unless every stored datastore conforms to the modules (at start)."""
        names = ["running"]
        if datastore.candidate_modified:
            names.append("candidate")
        if datastore.startup_exists:
            names.append("startup")
        for name in names:
            try:
                datastore.validate(name)
            except RpcError as exc:
                problems = "; ".join(e.describe() for e in exc.errors)
                where = "" if datastore.path is None else f" (kept beside {datastore.path})"
                raise ConfigError(
                    f"the {name} datastore{where} does not conform to the YANG modules: "
                    f"{problems}. Correct or remove it, or change [yang]."
                ) from None

    # -- get-schema ----------------------------------------------------------------------------

    def get_schema(self, operation: etree._Element) -> etree._Element:
        """The reply content of a ``<get-schema>``: ``<data>`` with the module's text."""
        params: dict[str, str] = {}
        for child in operation:
            if not is_element(child):
                continue
            name = etree.QName(child).localname
            if namespace(child.tag) != MONITORING_NS or name not in (
                "identifier",
                "version",
                "format",
            ):
                raise _rpc_error(ErrorTag.UNKNOWN_ELEMENT, f"unexpected parameter {name!r}", name)
            if name in params:
                raise _rpc_error(ErrorTag.BAD_ELEMENT, f"parameter {name!r} given twice", name)
            params[name] = (child.text or "").strip()
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
            (header, text)
            for header, _path, text in self._files()
            if header.name == identifier and (not version or header.revision == version)
        ]
        if not found:
            at = f" revision {version}" if version else ""
            raise _rpc_error(
                ErrorTag.INVALID_VALUE, f"no schema {identifier!r}{at} on this device", "identifier"
            )
        if len(found) > 1:
            raise RpcError.single(
                ErrorTag.OPERATION_FAILED,
                f"several revisions of {identifier!r}: give a version",
                app_tag="data-not-unique",
            )
        data = _top(MONITORING_NS, "data")
        data.text = found[0][1]
        return data

    # -- validation ----------------------------------------------------------------------------

    def validate(self, root: etree._Element) -> list[RpcErrorInfo]:
        """The problems of the modeled part of a datastore's tree (``<data>``); [] if none."""
        modeled = list(self._modeled(root))
        for top in modeled:
            for el in top.iter():
                if not is_element(el):
                    continue
                ns = namespace(el.tag)
                if ns is None or ns not in self._facts.namespaces:
                    return [unknown_namespace(el, ns, self.list_keys)]
        problem = validate_config(self._model, modeled)
        if problem is None:
            return []
        work = empty_root()  # the modeled part alone, where libyang's paths lead
        for child in modeled:
            work.append(copy.deepcopy(child))
        return [schema_error(problem, work, self._module_ns, self.list_keys)]

    def same_modeled(self, before: etree._Element, after: etree._Element) -> bool:
        """Whether the modeled top-level elements of two ``<data>`` trees are equal, in order.

        Each is compared serialised: its text, attributes and every namespace declaration in
        scope (an identityref's prefix depends on them). Trees that differ only in prefixes or
        whitespace count as different; that only costs a check.
        """
        if before is after:
            return True
        pairs = itertools.zip_longest(self._serialised(before), self._serialised(after))
        return all(old == new for old, new in pairs)  # stops at the first difference

    def _serialised(self, root: etree._Element) -> Iterator[bytes]:
        for child in self._modeled(root):
            yield etree.tostring(child, with_tail=False)

    def _modeled(self, root: etree._Element) -> Iterator[etree._Element]:
        for child in root:
            if is_element(child) and namespace(child.tag) in self._namespaces:
                yield child


def _declared(module: _Module) -> set[str]:
    return set(module.header.features).union(*(s.features for s in module.submodules))


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


def load_modules(section: YangSection, resolve: Callable[[Path], Path]) -> YangModules | None:
    """The modules an agent's ``[yang]`` section names (None: none, a schemaless device).
    ``resolve`` makes a configured path absolute (``AgentConfig.path``)."""
    if not section.modules:
        return None
    return YangModules(
        [resolve(p) for p in section.modules],
        search_path=[resolve(p) for p in section.search_path],
        features=section.features,
    )
