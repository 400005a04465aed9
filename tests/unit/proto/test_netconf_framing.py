"""NETCONF framing (RFC 6242 section 4): vector tables, split-invariance, oversize, fuzz."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callhome.errors import LocalProtocolError, RemoteProtocolError
from callhome.proto.netconf import framing
from callhome.proto.netconf.framing import EOM_DELIMITER, Framer

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def drain(framer: Framer) -> list[bytes]:
    out = []
    while (message := framer.next_message()) is not None:
        out.append(message)
    return out


def feed(framer: Framer, pieces: list[bytes]) -> list[bytes]:
    out = []
    for piece in pieces:
        framer.receive_data(piece)
        out.extend(drain(framer))
    return out


def chunked_framer(max_message_size: int = framing.DEFAULT_MAX_MESSAGE_SIZE) -> Framer:
    framer = Framer(max_message_size)
    framer.use_chunked()
    return framer


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


# RFC 6242 section 4.2, the example of a chunked <rpc>.
RFC6242_CHUNKED = (
    b"\n#4\n<rpc"
    b'\n#18\n message-id="102"\n'
    b"\n#79\n"
    b'     xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">\n'
    b"  <close-session/>\n"
    b"</rpc>"
    b"\n##\n"
)
RFC6242_MESSAGE = (
    b'<rpc message-id="102"\n'
    b'     xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">\n'
    b"  <close-session/>\n"
    b"</rpc>"
)

EOM_VECTORS = [
    (b"<a/>]]>]]>", [b"<a/>"]),
    (b"<a/>]]>]]><b/>]]>]]>", [b"<a/>", b"<b/>"]),
    (b"<a/>]]>]]><b/>]]>]]", [b"<a/>"]),
    (b"<a>]]</a>]]>]]>", [b"<a>]]</a>"]),
    (b"<a/>]]]>]]>", [b"<a/>]"]),
    (b"<a/>]]>]]]>]]>", [b"<a/>]]>]"]),
    (b"]]>]]>", [b""]),
    (b"<a/>]]>]]", []),
    (b"", []),
]

CHUNKED_VECTORS = [
    (RFC6242_CHUNKED, [RFC6242_MESSAGE]),
    (b"\n#1\na\n##\n", [b"a"]),
    (b"\n#3\nabc\n#2\nde\n##\n\n#1\nf\n##\n", [b"abcde", b"f"]),
    (b"\n#9\n\n#1\nx\n##\n\n##\n", [b"\n#1\nx\n##\n"]),  # chunk data is opaque
    (b"\n#10\n0123456789\n##\n", [b"0123456789"]),
    (b"\n#4\nabcd\n#", []),
    (b"\n#4\nab", []),
    (b"\n#4294967", []),
]

BAD_CHUNK_HEADERS = [
    (b"#4\nabcd\n##\n", "missing LF before #"),
    (b"\n4\nabcd\n##\n", "missing #"),
    (b"\r\n#4\nabcd\n##\n", "CR before LF"),
    (b"\n#0\n", "zero chunk-size"),
    (b"\n#04\nabcd\n##\n", "leading zero"),
    (b"\n#\n", "empty chunk-size"),
    (b"\n#a\n", "letter"),
    (b"\n#4a\nabcd\n##\n", "letter after digit"),
    (b"\n# 4\nabcd\n##\n", "space before size"),
    (b"\n#4 \nabcd\n##\n", "space after size"),
    (b"\n#-4\nabcd\n##\n", "sign"),
    (b"\n#+4\nabcd\n##\n", "plus sign"),
    (b"\n#1_0\n0123456789\n##\n", "underscore"),
    (b"\n#4\r\nabcd\n##\n", "CR LF after size"),
    ("\n#\u0663\n".encode(), "non-ASCII digit"),
    (b"\n#12345678901\n", "eleven digits"),
    (b"\n#99999999999", "eleven digits, no LF yet"),
    (b"\n#4294967296\n", "one above 4294967295"),
    (b"\n#9999999999\n", "ten digits above the maximum"),
    (b"\n##\n", "end-of-chunks without a chunk"),
    (b"\n#4\nabcd\n#x\n", "letter as chunk-size of the second chunk"),
    (b"\n#4\nabcd\n##x", "bad end-of-chunks"),
    (b"\n#4\nabcd##\n", "missing LF before ##"),
    (b"\n#4\nabcdX", "garbage after chunk data"),
    (b"\n#4\nabcde\n##\n", "chunk longer than its size"),
    (b"\n#4\nabc\n##\n", "chunk shorter than its size"),
    (b"\n#1\na\n##\n\n##\n", "second end-of-chunks"),
    (b"\n#1\na\n##\n]]>]]>", "end-of-message after the switch"),
]


@pytest.mark.parametrize(("stream", "expected"), EOM_VECTORS)
def test_eom_vectors(stream: bytes, expected: list[bytes]) -> None:
    assert feed(Framer(), [stream]) == expected
    assert feed(Framer(), [bytes([b]) for b in stream]) == expected


@pytest.mark.parametrize(("stream", "expected"), CHUNKED_VECTORS)
def test_chunked_vectors(stream: bytes, expected: list[bytes]) -> None:
    assert feed(chunked_framer(), [stream]) == expected
    assert feed(chunked_framer(), [bytes([b]) for b in stream]) == expected


def test_rfc6242_example_lengths() -> None:
    assert len(b' message-id="102"\n') == 18
    assert len(RFC6242_MESSAGE) == 4 + 18 + 79


@pytest.mark.parametrize(
    ("stream", "why"), BAD_CHUNK_HEADERS, ids=[w for _, w in BAD_CHUNK_HEADERS]
)
def test_bad_chunk_headers(stream: bytes, why: str) -> None:
    with pytest.raises(RemoteProtocolError):
        feed(chunked_framer(), [stream])
    # Fed byte by byte, the error comes at the latest with the last byte.
    with pytest.raises(RemoteProtocolError):
        feed(chunked_framer(), [bytes([b]) for b in stream])


def test_bad_header_message_is_clear() -> None:
    with pytest.raises(RemoteProtocolError, match="leading zero"):
        feed(chunked_framer(), [b"\n#04\nabcd"])
    with pytest.raises(RemoteProtocolError, match="exceeds 4294967295"):
        feed(chunked_framer(2**40), [b"\n#4294967296\n"])


def test_bad_header_detected_before_its_end() -> None:
    framer = chunked_framer()
    framer.receive_data(b"\nX")
    with pytest.raises(RemoteProtocolError):
        framer.next_message()


def test_largest_chunk_size_is_accepted() -> None:
    framer = chunked_framer(2**33)
    framer.receive_data(b"\n#4294967295\nabc")
    assert framer.next_message() is None
    assert framer.buffered == 3


def test_chunk_size_checked_against_cap_at_header() -> None:
    framer = chunked_framer(10)
    framer.receive_data(b"\n#11\n")
    with pytest.raises(RemoteProtocolError, match="maximum size"):
        framer.next_message()


def test_cap_counts_all_chunks_of_a_message() -> None:
    framer = chunked_framer(10)
    framer.receive_data(b"\n#6\n012345\n#4\n6789\n##\n")
    assert framer.next_message() == b"0123456789"
    framer.receive_data(b"\n#6\n012345\n#5\n")
    with pytest.raises(RemoteProtocolError, match="maximum size"):
        framer.next_message()


def test_eom_cap() -> None:
    framer = Framer(10)
    framer.receive_data(b"0123456789]]>]]>")
    assert framer.next_message() == b"0123456789"
    framer.receive_data(b"01234567890]]>]]>")
    with pytest.raises(RemoteProtocolError, match="maximum size"):
        framer.next_message()


def test_eom_cap_without_delimiter() -> None:
    framer = Framer(10)
    framer.receive_data(b"x" * 15)  # a delimiter could still start in the last 5 bytes
    assert framer.next_message() is None
    framer.receive_data(b"x")
    with pytest.raises(RemoteProtocolError, match="maximum size"):
        framer.next_message()


@pytest.mark.parametrize("chunked", [False, True])
def test_receive_data_enforces_cap_without_next_message(chunked: bool) -> None:
    framer = chunked_framer(100) if chunked else Framer(100)
    head = b"\n#1000000\n" if chunked else b""
    with pytest.raises(RemoteProtocolError):
        for _ in range(100):
            framer.receive_data(head + b"x" * 65536)
            head = b""
    assert framer.buffered < 100 + 2 * 65536 + 256 * 1024


def test_chunked_holds_no_more_than_the_data_of_one_message() -> None:
    framer = chunked_framer(1 << 20)
    framer.receive_data(b"\n#1000000\n")
    for _ in range(15):
        framer.receive_data(b"y" * 65536)
        assert framer.next_message() is None
    framer.receive_data(b"y" * (1000000 - 15 * 65536) + b"\n##\n")
    assert framer.next_message() == b"y" * 1000000
    assert framer.buffered == 0


def test_many_one_byte_chunks_take_one_buffer() -> None:
    message = bytes(range(256)) * 40
    stream = b"".join(b"\n#1\n" + bytes([b]) for b in message) + b"\n##\n"
    framer = chunked_framer(len(message))
    framer.receive_data(stream[: len(stream) // 2])
    assert framer.next_message() is None
    assert framer.buffered <= len(message)
    framer.receive_data(stream[len(stream) // 2 :])
    assert framer.next_message() == message


def test_switch_applies_to_bytes_already_buffered() -> None:
    framer = Framer()
    framer.receive_data(b"<hello/>]]>]]>\n#3\nabc\n##\n")
    assert framer.next_message() == b"<hello/>"
    framer.use_chunked()
    assert framer.next_message() == b"abc"
    assert framer.chunked


def test_receive_eof() -> None:
    framer = Framer()
    framer.receive_data(b"<a/>]]>]]>")
    framer.receive_eof()
    assert framer.next_message() == b"<a/>"
    assert framer.next_message() is None


def test_receive_eof_with_partial_message() -> None:
    framer = Framer()
    framer.receive_data(b"<a/>]]>]]><b")
    assert framer.next_message() == b"<a/>"
    with pytest.raises(RemoteProtocolError, match="middle of a message"):
        framer.receive_eof()


def test_receive_eof_keeps_whole_messages_before_a_partial_one() -> None:
    framer = chunked_framer()
    framer.receive_data(b"\n#1\na\n##\n\n#5\nab")
    framer.receive_eof()
    assert framer.next_message() == b"a"
    with pytest.raises(RemoteProtocolError):
        framer.next_message()


def test_receive_eof_tolerates_trailing_whitespace_in_eom() -> None:
    framer = Framer()
    framer.receive_data(b"<a/>]]>]]>\n  \n")
    assert framer.next_message() == b"<a/>"
    framer.receive_eof()
    assert framer.next_message() is None


def test_receive_eof_rejects_stray_bytes_in_chunked() -> None:
    framer = chunked_framer()
    framer.receive_data(b"\n")
    with pytest.raises(RemoteProtocolError):
        framer.receive_eof()


def test_receive_data_after_eof() -> None:
    framer = Framer()
    framer.receive_eof()
    with pytest.raises(LocalProtocolError):
        framer.receive_data(b"x")


def test_encode() -> None:
    framer = Framer()
    assert framer.encode(b"<a/>") == b"<a/>]]>]]>"
    with pytest.raises(LocalProtocolError):
        framer.encode(b"<a><!-- ]]>]]> --></a>")
    with pytest.raises(LocalProtocolError):
        framer.encode(b"<a>]]>")  # would end at the first "]]>" of "]]>]]>]]>"
    framer.use_chunked()
    assert framer.encode(b"<a/>") == b"\n#4\n<a/>\n##\n"
    with pytest.raises(LocalProtocolError):
        framer.encode(b"")


def test_encode_splits_into_chunks_of_the_largest_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(framing, "MAX_CHUNK_SIZE", 3)
    framer = chunked_framer()
    encoded = framer.encode(b"abcdefgh")
    assert encoded == b"\n#3\nabc\n#3\ndef\n#2\ngh\n##\n"
    assert feed(chunked_framer(), [encoded]) == [b"abcdefgh"]


def test_rejects_nonpositive_cap() -> None:
    with pytest.raises(ValueError):
        Framer(0)


# -- properties ------------------------------------------------------------------------------

eom_messages = st.lists(
    st.binary(min_size=0, max_size=60).filter(
        lambda m: EOM_DELIMITER not in m and not m.endswith(b"]]>")
    ),
    min_size=1,
    max_size=8,
)
chunk_messages = st.lists(st.binary(min_size=1, max_size=60), min_size=1, max_size=8)
cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)


@given(messages=eom_messages, cut=cuts)
@settings(max_examples=150, deadline=None)
def test_eom_split_anywhere(messages: list[bytes], cut: list[int]) -> None:
    encoder = Framer()
    stream = b"".join(encoder.encode(m) for m in messages)
    assert feed(Framer(), split_at(stream, cut)) == messages


@given(messages=chunk_messages, sizes=st.lists(st.integers(1, 7), min_size=1), cut=cuts)
@settings(max_examples=150, deadline=None)
def test_chunked_split_anywhere(messages: list[bytes], sizes: list[int], cut: list[int]) -> None:
    # Each message cut into chunks of assorted sizes, as a peer may send it.
    stream = bytearray()
    for index, message in enumerate(messages):
        position = 0
        step = 0
        while position < len(message):
            size = sizes[(index + step) % len(sizes)]
            piece = message[position : position + size]
            stream += b"\n#%d\n" % len(piece) + piece
            position += size
            step += 1
        stream += b"\n##\n"
    assert feed(chunked_framer(), split_at(bytes(stream), cut)) == messages


@given(hello=st.binary(min_size=1, max_size=40), rest=chunk_messages, cut=cuts)
@settings(max_examples=150, deadline=None)
def test_hello_then_chunked_in_one_stream(hello: bytes, rest: list[bytes], cut: list[int]) -> None:
    hello = hello.replace(b"]", b"")  # keep it framable in end-of-message framing
    encoder = Framer()
    stream = encoder.encode(hello)
    encoder.use_chunked()
    stream += b"".join(encoder.encode(m) for m in rest)
    framer = Framer()
    got: list[bytes] = []
    for piece in split_at(stream, cut):
        framer.receive_data(piece)
        while (message := framer.next_message()) is not None:
            got.append(message)
            if len(got) == 1:
                framer.use_chunked()
    assert got == [hello, *rest]


def run_fuzz(framer: Framer, pieces: list[bytes]) -> None:
    try:
        feed(framer, pieces)
        framer.receive_eof()
        drain(framer)
    except RemoteProtocolError:
        pass


@given(data=st.lists(st.binary(max_size=64), max_size=8), chunked=st.booleans())
@FUZZ
def test_fuzz_random_bytes(data: list[bytes], chunked: bool) -> None:
    run_fuzz(chunked_framer(200) if chunked else Framer(200), data)


@given(
    messages=chunk_messages,
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    cut=cuts,
)
@FUZZ
def test_fuzz_mutated_chunked_stream(
    messages: list[bytes], flips: list[tuple[int, int]], cut: list[int]
) -> None:
    encoder = chunked_framer()
    stream = bytearray(b"".join(encoder.encode(m) for m in messages))
    for position, value in flips:
        stream[position % len(stream)] = value
    run_fuzz(chunked_framer(300), split_at(bytes(stream), cut))
