"""Events the NETCONF cores hand to their driver (see :mod:`callhome.proto.netconf.session`)."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from callhome.errors import ErrorSeverity, RpcError, RpcErrorInfo
from callhome.proto.netconf.xmltools import NS_NOTIF

__all__ = [
    "BadRpc",
    "Event",
    "HelloReceived",
    "Notification",
    "RpcReply",
    "RpcRequest",
    "SessionEnded",
]

_EVENT_TIME = f"{{{NS_NOTIF}}}eventTime"


@dataclass(frozen=True)
class HelloReceived:
    """The peer's ``<hello>``: its capabilities and, from a server, the session-id."""

    capabilities: tuple[str, ...]
    session_id: int | None


@dataclass(frozen=True)
class RpcRequest:
    """Server side: a well-formed ``<rpc>`` to carry out and answer.

    ``operation`` is the single child of ``rpc``; pass ``rpc`` to the reply methods so the
    reply echoes its attributes.
    """

    message_id: str
    operation: etree._Element
    rpc: etree._Element


@dataclass(frozen=True)
class BadRpc:
    """Server side: a message that is not a usable ``<rpc>``; answer it with ``error``.

    ``message_id`` is ``None`` when the message had none (or could not be read); ``rpc`` is
    the root element when the message was well-formed XML.
    """

    message_id: str | None
    error: RpcErrorInfo
    rpc: etree._Element | None = None


@dataclass(frozen=True)
class RpcReply:
    """Client side: the ``<rpc-reply>`` to one of our rpcs.

    ``ok`` is true when the rpc succeeded: the reply holds no rpc-error of severity error
    (it holds ``<ok/>``, ``<data>`` or rpc output, and perhaps warnings).
    ``data`` is the ``<data>`` child if any (replies of YANG-defined rpcs carry their output
    directly in ``element``). ``errors`` holds every ``<rpc-error>``, warnings included.
    ``xml`` is the message exactly as received.
    """

    message_id: str
    ok: bool
    data: etree._Element | None
    errors: list[RpcErrorInfo]
    element: etree._Element
    xml: bytes

    @property
    def failed(self) -> list[RpcErrorInfo]:
        """The rpc-errors of severity error (warnings left out)."""
        return [e for e in self.errors if e.severity is ErrorSeverity.ERROR]

    def raise_for_error(self) -> None:
        """Raise :class:`RpcError` if the reply carries an rpc-error of severity error."""
        failed = self.failed
        if failed:
            raise RpcError(failed, self.xml.decode("utf-8", errors="replace"))


@dataclass(frozen=True)
class Notification:
    """Client side: a ``<notification>`` (RFC 5277); ``element`` is the whole message."""

    event_time: str
    element: etree._Element

    @property
    def content(self) -> list[etree._Element]:
        """The children of ``<notification>`` other than ``<eventTime>``."""
        return [
            child
            for child in self.element
            if isinstance(child.tag, str) and child.tag != _EVENT_TIME
        ]


@dataclass(frozen=True)
class SessionEnded:
    """The peer closed the connection (after everything it sent was handed out)."""

    reason: str


Event = HelloReceived | RpcRequest | BadRpc | RpcReply | Notification | SessionEnded
"""Every event a core may return from ``next_event()``."""
