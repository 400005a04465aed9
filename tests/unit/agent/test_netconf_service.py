"""The agent's NETCONF operation dispatcher: parameters, errors, sessions, locks, kill."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from callhome.agent.datastore.core import NETCONF_BASE_NS, Datastore
from callhome.agent.netconf_service import BASE_CAPABILITIES, CAPABILITIES, NetconfService
from callhome.errors import ErrorTag, ErrorType, LocalProtocolError, RpcError

NC = NETCONF_BASE_NS
T = "urn:example:t"


def op(body: str) -> etree._Element:
    """The operation element of ``<rpc>`` from its XML (in the base namespace by default)."""
    rpc = etree.fromstring(f'<rpc xmlns="{NC}" message-id="1">{body}</rpc>')
    return rpc[0]


class Killed:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def service() -> NetconfService:
    # <top> is a container: declare it, or a new <mtu> value would look like a new list entry.
    return NetconfService(Datastore(list_keys={f"{{{T}}}top": ()}))


def rpc_error(service: NetconfService, session: int, body: str) -> Any:
    with pytest.raises(RpcError) as info:
        service.handle(session, op(body))
    return info.value.first


EDIT = (
    "<edit-config><target><running/></target>"
    f'<config><top xmlns="{T}"><mtu>{{}}</mtu></top></config></edit-config>'
)


def test_capabilities() -> None:
    service = NetconfService(
        Datastore(), extra_capabilities=["urn:example:cap:1.0", CAPABILITIES[0]]
    )
    assert service.capabilities == [*CAPABILITIES, "urn:example:cap:1.0"]
    assert BASE_CAPABILITIES == CAPABILITIES
    cap = "urn:ietf:params:netconf:capability:"
    assert set(CAPABILITIES) == {
        "urn:ietf:params:netconf:base:1.0",
        "urn:ietf:params:netconf:base:1.1",
        f"{cap}writable-running:1.0",
        f"{cap}candidate:1.0",
        f"{cap}confirmed-commit:1.1",
        f"{cap}rollback-on-error:1.0",
        f"{cap}validate:1.1",
        f"{cap}startup:1.0",
        f"{cap}xpath:1.0",
        f"{cap}with-defaults:1.0?basic-mode=explicit&also-supported=report-all,trim",
    }
    assert len(CAPABILITIES) == len(set(CAPABILITIES))


def test_session_ids_count_up(service: NetconfService) -> None:
    assert [service.open_session(Killed()) for _ in range(3)] == [1, 2, 3]
    service.close_session(2)
    assert service.session_ids == [1, 3]
    assert service.open_session(Killed()) == 4


def test_handle_needs_an_open_session(service: NetconfService) -> None:
    with pytest.raises(LocalProtocolError):
        service.handle(9, op("<get/>"))


def test_edit_then_get_config(service: NetconfService) -> None:
    s = service.open_session(Killed())
    assert service.handle(s, op(EDIT.format(1500))) is None
    data = service.handle(s, op("<get-config><source><running/></source></get-config>"))
    assert data is not None
    assert data.tag == f"{{{NC}}}data"
    assert data.findtext(f"{{{T}}}top/{{{T}}}mtu") == "1500"


def test_get_with_subtree_filter(service: NetconfService) -> None:
    s = service.open_session(Killed())
    service.handle(
        s,
        op(
            "<edit-config><target><running/></target><config>"
            f'<top xmlns="{T}"><mtu>1</mtu><name>x</name></top><other xmlns="{T}"/>'
            "</config></edit-config>"
        ),
    )
    data = service.handle(
        s, op(f'<get><filter type="subtree"><top xmlns="{T}"><name/></top></filter></get>')
    )
    assert data is not None
    assert etree.tostring(data) == (
        f'<data xmlns="{NC}"><top xmlns="{T}"><name>x</name></top></data>'.encode()
    )
    # type defaults to subtree
    data = service.handle(
        s,
        op(
            "<get-config><source><running/></source>"
            f'<filter><other xmlns="{T}"/></filter></get-config>'
        ),
    )
    assert data is not None and len(data) == 1


def test_filter_types(service: NetconfService) -> None:
    s = service.open_session(Killed())
    err = rpc_error(service, s, '<get><filter type="xpath"/></get>')
    assert err.tag is ErrorTag.MISSING_ATTRIBUTE
    assert err.info_items == {"bad-attribute": "select", "bad-element": "filter"}
    err = rpc_error(service, s, '<get><filter type="regex"/></get>')
    assert err.tag is ErrorTag.BAD_ATTRIBUTE
    assert err.type is ErrorType.PROTOCOL


def test_edit_config_options_are_passed(service: NetconfService) -> None:
    s = service.open_session(Killed())
    service.handle(s, op(EDIT.format(1)))
    service.handle(
        s,
        op(
            "<edit-config><target><running/></target>"
            "<default-operation>none</default-operation>"
            "<test-option>test-only</test-option>"
            "<error-option>continue-on-error</error-option>"
            f'<config><top xmlns="{T}" xmlns:nc="{NC}"><mtu nc:operation="delete"/></top></config>'
            "</edit-config>"
        ),
    )
    data = service.handle(s, op("<get-config><source><running/></source></get-config>"))
    assert data is not None and data.findtext(f"{{{T}}}top/{{{T}}}mtu") == "1"
    err = rpc_error(
        service,
        s,
        "<edit-config><target><running/></target>"
        "<default-operation>delete</default-operation><config/></edit-config>",
    )
    assert err.tag is ErrorTag.INVALID_VALUE
    assert err.info_items == {"bad-element": "default-operation"}


@pytest.mark.parametrize(
    ("body", "tag", "bad"),
    [
        ("<get-config/>", ErrorTag.MISSING_ELEMENT, "source"),
        ("<get-config><source/></get-config>", ErrorTag.MISSING_ELEMENT, "source"),
        (
            "<get-config><source><running/><startup/></source></get-config>",
            ErrorTag.BAD_ELEMENT,
            "source",
        ),
        ("<get-config><source><scratch/></source></get-config>", ErrorTag.INVALID_VALUE, "source"),
        (
            "<get-config><source><config/></source></get-config>",
            ErrorTag.INVALID_VALUE,
            "source",
        ),
        (
            "<get-config><source><url>file:///x</url></source></get-config>",
            ErrorTag.OPERATION_NOT_SUPPORTED,
            "source",
        ),
        (
            f'<get-config><source><running xmlns="{T}"/></source></get-config>',
            ErrorTag.INVALID_VALUE,
            "source",
        ),
        ("<edit-config><config/></edit-config>", ErrorTag.MISSING_ELEMENT, "target"),
        (
            "<edit-config><target><running/></target></edit-config>",
            ErrorTag.MISSING_ELEMENT,
            "config",
        ),
        (
            "<edit-config><target><running/></target><url>ftp://x</url></edit-config>",
            ErrorTag.OPERATION_NOT_SUPPORTED,
            "url",
        ),
        (
            "<edit-config><target><running/></target><config/><url>x</url></edit-config>",
            ErrorTag.BAD_ELEMENT,
            "url",
        ),
        ("<get><source><running/></source></get>", ErrorTag.UNKNOWN_ELEMENT, "source"),
        ("<get><filter/><filter/></get>", ErrorTag.BAD_ELEMENT, "filter"),
        ("<lock/>", ErrorTag.MISSING_ELEMENT, "target"),
        ("<unlock><target><foo/></target></unlock>", ErrorTag.INVALID_VALUE, "target"),
        ("<kill-session/>", ErrorTag.MISSING_ELEMENT, "session-id"),
    ],
)
def test_parameter_errors(service: NetconfService, body: str, tag: ErrorTag, bad: str) -> None:
    s = service.open_session(Killed())
    err = rpc_error(service, s, body)
    assert err.tag is tag
    assert err.info_items["bad-element"] == bad
    assert err.type is ErrorType.PROTOCOL


def test_parameter_in_another_namespace(service: NetconfService) -> None:
    s = service.open_session(Killed())
    err = rpc_error(service, s, f'<get><with-defaults xmlns="{T}">all</with-defaults></get>')
    assert err.tag is ErrorTag.UNKNOWN_NAMESPACE
    assert err.info_items == {"bad-element": "with-defaults", "bad-namespace": T}


@pytest.mark.parametrize(
    "body",
    [
        "<partial-lock/>",
        "<get-schema/>",
        f'<get xmlns="{T}"/>',
        '<get xmlns=""/>',
    ],
)
def test_unsupported_operations(service: NetconfService, body: str) -> None:
    s = service.open_session(Killed())
    err = rpc_error(service, s, body)
    assert err.tag is ErrorTag.OPERATION_NOT_SUPPORTED
    assert err.type is ErrorType.PROTOCOL


def test_locks_across_two_sessions(service: NetconfService) -> None:
    one, two = service.open_session(Killed()), service.open_session(Killed())
    lock = "<lock><target><running/></target></lock>"
    unlock = "<unlock><target><running/></target></unlock>"
    assert service.handle(one, op(lock)) is None
    err = rpc_error(service, two, lock)
    assert (err.tag, err.info_items) == (ErrorTag.LOCK_DENIED, {"session-id": str(one)})
    err = rpc_error(service, two, EDIT.format(2))
    assert (err.tag, err.info_items) == (ErrorTag.IN_USE, {"session-id": str(one)})
    err = rpc_error(service, two, unlock)
    assert err.tag is ErrorTag.OPERATION_FAILED
    service.handle(one, op(EDIT.format(3)))
    # The session's end releases its lock.
    service.close_session(one)
    service.handle(two, op(EDIT.format(4)))
    service.handle(two, op(lock))
    service.handle(two, op(unlock))
    err = rpc_error(service, two, unlock)
    assert err.tag is ErrorTag.OPERATION_FAILED


def test_close_session(service: NetconfService) -> None:
    s = service.open_session(Killed())
    service.handle(s, op("<lock><target><running/></target></lock>"))
    close = op("<close-session/>")
    assert NetconfService.wants_close(close)
    assert not NetconfService.wants_close(op("<get/>"))
    assert service.handle(s, close) is None
    assert service.datastore.lock_holder() is None
    assert s not in service.session_ids
    service.close_session(s)  # the transport ending afterwards is fine
    with pytest.raises(LocalProtocolError):
        service.handle(s, op("<get/>"))


def test_kill_session(service: NetconfService) -> None:
    killed = Killed()
    killer = service.open_session(Killed())
    victim = service.open_session(killed)
    service.handle(victim, op("<lock><target><running/></target></lock>"))
    assert (
        service.handle(
            killer, op(f"<kill-session><session-id>{victim}</session-id></kill-session>")
        )
        is None
    )
    assert killed.count == 1
    assert service.datastore.lock_holder() is None
    assert service.session_ids == [killer]
    service.handle(killer, op(EDIT.format(5)))
    # A second kill of the same session finds nobody.
    err = rpc_error(
        service, killer, f"<kill-session><session-id>{victim}</session-id></kill-session>"
    )
    assert err.tag is ErrorTag.INVALID_VALUE
    assert killed.count == 1


@pytest.mark.parametrize("target", ["own", "99", "0", "-1", "two", ""])
def test_kill_session_invalid_targets(service: NetconfService, target: str) -> None:
    s = service.open_session(Killed())
    text = str(s) if target == "own" else target
    err = rpc_error(service, s, f"<kill-session><session-id>{text}</session-id></kill-session>")
    assert err.tag is ErrorTag.INVALID_VALUE
    assert err.info_items == {"bad-element": "session-id"}
    assert service.session_ids == [s]


def test_kill_session_survives_a_failing_callback(service: NetconfService) -> None:
    def broken() -> None:
        raise RuntimeError("transport already gone")

    killer = service.open_session(Killed())
    victim = service.open_session(broken)
    service.handle(killer, op(f"<kill-session><session-id>{victim}</session-id></kill-session>"))
    assert service.session_ids == [killer]


def test_errors_from_the_datastore_pass_through(service: NetconfService) -> None:
    s = service.open_session(Killed())
    service.handle(s, op(EDIT.format(1)))
    err = rpc_error(
        service,
        s,
        "<edit-config><target><running/></target>"
        f'<config><top xmlns="{T}" xmlns:nc="{NC}"><mtu nc:operation="create">2</mtu></top>'
        "</config></edit-config>",
    )
    assert err.tag is ErrorTag.DATA_EXISTS
    assert err.path == "/t:top/t:mtu"


def test_the_managers_liveness_probe_is_not_activity(service: NetconfService) -> None:
    session = service.open_session(Killed())
    service.last_rpc = 0.0
    probe = service.handle(session, op('<get><filter type="subtree"/></get>'))
    assert probe is not None and len(probe) == 0  # answered: <data/>, nothing selected
    assert service.last_rpc == 0.0
    # anything that selects or asks for something is use of the connection
    for body in ("<get/>", f'<get><filter type="subtree"><top xmlns="{T}"/></filter></get>'):
        service.last_rpc = 0.0
        service.handle(session, op(body))
        assert service.last_rpc > 0.0


def test_the_probe_the_manager_sends_is_recognised() -> None:
    from callhome.agent.netconf_service import is_liveness_probe
    from callhome.net.reverse_tls import PROBE

    assert is_liveness_probe(etree.fromstring(PROBE))
