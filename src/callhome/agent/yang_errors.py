"""``rpc-error``s for configuration that does not conform to the device's YANG modules.

Tags follow RFC 7950 sections 8.3 and 15 (and RFC 6241 appendix A), from what yangson
reported (``callhome.agent.yang_lib.Problem``):

===================================================  ==========================================
problem                                              error-tag (error-app-tag)
===================================================  ==========================================
a value not of its type, out of range, length,       invalid-value (the restriction's
pattern                                              error-app-tag, if it gives one)
an element the schema does not have (also one        unknown-element
behind a feature that is off)
an element in a namespace of no module               unknown-namespace
a mandatory leaf missing; a list entry without       missing-element
its key
a mandatory choice with no case present              data-missing (missing-choice)
an element not allowed here (two cases of a choice)  bad-element
state data (config false) in a configuration         invalid-value
two list entries with the same keys; a ``unique``    operation-failed (data-not-unique)
violated
max-elements, min-elements                           operation-failed (too-many-elements,
                                                     too-few-elements)
a ``must`` not satisfied                             operation-failed (must-violation, or the
                                                     must's error-app-tag)
a leafref or instance-identifier with no target      data-missing (instance-required)
===================================================  ==========================================

Every error is of type application, with the error-path of the offending element (prefixes as
stored, ``[key='value']`` predicates on list entries), ``bad-element`` in error-info where an
element is to blame, and a message naming the constraint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from lxml import etree

from callhome.agent.xmldata import is_element, local, path_of, value, xml_escape
from callhome.agent.yang_lib import Problem
from callhome.errors import ErrorTag, ErrorType, RpcErrorInfo

__all__ = ["find_element", "schema_error", "unknown_namespace"]

_QUOTED = re.compile(r"'([^']*)'")


def _info(
    tag: ErrorTag,
    message: str,
    path: str | None,
    *,
    app_tag: str | None = None,
    **items: str,
) -> RpcErrorInfo:
    info = {k.replace("_", "-"): v for k, v in items.items()}
    return RpcErrorInfo(
        type=ErrorType.APPLICATION,
        tag=tag,
        app_tag=app_tag,
        message=message,
        path=path,
        info="".join(f"<{k}>{xml_escape(v)}</{k}>" for k, v in info.items()),
        info_items=info,
    )


def unknown_namespace(
    el: etree._Element, ns: str | None, list_keys: Mapping[str, Sequence[str]]
) -> RpcErrorInfo:
    """An element in a namespace that no module defines (or in none)."""
    name = local(el.tag)
    where = f"namespace {ns!r}" if ns else "no namespace"
    return _info(
        ErrorTag.UNKNOWN_NAMESPACE,
        f"{name!r} is in {where}, which no YANG module of this device defines here",
        path_of(el, list_keys),
        bad_element=name,
        bad_namespace=ns or "",
    )


def find_element(
    root: etree._Element, steps: Sequence[str | int], module_ns: Mapping[str, str]
) -> etree._Element:
    """The element yangson's steps lead to from ``root`` (as deep as they can be followed)."""
    here = root
    ns: str | None = None
    i = 0
    while i < len(steps):
        step = steps[i]
        i += 1
        if isinstance(step, int):
            continue  # a position not preceded by a name: nothing to follow
        module, _, name = step.rpartition(":")
        if module:
            ns = module_ns.get(module, ns)
        tag = f"{{{ns}}}{name}" if ns else name
        namesakes = [c for c in here if is_element(c) and c.tag == tag]
        position = 0
        if i < len(steps) and isinstance(steps[i], int):
            position = int(steps[i])
            i += 1
        if position >= len(namesakes):
            break
        here = namesakes[position]
    return here


def _mentioned(message: str | None) -> str | None:
    found = _QUOTED.search(message or "")
    return None if found is None else found.group(1).rpartition(":")[2]


