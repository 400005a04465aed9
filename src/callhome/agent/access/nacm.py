"""NETCONF access control (RFC 8341, NACM) for the device's NETCONF service.

The rules are data: the ``<nacm>`` container of the ``ietf-netconf-acm`` namespace in the
running datastore, read and written over NETCONF as the rules themselves allow, re-read after
every change and kept with running. A running datastore with no ``<nacm>`` container means no
access control (every operation allowed, as before it existed); once one is there, the RFC's
defaults apply to whatever it leaves out: enable-nacm true, read-default permit,
write-default deny, exec-default permit, enable-external-groups true.

Who asks
    A session's ``Principal`` (``net.netconf``): the manager's identity fingerprint, its user
    name and groups (``agent.managers`` maps one to the others). The groups that count are
    those of ``<groups>`` listing the user name, plus the principal's own groups when
    enable-external-groups is true. ``None`` is the device's own code (the recovery session,
    session 0): never checked.

Rules
    Rule-lists apply to a principal when one of their ``<group>`` entries is one of its groups
    or ``*``; they are searched in order, and in each its rules in order; the first rule that
    matches decides. A rule matches when its module-name (``*``, a module name, or a namespace)
    names the module, its rule type matches (``rpc-name``, ``notification-name``, ``path``;
    none: anything) and its access-operations hold the one asked for. The datastore has no
    schema: a node's module is the namespace of its top-level element, named through the
    ``modules`` map (namespace -> module name; the NETCONF base namespace is ``ietf-netconf``
    and this one ``ietf-netconf-acm``). A ``path`` is an instance-identifier: ``/p:a/p:b[p:k='v']
    /*``; its prefixes are module names of the map (as in RFC 7951), or prefixes declared on
    the ``<path>`` element (the datastore keeps only the declarations its element names use,
    so module names are the dependable form); an unprefixed step takes its parent's namespace
    (the first one: any); ``*`` matches any node; ``/`` alone matches every node. A rule
    applies to the node it names and all the nodes below it.

Defaults when no rule matches
    Operations: close-session is always allowed; kill-session and delete-config are denied
    (the RFC's default-deny-all); others follow exec-default. Data: nodes of this namespace
    (the rules themselves) are denied (default-deny-all); reads follow read-default, writes
    write-default. Notifications follow read-default (replayComplete and notificationComplete
    are always allowed).

Writes are checked on what they would change: every node an edit-config, copy-config or commit
would create, delete or change the value of needs that access (a merge that changes nothing
needs none). Reads omit the nodes the principal may not read, with everything below them (the
keys of a list entry that is shown stay with it).

No lock-out
    A change to the rules is refused (``access-denied``, saying why) when afterwards no known
    manager could change the rules again; the agent refuses to start when a manager it knows
    would be allowed no operation at all. ``allow_lockout`` permits both.

Every denial is logged at WARNING with the manager's fingerprint and user, the operation and
the node's path (key values left out); never data values.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from callhome.agent.access.managers import ManagerDirectory
from callhome.agent.datastore.edit import Edit, EditFailed
from callhome.agent.datastore.xmldata import (
    NETCONF_BASE_NS,
    display_name,
    elements,
    is_leaf,
    local,
    namespace,
    path_of,
    value,
)
from callhome.errors import ConfigError, ErrorTag, ErrorType, RpcError
from callhome.net.netconf import Principal

__all__ = [
    "NACM_NS",
    "Nacm",
    "NacmError",
    "PathStep",
    "Policy",
    "Rule",
    "RuleList",
    "parse_path",
    "parse_policy",
]

log = logging.getLogger(__name__)

NACM_NS: Final = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
NACM_TAG: Final = f"{{{NACM_NS}}}nacm"
OPERATIONS: Final = frozenset({"create", "read", "update", "delete", "exec"})
WRITES: Final = frozenset({"create", "update", "delete"})
BUILTIN_MODULES: Final = {NETCONF_BASE_NS: "ietf-netconf", NACM_NS: "ietf-netconf-acm"}
DENY_ALL_RPCS: Final = frozenset(
    {(NETCONF_BASE_NS, "kill-session"), (NETCONF_BASE_NS, "delete-config")}
)
ALWAYS_NOTIFICATIONS: Final = frozenset({"replayComplete", "notificationComplete"})
BASE_RPCS: Final = (
    "get",
    "get-config",
    "edit-config",
    "copy-config",
    "delete-config",
    "lock",
    "unlock",
    "kill-session",
    "commit",
    "discard-changes",
    "cancel-commit",
    "validate",
)
"""The operations of the device's NETCONF service but close-session (always allowed)."""

