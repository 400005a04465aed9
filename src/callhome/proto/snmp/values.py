"""SNMP values and variable bindings, independent of the BER codec (RFC 2578, RFC 3416).

A :class:`Value` is a type tag and a Python value; :func:`to_asn1` and :func:`from_asn1`
convert to and from pysnmp's SMIv2 classes, which do the BER encoding.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from pyasn1.type import univ
from pysnmp.proto import rfc1902, rfc1905

from callhome.errors import LocalProtocolError, RemoteProtocolError

Oid = tuple[int, ...]

_MAX_SUBID = 2**32 - 1


class ValueType(enum.StrEnum):
    """The SMIv2 syntaxes a variable binding may carry, and the three exceptions."""

    INTEGER = "Integer32"
    OCTET_STRING = "OctetString"
    OBJECT_IDENTIFIER = "ObjectIdentifier"
    IP_ADDRESS = "IpAddress"
    COUNTER32 = "Counter32"
    GAUGE32 = "Gauge32"
    TIMETICKS = "TimeTicks"
    OPAQUE = "Opaque"
    COUNTER64 = "Counter64"
    NULL = "Null"
    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"
    END_OF_MIB_VIEW = "endOfMibView"

    @property
    def is_exception(self) -> bool:
        return self in _EXCEPTIONS


_EXCEPTIONS = frozenset(
    {ValueType.NO_SUCH_OBJECT, ValueType.NO_SUCH_INSTANCE, ValueType.END_OF_MIB_VIEW}
)
_INTEGER_RANGES: dict[ValueType, tuple[int, int]] = {
    ValueType.INTEGER: (-(2**31), 2**31 - 1),
    ValueType.COUNTER32: (0, 2**32 - 1),
    ValueType.GAUGE32: (0, 2**32 - 1),
    ValueType.TIMETICKS: (0, 2**32 - 1),
    ValueType.COUNTER64: (0, 2**64 - 1),
}
_OCTETS = frozenset({ValueType.OCTET_STRING, ValueType.IP_ADDRESS, ValueType.OPAQUE})


@dataclass(frozen=True)
class Value:
    """One typed value: ``int`` for the integer syntaxes, ``bytes`` for OctetString,
    IpAddress and Opaque, an ``Oid`` for ObjectIdentifier, None for Null and exceptions."""

    type: ValueType
    value: int | bytes | Oid | None = None

    def __post_init__(self) -> None:
        t, v = self.type, self.value
        if t in _INTEGER_RANGES:
            low, high = _INTEGER_RANGES[t]
            if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
                raise LocalProtocolError(f"{t.value} needs an integer in {low}..{high}, not {v!r}")
        elif t in _OCTETS:
            if not isinstance(v, bytes):
                raise LocalProtocolError(f"{t.value} needs bytes, not {type(v).__name__}")
            if t is ValueType.IP_ADDRESS and len(v) != 4:
                raise LocalProtocolError("IpAddress needs exactly 4 octets")
        elif t is ValueType.OBJECT_IDENTIFIER:
            if not isinstance(v, tuple):
                raise LocalProtocolError("ObjectIdentifier needs a tuple of integers")
            check_oid(v)
        elif v is not None:
            raise LocalProtocolError(f"{t.value} carries no value")

    # -- constructors ----------------------------------------------------------------------
    @classmethod
    def integer(cls, value: int) -> Value:
        return cls(ValueType.INTEGER, value)

    @classmethod
    def octets(cls, value: bytes | str) -> Value:
        return cls(ValueType.OCTET_STRING, value.encode() if isinstance(value, str) else value)

    @classmethod
    def oid(cls, value: Oid | str) -> Value:
        return cls(
            ValueType.OBJECT_IDENTIFIER, parse_oid(value) if isinstance(value, str) else value
        )

    @classmethod
    def null(cls) -> Value:
        return cls(ValueType.NULL)

    def __str__(self) -> str:
        v = self.value
        if isinstance(v, bytes):
            if self.type is ValueType.IP_ADDRESS:
                return ".".join(str(b) for b in v)
            return v.hex() if not _printable(v) else v.decode()
        if isinstance(v, tuple):
            return format_oid(v)
        return self.type.value if v is None else str(v)


@dataclass(frozen=True)
class VarBind:
    """A variable binding: an object instance name and its value."""

    oid: Oid
    value: Value = Value(ValueType.NULL)


def _printable(data: bytes) -> bool:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def check_oid(oid: Oid) -> Oid:
    """``oid`` if it is a valid OBJECT IDENTIFIER value; LocalProtocolError if not."""
    if len(oid) < 2 or len(oid) > 128:
        raise LocalProtocolError("an OID has 2 to 128 sub-identifiers")
    if oid[0] not in (0, 1, 2) or (oid[0] < 2 and oid[1] > 39):
        raise LocalProtocolError(f"bad OID start {oid[0]}.{oid[1]}")
    if any(not isinstance(s, int) or s < 0 or s > _MAX_SUBID for s in oid):
        raise LocalProtocolError("OID sub-identifiers are integers in 0..4294967295")
    return oid


def parse_oid(text: str) -> Oid:
    """A numeric OID from '1.3.6.1.2.1.1.1.0' (a leading dot is allowed)."""
    parts = text.strip().lstrip(".").split(".")
    try:
        oid = tuple(int(p) for p in parts)
    except ValueError:
        raise LocalProtocolError(f"not a numeric OID: {text!r}") from None
    return check_oid(oid)


def format_oid(oid: Oid) -> str:
    return ".".join(str(s) for s in oid)


# -- pyasn1 conversion ------------------------------------------------------------------------

_TO_ASN1: dict[ValueType, Any] = {
    ValueType.INTEGER: rfc1902.Integer32,
    ValueType.OCTET_STRING: rfc1902.OctetString,
    ValueType.OBJECT_IDENTIFIER: rfc1902.ObjectIdentifier,
    ValueType.IP_ADDRESS: rfc1902.IpAddress,
    ValueType.COUNTER32: rfc1902.Counter32,
    ValueType.GAUGE32: rfc1902.Gauge32,
    ValueType.TIMETICKS: rfc1902.TimeTicks,
    ValueType.OPAQUE: rfc1902.Opaque,
    ValueType.COUNTER64: rfc1902.Counter64,
}
_EXCEPTION_ASN1: dict[ValueType, Any] = {
    ValueType.NULL: rfc1902.Null(""),
    ValueType.NO_SUCH_OBJECT: rfc1905.noSuchObject,
    ValueType.NO_SUCH_INSTANCE: rfc1905.noSuchInstance,
    ValueType.END_OF_MIB_VIEW: rfc1905.endOfMibView,
}
# Tag sets of what may arrive, most specific first (Gauge32 and Unsigned32 share a tag).
_FROM_ASN1: list[tuple[Any, ValueType]] = [
    (rfc1905.NoSuchObject.tagSet, ValueType.NO_SUCH_OBJECT),
    (rfc1905.NoSuchInstance.tagSet, ValueType.NO_SUCH_INSTANCE),
    (rfc1905.EndOfMibView.tagSet, ValueType.END_OF_MIB_VIEW),
    (univ.Null.tagSet, ValueType.NULL),
    (rfc1902.IpAddress.tagSet, ValueType.IP_ADDRESS),
    (rfc1902.Counter32.tagSet, ValueType.COUNTER32),
    (rfc1902.Gauge32.tagSet, ValueType.GAUGE32),
    (rfc1902.TimeTicks.tagSet, ValueType.TIMETICKS),
    (rfc1902.Opaque.tagSet, ValueType.OPAQUE),
    (rfc1902.Counter64.tagSet, ValueType.COUNTER64),
    (univ.Integer.tagSet, ValueType.INTEGER),
    (univ.OctetString.tagSet, ValueType.OCTET_STRING),
    (univ.ObjectIdentifier.tagSet, ValueType.OBJECT_IDENTIFIER),
]


def to_asn1(value: Value) -> Any:
    if value.type in _EXCEPTION_ASN1:
        return _EXCEPTION_ASN1[value.type]
    return _TO_ASN1[value.type](value.value)


def from_asn1(obj: Any) -> Value:
    """A decoded varbind value as a Value; RemoteProtocolError for anything else."""
    tag_set = obj.tagSet
    for candidate, vtype in _FROM_ASN1:
        if tag_set == candidate:
            try:
                if vtype in _EXCEPTION_ASN1:
                    return Value(vtype)
                if vtype in _OCTETS:
                    return Value(vtype, bytes(obj.asOctets()))
                if vtype is ValueType.OBJECT_IDENTIFIER:
                    return Value(vtype, tuple(int(s) for s in obj))
                return Value(vtype, int(obj))
            except LocalProtocolError as exc:
                raise RemoteProtocolError(f"bad {vtype.value} value: {exc}") from None
    raise RemoteProtocolError(f"unexpected value syntax {type(obj).__name__}")
