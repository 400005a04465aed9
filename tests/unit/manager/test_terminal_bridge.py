"""Terminals, commands and forwards bridged to an operator, in process: a real Manager over
the in-memory Store on a fake clock, a real DeviceSession whose channels come from a fake
opener, a fake device channel and a fake operator link. Each end can be held (it does not
take what it is given) to see that the bridge waits for it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from manager_fakes import DEV_FP, device_session, turns, until

from callhome.clock import FakeClock
from callhome.config import ManagerConfig
from callhome.config.manager import TerminalSection
from callhome.errors import (
    CallHomeError,
    ConfigError,
    DeviceOffline,
    ServiceRefused,
    StoreError,
    UnknownDevice,
)
from callhome.manager.service import Manager
from callhome.manager.terminal import Bridge, TerminalService
from callhome.net.channels import ChannelEvent, DeviceChannel, End, Eof, Output
from callhome.net.session import DeviceSession
from callhome.storage import MemoryStore
from callhome.storage.model import AuditEntry

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
ACTOR = "token:ops"
BUFFER = 8192


class FakeChannel:
    """The device's end: what it sends is fed in (``feed``); what the bridge gives it is
    kept. ``writable`` cleared: the device takes nothing more (``drain`` waits)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._events: asyncio.Queue[ChannelEvent] = asyncio.Queue()
        self._end: End | None = None
        self.reads = 0
        """read() calls, the one waiting now included."""
        self.written: list[bytes] = []
        self.writable = asyncio.Event()
        self.writable.set()
        self.drains = 0
        self.eofs = 0
        self.sizes: list[tuple[int, int]] = []
        self.signals: list[str] = []
        self.closed = False
        self.bytes_in = 0
        self.bytes_out = 0

    def feed(self, *events: ChannelEvent) -> None:
        for event in events:
            self._events.put_nowait(event)

    async def read(self) -> ChannelEvent:
        self.reads += 1
        if self._end is not None:
            return self._end
        event = await self._events.get()
        if isinstance(event, Output):
            self.bytes_in += len(event.data)
        elif isinstance(event, End):
            self._end = event
        return event

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self.bytes_out += len(data)

    async def drain(self) -> None:
        self.drains += 1
        await self.writable.wait()

    def write_eof(self) -> None:
        self.eofs += 1

    def resize(self, cols: int, rows: int) -> None:
        self.sizes.append((cols, rows))

    def send_signal(self, name: str) -> None:
        self.signals.append(name)

    def close(self) -> None:
        self.closed = True


Message = bytes | dict[str, Any]


class FakeLink:
    """The operator's end: what the operator sends is put in (``type``, ``leave``); what
    reaches the operator is kept in ``got``. ``taking`` cleared: the operator takes nothing
    more (a send waits); ``broken``: every send fails with it."""

    def __init__(self) -> None:
        self._inbox: asyncio.Queue[Message | None] = asyncio.Queue()
        self.got: list[Message] = []
        self.taking = asyncio.Event()
        self.taking.set()
        self.waiting = 0
        """Sends waiting for the operator to take them now."""
        self.receives = 0
        """receive() calls, the one waiting now included."""
        self.broken: Exception | None = None

    def type(self, *messages: Message) -> None:
        for message in messages:
            self._inbox.put_nowait(message)

    def leave(self) -> None:
        self._inbox.put_nowait(None)

    async def _take(self, message: Message) -> None:
        if self.broken is not None:
            raise self.broken
        self.waiting += 1
        try:
            await self.taking.wait()
        finally:
            self.waiting -= 1
        self.got.append(message)

    async def send_bytes(self, data: bytes) -> None:
        await self._take(data)

    async def send_json(self, message: dict[str, Any]) -> None:
        await self._take(message)

    async def receive(self) -> Message | None:
        self.receives += 1
        return await self._inbox.get()


