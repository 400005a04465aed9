"""What one device may send the manager: message and element caps, notifications nobody
asked for dropped before they are parsed, and a notification rate."""

from __future__ import annotations

import asyncio

import pytest

from callhome.errors import RemoteProtocolError, SessionClosed
from callhome.net.netconf import ClientFeed, NetconfClient, NetconfLimits, NotificationBudget
from callhome.proto.netconf import ClientCore
from callhome.proto.netconf.xmltools import root_name

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
HELLO = (
    f'<hello xmlns="{NC}"><capabilities><capability>urn:ietf:params:netconf:base:1.0'
    "</capability></capabilities><session-id>4</session-id></hello>]]>]]>"
).encode()


def notification(body: str = "<x/>") -> bytes:
    return (
        f'<notification xmlns="{NOTIF}"><eventTime>2024-01-01T00:00:00Z</eventTime>{body}'
        "</notification>]]>]]>"
    ).encode()


def test_the_root_name_is_read_without_parsing() -> None:
    assert root_name(b'<?xml version="1.0"?>\n<!-- c --><nc:notification x="1">') == (
        "notification"
    )
    assert root_name(b"  <rpc-reply message-id='1'>") == "rpc-reply"
    assert root_name(b"<!DOCTYPE x>") is None
    assert root_name(b"no element") is None
    assert root_name(b"<" + b"a" * 5000) is None


def core(**kwargs: object) -> ClientCore:
    c = ClientCore(**kwargs)  # type: ignore[arg-type]
    c.hello()
    c.receive_data(HELLO)
    assert c.next_event() is not None
    return c


def test_a_gate_that_says_no_drops_the_notification_unparsed() -> None:
    seen: list[int] = []
    c = core(notification_gate=lambda size: seen.append(size) or False)
    # not well-formed past its root: parsing it would break the session
    c.receive_data(notification("<broken"))
    assert c.next_event() is None
    assert c.dropped_notifications == 1 and seen


def test_element_and_notification_caps_end_the_session() -> None:
    c = core(max_elements=50)
    c.receive_data(notification("<a/>" * 60))
    with pytest.raises(RemoteProtocolError, match="more than 50 elements"):
        c.next_event()
    c = core(max_notification_size=100)
    c.receive_data(notification("<a>" + "x" * 200 + "</a>"))
    with pytest.raises(RemoteProtocolError, match="over the limit of 100"):
        c.next_event()


def test_the_budget_refills_at_its_rate_up_to_its_burst() -> None:
    now = [0.0]
    budget = NotificationBudget(rate=100, burst=300, clock=lambda: now[0])
    assert budget.take(300) and not budget.take(1)
    now[0] = 1.0
    assert budget.take(100) and not budget.take(1)
    now[0] = 100.0
    assert budget.take(300) and not budget.take(1)  # never more than the burst


async def test_a_client_drops_unsubscribed_notifications_and_ends_a_flood() -> None:
    now = [0.0]
    closed: list[bool] = []
    limits = NetconfLimits(notification_rate=1000, notification_burst=2000)
    client = NetconfClient(
        lambda data: None, lambda: closed.append(True), limits=limits, clock=lambda: now[0]
    )
    client.send_hello()
    client.feed(HELLO)
    await client.wait_hello(1)
    client.feed(notification() * 20)  # nobody subscribed: dropped, the session goes on
    assert client.dropped_notifications == 20 and not client.closed
    received: list[object] = []
    client.on_notification = received.append
    one = notification("<y>" + "z" * 400 + "</y>")
    client.feed(one * 3)  # within the burst
    assert len(received) == 3 and not client.closed
    client.feed(one * 3)  # past it, with no time passed
    assert client.closed and closed
    assert "over the budget" in (client.close_reason or "")
    with pytest.raises(SessionClosed):
        await asyncio.wait_for(client.get(), 1)


async def test_a_big_message_is_parsed_off_the_loop_and_order_is_kept() -> None:
    sent: list[bytes] = []
    client = NetconfClient(sent.append, lambda: None)
    client.send_hello()
    client.feed(HELLO)
    await client.wait_hello(1)
    big = asyncio.ensure_future(client.get())
    small = asyncio.ensure_future(client.get())
    await asyncio.sleep(0)  # both rpcs are sent
    body = "<item>x</item>" * 40_000  # ~560 KB, over OFF_LOOP_PARSE
    replies = (
        f'<rpc-reply xmlns="{NC}" message-id="1"><data>{body}</data></rpc-reply>]]>]]>'
        f'<rpc-reply xmlns="{NC}" message-id="2"><data><small/></data></rpc-reply>]]>]]>'
    ).encode()
    client.feed(replies)
    assert not big.done() and not small.done()  # not parsed inside feed()
    first = await asyncio.wait_for(big, 10)
    assert first.data is not None and len(first.data) == 40_000
    second = await asyncio.wait_for(small, 10)
    assert second.data is not None and second.data[0].tag.endswith("small")


async def test_the_end_of_the_stream_waits_for_the_message_being_parsed() -> None:
    client = NetconfClient(lambda data: None, lambda: None)
    client.send_hello()
    client.feed(HELLO)
    await client.wait_hello(1)
    reply = asyncio.ensure_future(client.get())
    await asyncio.sleep(0)
    body = "<item>x</item>" * 40_000
    client.feed(
        f'<rpc-reply xmlns="{NC}" message-id="1"><data>{body}</data></rpc-reply>]]>]]>'.encode()
    )
    client.feed_eof("device closed the channel")
    got = await asyncio.wait_for(reply, 10)  # answered, then the session ends
    assert got.ok
    assert await asyncio.wait_for(client.wait_closed(), 10)


async def test_early_bytes_are_kept_for_the_client_and_a_flood_of_them_ends_the_stream() -> None:
    kept = ClientFeed(limit=3)
    kept.data(HELLO[:10])
    kept.data(HELLO[10:])
    client = NetconfClient(lambda data: None, lambda: None)
    client.send_hello()
    kept.attach(client)
    assert (await client.wait_hello(1)).session_id is not None
    flooded = ClientFeed(limit=3)
    for _ in range(5):
        flooded.data(b"<x/>")
    late = NetconfClient(lambda data: None, lambda: None)
    late.send_hello()
    flooded.attach(late)
    assert late.closed and late.broke_protocol
    assert "more than 3 reads" in (late.close_reason or "")
