"""BER encoding and decoding of SNMPv3/TSM messages, with pyasn1 doing the BER.

The message structure is pysnmp's (``SNMPv3Message`` and the RFC 1905 PDUs, constraints
included), used as schema objects built once at import, never instantiated per message:

- **encoding**: pyasn1's encoder is given plain Python values (dicts, ints, bytes) and the
  schema (``encoder.encode(value, asn1Spec=...)``, pyasn1's native-value mode), so no
  pyasn1 object is built or checked per field. The variable bindings are the one part
  encoded apart: each name and value by the pyasn1 item encoder of its SMIv2 type (an
  ``Integer32``, ``Counter64`` ... spec), joined into the bindings' SEQUENCEs with pyasn1's
  own length octets, and handed to the message schema as an open (``ANY``) value. Object
  names repeat their prefix from one binding to the next (a table column), so the pyasn1
  encoding of a name's prefix and of its last arc are kept in small caches.
- **decoding**: pyasn1's decoder reads the message with the same schema, the variable
  bindings left as an open value; the bindings are then split into their SEQUENCEs (tag and
  length octets only) and each name and value is read by pyasn1's payload decoder for its
  type, asked for the plain Python value (``native=True``).

Anything outside the common shape (indefinite or over-long lengths, constructed strings,
unknown tags, values out of range, any fault at all) is handed to the reference codec
(:mod:`.reference`, the whole message as pysnmp objects), which reads odd but valid BER as
it always has and raises the same :class:`RemoteProtocolError` for what is malformed.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import namedtype, tag, univ
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message

from callhome.errors import LocalProtocolError
from callhome.proto.snmp import reference
from callhome.proto.snmp.messages import (
    MAX_INT32,
    SNMP_VERSION_3,
    ErrorStatus,
    Message,
    MsgFlags,
    Pdu,
    PduType,
)
from callhome.proto.snmp.values import Oid, Value, ValueType, VarBind, check_oid

__all__ = ["decode_message", "encode_message"]

# -- the schema, built once -------------------------------------------------------------------


def _with_component(spec: Any, name: str, component: Any) -> Any:
    """``spec`` (a SEQUENCE or CHOICE schema) with its component ``name`` replaced."""
    types = [
        namedtype.NamedType(nt.name, component(nt.asn1Object)) if nt.name == name else nt
        for nt in spec.componentType.namedTypes
    ]
    return spec.clone(componentType=namedtype.NamedTypes(*types))


def _open_varbinds(pdu: Any) -> Any:
    return _with_component(pdu, "variable-bindings", lambda _: univ.Any())


def _message_schema() -> Any:
    """pysnmp's SNMPv3Message, its PDUs' variable-bindings an open (ANY) value."""
    pdus = rfc1905.PDUs()
    for nt in list(pdus.componentType.namedTypes):
        pdus = _with_component(pdus, nt.name, _open_varbinds)
    message = SNMPv3Message()
    scoped_data = message.componentType["msgData"].asn1Object
    scoped = _with_component(
        scoped_data.componentType["plaintext"].asn1Object, "data", lambda _: pdus
    )
    scoped_data = _with_component(scoped_data, "plaintext", lambda _: scoped)
    return _with_component(message, "msgData", lambda _: scoped_data)


_MESSAGE = _message_schema()

_VALUE_SPECS: dict[ValueType, Any] = {
    ValueType.INTEGER: rfc1902.Integer32(),
    ValueType.OCTET_STRING: rfc1902.OctetString(),
    ValueType.OBJECT_IDENTIFIER: rfc1902.ObjectIdentifier(),
    ValueType.IP_ADDRESS: rfc1902.IpAddress(),
    ValueType.COUNTER32: rfc1902.Counter32(),
    ValueType.GAUGE32: rfc1902.Gauge32(),
    ValueType.TIMETICKS: rfc1902.TimeTicks(),
    ValueType.OPAQUE: rfc1902.Opaque(),
    ValueType.COUNTER64: rfc1902.Counter64(),
    ValueType.NULL: rfc1902.Null(""),
    ValueType.NO_SUCH_OBJECT: rfc1905.noSuchObject,
    ValueType.NO_SUCH_INSTANCE: rfc1905.noSuchInstance,
    ValueType.END_OF_MIB_VIEW: rfc1905.endOfMibView,
}
_NO_VALUE = frozenset(
    {
        ValueType.NULL,
        ValueType.NO_SUCH_OBJECT,
        ValueType.NO_SUCH_INSTANCE,
        ValueType.END_OF_MIB_VIEW,
    }
)
_OCTETS_MAX = 65535
"""The size constraint of SMIv2's OCTET STRING, IpAddress aside."""


