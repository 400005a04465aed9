"""Default values for schemaless data, and the with-defaults retrieval modes (RFC 6243).

Schemaless data has no defaults unless the device declares them: ``Defaults`` takes a mapping
from the path of a leaf, in Clark names (``/{urn:example:sys}system/{urn:example:sys}mtu``,
the leading ``/`` optional, a step without ``{...}`` is in no namespace), to its default
value.

The basic mode is ``explicit``: what was set is stored and reported, even when it equals its
default, and nothing else is. Retrieval modes (the ``with-defaults`` parameter of get and
get-config):

``explicit``
    as stored.
``report-all``
    a leaf that is missing is added with its default value below every existing element its
    path leads to; a missing element on the way is created only when it was declared a
    single-instance element (an empty key list in ``list_keys``: a container), as a schema's
    non-presence container would be there. Added leaves go last among their siblings.
``trim``
    a leaf whose value (stripped) equals its default is left out; a declared single-instance
    element left empty by that is left out too.

``report-all-tagged`` is not offered (``invalid-value``, as for any unknown mode).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from lxml import etree

from callhome.agent.datastore.xmldata import is_element, is_leaf, namespace, value
from callhome.errors import ConfigError, ErrorTag, ErrorType, RpcError

__all__ = [
    "RETRIEVAL_MODES",
    "WITH_DEFAULTS_CAPABILITY",
    "WITH_DEFAULTS_NS",
    "Defaults",
    "check_mode",
]

WITH_DEFAULTS_NS: Final = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
WITH_DEFAULTS_CAPABILITY: Final = (
    "urn:ietf:params:netconf:capability:with-defaults:1.0"
    "?basic-mode=explicit&also-supported=report-all,trim"
)
RETRIEVAL_MODES: Final = ("explicit", "report-all", "trim")

_STEP: Final = re.compile(r"\{([^{}]*)\}([^/{}]+)|([^/{}]+)")


def check_mode(mode: str) -> str:
    """``mode`` if it is a retrieval mode offered here; ``invalid-value`` otherwise."""
    if mode not in RETRIEVAL_MODES:
        raise RpcError.single(
            ErrorTag.INVALID_VALUE,
            f"with-defaults must be one of {', '.join(RETRIEVAL_MODES)}, not {mode!r}",
            type=ErrorType.PROTOCOL,
            info={"bad-element": "with-defaults"},
        )
    return mode


def _parse_path(text: str) -> tuple[str, ...]:
    body = text[1:] if text.startswith("/") else text
    steps: list[str] = []
    pos = 0
    while True:
        match = _STEP.match(body, pos)
        if match is None:
            raise ConfigError(f"defaults: {text!r} is not a path of Clark names")
        ns, name, bare = match.groups()
        steps.append(f"{{{ns}}}{name}" if name is not None else bare)
        pos = match.end()
        if pos == len(body):
            return tuple(steps)
        if body[pos] != "/":
            raise ConfigError(f"defaults: {text!r} is not a path of Clark names")
        pos += 1


class Defaults:
    """The declared default leaves, applied to copies of stored trees."""

    def __init__(self, mapping: Mapping[str, str], list_keys: Mapping[str, Sequence[str]]) -> None:
        self._leaves: list[tuple[tuple[str, ...], str]] = [
            (_parse_path(path), str(default)) for path, default in mapping.items()
        ]
        self._list_keys = list_keys

    def __bool__(self) -> bool:
        return bool(self._leaves)

    def apply(self, root: etree._Element, mode: str) -> None:
        """Change ``root`` (a copy) in place for retrieval ``mode``."""
        if mode == "report-all":
            for steps, default in self._leaves:
                self._report(root, steps, default)
        elif mode == "trim":
            for steps, default in self._leaves:
                self._trim(root, steps, default)

    def _container(self, tag: str) -> bool:
        keys = self._list_keys.get(tag)
        return keys is not None and not keys

    def _report(self, root: etree._Element, steps: tuple[str, ...], default: str) -> None:
        parents = [root]
        for step in steps[:-1]:
            found: list[etree._Element] = []
            for parent in parents:
                kids = [c for c in parent if c.tag == step]
                if not kids and self._container(step) and not value(parent):
                    kids = [_add(parent, step)]
                found.extend(kids)
            parents = found
        leaf_tag = steps[-1]
        for parent in parents:
            if value(parent) and is_leaf(parent):
                continue  # a leaf here, not the container the path expects
            if not any(c.tag == leaf_tag for c in parent):
                _add(parent, leaf_tag).text = default

    def _trim(self, root: etree._Element, steps: tuple[str, ...], default: str) -> None:
        parents = [root]
        for step in steps[:-1]:
            parents = [c for parent in parents for c in parent if c.tag == step]
        for parent in parents:
            for leaf in [c for c in parent if c.tag == steps[-1]]:
                if is_leaf(leaf) and value(leaf) == default:
                    parent.remove(leaf)
                    self._prune_empty(parent, root)

    def _prune_empty(self, el: etree._Element, root: etree._Element) -> None:
        while el is not root and self._container(el.tag):
            if any(is_element(c) for c in el) or value(el):
                return
            parent = el.getparent()
            if parent is None:
                return
            parent.remove(el)
            el = parent


def _add(parent: etree._Element, tag: str) -> etree._Element:
    ns = namespace(tag)
    if ns is None or ns in parent.nsmap.values():
        return etree.SubElement(parent, tag)
    nsmap: dict[Any, str] = {None: ns}
    return etree.SubElement(parent, tag, nsmap=nsmap)
