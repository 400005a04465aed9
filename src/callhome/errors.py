"""One error tree for the whole of callhome.

::

    CallHomeError
    ├── ConfigError                 a configuration file or value is wrong
    ├── ProtocolError               a rule of a wire protocol was broken
    │   ├── LocalProtocolError      ... by us (a bug, or a misuse of a proto/ core)
    │   └── RemoteProtocolError     ... by the peer (malformed frame, bad XML, oversize message)
    ├── RpcError                    a NETCONF peer answered with one or more <rpc-error>s
    ├── SessionClosed               the connection to a device ended while we used it
    ├── DeviceError                 about a device as the registry knows it
    │   ├── UnknownDevice           no device has that name or fingerprint
    │   ├── DeviceOffline           the device is known but not connected now
    │   ├── IdentityMismatch        a name is bound to another key than the one presented
    │   └── ServiceRefused          the device does not allow that terminal, command or forward
    ├── StoreError                  the Store could not do what was asked
    │   ├── NotFound                the record does not exist
    │   └── Conflict                the change clashes with what is stored (a name in use ...)
    │       └── QueueFull           a device already has as many queued jobs as allowed
    └── AuthError                   a peer or an operator failed authentication or authorization

NETCONF wire codes (RFC 6241 appendix A) are enums here, apart from the classes, so that
an ``rpc-error`` keeps every field it was sent with.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class CallHomeError(Exception):
    """Root of every error raised by callhome."""


class ConfigError(CallHomeError):
    """A configuration file or value is wrong; the message names the key."""


class ProtocolError(CallHomeError):
    """A wire protocol rule was broken."""


class LocalProtocolError(ProtocolError):
    """We tried to break a protocol rule (a programming error on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer broke a protocol rule: the connection cannot be trusted further."""


class SessionClosed(CallHomeError):
    """The session to the peer ended while an operation was outstanding."""


class DeviceError(CallHomeError):
    """Something about a device as the registry knows it."""


class UnknownDevice(DeviceError):
    """No device is known by that name or fingerprint."""


class DeviceOffline(DeviceError):
    """The device is known but has no call-home connection now."""


class IdentityMismatch(DeviceError):
    """A device name is bound to a different key than the one presented."""


class ServiceRefused(DeviceError):
    """The device refused a terminal, command or forward to this manager (its access rules)."""


class StoreError(CallHomeError):
    """The Store could not carry out an operation."""


class NotFound(StoreError):
    """The record asked for does not exist."""


class Conflict(StoreError):
    """The change clashes with what is stored."""


class QueueFull(Conflict):
    """A device already has as many queued jobs as its limit allows; nothing was queued."""


class AuthError(CallHomeError):
    """Authentication or authorization failed."""


class ErrorType(enum.StrEnum):
    """The layer an rpc-error comes from (RFC 6241 section 4.3, error-type)."""

    TRANSPORT = "transport"
    RPC = "rpc"
    PROTOCOL = "protocol"
    APPLICATION = "application"


class ErrorTag(enum.StrEnum):
    """Every error-tag of RFC 6241 appendix A."""

    IN_USE = "in-use"
    INVALID_VALUE = "invalid-value"
    TOO_BIG = "too-big"
    MISSING_ATTRIBUTE = "missing-attribute"
    BAD_ATTRIBUTE = "bad-attribute"
    UNKNOWN_ATTRIBUTE = "unknown-attribute"
    MISSING_ELEMENT = "missing-element"
    BAD_ELEMENT = "bad-element"
    UNKNOWN_ELEMENT = "unknown-element"
    UNKNOWN_NAMESPACE = "unknown-namespace"
    ACCESS_DENIED = "access-denied"
    LOCK_DENIED = "lock-denied"
    RESOURCE_DENIED = "resource-denied"
    ROLLBACK_FAILED = "rollback-failed"
    DATA_EXISTS = "data-exists"
    DATA_MISSING = "data-missing"
    OPERATION_NOT_SUPPORTED = "operation-not-supported"
    OPERATION_FAILED = "operation-failed"
    PARTIAL_OPERATION = "partial-operation"
    MALFORMED_MESSAGE = "malformed-message"


class ErrorSeverity(enum.StrEnum):
    """error-severity of an rpc-error."""

    ERROR = "error"
    WARNING = "warning"


class ErrorPath(str):
    """An error-path (an XPath expression, e.g. ``/ex:system/ex:user[ex:name='fred']``) that
    carries the namespaces of its prefixes; given as an ``RpcErrorInfo``'s ``path``, they
    become its ``path_namespaces``."""

    namespaces: dict[str, str]

    def __new__(cls, text: str, namespaces: dict[str, str] | None = None) -> ErrorPath:
        path = super().__new__(cls, text)
        path.namespaces = dict(namespaces or {})
        return path


@dataclass(frozen=True)
class RpcErrorInfo:
    """One ``<rpc-error>`` with all its fields.

    ``info`` holds the serialized children of ``<error-info>`` (XML text, possibly empty);
    well-known ones (bad-element, session-id ...) are also kept parsed in ``info_items``.
    """

    type: ErrorType
    tag: ErrorTag
    severity: ErrorSeverity = ErrorSeverity.ERROR
    app_tag: str | None = None
    path: str | None = None
    message: str | None = None
    message_lang: str | None = None
    info: str = ""
    info_items: dict[str, str] = field(default_factory=dict)
    path_namespaces: dict[str, str] = field(default_factory=dict)
    """prefix -> namespace of the prefixes ``path`` uses, bound on the ``<error-path>``
    element (RFC 6241 section 4.3: the path's prefixes are those in scope there); taken from
    ``path`` when it is an ``ErrorPath``."""

    def __post_init__(self) -> None:
        if isinstance(self.path, ErrorPath):
            if not self.path_namespaces:
                object.__setattr__(self, "path_namespaces", dict(self.path.namespaces))
            object.__setattr__(self, "path", str(self.path))

    def to_json(self) -> dict[str, Any]:
        """Every field, as JSON values (enums as their wire text): how jobs store an
        rpc-error and the API shows one."""
        return {
            "type": self.type.value,
            "tag": self.tag.value,
            "severity": self.severity.value,
            "app_tag": self.app_tag,
            "path": self.path,
            "path_namespaces": dict(self.path_namespaces),
            "message": self.message,
            "message_lang": self.message_lang,
            "info": self.info,
            "info_items": dict(self.info_items),
        }

    def describe(self) -> str:
        """A one-line human description, e.g. for the CLI."""
        text = f"{self.type.value}/{self.tag.value}"
        if self.app_tag:
            text += f" ({self.app_tag})"
        if self.message:
            text += f": {self.message}"
        if self.path:
            text += f" at {self.path}"
        for key, value in self.info_items.items():
            text += f" [{key}={value}]"
        return text


class RpcError(CallHomeError):
    """A NETCONF ``<rpc-reply>`` carried one or more ``<rpc-error>`` (severity error).

    Raised by a device's NETCONF service to answer with an error, and by the manager's
    client when the device answered with one. ``reply_xml`` is the whole reply, when known.
    """

    def __init__(self, errors: list[RpcErrorInfo], reply_xml: str | None = None) -> None:
        if not errors:
            raise ValueError("RpcError needs at least one RpcErrorInfo")
        self.errors = errors
        self.reply_xml = reply_xml
        super().__init__("; ".join(e.describe() for e in errors))

    @classmethod
    def single(
        cls,
        tag: ErrorTag,
        message: str | None = None,
        *,
        type: ErrorType = ErrorType.APPLICATION,
        path: str | None = None,
        info: dict[str, str] | None = None,
        app_tag: str | None = None,
    ) -> RpcError:
        """Shorthand for the common case of one error."""
        items = dict(info or {})
        info_xml = "".join(f"<{k}>{_escape(v)}</{k}>" for k, v in items.items())
        return cls(
            [
                RpcErrorInfo(
                    type=type,
                    tag=tag,
                    message=message,
                    path=path,
                    info=info_xml,
                    info_items=items,
                    app_tag=app_tag,
                )
            ]
        )

    @property
    def first(self) -> RpcErrorInfo:
        return self.errors[0]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
