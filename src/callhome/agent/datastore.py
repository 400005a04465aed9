"""The device's configuration datastores, whatever reached them (NETCONF or the device's own code).

Only ``running`` exists for now. Datastores are kept in a dict by name, so that ``candidate``
and ``startup`` can be added beside it; naming one of those gives ``operation-not-supported``,
naming anything else gives ``invalid-value``.

The data is schemaless XML: the datastore holds a ``<data>`` element (NETCONF base namespace)
whose children are the top-level configuration nodes. Stored data is kept normalized: no
comments, no processing instructions, no tails, and no text in elements that have children. A
*leaf* is an element without element children; its value is its text.

Subtree filtering (RFC 6241 section 6)
    Namespace selection, attribute match expressions, containment, selection and content match
    nodes, as in the RFC. Details the RFC leaves open:

    * a filter element without a namespace (``xmlns=""``) matches its local name in any
      namespace; a filter element with a namespace matches only that namespace;
    * content match values are compared after stripping leading and trailing white space,
      and only against leaves of the data;
    * a containment node that selects nothing below it is left out of the output;
    * an empty filter selects nothing; no filter selects everything;
    * for list entries whose keys were declared (``list_keys``, below) the key leaves are
      included whenever anything inside the entry is selected.

List entry matching in edit-config (and when merging state data into ``get``)
    A config element is matched against the existing siblings with the same qualified name:

    1. if its qualified name was declared in ``list_keys``: the declared key leaves (Clark
       notation names) must all be present in the config element and have equal values in the
       existing entry; an empty declaration means "single instance", matched by name alone;
    2. otherwise, if its *first* child element is a leaf, that leaf is the key: an existing
       sibling matches when its own first child element has the same qualified name and the
       same value (stripped text). This follows YANG's XML encoding, which puts list keys
       first. When no existing sibling of that name starts with a leaf of that name, the leaf
       is not a key there and rule 3 applies instead;
    3. otherwise (a leaf, or an element whose first child has children) the name alone
       matches, and the first existing sibling of that name is the one.

    Leaves are therefore matched by name alone: repeated leaves (leaf-lists) cannot be edited
    one value at a time; replace their parent instead. A container that starts with a leaf
    (``<system><hostname>a</hostname>...``) looks like a list entry under rule 2, so a new
    value of that leaf would add a second container: declare it with an empty key list.

edit-config semantics
    ``operation`` (NETCONF base namespace attribute) merge, replace, create, delete and remove
    apply to the element and, unless overridden, to its descendants. ``replace`` (and
    ``default-operation`` replace, which replaces the whole datastore) removes what existed and
    builds the new content as if it were created; inside new content, ``delete`` gives
    ``data-missing`` and ``remove`` is a no-op. ``default-operation`` none: a config element
    with no counterpart gives ``data-missing``, unless the only operations requested inside it
    are ``remove``. ``stop-on-error`` and ``rollback-on-error`` are all or nothing (the edit runs
    on a copy that replaces the datastore only on success); ``continue-on-error`` keeps what
    succeeded and reports every error (what create or replace builds is still all or nothing;
    a merge that creates an element keeps it, and what succeeded below it). ``test-only`` runs
    the edit on the copy and keeps nothing.

error-path
    An absolute path of the offending element as written in the request, from the top of
    ``<config>``: one step per element, named with the prefix the request used (none when the
    request used a default namespace), with ``[key='value']`` predicates on the list entries
    that were matched by key (rule 1 or 2 above), e.g. ``/top/users/user[name='fred']/type``.
    Prefixes are those of the request and are not declared again in the reply.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias, cast

from lxml import etree

from callhome.errors import ConfigError, ErrorTag, ErrorType, RpcError, RpcErrorInfo

__all__ = [
    "NETCONF_BASE_NS",
    "ChangeEvent",
    "ChangeListener",
    "Datastore",
    "StateProvider",
]

log = logging.getLogger(__name__)

NETCONF_BASE_NS: Final = "urn:ietf:params:xml:ns:netconf:base:1.0"
_DATA_TAG: Final = f"{{{NETCONF_BASE_NS}}}data"
_CONFIG_TAG: Final = f"{{{NETCONF_BASE_NS}}}config"
_OP_ATTR: Final = f"{{{NETCONF_BASE_NS}}}operation"

_EDIT_OPERATIONS: Final = frozenset({"merge", "replace", "create", "delete", "remove"})
_DEFAULT_OPERATIONS: Final = ("merge", "replace", "none")
_ERROR_OPTIONS: Final = ("stop-on-error", "continue-on-error", "rollback-on-error")
_TEST_OPTIONS: Final = ("test-then-set", "set", "test-only")
_KNOWN_DATASTORES: Final = ("running", "candidate", "startup")

StateProvider: TypeAlias = Callable[[], Iterable[etree._Element]]
"""Returns state data: top-level elements merged into the configuration for ``get``."""


@dataclass(frozen=True)
class ChangeEvent:
    """A change committed to a datastore."""

    datastore: str
    """Name of the datastore that changed (``running``)."""
    session_id: int | None
    """NETCONF session that made the change; None for the device's own code."""
    edit: etree._Element
    """The ``<config>`` element that was applied (the caller's; do not modify)."""


