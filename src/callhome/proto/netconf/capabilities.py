"""What a NETCONF server says it implements: capability URIs and its YANG library (sans-IO).

:func:`parse_capability` reads one URI of a ``<hello>``:

- a module capability (RFC 6020 section 5.6.4): ``NAMESPACE?module=NAME`` with optional
  ``&revision=YYYY-MM-DD``, ``&features=A,B`` and ``&deviations=M,N``, as a
  :class:`ModuleCapability`;
- the YANG library capability (RFC 7950 section 5.6.4, ``yang-library:1.0`` with
  ``revision`` and ``module-set-id``; RFC 8526 ``yang-library:1.1`` with ``revision`` and
  ``content-id``), as a :class:`YangLibraryCapability`;
- anything else (``urn:ietf:params:netconf:base:1.1``, ``...:candidate:1.0`` ...) as a
  :class:`ProtocolCapability`.

A URI that claims to be a module or library capability but breaks the grammar raises
:class:`CapabilityError` with the reason.

:func:`parse_modules_state` reads RFC 7895's ``/modules-state`` and :func:`parse_yang_library`
RFC 8525's ``/yang-library``; both give :class:`ModuleInfo` rows. :class:`ModuleSet` joins a
hello and a library: which modules a server implements, at which revision, with which
features.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias
from urllib.parse import unquote

from lxml import etree

__all__ = [
    "YANG_LIBRARY_NS",
    "CapabilityError",
    "ModuleCapability",
    "ModuleInfo",
    "ModuleSet",
    "ProtocolCapability",
    "YangLibraryCapability",
    "parse_capability",
    "parse_modules_state",
    "parse_yang_library",
]

YANG_LIBRARY_NS: Final = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
"""The namespace of RFC 7895's ``/modules-state`` and of RFC 8525's ``/yang-library``."""
_LIBRARY_CAP: Final = "urn:ietf:params:netconf:capability:yang-library:"
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_MODULE_PARAMS: Final = frozenset({"module", "revision", "features", "deviations"})


class CapabilityError(ValueError):
    """A capability URI that breaks RFC 6020's or RFC 7950's grammar."""


@dataclass(frozen=True, slots=True)
class ModuleCapability:
    """``NAMESPACE?module=NAME&revision=DATE&features=...&deviations=...``."""

    namespace: str
    module: str
    revision: str | None
    features: tuple[str, ...] = ()
    deviations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class YangLibraryCapability:
    """The YANG library capability: 1.0 carries ``module_set_id``, 1.1 ``content_id``."""

    version: str
    revision: str
    module_set_id: str | None = None
    content_id: str | None = None

    @property
    def key(self) -> str:
        """What changes when the library's content changes."""
        return f"{self.version}:{self.module_set_id or self.content_id or ''}"


@dataclass(frozen=True, slots=True)
class ProtocolCapability:
    uri: str


Capability: TypeAlias = ModuleCapability | YangLibraryCapability | ProtocolCapability


