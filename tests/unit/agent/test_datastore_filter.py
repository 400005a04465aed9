"""Subtree filtering (RFC 6241 section 6): one vector per kind of filter of section 6.4."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from callhome.agent.datastore.core import NETCONF_BASE_NS, Datastore
from callhome.errors import ErrorTag, RpcError

NC = NETCONF_BASE_NS
SYS = "urn:example:system"
OTHER = "urn:example:other"

# A device with three accounts and two ports; ports are named by an attribute.
CONFIG = f"""
<config xmlns="{NC}">
  <system xmlns="{SYS}" xmlns:s="{SYS}">
    <accounts>
      <account>
        <login>admin</login>
        <role>superuser</role>
        <real-name>Ada Admin</real-name>
        <office><building>north</building><room>101</room></office>
      </account>
      <account>
        <login>ann</login>
        <role>operator</role>
        <real-name>Ann Example</real-name>
        <office><building>south</building><room>12</room></office>
      </account>
      <account>
        <login>bob</login>
        <role>operator</role>
        <real-name>Bob Example</real-name>
        <office><building>south</building><room>14</room></office>
      </account>
    </accounts>
    <ports>
      <port s:pname="ge0"><speed>1000</speed><rx-errors>3</rx-errors><tx-errors>0</tx-errors></port>
      <port s:pname="ge1"><speed>100</speed><rx-errors>0</rx-errors><tx-errors>7</tx-errors></port>
    </ports>
    <hostname>edge-7</hostname>
  </system>
  <logging xmlns="{OTHER}"><level>debug</level></logging>
