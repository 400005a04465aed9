"""Byte-stream channels beside NETCONF on a call-home connection: terminals, commands, forwards.

Manager side: ``DeviceChannel`` is what ``DeviceSession.open_terminal``/``open_exec``/
``open_forward`` return, whatever the orientation below. Reading is bounded: past
``limit`` unread bytes the channel stops reading from the device (the SSH window closes),
so a slow operator never makes the manager buffer without end.

Device side: ``DeviceServices`` is what the SSH server asks before it runs a terminal, a
command or a forward for a manager, and ``ProcessHandle`` is a running terminal or command.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import asyncssh

from callhome.identity import Identity


@dataclass(frozen=True)
class Output:
    """Bytes from the device: stdout (or the terminal, or the TCP stream), or stderr."""

    data: bytes
    stderr: bool = False


@dataclass(frozen=True)
class Eof:
    """The device will send no more output."""


@dataclass(frozen=True)
class End:
    """The channel is closed; the last event. ``status`` or ``signal`` when the device said."""

    status: int | None = None
    signal: str | None = None
    reason: str = ""


ChannelEvent = Output | Eof | End
_Chan = asyncssh.SSHClientChannel[bytes] | asyncssh.SSHTCPChannel[bytes]


class _ClientSide(asyncssh.SSHClientSession[bytes]):
    """Collects what a channel brings, pausing the channel when too much is unread."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chan: _Chan | None = None
        self.events: collections.deque[ChannelEvent] = collections.deque()
        self.buffered = 0
        self.paused = False
        self.wakeup = asyncio.Event()
        self.writable = asyncio.Event()
        self.writable.set()
        self.status: int | None = None
        self.signal: str | None = None
        self.signal_message = ""

    def connection_made(self, chan: _Chan) -> None:
        self.chan = chan

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.events.append(Output(data, stderr=datatype == asyncssh.EXTENDED_DATA_STDERR))
        self.buffered += len(data)
        if self.buffered >= self.limit and not self.paused and self.chan is not None:
            self.paused = True
            self.chan.pause_reading()
        self.wakeup.set()

    def eof_received(self) -> bool:
        self.events.append(Eof())
        self.wakeup.set()
        return False

    def exit_status_received(self, status: int) -> None:
        self.status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.signal = signal
        self.signal_message = msg

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(End(self.status, self.signal, str(exc) if exc else self.signal_message))
        self.writable.set()
        self.wakeup.set()


class DeviceChannel:
    """One terminal, command or TCP stream opened on a connected device."""

    def __init__(self, kind: str, chan: _Chan, side: _ClientSide) -> None:
        self.kind = kind
        self._chan = chan
        self._side = side
        self._ended = False
        self.bytes_in = 0
        """Bytes received from the device."""
        self.bytes_out = 0
        """Bytes sent to the device."""

    async def read(self) -> ChannelEvent:
        """The next event; ``End`` is the last and is then returned again forever."""
        side = self._side
        while not side.events:
            if self._ended:
                return End(side.status, side.signal, "closed")
            side.wakeup.clear()
            await side.wakeup.wait()
        event = side.events.popleft()
        if isinstance(event, Output):
            self.bytes_in += len(event.data)
            side.buffered -= len(event.data)
            if side.paused and side.buffered <= side.limit // 2:
                side.paused = False
                self._chan.resume_reading()
        elif isinstance(event, End):
            self._ended = True
            side.events.appendleft(event)
        return event

    def write(self, data: bytes) -> None:
        if data and not self._chan.is_closing():
            self.bytes_out += len(data)
            self._chan.write(data)

    async def drain(self) -> None:
        """Wait until the device has taken what was written (its SSH window is open)."""
        await self._side.writable.wait()

    def write_eof(self) -> None:
        if not self._chan.is_closing():
            self._chan.write_eof()

    def resize(self, cols: int, rows: int) -> None:
        if isinstance(self._chan, asyncssh.SSHClientChannel) and not self._chan.is_closing():
            self._chan.change_terminal_size(cols, rows)

    def send_signal(self, name: str) -> None:
        if isinstance(self._chan, asyncssh.SSHClientChannel) and not self._chan.is_closing():
            self._chan.send_signal(name)

    def close(self) -> None:
        self._chan.close()


async def open_session_channel(
    conn: asyncssh.SSHClientConnection,
    kind: str,
    *,
    command: str | None,
    term: str | None,
    size: tuple[int, int] | None,
    limit: int,
) -> DeviceChannel:
    """A session channel running ``command`` (None: the device's shell), with a PTY if ``term``."""
    side = _ClientSide(limit)
    if term is not None:
        cols, rows = size or (80, 24)
        chan, _ = await conn.create_session(
            lambda: side,
            command,
            term_type=term,
            term_size=(cols, rows),
            encoding=None,
        )
    else:
        chan, _ = await conn.create_session(lambda: side, command, encoding=None)
    return DeviceChannel(kind, chan, side)


async def open_tcp_channel(
    conn: asyncssh.SSHClientConnection, host: str, port: int, *, limit: int
) -> DeviceChannel:
    """A direct-tcpip channel to host:port as the device sees them."""
    side = _ClientSide(limit)
    factory = cast("Callable[[], asyncssh.SSHTCPSession[bytes]]", lambda: side)
    chan, _ = await conn.create_connection(factory, host, port)
    return DeviceChannel("forward", chan, side)


# -- device side --------------------------------------------------------------------------


@dataclass(frozen=True)
class PtyRequest:
    """What the manager asked of the terminal: type, size, and the modes it sent."""

    term: str
    cols: int
    rows: int


class ProcessHandle(Protocol):
    """A terminal or command running on the device for one SSH channel."""

    def data_received(self, data: bytes) -> None: ...

    def eof_received(self) -> None: ...

    def resize(self, cols: int, rows: int) -> None: ...

    def signal(self, name: str) -> None: ...

    def pause(self) -> None:
        """The channel's window is full: stop reading the process's output."""
        ...

    def resume(self) -> None: ...

    def close(self) -> None:
        """The channel is gone: end the process."""
        ...


class DeviceServices(Protocol):
    """The device's rules for terminals, commands and forwards, by manager key."""

    def may_open(self, manager: Identity, what: str) -> bool:
        """Whether ``what`` ('shell', 'exec' or 'pty') is allowed to this manager key."""
        ...

    def start(
        self,
        manager: Identity,
        chan: asyncssh.SSHServerChannel[bytes],
        command: str | None,
        pty: PtyRequest | None,
    ) -> ProcessHandle:
        """Run a terminal (``command`` None) or a command for this manager on ``chan``."""
        ...

    def check_forward(self, manager: Identity, host: str, port: int) -> None:
        """Return if this manager may open a stream to host:port; raise ChannelOpenError if not."""
        ...
