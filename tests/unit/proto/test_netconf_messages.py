"""NETCONF XML: safe parsing, hello, rpc-error both ways, operation builders."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
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
    NS_BASE,
    NS_NOTIF,
    build_hello,
    op_cancel_commit,
    op_close_session,
    op_commit,
    op_copy_config,
    op_create_subscription,
    op_delete_config,
    op_discard_changes,
    op_edit_config,
    op_get,
    op_get_config,
    op_kill_session,
    op_lock,
    op_unlock,
    op_validate,
    operations,
    parse_fragment,
    parse_hello,
    parse_xml,
    qname,
    rpc_error_from_xml,
    rpc_error_to_xml,
    serialize,
    xmltools,
)


def nc(local: str) -> str:
    return qname(local)


def canonical(element: etree._Element) -> str:
    return etree.tostring(element, method="c14n2").decode()


def same_xml(element: etree._Element, text: str) -> bool:
    expected = etree.fromstring(text, etree.XMLParser(remove_blank_text=True))
    return canonical(etree.fromstring(serialize(element))) == canonical(expected)


# -- parse_xml -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<a>",
        b"<a></b>",
        b"not xml",
        b"<a>&undefined;</a>",
        b"<a/><b/>",
        b'<?xml version="1.0" encoding="no-such-encoding"?><a/>',
        b"\xff\xfe<\x00a\x00",
        b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>',
        b'<!DOCTYPE a [<!ENTITY l "lol"><!ENTITY l2 "&l;&l;&l;&l;">]><a>&l2;</a>',
        b'<!DOCTYPE a SYSTEM "http://example.com/a.dtd"><a/>',
        b"<!DOCTYPE a><a/>",
    ],
)
def test_parse_xml_rejects(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_xml(data)


def test_parse_xml_accepts_declaration_and_leading_whitespace() -> None:
    root = parse_xml(b'\n <?xml version="1.0" encoding="UTF-8"?>\n<a>\n  <b>x</b>\n</a>')
    assert root.tag == "a"
    assert root[0].text == "x"
    assert root.text is None  # blank text removed


# -- hello -----------------------------------------------------------------------------------


def test_hello_round_trip() -> None:
    caps = (CAP_BASE_10, CAP_BASE_11, "urn:ietf:params:netconf:capability:candidate:1.0")
    assert parse_hello(build_hello(caps, 4)) == (caps, 4)
    assert parse_hello(build_hello(caps)) == (caps, None)


def test_parse_hello_rfc6241_example() -> None:
    root = parse_xml(
        b"""<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
         <capabilities>
           <capability>
             urn:ietf:params:netconf:base:1.1
           </capability>
           <capability>
             urn:ietf:params:netconf:capability:startup:1.0
           </capability>
           <capability>
             http://example.net/router/2.3/myfeature
           </capability>
         </capabilities>
         <session-id>4</session-id>
       </hello>"""
    )
    caps, session_id = parse_hello(root)
    assert caps == (
        CAP_BASE_11,
        "urn:ietf:params:netconf:capability:startup:1.0",
        "http://example.net/router/2.3/myfeature",
    )
    assert session_id == 4


@pytest.mark.parametrize(
    "xml",
    [
        b'<hello xmlns="urn:x"><capabilities><capability>a</capability></capabilities></hello>',
        b'<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities/></hello>',
        b'<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>',
    ]
    + [
        b'<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>'
        b"<capability>urn:ietf:params:netconf:base:1.0</capability></capabilities>"
        b"<session-id>" + bad + b"</session-id></hello>"
        for bad in (b"0", b"-1", b"4294967296", b"x", b"", b"1.5", b"\xd9\xa3")
    ],
)
def test_parse_hello_rejects(xml: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_hello(parse_xml(xml))


def test_build_hello_rejects_bad_session_id() -> None:
    with pytest.raises(LocalProtocolError):
        build_hello([CAP_BASE_10], 0)


# -- rpc-error -------------------------------------------------------------------------------

RFC6241_ERRORS = b"""
<rpc-reply message-id="101"
  xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"
  xmlns:xc="urn:ietf:params:xml:ns:netconf:base:1.0">
  <rpc-error>
    <error-type>application</error-type>
    <error-tag>invalid-value</error-tag>
    <error-severity>error</error-severity>
    <error-path xmlns:t="http://example.com/schema/1.2/config">
      /t:top/t:interface[t:name="Ethernet0/0"]/t:mtu
    </error-path>
    <error-message xml:lang="en">
      MTU value 25000 is not within range 256..9192
    </error-message>
  </rpc-error>
  <rpc-error>
    <error-type>application</error-type>
    <error-tag>partial-operation</error-tag>
    <error-severity>error</error-severity>
    <error-info>
      <ok-element>t:interface</ok-element>
      <ok-element>t:address</ok-element>
      <err-element>t:mtu</err-element>
      <noop-element>t:name</noop-element>
    </error-info>
  </rpc-error>