ChangeListener: TypeAlias = Callable[[ChangeEvent], None]


def _empty_root() -> etree._Element:
    nsmap: dict[Any, str] = {None: NETCONF_BASE_NS}
    return etree.Element(_DATA_TAG, nsmap=nsmap)


def _is_element(node: etree._Element) -> bool:
    """False for comments, processing instructions and entity references."""
    return isinstance(node.tag, str)


def _elements(el: etree._Element) -> list[etree._Element]:
    """Element children, skipping comments and processing instructions."""
    return [c for c in el if _is_element(c)]


def _is_leaf(el: etree._Element) -> bool:
    return not any(_is_element(c) for c in el)


def _attributes(el: etree._Element) -> dict[str, str]:
    return cast("dict[str, str]", dict(el.attrib))


def _value(el: etree._Element) -> str:
    return (el.text or "").strip()


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _namespace(tag: str) -> str | None:
    return tag[1:].partition("}")[0] if tag.startswith("{") else None


def _normalize(root: etree._Element) -> None:
    """Drop comments and PIs, tails, and text beside child elements, in place."""
    for el in list(root.iter()):
        if not _is_element(el):
            parent = el.getparent()
            if parent is not None:
                parent.remove(el)
    for el in root.iter():
        el.tail = None
        if len(el):
            el.text = None
    root.text = None


@dataclass
class _Store:
    root: etree._Element
    path: Path | None = None
    lock_holder: int | None = None
    size: int = 0
    """Number of elements under root."""

    def __post_init__(self) -> None:
        self.set_root(self.root)

    def set_root(self, root: etree._Element) -> None:
        self.root = root
        self.size = _count(root)


def _count(root: etree._Element) -> int:
    return int(cast(float, root.xpath("count(.//*)")))


# ---------------------------------------------------------------------------------------------
# Subtree filtering


_ALL: Final = True
_Selection: TypeAlias = "Literal[True] | dict[int, _Selection]"
"""What a filter selects below one data element: everything, or some children by position."""


class _FilterNode:
    """One compiled filter element: a selection, content match or containment node."""

    __slots__ = ("attrs", "containment", "content", "local", "others", "tag", "text", "wild")
    text: str

    def __init__(self, el: etree._Element) -> None:
        tag = self.tag = el.tag
        self.wild = tag[0] != "{"  # no namespace: any namespace matches
        self.local = tag if self.wild else _local(tag)
        self.attrs: list[tuple[str, str]] = el.items()  # type: ignore[assignment]
        self.content: list[_FilterNode] = []
        self.others: list[_FilterNode] = []
        for child in el:
            if isinstance(child.tag, str):
                node = _FilterNode(child)
                (self.content if node.text else self.others).append(node)
        self.containment = bool(self.content or self.others)
        self.text = "" if self.containment else (el.text or "").strip()

    def candidates(self, tags: list[str], by_tag: dict[str, list[int]]) -> Iterable[int]:
        """Positions of the children whose name this node matches."""
        if self.wild:
            return [i for i, tag in enumerate(tags) if _local(tag) == self.local]
        return by_tag.get(self.tag, ())

    def attributes_match(self, el: etree._Element) -> bool:
        return not self.attrs or all(el.get(k) == v for k, v in self.attrs)


