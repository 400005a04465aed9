"""The NETCONF operations of one agent, shared by all its sessions (RFC 6241 sections 7 and 8).

``NetconfService.handle`` takes the operation element (the child of ``<rpc>``) and returns
None for an ``<ok/>`` reply or a ``<data>`` element for get and get-config; it raises
``RpcError`` for an ``<rpc-error>`` reply. The caller owns framing, ``<rpc-reply>`` wrapping
and the transport.

Operations: get, get-config, edit-config, copy-config, delete-config, lock, unlock,
close-session, kill-session (base); commit, discard-changes (``:candidate``); cancel-commit
and the commit parameters confirmed, confirm-timeout, persist, persist-id
(``:confirmed-commit:1.1``); validate (``:validate:1.1``); startup as a datastore
(``:startup``); ``<filter type="xpath" select=...>`` (``:xpath``); the ``with-defaults``
parameter of get, get-config and copy-config (RFC 6243; on copy-config it only matters for a
URL target, which this device does not have, so it is checked and otherwise ignored). The
datastore's rules are in ``callhome.agent.datastore.core``.

Session ends: ``close_session`` (called for close-session, and by the transport when it ends,
idempotently) and kill-session release the session's locks, discard the candidate's changes if
it held the candidate's lock, and roll back its confirmed commit unless that was given
``persist``. close-session: ``handle`` does this and returns None; the caller sends ``<ok/>``
and then closes the transport (``NetconfService.wants_close`` tells it which operations are
close-session). kill-session: the victim is forgotten and the ``on_kill`` callback given to
``open_session`` is called; that callback closes the victim's transport.

Notifications: ``add_change_listener`` and ``add_commit_listener`` register callables that
hear of every configuration change and every confirmed-commit event (see
``callhome.agent.datastore.events``), the material of RFC 6470's netconf-config-change and
netconf-confirmed-commit. A service given a ``NotificationCenter``
(``callhome.agent.notifications``) serves ``<create-subscription>`` through it and tells it of
session starts and ends (``attach_session``, ``close_session``'s ``reason``).

Operations in other namespaces: ``add_operation`` registers one by its qualified name (e.g.
RFC 6022's get-schema, ``callhome.agent.yang.modules``); its handler returns None for ``<ok/>``, a
``<data>`` element, or another element that is the reply's only content (rpc output).

Access control: a service given a ``Nacm`` (``callhome.agent.access.nacm``) checks every operation
against the rules in running, for the ``Principal`` each session was opened with (``None``:
the device's own code, never restricted); notification code asks
``service.nacm.may_receive_notification(service.principal(session_id), name)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from lxml import etree

from callhome.agent.access.nacm import NACM_NS, Nacm
from callhome.agent.datastore.core import NETCONF_BASE_NS, Datastore
from callhome.agent.datastore.defaults import WITH_DEFAULTS_CAPABILITY, WITH_DEFAULTS_NS, check_mode
from callhome.agent.datastore.edit import Edit, EditFailed
from callhome.agent.datastore.events import ChangeEvent, ChangeListener, CommitListener
from callhome.agent.datastore.validate import inline_config
from callhome.agent.notifications import CREATE_SUBSCRIPTION, NotificationCenter, Sink
from callhome.errors import ErrorTag, ErrorType, LocalProtocolError, RpcError, RpcErrorInfo
from callhome.net.netconf import Principal

__all__ = ["BASE_CAPABILITIES", "CAPABILITIES", "NetconfService"]

log = logging.getLogger(__name__)

_CAP: Final = "urn:ietf:params:netconf:capability:"

CAPABILITIES: Final = (
    "urn:ietf:params:netconf:base:1.0",
    "urn:ietf:params:netconf:base:1.1",
    f"{_CAP}writable-running:1.0",
    f"{_CAP}candidate:1.0",
    f"{_CAP}confirmed-commit:1.1",
    f"{_CAP}rollback-on-error:1.0",
    f"{_CAP}validate:1.1",
    f"{_CAP}startup:1.0",
    f"{_CAP}xpath:1.0",
    WITH_DEFAULTS_CAPABILITY,
)
"""What this service implements, no more: not :url. A service given a ``NotificationCenter``
adds :notification and :interleave."""

BASE_CAPABILITIES: Final = CAPABILITIES
"""The former name of ``CAPABILITIES``."""

_CLOSE_SESSION_TAG: Final = f"{{{NETCONF_BASE_NS}}}close-session"
_WITH_DEFAULTS_TAG: Final = f"{{{WITH_DEFAULTS_NS}}}with-defaults"
_MAX_TIMEOUT: Final = 4294967295

_Params = dict[str, etree._Element]
_Handler = Callable[[int, _Params], etree._Element | None]
Validator = Callable[[etree._Element, etree._Element], list[RpcErrorInfo]]
"""Given a datastore's tree before and after a change, the problems that refuse it."""
OperationHandler = Callable[[int, etree._Element], etree._Element | None]
"""Carries out an operation registered with ``add_operation``: (session id, operation)."""
SessionEndListener = Callable[[int, str], None]
"""Hears of a session's end: its id and RFC 6470's termination-reason (closed, dropped ...)."""


