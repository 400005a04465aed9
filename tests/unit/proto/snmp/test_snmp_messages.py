"""SNMPv3/TSM messages: BER vectors, round trips, and refusal of what TSM does not allow."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callhome.errors import LocalProtocolError, RemoteProtocolError
from callhome.proto.snmp import (
    AUTH_PRIV,
    LOCAL_ENGINE_ID,
    ErrorStatus,
    Message,
    MsgFlags,
    PduType,
    Value,
    ValueType,
    VarBind,
    decode_message,
    discovery_message,
    encode_message,
    get_request,
    getbulk_request,
    getnext_request,
    inform,
    parse_oid,
    report,
    response,
    set_request,
    trap,
)

# RFC 5343 discovery, assembled by hand from RFC 3412 section 6 and RFC 3416 section 3.
DISCOVERY = bytes.fromhex(
    "303d"  # SNMPv3Message, 61 octets
    "020103"  # msgVersion 3
    "300e"
    "020101"
    "020300ffe3"
    "040107"
    "020104"  # msgID 1, maxSize 65507, flags 7, model 4
    "0400"  # msgSecurityParameters: empty (TSM)
    "3026"
    "04058000000006"
    "0400"  # contextEngineID localEngineID, contextName ""
    "a01b"
    "020107"
    "020100"
    "020100"  # GetRequest, request-id 7, 0, 0
    "3010"
    "300e"
    "060a2b060106030a02010100"
    "0500"  # snmpEngineID.0 = NULL
)

SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)


def test_discovery_vector_encodes_and_decodes():
    message = discovery_message(1, 7)
    assert encode_message(message) == DISCOVERY
    decoded = decode_message(DISCOVERY)
    assert decoded == message
    assert decoded.context_engine_id == LOCAL_ENGINE_ID
    assert decoded.reportable and decoded.security_level == AUTH_PRIV
    assert decoded.pdu.type is PduType.GET


def test_response_vector_with_application_types():
    pdu = response(
        9,
        [
            VarBind((1, 3, 6, 1, 2, 1, 1, 3, 0), Value(ValueType.TIMETICKS, 300)),
            VarBind((1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 1), Value(ValueType.COUNTER32, 2**32 - 1)),
            VarBind((1, 3, 6, 1, 2, 1, 2, 2, 1, 5, 1), Value(ValueType.GAUGE32, 1)),
            VarBind((1, 3, 6, 1, 2, 1, 4, 20, 1, 1), Value(ValueType.IP_ADDRESS, b"\x7f\0\0\1")),
            VarBind((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1), Value(ValueType.COUNTER64, 2**64 - 1)),
            VarBind(SYS_DESCR, Value(ValueType.NO_SUCH_INSTANCE)),
            VarBind((1, 3, 6, 1, 9), Value(ValueType.END_OF_MIB_VIEW)),
        ],
    )
    data = encode_message(Message(5, pdu, b"\x80\0\0\0\x05abc", flags=AUTH_PRIV))
    # the application and context tags of RFC 2578 / RFC 3416, as they sit on the wire
    for fragment in (
        "43020" + "12c",
        "4105" + "00ffffffff",
        "420101",
        "40047f000001",
        "4609" + "00" + "ff" * 8,
        "8100",
        "8200",
    ):
        assert fragment in data.hex(), fragment
    assert decode_message(data).pdu == pdu


@pytest.mark.parametrize(
    "pdu",
    [
        get_request(1, [SYS_DESCR, (1, 3, 6, 1, 2, 1, 1, 5, 0)]),
        getnext_request(-5, [(1, 3)]),
        getbulk_request(2**31 - 1, [(1, 3, 6, 1, 2, 1, 1), (1, 3, 6, 1, 2, 1, 2, 2)], 1, 50),
        set_request(3, [VarBind((1, 3, 6, 1, 2, 1, 1, 4, 0), Value.octets("ops"))]),
        response(4, [VarBind(SYS_DESCR, Value.octets(b"\x00\xff"))], ErrorStatus.NOT_WRITABLE, 1),
        trap(5, 100, (1, 3, 6, 1, 6, 3, 1, 1, 5, 1)),
        inform(6, 100, (1, 3, 6, 1, 6, 3, 1, 1, 5, 4), (VarBind((1, 3, 6, 7), Value.integer(-1)),)),
        report(7, (VarBind((1, 3, 6, 1, 6, 3, 11, 2, 1, 3, 0), Value(ValueType.COUNTER32, 1)),)),
        Message(0, get_request(0, [])).pdu,
    ],
    ids=lambda p: p.type.value,
)
def test_every_pdu_round_trips(pdu):
    message = Message(42, pdu, b"\x80\0\0\0\x05x", b"ctx", MsgFlags.REPORTABLE | AUTH_PRIV)
    assert decode_message(encode_message(message)) == message


oids = st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=12).map(lambda t: (1, 3, *t))
values = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(Value.integer),
    st.binary(max_size=64).map(Value.octets),
    oids.map(lambda o: Value(ValueType.OBJECT_IDENTIFIER, o)),
    st.integers(0, 2**32 - 1).map(lambda i: Value(ValueType.GAUGE32, i)),
    st.integers(0, 2**64 - 1).map(lambda i: Value(ValueType.COUNTER64, i)),
    st.sampled_from([ValueType.NULL, ValueType.NO_SUCH_OBJECT, ValueType.END_OF_MIB_VIEW]).map(
        Value
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    msg_id=st.integers(0, 2**31 - 1),
    request_id=st.integers(-(2**31), 2**31 - 1),
    varbinds=st.lists(st.builds(VarBind, oids, values), max_size=8),
)
def test_random_responses_round_trip(msg_id, request_id, varbinds):
    message = Message(msg_id, response(request_id, varbinds), LOCAL_ENGINE_ID)
    assert decode_message(encode_message(message)) == message


def replace_at(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def test_wrong_version_is_a_remote_error():
    v2c = replace_at(DISCOVERY, 4, b"\x01")  # msgVersion 1 (SNMPv2c)
    with pytest.raises(RemoteProtocolError, match="version 1"):
        decode_message(v2c)


@pytest.mark.parametrize(
    ("offset", "new", "why"),
    [
        (17, b"\x0f", "reserved msgFlags"),
        (17, b"\x02", "privacy without authentication"),
    ],
)
def test_bad_flags_are_remote_errors(offset, new, why):
    with pytest.raises(RemoteProtocolError, match=why):
        decode_message(replace_at(DISCOVERY, offset, new))


def test_trailing_bytes_and_truncation_are_remote_errors():
    with pytest.raises(RemoteProtocolError):
        decode_message(DISCOVERY + b"\x00")
    for cut in (1, 2, 10, len(DISCOVERY) - 1):
        with pytest.raises(RemoteProtocolError):
            decode_message(DISCOVERY[:cut])


def test_values_are_checked_before_encoding():
    with pytest.raises(LocalProtocolError):
        Value(ValueType.GAUGE32, -1)
    with pytest.raises(LocalProtocolError):
        Value(ValueType.IP_ADDRESS, b"\x01")
    with pytest.raises(LocalProtocolError):
        parse_oid("1.3.x")
    with pytest.raises(LocalProtocolError):
        parse_oid("3.1")
    with pytest.raises(LocalProtocolError):
        encode_message(Message(-1, get_request(1, [SYS_DESCR])))


def test_error_status_names_are_the_rfc_ones():
    assert ErrorStatus.NOT_WRITABLE.wire_name == "notWritable"
    assert ErrorStatus.NO_SUCH_NAME.wire_name == "noSuchName"
    assert ErrorStatus.AUTHORIZATION_ERROR.wire_name == "authorizationError"