def _merge_selection(into: dict[int, _Selection], index: int, sel: _Selection) -> None:
    have = into.get(index)
    if have is None:
        into[index] = sel
    elif have is _ALL or sel is _ALL:
        into[index] = _ALL
    else:
        assert isinstance(have, dict) and isinstance(sel, dict)
        for i, sub in sel.items():
            _merge_selection(have, i, sub)


_PRUNE_LIMIT: Final = 512
"""Up to this many elements, filter output is a pruned copy of the whole tree (cheaper for
small trees); above it, the output is built from the selected parts only."""


_FILTER_CACHE_SIZE: Final = 64


class _SubtreeFilter:
    def __init__(self, filter_el: etree._Element, list_keys: Mapping[str, Sequence[str]]) -> None:
        top = _FilterNode(filter_el)
        self._content = top.content
        self._others = top.others
        self._list_keys = list_keys

    def apply(self, root: etree._Element, size: int, *, owned: bool) -> etree._Element:
        """A ``<data>`` element with what the filter selects from ``root``'s children.

        ``size`` is the number of elements under ``root`` (an estimate will do). When ``owned``,
        ``root`` is a copy that may be returned or pruned in place.
        """
        if not self._content and not self._others:
            return _empty_root()
        sel = self._sibling_set(root, self._content, self._others)
        if sel is None or sel == {}:
            return _empty_root()
        if sel is _ALL:
            return root if owned else copy.deepcopy(root)
        assert isinstance(sel, dict)
        if owned or size <= _PRUNE_LIMIT:
            out = root if owned else copy.deepcopy(root)
            _prune(out, sel)
        else:
            out = _empty_root()
            _build(out, root, sel)
        return out

    def _sibling_set(
        self, parent: etree._Element, content: list[_FilterNode], others: list[_FilterNode]
    ) -> _Selection | None:
        """Evaluate one set of sibling filter nodes against ``parent``'s children.

        None means a content match failed: ``parent`` itself is not selected.
        """
        children = list(parent)
        tags = [c.tag for c in children]
        by_tag: dict[str, list[int]] = {}
        for i, tag in enumerate(tags):
            by_tag.setdefault(tag, []).append(i)
        result: dict[int, _Selection] = {}
        for f in content:
            hit = False
            for i in f.candidates(tags, by_tag):
                d = children[i]
                if f.attributes_match(d) and not len(d) and (d.text or "").strip() == f.text:
                    result[i] = _ALL
                    hit = True
            if not hit:
                return None
        if not others:
            return _ALL if content else result
        for f in others:
            for i in f.candidates(tags, by_tag):
                d = children[i]
                if not f.attributes_match(d):
                    continue
                if not f.containment:
                    result[i] = _ALL
                    continue
                sub = self._sibling_set(d, f.content, f.others)
                if sub is None or sub == {}:
                    continue
                _merge_selection(result, i, sub)
        keys = self._list_keys.get(parent.tag) if result else None
        if keys:
            for i, tag in enumerate(tags):
                if tag in keys:
                    result.setdefault(i, _ALL)
        return result


def _prune(el: etree._Element, sel: dict[int, _Selection]) -> None:
    """Remove from ``el`` (a copy) what ``sel`` does not select."""
    for i, child in enumerate(list(el)):
        sub = sel.get(i)
        if sub is None:
            el.remove(child)
        elif sub is not _ALL:
            assert isinstance(sub, dict)
            _prune(child, sub)


def _build(out: etree._Element, src: etree._Element, sel: dict[int, _Selection]) -> None:
    """Append to ``out`` copies of what ``sel`` selects among ``src``'s children."""
    children = list(src)
    for i in sorted(sel):
        child = children[i]
        sub = sel[i]
        if sub is _ALL:
            dup = copy.deepcopy(child)
            dup.tail = None
            out.append(dup)
        else:
            assert isinstance(sub, dict)
            _build(_shallow_copy(out, child), child, sub)


def _shallow_copy(out_parent: etree._Element, src: etree._Element) -> etree._Element:
    """A copy of ``src`` without content appended to ``out_parent``."""
    tag = src.tag
    ns = _namespace(tag)
    attrs = src.items()
    if ns is None or ns == _namespace(out_parent.tag) or ns in out_parent.nsmap.values():
        el = etree.SubElement(out_parent, tag)
    else:
        nsmap: dict[Any, str] = {src.prefix: ns}
        el = etree.SubElement(out_parent, tag, nsmap=nsmap)
    for name, value in attrs:
        el.set(name, value)
    return el