def _identifier_octet(spec: Any) -> int:
    """The one identifier octet of ``spec``'s (single, low-number) tag, as pyasn1 encodes it."""
    (only,) = spec.tagSet.superTags
    octets = encoder.OctetStringEncoder().encodeTag(only, False)
    assert len(octets) == 1  # every SMIv2 tag number is below 31
    return int(octets[0])


def _universal(spec: Any) -> Any:
    base = spec.tagSet.baseTag
    return tag.TagSet(base, base)


# encoding: (pyasn1 item encoder, spec) per type; the no-value types are constant octets
_ITEM_ENCODERS: dict[ValueType, tuple[Any, Any]] = {
    t: (encoder.TAG_MAP[_universal(spec)], spec)
    for t, spec in _VALUE_SPECS.items()
    if t not in _NO_VALUE
}
_CONSTANT_VALUES: dict[ValueType, bytes] = {
    t: bytes(encoder.encode(_VALUE_SPECS[t])) for t in _NO_VALUE
}
# decoding: identifier octet -> (pyasn1 payload decoder, its tag set, the value type)
_PAYLOAD_DECODERS: dict[int, tuple[Any, Any, ValueType]] = {
    _identifier_octet(spec): (decoder.TAG_MAP[_universal(spec)], spec.tagSet, t)
    for t, spec in _VALUE_SPECS.items()
}
_OID_SPEC = rfc1902.ObjectName()
_OID_TAG = _identifier_octet(_OID_SPEC)
_OID_DECODER = decoder.TAG_MAP[_OID_SPEC.tagSet]
_OID_ENCODER = encoder.TAG_MAP[_OID_SPEC.tagSet]
_RELATIVE_OID_ENCODER = encoder.TAG_MAP[univ.RelativeOID.tagSet]
_SEQUENCE_TAG = _identifier_octet(rfc1905.VarBind())
_LENGTH = encoder.SequenceEncoder().encodeLength

# -- encoding ---------------------------------------------------------------------------------


_last_encoded: tuple[Message | None, bytes] = (None, b"")
"""The message last encoded and its bytes: an agent sizes a response (to fit the manager's
msgMaxSize) and then sends that same object. Messages are immutable, and the reference
held here keeps the identity from being reused."""


def encode_message(message: Message) -> bytes:
    """BER bytes of ``message``; LocalProtocolError if a field is out of range."""
    global _last_encoded
    last, encoded = _last_encoded
    if last is message:
        return encoded
    encoded = _encode_message(message)
    _last_encoded = (message, encoded)
    return encoded


def _encode_message(message: Message) -> bytes:
    if not 0 <= message.msg_id <= MAX_INT32:
        raise LocalProtocolError("msgID is 0..2147483647")
    if not 484 <= message.max_size <= MAX_INT32:
        raise LocalProtocolError("msgMaxSize is 484..2147483647")
    if not 3 <= message.security_model <= MAX_INT32:
        raise LocalProtocolError("msgSecurityModel is 3..2147483647")
    value = {
        "msgVersion": SNMP_VERSION_3,
        "msgGlobalData": {
            "msgID": message.msg_id,
            "msgMaxSize": message.max_size,
            "msgFlags": bytes([int(message.flags)]),
            "msgSecurityModel": message.security_model,
        },
        "msgSecurityParameters": message.security_parameters,
        "msgData": {
            "plaintext": {
                "contextEngineId": message.context_engine_id,
                "contextName": message.context_name,
                "data": {message.pdu.type.value: _pdu_value(message.pdu)},
            }
        },
    }
    try:
        return bytes(encoder.encode(value, asn1Spec=_MESSAGE))
    except PyAsn1Error as exc:
        raise LocalProtocolError(f"cannot encode SNMP message: {reference.short(exc)}") from None


