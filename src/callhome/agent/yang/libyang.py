"""A narrow, typed wrapper around the YANG libraries the agent uses.

Only this module imports them; neither has type hints. Configuration is validated with libyang
(CESNET's C library, through the CFFI module of its Python bindings, PyPI ``libyang``): the
schema is built once from YANG library data (``DataModel``), and ``validate_config`` parses the
XML of a configuration and returns the first problem found (``Problem``). ``schema_facts``
reads what the schemaless machinery needs from the compiled schema. The header of a module
file (``read_header``) is read with yangson's YANG parser, which needs no context: libyang
only parses a module once all its imports can be found, and the agent reads headers to find
them (and to say which one is missing).

libyang's errors are kept in the context (``LY_LOSTORE``) with the path of the data or schema
node concerned; they are read and cleared after each call. The bindings (``libyang==2.8.0``)
are the last release for libyang 2.25 to 2.36 (Debian bookworm's libyang2 2.1.30 is 2.29).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

# imported first: the bindings set libyang's log options when imported; ours must come after
import libyang  # noqa: F401
from _libyang import ffi, lib  # type: ignore[import-not-found]
from lxml import etree
from yangson.exceptions import YangsonException  # type: ignore[import-untyped]
from yangson.statement import ModuleParser  # type: ignore[import-untyped]

__all__ = [
    "DataModel",
    "ModuleHeader",
    "Problem",
    "SchemaFacts",
    "Step",
    "YangLibraryError",
    "read_header",
    "schema_facts",
    "validate_config",
]


class YangLibraryError(Exception):
    """A module file or the set of modules was refused."""


@dataclass(frozen=True)
class ModuleHeader:
    """What the agent needs to know of a module or submodule file before building a schema."""

    kind: str
    """``module`` or ``submodule``."""
    name: str
    revision: str
    """Its newest revision date, "" if it has none."""
    namespace: str
    """The module's XML namespace; for a submodule, that of the module it belongs to once
    known ("" before)."""
    prefix: str
    yang_version: str
    imports: tuple[tuple[str, str | None], ...] = ()
    """(module name, revision-date or None) of each import."""
    includes: tuple[tuple[str, str | None], ...] = ()
    features: tuple[str, ...] = ()
    belongs_to: str | None = None

    def with_namespace(self, ns: str) -> ModuleHeader:
        return replace(self, namespace=ns)


def _arg(stmt: Any, keyword: str) -> str | None:
    sub = stmt.find1(keyword)
    return None if sub is None else str(sub.argument)


def read_header(text: str) -> ModuleHeader:
    """The header of a module or submodule, parsed by yangson (YangLibraryError if bad)."""
    try:
        first = ModuleParser(text)
        first.opt_separator()
        stmt = first.statement()
        kind = str(stmt.keyword)
        if kind not in ("module", "submodule"):
            raise YangLibraryError(f"not a YANG module: it starts with {kind!r}")
        # the first revision statement is the module's (RFC 7950 lists the newest first)
        revision = _arg(stmt, "revision") or ""
        stmt = ModuleParser(text, str(stmt.argument), revision).parse()  # the whole text
    except YangsonException as exc:
        raise YangLibraryError(str(exc) or type(exc).__name__) from None
    belongs = stmt.find1("belongs-to")
    prefix = _arg(stmt, "prefix") if belongs is None else _arg(belongs, "prefix")

    def deps(keyword: str) -> tuple[tuple[str, str | None], ...]:
        return tuple((str(s.argument), _arg(s, "revision-date")) for s in stmt.find_all(keyword))

    return ModuleHeader(
        kind=kind,
        name=str(stmt.argument),
        revision=revision,
        namespace=_arg(stmt, "namespace") or "",
        prefix=prefix or "",
        yang_version=_arg(stmt, "yang-version") or "1",
        imports=deps("import"),
        includes=deps("include"),
        features=tuple(str(f.argument) for f in stmt.find_all("feature")),
        belongs_to=None if belongs is None else str(belongs.argument),
    )


# -- libyang ---------------------------------------------------------------------------------

_log_lock = threading.Lock()
_log_set = False


def _store_errors() -> None:
    """Keep every error in its context, with its path, and print nothing (process-wide)."""
    global _log_set
    with _log_lock:
        if not _log_set:
            lib.ly_log_options(lib.LY_LOSTORE)
            lib.ly_set_log_clb(ffi.NULL, 1)  # no callback; but do work out the error paths
            _log_set = True


def _text(cdata: Any) -> str | None:
    return None if cdata == ffi.NULL else bytes(ffi.string(cdata)).decode("utf-8", "replace")


@dataclass(frozen=True)
class _Error:
    message: str
    path: str
    """libyang's location text: 'Data location "/m:a/b[k='1']", line number 3.', 'Schema
    location "/m:a/b".', 'Line number 1.' or ''."""
    app_tag: str | None