_USER_OF: Final = {
    "reverse-ssh": "<its SSH user name>",
    "reverse-tls": "<its certificate's CN>",
    "turn": "<turn.username>",
}
"""What an unnamed manager's user name will be, by transport (for messages)."""

_NAME: Final = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_STEP: Final = re.compile(rf"(?:({_NAME}):)?({_NAME}|\*)")
_PREDICATE: Final = re.compile(
    rf"\[\s*(?:({_NAME}):)?({_NAME})\s*=\s*(?:'([^']*)'|\"([^\"]*)\")\s*\]"
)


class NacmError(ValueError):
    """Rules that cannot be used: the message names the problem."""

    def __init__(self, message: str, path: str = "/nacm:nacm") -> None:
        super().__init__(message)
        self.path = path


# -- the rules, parsed ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PathStep:
    """One step of a rule's path: a namespace (None: any), a name (``*``: any) and keys."""

    namespace: str | None
    name: str
    keys: tuple[tuple[str | None, str, str], ...] = ()

    def matches(self, el: etree._Element) -> bool:
        if self.name != "*" and local(el.tag) != self.name:
            return False
        if self.namespace is not None and namespace(el.tag) != self.namespace:
            return False
        for key_ns, key_name, key_value in self.keys:
            found = False
            for child in elements(el):
                if local(child.tag) != key_name or not is_leaf(child):
                    continue
                if key_ns is not None and namespace(child.tag) != key_ns:
                    continue
                if value(child) == key_value:
                    found = True
                    break
            if not found:
                return False
        return True


@dataclass(frozen=True)
class Rule:
    """One ``<rule>``: ``kind`` is rpc, notification, data or any (no rule type given)."""

    name: str
    module: str = "*"
    kind: str = "any"
    target: str = "*"
    path: tuple[PathStep, ...] = ()
    operations: frozenset[str] = OPERATIONS
    permit: bool = False


@dataclass(frozen=True)
class RuleList:
    name: str
    groups: tuple[str, ...]
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Policy:
    """The content of ``<nacm>``, with the RFC's defaults for what it leaves out."""

    enabled: bool = True
    read_default: bool = True
    write_default: bool = False
    exec_default: bool = True
    external_groups: bool = True
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    rule_lists: tuple[RuleList, ...] = ()


def _only(
    el: etree._Element, allowed: Iterable[str], where: str
) -> dict[str, list[etree._Element]]:
    names = set(allowed)
    found: dict[str, list[etree._Element]] = {}
    for child in elements(el):
        name = local(child.tag)
        if namespace(child.tag) != NACM_NS or name not in names:
            raise NacmError(f"unexpected element {display_name(child)!r} in {where}", where)
        found.setdefault(name, []).append(child)
    return found


def _single(found: dict[str, list[etree._Element]], name: str, where: str) -> str | None:
    items = found.get(name, [])
    if len(items) > 1:
        raise NacmError(f"{name} given twice in {where}", where)
    return value(items[0]) if items else None


def _choice(text: str | None, name: str, where: str, default: bool, yes: str, no: str) -> bool:
    if text is None:
        return default
    if text not in (yes, no):
        raise NacmError(f"{name} must be {yes!r} or {no!r}, not {text!r}", f"{where}/{name}")
    return text == yes


def _name(found: dict[str, list[etree._Element]], where: str) -> str:
    name = _single(found, "name", where)
    if not name:
        raise NacmError(f"{where} needs a name", where)
    return name