# ---------------------------------------------------------------------------------------------
# edit-config


_Key: TypeAlias = tuple[str | None, ...]


class _EditFailed(Exception):
    def __init__(self, info: RpcErrorInfo) -> None:
        super().__init__(info.describe())
        self.info = info


class _MissingKey(Exception):
    def __init__(self, key_tag: str) -> None:
        super().__init__(key_tag)
        self.key_tag = key_tag


class _Index:
    """Children of one parent by match key; insertion-ordered sets give the first match."""

    __slots__ = ("by_key", "keys_of")

    def __init__(self) -> None:
        self.by_key: dict[_Key, dict[etree._Element, None]] = {}
        self.keys_of: dict[etree._Element, tuple[_Key, ...]] = {}

    def add(self, el: etree._Element, keys: tuple[_Key, ...]) -> None:
        self.keys_of[el] = keys
        for k in keys:
            self.by_key.setdefault(k, {})[el] = None

    def remove(self, el: etree._Element) -> None:
        for k in self.keys_of.pop(el, ()):
            bucket = self.by_key[k]
            del bucket[el]
            if not bucket:
                del self.by_key[k]

    def first(self, key: _Key) -> etree._Element | None:
        bucket = self.by_key.get(key)
        return next(iter(bucket)) if bucket else None


