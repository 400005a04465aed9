"""Builders for the NETCONF operations (RFC 6241 section 7, RFC 5277), so callers type no XML.

Each function returns the operation element, the child of ``<rpc>``, ready for
:meth:`callhome.proto.netconf.session.ClientCore.rpc`. Datastores are named by their local
name (``"running"``, ``"candidate"``, ``"startup"``); a value containing ``":"`` is taken as
a URL (``:url`` capability). XML given as text is a fragment of zero or more elements:
unprefixed names without their own ``xmlns`` are in no namespace, so data models' elements
need their namespace declared, as in ``<system xmlns="urn:example:system"/>``.
Bad arguments raise :class:`LocalProtocolError`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Final, cast

from lxml import etree

from callhome.errors import LocalProtocolError
from callhome.proto.netconf.xmltools import (
    NS_BASE,
    NS_NOTIF,
    add_child,
    make_element,
    parse_fragment,
    qname,
)

__all__ = [
    "DEFAULT_OPERATIONS",
    "ERROR_OPTIONS",
    "READ_ONLY",
    "TEST_OPTIONS",
    "XmlInput",
    "is_read_only",
    "op_cancel_commit",
    "op_close_session",
    "op_commit",
    "op_copy_config",
    "op_create_subscription",
    "op_delete_config",
    "op_discard_changes",
    "op_edit_config",
    "op_get",
    "op_get_config",
    "op_kill_session",
    "op_lock",
    "op_unlock",
    "op_validate",
]

XmlInput = str | bytes | etree._Element
"""XML from a caller: text of a fragment of elements, or one element (copied, not moved)."""

READ_ONLY: Final = frozenset({"get", "get-config", "get-schema", "validate"})
"""Operations that change nothing on the device (by local name)."""

DEFAULT_OPERATIONS = ("merge", "replace", "none")
TEST_OPTIONS = ("test-then-set", "set", "test-only")
ERROR_OPTIONS = ("stop-on-error", "continue-on-error", "rollback-on-error")


def _op(name: str, namespace: str = NS_BASE) -> etree._Element:
    return make_element(name, namespace)


def _datastore(parent: etree._Element, datastore: str, what: str) -> None:
    """Append ``<what><datastore/></what>`` (or ``<what><url>..</url></what>``) to parent."""
    holder = etree.SubElement(parent, qname(what))
    if ":" in datastore:
        add_child(holder, "url", datastore)
        return
    try:
        etree.SubElement(holder, qname(datastore))
    except ValueError:
        raise LocalProtocolError(f"{datastore!r} is not a datastore name") from None


def is_read_only(operation: etree._Element) -> bool:
    """Whether ``operation`` only reads (``READ_ONLY``): such jobs may run side by side, and
    are sent again after a crash."""
    return etree.QName(operation).localname in READ_ONLY


def _append_xml(parent: etree._Element, xml: XmlInput) -> None:
    """Append the elements of ``xml`` to ``parent`` (an element argument is copied)."""
    if isinstance(xml, etree._Element):
        parent.append(_copy(xml))
        return
    for child in parse_fragment(xml):
        parent.append(child)


def _copy(element: etree._Element) -> etree._Element:
    clone = copy.deepcopy(element)
    clone.tail = None
    return clone


def _choice(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if value is not None and value not in allowed:
        raise LocalProtocolError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _filter(
    parent: etree._Element,
    filter_xml: XmlInput | None,
    filter_type: str,
    namespaces: Mapping[str, str] | None,
) -> None:
    if filter_xml is None:
        return
    if filter_type == "subtree":
        element = add_child(parent, "filter")
        element.set("type", "subtree")
        _append_xml(element, filter_xml)
    elif filter_type == "xpath":
        if not isinstance(filter_xml, str):
            raise LocalProtocolError("an xpath filter is given as the XPath expression text")
        nsmap: dict[str | None, str] = {None: NS_BASE}
        for prefix, uri in (namespaces or {}).items():
            nsmap[prefix] = uri
        try:
            element = etree.Element(qname("filter"), nsmap=cast("Mapping[str, str]", nsmap))
        except ValueError:
            raise LocalProtocolError("bad namespace prefix for the xpath filter") from None
        element.set("type", "xpath")
        try:
            element.set("select", filter_xml)
        except ValueError as exc:
            raise LocalProtocolError(f"bad xpath filter: {exc}") from None
        parent.append(element)
    else:
        raise LocalProtocolError(f"filter_type must be 'subtree' or 'xpath', not {filter_type!r}")


def op_get_config(
    source: str = "running",
    filter_xml: XmlInput | None = None,
    filter_type: str = "subtree",
    namespaces: Mapping[str, str] | None = None,
) -> etree._Element:
    """``<get-config>``: read all or part of a configuration datastore.

    ``filter_type="xpath"`` (``:xpath`` capability) takes the XPath expression as
    ``filter_xml`` and the prefixes it uses in ``namespaces``.
    """
    op = _op("get-config")
    _datastore(op, source, "source")
    _filter(op, filter_xml, filter_type, namespaces)
    return op


def op_get(
    filter_xml: XmlInput | None = None,
    filter_type: str = "subtree",
    namespaces: Mapping[str, str] | None = None,
) -> etree._Element:
    """``<get>``: read running configuration and state data."""
    op = _op("get")
    _filter(op, filter_xml, filter_type, namespaces)
    return op


def op_edit_config(
    target: str,
    config_xml: XmlInput,
    default_operation: str | None = None,
    error_option: str | None = None,
    test_option: str | None = None,
) -> etree._Element:
    """``<edit-config>``: load ``config_xml`` (the content of ``<config>``) into ``target``.

    A ``config_xml`` that is itself one ``<config>`` element of the base namespace is used
    as it is.
    """
    op = _op("edit-config")
    _datastore(op, target, "target")
    if _choice(default_operation, DEFAULT_OPERATIONS, "default_operation"):
        add_child(op, "default-operation", default_operation)
    if _choice(test_option, TEST_OPTIONS, "test_option"):
        add_child(op, "test-option", test_option)
    if _choice(error_option, ERROR_OPTIONS, "error_option"):
        add_child(op, "error-option", error_option)
    holder = etree.Element(qname("config"))
    _append_xml(holder, config_xml)
    if len(holder) == 1 and holder[0].tag == qname("config"):
        holder = holder[0]
    op.append(holder)
    return op


def op_copy_config(target: str, source: str) -> etree._Element:
    """``<copy-config>``: replace ``target`` with the content of ``source``."""
    op = _op("copy-config")
    _datastore(op, target, "target")
    _datastore(op, source, "source")
    return op


def op_delete_config(target: str) -> etree._Element:
    """``<delete-config>``: delete a configuration datastore (never ``running``)."""
    op = _op("delete-config")
    _datastore(op, target, "target")
    return op


def op_lock(target: str) -> etree._Element:
    """``<lock>``: lock a configuration datastore for this session."""
    op = _op("lock")
    _datastore(op, target, "target")
    return op


def op_unlock(target: str) -> etree._Element:
    """``<unlock>``: release a lock this session holds."""
    op = _op("unlock")
    _datastore(op, target, "target")
    return op


def op_close_session() -> etree._Element:
    """``<close-session>``: end this session gracefully."""
    return _op("close-session")


def op_kill_session(session_id: int) -> etree._Element:
    """``<kill-session>``: end another session, by its session-id."""
    if not isinstance(session_id, int) or not 1 <= session_id <= 4294967295:
        raise LocalProtocolError(f"session_id must be an integer in 1..4294967295: {session_id!r}")
    op = _op("kill-session")
    add_child(op, "session-id", str(session_id))
    return op


def op_validate(source: str) -> etree._Element:
    """``<validate>``: check a datastore (``:validate`` capability)."""
    op = _op("validate")
    _datastore(op, source, "source")
    return op


def op_commit(
    confirmed: bool = False,
    confirm_timeout: int | None = None,
    persist: str | None = None,
    persist_id: str | None = None,
) -> etree._Element:
    """``<commit>``: make the candidate the running configuration (``:candidate``).

    ``confirmed``, ``confirm_timeout`` and ``persist`` start or extend a confirmed commit;
    ``persist_id`` confirms one started with ``persist`` (``:confirmed-commit:1.1``).
    """
    op = _op("commit")
    if confirmed:
        add_child(op, "confirmed")
        if confirm_timeout is not None:
            if confirm_timeout < 1:
                raise LocalProtocolError("confirm_timeout must be at least 1 second")
            add_child(op, "confirm-timeout", str(confirm_timeout))
        if persist is not None:
            add_child(op, "persist", persist)
    elif confirm_timeout is not None or persist is not None:
        raise LocalProtocolError("confirm_timeout and persist need confirmed=True")
    if persist_id is not None:
        add_child(op, "persist-id", persist_id)
    return op


def op_discard_changes() -> etree._Element:
    """``<discard-changes>``: revert the candidate to the running configuration."""
    return _op("discard-changes")


def op_cancel_commit(persist_id: str | None = None) -> etree._Element:
    """``<cancel-commit>``: cancel an ongoing confirmed commit."""
    op = _op("cancel-commit")
    if persist_id is not None:
        add_child(op, "persist-id", persist_id)
    return op


def op_create_subscription(
    stream: str | None = None,
    filter_xml: XmlInput | None = None,
    start_time: str | None = None,
    stop_time: str | None = None,
) -> etree._Element:
    """``<create-subscription>`` (RFC 5277): start receiving notifications."""
    op = _op("create-subscription", NS_NOTIF)
    if stream is not None:
        add_child(op, "stream", stream, NS_NOTIF)
    if filter_xml is not None:
        element = add_child(op, "filter", None, NS_NOTIF)
        element.set("type", "subtree")
        _append_xml(element, filter_xml)
    if start_time is not None:
        add_child(op, "startTime", start_time, NS_NOTIF)
    if stop_time is not None:
        if start_time is None:
            raise LocalProtocolError("stop_time needs start_time")
        add_child(op, "stopTime", stop_time, NS_NOTIF)
    return op