def _pdu_value(pdu: Pdu) -> dict[str, object]:
    if not -(2**31) <= pdu.request_id <= MAX_INT32:
        raise LocalProtocolError("request-id is a 32-bit signed integer")
    varbinds = encode_varbinds(pdu.varbinds)
    if pdu.type is PduType.GETBULK:
        if not 0 <= pdu.non_repeaters <= MAX_INT32 or not 0 <= pdu.max_repetitions <= MAX_INT32:
            raise LocalProtocolError("non-repeaters and max-repetitions are 0..2147483647")
        return {
            "request-id": pdu.request_id,
            "non-repeaters": pdu.non_repeaters,
            "max-repetitions": pdu.max_repetitions,
            "variable-bindings": varbinds,
        }
    if not 0 <= pdu.error_index <= MAX_INT32:
        raise LocalProtocolError("error-index is 0..2147483647")
    return {
        "request-id": pdu.request_id,
        "error-status": int(ErrorStatus(pdu.error_status)),
        "error-index": pdu.error_index,
        "variable-bindings": varbinds,
    }


def _tlv(identifier: bytes, content: bytes) -> bytes:
    return identifier + bytes(_LENGTH(len(content), True)) + content


_SEQUENCE = bytes([_SEQUENCE_TAG])
_OID = bytes([_OID_TAG])


def encode_varbinds(varbinds: tuple[VarBind, ...] | list[VarBind]) -> bytes:
    """The BER encoding of a VarBindList (RFC 3416), each name and value by pyasn1."""
    parts = []
    for vb in varbinds:
        value = vb.value
        if value.type in _NO_VALUE:
            encoded = _CONSTANT_VALUES[value.type]
        elif value.type is ValueType.OBJECT_IDENTIFIER:
            encoded = encode_oid(value.value)  # type: ignore[arg-type]
        else:
            item, spec = _ITEM_ENCODERS[value.type]
            encoded = item.encode(value.value, spec)
        parts.append(_tlv(_SEQUENCE, encode_oid(vb.oid) + encoded))
    return _tlv(_SEQUENCE, b"".join(parts))


_CACHE_SIZE = 4096
_oid_cache: dict[Oid, bytes] = {}
_prefix_cache: dict[Oid, bytes] = {}
_arc_cache: dict[int, bytes] = {}


def encode_oid(oid: Oid) -> bytes:
    """The BER encoding of an OBJECT IDENTIFIER (checked first), by pyasn1, with caching.

    The contents octets of an OID are its first two arcs as one sub-identifier, then one
    sub-identifier per further arc (X.690 8.19), so for three arcs or more they are those
    of the OID without its last arc followed by those of the last arc alone as a
    RELATIVE-OID (X.690 8.20). pyasn1 makes both; the prefixes and arcs are cached.
    """
    encoded = _oid_cache.get(oid)
    if encoded is not None:
        return encoded
    check_oid(oid)
    if len(oid) < 3:
        content = bytes(_OID_ENCODER.encodeValue(univ.ObjectIdentifier(oid), None, None)[0])
    else:
        prefix, arc = oid[:-1], oid[-1]
        head = _prefix_cache.get(prefix)
        if head is None:
            head = bytes(_OID_ENCODER.encodeValue(univ.ObjectIdentifier(prefix), None, None)[0])
            _remember(_prefix_cache, prefix, head)
        tail = _arc_cache.get(arc)
        if tail is None:
            tail = bytes(_RELATIVE_OID_ENCODER.encodeValue(univ.RelativeOID((arc,)), None, None)[0])
            _remember(_arc_cache, arc, tail)
        content = head + tail
    encoded = _tlv(_OID, content)
    _remember(_oid_cache, oid, encoded)
    return encoded


def _remember(cache: dict[Any, bytes], key: Any, value: bytes) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


# -- decoding ---------------------------------------------------------------------------------


class _Unusual(Exception):
    """The fast path does not read this; the reference codec will."""


def decode_message(data: bytes) -> Message:
    """Decode one whole BER-encoded SNMPv3 message; RemoteProtocolError on any fault.

    Checks the version (3) and the structure; what to do with a security model other than
    TSM is the caller's choice (``SnmpStream`` refuses it).
    """
    message: Message | None
    try:
        message = _decode(data)
    except Exception:  # anything unusual or wrong: the reference decides, and explains
        message = None
    if message is None:  # outside the handler: pysnmp words its errors with the one handled
        message = reference.decode_message(data)
    return message