class _Edit:
    """One edit applied in place to a working copy of a datastore's root."""

    def __init__(
        self,
        root: etree._Element,
        list_keys: Mapping[str, Sequence[str]],
        *,
        continue_on_error: bool = False,
    ) -> None:
        self.root = root
        self.errors: list[RpcErrorInfo] = []
        self.changed = False
        self._list_keys = list_keys
        self._continue = continue_on_error
        self._strict = 0  # > 0 while building new content: errors abort the whole build
        self._indexes: dict[etree._Element, _Index] = {}
        self._keyed: set[etree._Element] = set()  # config elements matched by their keys

    def run(self, config: etree._Element, default_operation: str) -> None:
        if default_operation == "replace":
            old = self.root
            self.root = _empty_root()
            for cfg in _elements(config):
                self.apply(self.root, cfg, "replace", ())
            self.changed = etree.tostring(old) != etree.tostring(self.root)
            return
        for cfg in _elements(config):
            self.apply(self.root, cfg, default_operation, ())

    # -- matching ------------------------------------------------------------------------------

    def _key(self, el: etree._Element, *, config: bool) -> _Key | None:
        """The specific match key of ``el``, or None when it matches by name alone."""
        declared = self._list_keys.get(el.tag)
        if declared is not None:
            if not declared:
                return None
            values: list[str | None] = [el.tag, ""]
            for key_tag in declared:
                leaf = next((c for c in el if c.tag == key_tag), None)
                if leaf is None and config:
                    raise _MissingKey(key_tag)
                values.append(None if leaf is None else _value(leaf))
            return tuple(values)
        first = next((c for c in el if _is_element(c)), None)
        if first is not None and _is_leaf(first):
            return (el.tag, first.tag, _value(first))
        return None

    def _keys_of(self, el: etree._Element) -> tuple[_Key, ...]:
        """Index keys of an existing element: its name, and its specific key if it has one.

        An element keyed by its first leaf is also indexed by (name, leaf name), which tells
        whether any sibling of that name is keyed by that leaf.
        """
        specific = self._key(el, config=False)
        if specific is None:
            return ((el.tag,),)
        if specific[1]:
            return ((el.tag,), specific[:2], specific)
        return ((el.tag,), specific)

    def _find(
        self, parent: etree._Element, cfg: etree._Element, key: _Key | None
    ) -> etree._Element | None:
        index = self._index(parent)
        if key is None:
            return index.first((cfg.tag,))
        found = index.first(key)
        if found is None and key[1] and index.first(key[:2]) is None:
            # No sibling of this name starts with this leaf: it is not a key here.
            return index.first((cfg.tag,))
        self._keyed.add(cfg)
        return found

    def _index(self, parent: etree._Element) -> _Index:
        index = self._indexes.get(parent)
        if index is None:
            index = self._indexes[parent] = _Index()
            for child in parent:
                index.add(child, self._keys_of(child))
        return index

    # -- changes, keeping indexes in step --------------------------------------------------------

    def _insert(self, parent: etree._Element, new: etree._Element) -> None:
        parent.append(new)
        index = self._indexes.get(parent)
        if index is not None:
            index.add(new, self._keys_of(new))
        self.changed = True

    def _swap(self, parent: etree._Element, old: etree._Element, new: etree._Element) -> None:
        parent.replace(old, new)
        index = self._indexes.get(parent)
        if index is not None:
            index.remove(old)
            index.add(new, self._keys_of(new))
        self._indexes.pop(old, None)
        self.changed = True

    def _detach(self, parent: etree._Element, el: etree._Element) -> None:
        index = self._indexes.get(parent)
        if index is not None:
            index.remove(el)
        parent.remove(el)
        self._indexes.pop(el, None)
        self.changed = True

    def _rekey(self, parent: etree._Element, el: etree._Element) -> None:
        index = self._indexes.get(parent)
        if index is not None:
            keys = self._keys_of(el)
            if index.keys_of.get(el) != keys:
                index.remove(el)
                index.add(el, keys)

    # -- operations ------------------------------------------------------------------------------

    def apply(
        self,
        parent: etree._Element,
        cfg: etree._Element,
        inherited: str,
        ancestors: tuple[etree._Element, ...],
    ) -> None:
        """Apply config element ``cfg`` below ``parent``; ``ancestors`` are cfg's config parents."""
        path = (*ancestors, cfg)
        try:
            op = cfg.get(_OP_ATTR)
            if op is None:
                op = inherited
            elif op not in _EDIT_OPERATIONS:
                raise self._failure(
                    ErrorTag.BAD_ATTRIBUTE,
                    f"unknown operation {op!r}",
                    path,
                    {"bad-attribute": "operation", "bad-element": _local(cfg.tag)},
                )
            try:
                key = self._key(cfg, config=True)
            except _MissingKey as exc:
                raise self._failure(
                    ErrorTag.MISSING_ELEMENT,
                    f"list entry without its key {_local(exc.key_tag)!r}",
                    path,
                    {"bad-element": _local(exc.key_tag)},
                ) from None
            existing = self._find(parent, cfg, key)
            self._operate(op, parent, cfg, existing, path)
        except _EditFailed as exc:
            if self._strict or not self._continue:
                raise
            self.errors.append(exc.info)

    def _operate(
        self,
        op: str,
        parent: etree._Element,
        cfg: etree._Element,
        existing: etree._Element | None,
        path: tuple[etree._Element, ...],
    ) -> None:
        if op == "merge":
            if existing is None:
                self._insert(parent, self._build(parent, cfg, "merge", path))
            else:
                self._merge(parent, existing, cfg, path)
        elif op == "replace":
            new = self._build(parent, cfg, "replace", path)
            if existing is None:
                self._insert(parent, new)
            else:
                self._swap(parent, existing, new)
        elif op == "create":
            if existing is not None:
                raise self._failure(ErrorTag.DATA_EXISTS, "the data already exists", path)
            self._insert(parent, self._build(parent, cfg, "create", path))
        elif op == "delete":
            if existing is None:
                raise self._failure(ErrorTag.DATA_MISSING, "no such data to delete", path)
            self._detach(parent, existing)
        elif op == "remove":
            if existing is not None:
                self._detach(parent, existing)
        elif existing is not None:  # none
            for child in _elements(cfg):
                self.apply(existing, child, "none", path)
            self._rekey(parent, existing)
        else:
            requested = {e.get(_OP_ATTR) for e in cfg.iter() if _is_element(e)}
            requested.discard(None)
            if requested != {"remove"}:
                raise self._failure(
                    ErrorTag.DATA_MISSING, "no such data (default-operation none)", path
                )

    def _merge(
        self,
        parent: etree._Element,
        existing: etree._Element,
        cfg: etree._Element,
        path: tuple[etree._Element, ...],
    ) -> None:
        for name, value in _attributes(cfg).items():
            if name != _OP_ATTR and existing.get(name) != value:
                existing.set(name, value)
                self.changed = True
        kids = _elements(cfg)
        if not kids:
            if len(existing):
                if _value(cfg):  # a container becomes a leaf with this value
                    for child in list(existing):
                        existing.remove(child)
                    self._indexes.pop(existing, None)
                    existing.text = cfg.text
                    self.changed = True
            elif (existing.text or "") != (cfg.text or ""):
                existing.text = cfg.text or None
                self.changed = True
            return
        if existing.text is not None and not len(existing):
            existing.text = None
            self.changed = True
        for child in kids:
            self.apply(existing, child, "merge", path)
        self._rekey(parent, existing)

    def _build(
        self,
        parent: etree._Element,
        cfg: etree._Element,
        op: str,
        path: tuple[etree._Element, ...],
    ) -> etree._Element:
        """New content for ``cfg``, its children handled with ``op`` into an empty element.

        Content made by create and replace is all or nothing, whatever the error-option; a
        merge that creates an element keeps what succeeds below it under continue-on-error.
        """
        new = _new_element(parent, cfg)
        kids = _elements(cfg)
        if not kids:
            new.text = cfg.text or None
            return new
        strict = op != "merge"
        self._strict += strict
        try:
            for child in kids:
                self.apply(new, child, op, path)
        finally:
            self._strict -= strict
        return new

    # -- errors ----------------------------------------------------------------------------------

    def _failure(
        self,
        tag: ErrorTag,
        message: str,
        path: tuple[etree._Element, ...],
        info: dict[str, str] | None = None,
    ) -> _EditFailed:
        items = dict(info or {})
        return _EditFailed(
            RpcErrorInfo(
                type=ErrorType.APPLICATION,
                tag=tag,
                message=message,
                path=self._render_path(path),
                info="".join(f"<{k}>{_xml_escape(v)}</{k}>" for k, v in items.items()),
                info_items=items,
            )
        )

    def _render_path(self, path: tuple[etree._Element, ...]) -> str:
        steps = []
        for el in path:
            step = _display_name(el)
            declared = self._list_keys.get(el.tag)
            key_leaves: list[etree._Element] = []
            if declared:
                key_leaves = [c for c in el if c.tag in declared]
            elif el in self._keyed:
                key_leaves = [next(c for c in el if _is_element(c))]
            for leaf in key_leaves:
                step += f"[{_display_name(leaf)}={_xpath_literal(_value(leaf))}]"
            steps.append(step)
        return "/" + "/".join(steps)


