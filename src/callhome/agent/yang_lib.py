"""A narrow, typed wrapper around yangson, the YANG library the agent uses.

Only this module imports yangson (it has no type hints). It offers: the header of a module
file read with yangson's YANG parser (``read_header``), the schema built from YANG library
data (``DataModel``), the facts the schemaless machinery needs from the schema
(``schema_facts``) and configuration validation that returns the first problem found
(``validate_config``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lxml import etree
from yangson import DataModel as _YangsonModel  # type: ignore[import-untyped]
from yangson.datatype import EmptyType  # type: ignore[import-untyped]
from yangson.enumerations import ContentType  # type: ignore[import-untyped]
from yangson.exceptions import (  # type: ignore[import-untyped]
    MissingModuleNamespace,
    RawMemberError,
    RawTypeError,
    SchemaError,
    SemanticError,
    ValidationError,
    YangsonException,
    YangTypeError,
)
from yangson.schemanode import (  # type: ignore[import-untyped]
    AnyContentNode,
    CaseNode,
    ChoiceNode,
    ContainerNode,
    LeafListNode,
    LeafNode,
    ListNode,
    NotificationNode,
    RpcActionNode,
)
from yangson.statement import ModuleParser  # type: ignore[import-untyped]

__all__ = [
    "DataModel",
    "ModuleHeader",
    "Problem",
    "SchemaFacts",
    "YangLibraryError",
    "read_header",
    "schema_facts",
    "validate_config",
]


class YangLibraryError(Exception):
    """yangson refused a module file or the set of modules."""


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


class DataModel:
    """A yangson schema, built once from YANG library data (JSON text, RFC 7895)."""

    def __init__(self, library_json: str, mod_path: Sequence[str]) -> None:
        try:
            self.model: Any = _YangsonModel(library_json, list(mod_path))
        except YangsonException as exc:
            raise YangLibraryError(f"{type(exc).__name__}: {exc}") from None


@dataclass
class SchemaFacts:
    """Schema facts by qualified (Clark) name, for the schemaless datastore machinery."""

    list_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    empty_leaves: set[str] = field(default_factory=set)
    """Leaves of type empty (their XML has no text)."""
    namespaces: set[str] = field(default_factory=set)
    """Every namespace whose nodes appear in the data tree."""


def schema_facts(model: DataModel, module_ns: Mapping[str, str]) -> SchemaFacts:
    """List keys, single-instance elements, defaults and empty leaves of the data tree.

    ``module_ns`` maps module names to their XML namespaces.
    """
    facts = SchemaFacts()
    seen: dict[str, set[tuple[str, ...] | None]] = {}

    def clark(node: Any) -> str:
        return f"{{{module_ns[str(node.ns)]}}}{node.name}"

    def walk(node: Any, path: tuple[str, ...], in_choice: bool, depth: int) -> None:
        if depth > 256:
            return
        for child in node.children:
            if isinstance(child, (RpcActionNode, NotificationNode)):
                continue
            if isinstance(child, (ChoiceNode, CaseNode)):
                walk(child, path, True, depth + 1)
                continue
            tag = clark(child)
            facts.namespaces.add(module_ns[str(child.ns)])
            if isinstance(child, ListNode):
                seen.setdefault(tag, set()).add(
                    tuple(f"{{{module_ns[str(ns)]}}}{name}" for name, ns in child.keys)
                )
                walk(child, (*path, tag), in_choice, depth + 1)
            elif isinstance(child, ContainerNode):
                seen.setdefault(tag, set()).add(())
                walk(child, (*path, tag), in_choice, depth + 1)
            elif isinstance(child, LeafListNode):
                seen.setdefault(tag, set()).add(None)  # repeats: never single-instance
            elif isinstance(child, LeafNode):
                seen.setdefault(tag, set()).add(())
                if isinstance(child.type, EmptyType):
                    facts.empty_leaves.add(tag)
                default = child.default
                if default is not None and child.config and not in_choice:
                    text = child.type.canonical_string(default)
                    if text is not None:
                        facts.defaults["/" + "/".join((*path, tag))] = str(text)
            elif isinstance(child, AnyContentNode):
                seen.setdefault(tag, set()).add(None)

    walk(model.model.schema, (), False, 0)
    for tag, declared in seen.items():
        if len(declared) == 1:
            (only,) = declared
            if only is not None:
                facts.list_keys[tag] = only
    return facts


@dataclass(frozen=True)
class Problem:
    """The first problem yangson found in a configuration."""

    kind: str
    """type (a value's type), raw-type (a value not of its type at all), schema, semantic,
    unknown (an element the schema does not have), namespace, other."""
    tag: str | None
    """yangson's tag: missing-data, member-not-allowed, list-key-missing, non-unique-key,
    too-many-elements, must-violation (or the must's error-app-tag), instance-required ..."""
    message: str | None
    steps: tuple[str | int, ...]
    """Where: member names ("module:name" at the top and across modules, else "name") and
    list positions, from the top of the data tree."""


def _raw_steps(pointer: str) -> tuple[str | int, ...]:
    """Steps of yangson's raw-data pointer ('/m:a/b=KEYS/0/c', a leaf-list entry '/x/3/1')."""
    steps: list[str | int] = []
    for segment in pointer.split("/")[1:]:
        if segment.isdigit():
            if steps and isinstance(steps[-1], int):
                steps.pop()  # position among all children, then among its namesakes
            steps.append(int(segment))
        else:
            steps.append(segment.partition("=")[0])
    return tuple(steps)


def validate_config(model: DataModel, root: etree._Element) -> Problem | None:
    """Check ``root`` (a ``<data>`` element prepared for yangson) as configuration."""
    try:
        instance = model.model.from_xml(root)
        instance.validate(ctype=ContentType.config)
    except ValidationError as exc:
        kind = (
            "type"
            if isinstance(exc, YangTypeError)
            else "schema"
            if isinstance(exc, SchemaError)
            else "semantic"
            if isinstance(exc, SemanticError)
            else "other"
        )
        msg = None if exc.message is None else str(exc.message)
        tag = None if exc.tag is None else str(exc.tag)
        return Problem(kind, tag, msg, tuple(exc.instance.path))
    except RawMemberError as exc:
        return Problem("unknown", None, None, _raw_steps(str(exc.path)))
    except RawTypeError as exc:
        return Problem("raw-type", None, str(exc.message), _raw_steps(str(exc.path)))
    except MissingModuleNamespace as exc:
        return Problem("namespace", None, str(exc), ())
    except YangsonException as exc:
        return Problem("other", None, f"{type(exc).__name__}: {exc}", ())
    return None
