"""edit-config semantics (RFC 6241 section 7.2) on a schemaless XML tree.

List entry matching (in edit-config, and when merging state data into ``get``)
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

Operations
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

Edit targets
    ``Edit.targets`` lists what an edit did, for change notifications (RFC 6470 edit records):
    one ``EditTarget`` per top-level config element (with the default operation, unless that is
    ``none``) and per element carrying an explicit ``operation`` attribute, outside new content,
    named like error-paths. A ``default-operation`` replace is one target ``/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias

from lxml import etree

from callhome.agent.datastore.events import EditTarget
from callhome.agent.datastore.xmldata import (
    OP_ATTR,
    PathNames,
    attributes,
    elements,
    empty_root,
    is_element,
    is_leaf,
    local,
    namespace,
    value,
    xml_escape,
    xpath_literal,
)
from callhome.errors import ErrorPath, ErrorTag, ErrorType, RpcError, RpcErrorInfo

__all__ = [
    "DEFAULT_OPERATIONS",
    "EDIT_OPERATIONS",
    "ERROR_OPTIONS",
    "TEST_OPTIONS",
    "Edit",
    "EditFailed",
    "invalid_option",
]

EDIT_OPERATIONS: Final = frozenset({"merge", "replace", "create", "delete", "remove"})
DEFAULT_OPERATIONS: Final = ("merge", "replace", "none")
ERROR_OPTIONS: Final = ("stop-on-error", "continue-on-error", "rollback-on-error")
TEST_OPTIONS: Final = ("test-then-set", "set", "test-only")

_Key: TypeAlias = tuple[str | None, ...]


class EditFailed(Exception):
    """One error that stops (part of) an edit."""

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


class Edit:
    """One edit applied in place to a working copy of a datastore's root.

    After ``run``: ``changed`` tells whether anything changed, ``errors`` holds what
    continue-on-error let pass, ``touched`` the stored elements whose children changed
    (False) or that are new (True: check their whole subtree), for validation.
    """

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
        self.touched: dict[etree._Element, bool] = {}
        self._list_keys = list_keys
        self._continue = continue_on_error
        self._strict = 0  # > 0 while building new content: errors abort the whole build
        self._building = 0  # > 0 while building new content (any operation)
        self._indexes: dict[etree._Element, _Index] = {}
        self._keyed: set[etree._Element] = set()  # config elements matched by their keys
        self._records: list[tuple[tuple[etree._Element, ...], str]] = []
        self._whole = False

    def run(self, config: etree._Element, default_operation: str) -> None:
        if default_operation == "replace":
            old = self.root
            self.root = empty_root()
            self._whole = True
            self.touched[self.root] = True
            for cfg in elements(config):
                self.apply(self.root, cfg, "replace", ())
            self.changed = etree.tostring(old) != etree.tostring(self.root)
            return
        for cfg in elements(config):
            self.apply(self.root, cfg, default_operation, ())

    @property
    def targets(self) -> tuple[EditTarget, ...]:
        """What the edit did, one record per operation requested (see the module docstring)."""
        if self._whole:
            return (EditTarget("/", "replace"),)
        targets = []
        for path, op in self._records:
            rendered = self._render_path(path)
            targets.append(EditTarget(str(rendered), op, tuple(rendered.namespaces.items())))
        return tuple(targets)

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
                values.append(None if leaf is None else value(leaf))
            return tuple(values)
        first = next((c for c in el if is_element(c)), None)
        if first is not None and is_leaf(first):
            return (el.tag, first.tag, value(first))
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

    def _touch(self, parent: etree._Element, new: etree._Element | None = None) -> None:
        self.touched.setdefault(parent, False)
        if new is not None:
            self.touched[new] = True
        self.changed = True

    def _touch_value(self, parent: etree._Element) -> None:
        """A child of ``parent`` got a new value: it may be a key of ``parent``."""
        self._touch(parent)
        grandparent = parent.getparent()
        if grandparent is not None:
            self.touched.setdefault(grandparent, False)

    def _insert(self, parent: etree._Element, new: etree._Element) -> None:
        parent.append(new)
        index = self._indexes.get(parent)
        if index is not None:
            index.add(new, self._keys_of(new))
        self._touch(parent, new)

    def _swap(self, parent: etree._Element, old: etree._Element, new: etree._Element) -> None:
        parent.replace(old, new)
        index = self._indexes.get(parent)
        if index is not None:
            index.remove(old)
            index.add(new, self._keys_of(new))
        self._indexes.pop(old, None)
        self._touch(parent, new)

    def _detach(self, parent: etree._Element, el: etree._Element) -> None:
        index = self._indexes.get(parent)
        if index is not None:
            index.remove(el)
        parent.remove(el)
        self._indexes.pop(el, None)
        self._touch(parent)

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
        recorded = len(self._records)
        try:
            op = cfg.get(OP_ATTR)
            explicit = op is not None
            if op is None:
                op = inherited
            elif op not in EDIT_OPERATIONS:
                raise self._failure(
                    ErrorTag.BAD_ATTRIBUTE,
                    f"unknown operation {op!r}",
                    path,
                    {"bad-attribute": "operation", "bad-element": local(cfg.tag)},
                )
            try:
                key = self._key(cfg, config=True)
            except _MissingKey as exc:
                raise self._failure(
                    ErrorTag.MISSING_ELEMENT,
                    f"list entry without its key {local(exc.key_tag)!r}",
                    path,
                    {"bad-element": local(exc.key_tag)},
                ) from None
            existing = self._find(parent, cfg, key)
            if not self._building and (explicit or (not ancestors and op != "none")):
                self._records.append((path, op))
            self._operate(op, parent, cfg, existing, path)
        except EditFailed as exc:
            del self._records[recorded:]
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
            for child in elements(cfg):
                self.apply(existing, child, "none", path)
            self._rekey(parent, existing)
        else:
            requested = {e.get(OP_ATTR) for e in cfg.iter() if is_element(e)}
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
        for name, val in attributes(cfg).items():
            if name != OP_ATTR and existing.get(name) != val:
                existing.set(name, val)
                self.changed = True
        kids = elements(cfg)
        if not kids:
            if len(existing):
                if value(cfg):  # a container becomes a leaf with this value
                    for child in list(existing):
                        existing.remove(child)
                    self._indexes.pop(existing, None)
                    existing.text = cfg.text
                    self._touch_value(parent)
            elif (existing.text or "") != (cfg.text or ""):
                existing.text = cfg.text or None
                self._touch_value(parent)
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
        kids = elements(cfg)
        if not kids:
            new.text = cfg.text or None
            return new
        strict = op != "merge"
        self._strict += strict
        self._building += 1
        try:
            for child in kids:
                self.apply(new, child, op, path)
        finally:
            self._strict -= strict
            self._building -= 1
        return new

    # -- errors ----------------------------------------------------------------------------------

    def _failure(
        self,
        tag: ErrorTag,
        message: str,
        path: tuple[etree._Element, ...],
        info: dict[str, str] | None = None,
    ) -> EditFailed:
        items = dict(info or {})
        return EditFailed(
            RpcErrorInfo(
                type=ErrorType.APPLICATION,
                tag=tag,
                message=message,
                path=self._render_path(path),
                info="".join(f"<{k}>{xml_escape(v)}</{k}>" for k, v in items.items()),
                info_items=items,
            )
        )

    def _render_path(self, path: tuple[etree._Element, ...]) -> ErrorPath:
        names = PathNames()
        steps = []
        for el in path:
            step = names.name(el)
            declared = self._list_keys.get(el.tag)
            key_leaves: list[etree._Element] = []
            if declared:
                key_leaves = [c for c in el if c.tag in declared]
            elif el in self._keyed:
                key_leaves = [next(c for c in el if is_element(c))]
            for leaf in key_leaves:
                step += f"[{names.name(leaf)}={xpath_literal(value(leaf))}]"
            steps.append(step)
        return names.path(steps)


def _new_element(parent: etree._Element, cfg: etree._Element) -> etree._Element:
    """An empty element named like ``cfg`` with its attributes (not ``operation``)."""
    nsmap: dict[Any, str] = {}
    ns = namespace(cfg.tag)
    if ns is not None:
        nsmap[cfg.prefix] = ns
    attrs = attributes(cfg)
    attrs.pop(OP_ATTR, None)
    for name in attrs:
        attr_ns = namespace(name)
        if attr_ns is not None and attr_ns not in nsmap.values():
            prefix = next((p for p, u in cfg.nsmap.items() if u == attr_ns and p), None)
            if prefix is not None and prefix not in nsmap:
                nsmap[prefix] = attr_ns
    return etree.Element(cfg.tag, attrib=attrs, nsmap=nsmap or None)


def invalid_option(param: str, given: str, allowed: Sequence[str]) -> RpcError:
    """``invalid-value`` for a parameter that is not one of ``allowed``."""
    return RpcError.single(
        ErrorTag.INVALID_VALUE,
        f"{param} must be one of {', '.join(allowed)}, not {given!r}",
        type=ErrorType.PROTOCOL,
        info={"bad-element": param},
    )
