"""BER stream framing (RFC 3430): split invariance, caps, framing loss, and a decoder fuzz."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callhome.errors import RemoteProtocolError
from callhome.proto.snmp import (
    BerFramer,
    Message,
    SnmpStream,
    Value,
    VarBind,
    discovery_message,
    encode_message,
    get_request,
    response,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sample_messages() -> list[Message]:
    big = Value.octets(b"x" * 300)  # long-form length octets
    return [
        discovery_message(1, 1),
        Message(2, response(2, [VarBind((1, 3, 6, 1, 2, 1, 1, 1, 0), big)])),
        Message(3, get_request(3, [(1, 3, 6, 1, 2, 1, 1, i, 0) for i in range(1, 8)])),
    ]


def drain(stream: SnmpStream) -> list[Message]:
    out = []
    while (message := stream.next_message()) is not None:
        out.append(message)
    return out


@FUZZ
@given(cuts=st.lists(st.integers(0, 2000), max_size=20))
def test_same_messages_whatever_the_split(cuts):
    messages = sample_messages()
    wire = b"".join(encode_message(m) for m in messages)
    points = sorted({min(c, len(wire)) for c in cuts})
    pieces = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    stream = SnmpStream()
    got = []
    for piece in pieces:
        stream.receive_data(piece)
        got += drain(stream)
    assert got == messages
    stream.receive_eof()


def test_framer_returns_whole_frames_only():
    framer = BerFramer()
    data = encode_message(discovery_message(1, 1))
    framer.receive_data(data[:5])
    assert framer.next_frame() is None
    framer.receive_data(data[5:] + data[:1])
    assert framer.next_frame() == data
    assert framer.next_frame() is None and framer.buffered == 1


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x04\x00", "SEQUENCE"),  # not a SEQUENCE
        (b"\x30\x80", "indefinite"),
        (b"\x30\x85\x01\x00\x00\x00\x00", "beyond"),
        (b"\x30\x84\x7f\xff\xff\xff", "over the limit"),
        (b"\x30\x83\x01\x00\x00", "over the limit"),  # 65536 + header > 65535
    ],
)
def test_framing_faults_are_remote_errors_and_final(data, why):
    stream = SnmpStream()
    with pytest.raises(RemoteProtocolError, match=why):
        stream.receive_data(data)
        stream.next_message()
    with pytest.raises(RemoteProtocolError):  # the stream is dead from then on
        stream.receive_data(encode_message(discovery_message(1, 1)))


def test_cap_is_configurable():
    data = encode_message(sample_messages()[1])
    stream = SnmpStream(max_message_size=len(data) - 1)
    with pytest.raises(RemoteProtocolError, match="over the limit"):
        stream.receive_data(data[:4])


def test_truncated_stream_at_eof_is_a_remote_error():
    stream = SnmpStream()
    stream.receive_data(encode_message(discovery_message(1, 1))[:-3])
    assert stream.next_message() is None
    with pytest.raises(RemoteProtocolError, match="inside a message"):
        stream.receive_eof()


def test_well_framed_garbage_is_a_remote_error():
    stream = SnmpStream()
    stream.receive_data(b"\x30\x03\x02\x01\x03")  # a SEQUENCE holding only the version
    with pytest.raises(RemoteProtocolError, match="malformed"):
        stream.next_message()


def test_unknown_security_model_and_parameters_are_refused():
    usm = Message(1, get_request(1, [(1, 3, 6, 1)]), security_model=3)
    stream = SnmpStream()
    stream.receive_data(encode_message(usm))
    with pytest.raises(RemoteProtocolError, match="security model 3"):
        stream.next_message()
    params = Message(1, get_request(1, [(1, 3, 6, 1)]), security_parameters=b"\x01")
    stream = SnmpStream()
    stream.receive_data(encode_message(params))
    with pytest.raises(RemoteProtocolError, match="empty msgSecurityParameters"):
        stream.next_message()


def outcome(data: bytes) -> list[Message] | str:
    """Messages, or 'error': never any other exception."""
    stream = SnmpStream()
    try:
        stream.receive_data(data)
        return drain(stream)
    except RemoteProtocolError:
        return "error"


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data):
    result = outcome(data)
    assert result == "error" or all(isinstance(m, Message) for m in result)


@FUZZ
@given(st.data())
def test_fuzz_mutated_messages(data):
    wire = bytearray(b"".join(encode_message(m) for m in sample_messages()))
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] = data.draw(st.integers(0, 255))
    result = outcome(bytes(wire))
    if result != "error":
        for message in result:  # whatever decoded must encode again
            assert isinstance(message, Message)
            encode_message(message)
