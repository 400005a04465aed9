"""The turn adapter (the seed's section 7) with real asyncssh on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

import asyncssh
import pytest
from lxml import etree

from callhome.config import KeepaliveConfig, SshAlgorithms
from callhome.errors import SessionClosed
from callhome.identity import Identity
from callhome.net.keys import identity_of
from callhome.net.netconf import NetconfLimits
from callhome.net.session import DeviceSession, Orientation
from callhome.net.turn import (
    TURN_SUBSYSTEM,
    DeviceTurnSettings,
    ManagerTurnSettings,
    TurnListener,
    dial_turn,
)

NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
CAPS = ["urn:ietf:params:netconf:base:1.0", "urn:ietf:params:netconf:base:1.1"]
KEEP = KeepaliveConfig(interval=5, count_max=3)
ALGS = SshAlgorithms()


class Recorder:
    """An Admission that admits a fixed set of keys and records what happens."""

    def __init__(self) -> None:
        self.allowed: set[str] = set()
        self.asked: list[Identity] = []
        self.failures: list[str] = []
        self.ready: asyncio.Queue[DeviceSession] = asyncio.Queue()
        self.closed: asyncio.Queue[DeviceSession] = asyncio.Queue()

    def preferred(self, identities: Sequence[Identity]) -> Identity:
        return identities[0]

    def admit(self, identity: Identity, address: str) -> str | None:
        self.asked.append(identity)
        return "" if identity.fingerprint in self.allowed else None

    def handshake_failed(
        self, address: str, identity: Identity | None, reason: str, *, auth: bool = False
    ) -> None:
        self.failures.append(reason)

    async def session_ready(self, session: DeviceSession) -> None:
        await self.ready.put(session)

    async def session_closed(self, session: DeviceSession) -> None:
        await self.closed.put(session)

    async def failure(self, timeout: float = 10) -> str:
        for _ in range(int(timeout / 0.02)):
            if self.failures:
                return self.failures[0]
            await asyncio.sleep(0.02)
        raise AssertionError("no handshake failure reported")


class EchoHandler:
    """A NETCONF service that answers get-config with a fixed tree."""

    capabilities = CAPS

    def __init__(self) -> None:
        self.next_id = 0

    def open_session(self, on_kill: Callable[[], None], principal: object = None) -> int:
        self.next_id += 1
        return self.next_id

    def close_session(self, session_id: int) -> None:
        pass

    def handle(self, session_id: int, operation: etree._Element) -> etree._Element | None:
        if etree.QName(operation).localname == "get-config":
            data = etree.Element(f"{{{NS}}}data")
            etree.SubElement(data, "{urn:x}leaf").text = "v"
            return data
        return None


@pytest.fixture
async def manager() -> AsyncIterator[tuple[TurnListener, Recorder, int, asyncssh.SSHKey]]:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    recorder = Recorder()
    listener = TurnListener(
        recorder,
        ManagerTurnSettings(
            host_key=host_key,
            keepalive=KEEP,
            algorithms=ALGS,
            handshake_timeout=3,
            rpc_timeout=3,
        ),
    )
    port = await listener.listen("127.0.0.1", 0)
    yield listener, recorder, port, host_key
    await listener.close()


def device(manager_host_key: asyncssh.SSHKey) -> DeviceTurnSettings:
    return DeviceTurnSettings(
        user_key=asyncssh.generate_private_key("ssh-ed25519"),
        manager_host_keys=[manager_host_key],
        handler=EchoHandler(),
        auth_timeout=5,
        keepalive=KEEP,
        algorithms=ALGS,
    )


async def test_known_device_logs_in_and_is_managed(manager):
    _listener, recorder, port, host_key = manager
    dev = device(host_key)
    recorder.allowed.add(identity_of(dev.user_key).fingerprint)
    conn = await dial_turn("127.0.0.1", port, dev)
    session = await asyncio.wait_for(recorder.ready.get(), 10)
    assert session.orientation is Orientation.TURN
    assert session.identity == identity_of(dev.user_key)
    assert "urn:ietf:params:netconf:base:1.1" in session.capabilities
    reply = await session.netconf.get_config()
    assert reply.data is not None and reply.data[0].text == "v"
    # the manager ends the session: the device's connection ends with it
    await session.close()
    await asyncio.wait_for(conn.wait_closed(), 10)
    closed = await asyncio.wait_for(recorder.closed.get(), 10)
    assert closed is session
    with pytest.raises(SessionClosed):
        await session.netconf.get_config()


async def test_unknown_key_is_judged_after_login_and_its_subsystem_refused(manager):
    _listener, recorder, port, host_key = manager
    dev = device(host_key)
    with pytest.raises(asyncssh.Error):
        await asyncio.wait_for(dial_turn("127.0.0.1", port, dev), 10)
    assert recorder.asked == [identity_of(dev.user_key)]  # once, with proof of the key
    assert recorder.ready.empty()
    assert recorder.failures == []  # admit() speaks for refusals


async def test_device_refuses_a_manager_with_another_host_key(manager):
    _listener, recorder, port, _ = manager
    dev = device(asyncssh.generate_private_key("ssh-ed25519"))
    recorder.allowed.add(identity_of(dev.user_key).fingerprint)
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await asyncio.wait_for(dial_turn("127.0.0.1", port, dev), 10)
    assert recorder.asked == [] and recorder.ready.empty()


@pytest.mark.parametrize("request_kind", ["netconf", "sftp", "shell", "exec"])
async def test_other_requests_are_refused_and_others_served(manager, request_kind):
    _listener, recorder, port, host_key = manager
    bad = device(host_key)
    recorder.allowed.add(identity_of(bad.user_key).fingerprint)
    conn = await asyncssh.connect("127.0.0.1", port, options=bad.options)
    kwargs: dict[str, object] = {"encoding": None}
    if request_kind == "exec":
        kwargs["command"] = "id"
    elif request_kind != "shell":
        kwargs["subsystem"] = request_kind
    with pytest.raises(asyncssh.ChannelOpenError):
        await conn.create_session(asyncssh.SSHClientSession, **kwargs)
    await asyncio.wait_for(conn.wait_closed(), 10)
    assert "requested" in await recorder.failure()

    good = device(host_key)
    recorder.allowed.add(identity_of(good.user_key).fingerprint)
    good_conn = await dial_turn("127.0.0.1", port, good)
    session = await asyncio.wait_for(recorder.ready.get(), 10)
    assert (await session.netconf.get_config()).ok
    good_conn.close()


async def test_one_netconf_turn_session_per_connection(manager):
    _listener, recorder, port, host_key = manager
    dev = device(host_key)
    recorder.allowed.add(identity_of(dev.user_key).fingerprint)
    conn = await dial_turn("127.0.0.1", port, dev)
    await asyncio.wait_for(recorder.ready.get(), 10)
    with pytest.raises(asyncssh.ChannelOpenError):
        await conn.create_session(
            asyncssh.SSHClientSession, subsystem=TURN_SUBSYSTEM, encoding=None
        )
    conn.close()


async def test_device_silent_after_login_times_out(manager):
    listener, recorder, port, host_key = manager
    listener.settings.handshake_timeout = 0.5
    dev = device(host_key)
    recorder.allowed.add(identity_of(dev.user_key).fingerprint)
    conn = await asyncssh.connect("127.0.0.1", port, options=dev.options)
    await asyncio.wait_for(conn.wait_closed(), 10)
    assert "timed out" in await recorder.failure()


async def test_garbage_on_the_port_is_a_handshake_failure(manager):
    _listener, recorder, port, _ = manager
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.0\r\n\r\n" + bytes(range(256)) * 8)
    await writer.drain()
    await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await recorder.failure()
    assert recorder.asked == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"<hello>" + b"x" * 8192, "message exceeds the maximum size of 4096 bytes"),
        (b"<notnetconf/>]]>]]>", "expected a <hello> in namespace"),
    ],
    ids=["too-large", "malformed"],
)
async def test_a_hostile_hello_is_reported_as_what_it_was(manager, payload, reason):
    """A device that logs in, opens netconf-turn and breaks the hello: the first failure
    reported says how, not "connection closed"."""
    listener, recorder, port, host_key = manager
    listener.settings.limits = NetconfLimits(max_message_size=4096)
    dev = device(host_key)
    recorder.allowed.add(identity_of(dev.user_key).fingerprint)
    conn = await asyncssh.connect("127.0.0.1", port, options=dev.options)
    chan, _ = await conn.create_session(
        asyncssh.SSHClientSession, subsystem="netconf-turn", encoding=None
    )
    chan.write(payload)
    await asyncio.wait_for(conn.wait_closed(), 10)  # the manager hangs up
    first = await recorder.failure()
    assert first.startswith(f"no NETCONF hello: protocol error: {reason}"), first
    assert recorder.ready.empty()