def _new_element(parent: etree._Element, cfg: etree._Element) -> etree._Element:
    """An empty element named like ``cfg`` with its attributes (not ``operation``)."""
    nsmap: dict[Any, str] = {}
    ns = _namespace(cfg.tag)
    if ns is not None:
        nsmap[cfg.prefix] = ns
    attrs = _attributes(cfg)
    attrs.pop(_OP_ATTR, None)
    for name in attrs:
        attr_ns = _namespace(name)
        if attr_ns is not None and attr_ns not in nsmap.values():
            prefix = next((p for p, u in cfg.nsmap.items() if u == attr_ns and p), None)
            if prefix is not None and prefix not in nsmap:
                nsmap[prefix] = attr_ns
    return etree.Element(cfg.tag, attrib=attrs, nsmap=nsmap or None)


def _display_name(el: etree._Element) -> str:
    local = _local(el.tag)
    return f"{el.prefix}:{local}" if el.prefix else local


def _xpath_literal(value: str) -> str:
    return f'"{value}"' if "'" in value else f"'{value}'"


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _invalid(param: str, value: str, allowed: Sequence[str]) -> RpcError:
    return RpcError.single(
        ErrorTag.INVALID_VALUE,
        f"{param} must be one of {', '.join(allowed)}, not {value!r}",
        type=ErrorType.PROTOCOL,
        info={"bad-element": param},
    )


# ---------------------------------------------------------------------------------------------
# Persistence


_PARSER: Final = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


def _load(path: Path) -> etree._Element:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the datastore file: {exc}") from exc
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ConfigError(f"{path}: the datastore file is not well-formed XML: {exc}") from exc
    if root.tag not in (_DATA_TAG, _CONFIG_TAG):
        raise ConfigError(
            f"{path}: the datastore file must hold a <data> or <config> element in namespace "
            f"{NETCONF_BASE_NS}, not {root.tag!r}"
        )
    root.tag = _DATA_TAG
    _normalize(root)
    return root


