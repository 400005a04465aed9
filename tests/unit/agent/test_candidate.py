"""The candidate datastore (RFC 6241 section 8.3): commit, discard-changes and lock rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_testkit import (
    Session,
    T,
    config,
    data,
    edit,
    get_config,
    new_service,
    text,
    top,
)

from callhome.agent.datastore.core import ChangeEvent, Datastore, EditTarget
from callhome.agent.netconf_service import NetconfService
from callhome.errors import ErrorTag, ErrorType, RpcError

LOCK_CANDIDATE = "<lock><target><candidate/></target></lock>"
UNLOCK_CANDIDATE = "<unlock><target><candidate/></target></unlock>"


@pytest.fixture
def service() -> NetconfService:
    return new_service()


def test_candidate_follows_running_until_edited(service: NetconfService) -> None:
    s = Session(service)
    s.ok(edit("running", top("<mtu>1</mtu>")))
    assert text(s.data(get_config("candidate"))) == data(top("<mtu>1</mtu>"))
    s.ok(edit("candidate", top("<mtu>2</mtu>")))
    assert text(s.data(get_config("candidate"))) == data(top("<mtu>2</mtu>"))
    assert text(s.data(get_config("running"))) == data(top("<mtu>1</mtu>"))
    assert service.datastore.candidate_modified
    # Running changed under a modified candidate: the candidate keeps its changes.
    s.ok(edit("running", top("<name>r</name>")))
    assert text(s.data(get_config("candidate"))) == data(top("<mtu>2</mtu>"))


def test_commit_copies_candidate_to_running(service: NetconfService) -> None:
    s = Session(service)
    s.ok(edit("candidate", top("<mtu>9000</mtu>")))
    s.ok("<commit/>")
    assert text(s.data(get_config("running"))) == data(top("<mtu>9000</mtu>"))
    assert not service.datastore.candidate_modified
    # A commit with nothing to commit is fine.
    s.ok("<commit/>")


def test_discard_changes(service: NetconfService) -> None:
    s = Session(service)
    s.ok(edit("running", top("<mtu>1</mtu>")))
    s.ok(edit("candidate", top("<mtu>2</mtu>")))
    s.ok("<discard-changes/>")
    assert text(s.data(get_config("candidate"))) == data(top("<mtu>1</mtu>"))
    assert not service.datastore.candidate_modified
    s.ok("<discard-changes/>")  # nothing to discard


def test_commit_of_an_invalid_candidate_changes_nothing() -> None:
    entry = f"{{{T}}}user"
    service = new_service(list_keys={f"{{{T}}}top": (), entry: (f"{{{T}}}name",)})
    s = Session(service)
    s.ok(edit("candidate", top("<user><name>a</name><kind>x</kind></user>")))
    # test-option set skips validation: the key is deleted
    s.ok(
        edit(
            "candidate",
            top('<user><name>a</name><name nc:operation="delete"/></user>'),
            "<test-option>set</test-option>",
        )
    )
    err = s.error("<commit/>")
    assert (err.tag, err.type) == (ErrorTag.MISSING_ELEMENT, ErrorType.APPLICATION)
    assert err.path == "/t:top/t:user"
    assert text(s.data(get_config("running"))) == data("")
    assert service.datastore.candidate_modified


def test_lock_refused_while_another_session_has_uncommitted_changes(
    service: NetconfService,
) -> None:
    one, two = Session(service), Session(service)
    one.ok(edit("candidate", top("<mtu>2</mtu>")))
    err = two.error(LOCK_CANDIDATE)
    assert (err.tag, err.type) == (ErrorTag.LOCK_DENIED, ErrorType.PROTOCOL)
    assert err.info_items == {"session-id": str(one.id)}
    # The session that made the changes may lock.
    one.ok(LOCK_CANDIDATE)
    one.ok("<commit/>")
    one.ok(UNLOCK_CANDIDATE)
    two.ok(LOCK_CANDIDATE)


def test_lock_refused_after_discard_by_nobody_but_allowed_after_discard(
    service: NetconfService,
) -> None:
    one, two = Session(service), Session(service)
    one.ok(edit("candidate", top("<mtu>2</mtu>")))
    one.close()  # without a lock its changes stay
    assert two.error(LOCK_CANDIDATE).tag is ErrorTag.LOCK_DENIED
    two.ok("<discard-changes/>")
    two.ok(LOCK_CANDIDATE)


def test_device_code_changes_count_as_session_zero(service: NetconfService) -> None:
    ds = service.datastore
    ds.edit_config("candidate", config(top("<mtu>5</mtu>")))
    err = Session(service).error(LOCK_CANDIDATE)
    assert err.info_items == {"session-id": "0"}
    ds.lock("candidate", 0)  # the device's own code may lock over its own changes
    ds.edit_config("candidate", config(top("<mtu>6</mtu>")))
    ds.commit()
    ds.unlock("candidate", 0)
    assert ds.read()[0][0].text == "6"


def test_locked_candidate_is_read_only_for_others(service: NetconfService) -> None:
    one, two = Session(service), Session(service)
    one.ok(LOCK_CANDIDATE)
    for body in (edit("candidate", top("<mtu>1</mtu>")), "<discard-changes/>", "<commit/>"):
        err = two.error(body)
        assert err.tag is ErrorTag.IN_USE
        assert err.info_items == {"session-id": str(one.id)}
    assert two.error(LOCK_CANDIDATE).tag is ErrorTag.LOCK_DENIED
    assert two.error(UNLOCK_CANDIDATE).tag is ErrorTag.OPERATION_FAILED


def test_commit_refused_while_another_session_locks_running(service: NetconfService) -> None:
    one, two = Session(service), Session(service)
    two.ok(edit("candidate", top("<mtu>1</mtu>")))
    one.ok("<lock><target><running/></target></lock>")
    err = two.error("<commit/>")
    assert err.tag is ErrorTag.IN_USE
    assert err.info_items == {"session-id": str(one.id)}
    one.ok("<unlock><target><running/></target></unlock>")
    two.ok("<commit/>")


def test_unlock_discards_uncommitted_changes(service: NetconfService) -> None:
    s = Session(service)
    s.ok(edit("running", top("<mtu>1</mtu>")))
    s.ok(LOCK_CANDIDATE)
    s.ok(edit("candidate", top("<mtu>2</mtu>")))
    s.ok(UNLOCK_CANDIDATE)
    assert text(s.data(get_config("candidate"))) == data(top("<mtu>1</mtu>"))
    assert not service.datastore.candidate_modified


@pytest.mark.parametrize("how", ["close", "close-session", "kill-session"])
def test_session_end_with_the_lock_discards_its_changes(service: NetconfService, how: str) -> None:
    one, two = Session(service), Session(service)
    one.ok(LOCK_CANDIDATE)
    one.ok(edit("candidate", top("<mtu>2</mtu>")))
    if how == "close":
        one.close()
    elif how == "close-session":
        one.ok("<close-session/>")
    else:
        two.ok(f"<kill-session><session-id>{one.id}</session-id></kill-session>")
        assert one.killed.count == 1
    assert service.datastore.lock_holder("candidate") is None
    assert text(two.data(get_config("candidate"))) == data("")
    two.ok(LOCK_CANDIDATE)


def test_change_events_for_candidate_and_commit(service: NetconfService) -> None:
    events: list[ChangeEvent] = []
    service.add_change_listener(events.append)
    s = Session(service)
    s.ok(edit("candidate", top("<mtu>2</mtu>")))
    s.ok(edit("candidate", top('<mtu>3</mtu><name nc:operation="create">x</name>')))
    s.ok("<commit/>")
    assert [(e.datastore, e.operation, e.session_id) for e in events] == [
        ("candidate", "edit-config", s.id),
        ("candidate", "edit-config", s.id),
        ("running", "commit", s.id),
    ]
    t = (("t", "urn:example:t"),)
    assert events[0].targets == (EditTarget("/t:top", "merge", t),)
    # Explicit operations are recorded, except inside new content (the new /top above).
    assert events[1].targets == (
        EditTarget("/t:top", "merge", t),
        EditTarget("/t:top/t:name", "create", t),
    )
    assert events[-1].targets == events[0].targets + events[1].targets
    assert events[-1].edit is None
    s.ok(edit("candidate", top("<mtu>4</mtu>")))
    s.ok("<discard-changes/>")
    assert (events[-1].datastore, events[-1].operation) == ("candidate", "discard-changes")
    assert events[-1].targets == (EditTarget("/", "replace"),)
    service.remove_change_listener(events.append)
    s.ok(edit("candidate", top("<mtu>5</mtu>")))
    assert events[-1].operation == "discard-changes"


def test_candidate_file_exists_only_with_uncommitted_changes(tmp_path: Path) -> None:
    path = tmp_path / "running.xml"
    keys = {f"{{{T}}}top": ()}
    ds = Datastore(path, list_keys=keys)
    candidate = tmp_path / "candidate.xml"
    ds.edit_config("candidate", config(top("<mtu>2</mtu>")))
    assert candidate.exists()
    # A restart keeps the uncommitted changes, owned by no live session.
    again = Datastore(path, list_keys=keys)
    assert again.candidate_modified
    assert again.read("candidate")[0][0].text == "2"
    with pytest.raises(RpcError) as info:
        again.lock("candidate", 3)
    assert info.value.first.info_items == {"session-id": "0"}
    again.commit()
    assert not candidate.exists()
    assert Datastore(path, list_keys=keys).read()[0][0].text == "2"
    again.edit_config("candidate", config(top("<mtu>3</mtu>")))
    again.discard_changes()
    assert not candidate.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["running.xml"]


def test_candidate_file_equal_to_running_is_dropped_at_start(tmp_path: Path) -> None:
    path = tmp_path / "running.xml"
    Datastore(path).edit_config("running", config(top("<mtu>2</mtu>")))
    (tmp_path / "candidate.xml").write_bytes(path.read_bytes())
    ds = Datastore(path)
    assert not ds.candidate_modified
    assert not (tmp_path / "candidate.xml").exists()


def test_explicit_paths_and_sibling_names(tmp_path: Path) -> None:
    ds = Datastore(
        tmp_path / "dev.xml",
        candidate_path=tmp_path / "c.xml",
        startup_path=tmp_path / "s.xml",
    )
    ds.edit_config("candidate", config(top("")))
    ds.copy_config("startup", "running")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.xml", "s.xml"]
    other = Datastore(tmp_path / "device.xml")
    other.edit_config("candidate", config(top("")))
    other.copy_config("startup", "candidate")
    assert {"device.candidate.xml", "device.startup.xml"} <= {p.name for p in tmp_path.iterdir()}
