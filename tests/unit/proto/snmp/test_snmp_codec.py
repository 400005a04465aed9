"""The codec in use against the reference codec (pysnmp's message classes, field by field):
the same bytes out, the same messages in, the same errors for what is malformed."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import encoder
from pyasn1.type import univ

from callhome.errors import LocalProtocolError, RemoteProtocolError
from callhome.proto.snmp import (
    AUTH_PRIV,
    ErrorStatus,
    Message,
    MsgFlags,
    Pdu,
    PduType,
    Value,
    ValueType,
    VarBind,
    codec,
    decode_message,
    discovery_message,
    encode_message,
    get_request,
    reference,
    response,
)

MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

arcs = st.one_of(st.integers(0, 200), st.integers(0, 2**32 - 1))
oids = st.one_of(
    st.tuples(st.sampled_from([0, 1]), st.integers(0, 39)),
    st.tuples(st.just(2), st.integers(0, 2**32 - 1)),
).flatmap(lambda head: st.lists(arcs, max_size=14).map(lambda tail: (*head, *tail)))
# names sharing a prefix, as in a table walk, so that the codec's caches are exercised
columns = st.lists(st.integers(1, 300), min_size=1, max_size=5).map(
    lambda rows: [(1, 3, 6, 1, 2, 1, 2, 2, 1, 10, r) for r in rows]
)
values = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(Value.integer),
    st.binary(max_size=300).map(Value.octets),
    oids.map(Value.oid),
    st.binary(min_size=4, max_size=4).map(lambda b: Value(ValueType.IP_ADDRESS, b)),
    st.sampled_from([ValueType.COUNTER32, ValueType.GAUGE32, ValueType.TIMETICKS]).flatmap(
        lambda t: st.integers(0, 2**32 - 1).map(lambda i: Value(t, i))
    ),
    st.integers(0, 2**64 - 1).map(lambda i: Value(ValueType.COUNTER64, i)),
    st.binary(max_size=20).map(lambda b: Value(ValueType.OPAQUE, b)),
    st.sampled_from(
        [
            ValueType.NULL,
            ValueType.NO_SUCH_OBJECT,
            ValueType.NO_SUCH_INSTANCE,
            ValueType.END_OF_MIB_VIEW,
        ]
    ).map(Value),
)
varbind_lists = st.one_of(
    st.lists(st.builds(VarBind, oids, values), max_size=10),
    columns.flatmap(
        lambda names: st.tuples(*[values.map(lambda v, n=n: VarBind(n, v)) for n in names])
    ),
)
int32 = st.integers(-(2**31), 2**31 - 1)
uint31 = st.integers(0, 2**31 - 1)


@st.composite
def pdus(draw: st.DrawFn) -> Pdu:
    kind = draw(st.sampled_from(list(PduType)))
    varbinds = tuple(draw(varbind_lists))
    if kind is PduType.GETBULK:
        return Pdu(
            kind, draw(int32), varbinds, non_repeaters=draw(uint31), max_repetitions=draw(uint31)
        )
    return Pdu(kind, draw(int32), varbinds, draw(st.sampled_from(list(ErrorStatus))), draw(uint31))


messages = st.builds(
    Message,
    msg_id=uint31,
    pdu=pdus(),
    context_engine_id=st.binary(max_size=32),
    context_name=st.binary(max_size=140),
    flags=st.sampled_from([MsgFlags.NONE, MsgFlags.AUTH, AUTH_PRIV]).flatmap(
        lambda f: st.sampled_from([f, f | MsgFlags.REPORTABLE])
    ),
    max_size=st.integers(484, 2**31 - 1),
    security_model=st.integers(3, 2**31 - 1),
    security_parameters=st.binary(max_size=8),
)


@MANY
@given(messages)
def test_same_bytes_and_same_messages_as_the_reference(message):
    wire = reference.encode_message(message)
    assert encode_message(message) == wire
    assert decode_message(wire) == reference.decode_message(wire) == message


@MANY
@given(oids)
def test_names_encode_as_pyasn1_encodes_them(oid):
    expected = bytes(encoder.encode(univ.ObjectIdentifier(oid)))
    assert codec.encode_oid(oid) == expected
    assert codec.encode_oid(oid) == expected  # from the cache
    if len(oid) > 2:  # a sibling: the prefix from the cache, the arc from pyasn1
        sibling = (*oid[:-1], oid[-1] ^ 1)
        assert codec.encode_oid(sibling) == bytes(encoder.encode(univ.ObjectIdentifier(sibling)))


def outcome(decode, data: bytes) -> Message | tuple[type, str]:
    try:
        return decode(data)
    except RemoteProtocolError as exc:
        return (type(exc), str(exc))


DISCOVERY = reference.encode_message(discovery_message(3, 4))


def sample_wire() -> bytes:
    bindings = [
        VarBind((1, 3, 6, 1, 2, 1, 2, 2, 1, c, 7), v)
        for c, v in enumerate(
            [
                Value.integer(-3),
                Value.octets(b"x" * 130),
                Value.oid((1, 3, 6, 1, 4, 1, 99999)),
                Value(ValueType.IP_ADDRESS, b"\x0a\0\0\1"),
                Value(ValueType.COUNTER64, 2**40),
                Value(ValueType.END_OF_MIB_VIEW),
            ],
            start=1,
        )
    ]
    return reference.encode_message(Message(9, response(5, bindings), b"\x80\0\0\0\x05"))


@MANY
@given(st.data())
def test_mutated_messages_read_or_fail_as_with_the_reference(data):
    wire = bytearray(data.draw(st.sampled_from([sample_wire(), DISCOVERY])))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] = data.draw(st.integers(0, 255))
    assert outcome(decode_message, bytes(wire)) == outcome(reference.decode_message, bytes(wire))


def test_a_length_too_big_for_an_index_is_a_malformed_message():
    """Found by the mutation test: pyasn1 raised OverflowError on this frame (a binding's
    value tagged 0x88 whose length octets make a number too big for an index)."""
    wire = bytearray(sample_wire())
    wire[87] = 136
    for decode in (decode_message, reference.decode_message):
        with pytest.raises(RemoteProtocolError, match="malformed SNMP message"):
            decode(bytes(wire))


@MANY
@given(st.binary(max_size=200))
def test_random_bytes_fail_as_with_the_reference(data):
    assert outcome(decode_message, data) == outcome(reference.decode_message, data)


def tlv(identifier: int, content: bytes, long: bool = False) -> bytes:
    """A TLV, its length in the short form or (valid BER, not DER) in a 2-octet long form."""
    n = len(content)
    length = bytes([0x82, n >> 8, n & 0xFF]) if long or n > 127 else bytes([n])
    return bytes([identifier]) + length + content


def get_message(varbind_list: bytes) -> bytes:
    """A GetRequest (msgID 1, request-id 2) around a hand-made VarBindList."""
    header = tlv(0x30, bytes.fromhex("020101020300ffe3040103020104"))
    pdu = tlv(0xA0, bytes.fromhex("020102020100020100") + varbind_list)
    scoped = tlv(0x30, bytes.fromhex("04000400") + pdu)
    return tlv(0x30, bytes.fromhex("020103") + header + bytes.fromhex("0400") + scoped)


NAME = tlv(0x06, bytes.fromhex("2b06010201010100"))  # sysDescr.0


@pytest.mark.parametrize(
    "varbind_list",
    [
        tlv(0x30, tlv(0x30, NAME + tlv(0x05, b""))),  # the common shape, to start with
        tlv(0x30, tlv(0x30, NAME + tlv(0x05, b""), long=True)),  # long-form lengths
        tlv(0x30, tlv(0x30, tlv(0x06, NAME[2:], long=True) + tlv(0x02, b"\x05", long=True))),
        tlv(0x30, b"\x30\x80" + NAME + tlv(0x05, b"") + b"\0\0"),  # indefinite length
        tlv(0x30, tlv(0x30, NAME + tlv(0x24, tlv(0x04, b"ab") + tlv(0x04, b"c")))),  # constructed
        tlv(0x30, tlv(0x30, NAME + tlv(0x02, b"\0\0\x05"))),  # non-minimal INTEGER
        tlv(0x30, tlv(0x30, NAME + tlv(0x41, b"\x01\0\0\0\0"))),  # Counter32 out of range
        tlv(0x30, tlv(0x30, NAME + tlv(0x40, b"\x01\x02"))),  # a 2-octet IpAddress
        tlv(0x30, tlv(0x30, NAME + tlv(0x06, b"\x80\x01"))),  # an OID value with 0x80
        tlv(0x30, tlv(0x30, NAME + tlv(0x47, b"\x01"))),  # an unknown application tag
        tlv(0x30, tlv(0x30, NAME + tlv(0x05, b"") + tlv(0x05, b""))),  # three components
        tlv(0x31, tlv(0x30, NAME + tlv(0x05, b""))),  # a SET for the list
        tlv(0x30, tlv(0x30, tlv(0x06, bytes([0x78]) + bytes(130)) + tlv(0x05, b""))),  # 131 arcs
    ],
)
def test_odd_ber_reads_or_fails_as_with_the_reference(varbind_list):
    wire = get_message(varbind_list)
    assert outcome(decode_message, wire) == outcome(reference.decode_message, wire)


def test_the_common_shape_is_read():
    wire = get_message(tlv(0x30, tlv(0x30, NAME + tlv(0x05, b""))))
    assert decode_message(wire).pdu.varbinds == (VarBind((1, 3, 6, 1, 2, 1, 1, 1, 0)),)


def test_field_range_faults_are_local_errors():
    with pytest.raises(LocalProtocolError, match="msgSecurityModel"):
        encode_message(Message(1, get_request(1, [(1, 3)]), security_model=1))
    with pytest.raises(LocalProtocolError, match="error-index"):
        encode_message(Message(1, response(1, [], ErrorStatus.GEN_ERR, -1)))
    with pytest.raises(LocalProtocolError):
        encode_message(Message(1, get_request(1, [(3, 1)])))


def test_the_same_message_object_is_encoded_once():
    message = Message(1, get_request(1, [(1, 3, 6, 1, 2, 1, 1, 1, 0)]))
    first = encode_message(message)
    assert encode_message(message) is first
    assert encode_message(Message(1, get_request(1, [(1, 3, 6, 1, 2, 1, 1, 1, 0)]))) == first
