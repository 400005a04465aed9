"""The straightforward SNMPv3/TSM codec: pysnmp's message classes, filled in field by field.

This is the codec as it first was (``SNMPv3Message`` and the RFC 1905 PDUs built as pyasn1
objects, then pyasn1's BER encoder and decoder on the whole tree). :mod:`.codec` is the one
in use; it gives the same bytes and the same :class:`Message` values, faster. This module
stays as the reference the tests compare :mod:`.codec` against, as the baseline of
``bench/bench_snmp_codec.py``, and as the decoder :mod:`.codec` falls back on for input
outside the usual shape, so that odd but valid BER reads as it always did and malformed
input fails with the same errors.
"""

from __future__ import annotations

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import rfc1905
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message

from callhome.errors import LocalProtocolError, RemoteProtocolError
from callhome.proto.snmp.messages import (
    MAX_INT32,
    SNMP_VERSION_3,
    ErrorStatus,
    Message,
    MsgFlags,
    Pdu,
    PduType,
)
from callhome.proto.snmp.values import VarBind, check_oid, from_asn1, to_asn1

# -- encoding --------------------------------------------------------------------------------


def encode_message(message: Message) -> bytes:
    """BER bytes of ``message``; LocalProtocolError if a field is out of range."""
    if not 0 <= message.msg_id <= MAX_INT32:
        raise LocalProtocolError("msgID is 0..2147483647")
    if not 484 <= message.max_size <= MAX_INT32:
        raise LocalProtocolError("msgMaxSize is 484..2147483647")
    msg = SNMPv3Message()
    msg["msgVersion"] = SNMP_VERSION_3
    header = msg["msgGlobalData"]
    header["msgID"] = message.msg_id
    header["msgMaxSize"] = message.max_size
    header["msgFlags"] = bytes([int(message.flags)])
    header["msgSecurityModel"] = message.security_model
    msg["msgSecurityParameters"] = message.security_parameters
    scoped = msg["msgData"]["plaintext"]
    scoped["contextEngineId"] = message.context_engine_id
    scoped["contextName"] = message.context_name
    scoped["data"].setComponentByName(message.pdu.type.value, _pdu_to_asn1(message.pdu))
    try:
        return bytes(encoder.encode(msg))
    except PyAsn1Error as exc:
        raise LocalProtocolError(f"cannot encode SNMP message: {short(exc)}") from None


def _pdu_to_asn1(pdu: Pdu) -> object:
    if not -(2**31) <= pdu.request_id <= MAX_INT32:
        raise LocalProtocolError("request-id is a 32-bit signed integer")
    asn1 = rfc1905.PDUs().componentType[pdu.type.value].getType().clone()
    asn1["request-id"] = pdu.request_id
    if pdu.type is PduType.GETBULK:
        if not 0 <= pdu.non_repeaters <= MAX_INT32 or not 0 <= pdu.max_repetitions <= MAX_INT32:
            raise LocalProtocolError("non-repeaters and max-repetitions are 0..2147483647")
        asn1["non-repeaters"] = pdu.non_repeaters
        asn1["max-repetitions"] = pdu.max_repetitions
    else:
        asn1["error-status"] = int(pdu.error_status)
        asn1["error-index"] = pdu.error_index
    varbinds = asn1["variable-bindings"]
    varbinds.clear()  # an empty list is a value too
    for i, vb in enumerate(pdu.varbinds):
        check_oid(vb.oid)
        item = varbinds.getComponentByPosition(i)
        item["name"] = vb.oid
        value = to_asn1(vb.value)
        item.setComponentByPosition(1).getComponentByPosition(1).setComponentByType(
            value.getTagSet(),
            value,
            verifyConstraints=False,
            matchTags=False,
            matchConstraints=False,
            innerFlag=True,
        )
    return asn1


# -- decoding --------------------------------------------------------------------------------


