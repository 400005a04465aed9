"""NETCONF message framing over SSH and TLS (RFC 6242 section 4, RFC 7589 section 3).

Two framings exist:

* end-of-message (base:1.0): each message is followed by the delimiter ``]]>]]>``;
* chunked (base:1.1): a message is one or more chunks ``\\n#<size>\\n<data>`` followed by
  the end-of-chunks marker ``\\n##\\n``.

Every session starts with end-of-message framing for the ``<hello>`` messages and switches to
chunked framing afterwards when both peers advertised base:1.1. :class:`Framer` parses lazily,
one message per :meth:`Framer.next_message` call, so a switch made right after the hello was
read applies to every byte that follows it, even bytes that arrived in the same read.

The framer is sans-IO: it neither reads nor writes; it only turns bytes into messages and back.
"""

from __future__ import annotations

from callhome.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "EOM_DELIMITER", "MAX_CHUNK_SIZE", "Framer"]

DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
"""Largest message accepted from a peer, in bytes, unless the caller chooses otherwise."""

EOM_DELIMITER = b"]]>]]>"
"""The end-of-message delimiter of base:1.0 framing."""

MAX_CHUNK_SIZE = 4294967295
"""Largest chunk-size allowed by RFC 6242 section 4.2."""

_EOM_LEN = len(EOM_DELIMITER)
_LF = 0x0A
_HASH = 0x23
_DIGIT0 = 0x30
_DIGIT1 = 0x31
_DIGIT9 = 0x39
_MAX_SIZE_DIGITS = len(str(MAX_CHUNK_SIZE))
# "\n#" + up to 10 digits + "\n": the longest legal chunk header.
_MAX_HEADER_LEN = 2 + _MAX_SIZE_DIGITS + 1
_END_OF_CHUNKS = b"\n##\n"
# Bytes a peer may send beyond the size cap before receive_data() checks the cap on its own:
# one large read. Below this, the cap is enforced in next_message() as the message is parsed.
_RECEIVE_SLACK = 256 * 1024
_WHITESPACE = b" \t\r\n"


