"""What ``:validate:1.1`` checks in schemaless data, and inline ``<config>`` content.

Without a schema the datastore can check the structure rules it was told about (``list_keys``,
see ``callhome.agent.datastore.edit``). For every entry of a declared list:

* each key leaf is present (``missing-element``), once, and is a leaf (``bad-element``);
* no two sibling entries have the same key values (``operation-failed``, error-app-tag
  ``data-not-unique``), and a declared single-instance element appears once
  (``operation-failed``, error-app-tag ``too-many-elements``).

Errors are of type application, with the error-path of the offending stored element (named
with the stored prefixes, ``[key='value']`` predicates on declared list entries). Well-formedness
was checked when the XML was parsed.

With YANG modules (``callhome.agent.yang.modules``), the checker is also given a
``SchemaValidator``:
once the structure checks pass, it checks the whole resulting tree against the modules (the
subtrees in their namespaces; the others stay schemaless). When the caller gives the tree the
change started from (``before``) and the modeled subtrees are the same in both, the schema
check is skipped: its result depends on them alone, and the change did not touch them (an
edit of schemaless data only). When they differ, all of them are checked, not only those that
changed: a leafref, must or when in one top-level subtree may point into another, so a change
in one can break another.

The checks run on ``validate``, on ``commit`` (the candidate), on ``copy-config`` (the new
content) and, for edit-config with test-option ``test-then-set`` or ``test-only``, on what the
edit changed (so that data that was already there, e.g. from a hand-written file, does not
block unrelated edits).

Inline ``<config>`` (the source of copy-config and validate) is a whole configuration, not an
edit: an ``operation`` attribute in it is ``unknown-attribute``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Protocol

from lxml import etree

from callhome.agent.datastore.xmldata import (
    OP_ATTR,
    elements,
    empty_root,
    is_element,
    is_leaf,
    local,
    normalize,
    path_of,
    value,
    xml_escape,
)
from callhome.errors import ErrorPath, ErrorTag, ErrorType, RpcError, RpcErrorInfo

__all__ = ["Checker", "SchemaValidator", "inline_config"]


class SchemaValidator(Protocol):
    """Checks a whole tree against a schema (``callhome.agent.yang.modules.YangModules``)."""

    def validate(self, root: etree._Element) -> list[RpcErrorInfo]:
        """The problems of the ``<data>`` tree ``root``; [] if none."""
        ...

    def same_modeled(self, before: etree._Element, after: etree._Element) -> bool:
        """Whether ``validate`` is sure to find the same in both trees: True only if what it
        looks at (the modeled subtrees) is equal in both."""
        ...


def _error(
    tag: ErrorTag,
    message: str,
    path: str | None,
    info: dict[str, str] | None = None,
    app_tag: str | None = None,
    type: ErrorType = ErrorType.APPLICATION,
) -> RpcErrorInfo:
    items = dict(info or {})
    return RpcErrorInfo(
        type=type,
        tag=tag,
        app_tag=app_tag,
        message=message,
        path=path,
        info="".join(_info_xml(k, v) for k, v in items.items()),
        info_items={k: str(v) for k, v in items.items()},
    )


def _info_xml(name: str, text: str) -> str:
    """One error-info child; an ``ErrorPath`` (an instance-identifier, RFC 7950 section
    9.13) carries its prefixes' namespaces on the element."""
    bound = ""
    if isinstance(text, ErrorPath):
        bound = "".join(
            f' xmlns:{p}="{xml_escape(uri).replace(chr(34), "&quot;")}"'
            for p, uri in text.namespaces.items()
        )
    return f"<{name}{bound}>{xml_escape(text)}</{name}>"


