"""Sans-IO SNMPv3 over a stream with the Transport Security Model (RFC 3412, 3416, 3430,
5343, 5591, 5592).

:class:`SnmpStream` turns bytes into :class:`Message` values and back; the builders
(``get_request`` ...) make PDUs; :func:`discovery_message` is RFC 5343 contextEngineID
discovery. BER encoding is pysnmp's and pyasn1's.
"""

from callhome.proto.snmp.codec import decode_message, encode_message
from callhome.proto.snmp.messages import (
    AUTH_PRIV,
    LOCAL_ENGINE_ID,
    SNMP_ENGINE_ID_OID,
    SNMP_TRAP_OID,
    SYS_UPTIME_OID,
    TSM_SECURITY_MODEL,
    ErrorStatus,
    Message,
    MsgFlags,
    Pdu,
    PduType,
    discovery_message,
    get_request,
    getbulk_request,
    getnext_request,
    inform,
    report,
    response,
    set_request,
    trap,
)
from callhome.proto.snmp.stream import DEFAULT_MAX_MESSAGE_SIZE, BerFramer, SnmpStream
from callhome.proto.snmp.values import (
    Oid,
    Value,
    ValueType,
    VarBind,
    check_oid,
    format_oid,
    parse_oid,
)

__all__ = [
    "AUTH_PRIV",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "LOCAL_ENGINE_ID",
    "SNMP_ENGINE_ID_OID",
    "SNMP_TRAP_OID",
    "SYS_UPTIME_OID",
    "TSM_SECURITY_MODEL",
    "BerFramer",
    "ErrorStatus",
    "Message",
    "MsgFlags",
    "Oid",
    "Pdu",
    "PduType",
    "SnmpStream",
    "Value",
    "ValueType",
    "VarBind",
    "check_oid",
    "decode_message",
    "discovery_message",
    "encode_message",
    "format_oid",
    "get_request",
    "getbulk_request",
    "getnext_request",
    "inform",
    "parse_oid",
    "report",
    "response",
    "set_request",
    "trap",
]