def _errors(ctx: Any) -> list[_Error]:
    """The errors stored in ``ctx`` (then cleared)."""
    found: list[_Error] = []
    item = lib.ly_err_first(ctx)
    while item != ffi.NULL and len(found) < 100:
        if item.level == lib.LY_LLERR:
            found.append(
                _Error(_text(item.msg) or "", _text(item.path) or "", _text(item.apptag) or None)
            )
        item = item.next
    lib.ly_err_clean(ctx, ffi.NULL)
    return found


def _describe(errors: Sequence[_Error]) -> str:
    return "; ".join(f"{e.message} {e.path}".strip() for e in errors) or "(no details)"


class DataModel:
    """A libyang context with the modules of YANG library data (JSON text, RFC 7895).

    Every module with conformance-type implement is loaded, with its features; the others are
    found as imports in ``mod_path`` (folders, which take precedence over libyang's own copies
    of the IETF modules). libyang turns an imported module's features all on or all off: they
    are all on when any module that is only imported has a feature on.
    """

    def __init__(self, library_json: str, mod_path: Sequence[str]) -> None:
        _store_errors()
        try:
            modules = json.loads(library_json)["ietf-yang-library:modules-state"]["module"]
        except (ValueError, KeyError, TypeError) as exc:
            raise YangLibraryError(f"bad YANG library data: {exc}") from None
        options = (
            lib.LY_CTX_NO_YANGLIBRARY
            | lib.LY_CTX_DISABLE_SEARCHDIR_CWD
            | lib.LY_CTX_PREFER_SEARCHDIRS
            | lib.LY_CTX_EXPLICIT_COMPILE
        )
        if any(m.get("feature") for m in modules if m["conformance-type"] != "implement"):
            options |= lib.LY_CTX_ENABLE_IMP_FEATURES
        ctx_p = ffi.new("struct ly_ctx **")
        search = ":".join(mod_path).encode() if mod_path else ffi.NULL
        if lib.ly_ctx_new(search, options, ctx_p) != lib.LY_SUCCESS:
            raise YangLibraryError("libyang cannot make a context")
        self._ctx: Any = ffi.gc(ctx_p[0], lib.ly_ctx_destroy)
        self.modules: dict[str, Any] = {}
        """Each implemented module (``struct lys_module *``) by name."""
        for module in modules:
            if module["conformance-type"] != "implement":
                continue
            name, revision = module["name"], module.get("revision") or None
            keep = [ffi.new("char[]", f.encode()) for f in module.get("feature", ())]
            features = ffi.new("const char *[]", [*keep, ffi.NULL])
            loaded = lib.ly_ctx_load_module(
                self._ctx,
                name.encode(),
                ffi.NULL if revision is None else revision.encode(),
                features,
            )
            if loaded == ffi.NULL:
                raise YangLibraryError(f"module {name!r}: {_describe(_errors(self._ctx))}")
            self.modules[name] = loaded
        if lib.ly_ctx_compile(self._ctx) != lib.LY_SUCCESS:
            raise YangLibraryError(_describe(_errors(self._ctx)))
        _errors(self._ctx)  # warnings of loading and compiling

    @property
    def context(self) -> Any:
        """The ``struct ly_ctx *`` (for this module's functions only)."""
        return self._ctx


@dataclass
class SchemaFacts:
    """Schema facts by qualified (Clark) name, for the schemaless datastore machinery."""

    list_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    empty_leaves: set[str] = field(default_factory=set)
    """Leaves of type empty (their XML has no text)."""
    namespaces: set[str] = field(default_factory=set)
    """Every namespace whose nodes appear in the data tree."""


