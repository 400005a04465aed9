"""YANG modules configured on the device: the schema its configuration is validated against.

``YangModules`` is built once, when the agent starts, from the ``[yang]`` section of its config
(``callhome.config.YangSection``). Without modules the agent does not build one and its
datastore stays schemaless.

Modules
    Every module file named (or found in a named folder, ``*.yang``) is *implemented*; the
    modules they import, found in those folders or in ``search_path``, are listed with
    conformance-type *import* unless they are implemented too. Submodules are found the same
    way through ``include``. A file must be named ``NAME.yang`` or ``NAME@REVISION.yang``
    (RFC 7950 section 5.2). Their headers are read with yangson's YANG parser; the schema (a
    libyang context, ``callhome.agent.yang.libyang.DataModel``) is built once. Features: ``*``
    turns on every feature of every module, ``MODULE:*`` those of one module,
    ``MODULE:FEATURE`` one of them.

Told
    What the device advertises and serves of these modules (hello, YANG library, get-schema)
    is the job of ``callhome.agent.yang.library.ModuleLibrary``; ``library_modules`` and ``texts``
    give it the modules and their files.

Validation
    ``validate(root)`` checks the top-level elements of a datastore in the namespaces of the
    implemented modules, as configuration (RFC 7950 section 8.3); elements in other namespaces
    stay schemaless and are not looked at. An empty configuration is checked too, so a module
    with a mandatory top-level node needs it. Problems found are reported as in
    ``callhome.agent.yang.errors``; the first problem libyang finds is reported, one at a time.
    ``same_modeled(before, after)`` tells whether two trees have the same modeled elements
    (compared serialised, with the namespaces in scope), so that the datastore can skip the
    check of a change that left them alone (``callhome.agent.datastore.validate``).

Schema facts for the schemaless machinery
    ``list_keys``: each list's key leaves and, as single-instance elements (empty key list),
    each container and leaf, by qualified name (``callhome.agent.datastore.edit``); a name
    declared differently in two places is left out. ``defaults``: the default value of each
    configuration leaf not below a choice, by Clark-name path
    (``callhome.agent.datastore.defaults``).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from lxml import etree

from callhome.agent.datastore.core import Datastore
from callhome.agent.datastore.xmldata import empty_root, is_element, namespace
from callhome.agent.yang.errors import schema_error, unknown_namespace
from callhome.agent.yang.files import Finder, module_files
from callhome.agent.yang.library import LibraryModule
from callhome.agent.yang.libyang import (
    DataModel,
    ModuleHeader,
    SchemaFacts,
    YangLibraryError,
    schema_facts,
    validate_config,
)
from callhome.config import YangSection
from callhome.errors import ConfigError, RpcError, RpcErrorInfo

__all__ = [
    "YangModules",
    "load_modules",
]

log = logging.getLogger(__name__)

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
    """The device's configured YANG modules: the schema, its facts, and validation.

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
        """The schema's lists and single-instance elements."""
        return dict(self._facts.list_keys)

    @property
    def defaults(self) -> Mapping[str, str]:
        return self._facts.defaults

    def library_modules(self) -> Iterator[LibraryModule]:
        """Every module, implemented or imported, as the YANG library lists it."""
        for m in self._modules.values():
            yield LibraryModule(
                m.header.name,
                m.header.revision,
                m.header.namespace,
                implemented=m.implemented,
                features=m.features,
                yang_version=m.header.yang_version,
                submodules=tuple((s.name, s.revision) for s in m.submodules),
            )

    def texts(self) -> Iterator[tuple[LibraryModule, str]]:
        """(module or submodule, its file's text), each file once; a submodule carries the
        namespace of the module it belongs to."""
        for m in self._modules.values():
            h = m.header
            yield (
                LibraryModule(h.name, h.revision, h.namespace, yang_version=h.yang_version),
                m.text,
            )
            for sub in m.submodules:
                _path, text = self._sub_texts[(sub.name, sub.revision)]
                yield LibraryModule(sub.name, sub.revision, h.namespace), text

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