class Checker:
    """Checks stored trees against the declared list structure, and the schema if given."""

    def __init__(
        self, list_keys: Mapping[str, Sequence[str]], schema: SchemaValidator | None = None
    ) -> None:
        self._list_keys = list_keys
        self._schema = schema

    def check_tree(
        self, root: etree._Element, before: etree._Element | None = None
    ) -> list[RpcErrorInfo]:
        """Every problem in the whole tree below ``root`` (a ``<data>`` element); the schema
        check is skipped if ``before`` (the tree it replaces) has the same modeled data."""
        errors: list[RpcErrorInfo] = []
        checked: set[etree._Element] = set()
        self._deep(root, errors, checked)
        if not errors:
            errors.extend(self._schema_problems(root, before))
        return errors

    def check_touched(
        self,
        root: etree._Element,
        touched: Mapping[etree._Element, bool],
        before: etree._Element | None = None,
    ) -> list[RpcErrorInfo]:
        """The problems an edit may have caused: in new subtrees (``True``), and around the
        elements whose children changed (``False``), of those still in ``root``'s tree; the
        schema check as in ``check_tree``, ``before`` being the tree the edit started from."""
        errors: list[RpcErrorInfo] = []
        checked: set[etree._Element] = set()
        for el, deep in sorted(touched.items(), key=lambda item: not item[1]):
            if not _attached(el, root):
                continue
            if deep:
                self._deep(el, errors, checked)
            elif el not in checked:
                checked.add(el)
                self._shallow(el, errors)
        if not errors:
            errors.extend(self._schema_problems(root, before))
        return errors

    def _schema_problems(
        self, root: etree._Element, before: etree._Element | None
    ) -> list[RpcErrorInfo]:
        schema = self._schema
        if schema is None:
            return []
        if before is not None and (before is root or schema.same_modeled(before, root)):
            return []
        return schema.validate(root)

    def _deep(
        self, top: etree._Element, errors: list[RpcErrorInfo], checked: set[etree._Element]
    ) -> None:
        for el in top.iter():
            if is_element(el) and el not in checked:
                checked.add(el)
                self._shallow(el, errors)

    def _shallow(self, el: etree._Element, errors: list[RpcErrorInfo]) -> None:
        """The keys of ``el`` if it is a list entry, and the uniqueness of its children."""
        keys = self._list_keys.get(el.tag)
        if keys:
            for key_tag in keys:
                found = [c for c in el if c.tag == key_tag]
                name = local(key_tag)
                if not found:
                    errors.append(
                        _error(
                            ErrorTag.MISSING_ELEMENT,
                            f"list entry without its key {name!r}",
                            path_of(el, self._list_keys),
                            {"bad-element": name},
                        )
                    )
                elif len(found) > 1 or not is_leaf(found[0]):
                    errors.append(
                        _error(
                            ErrorTag.BAD_ELEMENT,
                            f"key {name!r} must be one leaf",
                            path_of(found[-1], self._list_keys),
                            {"bad-element": name},
                        )
                    )
        seen: dict[tuple[str, ...], etree._Element] = {}
        for child in el:
            declared = self._list_keys.get(child.tag) if is_element(child) else None
            if declared is None:
                continue
            ident = self._identity(child, declared)
            if ident is None:
                continue  # its missing keys are reported when the child is checked
            if ident in seen:
                errors.append(self._not_unique(child, declared))
            else:
                seen[ident] = child

    def _identity(self, el: etree._Element, keys: Sequence[str]) -> tuple[str, ...] | None:
        ident = [el.tag]
        for key_tag in keys:
            found = [c for c in el if c.tag == key_tag]
            if len(found) != 1 or not is_leaf(found[0]):
                return None
            ident.append(value(found[0]))
        return tuple(ident)

    def _not_unique(self, el: etree._Element, keys: Sequence[str]) -> RpcErrorInfo:
        path = path_of(el, self._list_keys)
        if not keys:
            return _error(
                ErrorTag.OPERATION_FAILED,
                f"{local(el.tag)!r} may appear only once",
                path,
                app_tag="too-many-elements",
            )
        return _error(
            ErrorTag.OPERATION_FAILED,
            "two list entries have the same keys",
            path,
            {"non-unique": path},
            app_tag="data-not-unique",
        )


def _attached(el: etree._Element, root: etree._Element) -> bool:
    top = el
    for top in el.iterancestors():  # noqa: B007 - the last ancestor is the tree's top
        pass
    return top is root


def inline_config(config: etree._Element) -> etree._Element:
    """A normalized ``<data>`` copy of an inline ``<config>``'s content; RpcError if it holds
    ``operation`` attributes."""
    for el in config.iter():
        if is_element(el) and el is not config and el.get(OP_ATTR) is not None:
            name = local(el.tag)
            raise RpcError(
                [
                    _error(
                        ErrorTag.UNKNOWN_ATTRIBUTE,
                        "an inline configuration is not an edit: no operation attributes",
                        None,
                        {"bad-attribute": "operation", "bad-element": name},
                        type=ErrorType.PROTOCOL,
                    )
                ]
            )
    root = empty_root()
    for child in elements(config):
        dup = copy.deepcopy(child)
        root.append(dup)
    normalize(root)
    return root
