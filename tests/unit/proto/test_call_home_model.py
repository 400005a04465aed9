"""The call-home part of ietf-netconf-server as data: clients, endpoints, matching, edits."""

from __future__ import annotations

import pytest
from lxml import etree

from callhome.proto.call_home import (
    CallHomeEndpoint,
    NoClientMatch,
    anchor_allowed,
    connection_type_edit,
    endpoints_element,
    format_anchor,
    pick_client,
    read_clients,
    revision_supported,
)
from callhome.proto.schedule import Periodic, Persistent, read_connection_type

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NCS = "urn:ietf:params:xml:ns:yang:ietf-netconf-server"


def endpoint(name: str, host: str, port: int | None = None, transport: str = "ssh") -> str:
    port_leaf = "" if port is None else f"<remote-port>{port}</remote-port>"
    return (
        f"<endpoint><name>{name}</name><{transport}><tcp-client-parameters>"
        f"<remote-address>{host}</remote-address>{port_leaf}"
        f"</tcp-client-parameters></{transport}></endpoint>"
    )


def client(name: str, *endpoints: str, kind: str = "<persistent/>") -> str:
    return (
        f"<netconf-client><name>{name}</name><endpoints>{''.join(endpoints)}</endpoints>"
        f"<connection-type>{kind}</connection-type></netconf-client>"
    )


def data(*clients: str) -> etree._Element:
    return etree.fromstring(
        f'<data xmlns="{NC}"><netconf-server xmlns="{NCS}"><call-home>{"".join(clients)}'
        "</call-home></netconf-server></data>"
    )


TWO = data(
    client("noc", endpoint("east", "192.0.2.1", 4334), endpoint("west", "mgr.example.net")),
    client(
        "lab",
        endpoint("bench", "127.0.0.1", 5000),
        kind="<periodic><period>15</period></periodic>",
    ),
)


def test_clients_are_read_with_their_endpoints_and_connection_types() -> None:
    noc, lab = read_clients(TWO)
    assert noc.name == "noc" and lab.name == "lab"
    assert noc.endpoints == (
        CallHomeEndpoint("east", "ssh", "192.0.2.1", 4334),
        CallHomeEndpoint("west", "ssh", "mgr.example.net", None),
    )
    assert noc.endpoints[1].effective_port == 4334  # the model's default for ssh
    assert noc.connection_type == Persistent()
    assert lab.connection_type == Periodic(period=900.0)
    assert read_clients(etree.fromstring(f'<data xmlns="{NC}"/>')) == []


def test_the_client_is_the_one_whose_endpoint_was_dialled() -> None:
    clients = read_clients(TWO)
    assert pick_client(clients, transport="ssh", dialled=[("127.0.0.1", 5000)]).name == "lab"
    # names compare without case or a trailing dot; IPv4 seen through IPv6 is IPv4
    assert pick_client(clients, transport="ssh", dialled=[("MGR.example.net.", 4334)]).name == (
        "noc"
    )
    assert pick_client(clients, transport="ssh", dialled=[("::ffff:192.0.2.1", 4334)]).name == (
        "noc"
    )
    # a tls connection is not an ssh endpoint's
    with pytest.raises(NoClientMatch, match=r"tls endpoint at 127\.0\.0\.1:5000"):
        pick_client(clients, transport="tls", dialled=[("127.0.0.1", 5000)])


def test_no_match_or_several_name_what_was_found_and_a_name_settles_it() -> None:
    clients = read_clients(TWO)
    with pytest.raises(NoClientMatch) as none:
        pick_client(clients, transport="ssh", dialled=[("198.51.100.7", 4334)])
    text = str(none.value)
    assert "'noc' [east (ssh 192.0.2.1:4334), west (ssh mgr.example.net:4334)]" in text
    assert "'lab' [bench (ssh 127.0.0.1:5000)]" in text and "--client" in text
    both = read_clients(
        data(client("a", endpoint("x", "10.0.0.1")), client("b", endpoint("y", "10.0.0.1")))
    )
    with pytest.raises(NoClientMatch, match=r"several .* 'a', 'b'"):
        pick_client(both, transport="ssh", dialled=[("10.0.0.1", 4334)])
    assert pick_client(both, transport="ssh", dialled=[], name="b").name == "b"
    with pytest.raises(NoClientMatch, match="no call-home client named 'c'"):
        pick_client(both, transport="ssh", dialled=[], name="c")


def test_the_edit_replaces_one_clients_connection_type_only() -> None:
    config = connection_type_edit("lab", Periodic(period=1800.0, anchor=None, idle_timeout=60))
    (top,) = config
    assert top.tag == f"{{{NCS}}}netconf-server"
    (entry,) = top.findall(f"{{{NCS}}}call-home/{{{NCS}}}netconf-client")
    assert [etree.QName(c).localname for c in entry] == ["name", "connection-type"]
    assert entry.findtext(f"{{{NCS}}}name") == "lab"
    ctype = entry.find(f"{{{NCS}}}connection-type")
    assert ctype is not None and ctype.get(f"{{{NC}}}operation") == "replace"
    periodic = ctype.find(f"{{{NCS}}}periodic")
    assert periodic is not None
    assert [(etree.QName(c).localname, c.text) for c in periodic] == [
        ("period", "30"),
        ("idle-timeout", "60"),
    ]
    # applied to the data, it changes that entry and reads back
    assert read_connection_type(config, client="lab") == Periodic(period=1800.0, idle_timeout=60)
    persistent = connection_type_edit("noc", Persistent())
    assert read_connection_type(persistent, client="noc") == Persistent()


def test_the_edit_refuses_what_the_model_cannot_hold() -> None:
    with pytest.raises(ValueError, match="period in minutes must be whole"):
        connection_type_edit("x", Periodic(period=90.0))
    with pytest.raises(ValueError, match="idle-timeout in seconds must be whole"):
        connection_type_edit("x", Periodic(period=60.0, idle_timeout=1.5))
    with pytest.raises(ValueError, match="whole minute"):
        format_anchor(1704067230.0)
    assert format_anchor(1704067260.0) == "2024-01-01T00:01:00Z"


def test_revisions_and_anchors() -> None:
    assert revision_supported("2019-04-29") and revision_supported("2025-04-24")
    assert revision_supported(None)
    assert not revision_supported("2018-09-20")
    assert anchor_allowed("2023-12-28", "2024-01-01T00:15:00Z") is None
    assert anchor_allowed(None, "2024-01-01T00:15:00+02:00") is None
    assert "whole minute" in (anchor_allowed("2025-04-24", "2024-01-01T00:15:30Z") or "")
    # 2019-04-29 .. 2022-05-24: the pattern on anchor-time leaves out the seconds that
    # date-and-time requires, so no value satisfies both
    assert "admits no value" in (anchor_allowed("2019-07-02", "2024-01-01T00:15:00Z") or "")


def test_endpoints_are_written_as_they_read() -> None:
    ends = (CallHomeEndpoint("a", "ssh", "::1", 4334), CallHomeEndpoint("b", "tls", "h", 4335))
    element = endpoints_element(ends)
    entry = etree.Element(f"{{{NCS}}}netconf-client")
    etree.SubElement(entry, f"{{{NCS}}}name").text = "x"
    entry.append(element)
    wrapped = data()
    call_home = wrapped.find(f"{{{NCS}}}netconf-server/{{{NCS}}}call-home")
    assert call_home is not None
    call_home.append(entry)
    (got,) = read_clients(wrapped)
    assert got.endpoints == ends
