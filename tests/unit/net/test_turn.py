"""The turn adapter (the seed's section 7) with real asyncssh on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncssh
import pytest
from net_testkit import ALGS, KEEP, EchoHandler, Recorder, listener_limits

from callhome.errors import SessionClosed
from callhome.net.keys import identity_of
from callhome.net.netconf import NetconfLimits
from callhome.net.session import Orientation
from callhome.net.turn import (
    TURN_SUBSYSTEM,
    DeviceTurnSettings,
    ManagerTurnSettings,
    TurnListener,
    dial_turn,
)

Started = tuple[TurnListener, Recorder, int, asyncssh.SSHKey]


@pytest.fixture
async def start_manager() -> AsyncIterator[Callable[..., Awaitable[Started]]]:
    """Starts turn listeners on 127.0.0.1 with short limits (and the changes given)."""
    listeners: list[TurnListener] = []

    async def start(**changes: object) -> Started:
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        recorder = Recorder()
        chosen = listener_limits(**{"handshake_timeout": 3, "rpc_timeout": 3, **changes})
        listener = TurnListener(recorder, ManagerTurnSettings(host_key, ALGS, chosen))
        listeners.append(listener)
        return listener, recorder, await listener.listen("127.0.0.1", 0), host_key

    yield start
    for listener in listeners:
        await listener.close()


@pytest.fixture
async def manager(start_manager: Callable[..., Awaitable[Started]]) -> Started:
    return await start_manager()


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


async def test_device_silent_after_login_times_out(start_manager):
    _listener, recorder, port, host_key = await start_manager(handshake_timeout=0.5)
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
async def test_a_hostile_hello_is_reported_as_what_it_was(start_manager, payload, reason):
    """A device that logs in, opens netconf-turn and breaks the hello: the first failure
    reported says how, not "connection closed"."""
    started = await start_manager(netconf=NetconfLimits(max_message_size=4096))
    _listener, recorder, port, host_key = started
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