</config>
"""


def xml(text: str) -> etree._Element:
    return etree.fromstring(text)


def canon(el: etree._Element) -> Any:
    """A comparable form of an element: name, attributes, value, children (prefixes ignored)."""
    kids = [c for c in el if isinstance(c.tag, str)]
    return (
        el.tag,
        tuple(sorted(el.attrib.items())),
        "" if kids else (el.text or "").strip(),
        [canon(c) for c in kids],
    )


def data(body: str) -> Any:
    return canon(xml(f'<data xmlns="{NC}">{body}</data>'))


def subtree(body: str) -> etree._Element:
    return xml(f'<filter xmlns="{NC}" type="subtree">{body}</filter>')


@pytest.fixture
def ds() -> Datastore:
    store = Datastore()
    store.edit_config("running", xml(CONFIG))
    return store


def select(ds: Datastore, body: str) -> Any:
    return canon(ds.get_config("running", subtree(body)))


def test_no_filter_returns_everything(ds: Datastore) -> None:
    expected = canon(xml(CONFIG))
    got = canon(ds.get_config("running"))
    assert got[0] == f"{{{NC}}}data"
    assert got[3] == expected[3]


def test_empty_filter_selects_nothing(ds: Datastore) -> None:
    assert select(ds, "") == data("")
    assert select(ds, "   <!-- a comment -->  ") == data("")


def test_selection_of_a_whole_subtree(ds: Datastore) -> None:
    got = select(ds, f'<system xmlns="{SYS}"><ports/></system>')
    full = canon(xml(CONFIG))
    ports = full[3][0][3][1]
    assert got == (f"{{{NC}}}data", (), "", [(f"{{{SYS}}}system", (), "", [ports])])


def test_selection_nodes_inside_list_entries(ds: Datastore) -> None:
    got = select(
        ds, f'<system xmlns="{SYS}"><accounts><account><login/></account></accounts></system>'
    )
    assert got == data(
        f'<system xmlns="{SYS}"><accounts>'
        "<account><login>admin</login></account>"
        "<account><login>ann</login></account>"
        "<account><login>bob</login></account>"
        "</accounts></system>"
    )


def test_one_specific_entry_by_content_match(ds: Datastore) -> None:
    got = select(
        ds,
        f'<system xmlns="{SYS}"><accounts><account><login>ann</login></account></accounts>'
        "</system>",
    )
    assert got == data(
        f'<system xmlns="{SYS}"><accounts><account>'
        "<login>ann</login><role>operator</role><real-name>Ann Example</real-name>"
        "<office><building>south</building><room>12</room></office>"
        "</account></accounts></system>"
    )


def test_specific_elements_of_a_specific_entry(ds: Datastore) -> None:
    got = select(
        ds,
        f'<system xmlns="{SYS}"><accounts><account>'
        "<login>bob</login><role/><office><room/></office>"
        "</account></accounts></system>",
    )
    assert got == data(
        f'<system xmlns="{SYS}"><accounts><account>'
        "<login>bob</login><role>operator</role><office><room>14</room></office>"
        "</account></accounts></system>"
    )


def test_multiple_subtrees(ds: Datastore) -> None:
    # admin: one selection; ann: a nested selection; bob: two sibling content matches,
    # one of which is false, so bob is not selected at all.
    got = select(
        ds,
        f'<system xmlns="{SYS}"><accounts>'
        "<account><login>admin</login><office/></account>"
        "<account><login>ann</login><office><building/></office></account>"
        "<account><login>bob</login><role>superuser</role><office><room/></office></account>"
        "</accounts></system>",
    )
    assert got == data(
        f'<system xmlns="{SYS}"><accounts>'
        "<account><login>admin</login>"
        "<office><building>north</building><room>101</room></office></account>"
        "<account><login>ann</login><office><building>south</building></office></account>"
        "</accounts></system>"
    )


def test_elements_with_attribute_naming(ds: Datastore) -> None:
    got = select(
        ds, f'<s:system xmlns:s="{SYS}"><s:ports><s:port s:pname="ge1"/></s:ports></s:system>'
    )
    assert got == data(
        f'<system xmlns="{SYS}" xmlns:s="{SYS}"><ports><port s:pname="ge1">'
        "<speed>100</speed><rx-errors>0</rx-errors><tx-errors>7</tx-errors>"
        "</port></ports></system>"
    )


def test_attribute_match_with_containment(ds: Datastore) -> None:
    got = select(
        ds,
        f'<s:system xmlns:s="{SYS}"><s:ports>'
        '<s:port s:pname="ge0"><s:rx-errors/><s:tx-errors/></s:port>'
        "</s:ports></s:system>",
    )
    assert got == data(
        f'<system xmlns="{SYS}" xmlns:s="{SYS}"><ports><port s:pname="ge0">'
        "<rx-errors>3</rx-errors><tx-errors>0</tx-errors></port></ports></system>"
    )


def test_attribute_not_present_is_not_selected(ds: Datastore) -> None:
    got = select(ds, f'<s:system xmlns:s="{SYS}"><s:accounts s:pname="x"/></s:system>')
    assert got == data("")
    # An unqualified attribute is a different attribute from s:pname.
    got = select(ds, f'<system xmlns="{SYS}"><ports><port pname="ge0"/></ports></system>')
    assert got == data("")


def test_namespace_selection(ds: Datastore) -> None:
    assert select(ds, f'<system xmlns="{OTHER}"/>') == data("")
    assert select(ds, f'<logging xmlns="{OTHER}"/>') == data(
        f'<logging xmlns="{OTHER}"><level>debug</level></logging>'
    )
    # In the base namespace (no xmlns given inside <filter>) nothing matches.
    assert select(ds, "<logging/>") == data("")


def test_namespace_wildcard(ds: Datastore) -> None:
    got = select(ds, '<system xmlns=""><hostname/></system>')
    assert got == data(f'<system xmlns="{SYS}"><hostname>edge-7</hostname></system>')


def test_sibling_content_matches_are_anded(ds: Datastore) -> None:
    both_true = (
        f'<system xmlns="{SYS}"><accounts><account>'
        "<role>operator</role><real-name>Bob Example</real-name>"
        "</account></accounts></system>"
    )
    got = select(ds, both_true)
    assert got == data(
        f'<system xmlns="{SYS}"><accounts><account>'
        "<login>bob</login><role>operator</role><real-name>Bob Example</real-name>"
        "<office><building>south</building><room>14</room></office>"
        "</account></accounts></system>"
    )
    one_false = both_true.replace("Bob Example", "Nobody")
    assert select(ds, one_false) == data("")


def test_content_match_selects_several_entries(ds: Datastore) -> None:
    got = select(
        ds,
        f'<system xmlns="{SYS}"><accounts><account><role>operator</role><login/>'
        "</account></accounts></system>",
    )
    assert got == data(
        f'<system xmlns="{SYS}"><accounts>'
        "<account><login>ann</login><role>operator</role></account>"
        "<account><login>bob</login><role>operator</role></account>"
        "</accounts></system>"
    )


def test_content_match_ignores_surrounding_white_space_and_needs_a_leaf(ds: Datastore) -> None:
    got = select(
        ds,
        f'<system xmlns="{SYS}"><accounts><account><login>\n  ann \n</login><role/>'
        "</account></accounts></system>",
    )
    assert got == data(
        f'<system xmlns="{SYS}"><accounts>'
        "<account><login>ann</login><role>operator</role></account></accounts></system>"
    )
    # <office> has children: a content match on it is false.
    got = select(
        ds,
        f'<system xmlns="{SYS}"><accounts><account><office>north</office></account>'
        "</accounts></system>",
    )
    assert got == data("")


def test_multiple_top_level_filter_elements(ds: Datastore) -> None:
    got = select(ds, f'<logging xmlns="{OTHER}"/><system xmlns="{SYS}"><hostname/></system>')
    assert got == data(
        f'<system xmlns="{SYS}"><hostname>edge-7</hostname></system>'
        f'<logging xmlns="{OTHER}"><level>debug</level></logging>'
    )


def test_containment_selecting_nothing_is_left_out(ds: Datastore) -> None:
    got = select(
        ds, f'<system xmlns="{SYS}"><accounts><account><shell/></account></accounts></system>'
    )
    assert got == data("")
    got = select(
        ds,
        f'<system xmlns="{SYS}"><accounts><account><shell/></account></accounts>'
        "<hostname/></system>",
    )
    assert got == data(f'<system xmlns="{SYS}"><hostname>edge-7</hostname></system>')


def test_overlapping_filters_are_merged(ds: Datastore) -> None:
    got = select(
        ds,
        f'<system xmlns="{SYS}"><accounts>'
        "<account><login>ann</login><role/></account>"
        "<account><login>ann</login><office><room/></office></account>"
        "<account><login/></account>"
        "</accounts><hostname/></system>"
        f'<system xmlns="{SYS}"><hostname/></system>',
    )
    assert got == data(
        f'<system xmlns="{SYS}"><accounts>'
        "<account><login>admin</login></account>"
        "<account><login>ann</login><role>operator</role><office><room>12</room></office>"
        "</account>"
        "<account><login>bob</login></account>"
        "</accounts><hostname>edge-7</hostname></system>"
    )


def test_filter_ignores_comments_and_white_space(ds: Datastore) -> None:
    got = select(
        ds,
        f"""<!-- c --><system xmlns="{SYS}">
              <!-- pick the host name -->
              <hostname/>
            </system>""",
    )
    assert got == data(f'<system xmlns="{SYS}"><hostname>edge-7</hostname></system>')


def test_top_level_content_match(ds: Datastore) -> None:
    # Unusual but well defined: the top-level sibling set holds only a content match.
    assert select(ds, f'<hostname xmlns="{SYS}">edge-7</hostname>') == data("")
    ds.edit_config("running", xml(f'<config xmlns="{NC}"><mode xmlns="{OTHER}">on</mode></config>'))
    everything = canon(ds.get_config())
    assert select(ds, f'<mode xmlns="{OTHER}">on</mode>') == everything
    assert select(ds, f'<mode xmlns="{OTHER}">off</mode>') == data("")


def test_declared_keys_are_included(ds: Datastore) -> None:
    keyed = Datastore(list_keys={f"{{{SYS}}}account": [f"{{{SYS}}}login"]})
    keyed.edit_config("running", xml(CONFIG))
    got = canon(
        keyed.get_config(
            "running",
            subtree(
                f'<system xmlns="{SYS}"><accounts><account><role/></account></accounts></system>'
            ),
        )
    )
    assert got == data(
        f'<system xmlns="{SYS}"><accounts>'
        "<account><login>admin</login><role>superuser</role></account>"
        "<account><login>ann</login><role>operator</role></account>"
        "<account><login>bob</login><role>operator</role></account>"
        "</accounts></system>"
    )


def test_large_trees_give_the_same_results(ds: Datastore) -> None:
    filters = [
        f'<system xmlns="{SYS}"><accounts><account><login/></account></accounts></system>',
        f'<system xmlns="{SYS}"><accounts><account><login>ann</login></account></accounts>'
        "</system>",
        f'<s:system xmlns:s="{SYS}"><s:ports><s:port s:pname="ge0"><s:speed/></s:port>'
        "</s:ports></s:system>",
        f'<logging xmlns="{OTHER}"/>',
    ]
    small = [select(ds, f) for f in filters]
    padding = "".join(f"<entry><id>{i}</id></entry>" for i in range(400))
    ds.edit_config(
        "running", xml(f'<config xmlns="{NC}"><pad xmlns="urn:pad">{padding}</pad></config>')
    )
    assert [select(ds, f) for f in filters] == small


def test_result_is_a_copy(ds: Datastore) -> None:
    out = ds.get_config("running", subtree(f'<system xmlns="{SYS}"><hostname/></system>'))
    out[0][0].text = "changed"
    everything = ds.get_config()
    everything[0].clear()
    assert select(ds, f'<system xmlns="{SYS}"><hostname/></system>') == data(
        f'<system xmlns="{SYS}"><hostname>edge-7</hostname></system>'
    )


def test_same_filter_text_gives_same_result_repeatedly(ds: Datastore) -> None:
    body = (
        f'<system xmlns="{SYS}"><accounts><account><login>bob</login><role/></account>'
        "</accounts></system>"
    )
    first = select(ds, body)
    for _ in range(3):
        assert select(ds, body) == first


def test_get_merges_state_data() -> None:
    def counters() -> list[etree._Element]:
        return [
            xml(
                f'<system xmlns="{SYS}"><uptime>42</uptime>'
                "<accounts><account><login>ann</login><sessions>2</sessions></account></accounts>"
                "</system>"
            )
        ]

    ds = Datastore(state_providers=[counters])
    ds.edit_config("running", xml(CONFIG))
    got = canon(
        ds.get(
            subtree(
                f'<system xmlns="{SYS}"><uptime/><accounts><account><login>ann</login>'
                "<sessions/></account></accounts></system>"
            )
        )
    )
    assert got == data(
        f'<system xmlns="{SYS}"><accounts><account><login>ann</login><sessions>2</sessions>'
        "</account></accounts><uptime>42</uptime></system>"
    )
    # get-config never shows state.
    assert "uptime" not in etree.tostring(ds.get_config()).decode()
    assert "uptime" in etree.tostring(ds.get()).decode()


def test_get_reports_a_failing_state_provider() -> None:
    def broken() -> list[etree._Element]:
        raise RuntimeError("sensor gone")

    ds = Datastore(state_providers=[broken])
    with pytest.raises(RpcError) as info:
        ds.get()
    assert info.value.first.tag is ErrorTag.OPERATION_FAILED
    assert "sensor gone" in (info.value.first.message or "")
