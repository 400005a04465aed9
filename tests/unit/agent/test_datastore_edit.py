"""edit-config (RFC 6241 section 7.2) and locks (sections 7.5, 7.6) on the Datastore."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from callhome.agent.datastore.core import NETCONF_BASE_NS, ChangeEvent, Datastore, EditTarget
from callhome.errors import ErrorTag, ErrorType, RpcError

NC = NETCONF_BASE_NS
T = "urn:example:t"

START = f"""
<config xmlns="{NC}">
  <top xmlns="{T}">
    <users>
      <user><name>fred</name><type>admin</type><shell>bash</shell></user>
      <user><name>wilma</name><type>operator</type></user>
    </users>
    <mtu>1500</mtu>
  </top>
</config>
"""


def xml(text: str) -> etree._Element:
    return etree.fromstring(text)


def canon(el: etree._Element) -> Any:
    kids = [c for c in el if isinstance(c.tag, str)]
    return (
        etree.QName(el).localname,
        tuple(sorted(el.attrib.items())),
        "" if kids else (el.text or "").strip(),
        [canon(c) for c in kids],
    )


def config(body: str, *, nc_prefix: bool = False) -> etree._Element:
    if nc_prefix:
        return xml(f'<nc:config xmlns:nc="{NC}">{body}</nc:config>')
    return xml(f'<config xmlns="{NC}" xmlns:nc="{NC}">{body}</config>')


def top(body: str) -> str:
    return f'<top xmlns="{T}">{body}</top>'


def state(ds: Datastore) -> Any:
    return canon(ds.get_config())[3]


def expect(body: str) -> Any:
    return canon(xml(f'<config xmlns="{NC}">{body}</config>'))[3]


@pytest.fixture
def ds() -> Datastore:
    store = Datastore()
    store.edit_config("running", xml(START))
    return store


def users(*entries: str) -> str:
    return "<users>" + "".join(entries) + "</users>"


FRED = "<user><name>fred</name><type>admin</type><shell>bash</shell></user>"
WILMA = "<user><name>wilma</name><type>operator</type></user>"
MTU = "<mtu>1500</mtu>"


def raises(fn: Any, *args: Any, **kwargs: Any) -> RpcError:
    with pytest.raises(RpcError) as info:
        fn(*args, **kwargs)
    return info.value


# -- merge --------------------------------------------------------------------------------------


def test_merge_changes_a_leaf_of_a_matched_entry(ds: Datastore) -> None:
    ds.edit_config(
        "running", config(top(users("<user><name>fred</name><type>guest</type></user>")))
    )
    assert state(ds) == expect(
        top(
            users("<user><name>fred</name><type>guest</type><shell>bash</shell></user>", WILMA)
            + MTU
        )
    )


def test_merge_adds_an_entry_with_a_new_key(ds: Datastore) -> None:
    ds.edit_config("running", config(top(users("<user><name>barney</name></user>"))))
    assert state(ds) == expect(top(users(FRED, WILMA, "<user><name>barney</name></user>") + MTU))


def test_merge_into_an_empty_datastore_creates_the_hierarchy() -> None:
    ds = Datastore()
    ds.edit_config("running", config(top("<mtu>9000</mtu>")))
    assert state(ds) == expect(top("<mtu>9000</mtu>"))


def test_merge_into_a_container_that_starts_differently(ds: Datastore) -> None:
    # <top> starts with <users> in the datastore: <mtu> is not a key of <top> here.
    ds.edit_config("running", config(top("<mtu>9000</mtu>")))
    assert state(ds) == expect(top(users(FRED, WILMA) + "<mtu>9000</mtu>"))


def test_merge_of_the_same_data_changes_nothing(ds: Datastore) -> None:
    events: list[ChangeEvent] = []
    ds.add_change_listener(events.append)
    ds.edit_config("running", xml(START))
    assert events == []


def test_merge_sets_attributes_and_drops_operation_attributes(ds: Datastore) -> None:
    ds.edit_config(
        "running",
        config(
            f'<p:top xmlns:p="{T}" p:note="x" nc:operation="merge">'
            '<p:extra p:flag="on">1</p:extra></p:top>'
        ),
    )
    got = ds.get_config()[0]
    assert got.get(f"{{{T}}}note") == "x"
    assert got[-1].get(f"{{{T}}}flag") == "on"
    assert got[-1].text == "1"
    assert "operation" not in etree.tostring(got).decode()


def test_leaf_becomes_container_and_back(ds: Datastore) -> None:
    ds.edit_config("running", config(top("<mtu><value>9000</value></mtu>")))
    assert state(ds) == expect(top(users(FRED, WILMA) + "<mtu><value>9000</value></mtu>"))
    ds.edit_config("running", config(top("<mtu/>")))  # an empty container merges nothing
    assert state(ds) == expect(top(users(FRED, WILMA) + "<mtu><value>9000</value></mtu>"))
    ds.edit_config("running", config(top("<mtu>1400</mtu>")))
    assert state(ds) == expect(top(users(FRED, WILMA) + "<mtu>1400</mtu>"))


# -- replace, create, delete, remove ------------------------------------------------------------


def test_replace_an_entry(ds: Datastore) -> None:
    ds.edit_config(
        "running",
        config(top(users('<user nc:operation="replace"><name>fred</name><type>x</type></user>'))),
    )
    assert state(ds) == expect(
        top(users("<user><name>fred</name><type>x</type></user>", WILMA) + MTU)
    )


def test_replace_a_missing_entry_creates_it(ds: Datastore) -> None:
    ds.edit_config(
        "running", config(top(users('<user nc:operation="replace"><name>dino</name></user>')))
    )
    assert state(ds) == expect(top(users(FRED, WILMA, "<user><name>dino</name></user>") + MTU))


def test_create(ds: Datastore) -> None:
    ds.edit_config(
        "running", config(top(users('<user nc:operation="create"><name>dino</name></user>')))
    )
    assert state(ds) == expect(top(users(FRED, WILMA, "<user><name>dino</name></user>") + MTU))


def test_create_existing_is_data_exists_with_path(ds: Datastore) -> None:
    err = raises(
        ds.edit_config,
        "running",
        config(top(users('<user nc:operation="create"><name>fred</name></user>'))),
    )
    assert err.first.tag is ErrorTag.DATA_EXISTS
    assert err.first.type is ErrorType.APPLICATION
    assert err.first.path == "/t:top/t:users/t:user[t:name='fred']"


def test_delete(ds: Datastore) -> None:
    ds.edit_config(
        "running", config(top(users('<user nc:operation="delete"><name>fred</name></user>')))
    )
    assert state(ds) == expect(top(users(WILMA) + MTU))


def test_delete_a_leaf(ds: Datastore) -> None:
    ds.edit_config("running", config(top('<mtu nc:operation="delete"/>')))
    assert state(ds) == expect(top(users(FRED, WILMA)))


def test_delete_missing_is_data_missing_with_path(ds: Datastore) -> None:
    err = raises(
        ds.edit_config,
        "running",
        config(
            f'<t:top xmlns:t="{T}"><t:users><t:user><t:name>fred</t:name>'
            '<t:home nc:operation="delete"/></t:user></t:users></t:top>'
        ),
    )
    assert err.first.tag is ErrorTag.DATA_MISSING
    assert err.first.path == "/t:top/t:users/t:user[t:name='fred']/t:home"


def test_remove_existing_and_missing(ds: Datastore) -> None:
    ds.edit_config(
        "running",
        config(
            top(
                users(
                    '<user nc:operation="remove"><name>fred</name></user>'
                    '<user nc:operation="remove"><name>nobody</name></user>'
                )
            )
        ),
    )
    assert state(ds) == expect(top(users(WILMA) + MTU))


def test_bad_operation_is_bad_attribute(ds: Datastore) -> None:
    err = raises(ds.edit_config, "running", config(top('<mtu nc:operation="frobnicate">1</mtu>')))
    assert err.first.tag is ErrorTag.BAD_ATTRIBUTE
    assert err.first.info_items == {"bad-attribute": "operation", "bad-element": "mtu"}
    assert err.first.path == "/t:top/t:mtu"
    assert "<bad-attribute>operation</bad-attribute>" in err.first.info


def test_operation_attribute_with_another_prefix(ds: Datastore) -> None:
    body = f'<top xmlns="{T}" xmlns:x="{NC}"><mtu x:operation="delete"/></top>'
    ds.edit_config("running", config(body, nc_prefix=True))
    assert state(ds) == expect(top(users(FRED, WILMA)))


def test_nested_create_inside_replace_and_duplicates(ds: Datastore) -> None:
    err = raises(
        ds.edit_config,
        "running",
        config(
            top(
                '<users nc:operation="create">'
                "<user><name>a</name></user><user><name>a</name></user></users>"
            )
        ),
    )
    assert err.first.tag is ErrorTag.DATA_EXISTS  # <users> exists
    err = raises(
        ds.edit_config,
        "running",
        config(
            top(
                '<users nc:operation="replace">'
                '<user nc:operation="create"><name>a</name></user>'
                '<user nc:operation="create"><name>a</name></user></users>'
            )
        ),
    )
    assert err.first.tag is ErrorTag.DATA_EXISTS
    assert err.first.path == "/t:top/t:users/t:user[t:name='a']"


def test_delete_inside_new_content_is_data_missing(ds: Datastore) -> None:
    err = raises(
        ds.edit_config,
        "running",
        config(top('<extra><x nc:operation="delete"/></extra>')),
    )
    assert err.first.tag is ErrorTag.DATA_MISSING
    assert err.first.path == "/t:top/t:extra/t:x"
    ds.edit_config("running", config(top('<extra><x nc:operation="remove"/><y>1</y></extra>')))
    assert state(ds) == expect(top(users(FRED, WILMA) + MTU + "<extra><y>1</y></extra>"))


# -- default-operation ---------------------------------------------------------------------------


def test_default_operation_none_touches_only_marked_nodes(ds: Datastore) -> None:
    ds.edit_config(
        "running",
        config(
            top(
                users(
                    "<user><name>fred</name><type>ignored</type>"
                    '<shell nc:operation="delete"/></user>'
                )
            )
        ),
        default_operation="none",
    )
    assert state(ds) == expect(
        top(users("<user><name>fred</name><type>admin</type></user>", WILMA) + MTU)
    )


def test_default_operation_none_needs_existing_levels(ds: Datastore) -> None:
    err = raises(
        ds.edit_config,
        "running",
        config(top(users('<user><name>nobody</name><shell nc:operation="delete"/></user>'))),
        default_operation="none",
    )
    assert err.first.tag is ErrorTag.DATA_MISSING
    assert err.first.path == "/t:top/t:users/t:user[t:name='nobody']"
    # Only removes below a missing level: nothing to do, no error.
    ds.edit_config(
        "running",
        config(top(users('<user><name>nobody</name><shell nc:operation="remove"/></user>'))),
        default_operation="none",
    )
    err = raises(ds.edit_config, "running", config(top("<other/>")), default_operation="none")
    assert err.first.tag is ErrorTag.DATA_MISSING


def test_default_operation_replace_replaces_everything(ds: Datastore) -> None:
    ds.edit_config(
        "running",
        config(f'<other xmlns="{T}"><a>1</a></other>'),
        default_operation="replace",
    )
    assert state(ds) == expect(f'<other xmlns="{T}"><a>1</a></other>')


def test_explicit_operation_overrides_default(ds: Datastore) -> None:
    ds.edit_config(
        "running",
        config(top(f'<mtu nc:operation="merge">9000</mtu>{users(WILMA)}')),
        default_operation="none",
    )
    assert state(ds) == expect(top(users(FRED, WILMA) + "<mtu>9000</mtu>"))


# -- error-option and test-option ---------------------------------------------------------------

BATCH = top(
    users(
        '<user nc:operation="create"><name>dino</name></user>'
        '<user nc:operation="create"><name>fred</name></user>'
        '<user nc:operation="delete"><name>wilma</name></user>'
        '<user nc:operation="delete"><name>nobody</name></user>'
    )
)


@pytest.mark.parametrize("option", ["stop-on-error", "rollback-on-error"])
def test_stop_and_rollback_are_all_or_nothing(ds: Datastore, option: str) -> None:
    before = state(ds)
    err = raises(ds.edit_config, "running", config(BATCH), error_option=option)
    assert [e.tag for e in err.errors] == [ErrorTag.DATA_EXISTS]
    assert state(ds) == before


def test_continue_on_error_applies_what_succeeds_and_reports_all(ds: Datastore) -> None:
    events: list[ChangeEvent] = []
    ds.add_change_listener(events.append)
    err = raises(ds.edit_config, "running", config(BATCH), error_option="continue-on-error")
    assert [e.tag for e in err.errors] == [ErrorTag.DATA_EXISTS, ErrorTag.DATA_MISSING]
    assert [e.path for e in err.errors] == [
        "/t:top/t:users/t:user[t:name='fred']",
        "/t:top/t:users/t:user[t:name='nobody']",
    ]
    assert state(ds) == expect(top(users(FRED, "<user><name>dino</name></user>") + MTU))
    assert len(events) == 1


def test_continue_on_error_and_new_content(ds: Datastore) -> None:
    # What create builds is all or nothing ...
    err = raises(
        ds.edit_config,
        "running",
        config(top('<extra nc:operation="create"><a>1</a><b nc:operation="delete"/></extra>')),
        error_option="continue-on-error",
    )
    assert [e.path for e in err.errors] == ["/t:top/t:extra/t:b"]
    assert state(ds) == expect(top(users(FRED, WILMA) + MTU))
    # ... what merge creates keeps what succeeded below it.
    raises(
        ds.edit_config,
        "running",
        config(top('<extra><a>1</a><b nc:operation="delete"/></extra><mtu>1</mtu>')),
        error_option="continue-on-error",
    )
    assert state(ds) == expect(top(users(FRED, WILMA) + "<mtu>1</mtu><extra><a>1</a></extra>"))


def test_test_only_changes_nothing(ds: Datastore) -> None:
    before = state(ds)
    ds.edit_config("running", config(top("<mtu>1</mtu>")), test_option="test-only")
    assert state(ds) == before
    err = raises(ds.edit_config, "running", config(BATCH), test_option="test-only")
    assert err.first.tag is ErrorTag.DATA_EXISTS
    err = raises(
        ds.edit_config,
        "running",
        config(BATCH),
        test_option="test-only",
        error_option="continue-on-error",
    )
    assert len(err.errors) == 2
    assert state(ds) == before


def test_test_option_set(ds: Datastore) -> None:
    ds.edit_config("running", config(top("<mtu>1</mtu>")), test_option="set")
    assert state(ds) == expect(top(users(FRED, WILMA) + "<mtu>1</mtu>"))


@pytest.mark.parametrize(
    ("option", "value"),
    [("default_operation", "delete"), ("error_option", "ignore"), ("test_option", "maybe")],
)
def test_bad_options_are_invalid_value(ds: Datastore, option: str, value: str) -> None:
    err = raises(ds.edit_config, "running", config(top("<mtu>1</mtu>")), **{option: value})
    assert err.first.tag is ErrorTag.INVALID_VALUE
    assert err.first.info_items["bad-element"] == option.replace("_", "-")


# -- datastores ---------------------------------------------------------------------------------


def test_unknown_datastores_and_startup_edits(ds: Datastore) -> None:
    err = raises(ds.edit_config, "scratch", config(top("")))
    assert err.first.tag is ErrorTag.INVALID_VALUE
    assert err.first.info_items == {"bad-element": "target"}
    err = raises(ds.get_config, "scratch")
    assert err.first.tag is ErrorTag.INVALID_VALUE
    assert err.first.info_items == {"bad-element": "source"}
    # startup is changed by copy-config only
    err = raises(ds.edit_config, "startup", config(top("")))
    assert err.first.tag is ErrorTag.INVALID_VALUE
    assert err.first.info_items == {"bad-element": "target"}
    ds.lock("startup", 1)
    assert ds.lock_holder("startup") == 1


# -- list keys ----------------------------------------------------------------------------------

IF = "urn:example:if"


def keyed() -> Datastore:
    return Datastore(
        list_keys={
            f"{{{IF}}}route": (f"{{{IF}}}prefix", f"{{{IF}}}table"),
            f"{{{IF}}}system": (),
        }
    )


def test_declared_multi_key_lists() -> None:
    ds = keyed()
    route = "<route><table>{t}</table><prefix>{p}</prefix><via>{v}</via></route>"
    body = f'<routes xmlns="{IF}">{{}}</routes>'
    ds.edit_config(
        "running",
        config(
            body.format(route.format(t=1, p="10/8", v="a") + route.format(t=2, p="10/8", v="b"))
        ),
    )
    ds.edit_config("running", config(body.format(route.format(t=2, p="10/8", v="c"))))
    assert state(ds) == expect(
        body.format(route.format(t=1, p="10/8", v="a") + route.format(t=2, p="10/8", v="c"))
    )
    err = raises(ds.edit_config, "running", config(body.format("<route><table>1</table></route>")))
    assert err.first.tag is ErrorTag.MISSING_ELEMENT
    assert err.first.info_items == {"bad-element": "prefix"}
    assert err.first.path == "/if:routes/if:route[if:table='1']"


def test_declared_single_instance_container() -> None:
    ds = keyed()
    ds.edit_config("running", config(f'<system xmlns="{IF}"><hostname>a</hostname></system>'))
    ds.edit_config("running", config(f'<system xmlns="{IF}"><hostname>b</hostname></system>'))
    assert state(ds) == expect(f'<system xmlns="{IF}"><hostname>b</hostname></system>')
    # Without the declaration, a container starting with a leaf looks like a list entry.
    plain = Datastore()
    plain.edit_config("running", config(f'<system xmlns="{IF}"><hostname>a</hostname></system>'))
    plain.edit_config("running", config(f'<system xmlns="{IF}"><hostname>b</hostname></system>'))
    assert len(state(plain)) == 2


def test_error_path_quotes_values_with_apostrophes() -> None:
    ds = Datastore()
    ds.edit_config("running", config(f'<u xmlns="{T}"><n>x</n></u>'))
    err = raises(
        ds.edit_config,
        "running",
        config(f'<u xmlns="{T}" nc:operation="delete"><n>it\'s</n></u>'),
    )
    assert err.first.path == '/t:u[t:n="it\'s"]'


def test_wide_list_merge() -> None:
    ds = Datastore()
    n = 3000
    first = "".join(f"<e><k>{i}</k><v>a</v></e>" for i in range(n))
    ds.edit_config("running", config(f'<l xmlns="{T}">{first}</l>'))
    second = "".join(f"<e><k>{i}</k><v>b</v></e>" for i in range(0, 2 * n, 2))
    ds.edit_config("running", config(f'<l xmlns="{T}">{second}</l>'))
    got = {e[3][0][2]: e[3][1][2] for e in state(ds)[0][3]}
    assert len(got) == n + n // 2
    assert got["0"] == "b" and got["1"] == "a" and got[str(2 * n - 2)] == "b"


# -- locks --------------------------------------------------------------------------------------


def test_lock_blocks_other_writers(ds: Datastore) -> None:
    ds.lock("running", 1)
    assert ds.lock_holder("running") == 1
    err = raises(ds.edit_config, "running", config(top("<mtu>1</mtu>")), session_id=2)
    assert err.first.tag is ErrorTag.IN_USE
    assert err.first.info_items == {"session-id": "1"}
    err = raises(ds.edit_config, "running", config(top("<mtu>1</mtu>")))  # the device itself
    assert err.first.tag is ErrorTag.IN_USE
    ds.edit_config("running", config(top("<mtu>1</mtu>")), session_id=1)
    # Reading is not blocked.
    assert ds.get_config() is not None


def test_lock_denied_names_the_holder(ds: Datastore) -> None:
    ds.lock("running", 3)
    for session in (3, 4):
        err = raises(ds.lock, "running", session)
        assert err.first.tag is ErrorTag.LOCK_DENIED
        assert err.first.type is ErrorType.PROTOCOL
        assert err.first.info_items == {"session-id": "3"}


def test_unlock_rules(ds: Datastore) -> None:
    err = raises(ds.unlock, "running", 1)
    assert err.first.tag is ErrorTag.OPERATION_FAILED
    ds.lock("running", 1)
    err = raises(ds.unlock, "running", 2)
    assert err.first.tag is ErrorTag.OPERATION_FAILED
    assert err.first.info_items == {"session-id": "1"}
    ds.unlock("running", 1)
    assert ds.lock_holder("running") is None
    ds.lock("running", 2)


def test_release_session_drops_its_locks(ds: Datastore) -> None:
    ds.lock("running", 5)
    ds.release_session(6)
    assert ds.lock_holder() == 5
    ds.release_session(5)
    assert ds.lock_holder() is None
    ds.edit_config("running", config(top("<mtu>1</mtu>")), session_id=6)


# -- listeners and reading ----------------------------------------------------------------------


def test_change_listener(ds: Datastore) -> None:
    events: list[ChangeEvent] = []

    def broken(event: ChangeEvent) -> None:
        raise RuntimeError("listener bug")

    ds.add_change_listener(broken)
    ds.add_change_listener(events.append)
    edit = config(top("<mtu>1</mtu>"))
    ds.edit_config("running", edit, session_id=7)
    assert events == [
        ChangeEvent(
            datastore="running",
            session_id=7,
            edit=edit,
            operation="edit-config",
            targets=(EditTarget("/t:top", "merge", (("t", "urn:example:t"),)),),
        )
    ]
    raises(ds.edit_config, "running", config(BATCH))
    ds.edit_config("running", config(top("<mtu>2</mtu>")), test_option="test-only")
    assert len(events) == 1
    ds.remove_change_listener(events.append)
    ds.edit_config("running", config(top("<mtu>3</mtu>")))
    assert len(events) == 1


def test_read_returns_a_copy(ds: Datastore) -> None:
    copy = ds.read()
    assert copy.tag == f"{{{NC}}}data"
    copy[0].clear()
    assert state(ds) == expect(top(users(FRED, WILMA) + MTU))
