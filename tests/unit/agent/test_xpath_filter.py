"""XPath filters (:xpath:1.0, RFC 6241 section 8.9) for get and get-config."""

from __future__ import annotations

import pytest
from agent_testkit import Session, T, config, data, edit, new_service, text

from callhome.agent.datastore.core import Datastore
from callhome.agent.datastore.xpath import rewrite
from callhome.agent.netconf_service import NetconfService
from callhome.errors import ErrorTag, ErrorType, RpcError

IF = "urn:example:if"
SYS = "urn:example:sys"
IFACES = (
    f'<interfaces xmlns="{IF}">'
    "<interface><name>eth0</name><mtu>1500</mtu><enabled>true</enabled></interface>"
    "<interface><name>eth1</name><mtu>9000</mtu><enabled>false</enabled></interface>"
    "</interfaces>"
)
SYSTEM = f'<system xmlns="{SYS}"><hostname>edge</hostname><ntp server="a"><prefer/></ntp></system>'


@pytest.fixture
def service() -> NetconfService:
    service = new_service(
        list_keys={f"{{{IF}}}interface": (f"{{{IF}}}name",), f"{{{SYS}}}system": ()},
        state_providers=[lambda: []],
    )
    Session(service).ok(edit("running", IFACES + SYSTEM))
    return service


def xpath(select: str, op: str = "get-config") -> str:
    source = "<source><running/></source>" if op == "get-config" else ""
    return (
        f'<{op} xmlns:if="{IF}" xmlns:sys="{SYS}">{source}'
        f'<filter type="xpath" select="{select}"/></{op}>'
    )


def interface(name: str, inner: str) -> str:
    return f"<interface><name>{name}</name>{inner}</interface>"


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        # a top-level node, whole
        ("/sys:system", SYSTEM),
        # a leaf: its ancestors come along, without their other children
        ("/sys:system/sys:hostname", f'<system xmlns="{SYS}"><hostname>edge</hostname></system>'),
        # a list entry by a predicate on its key
        (
            "/if:interfaces/if:interface[if:name='eth1']",
            f'<interfaces xmlns="{IF}">'
            + interface("eth1", "<mtu>9000</mtu><enabled>false</enabled>")
            + "</interfaces>",
        ),
        # a leaf of list entries: the keys of the entries come along
        (
            "//if:mtu[. > 2000]",
            f'<interfaces xmlns="{IF}">' + interface("eth1", "<mtu>9000</mtu>") + "</interfaces>",
        ),
        # text and attribute nodes stand for their elements
        (
            "/if:interfaces/if:interface/if:enabled[.='true']/text()",
            f'<interfaces xmlns="{IF}">'
            + interface("eth0", "<enabled>true</enabled>")
            + "</interfaces>",
        ),
        ("//sys:ntp/@server", f'<system xmlns="{SYS}"><ntp server="a"><prefer/></ntp></system>'),
        # unions, and nested selections merged
        (
            "/sys:system/sys:hostname | /sys:system",
            SYSTEM,
        ),
        # the root: everything; nothing selected: empty
        ("/", IFACES + SYSTEM),
        ("/if:interfaces/..", IFACES + SYSTEM),
        ("/sys:nothing", ""),
        ("/*[if:interface]", IFACES),
        # a name without a prefix is in no namespace (XPath 1.0)
        ("/system", ""),
    ],
)
def test_selections(service: NetconfService, select: str, expected: str) -> None:
    s = Session(service)
    for op in ("get-config", "get"):
        assert text(s.data(xpath(select, op))) == data(expected), op


def test_list_entries_keep_their_keys_on_the_way(service: NetconfService) -> None:
    got = Session(service).data(xpath("//if:enabled"))
    assert text(got) == data(
        f'<interfaces xmlns="{IF}">'
        + interface("eth0", "<enabled>true</enabled>")
        + interface("eth1", "<enabled>false</enabled>")
        + "</interfaces>"
    )