def _decode(data: bytes) -> Message:
    msg, rest = decoder.decode(data, asn1Spec=_MESSAGE)
    if rest or int(msg["msgVersion"]) != SNMP_VERSION_3:
        raise _Unusual
    header = msg["msgGlobalData"]
    flags = header["msgFlags"].asOctets()[0]
    if flags & ~0x07 or (flags & MsgFlags.PRIV and not flags & MsgFlags.AUTH):
        raise _Unusual
    scoped_data = msg["msgData"]
    if scoped_data.getName() != "plaintext":
        raise _Unusual
    scoped = scoped_data["plaintext"]
    pdus = scoped["data"]
    pdu_type = PduType(pdus.getName())
    p = pdus.getComponent()
    varbinds = decode_varbinds(p["variable-bindings"].asOctets())
    if pdu_type is PduType.GETBULK:
        pdu = Pdu(
            pdu_type,
            int(p["request-id"]),
            varbinds,
            non_repeaters=int(p["non-repeaters"]),
            max_repetitions=int(p["max-repetitions"]),
        )
    else:
        pdu = Pdu(
            pdu_type,
            int(p["request-id"]),
            varbinds,
            error_status=ErrorStatus(int(p["error-status"])),
            error_index=int(p["error-index"]),
        )
    return Message(
        msg_id=int(header["msgID"]),
        max_size=int(header["msgMaxSize"]),
        flags=MsgFlags(flags),
        security_model=int(header["msgSecurityModel"]),
        security_parameters=bytes(msg["msgSecurityParameters"].asOctets()),
        context_engine_id=bytes(scoped["contextEngineId"].asOctets()),
        context_name=bytes(scoped["contextName"].asOctets()),
        pdu=pdu,
    )


def _header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(identifier octet, start, end) of the contents of the TLV at ``pos``: definite
    lengths of at most 4 octets only, and it must end by ``end``."""
    if pos + 2 > end:
        raise _Unusual
    identifier, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        count = first & 0x7F
        if not 0 < count <= 4 or pos + count > end:
            raise _Unusual
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        length = first
    if pos + length > end:
        raise _Unusual
    return identifier, pos, pos + length


def decode_varbinds(data: bytes) -> tuple[VarBind, ...]:
    """The bindings of a whole BER VarBindList; :class:`_Unusual` for anything but the
    common shape or a value out of range. Names and values are read by pyasn1."""
    identifier, pos, end = _header(data, 0, len(data))
    if identifier != _SEQUENCE_TAG or end != len(data):
        raise _Unusual
    stream = io.BytesIO(data)
    out = []
    while pos < end:
        identifier, start, stop = _header(data, pos, end)
        if identifier != _SEQUENCE_TAG:
            raise _Unusual
        identifier, name_start, name_end = _header(data, start, stop)
        if identifier != _OID_TAG:
            raise _Unusual
        name = _payload(_OID_DECODER, _OID_SPEC.tagSet, stream, name_start, name_end)
        identifier, value_start, value_end = _header(data, name_end, stop)
        if value_end != stop or identifier not in _PAYLOAD_DECODERS:
            raise _Unusual
        payload_decoder, tag_set, vtype = _PAYLOAD_DECODERS[identifier]
        raw = _payload(payload_decoder, tag_set, stream, value_start, value_end)
        out.append(VarBind(name, _value(vtype, raw)))
        pos = stop
    return tuple(out)


def _payload(payload_decoder: Any, tag_set: Any, stream: io.BytesIO, start: int, end: int) -> Any:
    """What pyasn1's payload decoder reads from ``start`` to ``end``, as a Python value."""
    stream.seek(start)
    return next(payload_decoder.valueDecoder(stream, None, tag_set, end - start, native=True))


def _octets(vtype: ValueType, raw: Any) -> Value:
    if len(raw) > _OCTETS_MAX:
        raise _Unusual
    return Value(vtype, bytes(raw))


_TO_VALUE: dict[ValueType, Callable[[ValueType, Any], Value]] = {
    ValueType.INTEGER: Value,
    ValueType.COUNTER32: Value,
    ValueType.GAUGE32: Value,
    ValueType.TIMETICKS: Value,
    ValueType.COUNTER64: Value,
    ValueType.OCTET_STRING: _octets,
    ValueType.IP_ADDRESS: _octets,
    ValueType.OPAQUE: _octets,
    ValueType.OBJECT_IDENTIFIER: lambda t, raw: Value(t, tuple(raw)),
    ValueType.NULL: lambda t, _: Value(t),
    ValueType.NO_SUCH_OBJECT: lambda t, _: Value(t),
    ValueType.NO_SUCH_INSTANCE: lambda t, _: Value(t),
    ValueType.END_OF_MIB_VIEW: lambda t, _: Value(t),
}


def _value(vtype: ValueType, raw: Any) -> Value:
    return _TO_VALUE[vtype](vtype, raw)
