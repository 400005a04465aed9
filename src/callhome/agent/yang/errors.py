"""``rpc-error``s for configuration that does not conform to the device's YANG modules.

Tags follow RFC 7950 sections 8.3 and 15 (and RFC 6241 appendix A), from what libyang
reported (``callhome.agent.yang.libyang.Problem``):

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
two cases of a choice present; a node whose          bad-element
``when`` is false
state data (config false) in a configuration         invalid-value
two list entries with the same keys; a ``unique``    operation-failed (data-not-unique)
violated
a container or leaf given twice, max-elements,       operation-failed (too-many-elements,
min-elements                                         too-few-elements)
a leaf-list value given twice                        operation-failed
a ``must`` not satisfied                             operation-failed (must-violation, or the
                                                     must's error-app-tag)
a leafref or instance-identifier with no target      data-missing (instance-required)
===================================================  ==========================================

Every error is of type application, with the error-path of the offending element (prefixes as
stored, ``[key='value']`` predicates on list entries; for a missing node, min-elements or a
mandatory choice, the element that lacks it), ``bad-element`` in error-info where an element
is to blame, and a message naming the constraint (with libyang's own words, or the module's
error-message).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lxml import etree

from callhome.agent.datastore.xmldata import is_element, local, path_of, value, xml_escape
from callhome.agent.yang.libyang import Problem, Step
from callhome.errors import ErrorTag, ErrorType, RpcErrorInfo

__all__ = ["find_element", "schema_error", "unknown_namespace"]


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


def _matches(el: etree._Element, step: Step, ns: str | None) -> bool:
    if not is_element(el) or local(el.tag) != step.name:
        return False
    if ns and el.tag != f"{{{ns}}}{step.name}":
        return False
    for key, wanted in step.predicates:
        if key == "#":
            continue
        if key == ".":
            if value(el) != wanted:
                return False
            continue
        leaf = next((c for c in el if is_element(c) and local(c.tag) == key), None)
        if leaf is None or value(leaf) != wanted:
            return False
    return True


def find_elements(
    root: etree._Element,
    steps: Sequence[Step],
    module_ns: Mapping[str, str],
    *,
    schema_only: bool = False,
) -> list[etree._Element]:
    """The elements libyang's steps lead to from ``root``, in document order (as deep as they
    can be followed: ``[root]`` when the first step leads nowhere).

    A step with no predicate leads to every namesake. In a schema path (``schema_only``), a
    step that leads nowhere is taken for a choice or case, and passed over.
    """
    here = [root]
    ns: str | None = None
    for step in steps:
        if step.module is not None:
            ns = module_ns.get(step.module, ns)
        found: list[etree._Element] = []
        for parent in here:
            namesakes = [c for c in parent if _matches(c, step, ns)]
            position = dict(step.predicates).get("#")
            if position is not None and position.isdigit():
                index = int(position) - 1
                namesakes = namesakes[index : index + 1]
            found.extend(namesakes)
        if not found:
            if schema_only:
                continue
            break
        here = found
    return here


def find_element(
    root: etree._Element,
    steps: Sequence[Step],
    module_ns: Mapping[str, str],
    *,
    lacking: str | None = None,
    schema_only: bool = False,
) -> etree._Element:
    """The first element the steps lead to; the first without a child named ``lacking`` if
    one is given and there is one."""
    found = find_elements(root, steps, module_ns, schema_only=schema_only)
    if lacking:
        for el in found:
            if not any(is_element(c) and local(c.tag) == lacking for c in el):
                return el
    return found[0]


def _named_child(el: etree._Element, name: str | None) -> etree._Element:
    for child in el:
        if is_element(child) and local(child.tag) == name:
            return child
    return el


def schema_error(
    problem: Problem,
    root: etree._Element,
    module_ns: Mapping[str, str],
    list_keys: Mapping[str, Sequence[str]],
) -> RpcErrorInfo:
    """The ``rpc-error`` for ``problem``, found in ``root`` (the tree that was checked)."""
    kind, detail, steps = problem.kind, problem.message, problem.steps

    def where(el: etree._Element) -> str | None:
        return None if el is root else path_of(el, list_keys)

    if problem.schema_only or kind in ("missing", "missing-key"):
        # a schema node (a missing leaf or key, a list short of entries, a mandatory choice):
        # the first instance of its parent that lacks it
        last = steps[-1].name if steps else None
        parent_steps = steps[:-1] if problem.schema_only and steps else steps
        if kind == "missing" and steps and last == problem.name and not problem.schema_only:
            parent_steps = steps[:-1]  # a data path to the missing node itself
        el = find_element(
            root,
            parent_steps,
            module_ns,
            lacking=problem.name if kind in ("missing", "missing-key") else last,
            schema_only=problem.schema_only,
        )
    else:
        el = find_element(root, steps, module_ns)
    if kind in ("unknown", "namespace"):
        el = _named_child(el, problem.name)
    path = where(el)
    name = "" if el is root else local(el.tag)
    at = f" in {name!r}" if name else " at the top level"
    if kind == "value":
        app_tag = problem.app_tag
        return _info(
            ErrorTag.INVALID_VALUE,
            f"{value(el)!r} is not a valid value of {name!r}: {detail}",
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
        return _info(ErrorTag.UNKNOWN_NAMESPACE, detail, path, bad_element=name)
    if kind == "state":
        return _info(
            ErrorTag.INVALID_VALUE,
            f"{name!r} is state data: it cannot be configured",
            path,
            bad_element=name,
        )
    if kind == "missing-key":
        key = problem.name or ""
        return _info(
            ErrorTag.MISSING_ELEMENT,
            f"an entry of list {name!r} has no key {key!r}",
            path,
            bad_element=key,
        )
    if kind == "missing":
        missing = problem.name or ""
        return _info(
            ErrorTag.MISSING_ELEMENT,
            f"mandatory {missing!r} is missing{at}",
            path,
            bad_element=missing,
        )
    if kind == "duplicate":
        return _duplicate(el, path, name, list_keys)
    if kind == "choice":
        bad = problem.name or name
        return _info(
            ErrorTag.BAD_ELEMENT,
            f"{bad!r} is not allowed{at}: another case of its choice is present",
            path,
            bad_element=bad,
        )
    if kind == "when":
        return _info(
            ErrorTag.BAD_ELEMENT,
            f"{name!r} is not allowed here: its when condition is false ({detail})",
            path,
            bad_element=name,
        )
    if kind == "semantic":
        schema_name = steps[-1].name if steps else name
        return _semantic(problem.app_tag or "", detail, path, name, schema_name)
    return _info(ErrorTag.OPERATION_FAILED, f"invalid configuration: {detail}", path)


def _duplicate(
    el: etree._Element, path: str | None, name: str, list_keys: Mapping[str, Sequence[str]]
) -> RpcErrorInfo:
    if list_keys.get(el.tag):
        return _info(
            ErrorTag.OPERATION_FAILED,
            f"two entries of list {name!r} have the same keys",
            path,
            app_tag="data-not-unique",
        )
    if el.tag in list_keys or len(el):
        return _info(
            ErrorTag.OPERATION_FAILED,
            f"{name!r} is given more than once",
            path,
            app_tag="too-many-elements",
        )
    return _info(ErrorTag.OPERATION_FAILED, f"a value of leaf-list {name!r} is repeated", path)


def _semantic(tag: str, detail: str, path: str | None, name: str, node: str) -> RpcErrorInfo:
    """``name``: the element found; ``node``: the schema node libyang named (a list, when it
    has too few entries; a choice)."""
    if tag == "data-not-unique":
        return _info(
            ErrorTag.OPERATION_FAILED,
            f"two entries of list {name!r} have the same values of their unique leaves",
            path,
            app_tag=tag,
        )
    if tag in ("too-many-elements", "too-few-elements"):
        bound = "max-elements" if tag == "too-many-elements" else "min-elements"
        return _info(ErrorTag.OPERATION_FAILED, f"{node!r} breaks its {bound}", path, app_tag=tag)
    if tag == "missing-choice":
        return _info(
            ErrorTag.DATA_MISSING,
            f"mandatory choice {node!r} has none of its cases",
            path,
            app_tag=tag,
        )
    if tag == "instance-required":
        return _info(
            ErrorTag.DATA_MISSING,
            f"{name!r} refers to data that does not exist: {detail}",
            path,
            app_tag=tag,
            bad_element=name,
        )
    return _info(ErrorTag.OPERATION_FAILED, f"{name!r}: {detail}", path, app_tag=tag or None)
