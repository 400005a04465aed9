"""SNMPv3 messages with the Transport Security Model (RFC 3412, RFC 3416, RFC 5591).

:class:`Message` and :class:`Pdu` are plain values; ``encode_message`` and ``decode_message``
(:mod:`callhome.proto.snmp.codec`) turn them into BER bytes and back.

With TSM (msgSecurityModel 4) ``msgSecurityParameters`` is an empty OCTET STRING: the
securityName is what the transport authenticated (the SSH user name, RFC 5592), never a
field of the message.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from callhome.proto.snmp.values import Oid, Value, ValueType, VarBind

SNMP_VERSION_3 = 3
TSM_SECURITY_MODEL = 4
"""msgSecurityModel of the Transport Security Model (RFC 5591)."""

LOCAL_ENGINE_ID = bytes.fromhex("8000000006")
"""The localEngineID of RFC 5343: 'the engine at the other end of this transport'."""

SNMP_ENGINE_ID_OID: Oid = (1, 3, 6, 1, 6, 3, 10, 2, 1, 1, 0)
"""snmpEngineID.0 (SNMP-FRAMEWORK-MIB), the object RFC 5343 discovery reads."""

DEFAULT_MAX_SIZE = 65507
MAX_INT32 = 2**31 - 1


class MsgFlags(enum.IntFlag):
    """msgFlags bits (RFC 3412 section 6.4)."""

    NONE = 0
    AUTH = 1
    PRIV = 2
    REPORTABLE = 4


AUTH_PRIV = MsgFlags.AUTH | MsgFlags.PRIV
"""The security level an SSH transport provides (RFC 5592 section 5.2)."""


class PduType(enum.StrEnum):
    """The PDUs of RFC 3416, by their ASN.1 names."""

    GET = "get-request"
    GETNEXT = "get-next-request"
    GETBULK = "get-bulk-request"
    RESPONSE = "response"
    SET = "set-request"
    INFORM = "inform-request"
    TRAP = "snmpV2-trap"
    REPORT = "report"

    @property
    def confirmed(self) -> bool:
        """Whether the PDU asks for a response (RFC 3411 section 2.8)."""
        return self in _CONFIRMED


_CONFIRMED = frozenset({PduType.GET, PduType.GETNEXT, PduType.GETBULK, PduType.SET, PduType.INFORM})


class ErrorStatus(enum.IntEnum):
    """error-status of RFC 3416 section 3."""

    NO_ERROR = 0
    TOO_BIG = 1
    NO_SUCH_NAME = 2
    BAD_VALUE = 3
    READ_ONLY = 4
    GEN_ERR = 5
    NO_ACCESS = 6
    WRONG_TYPE = 7
    WRONG_LENGTH = 8
    WRONG_ENCODING = 9
    WRONG_VALUE = 10
    NO_CREATION = 11
    INCONSISTENT_VALUE = 12
    RESOURCE_UNAVAILABLE = 13
    COMMIT_FAILED = 14
    UNDO_FAILED = 15
    AUTHORIZATION_ERROR = 16
    NOT_WRITABLE = 17
    INCONSISTENT_NAME = 18

    @property
    def wire_name(self) -> str:
        """The name as RFC 3416 spells it (e.g. 'notWritable')."""
        head, *rest = self.name.lower().split("_")
        return head + "".join(p.capitalize() for p in rest)


@dataclass(frozen=True)
class Pdu:
    """One PDU. ``non_repeaters`` and ``max_repetitions`` are used by GETBULK only (they
    take the place of error-status and error-index on the wire)."""

    type: PduType
    request_id: int
    varbinds: tuple[VarBind, ...] = ()
    error_status: ErrorStatus = ErrorStatus.NO_ERROR
    error_index: int = 0
    non_repeaters: int = 0
    max_repetitions: int = 0

    @property
    def ok(self) -> bool:
        return self.error_status is ErrorStatus.NO_ERROR


@dataclass(frozen=True)
class Message:
    """An SNMPv3 message with a plaintext scoped PDU."""

    msg_id: int
    pdu: Pdu
    context_engine_id: bytes = b""
    context_name: bytes = b""
    flags: MsgFlags = AUTH_PRIV
    max_size: int = DEFAULT_MAX_SIZE
    security_model: int = TSM_SECURITY_MODEL
    security_parameters: bytes = field(default=b"", repr=False)

    @property
    def reportable(self) -> bool:
        return bool(self.flags & MsgFlags.REPORTABLE)

    @property
    def security_level(self) -> MsgFlags:
        return self.flags & AUTH_PRIV


# -- builders --------------------------------------------------------------------------------


def _request(kind: PduType, request_id: int, oids: list[Oid] | tuple[Oid, ...]) -> Pdu:
    return Pdu(kind, request_id, tuple(VarBind(o) for o in oids))


def get_request(request_id: int, oids: list[Oid] | tuple[Oid, ...]) -> Pdu:
    return _request(PduType.GET, request_id, oids)


def getnext_request(request_id: int, oids: list[Oid] | tuple[Oid, ...]) -> Pdu:
    return _request(PduType.GETNEXT, request_id, oids)


def getbulk_request(
    request_id: int, oids: list[Oid] | tuple[Oid, ...], non_repeaters: int, max_repetitions: int
) -> Pdu:
    return Pdu(
        PduType.GETBULK,
        request_id,
        tuple(VarBind(o) for o in oids),
        non_repeaters=non_repeaters,
        max_repetitions=max_repetitions,
    )


def set_request(request_id: int, varbinds: list[VarBind] | tuple[VarBind, ...]) -> Pdu:
    return Pdu(PduType.SET, request_id, tuple(varbinds))


def response(
    request_id: int,
    varbinds: list[VarBind] | tuple[VarBind, ...],
    error_status: ErrorStatus = ErrorStatus.NO_ERROR,
    error_index: int = 0,
) -> Pdu:
    return Pdu(PduType.RESPONSE, request_id, tuple(varbinds), error_status, error_index)


def trap(request_id: int, uptime: int, trap_oid: Oid, varbinds: tuple[VarBind, ...] = ()) -> Pdu:
    """An SNMPv2-Trap: sysUpTime.0 and snmpTrapOID.0 first (RFC 3416 section 4.2.6)."""
    return Pdu(PduType.TRAP, request_id, _notification_head(uptime, trap_oid) + varbinds)


def inform(request_id: int, uptime: int, trap_oid: Oid, varbinds: tuple[VarBind, ...] = ()) -> Pdu:
    return Pdu(PduType.INFORM, request_id, _notification_head(uptime, trap_oid) + varbinds)


def report(request_id: int, varbinds: tuple[VarBind, ...]) -> Pdu:
    return Pdu(PduType.REPORT, request_id, varbinds)


SYS_UPTIME_OID: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)


def _notification_head(uptime: int, trap_oid: Oid) -> tuple[VarBind, ...]:
    return (
        VarBind(SYS_UPTIME_OID, Value(ValueType.TIMETICKS, uptime)),
        VarBind(SNMP_TRAP_OID, Value.oid(trap_oid)),
    )


def discovery_message(msg_id: int, request_id: int) -> Message:
    """RFC 5343 contextEngineID discovery: GET snmpEngineID.0 in the localEngineID context,
    reportable."""
    return Message(
        msg_id=msg_id,
        pdu=get_request(request_id, [SNMP_ENGINE_ID_OID]),
        context_engine_id=LOCAL_ENGINE_ID,
        flags=AUTH_PRIV | MsgFlags.REPORTABLE,
    )