class Framer:
    """Splits a byte stream into NETCONF messages, and frames outgoing messages.

    Feed bytes with :meth:`receive_data`, take whole messages with :meth:`next_message`
    until it returns ``None``, and signal the end of the stream with :meth:`receive_eof`.
    A message longer than ``max_message_size`` bytes raises :class:`RemoteProtocolError`
    as soon as its size is known (at the chunk header in chunked framing, once the buffered
    bytes pass the cap in end-of-message framing), so at most the cap plus one read is held.
    """

    __slots__ = (
        "_body",
        "_buf",
        "_chunk_left",
        "_chunked",
        "_chunks",
        "_eof",
        "_max",
        "_ready",
        "_scan",
        "_size",
    )

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if max_message_size < 1:
            raise ValueError("max_message_size must be positive")
        self._max = max_message_size
        self._chunked = False
        self._buf = bytearray()
        self._eof = False
        # A message parsed but not handed out yet (at most one, to keep parsing lazy).
        self._ready: bytes | None = None
        # End-of-message framing: no delimiter starts before this offset of _buf.
        self._scan = 0
        # Chunked framing: data of the chunks of the current message (one buffer, whatever
        # the number of chunks), how many chunks it had, its size as announced so far, and
        # how many bytes of the current chunk are still to come.
        self._body = bytearray()
        self._chunks = 0
        self._size = 0
        self._chunk_left = 0

    @property
    def chunked(self) -> bool:
        """``False`` for end-of-message framing (base:1.0), ``True`` for chunked (base:1.1)."""
        return self._chunked

    @property
    def max_message_size(self) -> int:
        """The largest message accepted from the peer, in bytes."""
        return self._max

    @property
    def at_eof(self) -> bool:
        """Whether :meth:`receive_eof` was called."""
        return self._eof

    @property
    def buffered(self) -> int:
        """Bytes received and not handed out yet as part of a message."""
        size = len(self._buf) + len(self._body)
        if self._ready is not None:
            size += len(self._ready)
        return size

    def use_chunked(self) -> None:
        """Switch to chunked framing, for bytes not parsed yet and for :meth:`encode`.

        Call it at a message boundary: right after the hello messages were exchanged.
        """
        self._chunked = True
        self._scan = 0

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes read from the peer."""
        if self._eof:
            raise LocalProtocolError("receive_data() after receive_eof()")
        if not data:
            return
        self._buf += data
        if len(self._buf) > self._max + _RECEIVE_SLACK:
            # The caller reads more than it drains, or the peer sends an oversize message:
            # check the cap now instead of buffering without bound.
            self._advance()

    def receive_eof(self) -> None:
        """Note that the peer closed its side of the stream.

        Raises :class:`RemoteProtocolError` if the bytes left over do not end a message.
        Whole messages still buffered remain available from :meth:`next_message`.
        """
        self._eof = True
        self._advance()
        if self._ready is None and self._has_partial():
            raise RemoteProtocolError(self._truncated_message())

    def next_message(self) -> bytes | None:
        """Return the next whole message, or ``None`` if more bytes are needed."""
        if self._ready is None:
            self._advance()
            if self._ready is None:
                if self._eof and self._has_partial():
                    raise RemoteProtocolError(self._truncated_message())
                return None
        message = self._ready
        self._ready = None
        return message

    def encode(self, message: bytes) -> bytes:
        """Frame one outgoing message in the current framing."""
        if self._chunked:
            size = len(message)
            if size == 0:
                raise LocalProtocolError("a chunked message cannot be empty")
            if size <= MAX_CHUNK_SIZE:
                return b"".join((b"\n#%d\n" % size, message, _END_OF_CHUNKS))
            pieces: list[bytes] = []
            view = memoryview(message)
            for start in range(0, size, MAX_CHUNK_SIZE):
                part = view[start : start + MAX_CHUNK_SIZE]
                pieces.append(b"\n#%d\n" % len(part))
                pieces.append(part.tobytes())
            pieces.append(_END_OF_CHUNKS)
            return b"".join(pieces)
        if EOM_DELIMITER in message or message.endswith(b"]]>"):
            # A message ending in "]]>" would end early: "]]>" + "]]>]]>" holds the delimiter.
            raise LocalProtocolError(
                "message contains (or ends in part of) the end-of-message delimiter ]]>]]>"
            )
        return message + EOM_DELIMITER

    # -- parsing -----------------------------------------------------------------------------

    def _has_partial(self) -> bool:
        if self._chunks:
            return True
        if not self._buf:
            return False
        if self._chunked:
            return True
        # Whitespace after the last delimiter is tolerated at the end of the stream.
        return bool(self._buf.strip(_WHITESPACE))

    def _truncated_message(self) -> str:
        return f"connection closed in the middle of a message ({self.buffered} bytes pending)"

    def _advance(self) -> None:
        if self._ready is not None:
            return
        if self._chunked:
            self._advance_chunked()
        else:
            self._advance_eom()

    def _advance_eom(self) -> None:
        buf = self._buf
        index = buf.find(EOM_DELIMITER, self._scan)
        if index < 0:
            # A delimiter may begin in the last five bytes: search again from there.
            length = len(buf)
            self._scan = max(0, length - (_EOM_LEN - 1))
            if length - (_EOM_LEN - 1) > self._max:
                raise RemoteProtocolError(
                    f"message exceeds the maximum size of {self._max} bytes "
                    f"(no end-of-message delimiter in {length} bytes)"
                )
            return
        if index > self._max:
            raise RemoteProtocolError(
                f"message of {index} bytes exceeds the maximum size of {self._max} bytes"
            )
        self._ready = bytes(buf[:index])
        del buf[: index + _EOM_LEN]
        self._scan = 0

    def _advance_chunked(self) -> None:
        buf = self._buf
        while True:
            left = self._chunk_left
            if left:
                avail = len(buf)
                if avail == 0:
                    return
                if left >= avail:
                    self._body += buf
                    buf.clear()
                    self._chunk_left = left - avail
                    return
                self._body += buf[:left]
                del buf[:left]
                self._chunk_left = 0
            if len(buf) < 4:
                self._check_partial_header()
                return
            if buf[0] != _LF or buf[1] != _HASH:
                raise RemoteProtocolError(
                    f"bad chunk header {bytes(buf[:_MAX_HEADER_LEN])!r}: expected LF '#'"
                )
            third = buf[2]
            if third == _HASH:
                if buf[3] != _LF:
                    raise RemoteProtocolError(
                        f"bad end-of-chunks marker {bytes(buf[:4])!r}: expected LF '##' LF"
                    )
                if not self._chunks:
                    raise RemoteProtocolError("end-of-chunks marker before any chunk")
                del buf[:4]
                self._ready = bytes(self._body)
                self._body.clear()
                self._chunks = 0
                self._size = 0
                return
            self._start_chunk(buf, third)
            if self._chunk_left == 0:
                # Header not complete yet.
                return
            if self._chunks == 1 and self._take_single_chunk(buf):
                return

    def _take_single_chunk(self, buf: bytearray) -> bool:
        """Fast path: a message of one chunk, wholly buffered, skips the body buffer."""
        size = self._chunk_left
        if len(buf) < size + 4 or buf[size : size + 4] != _END_OF_CHUNKS:
            return False
        with memoryview(buf) as view:
            self._ready = view[:size].tobytes()
        del buf[: size + 4]
        self._chunk_left = 0
        self._chunks = 0
        self._size = 0
        return True

    def _start_chunk(self, buf: bytearray, third: int) -> None:
        """Parse a chunk header at the start of ``buf`` (it begins with LF '#' and a digit)."""
        if not _DIGIT1 <= third <= _DIGIT9:
            if third == _DIGIT0:
                reason = "chunk-size has a leading zero or is zero"
            else:
                reason = "chunk-size must start with a digit 1-9"
            raise RemoteProtocolError(
                f"bad chunk header {bytes(buf[:_MAX_HEADER_LEN])!r}: {reason}"
            )
        end = buf.find(b"\n", 3, _MAX_HEADER_LEN)
        if end < 0:
            digits = bytes(buf[2:_MAX_HEADER_LEN])
            if not digits.isdigit():
                raise RemoteProtocolError(
                    f"bad chunk header {bytes(buf[:_MAX_HEADER_LEN])!r}: chunk-size is not decimal"
                )
            if len(buf) >= _MAX_HEADER_LEN:
                raise RemoteProtocolError(
                    f"bad chunk header {bytes(buf[:_MAX_HEADER_LEN])!r}: "
                    f"chunk-size longer than {_MAX_SIZE_DIGITS} digits"
                )
            return
        digits = bytes(buf[2:end])
        if not digits.isdigit():
            raise RemoteProtocolError(
                f"bad chunk header {bytes(buf[: end + 1])!r}: chunk-size is not decimal"
            )
        size = int(digits)
        if size > MAX_CHUNK_SIZE:
            raise RemoteProtocolError(
                f"bad chunk header: chunk-size {size} exceeds {MAX_CHUNK_SIZE}"
            )
        if self._size + size > self._max:
            raise RemoteProtocolError(
                f"message of at least {self._size + size} bytes exceeds the maximum size "
                f"of {self._max} bytes"
            )
        del buf[: end + 1]
        self._size += size
        self._chunk_left = size
        self._chunks += 1

    def _check_partial_header(self) -> None:
        """Reject a short buffer at once if it cannot begin a chunk header or end-of-chunks."""
        buf = self._buf
        length = len(buf)
        if length == 0:
            return
        if buf[0] != _LF:
            raise RemoteProtocolError(f"bad chunk header {bytes(buf)!r}: expected LF '#'")
        if length >= 2 and buf[1] != _HASH:
            raise RemoteProtocolError(f"bad chunk header {bytes(buf)!r}: expected LF '#'")
        if length >= 3:
            third = buf[2]
            if third == _HASH:
                if not self._chunks:
                    raise RemoteProtocolError("end-of-chunks marker before any chunk")
            elif third == _DIGIT0:
                raise RemoteProtocolError(
                    f"bad chunk header {bytes(buf)!r}: chunk-size has a leading zero or is zero"
                )
            elif not _DIGIT1 <= third <= _DIGIT9:
                raise RemoteProtocolError(
                    f"bad chunk header {bytes(buf)!r}: chunk-size must start with a digit 1-9"
                )
