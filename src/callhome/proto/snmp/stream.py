"""SNMP over a byte stream (RFC 3430 section 2.1; RFC 5592 for SSH): framing and the stream.

Each message is sent as its BER encoding and nothing else: the receiver finds a message's
end from the length of the outer SEQUENCE. There is no way to find the next message after
a framing fault, so any fault (a tag other than SEQUENCE, an indefinite or oversize length,
a message that does not decode) raises :class:`RemoteProtocolError` and the stream is dead:
every later call raises again. The caller closes the channel.
"""

from __future__ import annotations

from callhome.errors import LocalProtocolError, RemoteProtocolError
from callhome.proto.snmp.codec import decode_message, encode_message
from callhome.proto.snmp.messages import SNMP_VERSION_3, TSM_SECURITY_MODEL, Message

DEFAULT_MAX_MESSAGE_SIZE = 65535
"""Largest message accepted, in bytes, unless the caller chooses otherwise."""

_SEQUENCE = 0x30
_MAX_LENGTH_OCTETS = 4


class BerFramer:
    """Splits a stream into whole BER-encoded SEQUENCEs of at most ``max_message_size``."""

    __slots__ = ("_buf", "_error", "max_message_size")

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_message_size = max_message_size
        self._buf = bytearray()
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def receive_data(self, data: bytes) -> None:
        self._raise_if_broken()
        self._buf += data
        # Check the header at once, so that an oversize message is refused before it is held.
        self._frame_length()

    def next_frame(self) -> bytes | None:
        """The next whole frame (header and contents), or None until more bytes arrive."""
        self._raise_if_broken()
        total = self._frame_length()
        if total is None or len(self._buf) < total:
            return None
        frame = bytes(self._buf[:total])
        del self._buf[:total]
        return frame

    def _raise_if_broken(self) -> None:
        if self._error is not None:
            raise self._error

    def fail(self, reason: str) -> RemoteProtocolError:
        """Mark the stream dead; returns the error to raise."""
        self._error = RemoteProtocolError(reason)
        self._buf.clear()
        return self._error

    def _frame_length(self) -> int | None:
        buf = self._buf
        if not buf:
            return None
        if buf[0] != _SEQUENCE:
            raise self.fail(f"an SNMP message starts with a SEQUENCE (0x30), not {buf[0]:#04x}")
        if len(buf) < 2:
            return None
        first = buf[1]
        if first < 0x80:
            header, length = 2, first
        else:
            count = first & 0x7F
            if count == 0:
                raise self.fail("indefinite length is not allowed for an SNMP message")
            if count > _MAX_LENGTH_OCTETS:
                raise self.fail(f"a length of {count} octets is beyond any allowed size")
            if len(buf) < 2 + count:
                return None
            header, length = 2 + count, int.from_bytes(buf[2 : 2 + count], "big")
        total = header + length
        if total > self.max_message_size:
            raise self.fail(
                f"an SNMP message of {total} bytes is over the limit of {self.max_message_size}"
            )
        return total


class SnmpStream:
    """A sans-IO SNMPv3/TSM message stream: bytes in, :class:`Message` out, and back.

    ``receive_data(bytes)``, then ``next_message()`` until it returns None; ``send(message)``
    gives the bytes to write. Messages whose version is not 3, whose security model is not
    TSM (4), or whose security parameters are not empty are protocol errors.
    """

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._framer = BerFramer(max_message_size)
        self.max_message_size = max_message_size

    def receive_data(self, data: bytes) -> None:
        self._framer.receive_data(data)

    def receive_eof(self) -> None:
        """The peer ends the stream; a partial message left is a protocol error."""
        if self._framer.buffered:
            raise self._framer.fail(
                f"the stream ended inside a message ({self._framer.buffered} bytes)"
            )

    def next_message(self) -> Message | None:
        frame = self._framer.next_frame()
        if frame is None:
            return None
        try:
            message = decode_message(frame)
        except RemoteProtocolError as exc:
            raise self._framer.fail(str(exc)) from None
        if message.security_model != TSM_SECURITY_MODEL:
            raise self._framer.fail(
                f"unknown security model {message.security_model} (only TSM, 4, is spoken here)"
            )
        if message.security_parameters:
            raise self._framer.fail("TSM messages carry empty msgSecurityParameters")
        return message

    def send(self, message: Message) -> bytes:
        if message.security_model != TSM_SECURITY_MODEL:
            raise LocalProtocolError("this stream speaks the Transport Security Model only")
        data = encode_message(message)
        if len(data) > self.max_message_size:
            raise LocalProtocolError(
                f"message of {len(data)} bytes is over the limit of {self.max_message_size}"
            )
        return data


__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "SNMP_VERSION_3", "BerFramer", "SnmpStream"]