def parse_path(
    text: str,
    prefixes: Mapping[str | None, str] | None = None,
    modules: Mapping[str, str] | None = None,
) -> tuple[PathStep, ...]:
    """Parse a rule's path. ``prefixes``: prefix -> namespace (as declared on ``<path>``);
    ``modules``: module name -> namespace, for prefixes that are module names."""
    prefixes = prefixes or {}
    modules = modules or {}
    text = text.strip()
    if text == "/":
        return ()
    if not text.startswith("/"):
        raise NacmError(f"path {text!r} must start with '/'")

    def resolve(prefix: str | None, inherited: str | None) -> str | None:
        if prefix is None:
            return inherited
        ns = prefixes.get(prefix) or modules.get(prefix)
        if ns is None:
            raise NacmError(f"path {text!r}: unknown prefix {prefix!r}")
        return ns

    steps: list[PathStep] = []
    pos, current = 0, None
    while pos < len(text):
        if text[pos] != "/":
            raise NacmError(f"path {text!r}: expected '/' at offset {pos}")
        pos += 1
        m = _STEP.match(text, pos)
        if m is None:
            raise NacmError(f"path {text!r}: expected a node name at offset {pos}")
        pos = m.end()
        current = resolve(m.group(1), current)
        keys: list[tuple[str | None, str, str]] = []
        while pos < len(text) and text[pos] == "[":
            p = _PREDICATE.match(text, pos)
            if p is None:
                raise NacmError(f"path {text!r}: bad key predicate at offset {pos}")
            key_ns = resolve(p.group(1), current)
            literal = p.group(3) if p.group(3) is not None else p.group(4)
            keys.append((key_ns, p.group(2), literal or ""))
            pos = p.end()
        if m.group(2) == "*" and keys:
            raise NacmError(f"path {text!r}: '*' cannot have keys")
        steps.append(
            PathStep(current if m.group(2) != "*" or m.group(1) else None, m.group(2), tuple(keys))
        )
    return tuple(steps)


def _parse_rule(el: etree._Element, where: str, modules: Mapping[str, str]) -> Rule:
    found = _only(
        el,
        (
            "name",
            "module-name",
            "rpc-name",
            "notification-name",
            "path",
            "access-operations",
            "action",
            "comment",
        ),
        where,
    )
    name = _name(found, where)
    where = f"{where}[name='{name}']"
    types = [t for t in ("rpc-name", "notification-name", "path") if t in found]
    if len(types) > 1:
        raise NacmError(f"rule {name!r} gives more than one of {', '.join(types)}", where)
    kind, target = "any", "*"
    path: tuple[PathStep, ...] = ()
    if types:
        text = _single(found, types[0], where) or ""
        if not text:
            raise NacmError(f"rule {name!r}: {types[0]} is empty", where)
        kind = {"rpc-name": "rpc", "notification-name": "notification", "path": "data"}[types[0]]
        if kind == "data":
            try:
                path = parse_path(text, found["path"][0].nsmap, modules)
            except NacmError as exc:
                raise NacmError(f"rule {name!r}: {exc}", f"{where}/path") from None
        else:
            target = text
    ops_text = _single(found, "access-operations", where)
    operations = OPERATIONS
    if ops_text is not None and ops_text != "*":
        words = ops_text.split()
        unknown = [w for w in words if w not in OPERATIONS]
        if unknown or not words:
            raise NacmError(
                f"rule {name!r}: access-operations {ops_text!r} is not '*' or some of "
                "create read update delete exec",
                f"{where}/access-operations",
            )
        operations = frozenset(words)
    action = _single(found, "action", where)
    if action is None:
        raise NacmError(f"rule {name!r} needs an action (permit or deny)", where)
    permit = _choice(action, "action", where, False, "permit", "deny")
    module = _single(found, "module-name", where) or "*"
    return Rule(name, module, kind, target, path, operations, permit)