def schema_error(
    problem: Problem,
    root: etree._Element,
    module_ns: Mapping[str, str],
    list_keys: Mapping[str, Sequence[str]],
) -> RpcErrorInfo:
    """The ``rpc-error`` for ``problem``, found in ``root`` (the tree that was checked)."""
    el = find_element(root, problem.steps, module_ns)
    at_root = el is root
    path = None if at_root else path_of(el, list_keys)
    name = "" if at_root else local(el.tag)
    kind, tag, detail = problem.kind, problem.tag or "", problem.message or ""
    if kind in ("type", "raw-type"):
        why = detail.removeprefix("expected ") if kind == "raw-type" else detail
        text = value(el)
        app_tag = tag if tag and tag != "invalid-type" else None
        return _info(
            ErrorTag.INVALID_VALUE,
            f"{text!r} is not a valid value of {name!r}: {why or 'wrong type'}",
            path,
            app_tag=app_tag,
            bad_element=name,
        )
    if kind == "unknown":
        return _info(
            ErrorTag.UNKNOWN_ELEMENT,
            f"{name!r} is not in the schema here (or its feature is off)",
            path,
            bad_element=name,
        )
    if kind == "namespace":
        return _info(ErrorTag.UNKNOWN_NAMESPACE, detail, path)
    if kind == "schema":
        return _schema(tag, detail, path, name)
    if kind == "semantic":
        return _semantic(tag, detail, path, name)
    return _info(ErrorTag.OPERATION_FAILED, f"invalid configuration: {detail}", path)


def _schema(tag: str, detail: str, path: str | None, name: str) -> RpcErrorInfo:
    where = f" in {name!r}" if name else " at the top level"
    missing = _mentioned(detail) or ""
    if tag == "missing-data" and detail.startswith("expected one of"):
        return _info(
            ErrorTag.DATA_MISSING,
            f"a mandatory choice{where} has none of its cases: {detail}",
            path,
            app_tag="missing-choice",
        )
    if tag == "missing-data":
        return _info(
            ErrorTag.MISSING_ELEMENT,
            f"mandatory {missing!r} is missing{where}",
            path,
            bad_element=missing,
        )
    if tag == "list-key-missing":
        key = detail.rpartition(":")[2]
        return _info(
            ErrorTag.MISSING_ELEMENT,
            f"an entry of list {name!r} has no key {key!r}",
            path,
            bad_element=key,
        )
    member = detail.rpartition(":")[2]
    if tag.startswith("config "):
        return _info(
            ErrorTag.INVALID_VALUE,
            f"{member!r}{where} is state data: it cannot be configured",
            path,
            bad_element=member,
        )
    return _info(
        ErrorTag.BAD_ELEMENT,
        f"{member!r} is not allowed{where} (another case of its choice is present, or a "
        "when condition is false)",
        path,
        bad_element=member,
    )


def _semantic(tag: str, detail: str, path: str | None, name: str) -> RpcErrorInfo:
    if tag == "non-unique-key" or tag.startswith("data-not-unique"):
        what = "keys" if tag == "non-unique-key" else "values of its unique leaves"
        return _info(
            ErrorTag.OPERATION_FAILED,
            f"two entries of list {name!r} have the same {what}",
            path,
            app_tag="data-not-unique",
        )
    if tag in ("too-many-elements", "too-few-elements"):
        bound = "max-elements" if tag == "too-many-elements" else "min-elements"
        return _info(ErrorTag.OPERATION_FAILED, f"{name!r} breaks its {bound}", path, app_tag=tag)
    if tag == "instance-required":
        return _info(
            ErrorTag.DATA_MISSING,
            f"{name!r} refers to data that does not exist",
            path,
            app_tag=tag,
            bad_element=name,
        )
    if tag == "repeated-leaf-list-value":
        return _info(ErrorTag.OPERATION_FAILED, f"a value of leaf-list {name!r} is repeated", path)
    reason = detail or "a must condition is not satisfied"
    return _info(ErrorTag.OPERATION_FAILED, f"{name!r}: {reason}", path, app_tag=tag or None)
