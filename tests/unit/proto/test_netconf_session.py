"""The NETCONF cores: a client and a server joined in memory, bad peers, split-invariance, fuzz."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from callhome.errors import (
    ErrorSeverity,
    ErrorTag,
    ErrorType,
    LocalProtocolError,
    RemoteProtocolError,
    RpcError,
    RpcErrorInfo,
)
from callhome.proto.netconf import (
    CAP_BASE_10,
    CAP_BASE_11,
    CLIENT_TRANSITIONS,
    NS_BASE,
    SERVER_TRANSITIONS,
    BadRpc,
    ClientCore,
    Event,
    Framer,
    HelloReceived,
    Input,
    Notification,
    RpcReply,
    RpcRequest,
    ServerCore,
    SessionEnded,
    SessionState,
    op_close_session,
    op_edit_config,
    op_get,
    op_get_config,
    op_lock,
    qname,
)

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SERVER_CAPS = (CAP_BASE_10, CAP_BASE_11, "urn:ietf:params:netconf:capability:candidate:1.0")
BASE_10_HELLO = (
    b'<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>'
    b"<capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>]]>]]>"
)


def events(core: ClientCore | ServerCore) -> list[Event]:
    out = []
    while (event := core.next_event()) is not None:
        out.append(event)
    return out


def connect(
    client_caps: tuple[str, ...] = (CAP_BASE_10, CAP_BASE_11),
    server_caps: tuple[str, ...] = SERVER_CAPS,
) -> tuple[ClientCore, ServerCore]:
    client = ClientCore(client_caps)
    server = ServerCore(17, server_caps)
    server.receive_data(client.hello())
    client.receive_data(server.hello())
    (hello_at_server,) = events(server)
    (hello_at_client,) = events(client)
    assert hello_at_server == HelloReceived(client_caps, None)
    assert hello_at_client == HelloReceived(server_caps, 17)
    return client, server


def exchange(
    client: ClientCore, server: ServerCore, operation: etree._Element | str | bytes
) -> tuple[RpcRequest, Callable[[bytes], RpcReply]]:
    message_id, data = client.rpc(operation)
    server.receive_data(data)
    (request,) = events(server)
    assert isinstance(request, RpcRequest)
    assert request.message_id == message_id

    def answer(reply: bytes) -> RpcReply:
        client.receive_data(reply)
        (event,) = events(client)
        assert isinstance(event, RpcReply)
        assert event.message_id == message_id
        return event

    return request, answer


# -- joined in memory ----------------------------------------------------------------------------


def test_hello_negotiates_chunked_framing() -> None:
    client, server = connect()
    assert client.framing == server.framing == "chunked"
    assert client.session_id == server.session_id == 17
    assert client.peer_capabilities == SERVER_CAPS
    assert server.peer_capabilities == (CAP_BASE_10, CAP_BASE_11)
    assert client.state is server.state is SessionState.ESTABLISHED


@pytest.mark.parametrize(
    ("client_caps", "server_caps"),
    [((CAP_BASE_10,), SERVER_CAPS), ((CAP_BASE_10, CAP_BASE_11), (CAP_BASE_10,))],
)
def test_base_10_keeps_end_of_message_framing(
    client_caps: tuple[str, ...], server_caps: tuple[str, ...]
) -> None:
    client, server = connect(client_caps, server_caps)
    assert client.framing == server.framing == "eom"
    request, answer = exchange(client, server, op_get())
    reply = server.reply_ok(request.message_id, request.rpc)
    assert reply.endswith(b"]]>]]>")
    assert answer(reply).ok


def test_get_config_round_trip() -> None:
    client, server = connect()
    request, answer = exchange(client, server, op_get_config("running", '<top xmlns="urn:t"/>'))
    assert request.operation.tag == qname("get-config")
    assert request.operation.find(f"{{{NS_BASE}}}filter/{{urn:t}}top") is not None
    config = etree.fromstring('<top xmlns="urn:t"><mtu>1500</mtu></top>')
    reply = answer(server.reply_data(request.message_id, config, request.rpc))
    assert reply.ok
    assert reply.errors == []
    assert reply.data is not None
    assert reply.data.findtext("{urn:t}top/{urn:t}mtu") == "1500"
    assert b"<mtu>1500</mtu>" in reply.xml
    assert client.pending == ()


def test_rpc_from_text_defaults_to_base_namespace() -> None:
    client, server = connect()
    request, answer = exchange(
        client, server, "<get-config><source><running/></source></get-config>"
    )
    assert request.operation.tag == qname("get-config")
    data = etree.fromstring(f'<data xmlns="{NS_BASE}"><a xmlns="urn:a"/></data>')
    assert answer(server.reply_data(request.message_id, data)).data is not None


def test_rpc_error_round_trip_keeps_every_field() -> None:
    client, server = connect()
    request, answer = exchange(client, server, op_lock("candidate"))
    errors = [
        RpcErrorInfo(
            type=ErrorType.PROTOCOL,
            tag=ErrorTag.LOCK_DENIED,
            severity=ErrorSeverity.ERROR,
            app_tag="held",
            path="/nc:config",
            message="lock held by session 3",
            message_lang="en",
            info="<session-id>3</session-id>",
            info_items={"session-id": "3"},
        ),
        RpcErrorInfo(
            type=ErrorType.APPLICATION,
            tag=ErrorTag.DATA_MISSING,
            severity=ErrorSeverity.WARNING,
            message="just so you know",
            message_lang="fr",
            info='<bad-element>x</bad-element><v:why xmlns:v="urn:v">because</v:why>',
            info_items={"bad-element": "x"},
        ),
    ]
    reply = answer(server.reply_error(request.message_id, errors, request.rpc))
    assert reply.errors == errors
    assert not reply.ok
    assert reply.failed == errors[:1]
    with pytest.raises(RpcError) as caught:
        reply.raise_for_error()
    assert caught.value.errors == errors[:1]
    assert b"lock held by session 3" in (caught.value.reply_xml or "").encode()


def test_warnings_only_is_ok() -> None:
    client, server = connect()
    request, answer = exchange(client, server, op_get())
    warning = RpcErrorInfo(
        type=ErrorType.APPLICATION, tag=ErrorTag.OPERATION_FAILED, severity=ErrorSeverity.WARNING
    )
    reply = answer(server.reply_error(request.message_id, [warning]))
    assert reply.ok
    assert reply.errors == [warning]
    reply.raise_for_error()


def test_reply_with_output_content() -> None:
    client, server = connect()
    request, answer = exchange(client, server, '<reboot xmlns="urn:sys"/>')
    assert request.operation.tag == "{urn:sys}reboot"
    out = [etree.fromstring('<when xmlns="urn:sys">now</when>'), etree.Element("plain")]
    reply = answer(server.reply(request.message_id, out, request.rpc))
    assert [child.tag for child in reply.element] == ["{urn:sys}when", "plain"]
    assert reply.ok
    assert reply.data is None


def test_notification() -> None:
    client, server = connect()
    body = etree.fromstring('<link-down xmlns="urn:if"><name>eth0</name></link-down>')
    client.receive_data(server.notification("2024-05-01T10:00:00.25+02:00", [body]))
    (event,) = events(client)
    assert isinstance(event, Notification)
    assert event.event_time == "2024-05-01T10:00:00.25+02:00"
    assert [child.tag for child in event.content] == ["{urn:if}link-down"]
    assert event.content[0].findtext("{urn:if}name") == "eth0"


def test_notification_rejects_bad_event_time() -> None:
    _, server = connect()
    with pytest.raises(LocalProtocolError):
        server.notification("yesterday", [])


def test_reply_echoes_every_rpc_attribute() -> None:
    _, server = connect()
    server.receive_data(
        chunked(
            b'<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="a&quot;1"'
            b' xmlns:ex="http://example.net/content/1.0" ex:user-id="fred" plain="x&lt;y"'
            b' xml:lang="en"><get/></rpc>'
        )
    )
    (request,) = events(server)
    assert isinstance(request, RpcRequest)
    assert request.message_id == 'a"1'
    reply = server.reply_ok(request.message_id, request.rpc)
    root = etree.fromstring(reply[reply.index(b"<") : reply.rindex(b">") + 1])
    assert root.get("message-id") == 'a"1'
    assert root.get("{http://example.net/content/1.0}user-id") == "fred"
    assert root.get("plain") == "x<y"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert root[0].tag == qname("ok")


def chunked(message: bytes) -> bytes:
    framer = Framer()
    framer.use_chunked()
    return framer.encode(message)


def test_pipelined_rpcs_and_pending() -> None:
    client, server = connect()
    sent = [client.rpc(op_get()) for _ in range(3)]
    assert [mid for mid, _ in sent] == ["1", "2", "3"]
    assert client.pending == ("1", "2", "3")
    server.receive_data(b"".join(data for _, data in sent))
    requests = events(server)
    assert [r.message_id for r in requests if isinstance(r, RpcRequest)] == ["1", "2", "3"]
    assert server.pending == ("1", "2", "3")
    client.receive_data(server.reply_ok("2") + server.reply_ok("1"))
    assert [e.message_id for e in events(client) if isinstance(e, RpcReply)] == ["2", "1"]
    assert client.pending == ("3",)


def test_close_session() -> None:
    client, server = connect()
    request, answer = exchange(client, server, op_close_session())
    assert client.state is SessionState.CLOSING
    assert server.state is SessionState.CLOSING
    # Requests after close-session are ignored by the server.
    server.receive_data(chunked(f'<rpc xmlns="{NS_BASE}" message-id="99"><get/></rpc>'.encode()))
    assert events(server) == []
    reply = answer(server.reply_ok(request.message_id, request.rpc))
    assert reply.ok
    assert client.state is server.state is SessionState.CLOSED
    with pytest.raises(LocalProtocolError):
        client.rpc(op_get())
    with pytest.raises(LocalProtocolError):
        server.notification("2024-01-01T00:00:00Z", [])
    with pytest.raises(LocalProtocolError):
        server.reply_ok("99")
    client.receive_eof()
    server.receive_eof()
    assert events(client) == [SessionEnded("session closed")]
    assert events(server) == [SessionEnded("session closed")]
    assert client.next_event() is None


def test_close_session_refused() -> None:
    client, server = connect()
    request, answer = exchange(client, server, op_close_session())
    refusal = RpcErrorInfo(type=ErrorType.APPLICATION, tag=ErrorTag.OPERATION_FAILED)
    assert not answer(server.reply_error(request.message_id, [refusal])).ok
    assert client.state is server.state is SessionState.ESTABLISHED
    client.rpc(op_get())


def test_eof_ends_the_session_after_pending_events() -> None:
    client, server = connect()
    client.receive_data(server.notification("2024-01-01T00:00:00Z", []))
    client.receive_eof()
    got = events(client)
    assert isinstance(got[0], Notification)
    assert got[1] == SessionEnded("peer closed the connection")
    assert client.state is SessionState.ENDED


def test_eof_in_the_middle_of_a_message() -> None:
    client, server = connect()
    data = server.notification("2024-01-01T00:00:00Z", [])
    client.receive_data(data + data[:-3])
    client.receive_eof()
    assert isinstance(client.next_event(), Notification)
    with pytest.raises(RemoteProtocolError):
        client.next_event()
    assert client.state is SessionState.BROKEN


def test_hello_and_chunked_message_in_one_read() -> None:
    client = ClientCore()
    server = ServerCore(5, SERVER_CAPS)
    client_hello = client.hello()
    server_bytes = server.hello()
    server.receive_data(client_hello)
    assert isinstance(server.next_event(), HelloReceived)
    server_bytes += server.notification("2024-01-01T00:00:00Z", [etree.Element("a")])
    client.receive_data(server_bytes)
    got = events(client)
    assert isinstance(got[0], HelloReceived)
    assert isinstance(got[1], Notification)
    assert client.framing == "chunked"


def test_server_reads_hello_and_rpc_in_one_read() -> None:
    client = ClientCore()
    server = ServerCore(5, SERVER_CAPS)
    hello = client.hello()
    client.receive_data(server.hello())
    events(client)
    _, rpc = client.rpc(op_get())
    server.receive_data(hello + rpc)
    got = events(server)
    assert isinstance(got[0], HelloReceived)
    assert isinstance(got[1], RpcRequest)


def test_peer_hello_first_then_ours() -> None:
    client = ClientCore()
    server = ServerCore(5, SERVER_CAPS)
    server.receive_data(client.hello())
    assert isinstance(server.next_event(), HelloReceived)
    assert server.state is SessionState.HELLO_RECEIVED
    assert server.framing == "eom"
    client.receive_data(server.hello())
    assert server.framing == "chunked"
    assert isinstance(client.next_event(), HelloReceived)


def test_reading_past_peer_hello_before_sending_ours_is_a_local_error() -> None:
    client = ClientCore()
    server = ServerCore(5, SERVER_CAPS)
    client.receive_data(server.hello() + b"\n#1\nx")
    assert isinstance(client.next_event(), HelloReceived)
    with pytest.raises(LocalProtocolError):
        client.next_event()


# -- local misuse ----------------------------------------------------------------------------


def test_rpc_before_server_hello() -> None:
    client = ClientCore()
    with pytest.raises(LocalProtocolError):
        client.rpc(op_get())
    client.hello()
    with pytest.raises(LocalProtocolError):
        client.rpc(op_get())


@pytest.mark.parametrize(
    "operation",
    ["", "<a/><b/>", "<a>", "text", "<rpc/>", etree.Comment("c")],
)
def test_rpc_rejects_bad_operations(operation: str | etree._Element) -> None:
    client, _ = connect()
    with pytest.raises(LocalProtocolError):
        client.rpc(operation)
    assert client.pending == ()


def test_unframable_messages_change_nothing() -> None:
    client, server = connect((CAP_BASE_10,))
    with pytest.raises(LocalProtocolError):
        client.rpc("<get><!-- ]]>]]> --></get>")
    assert client.pending == ()
    request, answer = exchange(client, server, op_get())
    assert request.message_id == "1"
    with pytest.raises(LocalProtocolError):
        server.reply(request.message_id, [etree.Comment(" ]]>]]> ")])
    with pytest.raises(LocalProtocolError):
        server.notification("2024-01-01T00:00:00Z", [etree.Comment(" ]]>]]> ")])
    assert server.pending == ("1",)
    assert answer(server.reply_ok(request.message_id)).ok


def test_hello_twice() -> None:
    client = ClientCore()
    client.hello()
    with pytest.raises(LocalProtocolError):
        client.hello()


def test_server_reply_misuse() -> None:
    _, server = connect()
    with pytest.raises(LocalProtocolError):
        server.reply_ok("1")
    with pytest.raises(LocalProtocolError):
        server.reply_error(None, [RpcErrorInfo(type=ErrorType.RPC, tag=ErrorTag.IN_USE)])


def test_constructor_checks() -> None:
    with pytest.raises(LocalProtocolError):
        ClientCore(("urn:x",))
    with pytest.raises(LocalProtocolError):
        ServerCore(0, SERVER_CAPS)
    with pytest.raises(LocalProtocolError):
        ServerCore(1, ())


def test_state_tables_cover_eof_everywhere_alive() -> None:
    for table in (CLIENT_TRANSITIONS, SERVER_TRANSITIONS):
        for state in SessionState:
            if state not in (SessionState.ENDED, SessionState.BROKEN):
                assert table[(state, Input.EOF)] is SessionState.ENDED


# -- broken peers ------------------------------------------------------------------------------


def server_hello(caps: tuple[str, ...] = SERVER_CAPS, session_id: str | None = "9") -> bytes:
    body = "".join(f"<capability>{c}</capability>" for c in caps)
    sid = f"<session-id>{session_id}</session-id>" if session_id is not None else ""
    return (
        f'<hello xmlns="{NS_BASE}"><capabilities>{body}</capabilities>{sid}</hello>]]>]]>'
    ).encode()


@pytest.mark.parametrize(
    "stream",
    [
        server_hello(session_id=None),
        server_hello(caps=("urn:ietf:params:netconf:base:2.0",)),
        b"<hello>]]>]]>",
        f'<rpc-reply xmlns="{NS_BASE}" message-id="1"><ok/></rpc-reply>]]>]]>'.encode(),
        server_hello() + chunked(server_hello()[:-6]),
    ],
)
def test_client_rejects_bad_server_hello(stream: bytes) -> None:
    client = ClientCore()
    client.hello()
    client.receive_data(stream)
    with pytest.raises(RemoteProtocolError):
        events(client)
    with pytest.raises(RemoteProtocolError, match="broken"):
        client.next_event()


@pytest.mark.parametrize(
    "message",
    [
        f'<rpc-reply xmlns="{NS_BASE}" message-id="42"><ok/></rpc-reply>',
        f'<rpc-reply xmlns="{NS_BASE}"><rpc-error><error-type>rpc</error-type>'
        "<error-tag>malformed-message</error-tag><error-severity>error</error-severity>"
        "</rpc-error></rpc-reply>",
        f'<hello xmlns="{NS_BASE}"><capabilities><capability>{CAP_BASE_11}</capability>'
        "</capabilities><session-id>3</session-id></hello>",
        f'<notification xmlns="{NS_BASE}"><eventTime>x</eventTime></notification>',
        '<notification xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0"/>',
        "<not-xml",
        '<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>',
    ],
)
def test_client_rejects_bad_messages(message: str) -> None:
    client, _ = connect()
    client.receive_data(chunked(message.encode()))
    with pytest.raises(RemoteProtocolError):
        events(client)
    assert client.state is SessionState.BROKEN


def test_client_rejects_second_reply_to_one_rpc() -> None:
    client, server = connect()
    request, answer = exchange(client, server, op_get())
    answer(server.reply_ok(request.message_id))
    client.receive_data(
        chunked(f'<rpc-reply xmlns="{NS_BASE}" message-id="1"><ok/></rpc-reply>'.encode())
    )
    with pytest.raises(RemoteProtocolError, match="unknown message-id"):
        client.next_event()


def test_server_rejects_client_hello_with_session_id() -> None:
    server = ServerCore(1, SERVER_CAPS)
    server.hello()
    server.receive_data(server_hello())
    with pytest.raises(RemoteProtocolError, match="session-id"):
        server.next_event()


def test_server_rejects_rpc_before_hello() -> None:
    server = ServerCore(1, SERVER_CAPS)
    server.hello()
    server.receive_data(f'<rpc xmlns="{NS_BASE}" message-id="1"><get/></rpc>]]>]]>'.encode())
    with pytest.raises(RemoteProtocolError):
        server.next_event()


def test_oversize_message_breaks_the_session() -> None:
    client = ClientCore(max_message_size=1000)
    client.hello()
    client.receive_data(server_hello())
    events(client)
    client.receive_data(b"\n#1001\n")
    with pytest.raises(RemoteProtocolError, match="maximum size"):
        client.next_event()


# -- BadRpc ------------------------------------------------------------------------------------


def bad_rpc(message: bytes, base_11: bool = True) -> tuple[BadRpc, ServerCore]:
    client_caps = (CAP_BASE_10, CAP_BASE_11) if base_11 else (CAP_BASE_10,)
    _, server = connect(client_caps)
    framer = Framer()
    if base_11:
        framer.use_chunked()
    server.receive_data(framer.encode(message))
    (event,) = events(server)
    assert isinstance(event, BadRpc)
    return event, server


RPC_OPEN = f'<rpc xmlns="{NS_BASE}"'


@pytest.mark.parametrize(
    ("message", "message_id", "tag", "type_", "items"),
    [
        (
            f"{RPC_OPEN}><get/></rpc>",
            None,
            ErrorTag.MISSING_ATTRIBUTE,
            ErrorType.RPC,
            {"bad-attribute": "message-id", "bad-element": "rpc"},
        ),
        ("<rpc", None, ErrorTag.MALFORMED_MESSAGE, ErrorType.RPC, {}),
        (
            f'{RPC_OPEN} message-id="1"><get/></rpc><extra/>',
            None,
            ErrorTag.MALFORMED_MESSAGE,
            ErrorType.RPC,
            {},
        ),
        (
            f'<!DOCTYPE rpc>{RPC_OPEN} message-id="1"><get/></rpc>',
            None,
            ErrorTag.MALFORMED_MESSAGE,
            ErrorType.RPC,
            {},
        ),
        (
            f'<get-config xmlns="{NS_BASE}" message-id="4"/>',
            "4",
            ErrorTag.UNKNOWN_ELEMENT,
            ErrorType.PROTOCOL,
            {"bad-element": "get-config"},
        ),
        (
            '<rpc xmlns="urn:wrong" message-id="5"><get/></rpc>',
            "5",
            ErrorTag.UNKNOWN_NAMESPACE,
            ErrorType.PROTOCOL,
            {"bad-element": "rpc", "bad-namespace": "urn:wrong"},
        ),
        (
            '<rpc message-id="6"><get/></rpc>',
            "6",
            ErrorTag.UNKNOWN_NAMESPACE,
            ErrorType.PROTOCOL,
            {"bad-element": "rpc", "bad-namespace": ""},
        ),
        (
            f'{RPC_OPEN} message-id="7"/>',
            "7",
            ErrorTag.MISSING_ELEMENT,
            ErrorType.PROTOCOL,
            {"bad-element": "rpc"},
        ),
        (
            f'{RPC_OPEN} message-id="8"><get/><get-config/></rpc>',
            "8",
            ErrorTag.UNKNOWN_ELEMENT,
            ErrorType.PROTOCOL,
            {"bad-element": "get-config"},
        ),
    ],
)
def test_bad_rpc(
    message: str,
    message_id: str | None,
    tag: ErrorTag,
    type_: ErrorType,
    items: dict[str, str],
) -> None:
    event, server = bad_rpc(message.encode())
    assert event.message_id == message_id
    assert event.error.tag is tag
    assert event.error.type is type_
    for key, value in items.items():
        assert event.error.info_items[key] == value
    # The driver answers it, and the session goes on.
    reply = server.reply_error(event.message_id, [event.error], event.rpc)
    root = etree.fromstring(reply[reply.index(b"<") : reply.rindex(b">") + 1])
    assert root.get("message-id") == message_id
    assert root.findtext(f"{{{NS_BASE}}}rpc-error/{{{NS_BASE}}}error-tag") == tag.value
    server.receive_data(chunked(f'{RPC_OPEN} message-id="10"><get/></rpc>'.encode()))
    assert isinstance(server.next_event(), RpcRequest)


def test_malformed_message_tag_is_not_sent_to_base_10_clients() -> None:
    event, _ = bad_rpc(b"<rpc", base_11=False)
    assert event.error.tag is ErrorTag.OPERATION_FAILED
    assert event.error.type is ErrorType.RPC


# -- properties: split anywhere ------------------------------------------------------------------

cuts = st.lists(st.integers(min_value=0, max_value=100_000), max_size=10)


def split_at(data: bytes, cut: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cut})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


def summary(event: Event) -> tuple[object, ...]:
    if isinstance(event, RpcRequest):
        return ("rpc", event.message_id, etree.tostring(event.rpc))
    if isinstance(event, BadRpc):
        return ("bad", event.message_id, event.error)
    if isinstance(event, RpcReply):
        return ("reply", event.message_id, event.ok, event.xml, tuple(event.errors))
    if isinstance(event, Notification):
        return ("notification", event.event_time, etree.tostring(event.element))
    return (type(event).__name__, *vars(event).values())


def client_stream() -> bytes:
    """What a client sends: hello, then rpcs (chunked), one of them broken."""
    client, _ = connect()
    parts = [ClientCore().hello()]
    parts.append(client.rpc(op_get_config())[1])
    parts.append(client.rpc(op_edit_config("candidate", '<a xmlns="urn:a">x</a>'))[1])
    parts.append(chunked(b"<rpc"))
    parts.append(client.rpc(op_close_session())[1])
    return b"".join(parts)


CLIENT_STREAM = client_stream()


def run_server(pieces: list[bytes], eof: bool = True) -> list[tuple[object, ...]]:
    server = ServerCore(3, SERVER_CAPS, max_message_size=4096)
    server.hello()
    out = []
    for piece in pieces:
        server.receive_data(piece)
        out.extend(summary(e) for e in events(server))
    if eof:
        server.receive_eof()
        out.extend(summary(e) for e in events(server))
    return out


def server_stream() -> bytes:
    """What a server sends: hello, notifications, replies to rpcs "1" and "2"."""
    server = ServerCore(3, SERVER_CAPS)
    parts = [server.hello()]
    server.receive_data(ClientCore().hello())
    events(server)
    parts.append(server.notification("2024-01-01T00:00:00Z", [etree.Element("n1")]))
    framer = Framer()
    framer.use_chunked()
    for message_id in ("1", "2"):
        server.receive_data(
            framer.encode(f'{RPC_OPEN} message-id="{message_id}"><get/></rpc>'.encode())
        )
        events(server)
    parts.append(server.reply_data("1", etree.fromstring('<x xmlns="urn:x">1</x>')))
    parts.append(server.notification("2024-01-01T00:00:01Z", [etree.Element("n2")]))
    error = RpcErrorInfo(type=ErrorType.APPLICATION, tag=ErrorTag.IN_USE, message="busy")
    parts.append(server.reply_error("2", [error]))
    return b"".join(parts)


SERVER_STREAM = server_stream()


def run_client(pieces: list[bytes], eof: bool = True) -> list[tuple[object, ...]]:
    client = ClientCore(max_message_size=4096)
    client.hello()
    out = []

    def drain() -> None:
        while (event := client.next_event()) is not None:
            out.append(summary(event))
            if isinstance(event, HelloReceived):
                client.rpc(op_get())
                client.rpc(op_get())

    for piece in pieces:
        client.receive_data(piece)
        drain()
    if eof:
        client.receive_eof()
        drain()
    return out


def test_streams_yield_expected_events() -> None:
    server_events = run_server([CLIENT_STREAM])
    assert [e[0] for e in server_events] == [
        "HelloReceived",
        "rpc",
        "rpc",
        "bad",
        "rpc",
        "SessionEnded",
    ]
    client_events = run_client([SERVER_STREAM])
    assert [e[0] for e in client_events] == [
        "HelloReceived",
        "notification",
        "reply",
        "notification",
        "reply",
        "SessionEnded",
    ]


@given(cut=cuts)
@settings(max_examples=100, deadline=None)
def test_server_events_do_not_depend_on_how_bytes_are_split(cut: list[int]) -> None:
    assert run_server(split_at(CLIENT_STREAM, cut)) == run_server([CLIENT_STREAM])


@given(cut=cuts)
@settings(max_examples=100, deadline=None)
def test_client_events_do_not_depend_on_how_bytes_are_split(cut: list[int]) -> None:
    assert run_client(split_at(SERVER_STREAM, cut)) == run_client([SERVER_STREAM])


# -- fuzz: broken input raises RemoteProtocolError and nothing else --------------------------------


def fuzz_server(pieces: list[bytes]) -> None:
    server = ServerCore(3, SERVER_CAPS, max_message_size=4096)
    server.hello()
    try:
        for piece in [*pieces, None]:
            if piece is None:
                server.receive_eof()
            else:
                server.receive_data(piece)
            while (event := server.next_event()) is not None:
                if isinstance(event, RpcRequest):
                    server.reply_ok(event.message_id, event.rpc)
                elif isinstance(event, BadRpc):
                    server.reply_error(event.message_id, [event.error], event.rpc)
    except RemoteProtocolError:
        pass


def fuzz_client(pieces: list[bytes]) -> None:
    with contextlib.suppress(RemoteProtocolError):
        run_client(pieces)


def mutate(stream: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    data = bytearray(stream)
    for kind, position, value in edits:
        position %= len(data) + 1
        if kind == 0 and position < len(data):
            data[position] = value
        elif kind == 1:
            data[position:position] = bytes([value])
        elif position < len(data):
            del data[position]
    return bytes(data)


edits = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 100_000), st.integers(0, 255)),
    min_size=1,
    max_size=4,
)


@given(edit=edits, cut=cuts)
@FUZZ
def test_fuzz_server_mutated_stream(edit: list[tuple[int, int, int]], cut: list[int]) -> None:
    fuzz_server(split_at(mutate(CLIENT_STREAM, edit), cut))


@given(edit=edits, cut=cuts)
@FUZZ
def test_fuzz_client_mutated_stream(edit: list[tuple[int, int, int]], cut: list[int]) -> None:
    fuzz_client(split_at(mutate(SERVER_STREAM, edit), cut))


@given(data=st.lists(st.binary(max_size=80), max_size=6), after_hello=st.booleans())
@FUZZ
def test_fuzz_random_bytes(data: list[bytes], after_hello: bool) -> None:
    prefix = [SERVER_STREAM[: SERVER_STREAM.index(b"]]>]]>") + 6]] if after_hello else []
    fuzz_client(prefix + data)
    fuzz_server(
        ([CLIENT_STREAM[: CLIENT_STREAM.index(b"]]>]]>") + 6]] if after_hello else []) + data
    )


@given(body=st.text(max_size=60), use_chunked=st.booleans())
@FUZZ
def test_fuzz_xml_like_messages(body: str, use_chunked: bool) -> None:
    framer = Framer()
    if use_chunked:
        framer.use_chunked()
    message = f'<rpc-reply xmlns="{NS_BASE}" message-id="1">{body}</rpc-reply>'.encode()
    try:
        framed = framer.encode(message)
    except LocalProtocolError:
        return
    fuzz_client([SERVER_STREAM[: SERVER_STREAM.index(b"]]>]]>") + 6], framed])
    server_message = f'{RPC_OPEN} message-id="1">{body}</rpc>'.encode()
    try:
        framed = framer.encode(server_message)
    except LocalProtocolError:
        return
    hello = (CAP_BASE_10, CAP_BASE_11) if use_chunked else (CAP_BASE_10,)
    fuzz_server([ClientCore(hello).hello(), framed])