def _query(uri: str, query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        if not sep or not name:
            raise CapabilityError(f"{uri!r}: parameter {part!r} is not NAME=VALUE")
        if name in params:
            raise CapabilityError(f"{uri!r}: parameter {name!r} is given twice")
        params[name] = unquote(value)
    return params


def _names(uri: str, what: str, text: str) -> tuple[str, ...]:
    names = tuple(text.split(",")) if text else ()
    for name in names:
        if not _IDENTIFIER.match(name):
            raise CapabilityError(f"{uri!r}: {what} {name!r} is not a YANG identifier")
    return names


def parse_capability(uri: str) -> Capability:
    """One capability URI of a hello (see the module); CapabilityError if it is malformed."""
    base, sep, query = uri.partition("?")
    if base.startswith(_LIBRARY_CAP):
        return _library(uri, base[len(_LIBRARY_CAP) :], query)
    if not sep or "module=" not in query:
        return ProtocolCapability(uri)
    params = _query(uri, query)
    unknown = set(params) - _MODULE_PARAMS
    if unknown:
        raise CapabilityError(f"{uri!r}: unknown parameter(s) {', '.join(sorted(unknown))}")
    module = params.get("module", "")
    if not _IDENTIFIER.match(module):
        raise CapabilityError(f"{uri!r}: module {module!r} is not a YANG identifier")
    if not base or ":" not in base:
        raise CapabilityError(f"{uri!r}: {base!r} is not a namespace URI")
    revision = params.get("revision")
    if revision is not None and not _DATE.match(revision):
        raise CapabilityError(f"{uri!r}: revision {revision!r} is not YYYY-MM-DD")
    return ModuleCapability(
        namespace=base,
        module=module,
        revision=revision,
        features=_names(uri, "feature", params.get("features", "")),
        deviations=_names(uri, "deviation", params.get("deviations", "")),
    )


def _library(uri: str, version: str, query: str) -> YangLibraryCapability:
    if version not in ("1.0", "1.1"):
        raise CapabilityError(f"{uri!r}: unknown yang-library version {version!r}")
    params = _query(uri, query) if query else {}
    revision = params.get("revision", "")
    if not _DATE.match(revision):
        raise CapabilityError(f"{uri!r}: the yang-library capability needs revision=YYYY-MM-DD")
    wanted = "module-set-id" if version == "1.0" else "content-id"
    if not params.get(wanted):
        raise CapabilityError(f"{uri!r}: yang-library:{version} needs {wanted}")
    unknown = set(params) - {"revision", wanted}
    if unknown:
        raise CapabilityError(f"{uri!r}: unknown parameter(s) {', '.join(sorted(unknown))}")
    if version == "1.0":
        return YangLibraryCapability(version, revision, module_set_id=params[wanted])
    return YangLibraryCapability(version, revision, content_id=params[wanted])


@dataclass(frozen=True, slots=True)
class ModuleInfo:
    """One module a server lists: implemented, or only imported."""

    name: str
    revision: str | None
    namespace: str
    features: tuple[str, ...] = ()
    implemented: bool = True


def _q(name: str) -> str:
    return f"{{{YANG_LIBRARY_NS}}}{name}"


def _text(parent: etree._Element, name: str) -> str | None:
    found = parent.find(_q(name))
    if found is None or found.text is None:
        return None
    return found.text.strip()


def _row(entry: etree._Element, implemented: bool) -> ModuleInfo | None:
    name = _text(entry, "name")
    if not name:
        return None
    features = tuple((f.text or "").strip() for f in entry.findall(_q("feature")) if f.text)
    return ModuleInfo(
        name=name,
        revision=_text(entry, "revision") or None,
        namespace=_text(entry, "namespace") or "",
        features=features,
        implemented=implemented,
    )


def parse_modules_state(data: etree._Element) -> tuple[str | None, list[ModuleInfo]]:
    """(module-set-id, modules) of RFC 7895's ``modules-state`` under ``data`` (a ``<data>``
    element or the ``modules-state`` element itself)."""
    top = data if data.tag == _q("modules-state") else data.find(_q("modules-state"))
    if top is None:
        return None, []
    rows = []
    for entry in top.findall(_q("module")):
        conformance = _text(entry, "conformance-type") or "implement"
        row = _row(entry, conformance == "implement")
        if row is not None:
            rows.append(row)
    return _text(top, "module-set-id"), rows


def parse_yang_library(data: etree._Element) -> tuple[str | None, list[ModuleInfo]]:
    """(content-id, modules) of RFC 8525's ``yang-library`` under ``data``: the modules of
    every module-set, implemented (``module``) or imported (``import-only-module``)."""
    top = data if data.tag == _q("yang-library") else data.find(_q("yang-library"))
    if top is None:
        return None, []
    rows = []
    for module_set in top.findall(_q("module-set")):
        for entry in module_set.findall(_q("module")):
            row = _row(entry, True)
            if row is not None:
                rows.append(row)
        for entry in module_set.findall(_q("import-only-module")):
            row = _row(entry, False)
            if row is not None:
                rows.append(row)
    return _text(top, "content-id"), rows


class ModuleSet:
    """The modules a server implements, from its hello and, if read, its YANG library.

    Malformed capability URIs are kept in ``problems`` and otherwise ignored.
    """

    def __init__(
        self, capabilities: Iterable[str], library: Iterable[ModuleInfo] | None = None
    ) -> None:
        self.library: YangLibraryCapability | None = None
        self.problems: list[str] = []
        modules: dict[str, ModuleInfo] = {}
        for uri in capabilities:
            try:
                cap = parse_capability(uri)
            except CapabilityError as exc:
                self.problems.append(str(exc))
                continue
            if isinstance(cap, YangLibraryCapability):
                self.library = cap
            elif isinstance(cap, ModuleCapability):
                modules[cap.module] = ModuleInfo(
                    cap.module, cap.revision, cap.namespace, cap.features
                )
        self.read_library = library is not None
        """Whether the YANG library was read (else only the hello is known)."""
        for row in library or ():
            current = modules.get(row.name)
            if current is None or (row.implemented and not current.implemented):
                modules[row.name] = row
        self._modules: Mapping[str, ModuleInfo] = modules

    def implemented(self, name: str) -> ModuleInfo | None:
        """The module ``name`` if the server implements it."""
        found = self._modules.get(name)
        return found if found is not None and found.implemented else None

    @property
    def needs_library(self) -> bool:
        """Whether the hello points at a YANG library that was not read yet."""
        return self.library is not None and not self.read_library
