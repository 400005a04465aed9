"""The NETCONF operations of one agent, shared by all its sessions (RFC 6241 section 7).

``NetconfService.handle`` takes the operation element (the child of ``<rpc>``) and returns
None for an ``<ok/>`` reply or a ``<data>`` element for get and get-config; it raises
``RpcError`` for an ``<rpc-error>`` reply. The caller owns framing, ``<rpc-reply>`` wrapping
and the transport.

close-session: ``handle`` releases the session's locks, forgets the session and returns None.
The caller sends ``<ok/>`` and then closes the transport; ``NetconfService.wants_close`` tells
it which operations are close-session. ``close_session`` is idempotent, so the caller may call
it again when the transport ends.

kill-session: the victim's locks are released, it is forgotten and the ``on_kill`` callback
given to ``open_session`` is called; that callback closes the victim's transport.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Final

from lxml import etree

from callhome.agent.datastore import NETCONF_BASE_NS, Datastore
from callhome.errors import ErrorTag, ErrorType, LocalProtocolError, RpcError

__all__ = ["BASE_CAPABILITIES", "NetconfService"]

log = logging.getLogger(__name__)

BASE_CAPABILITIES: Final = (
    "urn:ietf:params:netconf:base:1.0",
    "urn:ietf:params:netconf:base:1.1",
    "urn:ietf:params:netconf:capability:writable-running:1.0",
    "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
)
"""What this service implements; the :xpath, :validate, :candidate, :startup and :url
capabilities are not among them."""

_CLOSE_SESSION_TAG: Final = f"{{{NETCONF_BASE_NS}}}close-session"

_Handler = Callable[[int, dict[str, etree._Element]], etree._Element | None]


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


class NetconfService:
    """Dispatches NETCONF operations to a ``Datastore`` and keeps the agent's sessions."""

    def __init__(self, datastore: Datastore, *, extra_capabilities: Sequence[str] = ()) -> None:
        self.datastore = datastore
        self.capabilities: list[str] = list(BASE_CAPABILITIES)
        for capability in extra_capabilities:
            if capability not in self.capabilities:
                self.capabilities.append(capability)
        self._sessions: dict[int, Callable[[], None]] = {}
        self._next_session_id = 1
        # operation name -> (handler, parameters it accepts)
        self._operations: dict[str, tuple[_Handler, frozenset[str]]] = {
            "get": (self._get, frozenset({"filter"})),
            "get-config": (self._get_config, frozenset({"source", "filter"})),
            "edit-config": (
                self._edit_config,
                frozenset(
                    {
                        "target",
                        "default-operation",
                        "test-option",
                        "error-option",
                        "config",
                        "url",
                    }
                ),
            ),
            "lock": (self._lock, frozenset({"target"})),
            "unlock": (self._unlock, frozenset({"target"})),
            "close-session": (self._close_session, frozenset()),
            "kill-session": (self._kill_session, frozenset({"session-id"})),
        }

    # -- sessions ------------------------------------------------------------------------------

    def open_session(self, on_kill: Callable[[], None]) -> int:
        """Register a new session; returns its id (1, 2, 3 ...). ``on_kill`` ends its transport."""
        session_id = self._next_session_id
        self._next_session_id += 1
        self._sessions[session_id] = on_kill
        return session_id

    def close_session(self, session_id: int) -> None:
        """Forget a session that ended and release its locks (idempotent)."""
        self._sessions.pop(session_id, None)
        self.datastore.release_session(session_id)

    @property
    def session_ids(self) -> list[int]:
        """Ids of the sessions open now."""
        return list(self._sessions)

    @staticmethod
    def wants_close(operation: etree._Element) -> bool:
        """True when ``operation`` is close-session: after replying, close the transport."""
        return operation.tag == _CLOSE_SESSION_TAG

    # -- dispatch ------------------------------------------------------------------------------

    def handle(self, session_id: int, operation: etree._Element) -> etree._Element | None:
        """Carry out one operation for ``session_id``.

        Returns None for ``<ok/>`` or a ``<data>`` element; raises RpcError otherwise.
        """
        if session_id not in self._sessions:
            raise LocalProtocolError(f"session {session_id} is not open")
        tag = operation.tag if isinstance(operation.tag, str) else ""
        name = _local(tag)
        entry = self._operations.get(name) if tag.startswith(f"{{{NETCONF_BASE_NS}}}") else None
        if entry is None:
            raise _error(
                ErrorTag.OPERATION_NOT_SUPPORTED,
                f"operation {name!r} is not supported",
                bad_element=name,
            )
        handler, accepted = entry
        return handler(session_id, self._parameters(operation, accepted))

    @staticmethod
    def _parameters(
        operation: etree._Element, accepted: frozenset[str]
    ) -> dict[str, etree._Element]:
        params: dict[str, etree._Element] = {}
        for child in _child_elements(operation):
            name = _local(child.tag)
            if not child.tag.startswith(f"{{{NETCONF_BASE_NS}}}"):
                raise _error(
                    ErrorTag.UNKNOWN_NAMESPACE,
                    f"parameter {name!r} is not in the NETCONF base namespace",
                    bad_element=name,
                    info={"bad-namespace": child.tag[1:].partition("}")[0]},
                )
            if name not in accepted:
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
    def _required(params: dict[str, etree._Element], name: str) -> etree._Element:
        element = params.get(name)
        if element is None:
            raise _error(
                ErrorTag.MISSING_ELEMENT, f"parameter {name!r} is missing", bad_element=name
            )
        return element

    def _datastore_name(self, params: dict[str, etree._Element], name: str) -> str:
        """The datastore named in ``<source>``/``<target>``, e.g. ``<target><running/>``."""
        choices = _child_elements(self._required(params, name))
        if not choices:
            raise _error(ErrorTag.MISSING_ELEMENT, f"{name} names no datastore", bad_element=name)
        if len(choices) > 1:
            raise _error(
                ErrorTag.BAD_ELEMENT, f"{name} names more than one datastore", bad_element=name
            )
        choice = choices[0]
        local = _local(choice.tag)
        if choice.tag == f"{{{NETCONF_BASE_NS}}}url":
            raise _error(
                ErrorTag.OPERATION_NOT_SUPPORTED,
                "the :url capability is not supported",
                bad_element=name,
            )
        if not choice.tag.startswith(f"{{{NETCONF_BASE_NS}}}") or local == "config":
            raise _error(ErrorTag.INVALID_VALUE, f"{name} {local!r} is invalid", bad_element=name)
        return local

    @staticmethod
    def _filter(params: dict[str, etree._Element]) -> etree._Element | None:
        element = params.get("filter")
        if element is None:
            return None
        kind = element.get("type", "subtree")
        if kind == "subtree":
            return element
        info = {"bad-attribute": "type"}
        if kind == "xpath":
            raise _error(
                ErrorTag.OPERATION_NOT_SUPPORTED,
                "xpath filters are not supported (no :xpath capability)",
                bad_element="filter",
                info=info,
            )
        raise _error(
            ErrorTag.BAD_ATTRIBUTE,
            f"unknown filter type {kind!r}",
            bad_element="filter",
            info=info,
        )

    @staticmethod
    def _option(params: dict[str, etree._Element], name: str, default: str) -> str:
        element = params.get(name)
        return default if element is None else _text(element)

    # -- operations ----------------------------------------------------------------------------

    def _get(self, session_id: int, params: dict[str, etree._Element]) -> etree._Element:
        return self.datastore.get(self._filter(params))

    def _get_config(self, session_id: int, params: dict[str, etree._Element]) -> etree._Element:
        source = self._datastore_name(params, "source")
        return self.datastore.get_config(source, self._filter(params))

    def _edit_config(self, session_id: int, params: dict[str, etree._Element]) -> None:
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
        self.datastore.edit_config(
            target,
            config,
            default_operation=self._option(params, "default-operation", "merge"),
            error_option=self._option(params, "error-option", "stop-on-error"),
            test_option=self._option(params, "test-option", "test-then-set"),
            session_id=session_id,
        )

    def _lock(self, session_id: int, params: dict[str, etree._Element]) -> None:
        self.datastore.lock(self._datastore_name(params, "target"), session_id)

    def _unlock(self, session_id: int, params: dict[str, etree._Element]) -> None:
        self.datastore.unlock(self._datastore_name(params, "target"), session_id)

    def _close_session(self, session_id: int, params: dict[str, etree._Element]) -> None:
        self.close_session(session_id)

    def _kill_session(self, session_id: int, params: dict[str, etree._Element]) -> None:
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
        try:
            on_kill()
        except Exception:
            log.exception("ending killed session %d failed", victim)
