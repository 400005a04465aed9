"""Small helpers for the datastore's schemaless XML trees, shared by its modules.

A datastore's content is a ``<data>`` element (NETCONF base namespace) whose children are the
top-level configuration nodes. Stored trees are kept normalized (see ``normalize``) and are
never changed in place once installed: every change builds a new tree, so trees may be shared
between datastores (a candidate with no changes *is* running's tree).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

from lxml import etree

from callhome.errors import ErrorPath

__all__ = [
    "CONFIG_TAG",
    "DATA_TAG",
    "NETCONF_BASE_NS",
    "OP_ATTR",
    "PARSER",
    "PathNames",
    "attributes",
    "count",
    "display_name",
    "elements",
    "empty_root",
    "is_element",
    "is_leaf",
    "local",
    "namespace",
    "normalize",
    "path_of",
    "value",
    "xml_escape",
    "xpath_literal",
]

NETCONF_BASE_NS: Final = "urn:ietf:params:xml:ns:netconf:base:1.0"
DATA_TAG: Final = f"{{{NETCONF_BASE_NS}}}data"
CONFIG_TAG: Final = f"{{{NETCONF_BASE_NS}}}config"
OP_ATTR: Final = f"{{{NETCONF_BASE_NS}}}operation"

PARSER: Final = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)
"""For files the device reads: no entities, no network, no DTD, no comments or PIs."""


def empty_root() -> etree._Element:
    nsmap: dict[Any, str] = {None: NETCONF_BASE_NS}
    return etree.Element(DATA_TAG, nsmap=nsmap)


def is_element(node: etree._Element) -> bool:
    """False for comments, processing instructions and entity references."""
    return isinstance(node.tag, str)


def elements(el: etree._Element) -> list[etree._Element]:
    """Element children, skipping comments and processing instructions."""
    return [c for c in el if is_element(c)]


def is_leaf(el: etree._Element) -> bool:
    return not any(is_element(c) for c in el)


def attributes(el: etree._Element) -> dict[str, str]:
    return cast("dict[str, str]", dict(el.attrib))


def value(el: etree._Element) -> str:
    return (el.text or "").strip()


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def namespace(tag: str) -> str | None:
    return tag[1:].partition("}")[0] if tag.startswith("{") else None


def count(root: etree._Element) -> int:
    """Number of elements under ``root``."""
    return int(cast(float, root.xpath("count(.//*)")))


def normalize(root: etree._Element) -> None:
    """Drop comments and PIs, tails, and text beside child elements, in place."""
    for el in list(root.iter()):
        if not is_element(el):
            parent = el.getparent()
            if parent is not None:
                parent.remove(el)
    for el in root.iter():
        el.tail = None
        if len(el):
            el.text = None
    root.text = None


def display_name(el: etree._Element) -> str:
    name = local(el.tag)
    return f"{el.prefix}:{name}" if el.prefix else name


_NOT_NCNAME: Final = re.compile(r"[^A-Za-z0-9_.-]")


def _derived_prefix(ns: str) -> str:
    """A prefix for a namespace no element of the path gives one: its last segment
    (``urn:example:demo`` -> ``demo``, ``...:yang:ietf-netconf-server`` ->
    ``ietf-netconf-server``), made an NCName."""
    tail = re.split(r"[:/#]", ns.rstrip(":/#"))[-1]
    tail = _NOT_NCNAME.sub("-", tail)
    if not tail or not (tail[0].isalpha() or tail[0] == "_") or tail.lower().startswith("xml"):
        tail = f"ns-{tail}" if tail else "ns"
    return tail


class PathNames:
    """Names path steps with prefixes bound to their namespaces: an element's own prefix
    where it has one, else one derived from the namespace; ``namespaces`` collects them."""

    def __init__(self) -> None:
        self.namespaces: dict[str, str] = {}
        self._prefix_of: dict[str, str] = {}

    def name(self, el: etree._Element) -> str:
        ns = namespace(el.tag)
        name = local(el.tag)
        if ns is None:
            return name
        prefix = self._prefix_of.get(ns)
        if prefix is None:
            wanted = el.prefix or _derived_prefix(ns)
            prefix, n = wanted, 2
            while prefix in self.namespaces:
                prefix, n = f"{wanted}{n}", n + 1
            self.namespaces[prefix] = ns
            self._prefix_of[ns] = prefix
        return f"{prefix}:{name}"

    def path(self, steps: Sequence[str]) -> ErrorPath:
        return ErrorPath("/" + "/".join(steps), self.namespaces)


def xpath_literal(text: str) -> str:
    return f'"{text}"' if "'" in text else f"'{text}'"


def xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def path_of(el: etree._Element, list_keys: Mapping[str, Sequence[str]]) -> ErrorPath:
    """The error-path of a stored element: its ancestors below ``<data>`` and itself, with
    ``[key='value']`` predicates on declared list entries; each name carries a prefix bound
    in the path's ``namespaces`` (``PathNames``)."""
    chain = [el, *el.iterancestors()]
    if chain[-1].tag == DATA_TAG:
        chain.pop()
    names = PathNames()
    steps = []
    for node in reversed(chain):
        step = names.name(node)
        for key_tag in list_keys.get(node.tag, ()):
            leaf = next((c for c in node if c.tag == key_tag), None)
            if leaf is not None and is_leaf(leaf):
                step += f"[{names.name(leaf)}={xpath_literal(value(leaf))}]"
        steps.append(step)
    return names.path(steps)
