"""XPath filters for get and get-config (``:xpath:1.0``, RFC 6241 section 8.9).

``<filter type="xpath" select="EXPR"/>``: ``EXPR`` is an XPath 1.0 expression evaluated with
lxml (libxml2) over the datastore's data, with the namespace prefixes in scope on the
``<filter>`` element (a default namespace does not apply to XPath names, as in XPath 1.0).

The root of the expression's document is the conceptual root of the data: ``/t:top`` names a
top-level node. (The stored tree has a ``<data>`` element above the top-level nodes, so every
absolute location path is rewritten to start below it: ``/x`` -> ``/*/x``, ``//x`` ->
``/*//x``, ``/`` alone -> ``/*``.) The expression must give a node-set; every selected element
is in the reply with all its descendants and its ancestors (without their other children); a
selected attribute or text node stands for its element; selecting the root gives everything.
For declared list entries (``list_keys``) among the ancestors, the key leaves are included too.

A malformed expression, an unknown prefix or function, or a result that is not a node-set is
``invalid-value`` (error-info bad-attribute ``select``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from lxml import etree

from callhome.agent.datastore.subtree import ALL, Selection, render
from callhome.agent.datastore.xmldata import empty_root
from callhome.errors import ErrorTag, ErrorType, RpcError

__all__ = ["XPathFilter", "rewrite"]

_TOKEN: Final = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<literal>"[^"]*"|'[^']*')
  | (?P<number>\d+(?:\.\d*)?|\.\d+)
  | (?P<op>//|::|\.\.|!=|<=|>=|[/()\[\],@|+\-=<>*$.])
  | (?P<name>[^\W\d][\w.\-]*(?::(?:[^\W\d][\w.\-]*|\*))?)
    """,
    re.VERBOSE,
)
_OPERATORS: Final = frozenset(
    {"/", "//", "|", "+", "-", "=", "!=", "<", "<=", ">", ">=", "and", "or", "mod", "div"}
)
_NO_OPERATOR_AFTER: Final = frozenset({"@", "::", "(", "[", ","})
"""After these (and after operators) ``*`` is a name test and a name is not an operator."""


def _error(message: str) -> RpcError:
    return RpcError.single(
        ErrorTag.INVALID_VALUE,
        message,
        type=ErrorType.PROTOCOL,
        info={"bad-attribute": "select", "bad-element": "filter"},
    )


def _tokens(expr: str) -> list[tuple[str, str]]:
    """(kind, text) for every token of ``expr``, white space included."""
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise _error(f"bad XPath expression at {expr[pos : pos + 10]!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group()))
        pos = match.end()
    return out


def rewrite(expr: str) -> str:
    """``expr`` with its absolute location paths moved below the stored ``<data>`` element."""
    tokens = _tokens(expr)
    significant = [i for i, (kind, _) in enumerate(tokens) if kind != "space"]
    out: list[str] = []
    operator_allowed = False  # XPath 1.0 section 3.7: may the next token be an operator?
    for n, i in enumerate(significant):
        text = tokens[i][1]
        nxt = tokens[significant[n + 1]] if n + 1 < len(significant) else None
        is_operator = text in _OPERATORS and (
            operator_allowed or text not in ("and", "or", "mod", "div")
        )
        if text == "*" and operator_allowed:
            is_operator = True
        if text in ("/", "//") and not operator_allowed:
            if text == "//":
                text = "/*//"
            elif nxt is not None and (nxt[0] == "name" or nxt[1] in ("*", "@", ".", "..")):
                text = "/*/"
            else:
                text = "/*"
        start = significant[n - 1] + 1 if n else 0
        out.extend(t for _, t in tokens[start:i])  # the white space before this token
        out.append(text)
        operator_allowed = not is_operator and text not in _NO_OPERATOR_AFTER
    if significant:
        out.extend(t for _, t in tokens[significant[-1] + 1 :])
    return "".join(out)


class XPathFilter:
    """A compiled XPath filter."""

    def __init__(
        self,
        select: str,
        namespaces: Mapping[str | None, str],
        list_keys: Mapping[str, Sequence[str]],
    ) -> None:
        prefixes = {p: uri for p, uri in namespaces.items() if p}
        try:
            self._xpath = etree.XPath(rewrite(select), namespaces=prefixes)
        except etree.XPathError as exc:
            raise _error(f"bad XPath expression {select!r}: {exc}") from None
        self._select = select
        self._list_keys = list_keys

    def apply(self, root: etree._Element, size: int, *, owned: bool) -> etree._Element:
        """A ``<data>`` element with the selected nodes and their ancestors (see the module)."""
        if root.getparent() is not None:
            raise ValueError("the data root must be the root of its document")
        try:
            result = self._xpath(root)
        except etree.XPathError as exc:
            raise _error(f"cannot evaluate {self._select!r}: {exc}") from None
        if not isinstance(result, list):
            raise _error(f"{self._select!r} does not select a node-set")
        nodes: list[etree._Element] = []
        for item in result:
            if isinstance(item, etree._Element):
                if isinstance(item.tag, str):
                    nodes.append(item)
            elif isinstance(item, str) and hasattr(item, "getparent"):
                parent = item.getparent()
                if parent is not None:
                    nodes.append(parent)
        if not nodes:
            return empty_root()
        return render(root, self._selection(root, nodes), size, owned=owned)

    def _selection(self, root: etree._Element, nodes: Iterable[etree._Element]) -> Selection:
        sel: dict[int, Selection] = {}
        positions: dict[etree._Element, dict[etree._Element, int]] = {}

        def index(parent: etree._Element, child: etree._Element) -> int:
            known = positions.get(parent)
            if known is None:
                known = positions[parent] = {c: i for i, c in enumerate(parent)}
            return known[child]

        for node in nodes:
            if node is root:
                return ALL
            chain = [node, *node.iterancestors()]
            if chain[-1] is not root:
                continue
            chain.pop()
            level: dict[int, Selection] = sel
            parent = root
            for el in reversed(chain):
                i = index(parent, el)
                if el is node:
                    level[i] = ALL
                    break
                below = level.get(i)
                if below is ALL:
                    break
                if below is None:
                    below = level[i] = self._keys(el)
                assert isinstance(below, dict)
                level, parent = below, el
        return sel

    def _keys(self, entry: etree._Element) -> dict[int, Selection]:
        """The key leaves of a declared list entry, selected whole."""
        keys = self._list_keys.get(entry.tag)
        if not keys:
            return {}
        return {i: ALL for i, c in enumerate(entry) if c.tag in keys}
