"""Subtree filtering (RFC 6241 section 6), and the output of any filter's selection.

Namespace selection, attribute match expressions, containment, selection and content match
nodes, as in the RFC. Details the RFC leaves open:

* a filter element without a namespace (``xmlns=""``) matches its local name in any
  namespace; a filter element with a namespace matches only that namespace;
* content match values are compared after stripping leading and trailing white space,
  and only against leaves of the data;
* a containment node that selects nothing below it is left out of the output;
* an empty filter selects nothing; no filter selects everything;
* for list entries whose keys were declared (``list_keys``) the key leaves are included
  whenever anything inside the entry is selected.

A filter's result is a ``Selection``: what is selected below one data element, either
everything (``ALL``) or some children by position. ``render`` turns it into the ``<data>``
element of the reply; the XPath filter uses it too.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias

from lxml import etree

from callhome.agent.datastore.xmldata import empty_root, local, namespace

__all__ = ["ALL", "Selection", "SubtreeFilter", "merge_selection", "render"]

ALL: Final = True
Selection: TypeAlias = "Literal[True] | dict[int, Selection]"
"""What a filter selects below one data element: everything, or some children by position."""

PRUNE_LIMIT: Final = 512
"""Up to this many elements, filter output is a pruned copy of the whole tree (cheaper for
small trees); above it, the output is built from the selected parts only."""


class _FilterNode:
    """One compiled filter element: a selection, content match or containment node."""

    __slots__ = ("attrs", "containment", "content", "local", "others", "tag", "text", "wild")
    text: str

    def __init__(self, el: etree._Element) -> None:
        tag = self.tag = el.tag
        self.wild = tag[0] != "{"  # no namespace: any namespace matches
        self.local = tag if self.wild else local(tag)
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
            return [i for i, tag in enumerate(tags) if local(tag) == self.local]
        return by_tag.get(self.tag, ())

    def attributes_match(self, el: etree._Element) -> bool:
        return not self.attrs or all(el.get(k) == v for k, v in self.attrs)


def merge_selection(into: dict[int, Selection], index: int, sel: Selection) -> None:
    """Add ``sel`` as the selection of child ``index`` to ``into``."""
    have = into.get(index)
    if have is None:
        into[index] = sel
    elif have is ALL or sel is ALL:
        into[index] = ALL
    else:
        assert isinstance(have, dict) and isinstance(sel, dict)
        for i, sub in sel.items():
            merge_selection(have, i, sub)


class SubtreeFilter:
    """A compiled subtree filter; ``filter_el``'s children are the filter's top nodes."""

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
            return empty_root()
        sel = self._sibling_set(root, self._content, self._others)
        if sel is None:
            return empty_root()
        return render(root, sel, size, owned=owned)

    def _sibling_set(
        self, parent: etree._Element, content: list[_FilterNode], others: list[_FilterNode]
    ) -> Selection | None:
        """Evaluate one set of sibling filter nodes against ``parent``'s children.

        None means a content match failed: ``parent`` itself is not selected.
        """
        children = list(parent)
        tags = [c.tag for c in children]
        by_tag: dict[str, list[int]] = {}
        for i, tag in enumerate(tags):
            by_tag.setdefault(tag, []).append(i)
        result: dict[int, Selection] = {}
        for f in content:
            hit = False
            for i in f.candidates(tags, by_tag):
                d = children[i]
                if f.attributes_match(d) and not len(d) and (d.text or "").strip() == f.text:
                    result[i] = ALL
                    hit = True
            if not hit:
                return None
        if not others:
            return ALL if content else result
        for f in others:
            for i in f.candidates(tags, by_tag):
                d = children[i]
                if not f.attributes_match(d):
                    continue
                if not f.containment:
                    result[i] = ALL
                    continue
                sub = self._sibling_set(d, f.content, f.others)
                if sub is None or sub == {}:
                    continue
                merge_selection(result, i, sub)
        keys = self._list_keys.get(parent.tag) if result else None
        if keys:
            for i, tag in enumerate(tags):
                if tag in keys:
                    result.setdefault(i, ALL)
        return result


def render(root: etree._Element, sel: Selection, size: int, *, owned: bool) -> etree._Element:
    """The ``<data>`` element holding what ``sel`` selects below ``root``.

    ``size`` is the number of elements under ``root`` (an estimate will do). When ``owned``,
    ``root`` is a copy that may be returned or pruned in place.
    """
    if sel == {}:
        return empty_root()
    if sel is ALL:
        return root if owned else copy.deepcopy(root)
    assert isinstance(sel, dict)
    if owned or size <= PRUNE_LIMIT:
        out = root if owned else copy.deepcopy(root)
        _prune(out, sel)
    else:
        out = empty_root()
        _build(out, root, sel)
    return out


def _prune(el: etree._Element, sel: dict[int, Selection]) -> None:
    """Remove from ``el`` (a copy) what ``sel`` does not select."""
    for i, child in enumerate(list(el)):
        sub = sel.get(i)
        if sub is None:
            el.remove(child)
        elif sub is not ALL:
            assert isinstance(sub, dict)
            _prune(child, sub)


def _build(out: etree._Element, src: etree._Element, sel: dict[int, Selection]) -> None:
    """Append to ``out`` copies of what ``sel`` selects among ``src``'s children."""
    children = list(src)
    for i in sorted(sel):
        child = children[i]
        sub = sel[i]
        if sub is ALL:
            dup = copy.deepcopy(child)
            dup.tail = None
            out.append(dup)
        else:
            assert isinstance(sub, dict)
            _build(_shallow_copy(out, child), child, sub)


def _shallow_copy(out_parent: etree._Element, src: etree._Element) -> etree._Element:
    """A copy of ``src`` without content appended to ``out_parent``."""
    tag = src.tag
    ns = namespace(tag)
    attrs = src.items()
    if ns is None or ns == namespace(out_parent.tag) or ns in out_parent.nsmap.values():
        el = etree.SubElement(out_parent, tag)
    else:
        nsmap: dict[Any, str] = {src.prefix: ns}
        el = etree.SubElement(out_parent, tag, nsmap=nsmap)
    for name, val in attrs:
        el.set(name, val)
    return el