def test_prefixes_come_from_the_filter_element(service: NetconfService) -> None:
    s = Session(service)
    got = s.data(
        "<get-config><source><running/></source>"
        f'<filter type="xpath" xmlns:q="{SYS}" select="/q:system/q:hostname"/></get-config>'
    )
    assert got.findtext(f"{{{SYS}}}system/{{{SYS}}}hostname") == "edge"


@pytest.mark.parametrize(
    "select",
    [
        "/if:interfaces[",  # syntax
        "/nope:system",  # unknown prefix
        "count(/*)",  # a number, not a node-set
        "string(/*)",  # a string
        "/*[unknown-function()]",  # unknown function
        "$var",  # unknown variable
        "/a]'",  # unbalanced, with a stray quote the tokenizer stops at
        "",  # empty
    ],
)
def test_bad_expressions(service: NetconfService, select: str) -> None:
    s = Session(service)
    for op in ("get-config", "get"):
        err = s.error(xpath(select, op))
        assert (err.tag, err.type) == (ErrorTag.INVALID_VALUE, ErrorType.PROTOCOL)
        assert err.info_items == {"bad-attribute": "select", "bad-element": "filter"}


def test_missing_select(service: NetconfService) -> None:
    err = Session(service).error('<get><filter type="xpath"/></get>')
    assert err.tag is ErrorTag.MISSING_ATTRIBUTE


def test_on_candidate_and_with_the_datastore_api(service: NetconfService) -> None:
    s = Session(service)
    s.ok(edit("candidate", f'<system xmlns="{SYS}"><hostname>core</hostname></system>'))
    got = s.data(
        f'<get-config xmlns:s="{SYS}"><source><candidate/></source>'
        '<filter type="xpath" select="/s:system/s:hostname"/></get-config>'
    )
    assert got.findtext(f"{{{SYS}}}system/{{{SYS}}}hostname") == "core"
    ds: Datastore = service.datastore
    got = ds.get_config(select="/s:system/s:hostname", namespaces={"s": SYS})
    assert got.findtext(f"{{{SYS}}}system/{{{SYS}}}hostname") == "edge"
    with pytest.raises(ValueError):
        ds.get_config(filter=got, select="/")
    with pytest.raises(RpcError):
        ds.get(select="/s:system[", namespaces={"s": SYS})


def test_large_trees_build_the_output(service: NetconfService) -> None:
    ds = Datastore(list_keys={f"{{{T}}}item": (f"{{{T}}}k",)})
    body = "".join(f"<item><k>{i}</k><v>{i * 2}</v><w/></item>" for i in range(300))
    ds.edit_config("running", config(f'<items xmlns="{T}">{body}</items>'))
    got = ds.get_config(select="/t:items/t:item[t:k = 7 or t:k = 250]/t:v", namespaces={"t": T})
    assert text(got) == data(
        f'<items xmlns="{T}"><item><k>7</k><v>14</v></item>'
        "<item><k>250</k><v>500</v></item></items>"
    )


@pytest.mark.parametrize(
    ("expr", "rewritten"),
    [
        ("/a", "/*/a"),
        ("//a", "/*//a"),
        ("/", "/*"),
        ("a/b", "a/b"),
        ("/a/b//c", "/*/a/b//c"),
        ("/a | /b", "/*/a | /*/b"),
        ("count(/a) > 1", "count(/*/a) > 1"),
        ("/a[/b = 1]", "/*/a[/*/b = 1]"),
        ("/a[. = '/x']", "/*/a[. = '/x']"),
        ('/a[@x = "/y"]/@z', '/*/a[@x = "/y"]/@z'),
        ("/*", "/*/*"),
        ("2 * /a", "2 * /*/a"),
        ("/a/..", "/*/a/.."),
        ("/a and /b", "/*/a and /*/b"),
        ("(/a)[1]", "(/*/a)[1]"),
        ("/p:a/p:b", "/*/p:a/p:b"),
        ("/self::node()", "/*/self::node()"),
        ("/.", "/*/."),
        ("/@x", "/*/@x"),
        ("/ | /a", "/* | /*/a"),
        ("a div /b", "a div /*/b"),
        ("-/a", "-/*/a"),
    ],
)
def test_rewrite(expr: str, rewritten: str) -> None:
    assert rewrite(expr) == rewritten