def parse_policy(
    nacm: etree._Element,
    modules: Mapping[str, str] | None = None,
    external_groups: Iterable[str] = (),
) -> Policy:
    """Read a ``<nacm>`` element. ``modules``: module name -> namespace (path prefixes);
    ``external_groups``: the groups the transport mapping knows, which rule-lists may name
    besides those of ``<groups>``. Raises NacmError naming the first problem."""
    modules = {**{v: k for k, v in BUILTIN_MODULES.items()}, **(modules or {})}
    where = "/nacm:nacm"
    top = _only(
        nacm,
        (
            "enable-nacm",
            "read-default",
            "write-default",
            "exec-default",
            "enable-external-groups",
            "denied-operations",
            "denied-data-writes",
            "denied-notifications",
            "groups",
            "rule-list",
        ),
        where,
    )
    groups: dict[str, frozenset[str]] = {}
    for groups_el in top.get("groups", []):
        for group_el in elements(groups_el):
            if local(group_el.tag) != "group" or namespace(group_el.tag) != NACM_NS:
                raise NacmError(f"unexpected element {display_name(group_el)!r} in groups")
            found = _only(group_el, ("name", "user-name"), f"{where}/groups/group")
            name = _name(found, f"{where}/groups/group")
            if name in groups:
                raise NacmError(f"group {name!r} is defined twice", f"{where}/groups")
            groups[name] = frozenset(value(u) for u in found.get("user-name", []))
    known = set(groups) | set(external_groups) | {"*"}
    rule_lists: list[RuleList] = []
    for rl_el in top.get("rule-list", []):
        found = _only(rl_el, ("name", "group", "rule"), f"{where}/rule-list")
        name = _name(found, f"{where}/rule-list")
        rl_where = f"{where}/rule-list[name='{name}']"
        if any(rl.name == name for rl in rule_lists):
            raise NacmError(f"rule-list {name!r} is defined twice", rl_where)
        rl_groups = tuple(value(g) for g in found.get("group", []))
        for group in rl_groups:
            if group not in known:
                raise NacmError(
                    f"rule-list {name!r} names unknown group {group!r} (not in nacm groups nor "
                    "given to any manager)",
                    rl_where,
                )
        rules = tuple(_parse_rule(r, f"{rl_where}/rule", modules) for r in found.get("rule", []))
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise NacmError(f"rule-list {name!r} has two rules of the same name", rl_where)
        rule_lists.append(RuleList(name, rl_groups, rules))
    return Policy(
        enabled=_choice(
            _single(top, "enable-nacm", where), "enable-nacm", where, True, "true", "false"
        ),
        read_default=_choice(
            _single(top, "read-default", where), "read-default", where, True, "permit", "deny"
        ),
        write_default=_choice(
            _single(top, "write-default", where), "write-default", where, False, "permit", "deny"
        ),
        exec_default=_choice(
            _single(top, "exec-default", where), "exec-default", where, True, "permit", "deny"
        ),
        external_groups=_choice(
            _single(top, "enable-external-groups", where),
            "enable-external-groups",
            where,
            True,
            "true",
            "false",
        ),
        groups=groups,
        rule_lists=tuple(rule_lists),
    )


# -- deciding ------------------------------------------------------------------------------------


def _nacm_of(data: etree._Element) -> etree._Element | None:
    found = [c for c in elements(data) if c.tag == NACM_TAG]
    return found[0] if found else None


def _redacted(chain: Sequence[etree._Element]) -> str:
    """A node's path for the log: names only, no key values."""
    return "/" + "/".join(display_name(el) for el in chain)