def _write_atomically(path: Path, root: etree._Element) -> None:
    """Replace ``path`` with ``root``: a 0600 temporary file, fsync, rename, fsync directory."""
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# ---------------------------------------------------------------------------------------------
# The datastore


class Datastore:
    """The device's datastores, with subtree filtering, edit-config semantics, locks and
    persistence.

    ``path`` is the file the running datastore is kept in (None keeps it in memory only); it is
    loaded if it exists and rewritten atomically on every committed change. ``state_providers``
    are called for ``get``; the elements they return are merged into a copy of running.
    ``list_keys`` maps a list entry's qualified name (Clark notation, ``{ns}local``) to the
    qualified names of its key leaves (see the module docstring); an empty sequence marks a
    single-instance element.

    Lock holders are session ids; the device's own code may lock with session id 0, which
    NETCONF uses for "not a NETCONF session". Methods are safe to call from several threads.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        state_providers: Sequence[StateProvider] = (),
        list_keys: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        root = _load(path) if path is not None and path.exists() else _empty_root()
        self._stores: dict[str, _Store] = {"running": _Store(root=root, path=path)}
        self._state_providers = list(state_providers)
        self._list_keys: dict[str, tuple[str, ...]] = {
            tag: tuple(keys) for tag, keys in (list_keys or {}).items()
        }
        self._listeners: list[ChangeListener] = []
        self._filters: dict[bytes, _SubtreeFilter] = {}
        self._mutex = threading.RLock()

    @property
    def path(self) -> Path | None:
        """The file running is kept in, if any."""
        return self._stores["running"].path

    # -- reading -------------------------------------------------------------------------------

    def get_config(
        self, source: str = "running", filter: etree._Element | None = None
    ) -> etree._Element:
        """A ``<data>`` element with the configuration ``filter`` selects.

        ``filter`` is the element holding the subtree filter (normally ``<filter>``): its
        children are the filter's top-level nodes. None selects everything.
        """
        with self._mutex:
            store = self._store(source, "source")
            return self._select(store.root, filter, store.size, owned=False)

    def get(self, filter: etree._Element | None = None) -> etree._Element:
        """Like ``get_config`` on running, with the state providers' data merged in."""
        with self._mutex:
            store = self._stores["running"]
            if not self._state_providers:
                return self._select(store.root, filter, store.size, owned=False)
            combined = copy.deepcopy(store.root)
            merger = _Edit(combined, self._list_keys)
            for provider in self._state_providers:
                try:
                    for element in provider():
                        merger.apply(combined, element, "merge", ())
                except Exception as exc:
                    log.exception("state provider %r failed", provider)
                    raise RpcError.single(
                        ErrorTag.OPERATION_FAILED, f"state data unavailable: {exc}"
                    ) from exc
            return self._select(combined, filter, 0, owned=True)

    def read(self) -> etree._Element:
        """A copy of running's ``<data>`` element, for the device's own code."""
        with self._mutex:
            return copy.deepcopy(self._stores["running"].root)

    def _select(
        self, root: etree._Element, filter_el: etree._Element | None, size: int, *, owned: bool
    ) -> etree._Element:
        if filter_el is None:
            return root if owned else copy.deepcopy(root)
        # Managers tend to repeat their filters: keep the compiled ones, by their text.
        text = etree.tostring(filter_el, with_tail=False)
        compiled = self._filters.get(text)
        if compiled is None:
            compiled = _SubtreeFilter(filter_el, self._list_keys)
            if len(self._filters) >= _FILTER_CACHE_SIZE:
                del self._filters[next(iter(self._filters))]
            self._filters[text] = compiled
        return compiled.apply(root, size, owned=owned)

    # -- editing -------------------------------------------------------------------------------

    def edit_config(
        self,
        target: str,
        config: etree._Element,
        *,
        default_operation: str = "merge",
        error_option: str = "stop-on-error",
        test_option: str = "test-then-set",
        session_id: int | None = None,
    ) -> None:
        """Apply ``config`` (the ``<config>`` element; its children are the edit) to ``target``.

        ``session_id`` is the NETCONF session asking (None: the device's own code); a datastore
        locked by anyone else gives ``in-use``. Raises RpcError with every error found.
        """
        if default_operation not in _DEFAULT_OPERATIONS:
            raise _invalid("default-operation", default_operation, _DEFAULT_OPERATIONS)
        if error_option not in _ERROR_OPTIONS:
            raise _invalid("error-option", error_option, _ERROR_OPTIONS)
        if test_option not in _TEST_OPTIONS:
            raise _invalid("test-option", test_option, _TEST_OPTIONS)
        with self._mutex:
            store = self._store(target, "target")
            if store.lock_holder is not None and store.lock_holder != session_id:
                raise RpcError.single(
                    ErrorTag.IN_USE,
                    f"the {target} datastore is locked by session {store.lock_holder}",
                    type=ErrorType.PROTOCOL,
                    info={"session-id": str(store.lock_holder)},
                )
            edit = _Edit(
                copy.deepcopy(store.root),
                self._list_keys,
                continue_on_error=error_option == "continue-on-error",
            )
            try:
                edit.run(config, default_operation)
            except _EditFailed as exc:
                raise RpcError([exc.info]) from None
            if edit.changed and test_option != "test-only":
                self._commit(target, store, edit.root, session_id, config)
            if edit.errors:
                raise RpcError(edit.errors)

    def _commit(
        self,
        name: str,
        store: _Store,
        root: etree._Element,
        session_id: int | None,
        config: etree._Element,
    ) -> None:
        if store.path is not None:
            try:
                _write_atomically(store.path, root)
            except OSError as exc:
                log.error("cannot save the %s datastore to %s: %s", name, store.path, exc)
                raise RpcError.single(
                    ErrorTag.OPERATION_FAILED, f"cannot save the {name} datastore: {exc}"
                ) from exc
        store.set_root(root)
        event = ChangeEvent(datastore=name, session_id=session_id, edit=config)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("change listener %r failed", listener)

    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener`` after every committed change."""
        with self._mutex:
            self._listeners.append(listener)

    def remove_change_listener(self, listener: ChangeListener) -> None:
        with self._mutex, contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    # -- locks ---------------------------------------------------------------------------------

    def lock(self, target: str, session_id: int) -> None:
        """Lock ``target`` for ``session_id``; ``lock-denied`` if anyone (even it) holds it."""
        with self._mutex:
            store = self._store(target, "target")
            if store.lock_holder is not None:
                raise RpcError.single(
                    ErrorTag.LOCK_DENIED,
                    f"the {target} datastore is already locked by session {store.lock_holder}",
                    type=ErrorType.PROTOCOL,
                    info={"session-id": str(store.lock_holder)},
                )
            store.lock_holder = session_id

    def unlock(self, target: str, session_id: int) -> None:
        """Release the lock ``session_id`` holds on ``target``; ``operation-failed`` if none."""
        with self._mutex:
            store = self._store(target, "target")
            holder = store.lock_holder
            if holder is None:
                raise RpcError.single(
                    ErrorTag.OPERATION_FAILED,
                    f"the {target} datastore is not locked",
                    type=ErrorType.PROTOCOL,
                )
            if holder != session_id:
                raise RpcError.single(
                    ErrorTag.OPERATION_FAILED,
                    f"the {target} datastore is locked by session {holder}, not by this one",
                    type=ErrorType.PROTOCOL,
                    info={"session-id": str(holder)},
                )
            store.lock_holder = None

    def lock_holder(self, target: str = "running") -> int | None:
        """The session holding the lock on ``target``, if any."""
        with self._mutex:
            return self._store(target, "target").lock_holder

    def release_session(self, session_id: int) -> None:
        """Drop every lock held by a session that ended."""
        with self._mutex:
            for store in self._stores.values():
                if store.lock_holder == session_id:
                    store.lock_holder = None

    # -- datastores ----------------------------------------------------------------------------

    def _store(self, name: str, param: str) -> _Store:
        store = self._stores.get(name)
        if store is not None:
            return store
        if name in _KNOWN_DATASTORES:
            raise RpcError.single(
                ErrorTag.OPERATION_NOT_SUPPORTED,
                f"this device has no {name} datastore",
                type=ErrorType.PROTOCOL,
                info={"bad-element": param},
            )
        raise RpcError.single(
            ErrorTag.INVALID_VALUE,
            f"unknown datastore {name!r}",
            type=ErrorType.PROTOCOL,
            info={"bad-element": param},
        )
