"""The reverse-ssh adapter with real asyncssh on 127.0.0.1, both ends in one event loop."""

from __future__ import annotations

import asyncio

import asyncssh
import pytest
from net_testkit import ALGS, HELLO, KEEP, EchoHandler, Recorder, raw_ssh_device

from callhome.errors import SessionClosed
from callhome.net.keys import identity_of
from callhome.net.reverse_ssh import (
    DeviceSshSettings,
    ManagerSshSettings,
    ReverseSshListener,
    dial_reverse_ssh,
)


def device(manager_key: asyncssh.SSHKey, handler: object | None = None) -> DeviceSshSettings:
    return DeviceSshSettings(
        host_key=asyncssh.generate_private_key("ssh-ed25519"),
        manager_keys=[manager_key],
        handler=handler or EchoHandler(),  # type: ignore[arg-type]
        auth_timeout=5,
        keepalive=KEEP,
        algorithms=ALGS,
    )


async def test_known_device_becomes_a_session_and_answers(ssh_manager):
    _listener, recorder, port, key = ssh_manager
    dev = device(key)
    recorder.allowed.add(identity_of(dev.host_key).fingerprint)
    conn = await dial_reverse_ssh("127.0.0.1", port, dev)
    session = await asyncio.wait_for(recorder.ready.get(), 10)
    assert session.fingerprint == identity_of(dev.host_key).fingerprint
    assert "urn:ietf:params:netconf:base:1.1" in session.capabilities
    reply = await session.netconf.get_config()
    assert reply.data is not None and reply.data[0].text == "v"
    conn.close()
    closed = await asyncio.wait_for(recorder.closed.get(), 10)
    assert closed is session
    with pytest.raises(SessionClosed):
        await session.netconf.get_config()


async def test_unknown_device_is_refused_before_authentication(ssh_manager):
    _listener, recorder, port, key = ssh_manager
    dev = device(key)
    with pytest.raises((asyncssh.Error, OSError)):
        await asyncio.wait_for(dial_reverse_ssh("127.0.0.1", port, dev), 10)
    assert [i.fingerprint for i in recorder.refused] == [identity_of(dev.host_key).fingerprint]
    assert recorder.ready.empty()


async def test_device_refuses_a_manager_with_another_key(ssh_manager):
    _listener, recorder, port, _ = ssh_manager
    dev = device(asyncssh.generate_private_key("ssh-ed25519"))
    recorder.allowed.add(identity_of(dev.host_key).fingerprint)
    with pytest.raises((asyncssh.Error, OSError)):
        await asyncio.wait_for(dial_reverse_ssh("127.0.0.1", port, dev), 10)
    assert recorder.ready.empty()
    for _ in range(100):
        if recorder.auth_failures:
            break
        await asyncio.sleep(0.05)
    assert recorder.auth_failures


class GarbageHandler(EchoHandler):
    """A broken device: its NETCONF service writes junk instead of a hello."""


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\xff garbage that is no XML ]]>]]>",
        b"<hello xmlns='urn:ietf:params:xml:ns:netconf:base:1.0'><capabilities>",
        b"<notnetconf/>]]>]]>",
    ],
)
async def test_broken_device_is_dropped_and_others_are_served(ssh_manager, payload):
    _listener, recorder, port, key = ssh_manager
    bad = await raw_ssh_device(port, payload, recorder.allowed)
    good = device(key)
    recorder.allowed.add(identity_of(good.host_key).fingerprint)
    good_conn = await dial_reverse_ssh("127.0.0.1", port, good)
    session = await asyncio.wait_for(recorder.ready.get(), 10)
    assert session.fingerprint == identity_of(good.host_key).fingerprint
    # the broken one gives a handshake failure (bad hello now, or the handshake timeout)
    await asyncio.wait_for(bad.wait_closed(), 10)
    assert recorder.failures
    assert recorder.ready.empty()
    reply = await session.netconf.get_config()
    assert reply.ok and reply.data is not None
    good_conn.close()


async def test_garbage_on_the_port_is_a_handshake_failure(ssh_manager):
    _listener, recorder, port, _key = ssh_manager
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.0\r\n\r\n" + bytes(range(256)) * 8)
    await writer.drain()
    await asyncio.wait_for(reader.read(), 10)  # the manager hangs up
    writer.close()
    for _ in range(100):
        if recorder.failures:
            break
        await asyncio.sleep(0.05)
    assert recorder.failures


async def test_device_that_stalls_mid_reply_is_disconnected(ssh_manager):
    _listener, recorder, port, _key = ssh_manager
    stalled = await raw_ssh_device(port, HELLO + b"<rpc-reply message-id='1'><da", recorder.allowed)
    session = await asyncio.wait_for(recorder.ready.get(), 10)
    with pytest.raises(TimeoutError):
        await session.netconf.get_config()
    assert session.netconf.closed
    closed = await asyncio.wait_for(recorder.closed.get(), 10)
    assert closed is session
    await asyncio.wait_for(stalled.wait_closed(), 10)


async def test_ipv6_loopback_works_both_ways():
    key = asyncssh.generate_private_key("ssh-ed25519")
    recorder = Recorder()
    listener = ReverseSshListener(recorder, ManagerSshSettings("m", {"": key}, ALGS))
    try:
        port = await listener.listen("::1", 0)
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    dev = device(key)
    recorder.allowed.add(identity_of(dev.host_key).fingerprint)
    conn = await dial_reverse_ssh("::1", port, dev)
    session = await asyncio.wait_for(recorder.ready.get(), 10)
    assert session.address.startswith("[::1]:")
    conn.close()
    await listener.close()


async def test_device_drops_a_manager_that_never_authenticates():
    """RFC 8071 S5: the device closes if the manager has not authenticated in time."""
    accepted: asyncio.Queue[asyncio.StreamReader] = asyncio.Queue()

    async def silent_manager(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(reader)
        await reader.read()  # says nothing, reads until the device hangs up
        writer.close()

    server = await asyncio.start_server(silent_manager, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    dev = DeviceSshSettings(
        host_key=asyncssh.generate_private_key("ssh-ed25519"),
        manager_keys=[asyncssh.generate_private_key("ssh-ed25519")],
        handler=EchoHandler(),  # type: ignore[arg-type]
        auth_timeout=0.5,
        keepalive=KEEP,
        algorithms=ALGS,
    )
    try:
        await asyncio.wait_for(dial_reverse_ssh("127.0.0.1", port, dev), 10)
    except TimeoutError:
        raise AssertionError("the device waited on; its own timer should have ended it") from None
    except (asyncssh.Error, OSError, asyncio.IncompleteReadError):
        pass  # ended by the device's own timer
    else:
        raise AssertionError("a manager that never authenticates was accepted")
    server.close()


async def test_a_device_that_hangs_up_after_its_hello_is_one_failure_and_no_session(
    ssh_manager,
):
    """The hello comes, and the end of the connection right behind it: one failure is
    reported, and no session on a dead connection is handed up."""
    _listener, recorder, port, _key = ssh_manager
    conn = await raw_ssh_device(port, HELLO, recorder.allowed, hang_up=True)
    await asyncio.wait_for(conn.wait_closed(), 10)
    reason = await recorder.failure()
    assert "no NETCONF hello" in reason or "closed" in reason, reason
    for _ in range(100):  # what would hand a session up runs in the next turns
        await asyncio.sleep(0)
    assert recorder.ready.empty() and len(recorder.reports) == 1, recorder.reports