class Nacm:
    """The access rules in force and the checks the NETCONF service asks of them."""

    def __init__(
        self,
        *,
        modules: Mapping[str, str] | None = None,
        list_keys: Mapping[str, Sequence[str]] | None = None,
        directory: ManagerDirectory | None = None,
        allow_lockout: bool = False,
    ) -> None:
        self.module_names: dict[str, str] = {**BUILTIN_MODULES, **(modules or {})}
        """namespace -> module name."""
        self._modules_by_name = {v: k for k, v in self.module_names.items()}
        self.list_keys: dict[str, tuple[str, ...]] = {
            k: tuple(v) for k, v in (list_keys or {}).items()
        }
        self.directory = directory or ManagerDirectory()
        self.allow_lockout = allow_lockout
        self.policy: Policy | None = None
        self._source: bytes | None = None
        self.denied_operations = 0
        self.denied_data_writes = 0
        self.denied_notifications = 0

    # -- loading -----------------------------------------------------------------------------

    def parse(self, data: etree._Element) -> Policy | None:
        """The policy a ``<data>`` tree holds (None: no ``<nacm>``); NacmError if malformed."""
        nacm = _nacm_of(data)
        if nacm is None:
            return None
        return parse_policy(nacm, self._modules_by_name, self.directory.groups)

    def load(self, data: etree._Element) -> None:
        """Put the rules of running's ``<data>`` in force (NacmError: the old ones stay)."""
        nacm = _nacm_of(data)
        source = None if nacm is None else etree.tostring(nacm)
        if source == self._source and (self.policy is not None or source is None):
            return
        self.policy = self.parse(data)
        self._source = source
        log.info(
            "NACM rules %s", "loaded" if self.policy is not None else "absent: no access control"
        )

    def reload(self, data: etree._Element) -> None:
        """Like ``load`` after a change: malformed rules are logged and the old ones stay."""
        try:
            self.load(data)
        except NacmError as exc:
            log.error("NACM rules in running are malformed (%s); the previous rules stay", exc)

    # -- the decision ------------------------------------------------------------------------

    def _active(self, principal: Principal | None, policy: Policy | None) -> Policy | None:
        if principal is None or policy is None or not policy.enabled:
            return None
        return policy

    @staticmethod
    def groups_of(principal: Principal, policy: Policy) -> set[str]:
        groups = {g for g, users in policy.groups.items() if principal.user in users}
        if policy.external_groups:
            groups.update(principal.groups)
        return groups

    def _rules(self, principal: Principal, policy: Policy) -> Iterator[Rule]:
        groups = self.groups_of(principal, policy)
        for rule_list in policy.rule_lists:
            if "*" in rule_list.groups or groups.intersection(rule_list.groups):
                yield from rule_list.rules

    def _module_matches(self, rule: Rule, ns: str | None) -> bool:
        if rule.module == "*":
            return True
        return ns is not None and rule.module in (ns, self.module_names.get(ns))

    def rpc_allowed(
        self, principal: Principal | None, ns: str, name: str, policy: Policy | None = None
    ) -> bool:
        policy = self._active(principal, self.policy if policy is None else policy)
        if policy is None or principal is None or (ns, name) == (NETCONF_BASE_NS, "close-session"):
            return True
        for rule in self._rules(principal, policy):
            if (
                rule.kind in ("rpc", "any")
                and "exec" in rule.operations
                and self._module_matches(rule, ns)
                and rule.target in ("*", name)
            ):
                return rule.permit
        if (ns, name) in DENY_ALL_RPCS:
            return False
        return policy.exec_default

    def data_allowed(
        self,
        principal: Principal | None,
        chain: Sequence[etree._Element],
        op: str,
        policy: Policy | None = None,
    ) -> bool:
        """May ``principal`` do ``op`` on the node ``chain[-1]`` (``chain``: top-level node
        first, the node last)?"""
        policy = self._active(principal, self.policy if policy is None else policy)
        if policy is None or principal is None or not chain:
            return True
        ns = namespace(chain[0].tag)
        for rule in self._rules(principal, policy):
            if (
                rule.kind in ("data", "any")
                and op in rule.operations
                and self._module_matches(rule, ns)
                and len(rule.path) <= len(chain)
                and all(step.matches(el) for step, el in zip(rule.path, chain, strict=False))
            ):
                return rule.permit
        if ns == NACM_NS:
            return False
        return policy.read_default if op == "read" else policy.write_default

    def may_receive_notification(
        self, principal: Principal | None, name: str, ns: str | None = None
    ) -> bool:
        """May ``principal`` be sent the notification ``name`` (of namespace ``ns``)?"""
        policy = self._active(principal, self.policy)
        if policy is None or principal is None or name in ALWAYS_NOTIFICATIONS:
            return True
        allowed = policy.read_default
        for rule in self._rules(principal, policy):
            if (
                rule.kind in ("notification", "any")
                and "read" in rule.operations
                and self._module_matches(rule, ns)
                and rule.target in ("*", name)
            ):
                allowed = rule.permit
                break
        if not allowed:
            self.denied_notifications += 1
            log.warning(
                "access denied: notification %s not sent to manager %s user %r",
                name,
                principal.identity or "-",
                principal.user,
            )
        return allowed

    # -- what the NETCONF service asks -------------------------------------------------------

    def _denied(self, principal: Principal, session_id: int, what: str, where: str) -> None:
        log.warning(
            "access denied: manager %s user %r session %d: %s %s",
            principal.identity or "-",
            principal.user,
            session_id,
            what,
            where,
        )

    def authorize_rpc(
        self, principal: Principal | None, session_id: int, operation: etree._Element
    ) -> None:
        """Raise ``access-denied`` (error-type protocol) unless the operation may run."""
        tag = operation.tag if isinstance(operation.tag, str) else ""
        ns, name = namespace(tag) or "", local(tag)
        if self.rpc_allowed(principal, ns, name):
            return
        assert principal is not None
        self.denied_operations += 1
        self._denied(principal, session_id, "rpc", name)
        raise RpcError.single(
            ErrorTag.ACCESS_DENIED,
            f"operation {name!r} is not allowed to user {principal.user!r}",
            type=ErrorType.PROTOCOL,
        )

    def prune(self, principal: Principal | None, data: etree._Element) -> int:
        """Remove from a reply's ``<data>`` the nodes ``principal`` may not read; returns how
        many subtrees went."""
        policy = self._active(principal, self.policy)
        if policy is None:
            return 0
        removed = 0

        def walk(parent: etree._Element, chain: list[etree._Element]) -> None:
            nonlocal removed
            keys = self._key_tags(parent) if chain else set()
            for child in elements(parent):
                here = [*chain, child]
                if child.tag not in keys and not self.data_allowed(principal, here, "read"):
                    parent.remove(child)
                    removed += 1
                    continue
                walk(child, here)

        walk(data, [])
        return removed

    def _key_tags(self, el: etree._Element) -> set[str]:
        declared = self.list_keys.get(el.tag)
        if declared is not None:
            return set(declared)
        children = elements(el)
        if len(children) > 1 and is_leaf(children[0]):
            return {children[0].tag}
        return set()

    def simulate_edit(
        self,
        old: etree._Element,
        config: etree._Element,
        default_operation: str,
        error_option: str,
    ) -> etree._Element | None:
        """The tree an edit-config would leave (None: the edit fails; the datastore will say
        why)."""
        edit = Edit(
            copy.deepcopy(old),
            self.list_keys,
            continue_on_error=error_option == "continue-on-error",
        )
        try:
            edit.run(config, default_operation)
        except (EditFailed, RpcError):
            return None
        return edit.root

    def authorize_write(
        self,
        principal: Principal | None,
        session_id: int,
        operation: str,
        target: str,
        old: etree._Element,
        new: etree._Element,
    ) -> None:
        """Raise ``access-denied`` (error-type application) unless ``principal`` may turn
        ``old`` into ``new`` in ``target``; check changed rules (malformed: ``invalid-value``;
        a lock-out: ``access-denied``)."""
        if self._active(principal, self.policy) is not None:
            assert principal is not None
            for op, chain in self.changes(old, new):
                if not self.data_allowed(principal, chain, op):
                    self.denied_data_writes += 1
                    self._denied(
                        principal, session_id, f"{operation} {op} in {target}", _redacted(chain)
                    )
                    raise RpcError.single(
                        ErrorTag.ACCESS_DENIED,
                        f"{op} of this node is not allowed to user {principal.user!r}",
                        path=path_of(chain[-1], self.list_keys),
                    )
        old_nacm, new_nacm = _nacm_of(old), _nacm_of(new)
        old_text = None if old_nacm is None else etree.tostring(old_nacm)
        new_text = None if new_nacm is None else etree.tostring(new_nacm)
        if old_text == new_text or target == "startup":
            return
        try:
            policy = self.parse(new)
        except NacmError as exc:
            raise RpcError.single(
                ErrorTag.INVALID_VALUE, f"NACM rules refused: {exc}", path=exc.path
            ) from None
        problem = self.lockout(policy)
        if problem is not None:
            if principal is not None:
                self._denied(principal, session_id, f"{operation} of the NACM rules", "/nacm:nacm")
            raise RpcError.single(
                ErrorTag.ACCESS_DENIED,
                f"NACM rules refused: {problem} (set nacm_allow_lockout to force)",
                path="/nacm:nacm",
            )

    # -- no lock-out -------------------------------------------------------------------------

    def _principals(self) -> list[Principal]:
        return [
            Principal(identity=m.fingerprint, user=m.user, groups=m.groups, transport=m.transport)
            for m in self.directory.managers
        ]

    def may_change_rules(self, principal: Principal, policy: Policy | None) -> bool:
        nacm = etree.Element(NACM_TAG)
        rule_list = etree.SubElement(nacm, f"{{{NACM_NS}}}rule-list")
        return self.rpc_allowed(principal, NETCONF_BASE_NS, "edit-config", policy) and (
            self.data_allowed(principal, [nacm], "update", policy)
            or self.data_allowed(principal, [nacm, rule_list], "create", policy)
        )

    def lockout(self, policy: Policy | None) -> str | None:
        """Why ``policy`` would lock every manager out of the rules, or None."""
        if self.allow_lockout or policy is None or not policy.enabled:
            return None
        if any(self.may_change_rules(p, policy) for p in self._principals()):
            return None
        return "afterwards no manager could change the NACM rules"

    def idle_managers(self, policy: Policy | None = None) -> list[Principal]:
        """Managers that ``policy`` (default: the one in force) allows no operation at all."""
        policy = self.policy if policy is None else policy
        if self.allow_lockout or policy is None or not policy.enabled:
            return []
        return [
            p
            for p in self._principals()
            if not any(self.rpc_allowed(p, NETCONF_BASE_NS, op, policy) for op in BASE_RPCS)
        ]

    def check_startup(self, endpoints: Sequence[str]) -> None:
        """ConfigError when a manager this device dials would be allowed no operation."""
        idle = self.idle_managers()
        if idle:
            who = ", ".join(
                f"{p.identity} over {p.transport} (user {p.user or _USER_OF[p.transport]!r})"
                for p in idle
            )
            raise ConfigError(
                f"NACM: manager {who}, called at {', '.join(endpoints)}, would be allowed no "
                "NETCONF operation: a configuration error (fix the rules in running, or set "
                "nacm_allow_lockout = true)"
            )

    # -- the difference between two trees ----------------------------------------------------

    def _identity(self, el: etree._Element, leaf_list: bool) -> tuple[object, ...]:
        declared = self.list_keys.get(el.tag)
        children = elements(el)
        if declared is not None:
            return tuple(next((value(c) for c in children if c.tag == k), None) for k in declared)
        if not children:
            return ("=", value(el)) if leaf_list else ()
        if is_leaf(children[0]):
            return (children[0].tag, value(children[0]))
        return ()

    def _index(self, parent: etree._Element) -> dict[tuple[object, ...], etree._Element]:
        children = elements(parent)
        tags: dict[str, int] = {}
        for child in children:
            if is_leaf(child):
                tags[child.tag] = tags.get(child.tag, 0) + 1
        index: dict[tuple[object, ...], etree._Element] = {}
        for child in children:
            key: tuple[object, ...] = (
                child.tag,
                *self._identity(child, tags.get(child.tag, 0) > 1),
            )
            n = 0
            while (*key, n) in index:
                n += 1
            index[(*key, n)] = child
        return index

    def changes(
        self, old: etree._Element, new: etree._Element
    ) -> Iterator[tuple[str, list[etree._Element]]]:
        """(operation, chain) for every node created, deleted or changed in value from
        ``old`` to ``new`` (two ``<data>`` trees); the nodes of ``chain`` are in their tree."""
        yield from self._diff(old, new, [])

    def _diff(
        self, old: etree._Element, new: etree._Element, chain: list[etree._Element]
    ) -> Iterator[tuple[str, list[etree._Element]]]:
        before, after = self._index(old), self._index(new)
        for key, el in after.items():
            was = before.get(key)
            here = [*chain, el]
            if was is None:
                yield from self._subtree("create", el, here)
            elif is_leaf(el) and is_leaf(was):
                if value(el) != value(was):
                    yield "update", here
            elif is_leaf(el) != is_leaf(was):
                yield "update", here
            else:
                yield from self._diff(was, el, here)
        for key, el in before.items():
            if key not in after:
                yield from self._subtree("delete", el, [*chain, el])

    def _subtree(
        self, op: str, el: etree._Element, chain: list[etree._Element]
    ) -> Iterator[tuple[str, list[etree._Element]]]:
        yield op, chain
        for child in elements(el):
            yield from self._subtree(op, child, [*chain, child])
