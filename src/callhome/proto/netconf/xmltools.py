"""XML primitives of NETCONF: namespaces, the safe parser, element building, serialization.

Everything read from the wire goes through :func:`parse_xml`, which never resolves entities,
never loads a DTD or touches the network, and refuses a ``DOCTYPE`` outright.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Final, cast

from lxml import etree

from callhome.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "BASE_CAPABILITIES",
    "CAP_BASE_10",
    "CAP_BASE_11",
    "NS_BASE",
    "NS_NOTIF",
    "NS_XML",
    "add_child",
    "make_element",
    "parse_fragment",
    "parse_xml",
    "qname",
    "root_name",
    "serialize",
    "serialize_content",
    "xml_parser",
]

NS_BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
"""Namespace of every NETCONF protocol element."""

NS_NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
"""Namespace of ``<notification>`` and ``<create-subscription>`` (RFC 5277)."""

NS_XML = "http://www.w3.org/XML/1998/namespace"
"""The namespace bound to the ``xml:`` prefix (``xml:lang``)."""

CAP_BASE_10 = "urn:ietf:params:netconf:base:1.0"
CAP_BASE_11 = "urn:ietf:params:netconf:base:1.1"
BASE_CAPABILITIES = frozenset({CAP_BASE_10, CAP_BASE_11})


def qname(local: str, namespace: str = NS_BASE) -> str:
    """The Clark notation ``{namespace}local`` lxml uses for tags."""
    return f"{{{namespace}}}{local}"


def add_child(
    parent: etree._Element, local: str, text: str | None = None, namespace: str = NS_BASE
) -> etree._Element:
    """Append a child ``{namespace}local`` with ``text`` to ``parent`` and return it.

    Raises :class:`LocalProtocolError` if ``local`` is not an XML name or ``text`` holds
    characters XML cannot carry (control characters).
    """
    try:
        child = etree.SubElement(parent, qname(local, namespace))
        if text is not None:
            child.text = text
    except ValueError as exc:
        raise LocalProtocolError(f"cannot write <{local}>: {exc}") from None
    return child


def make_element(local: str, namespace: str = NS_BASE) -> etree._Element:
    """A new element ``{namespace}local`` declaring ``namespace`` as default namespace."""
    nsmap = cast("Mapping[str, str]", {None: namespace})
    return etree.Element(qname(local, namespace), nsmap=nsmap)


_local = threading.local()


def xml_parser() -> etree.XMLParser:
    """The safe parser of this thread (lxml parsers must not serve two threads at once).

    It resolves no entity, loads no DTD, never touches the network, refuses huge trees and
    drops whitespace-only text.
    """
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_blank_text=True,
            collect_ids=False,
        )
        _local.parser = parser
    return parser


def parse_xml(data: bytes) -> etree._Element:
    """Parse one message read from the wire and return its root element.

    Raises :class:`RemoteProtocolError` if the bytes are not well-formed XML or carry a
    ``DOCTYPE`` (NETCONF messages have none; refusing it rules out entity tricks).
    Leading whitespace, which some end-of-message peers send after a delimiter, is skipped.
    """
    if data[:1].isspace():
        data = data.lstrip()
    try:
        root = etree.fromstring(data, xml_parser())
    except (etree.XMLSyntaxError, ValueError, LookupError) as exc:
        raise RemoteProtocolError(f"message is not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:  # type: ignore[union-attr]
        raise RemoteProtocolError("a DOCTYPE is not allowed in a NETCONF message")
    return root


_SNIFF: Final = 4096
_NAME_END: Final = frozenset(b" \t\r\n/>")


def root_name(data: bytes) -> str | None:
    """The local name of a message's root element, read from its first bytes without parsing
    it (an XML declaration, comments and processing instructions skipped); None when it does
    not show there. Cheap enough to decide what to do with a message before parsing it."""
    head = data[:_SNIFF]
    i = 0
    while True:
        i = head.find(b"<", i)
        if i < 0 or i + 1 >= len(head):
            return None
        nxt = head[i + 1 : i + 2]
        if nxt == b"?":
            end = head.find(b"?>", i + 2)
        elif head.startswith(b"<!--", i):
            end = head.find(b"-->", i + 4)
        elif nxt == b"!":
            return None
        else:
            break
        if end < 0:
            return None
        i = end + 2
    j = i + 1
    while j < len(head) and head[j] not in _NAME_END:
        j += 1
    if j >= len(head) and len(head) == _SNIFF:
        return None
    name = head[i + 1 : j].decode("ascii", "replace")
    return name.rpartition(":")[2] or None


def parse_fragment(xml: str | bytes, default_namespace: str | None = None) -> list[etree._Element]:
    """Parse XML written by our caller: zero or more elements, no text between them.

    ``default_namespace`` is the default namespace in effect around the fragment (unprefixed
    names without their own ``xmlns`` fall into it). Bad input raises
    :class:`LocalProtocolError`: it is ours, not the peer's.
    """
    data = xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)
    data = data.strip()
    if data.startswith(b"<?xml"):
        end = data.find(b"?>")
        if end < 0:
            raise LocalProtocolError("XML fragment has an unterminated XML declaration")
        data = data[end + 2 :]
    if default_namespace is None:
        open_tag = b"<fragment>"
    else:
        open_tag = b'<fragment xmlns="' + default_namespace.encode("utf-8") + b'">'
    try:
        wrapper = etree.fromstring(open_tag + data + b"</fragment>", xml_parser())
    except etree.XMLSyntaxError as exc:
        raise LocalProtocolError(f"XML fragment is not well-formed: {exc}") from None
    if (wrapper.text or "").strip() or any((child.tail or "").strip() for child in wrapper):
        raise LocalProtocolError("XML fragment has text outside its elements")
    return [child for child in wrapper if isinstance(child.tag, str)]


def serialize(element: etree._Element) -> bytes:
    """An element (and its subtree) as UTF-8 bytes, without XML declaration or tail."""
    return etree.tostring(element, encoding="UTF-8", with_tail=False)


def serialize_content(element: etree._Element) -> bytes:
    """Like :func:`serialize`, for text placed under a parent declaring a default namespace.

    An element in no namespace gets ``xmlns=""`` so that it does not fall into the parent's
    namespace (lxml writes no such undeclaration for a standalone element).
    """
    text = serialize(element)
    tag = element.tag
    if isinstance(tag, str) and tag[:1] != "{":
        head = b"<" + tag.encode("utf-8")
        end = text.find(b">")
        if text.startswith(head) and b' xmlns=""' not in text[:end]:
            text = head + b' xmlns=""' + text[len(head) :]
    return text