def _error(
    tag: ErrorTag,
    message: str,
    *,
    bad_element: str | None = None,
    info: dict[str, str] | None = None,
) -> RpcError:
    items = dict(info or {})
    if bad_element is not None:
        items["bad-element"] = bad_element
    return RpcError.single(tag, message, type=ErrorType.PROTOCOL, info=items)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _text(el: etree._Element) -> str:
    return (el.text or "").strip()


def _child_elements(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _in_base(el: etree._Element) -> bool:
    return isinstance(el.tag, str) and el.tag.startswith(f"{{{NETCONF_BASE_NS}}}")


def is_liveness_probe(operation: etree._Element) -> bool:
    """True for a ``<get>`` whose only child is an empty subtree filter: it selects nothing.

    The manager sends it to learn that a TLS call-home connection is alive (TLS has no
    keepalive of its own); it is not use of the connection, so it does not keep a periodic
    connection from idling out.
    """
    if not _in_base(operation) or _local(str(operation.tag)) != "get":
        return False
    children = _child_elements(operation)
    if len(children) != 1 or children[0].tag != f"{{{NETCONF_BASE_NS}}}filter":
        return False
    only = children[0]
    return only.get("type", "subtree") == "subtree" and not len(only) and not _text(only)


class NetconfService:
    """Dispatches NETCONF operations to a ``Datastore`` and keeps the agent's sessions."""

    def __init__(
        self,
        datastore: Datastore,
        *,
        extra_capabilities: Sequence[str] = (),
        notifications: NotificationCenter | None = None,
        nacm: Nacm | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.datastore = datastore
        self._clock = clock
        self.nacm = nacm
        """NETCONF access control (``callhome.agent.access.nacm``); None: everything allowed."""
        self._principals: dict[int, Principal | None] = {}
        if nacm is not None:
            nacm.load(self._nacm_data())
            datastore.add_change_listener(self._rules_changed)
        self.capabilities: list[str] = list(CAPABILITIES)
        self.notifications = notifications
        if notifications is not None:
            extra_capabilities = (*notifications.capabilities, *extra_capabilities)
            datastore.add_change_listener(notifications.on_change)
            datastore.add_commit_listener(notifications.on_commit)
            if nacm is not None:
                notifications.may_receive = self._may_receive_notification
        for capability in extra_capabilities:
            if capability not in self.capabilities:
                self.capabilities.append(capability)
        self._sessions: dict[int, Callable[[], None]] = {}
        self._next_session_id = 1
        self._validators: list[Validator] = []
        self._extra_operations: dict[str, OperationHandler] = {}
        self._session_end_listeners: list[SessionEndListener] = []
        self.last_rpc = clock()
        """``clock()`` (monotonic) when the last operation arrived, on any session."""
        edit = {"target", "default-operation", "test-option", "error-option", "config", "url"}
        commit = {"confirmed", "confirm-timeout", "persist", "persist-id"}
        # operation name -> (handler, parameters it accepts)
        self._operations: dict[str, tuple[_Handler, frozenset[str]]] = {
            "get": (self._get, frozenset({"filter", "with-defaults"})),
            "get-config": (self._get_config, frozenset({"source", "filter", "with-defaults"})),
            "edit-config": (self._edit_config, frozenset(edit)),
            "copy-config": (self._copy_config, frozenset({"target", "source", "with-defaults"})),
            "delete-config": (self._delete_config, frozenset({"target"})),
            "lock": (self._lock, frozenset({"target"})),
            "unlock": (self._unlock, frozenset({"target"})),
            "close-session": (self._close_session, frozenset()),
            "kill-session": (self._kill_session, frozenset({"session-id"})),
            "commit": (self._commit, frozenset(commit)),
            "discard-changes": (self._discard_changes, frozenset()),
            "cancel-commit": (self._cancel_commit, frozenset({"persist-id"})),
            "validate": (self._validate, frozenset({"source"})),
        }

    # -- sessions ------------------------------------------------------------------------------

    def open_session(self, on_kill: Callable[[], None], principal: Principal | None = None) -> int:
        """Register a new session; returns its id (1, 2, 3 ...). ``on_kill`` ends its transport.
        ``principal`` is who the transport authenticated (None: the device's own code, which
        access control never restricts)."""
        session_id = self._next_session_id
        self._next_session_id += 1
        self._sessions[session_id] = on_kill
        if principal is not None and self.nacm is not None:
            principal = self.nacm.directory.resolve(principal)
        self._principals[session_id] = principal
        return session_id

    def _may_receive_notification(self, session_id: int, content: etree._Element) -> bool:
        """NACM's notification rules, for the notification center (RFC 8341 section 3.4.6)."""
        if self.nacm is None:
            return True
        name = etree.QName(content)
        return self.nacm.may_receive_notification(
            self.principal(session_id), name.localname, name.namespace
        )

    def principal(self, session_id: int) -> Principal | None:
        """Who a session serves (user and groups resolved), None for the device's own code."""
        return self._principals.get(session_id)

    def _nacm_data(self) -> etree._Element:
        nacm_filter = etree.Element(f"{{{NETCONF_BASE_NS}}}filter")
        etree.SubElement(nacm_filter, f"{{{NACM_NS}}}nacm")
        return self.datastore.get_config("running", nacm_filter)

    def _rules_changed(self, event: ChangeEvent) -> None:
        if self.nacm is not None and event.datastore == "running":
            self.nacm.reload(self._nacm_data())

    def _authorize_write(
        self, session_id: int, operation: str, target: str, new: etree._Element | None
    ) -> None:
        if self.nacm is None or new is None:
            return
        old = self.datastore.read(target)
        self.nacm.authorize_write(
            self._principals.get(session_id), session_id, operation, target, old, new
        )

    def close_session(self, session_id: int, reason: str = "dropped") -> None:
        """Forget a session that ended: release its locks, discard the candidate's changes if
        it held the candidate's lock, roll back its confirmed commit (idempotent).
        ``reason`` is RFC 6470's termination-reason of its netconf-session-end."""
        known = self._sessions.pop(session_id, None) is not None
        self._principals.pop(session_id, None)
        self.datastore.release_session(session_id)
        if known and self.notifications is not None:
            self.notifications.detach(session_id, reason)
        if known:
            for listener in list(self._session_end_listeners):
                try:
                    listener(session_id, reason)
                except Exception:
                    log.exception("session-end listener %r failed", listener)

    def attach_session(
        self, session_id: int, sink: Sink, *, username: str = "", source_host: str = ""
    ) -> None:
        """Give a session the means to receive notifications (``sink(eventTime, content)``);
        the transport driver calls this once, right after ``open_session``."""
        if self.notifications is not None and session_id in self._sessions:
            self.notifications.attach(session_id, sink, username=username, source_host=source_host)

    @property
    def session_ids(self) -> list[int]:
        """Ids of the sessions open now."""
        return list(self._sessions)

    @staticmethod
    def wants_close(operation: etree._Element) -> bool:
        """True when ``operation`` is close-session: after replying, close the transport."""
        return operation.tag == _CLOSE_SESSION_TAG

    # -- listeners -----------------------------------------------------------------------------

    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener`` with a ``ChangeEvent`` after every change to a datastore."""
        self.datastore.add_change_listener(listener)

    def remove_change_listener(self, listener: ChangeListener) -> None:
        self.datastore.remove_change_listener(listener)

    def add_commit_listener(self, listener: CommitListener) -> None:
        """Call ``listener`` with a ``ConfirmedCommitEvent`` on every confirmed-commit event."""
        self.datastore.add_commit_listener(listener)

    def remove_commit_listener(self, listener: CommitListener) -> None:
        self.datastore.remove_commit_listener(listener)

    def add_session_end_listener(self, listener: SessionEndListener) -> None:
        """Call ``listener(session_id, reason)`` once when a session ends."""
        self._session_end_listeners.append(listener)

    def add_validator(self, validator: Validator) -> None:
        """Refuse an edit-config, copy-config or commit into running or candidate whose result
        ``validator`` finds problems in; checked before the datastore is changed."""
        self._validators.append(validator)

    def add_operation(self, qualified_name: str, handler: OperationHandler) -> None:
        """Serve the operation ``{namespace}name`` (not in the NETCONF base namespace) with
        ``handler``; access control applies to it like to any operation."""
        if qualified_name.startswith(f"{{{NETCONF_BASE_NS}}}"):
            raise ValueError("base operations cannot be replaced")
        self._extra_operations[qualified_name] = handler

    def _precheck(self, target: str, new: etree._Element | None) -> None:
        if not self._validators or new is None or target not in ("running", "candidate"):
            return
        old = self.datastore.read(target)
        problems = [p for validator in self._validators for p in validator(old, new)]
        if problems:
            raise RpcError(problems)

    # -- dispatch ------------------------------------------------------------------------------

    def handle(self, session_id: int, operation: etree._Element) -> etree._Element | None:
        """Carry out one operation for ``session_id``.

        Returns None for ``<ok/>`` or a ``<data>`` element; raises RpcError otherwise.
        """
        if session_id not in self._sessions:
            raise LocalProtocolError(f"session {session_id} is not open")
        if not is_liveness_probe(operation):
            self.last_rpc = self._clock()
        tag = operation.tag if isinstance(operation.tag, str) else ""
        if self.nacm is not None and tag == CREATE_SUBSCRIPTION:
            self.nacm.authorize_rpc(self._principals.get(session_id), session_id, operation)
        if tag == CREATE_SUBSCRIPTION and self.notifications is not None:
            self.notifications.subscribe(session_id, operation)
            return None
        extra = self._extra_operations.get(tag)
        if extra is not None:
            if self.nacm is not None:
                self.nacm.authorize_rpc(self._principals.get(session_id), session_id, operation)
            return extra(session_id, operation)
        name = _local(tag)
        entry = self._operations.get(name) if _in_base(operation) else None
        if entry is None:
            raise _error(
                ErrorTag.OPERATION_NOT_SUPPORTED,
                f"operation {name!r} is not supported",
                bad_element=name,
            )
        handler, accepted = entry
        if self.nacm is not None:
            self.nacm.authorize_rpc(self._principals.get(session_id), session_id, operation)
        return handler(session_id, self._parameters(operation, accepted))

    @staticmethod
    def _parameters(operation: etree._Element, accepted: frozenset[str]) -> _Params:
        params: _Params = {}
        for child in _child_elements(operation):
            name = _local(child.tag)
            with_defaults = child.tag == _WITH_DEFAULTS_TAG and "with-defaults" in accepted
            if not _in_base(child) and not with_defaults:
                raise _error(
                    ErrorTag.UNKNOWN_NAMESPACE,
                    f"parameter {name!r} is not in the NETCONF base namespace",
                    bad_element=name,
                    info={"bad-namespace": child.tag[1:].partition("}")[0]},
                )
            if name not in accepted or (name == "with-defaults" and not with_defaults):
                raise _error(
                    ErrorTag.UNKNOWN_ELEMENT, f"unexpected parameter {name!r}", bad_element=name
                )
            if name in params:
                raise _error(
                    ErrorTag.BAD_ELEMENT, f"parameter {name!r} given twice", bad_element=name
                )
            params[name] = child
        return params

    # -- parameters ----------------------------------------------------------------------------

    @staticmethod
    def _required(params: _Params, name: str) -> etree._Element:
        element = params.get(name)
        if element is None:
            raise _error(
                ErrorTag.MISSING_ELEMENT, f"parameter {name!r} is missing", bad_element=name
            )
        return element

    def _datastore_name(self, params: _Params, name: str) -> str:
        """The datastore named in ``<source>``/``<target>``, e.g. ``<target><running/>``."""
        choice = self._choice(params, name)
        local = _local(choice.tag)
        if local == "config":
            raise _error(ErrorTag.INVALID_VALUE, f"{name} {local!r} is invalid", bad_element=name)
        return local

    def _source(self, params: _Params) -> str | etree._Element:
        """A datastore's name, or the ``<config>`` element of an inline configuration."""
        choice = self._choice(params, "source")
        local = _local(choice.tag)
        return choice if local == "config" else local

    def _choice(self, params: _Params, name: str) -> etree._Element:
        choices = _child_elements(self._required(params, name))
        if not choices:
            raise _error(ErrorTag.MISSING_ELEMENT, f"{name} names no datastore", bad_element=name)
        if len(choices) > 1:
            raise _error(
                ErrorTag.BAD_ELEMENT, f"{name} names more than one datastore", bad_element=name
            )
        choice = choices[0]
        if choice.tag == f"{{{NETCONF_BASE_NS}}}url":
            raise _error(
                ErrorTag.OPERATION_NOT_SUPPORTED,
                "the :url capability is not supported",
                bad_element=name,
            )
        if not _in_base(choice):
            raise _error(
                ErrorTag.INVALID_VALUE,
                f"{name} {_local(choice.tag)!r} is invalid",
                bad_element=name,
            )
        return choice

    @staticmethod
    def _filter(params: _Params) -> dict[str, Any]:
        """Keyword arguments of ``Datastore.get``/``get_config`` for the ``<filter>``."""
        element = params.get("filter")
        kwargs: dict[str, Any] = {}
        wd = params.get("with-defaults")
        if wd is not None:
            kwargs["with_defaults"] = _text(wd)
        if element is None:
            return kwargs
        kind = element.get("type", "subtree")
        if kind == "subtree":
            kwargs["filter"] = element
            return kwargs
        if kind == "xpath":
            select = element.get("select")
            if select is None:
                raise _error(
                    ErrorTag.MISSING_ATTRIBUTE,
                    "an xpath filter needs a select attribute",
                    bad_element="filter",
                    info={"bad-attribute": "select"},
                )
            kwargs["select"] = select
            kwargs["namespaces"] = dict(element.nsmap)
            return kwargs
        raise _error(
            ErrorTag.BAD_ATTRIBUTE,
            f"unknown filter type {kind!r}",
            bad_element="filter",
            info={"bad-attribute": "type"},
        )

    @staticmethod
    def _option(params: _Params, name: str, default: str) -> str:
        element = params.get(name)
        return default if element is None else _text(element)

    # -- operations ----------------------------------------------------------------------------

    def _get(self, session_id: int, params: _Params) -> etree._Element:
        return self._readable(session_id, self.datastore.get(**self._filter(params)))

    def _get_config(self, session_id: int, params: _Params) -> etree._Element:
        source = self._datastore_name(params, "source")
        return self._readable(session_id, self.datastore.get_config(source, **self._filter(params)))

    def _readable(self, session_id: int, data: etree._Element) -> etree._Element:
        if self.nacm is not None:
            self.nacm.prune(self._principals.get(session_id), data)
        return data

    def _edit_config(self, session_id: int, params: _Params) -> None:
        target = self._datastore_name(params, "target")
        config = params.get("config")
        if config is None:
            if "url" in params:
                raise _error(
                    ErrorTag.OPERATION_NOT_SUPPORTED,
                    "the :url capability is not supported",
                    bad_element="url",
                )
            raise _error(
                ErrorTag.MISSING_ELEMENT, "parameter 'config' is missing", bad_element="config"
            )
        if "url" in params:
            raise _error(
                ErrorTag.BAD_ELEMENT, "give either config or url, not both", bad_element="url"
            )
        default_operation = self._option(params, "default-operation", "merge")
        error_option = self._option(params, "error-option", "stop-on-error")
        if self.nacm is not None and target in ("running", "candidate"):
            new = self.nacm.simulate_edit(
                self.datastore.read(target), config, default_operation, error_option
            )
            self._authorize_write(session_id, "edit-config", target, new)
        if self._validators and target in ("running", "candidate"):
            self._precheck(target, self._simulate(target, config, default_operation))
        self.datastore.edit_config(
            target,
            config,
            default_operation=default_operation,
            error_option=error_option,
            test_option=self._option(params, "test-option", "test-then-set"),
            session_id=session_id,
        )

    def _simulate(
        self, target: str, config: etree._Element, default_operation: str
    ) -> etree._Element | None:
        """The tree an edit-config would leave (None: it fails; the datastore will say why)."""
        edit = Edit(self.datastore.read(target), self.datastore.list_keys)
        try:
            edit.run(config, default_operation)
        except (EditFailed, RpcError):
            return None
        return edit.root

    def _copy_config(self, session_id: int, params: _Params) -> None:
        target = self._datastore_name(params, "target")
        source = self._source(params)
        wd = params.get("with-defaults")
        if wd is not None:  # checked; only a URL target would use it
            check_mode(_text(wd))
        if self.nacm is not None and target in ("running", "candidate", "startup"):
            if isinstance(source, str):
                new = self.datastore.read(source) if source in ("running", "candidate") else None
            else:
                new = inline_config(source)
            self._authorize_write(session_id, "copy-config", target, new)
        if self._validators and target in ("running", "candidate"):
            if isinstance(source, str):
                self._precheck(target, self.datastore.read(source))
            else:
                self._precheck(target, inline_config(source))
        self.datastore.copy_config(target, source, session_id=session_id)

    def _delete_config(self, session_id: int, params: _Params) -> None:
        self.datastore.delete_config(self._datastore_name(params, "target"), session_id=session_id)

    def _lock(self, session_id: int, params: _Params) -> None:
        self.datastore.lock(self._datastore_name(params, "target"), session_id)

    def _unlock(self, session_id: int, params: _Params) -> None:
        self.datastore.unlock(self._datastore_name(params, "target"), session_id)

    def _commit(self, session_id: int, params: _Params) -> None:
        confirmed = "confirmed" in params
        for name in ("confirm-timeout", "persist"):
            if name in params and not confirmed:
                raise _error(
                    ErrorTag.MISSING_ELEMENT,
                    f"{name} needs confirmed",
                    bad_element="confirmed",
                )
        kwargs: dict[str, Any] = {}
        if "confirm-timeout" in params:
            text = _text(params["confirm-timeout"])
            timeout = int(text) if text.isdigit() else 0
            if not 1 <= timeout <= _MAX_TIMEOUT:
                raise _error(
                    ErrorTag.INVALID_VALUE,
                    f"confirm-timeout must be a whole number of seconds from 1, not {text!r}",
                    bad_element="confirm-timeout",
                )
            kwargs["confirm_timeout"] = float(timeout)
        if "persist" in params:
            kwargs["persist"] = _text(params["persist"])
        if "persist-id" in params:
            kwargs["persist_id"] = _text(params["persist-id"])
        if self.nacm is not None and self.datastore.candidate_modified:
            self._authorize_write(session_id, "commit", "running", self.datastore.read("candidate"))
        if self.datastore.candidate_modified:
            self._precheck("running", self.datastore.read("candidate"))
        self.datastore.commit(session_id=session_id, confirmed=confirmed, **kwargs)

    def _discard_changes(self, session_id: int, params: _Params) -> None:
        self.datastore.discard_changes(session_id=session_id)

    def _cancel_commit(self, session_id: int, params: _Params) -> None:
        element = params.get("persist-id")
        persist_id = None if element is None else _text(element)
        self.datastore.cancel_commit(session_id=session_id, persist_id=persist_id)

    def _validate(self, session_id: int, params: _Params) -> None:
        self.datastore.validate(self._source(params))

    def _close_session(self, session_id: int, params: _Params) -> None:
        self.close_session(session_id, "closed")

    def _kill_session(self, session_id: int, params: _Params) -> None:
        text = _text(self._required(params, "session-id"))
        try:
            victim = int(text)
        except ValueError:
            victim = -1
        if victim == session_id:
            raise _error(
                ErrorTag.INVALID_VALUE,
                "a session cannot kill itself; use close-session",
                bad_element="session-id",
            )
        on_kill = self._sessions.pop(victim, None) if victim > 0 else None
        if on_kill is None:
            raise _error(
                ErrorTag.INVALID_VALUE, f"no session with id {text!r}", bad_element="session-id"
            )
        self.datastore.release_session(victim)
        if self.notifications is not None:
            self.notifications.detach(victim, "killed", killed_by=session_id)
        try:
            on_kill()
        except Exception:
            log.exception("ending killed session %d failed", victim)