_GETNEXT: Final = lib.LYS_GETNEXT_WITHCHOICE | lib.LYS_GETNEXT_WITHCASE
_SKIPPED: Final = lib.LYS_RPC | lib.LYS_ACTION | lib.LYS_NOTIF


def _children(parent: Any, module: Any) -> Iterator[Any]:
    """The schema children of ``parent`` (of ``module``'s top level when it is NULL), choices
    and cases included."""
    compiled = module.compiled if parent == ffi.NULL else ffi.NULL
    child = lib.lys_getnext(ffi.NULL, parent, compiled, _GETNEXT)
    while child != ffi.NULL:
        yield child
        child = lib.lys_getnext(child, parent, compiled, _GETNEXT)


def schema_facts(model: DataModel, module_ns: Mapping[str, str]) -> SchemaFacts:
    """List keys, single-instance elements, defaults and empty leaves of the data tree.

    ``module_ns`` maps module names to their XML namespaces (those of the YANG library).
    """
    facts = SchemaFacts()
    seen: dict[str, set[tuple[str, ...] | None]] = {}

    def clark(node: Any) -> str:
        return f"{{{_text(node.module.ns)}}}{_text(node.name)}"

    def walk(parent: Any, module: Any, path: tuple[str, ...], in_choice: bool, depth: int) -> None:
        if depth > 256:
            return
        for child in _children(parent, module):
            kind = child.nodetype
            if kind & _SKIPPED:
                continue
            if kind & (lib.LYS_CHOICE | lib.LYS_CASE):
                walk(child, module, path, True, depth + 1)
                continue
            tag = clark(child)
            facts.namespaces.add(_text(child.module.ns) or "")
            if kind & lib.LYS_LIST:
                keys = tuple(
                    clark(c)
                    for c in _children(child, module)
                    if c.nodetype & lib.LYS_LEAF and c.flags & lib.LYS_KEY
                )
                seen.setdefault(tag, set()).add(keys)
                walk(child, module, (*path, tag), in_choice, depth + 1)
            elif kind & lib.LYS_CONTAINER:
                seen.setdefault(tag, set()).add(())
                walk(child, module, (*path, tag), in_choice, depth + 1)
            elif kind & lib.LYS_LEAF:
                seen.setdefault(tag, set()).add(())
                leaf = ffi.cast("struct lysc_node_leaf *", child)
                if leaf.type.basetype == lib.LY_TYPE_EMPTY:
                    facts.empty_leaves.add(tag)
                if leaf.dflt != ffi.NULL and child.flags & lib.LYS_CONFIG_W and not in_choice:
                    text = _text(lib.lyd_value_get_canonical(model.context, leaf.dflt))
                    if text is not None:
                        facts.defaults["/" + "/".join((*path, tag))] = text
            else:  # leaf-list, anydata, anyxml: they repeat or hold anything
                seen.setdefault(tag, set()).add(None)

    for name, module in model.modules.items():
        if name in module_ns:
            walk(ffi.NULL, module, (), False, 0)
    for tag, declared in seen.items():
        if len(declared) == 1:
            (only,) = declared
            if only is not None:
                facts.list_keys[tag] = only
    return facts


# -- validation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step of a libyang path: ``module:name`` (module None: the parent's), predicates."""

    module: str | None
    name: str
    predicates: tuple[tuple[str, str], ...] = ()
    """(key leaf name, value), ('.', value) for a leaf-list entry, ('#', position)."""


@dataclass(frozen=True)
class Problem:
    """The first problem libyang found in a configuration."""

    kind: str
    """value (a value not of its type, or out of its range, length, pattern), unknown (an
    element the schema does not have here), namespace (of no module), state (config false
    data), missing-key, missing (a mandatory node), duplicate (a second instance of a container,
    list entry or leaf-list value), choice (two cases), when (a false when), semantic (a
    constraint with an error-app-tag: must, leafref, unique, min/max-elements, mandatory
    choice), other."""
    app_tag: str | None
    """libyang's error-app-tag: must-violation (or the must's own), instance-required,
    data-not-unique, too-many-elements, too-few-elements, missing-choice, a restriction's
    error-app-tag."""
    message: str
    """libyang's message (a must's or restriction's error-message when it has one)."""
    steps: tuple[Step, ...]
    """Where, from the top of the data tree."""
    schema_only: bool = False
    """The steps are a schema path: no list keys, and choices and cases are steps too."""
    name: str | None = None
    """The node the message names: the unknown element, missing leaf or key, second case."""


