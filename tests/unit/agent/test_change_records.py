"""Edit records of change events (who, which datastore, what was done where), and the
operations' parameter checks in the service."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_testkit import Session, T, config, data, edit, new_service, text, top

from callhome.agent.datastore.core import ChangeEvent, Datastore, EditTarget
from callhome.agent.netconf_service import NetconfService
from callhome.errors import ErrorTag

USER = f"{{{T}}}user"


@pytest.fixture
def events() -> list[ChangeEvent]:
    return []


@pytest.fixture
def ds(events: list[ChangeEvent]) -> Datastore:
    store = Datastore(list_keys={f"{{{T}}}top": (), USER: (f"{{{T}}}name",)})
    store.edit_config(
        "running",
        config(top("<user><name>a</name><shell>sh</shell></user><mtu>1</mtu>")),
    )
    store.add_change_listener(events.append)
    return store


def targets(events: list[ChangeEvent]) -> list[tuple[str, str]]:
    assert len(events) == 1
    return [(t.target, t.operation) for t in events[0].targets]


def test_records_name_list_entries_by_key(ds: Datastore, events: list[ChangeEvent]) -> None:
    ds.edit_config(
        "running",
        config(
            top(
                '<user><name>a</name><shell nc:operation="delete"/></user>'
                '<user nc:operation="create"><name>b</name><shell nc:operation="replace">x</shell>'
                "</user>"
            )
        ),
        session_id=4,
    )
    assert targets(events) == [
        ("/t:top", "merge"),
        ("/t:top/t:user[t:name='a']/t:shell", "delete"),
        ("/t:top/t:user[t:name='b']", "create"),  # nothing recorded inside new content
    ]
    assert events[0].session_id == 4


def test_default_operation_none_records_explicit_operations_only(
    ds: Datastore, events: list[ChangeEvent]
) -> None:
    ds.edit_config(
        "running",
        config(top('<mtu nc:operation="replace">2</mtu>')),
        default_operation="none",
    )
    assert targets(events) == [("/t:top/t:mtu", "replace")]


def test_default_operation_replace_is_one_record(ds: Datastore, events: list[ChangeEvent]) -> None:
    ds.edit_config("running", config(top("<mtu>2</mtu>")), default_operation="replace")
    assert targets(events) == [("/", "replace")]


def test_failed_parts_are_not_recorded(ds: Datastore, events: list[ChangeEvent]) -> None:
    with pytest.raises(Exception):  # noqa: B017 - the RpcError is checked elsewhere
        ds.edit_config(
            "running",
            config(
                '<x xmlns="urn:x" nc:operation="delete"/>'
                + top('<mtu>5</mtu><user nc:operation="delete"><name>zz</name></user>')
            ),
            error_option="continue-on-error",
        )
    assert targets(events) == [("/t:top", "merge")]


def test_no_event_without_a_change(ds: Datastore, events: list[ChangeEvent]) -> None:
    ds.edit_config("running", config(top("<mtu>1</mtu>")))
    ds.edit_config("candidate", config(top("<mtu>1</mtu>")))
    ds.discard_changes()
    assert events == []


def test_startup_and_rollback_file_at_start(tmp_path: Path) -> None:
    # Both a startup file and a rollback file: startup wins, the rollback file goes.
    path = tmp_path / "running.xml"
    ds = Datastore(path)
    ds.edit_config("running", config(top("<mtu>1</mtu>")))
    ds.copy_config("startup", "running")
    ds.edit_config("candidate", config(top("<mtu>2</mtu>")))
    ds.commit(confirmed=True, persist="p")
    assert (tmp_path / "running.xml.rollback").exists()
    (tmp_path / "startup.xml").write_bytes(
        (tmp_path / "startup.xml").read_bytes().replace(b">1<", b">3<")
    )
    again = Datastore(path)
    assert text(again.read()) == data(top("<mtu>3</mtu>"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["running.xml", "startup.xml"]


@pytest.mark.parametrize(
    ("body", "tag", "bad"),
    [
        ("<discard-changes><target/></discard-changes>", ErrorTag.UNKNOWN_ELEMENT, "target"),
        ("<commit><target/></commit>", ErrorTag.UNKNOWN_ELEMENT, "target"),
        ("<commit><confirmed/><confirmed/></commit>", ErrorTag.BAD_ELEMENT, "confirmed"),
        ("<delete-config/>", ErrorTag.MISSING_ELEMENT, "target"),
        (
            "<delete-config><target><url>x</url></target></delete-config>",
            ErrorTag.OPERATION_NOT_SUPPORTED,
            "target",
        ),
        (
            '<commit><persist xmlns="urn:x">a</persist></commit>',
            ErrorTag.UNKNOWN_NAMESPACE,
            "persist",
        ),
    ],
)
def test_parameter_errors_of_the_new_operations(body: str, tag: ErrorTag, bad: str) -> None:
    service: NetconfService = new_service()
    err = Session(service).error(body)
    assert (err.tag, err.info_items["bad-element"]) == (tag, bad)


def test_edit_candidate_through_the_service(events: list[ChangeEvent]) -> None:
    service = new_service()
    service.add_change_listener(events.append)
    s = Session(service)
    s.ok(edit("candidate", top("<mtu>1</mtu>")))
    assert [(e.datastore, e.session_id) for e in events] == [("candidate", s.id)]
    assert events[0].targets == (EditTarget("/t:top", "merge", (("t", "urn:example:t"),)),)