</rpc-reply>
"""


def test_rpc_error_from_rfc6241_example() -> None:
    reply = parse_xml(RFC6241_ERRORS)
    first, second = (rpc_error_from_xml(e) for e in reply)
    assert first == RpcErrorInfo(
        type=ErrorType.APPLICATION,
        tag=ErrorTag.INVALID_VALUE,
        severity=ErrorSeverity.ERROR,
        path='/t:top/t:interface[t:name="Ethernet0/0"]/t:mtu',
        message="MTU value 25000 is not within range 256..9192",
        message_lang="en",
        # the path's prefix, with the namespace in scope where it stands
        path_namespaces={"t": "http://example.com/schema/1.2/config"},
    )
    assert second.tag is ErrorTag.PARTIAL_OPERATION
    assert second.info_items == {
        "ok-element": "t:interface t:address",
        "err-element": "t:mtu",
        "noop-element": "t:name",
    }
    assert second.info == (
        "<ok-element>t:interface</ok-element><ok-element>t:address</ok-element>"
        "<err-element>t:mtu</err-element><noop-element>t:name</noop-element>"
    )


def test_rpc_error_with_prefixed_base_namespace() -> None:
    element = parse_xml(
        b'<nc:rpc-error xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">'
        b"<nc:error-type>protocol</nc:error-type><nc:error-tag>lock-denied</nc:error-tag>"
        b"<nc:error-severity>error</nc:error-severity>"
        b"<nc:error-info><nc:session-id>454</nc:session-id></nc:error-info></nc:rpc-error>"
    )
    error = rpc_error_from_xml(element)
    assert error.tag is ErrorTag.LOCK_DENIED
    assert error.type is ErrorType.PROTOCOL
    assert error.info == "<session-id>454</session-id>"
    assert error.info_items == {"session-id": "454"}


def test_rpc_error_unknown_values_do_not_crash() -> None:
    element = parse_xml(
        b'<rpc-error xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
        b"<error-type>vendor</error-type><error-tag>flux-capacitor</error-tag>"
        b"<error-severity>fatal</error-severity></rpc-error>"
    )
    error = rpc_error_from_xml(element)
    assert error.tag is ErrorTag.OPERATION_FAILED
    assert error.type is ErrorType.APPLICATION
    assert error.severity is ErrorSeverity.ERROR
    assert error.info_items == {
        "original-tag": "flux-capacitor",
        "original-type": "vendor",
        "original-severity": "fatal",
    }
    # The synthetic items are not written back as error-info.
    assert rpc_error_to_xml(error).find(nc("error-info")) is None


def test_rpc_error_missing_fields() -> None:
    error = rpc_error_from_xml(
        parse_xml(b'<rpc-error xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>')
    )
    assert error.tag is ErrorTag.OPERATION_FAILED
    assert error.info_items["original-tag"] == ""


def test_rpc_error_keeps_foreign_info_children() -> None:
    element = parse_xml(
        b'<rpc-error xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
        b"<error-type>application</error-type><error-tag>data-missing</error-tag>"
        b"<error-severity>warning</error-severity>"
        b'<error-info><bad-element>mtu</bad-element><v:detail xmlns:v="urn:vendor" code="7">'
        b"<v:line>3</v:line></v:detail></error-info></rpc-error>"
    )
    error = rpc_error_from_xml(element)
    assert error.severity is ErrorSeverity.WARNING
    assert error.info_items == {"bad-element": "mtu"}
    again = rpc_error_from_xml(parse_xml(serialize(rpc_error_to_xml(error))))
    assert again == error
    info = rpc_error_to_xml(error).find(nc("error-info"))
    assert info is not None
    assert info.find("{urn:vendor}detail/{urn:vendor}line") is not None


def test_rpc_error_info_without_namespace_survives() -> None:
    element = parse_xml(
        b'<nc:rpc-error xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">'
        b"<nc:error-type>rpc</nc:error-type><nc:error-tag>bad-element</nc:error-tag>"
        b"<nc:error-severity>error</nc:error-severity>"
        b"<nc:error-info><plain>p</plain><nc:bad-element>x</nc:bad-element></nc:error-info>"
        b"</nc:rpc-error>"
    )
    error = rpc_error_from_xml(element)
    rebuilt = rpc_error_to_xml(error).find(nc("error-info"))
    assert rebuilt is not None
    assert [child.tag for child in rebuilt] == ["plain", nc("bad-element")]
    # The text of info may change form once (prefixes), then stays the same.
    once = rpc_error_from_xml(parse_xml(serialize(rpc_error_to_xml(error))))
    assert once.info_items == error.info_items == {"bad-element": "x"}
    twice = rpc_error_from_xml(parse_xml(serialize(rpc_error_to_xml(once))))
    assert twice == once


def test_rpc_error_to_xml_rfc_order() -> None:
    error = RpcErrorInfo(
        type=ErrorType.PROTOCOL,
        tag=ErrorTag.LOCK_DENIED,
        app_tag="app",
        path="/a",
        message="locked",
        message_lang="de",
        info="<session-id>3</session-id>",
        info_items={"session-id": "3"},
    )
    element = rpc_error_to_xml(error)
    assert same_xml(
        element,
        '<rpc-error xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
        "<error-type>protocol</error-type><error-tag>lock-denied</error-tag>"
        "<error-severity>error</error-severity><error-app-tag>app</error-app-tag>"
        '<error-path>/a</error-path><error-message xml:lang="de">locked</error-message>'
        "<error-info><session-id>3</session-id></error-info></rpc-error>",
    )


def test_rpc_error_from_rpc_error_single() -> None:
    error = RpcError.single(
        ErrorTag.DATA_EXISTS, "exists", info={"bad-element": "a<b"}, app_tag="t"
    ).first
    assert rpc_error_from_xml(parse_xml(serialize(rpc_error_to_xml(error)))) == error


def test_rpc_error_info_items_only() -> None:
    error = RpcErrorInfo(
        type=ErrorType.RPC, tag=ErrorTag.MISSING_ATTRIBUTE, info_items={"bad-attribute": "x"}
    )
    back = rpc_error_from_xml(parse_xml(serialize(rpc_error_to_xml(error))))
    assert back.info_items == {"bad-attribute": "x"}
    assert back.info == "<bad-attribute>x</bad-attribute>"


@pytest.mark.parametrize(
    "error",
    [
        RpcErrorInfo(type=ErrorType.RPC, tag=ErrorTag.IN_USE, info="<a>"),
        RpcErrorInfo(type=ErrorType.RPC, tag=ErrorTag.IN_USE, message="nul \x00"),
        RpcErrorInfo(type=ErrorType.RPC, tag=ErrorTag.IN_USE, info_items={"not a name": "x"}),
    ],
)
def test_rpc_error_to_xml_rejects_bad_input(error: RpcErrorInfo) -> None:
    with pytest.raises(LocalProtocolError):
        rpc_error_to_xml(error)


xml_text = (
    st.text(
        st.characters(
            blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\ufffe\uffff"
        ),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(bool)
)


@given(
    type_=st.sampled_from(ErrorType),
    tag=st.sampled_from(ErrorTag),
    severity=st.sampled_from(ErrorSeverity),
    app_tag=st.none() | xml_text,
    path=st.none() | xml_text,
    message=st.none() | xml_text,
    lang=st.none() | st.sampled_from(["en", "de", "fr-CA"]),
    items=st.dictionaries(
        st.sampled_from(["bad-element", "bad-attribute", "bad-namespace", "session-id"]),
        xml_text,
        max_size=3,
    ),
)
@settings(max_examples=150, deadline=None)
def test_rpc_error_round_trip_keeps_every_field(
    type_: ErrorType,
    tag: ErrorTag,
    severity: ErrorSeverity,
    app_tag: str | None,
    path: str | None,
    message: str | None,
    lang: str | None,
    items: dict[str, str],
) -> None:
    error = RpcError.single(tag, message, type=type_, path=path, info=items, app_tag=app_tag).first
    error = RpcErrorInfo(
        type=error.type,
        tag=error.tag,
        severity=severity,
        app_tag=error.app_tag,
        path=error.path,
        message=error.message,
        message_lang=lang if message is not None else None,
        info=error.info,
        info_items=error.info_items,
    )
    back = rpc_error_from_xml(parse_xml(serialize(rpc_error_to_xml(error))))
    assert back == error


# -- fragments and operations ------------------------------------------------------------------


def test_parse_fragment() -> None:
    elements = parse_fragment('<?xml version="1.0"?> <a xmlns="urn:a"/> <b/> ')
    assert [e.tag for e in elements] == ["{urn:a}a", "b"]
    assert [e.tag for e in parse_fragment(b"<c/>", default_namespace=NS_BASE)] == [nc("c")]
    assert parse_fragment("") == []


@pytest.mark.parametrize("bad", ["<a>", "text", "<a/>text", "<a/><b>", "<!DOCTYPE a><a/>"])
def test_parse_fragment_rejects(bad: str) -> None:
    with pytest.raises(LocalProtocolError):
        parse_fragment(bad)


OPERATION_VECTORS = [
    (
        op_get_config(),
        "<get-config><source><running/></source></get-config>",
    ),
    (
        op_get_config("candidate", '<top xmlns="urn:t"><users/></top>'),
        '<get-config><source><candidate/></source><filter type="subtree">'
        '<top xmlns="urn:t"><users/></top></filter></get-config>',
    ),
    (
        op_get_config("startup", "/t:top/t:users", "xpath", {"t": "urn:t"}),
        "<get-config><source><startup/></source>"
        '<filter type="xpath" select="/t:top/t:users"/></get-config>',
    ),
    (
        op_get(),
        "<get/>",
    ),
    (
        op_get(etree.fromstring('<state xmlns="urn:s"/>')),
        '<get><filter type="subtree"><state xmlns="urn:s"/></filter></get>',
    ),
    (
        op_edit_config(
            "running",
            '<top xmlns="urn:t"><mtu>1500</mtu></top>',
            default_operation="none",
            error_option="rollback-on-error",
            test_option="test-then-set",
        ),
        "<edit-config><target><running/></target><default-operation>none</default-operation>"
        "<test-option>test-then-set</test-option><error-option>rollback-on-error</error-option>"
        '<config><top xmlns="urn:t"><mtu>1500</mtu></top></config></edit-config>',
    ),
    (
        op_edit_config(
            "candidate",
            '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><a xmlns="urn:a"/></config>',
        ),
        '<edit-config><target><candidate/></target><config><a xmlns="urn:a"/></config>'
        "</edit-config>",
    ),
    (
        op_copy_config("startup", "running"),
        "<copy-config><target><startup/></target><source><running/></source></copy-config>",
    ),
    (
        op_copy_config("https://example.com/cfg.xml", "running"),
        "<copy-config><target><url>https://example.com/cfg.xml</url></target>"
        "<source><running/></source></copy-config>",
    ),
    (op_delete_config("startup"), "<delete-config><target><startup/></target></delete-config>"),
    (op_lock("candidate"), "<lock><target><candidate/></target></lock>"),
    (op_unlock("candidate"), "<unlock><target><candidate/></target></unlock>"),
    (op_close_session(), "<close-session/>"),
    (op_kill_session(4), "<kill-session><session-id>4</session-id></kill-session>"),
    (op_validate("candidate"), "<validate><source><candidate/></source></validate>"),
    (op_commit(), "<commit/>"),
    (
        op_commit(confirmed=True, confirm_timeout=120, persist="p1"),
        "<commit><confirmed/><confirm-timeout>120</confirm-timeout><persist>p1</persist></commit>",
    ),
    (op_commit(persist_id="p1"), "<commit><persist-id>p1</persist-id></commit>"),
    (op_discard_changes(), "<discard-changes/>"),
    (op_cancel_commit("p1"), "<cancel-commit><persist-id>p1</persist-id></cancel-commit>"),
]


def same_tree(a: etree._Element, b: etree._Element) -> bool:
    return (
        a.tag == b.tag
        and dict(a.attrib) == dict(b.attrib)
        and (a.text or "").strip() == (b.text or "").strip()
        and len(a) == len(b)
        and all(same_tree(x, y) for x, y in zip(a, b, strict=True))
    )


@pytest.mark.parametrize(("element", "expected"), OPERATION_VECTORS)
def test_operation_builders(element: etree._Element, expected: str) -> None:
    # expected is written with the base namespace as default namespace
    wrapper = etree.fromstring(f'<wrap xmlns="{NS_BASE}">{expected}</wrap>')
    assert same_tree(element, wrapper[0]), serialize(element)


def test_xpath_filter_declares_its_prefixes() -> None:
    element = op_get_config("running", "/t:top", "xpath", {"t": "urn:t"})
    select = element.find(nc("filter"))
    assert select is not None
    assert select.nsmap["t"] == "urn:t"
    assert select.get("select") == "/t:top"


def test_create_subscription() -> None:
    element = op_create_subscription(
        "NETCONF", '<event xmlns="urn:e"/>', "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"
    )
    assert element.tag == qname("create-subscription", NS_NOTIF)
    assert [child.tag for child in element] == [
        qname(name, NS_NOTIF) for name in ("stream", "filter", "startTime", "stopTime")
    ]
    assert op_create_subscription().tag == qname("create-subscription", NS_NOTIF)


def test_element_arguments_are_copied_not_moved() -> None:
    parent = etree.fromstring('<p><top xmlns="urn:t"/></p>')
    op_edit_config("running", parent[0])
    assert len(parent) == 1


@pytest.mark.parametrize(
    "build",
    [
        lambda: op_get_config("no such store!"),
        lambda: op_get_config(filter_xml="<a/>", filter_type="regex"),
        lambda: op_get_config(filter_xml=b"/a", filter_type="xpath"),
        lambda: op_get(filter_xml="<a>"),
        lambda: op_edit_config("running", "<a/>", default_operation="delete"),
        lambda: op_edit_config("running", "<a/>", test_option="maybe"),
        lambda: op_edit_config("running", "<a/>", error_option="ignore"),
        lambda: op_edit_config("running", "oops"),
        lambda: op_kill_session(0),
        lambda: op_commit(confirm_timeout=5),
        lambda: op_commit(confirmed=True, confirm_timeout=0),
        lambda: op_create_subscription(stop_time="2024-01-01T00:00:00Z"),
        lambda: op_lock("run\x00ning:"),
    ],
)
def test_operation_builders_reject_bad_arguments(build: object) -> None:
    with pytest.raises(LocalProtocolError):
        build()  # type: ignore[operator]


def test_messages_module_offers_builders_and_primitives() -> None:

    assert operations.op_get_config is op_get_config
    assert xmltools.parse_xml is parse_xml
    assert xmltools.NS_BASE == NS_BASE