_LOCATION: Final = re.compile(r'[Dd]ata location "(.*)"(?:, line number \d+)?\.$')
_SCHEMA_LOCATION: Final = re.compile(r'^Schema location "(.*?)"(?:, data location|, line|\.$)')
_QUOTED: Final = re.compile(r'"([^"]*)"')


def _split_path(path: str) -> tuple[Step, ...]:
    """The steps of a libyang path ``/m:a/b[k='v'][j="w"]/c[.='x']/d[2]``."""
    steps: list[Step] = []
    i, end = 0, len(path)
    while i < end and path[i] == "/":
        j = i + 1
        while j < end and path[j] not in "/[":
            j += 1
        module, _, name = path[i + 1 : j].rpartition(":")
        predicates: list[tuple[str, str]] = []
        while j < end and path[j] == "[":
            k = j + 1
            while k < end and path[k] not in "=]":
                k += 1
            key = path[j + 1 : k].strip()
            if k < end and path[k] == "]":
                predicates.append(("#", key))
                j = k + 1
                continue
            k += 1
            quote = path[k] if k < end else "'"
            close = path.find(quote, k + 1)
            if close < 0:
                return tuple(steps)
            predicates.append((key.rpartition(":")[2], path[k + 1 : close]))
            j = path.find("]", close) + 1
            if j == 0:
                return tuple(steps)
        steps.append(Step(module or None, name, tuple(predicates)))
        i = j
    return tuple(steps)


def _problem(error: _Error, validating: bool) -> Problem:
    msg, app_tag = error.message, error.app_tag
    found = _LOCATION.search(error.path)
    schema = None if found else _SCHEMA_LOCATION.search(error.path)
    where = found or schema
    steps = _split_path(where.group(1)) if where else ()
    quoted = _QUOTED.findall(msg)
    first = quoted[0] if quoted else None

    def problem(kind: str, name: str | None = None, tag: str | None = app_tag) -> Problem:
        return Problem(kind, tag, msg, steps, schema is not None, name)

    if msg.startswith("Node ") and " not found" in msg:
        return problem("unknown", first)
    if msg.startswith("No module with namespace"):
        return problem("namespace", first)
    if "state node" in msg:
        return problem("state", first)
    if msg.startswith("List instance is missing its key"):
        return problem("missing-key", first)
    if msg.startswith("Mandatory node"):
        return problem("missing", first)
    if msg.startswith("Duplicate instance"):
        return problem("duplicate", first)
    if msg.startswith("Data for both cases"):
        return problem("choice", quoted[-1] if quoted else None)
    if msg.startswith("When condition"):
        return problem("when")
    if not validating:
        return problem("value")
    return problem("semantic" if app_tag else "other")


def validate_config(model: DataModel, elements: Iterable[etree._Element]) -> Problem | None:
    """Check the top-level ``elements`` of a datastore as a whole configuration."""
    ctx = model.context
    text = b"".join(etree.tostring(el, with_tail=False) for el in elements)
    tree = ffi.new("struct lyd_node **")
    lib.ly_err_clean(ctx, ffi.NULL)
    try:
        parse = lib.LYD_PARSE_ONLY | lib.LYD_PARSE_STRICT | lib.LYD_PARSE_NO_STATE
        if lib.lyd_parse_data_mem(ctx, text, lib.LYD_XML, parse, 0, tree) != lib.LY_SUCCESS:
            return _first(_errors(ctx), validating=False)
        if lib.lyd_validate_all(tree, ctx, lib.LYD_VALIDATE_NO_STATE, ffi.NULL) != lib.LY_SUCCESS:
            return _first(_errors(ctx), validating=True)
        return None
    finally:
        if tree[0] != ffi.NULL:
            lib.lyd_free_all(tree[0])
        lib.ly_err_clean(ctx, ffi.NULL)


def _first(errors: Sequence[_Error], *, validating: bool) -> Problem:
    if not errors:
        return Problem("other", None, "libyang refused the data without saying why", ())
    return _problem(errors[0], validating)