def decode_message(data: bytes) -> Message:
    """Decode one whole BER-encoded SNMPv3 message; RemoteProtocolError on any fault.

    Checks the version (3) and the structure; what to do with a security model other than
    TSM is the caller's choice (``SnmpStream`` refuses it).
    """
    try:
        msg, rest = decoder.decode(data, asn1Spec=SNMPv3Message())
    except PyAsn1Error as exc:
        version = peek_version(data)
        if version is not None and version != SNMP_VERSION_3:
            raise RemoteProtocolError(f"unsupported SNMP version {version}") from None
        raise RemoteProtocolError(f"malformed SNMP message: {short(exc)}") from None
    except (ValueError, TypeError, IndexError, OverflowError, RecursionError) as exc:
        # pyasn1 lets these through on hostile lengths (an OverflowError on a length that
        # does not fit an index, for one)
        raise RemoteProtocolError(f"malformed SNMP message: {short(exc)}") from None
    if rest:
        raise RemoteProtocolError(f"{len(rest)} bytes after the SNMP message")
    try:
        return _message_from_asn1(msg)
    except PyAsn1Error as exc:
        raise RemoteProtocolError(f"malformed SNMP message: {short(exc)}") from None


def short(exc: Exception) -> str:
    """The first line of an error, at most 200 characters, for a protocol error's text."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def peek_version(data: bytes) -> int | None:
    """The msgVersion of a message pyasn1 refused, to tell 'wrong version' apart."""
    try:
        seq, _ = decoder.decode(data)
        return int(seq[0])
    except Exception:
        return None


def _message_from_asn1(msg: object) -> Message:
    m = msg  # pyasn1 objects are untyped
    version = int(m["msgVersion"])  # type: ignore[index]
    if version != SNMP_VERSION_3:
        raise RemoteProtocolError(f"unsupported SNMP version {version}")
    header = m["msgGlobalData"]  # type: ignore[index]
    flags = bytes(header["msgFlags"].asOctets())[0]
    if flags & ~0x07:
        raise RemoteProtocolError(f"reserved msgFlags bits set: {flags:#04x}")
    if flags & MsgFlags.PRIV and not flags & MsgFlags.AUTH:
        raise RemoteProtocolError("msgFlags asks for privacy without authentication")
    data = m["msgData"]  # type: ignore[index]
    if data.getName() != "plaintext":
        raise RemoteProtocolError("an encrypted scoped PDU cannot come with this security model")
    scoped = data["plaintext"]
    pdus = scoped["data"]
    pdu_type = PduType(pdus.getName())
    return Message(
        msg_id=int(header["msgID"]),
        max_size=int(header["msgMaxSize"]),
        flags=MsgFlags(flags),
        security_model=int(header["msgSecurityModel"]),
        security_parameters=bytes(m["msgSecurityParameters"].asOctets()),  # type: ignore[index]
        context_engine_id=bytes(scoped["contextEngineId"].asOctets()),
        context_name=bytes(scoped["contextName"].asOctets()),
        pdu=_pdu_from_asn1(pdu_type, pdus.getComponent()),
    )


def _pdu_from_asn1(pdu_type: PduType, asn1: object) -> Pdu:
    p = asn1
    varbinds = tuple(
        VarBind(tuple(int(s) for s in vb["name"]), from_asn1(vb[1].getComponent(True)))
        for vb in p["variable-bindings"]  # type: ignore[index]
    )
    request_id = int(p["request-id"])  # type: ignore[index]
    if pdu_type is PduType.GETBULK:
        return Pdu(
            pdu_type,
            request_id,
            varbinds,
            non_repeaters=int(p["non-repeaters"]),  # type: ignore[index]
            max_repetitions=int(p["max-repetitions"]),  # type: ignore[index]
        )
    status = int(p["error-status"])  # type: ignore[index]
    try:
        error_status = ErrorStatus(status)
    except ValueError:
        raise RemoteProtocolError(f"unknown error-status {status}") from None
    return Pdu(
        pdu_type,
        request_id,
        varbinds,
        error_status=error_status,
        error_index=int(p["error-index"]),  # type: ignore[index]
    )