@dataclass
class FakeOpener:
    """The session's channel opener: a FakeChannel for each, or ``refusal`` raised."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    channels: list[FakeChannel] = field(default_factory=list)
    refusal: BaseException | None = None

    def _open(self, kind: str, *call: Any) -> DeviceChannel:
        self.calls.append((kind, *call))
        if self.refusal is not None:
            raise self.refusal
        channel = FakeChannel(kind)
        self.channels.append(channel)
        return cast(DeviceChannel, channel)

    async def open_terminal(
        self, term: str, size: tuple[int, int], command: str | None, limit: int
    ) -> DeviceChannel:
        return self._open("terminal", term, size, command, limit)

    async def open_exec(self, command: str, limit: int) -> DeviceChannel:
        return self._open("exec", command, limit)

    async def open_forward(self, host: str, port: int, limit: int) -> DeviceChannel:
        return self._open("forward", host, port, limit)


class Env:
    """A Manager with device dev1 connected, its terminal service and a fake clock."""

    def __init__(self, tmp_path: Path, record: str | None = None) -> None:
        self.clock = FakeClock(start=T0)
        self.state_dir = tmp_path
        config = ManagerConfig(
            state_dir=tmp_path, terminal=TerminalSection(record=record, buffer=BUFFER)
        )
        self.manager = Manager(config, MemoryStore(), clock=self.clock)
        self.service = TerminalService(self.manager)
        self.opener = FakeOpener()
        self.session: DeviceSession = device_session(object(), name="dev1", channels=self.opener)[0]

    async def start(self) -> Env:
        await self.manager.store.open()
        await self.manager.approve(DEV_FP, "dev1", "tester")
        self.manager.sessions[DEV_FP] = self.session
        return self

    async def audit(self) -> list[AuditEntry]:
        """The bridges' audit entries (not the approval's)."""
        entries = await self.manager.store.list_audit(limit=1000)
        return [e for e in entries if e.action.split()[0] in ("open", "close", "refused")]

    async def run(self, bridge: Bridge, link: FakeLink) -> asyncio.Task[End]:
        return asyncio.create_task(self.service.run(bridge, link))


@pytest.fixture
async def env(tmp_path: Path) -> Env:
    return await Env(tmp_path).start()


def channel_of(bridge: Bridge) -> FakeChannel:
    return cast(FakeChannel, bridge.channel)


async def ended(task: asyncio.Task[End]) -> End:
    async with asyncio.timeout(5):
        return await task


# -- both directions ------------------------------------------------------------------------


async def test_a_terminal_joins_the_operator_and_the_device_both_ways(env: Env) -> None:
    bridge = await env.service.open_terminal("dev1", ACTOR, "xterm", 80, 24)
    assert env.opener.calls == [("terminal", "xterm", (80, 24), None, BUFFER)]
    channel, link = channel_of(bridge), FakeLink()
    task = await env.run(bridge, link)
    channel.feed(Output(b"login: "), Output(b"warn", stderr=True))  # a PTY has no stderr
    link.type(b"root\n", b"ls\n")
    await until(lambda: len(link.got) == 2 and len(channel.written) == 2, "both ways")
    assert link.got == [b"login: ", b"warn"]
    assert channel.written == [b"root\n", b"ls\n"]
    channel.feed(End(status=0))
    end = await ended(task)
    assert end == End(status=0)
    assert link.got[-1] == {"type": "exit", "status": 0, "signal": None, "reason": ""}
    assert channel.closed


async def test_exec_output_says_its_stream_in_a_first_byte(env: Env) -> None:
    bridge = await env.service.open_exec("dev1", ACTOR, "uname -a; false")
    assert env.opener.calls == [("exec", "uname -a; false", BUFFER)]
    channel, link = channel_of(bridge), FakeLink()
    task = await env.run(bridge, link)
    channel.feed(Output(b"Linux\n"), Output(b"oops\n", stderr=True), Eof(), End(status=1))
    end = await ended(task)
    assert end.status == 1
    assert link.got == [
        b"\x01Linux\n",
        b"\x02oops\n",
        {"type": "eof"},
        {"type": "exit", "status": 1, "signal": None, "reason": ""},
    ]


async def test_a_forward_carries_the_stream_as_is(env: Env) -> None:
    bridge = await env.service.open_forward("dev1", ACTOR, "192.0.2.1", 22)
    assert env.opener.calls == [("forward", "192.0.2.1", 22, BUFFER)]
    channel, link = channel_of(bridge), FakeLink()
    task = await env.run(bridge, link)
    link.type(b"SSH-2.0-x\r\n")
    channel.feed(Output(b"SSH-2.0-y\r\n"), Eof(), End(reason="closed by the device"))
    end = await ended(task)
    assert end == End(reason="closed by the device")
    assert channel.written == [b"SSH-2.0-x\r\n"]
    assert link.got == [
        b"SSH-2.0-y\r\n",
        {"type": "eof"},
        {"type": "exit", "status": None, "signal": None, "reason": "closed by the device"},
    ]


async def test_an_exit_by_signal_says_the_signal(env: Env) -> None:
    bridge = await env.service.open_exec("dev1", ACTOR, "sleep 9")
    channel, link = channel_of(bridge), FakeLink()
    task = await env.run(bridge, link)
    channel.feed(End(signal="TERM", reason="Terminated"))
    assert await ended(task) == End(signal="TERM", reason="Terminated")
    assert link.got == [{"type": "exit", "status": None, "signal": "TERM", "reason": "Terminated"}]


# -- back-pressure --------------------------------------------------------------------------


async def test_device_output_waits_for_the_operator_to_take_it(env: Env) -> None:
    bridge = await env.service.open_terminal("dev1", ACTOR, "xterm", 80, 24)
    channel, link = channel_of(bridge), FakeLink()
    link.taking.clear()  # a slow operator
    task = await env.run(bridge, link)
    channel.feed(Output(b"1"), Output(b"2"), Output(b"3"))
    await until(lambda: link.waiting == 1, "the first output offered to the operator")
    await turns()
    assert channel.reads == 1 and link.got == []  # nothing more read meanwhile
    link.taking.set()
    await until(lambda: link.got == [b"1", b"2", b"3"], "all output taken")
    channel.feed(End(status=0))
    await ended(task)


async def test_operator_input_waits_for_the_device_to_take_it(env: Env) -> None:
    bridge = await env.service.open_terminal("dev1", ACTOR, "xterm", 80, 24)
    channel, link = channel_of(bridge), FakeLink()
    channel.writable.clear()  # the device's window is closed
    task = await env.run(bridge, link)
    link.type(b"a" * 100, b"b", {"type": "eof"})
    await until(lambda: channel.drains == 1, "the first input to wait for the device")
    await turns()
    assert link.receives == 1 and channel.written == [b"a" * 100] and channel.eofs == 0
    channel.writable.set()
    await until(lambda: channel.eofs == 1, "the rest given to the device")
    assert channel.written == [b"a" * 100, b"b"]
    channel.feed(End(status=0))
    await ended(task)


# -- control messages from the operator -----------------------------------------------------


async def test_resize_signal_and_eof_from_the_operator(env: Env) -> None:
    bridge = await env.service.open_terminal("dev1", ACTOR, "xterm", 80, 24)
    channel, link = channel_of(bridge), FakeLink()
    task = await env.run(bridge, link)
    link.type(
        {"type": "resize", "cols": 132, "rows": 43},
        {"type": "resize", "cols": 0, "rows": 43},  # out of range: ignored
        {"type": "resize", "cols": 132, "rows": 10000},
        {"type": "resize"},
        {"type": "signal", "name": "INT"},
        {"type": "what"},  # unknown: ignored
        {"type": "eof"},
        b"after",  # a sentinel: everything before it was handled
    )
    await until(lambda: channel.written == [b"after"], "the sentinel")
    assert channel.sizes == [(132, 43)]
    assert channel.signals == ["INT"]
    assert channel.eofs == 1
    channel.feed(End(status=0))
    await ended(task)


async def test_a_malformed_resize_is_ignored_like_one_out_of_range(env: Env) -> None:
    """A size that is not a number does not end the bridge (nor is it taken for the
    operator going away)."""
    bridge = await env.service.open_terminal("dev1", ACTOR, "xterm", 80, 24)
    channel, link = channel_of(bridge), FakeLink()
    task = await env.run(bridge, link)
    link.type(
        {"type": "resize", "cols": "wide", "rows": 40},
        {"type": "resize", "cols": None, "rows": 40},
        {"type": "resize", "cols": [1], "rows": 40},
        {"type": "resize", "cols": 100, "rows": 40},
        b"after",
    )
    await until(lambda: channel.written == [b"after"] or task.done(), "the sentinel")
    assert not task.done() and not channel.closed
    assert channel.sizes == [(100, 40)]
    channel.feed(End(status=0))
    assert await ended(task) == End(status=0)


# -- how a bridge ends ----------------------------------------------------------------------


async def test_the_operator_going_away_ends_the_bridge(env: Env) -> None:
    bridge = await env.service.open_terminal("dev1", ACTOR, "xterm", 80, 24)
    channel, link = channel_of(bridge), FakeLink()
    task = await env.run(bridge, link)
    link.leave()
    assert await ended(task) == End(reason="the operator went away")
    assert channel.closed and link.got == []
    (_, close) = await env.audit()
    assert close.action == "close terminal"
    assert close.detail["reason"] == "the operator went away"
    assert close.detail["exit_status"] is None


async def test_an_operator_that_cannot_be_sent_to_ends_the_bridge(env: Env) -> None:
    bridge = await env.service.open_exec("dev1", ACTOR, "yes")
    channel, link = channel_of(bridge), FakeLink()
    link.broken = ConnectionResetError("gone")
    task = await env.run(bridge, link)
    channel.feed(Output(b"y\n"))
    assert await ended(task) == End(reason="sending to the operator failed: gone")
    assert channel.closed
    (_, close) = await env.audit()
    assert close.detail["reason"] == "sending to the operator failed: gone"


async def test_a_bridge_counts_on_its_session_until_it_ends(env: Env) -> None:
    first = await env.service.open_terminal("dev1", ACTOR, "xterm", 80, 24)
    second = await env.service.open_forward("dev1", ACTOR, "127.0.0.1", 80)
    assert env.session.operator_channels == 2
    link = FakeLink()
    task = await env.run(first, link)
    link.leave()
    await ended(task)
    assert env.session.operator_channels == 1
    first.release()  # once only
    assert env.session.operator_channels == 1
    channel_of(second).feed(End(status=0))
    await ended(await env.run(second, FakeLink()))
    assert env.session.operator_channels == 0


# -- audit ----------------------------------------------------------------------------------


async def test_open_and_end_are_audited_with_duration_bytes_and_exit(env: Env) -> None:
    await env.clock.advance(7)
    bridge = await env.service.open_exec("dev1", ACTOR, "cat")
    channel, link = channel_of(bridge), FakeLink()
    task = await env.run(bridge, link)
    (opened,) = await env.audit()
    assert (opened.actor, opened.action, opened.target, opened.time) == (
        ACTOR,
        "open exec",
        "dev1",
        T0 + 7,
    )
    assert opened.detail == {"command": "cat"}
    link.type(b"abcd", b"ef")
    channel.feed(Output(b"abcd"), Output(b"e", stderr=True))
    await until(lambda: len(link.got) == 2 and len(channel.written) == 2, "both ways")
    await env.clock.advance(12.25)
    channel.feed(End(status=3))
    await ended(task)
    (_, closed) = await env.audit()
    assert (closed.actor, closed.action, closed.target, closed.time) == (
        ACTOR,
        "close exec",
        "dev1",
        T0 + 19.25,
    )
    assert closed.detail == {
        "command": "cat",
        "started": T0 + 7,
        "duration": 12.25,
        "bytes_from_device": 5,
        "bytes_to_device": 6,
        "exit_status": 3,
        "exit_signal": None,
        "reason": "",
    }


async def test_each_kind_is_audited_with_what_it_opens(env: Env) -> None:
    await env.service.open_terminal(DEV_FP, ACTOR, "vt100", 100, 30)  # by identity
    await env.service.open_forward("dev1", ACTOR, "127.0.0.1", 8080)
    entries = await env.audit()
    assert [(e.action, e.target, e.detail) for e in entries] == [
        ("open terminal", "dev1", {"term": "vt100", "size": "100x30"}),
        ("open forward", "dev1", {"target": "127.0.0.1:8080"}),
    ]


Opening = Callable[[TerminalService, str], Awaitable[Bridge]]


def terminal(service: TerminalService, name: str) -> Awaitable[Bridge]:
    return service.open_terminal(name, ACTOR, "xterm", 80, 24)


def exec_(command: str) -> Opening:
    return lambda service, name: service.open_exec(name, ACTOR, command)


def forward(port: int) -> Opening:
    return lambda service, name: service.open_forward(name, ACTOR, "127.0.0.1", port)


@pytest.mark.parametrize(
    ("kind", "open_", "name", "refusal", "error", "reason", "detail"),
    [
        pytest.param(
            "terminal",
            terminal,
            "nobody",
            None,
            UnknownDevice,
            "no device named 'nobody'",
            {"term": "xterm", "size": "80x24"},
            id="unknown-device",
        ),
        pytest.param(
            "exec",
            exec_("id"),
            "dev1",
            ServiceRefused("exec is not allowed to this manager"),
            ServiceRefused,
            "exec is not allowed to this manager",
            {"command": "id"},
            id="device-refuses",
        ),
        pytest.param(
            "exec",
            exec_("  "),
            "dev1",
            None,
            ConfigError,
            "exec needs a command",
            {"command": "  "},
            id="no-command",
        ),
        pytest.param(
            "forward",
            forward(65536),
            "dev1",
            None,
            ConfigError,
            "port out of range: 65536",
            {"target": "127.0.0.1:65536"},
            id="port-out-of-range",
        ),
        pytest.param(
            "forward",
            forward(0),
            DEV_FP,
            TimeoutError(),
            ConfigError,
            "port out of range: 0",
            {"target": "127.0.0.1:0"},
            id="port-zero",
        ),
        pytest.param(
            "forward",
            forward(22),
            DEV_FP,
            TimeoutError(),
            TimeoutError,
            "TimeoutError",
            {"target": "127.0.0.1:22"},
            id="device-does-not-answer",
        ),
    ],
)
async def test_a_refusal_is_audited_with_its_reason(
    env: Env,
    kind: str,
    open_: Opening,
    name: str,
    refusal: BaseException | None,
    error: type[BaseException],
    reason: str,
    detail: dict[str, Any],
) -> None:
    env.opener.refusal = refusal
    await env.clock.advance(3)
    with pytest.raises(error):
        await open_(env.service, name)
    (entry,) = await env.audit()
    target = "dev1" if name == DEV_FP else name
    assert (entry.actor, entry.action, entry.target, entry.time) == (
        ACTOR,
        f"refused {kind}",
        target,
        T0 + 3,
    )
    assert entry.detail == {**detail, "reason": reason, "error": error.__name__}
    assert env.session.operator_channels == 0
    if error is ConfigError:  # a bad request never reaches the device
        assert env.opener.calls == []


async def test_a_device_away_is_a_refusal(env: Env) -> None:
    del env.manager.sessions[DEV_FP]
    with pytest.raises(DeviceOffline):
        await env.service.open_terminal("dev1", ACTOR, "xterm", 80, 24)
    (entry,) = await env.audit()
    assert entry.action == "refused terminal"
    assert entry.detail["reason"] == "device 'dev1' is not connected"
    assert entry.detail["error"] == "DeviceOffline"


async def test_a_refusal_reaches_the_operator_even_if_it_cannot_be_audited(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise CallHomeError("the database is gone")

    monkeypatch.setattr(env.manager.store, "record_audit", broken)
    env.opener.refusal = ServiceRefused("no shells here")
    with pytest.raises(ServiceRefused):
        await env.service.open_terminal("dev1", ACTOR, "xterm", 80, 24)


@pytest.mark.parametrize("kind", ["terminal", "exec", "forward"])
async def test_what_cannot_be_audited_is_not_opened_nor_left_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    env = await Env(tmp_path, record="{device}-{id}.cast").start()

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise StoreError("the database is gone")

    monkeypatch.setattr(env.manager.store, "record_audit", broken)
    opening = {
        "terminal": terminal,
        "exec": exec_("id"),
        "forward": forward(22),
    }[kind]
    with pytest.raises(StoreError):
        await opening(env.service, "dev1")
    (channel,) = env.opener.channels
    assert channel.closed
    assert env.session.operator_channels == 0


# -- asciicast recording --------------------------------------------------------------------


async def test_a_recorded_terminal_is_an_asciicast_v2_file(tmp_path: Path) -> None:
    env = await Env(tmp_path, record="casts/{device}/{actor}-{time}-{id}.cast").start()
    await env.clock.advance(100)  # offsets count from the start of the recording
    actor = "token:ops/night"
    bridge = await env.service.open_terminal("dev1", actor, "xterm-256color", 100, 30)
    path = tmp_path / "casts" / "dev1" / f"token:ops_night-20231114T221500-{int(T0) + 100}-1.cast"
    assert bridge.detail["recording"] == str(path)
    channel, link = channel_of(bridge), FakeLink()
    task = await env.run(bridge, link)
    await env.clock.advance(1.5)
    channel.feed(Output(b"hi "))
    await until(lambda: len(link.got) == 1, "the first output")
    await env.clock.advance(0.25)
    channel.feed(Output(b"\xe2\x82"))  # the euro sign cut in two
    await until(lambda: len(link.got) == 2, "half a character")
    await env.clock.advance(0.5)
    channel.feed(Output(b"\xac!"))
    await until(lambda: len(link.got) == 3, "its other half")
    await env.clock.advance(1)
    link.type({"type": "resize", "cols": 120, "rows": 40}, {"type": "resize", "cols": 0})
    await until(lambda: channel.sizes == [(120, 40)], "the resize")
    channel.feed(End(status=0))
    await ended(task)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines == [
        {
            "version": 2,
            "width": 100,
            "height": 30,
            "timestamp": int(T0) + 100,
            "env": {"TERM": "xterm-256color"},
        },
        [1.5, "o", "hi "],
        [2.25, "o", "\u20ac!"],
        [3.25, "r", "120x40"],
    ]
    (opened, closed) = await env.audit()
    assert opened.detail["recording"] == closed.detail["recording"] == str(path)


async def test_each_recording_has_its_own_id(tmp_path: Path) -> None:
    env = await Env(tmp_path, record="{device}-{id}.cast").start()
    first = await env.service.open_terminal("dev1", ACTOR, "xterm", 80, 24)
    second = await env.service.open_terminal("dev1", ACTOR, "xterm", 80, 24)
    assert first.detail["recording"] == str(tmp_path / f"dev1-{int(T0)}-1.cast")
    assert second.detail["recording"] == str(tmp_path / f"dev1-{int(T0)}-2.cast")


async def test_only_terminals_are_recorded(tmp_path: Path) -> None:
    env = await Env(tmp_path, record="{device}-{id}.cast").start()
    bridge = await env.service.open_exec("dev1", ACTOR, "ls")
    channel_of(bridge).feed(Output(b"x"), End(status=0))
    await ended(await env.run(bridge, FakeLink()))
    assert bridge.recording is None and "recording" not in bridge.detail
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".cast"] == []


async def test_a_recording_that_cannot_be_made_leaves_the_terminal_working(
    tmp_path: Path,
) -> None:
    env = await Env(tmp_path, record="{nope}.cast").start()  # no such field
    bridge = await env.service.open_terminal("dev1", ACTOR, "xterm", 80, 24)
    assert bridge.recording is None and "recording" not in bridge.detail
    channel, link = channel_of(bridge), FakeLink()
    task = await env.run(bridge, link)
    channel.feed(Output(b"ok"), End(status=0))
    await ended(task)
    assert link.got[0] == b"ok"


async def test_no_recording_unless_asked(env: Env) -> None:
    bridge = await env.service.open_terminal("dev1", ACTOR, "xterm", 80, 24)
    assert bridge.recording is None and "recording" not in bridge.detail
