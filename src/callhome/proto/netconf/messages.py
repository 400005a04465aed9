"""NETCONF messages (RFC 6241): ``<hello>`` and ``<rpc-error>`` both ways.

For convenience this module also offers the XML primitives of
:mod:`callhome.proto.netconf.xmltools` (``parse_xml``, namespaces ...) and the operation
builders of :mod:`callhome.proto.netconf.operations` (``op_get_config`` ...).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from lxml import etree

from callhome.errors import (
    ErrorSeverity,
    ErrorTag,
    ErrorType,
    LocalProtocolError,
    RemoteProtocolError,
    RpcErrorInfo,
)
from callhome.proto.netconf.xmltools import (
    NS_BASE,
    NS_XML,
    add_child,
    make_element,
    qname,
    serialize_content,
    xml_parser,
)

__all__ = [
    "WELL_KNOWN_INFO",
    "build_hello",
    "parse_hello",
    "rpc_error_from_xml",
    "rpc_error_to_xml",
]

WELL_KNOWN_INFO = (
    "bad-attribute",
    "bad-element",
    "bad-namespace",
    "session-id",
    "ok-element",
    "err-element",
    "noop-element",
)
"""``<error-info>`` children of RFC 6241 appendix A, kept parsed in ``info_items``."""

_MAX_SESSION_ID = 4294967295
_XML_LANG = f"{{{NS_XML}}}lang"
_ERROR_INFO_OPEN = f'<error-info xmlns="{NS_BASE}">'
_ERROR_INFO_CLOSE = "</error-info>"
# info_items keys that record what a peer sent when it did not fit the enums; they are
# not error-info children and are not written back to the wire.
_SYNTHETIC_INFO = frozenset({"original-tag", "original-type", "original-severity"})


_HELLO = qname("hello")
_CAPABILITIES = qname("capabilities")
_CAPABILITY = qname("capability")
_SESSION_ID = qname("session-id")

# -- hello -------------------------------------------------------------------------------------


def build_hello(capabilities: Iterable[str], session_id: int | None = None) -> etree._Element:
    """A ``<hello>`` carrying ``capabilities`` and, from a server, its ``session-id``."""
    hello = make_element("hello")
    caps = add_child(hello, "capabilities")
    for uri in capabilities:
        add_child(caps, "capability", uri)
    if session_id is not None:
        if not 1 <= session_id <= _MAX_SESSION_ID:
            raise LocalProtocolError(f"session-id {session_id} is outside 1..{_MAX_SESSION_ID}")
        add_child(hello, "session-id", str(session_id))
    return hello


def parse_hello(root: etree._Element) -> tuple[tuple[str, ...], int | None]:
    """Capabilities and session-id of a received ``<hello>``.

    Raises :class:`RemoteProtocolError` if it is not a hello, has no capability, or carries
    a session-id that is not an integer in 1..4294967295.
    """
    if root.tag != _HELLO:
        raise RemoteProtocolError(f"expected a <hello> in namespace {NS_BASE}, got {root.tag!r}")
    capabilities: list[str] = []
    session_id: int | None = None
    seen_session_id = False
    for child in root:
        if child.tag == _CAPABILITIES:
            for cap in child:
                if cap.tag == _CAPABILITY:
                    uri = (cap.text or "").strip()
                    if uri:
                        capabilities.append(uri)
        elif child.tag == _SESSION_ID:
            if seen_session_id:
                raise RemoteProtocolError("<hello> carries more than one session-id")
            seen_session_id = True
            session_id = _parse_session_id((child.text or "").strip())
    if not capabilities:
        raise RemoteProtocolError("<hello> carries no capability")
    return tuple(capabilities), session_id


def _parse_session_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        raise RemoteProtocolError(f"bad session-id {text!r} in <hello>")
    value = int(text)
    if not 1 <= value <= _MAX_SESSION_ID:
        raise RemoteProtocolError(f"session-id {value} is outside 1..{_MAX_SESSION_ID}")
    return value


# -- rpc-error ---------------------------------------------------------------------------------


def rpc_error_to_xml(error: RpcErrorInfo) -> etree._Element:
    """An ``<rpc-error>`` element carrying every field of ``error``.

    ``error.info`` is XML text read with the NETCONF base namespace as default namespace
    (``<bad-element>x</bad-element>`` is the base namespace's bad-element). When it is empty,
    ``<error-info>`` is built from ``error.info_items`` instead, each key an element of the
    base namespace; the ``original-*`` keys :func:`rpc_error_from_xml` adds are left out.
    """
    element = make_element("rpc-error")
    add_child(element, "error-type", error.type.value)
    add_child(element, "error-tag", error.tag.value)
    add_child(element, "error-severity", error.severity.value)
    if error.app_tag is not None:
        add_child(element, "error-app-tag", error.app_tag)
    if error.path is not None:
        path = add_child(element, "error-path", error.path)
        if error.path_namespaces:
            _bind(element, path, error.path_namespaces)
    if error.message is not None:
        message = add_child(element, "error-message", error.message)
        if error.message_lang:
            try:
                message.set(_XML_LANG, error.message_lang)
            except ValueError as exc:
                raise LocalProtocolError(f"cannot write xml:lang: {exc}") from None
    info = _error_info_element(error)
    if info is not None:
        element.append(info)
    return element


def _bind(parent: etree._Element, child: etree._Element, namespaces: dict[str, str]) -> None:
    """Re-create ``child`` with ``namespaces`` (prefix -> URI) declared on it."""
    try:
        nsmap: dict[Any, str] = {**child.nsmap, **namespaces}
        bound = etree.Element(child.tag, nsmap=nsmap)
    except ValueError as exc:
        raise LocalProtocolError(f"cannot bind error-path prefixes: {exc}") from None
    bound.text = child.text
    parent.replace(child, bound)


def _error_info_element(error: RpcErrorInfo) -> etree._Element | None:
    if error.info.strip():
        data = (_ERROR_INFO_OPEN + error.info + _ERROR_INFO_CLOSE).encode("utf-8")
        try:
            info = etree.fromstring(data, xml_parser())
        except etree.XMLSyntaxError as exc:
            raise LocalProtocolError(f"error-info is not well-formed XML: {exc}") from None
        return info
    items = {k: v for k, v in error.info_items.items() if k not in _SYNTHETIC_INFO}
    if not items:
        return None
    info = make_element("error-info")
    for key, value in items.items():
        add_child(info, key, value)
    return info


def rpc_error_from_xml(element: etree._Element) -> RpcErrorInfo:
    """Read an ``<rpc-error>`` element into an :class:`RpcErrorInfo`, keeping every field.

    A peer's values are taken as they come and never raise:

    * an ``error-tag`` that is not one of RFC 6241 appendix A (or is missing) becomes
      ``operation-failed``, and the text sent is kept in ``info_items["original-tag"]``;
    * likewise an unknown ``error-type`` becomes ``application`` (``"original-type"``) and
      an unknown ``error-severity`` becomes ``error`` (``"original-severity"``);
    * ``info`` is the XML text of the children of ``<error-info>``, written with the base
      namespace as default namespace, so that :func:`rpc_error_to_xml` restores them;
    * the well-known ``<error-info>`` children (:data:`WELL_KNOWN_INFO`) are matched by local
      name and kept in ``info_items`` by that name; repeated ones (``ok-element`` may repeat)
      are joined with single spaces;
    * ``error-path`` and ``error-message`` lose surrounding whitespace.
    """
    fields: dict[str, str] = {}
    lang: str | None = None
    info_element: etree._Element | None = None
    path_ns: dict[str, str] = {}
    for child in element:
        tag: object = child.tag
        if not isinstance(tag, str):
            continue
        namespace, _, local = tag[1:].rpartition("}") if tag[:1] == "{" else ("", "", tag)
        if namespace not in (NS_BASE, ""):
            continue
        if local == "error-info":
            info_element = child
        elif local not in fields:
            fields[local] = (child.text or "").strip()
            if local == "error-message":
                lang = child.get(_XML_LANG)
            elif local == "error-path":
                path_ns = _used_prefixes(fields[local], child.nsmap)
    items: dict[str, str] = {}
    info = ""
    if info_element is not None:
        info = _info_text(info_element)
        items.update(_well_known_items(info_element))
    tag_text = fields.get("error-tag", "")
    type_text = fields.get("error-type", "")
    severity_text = fields.get("error-severity", "")
    try:
        error_tag = ErrorTag(tag_text)
    except ValueError:
        error_tag = ErrorTag.OPERATION_FAILED
        items["original-tag"] = tag_text
    try:
        error_type = ErrorType(type_text)
    except ValueError:
        error_type = ErrorType.APPLICATION
        items["original-type"] = type_text
    try:
        severity = ErrorSeverity(severity_text)
    except ValueError:
        severity = ErrorSeverity.ERROR
        items["original-severity"] = severity_text
    return RpcErrorInfo(
        type=error_type,
        tag=error_tag,
        severity=severity,
        app_tag=fields.get("error-app-tag"),
        path=fields.get("error-path"),
        message=fields.get("error-message"),
        message_lang=lang,
        info=info,
        info_items=items,
        path_namespaces=path_ns,
    )


_PREFIX: Final = re.compile(r"([A-Za-z_][\w.-]*):(?=[A-Za-z_*])")


def _used_prefixes(path: str, nsmap: Mapping[str | None, str]) -> dict[str, str]:
    """The in-scope prefixes that ``path`` uses (outside its quoted literals)."""
    bare = re.sub(r"'[^']*'|\"[^\"]*\"", "", path)
    used = set(_PREFIX.findall(bare))
    return {p: uri for p, uri in nsmap.items() if p is not None and p in used}


def _well_known_items(info: etree._Element) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    for child in info:
        tag: object = child.tag
        if not isinstance(tag, str):
            continue
        local = tag.rpartition("}")[2]
        if local in WELL_KNOWN_INFO:
            found.setdefault(local, []).append((child.text or "").strip())
    return {key: " ".join(values) for key, values in found.items()}


def _info_text(info: etree._Element) -> str:
    """The children of ``<error-info>`` as XML text, base namespace as default namespace.

    Children in no namespace get ``xmlns=""``; an element in no namespace nested below a
    child of another default namespace cannot be marked so (lxml writes no ``xmlns=""``
    for it) and would come back in that namespace.
    """
    children = list(info)
    has_no_namespace = any(
        isinstance(node.tag, str) and node.tag[:1] != "{"
        for child in children
        for node in child.iter()
    )
    if has_no_namespace:
        # lxml does not write xmlns="" under a default namespace, so copying into the
        # base-namespace wrapper would move these elements into it: write each child on its
        # own and undeclare the default namespace on those without one.
        parts = [_escape_text(info.text or "")]
        for child in children:
            parts.append(serialize_content(child).decode("utf-8"))
            parts.append(_escape_text(child.tail or ""))
        return "".join(parts)
    wrapper = make_element("error-info")
    wrapper.text = info.text
    for child in children:
        wrapper.append(copy.deepcopy(child))
    text = etree.tostring(wrapper, encoding="unicode")
    if text.startswith(_ERROR_INFO_OPEN) and text.endswith(_ERROR_INFO_CLOSE):
        return text[len(_ERROR_INFO_OPEN) : -len(_ERROR_INFO_CLOSE)]
    return ""


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
