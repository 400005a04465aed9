"""Confirmed commit (RFC 6241 section 8.4, :confirmed-commit:1.1) with a fake clock."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from agent_testkit import (
    FakeTime,
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

from callhome.agent.datastore.confirm import default_schedule
from callhome.agent.datastore.core import (
    ChangeEvent,
    ConfirmedCommitEvent,
    ConfirmEvent,
    Datastore,
    EditTarget,
)
from callhome.agent.netconf_service import NetconfService
from callhome.errors import ErrorTag, ErrorType, RpcError
from callhome.net.netconf import NetconfServerDriver
from callhome.proto.netconf import ClientCore, RpcReply
from callhome.proto.netconf import operations as ops

OLD = top("<mtu>1</mtu>")
NEW = top("<mtu>2</mtu>")


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def service(fake: FakeTime) -> NetconfService:
    service = new_service(fake)
    s = Session(service)
    s.ok(edit("running", OLD))
    s.close()
    return service


def stage(s: Session, body: str = NEW) -> None:
    s.ok(edit("candidate", body))


def running(s: Session) -> str:
    return text(s.data(get_config("running")))


def test_timeout_rolls_back(service: NetconfService, fake: FakeTime) -> None:
    s = Session(service)
    stage(s)
    s.ok("<commit><confirmed/><confirm-timeout>30</confirm-timeout></commit>")
    assert running(s) == data(NEW)
    info = service.datastore.confirmed_commit
    assert info is not None and (info.session_id, info.persist) == (s.id, False)
    assert info.deadline == fake.now + 30
    fake.advance(29)
    assert running(s) == data(NEW)
    fake.advance(1)
    assert running(s) == data(OLD)
    assert text(s.data(get_config("candidate"))) == data(OLD)
    assert service.datastore.confirmed_commit is None
    assert fake.armed == []


def test_default_timeout_is_600_seconds(service: NetconfService, fake: FakeTime) -> None:
    s = Session(service)
    stage(s)
    s.ok("<commit><confirmed/></commit>")
    assert fake.armed == [fake.now + 600]
    fake.advance(599.5)
    assert running(s) == data(NEW)
    fake.advance(0.5)
    assert running(s) == data(OLD)


def test_confirming_commit_makes_it_permanent(service: NetconfService, fake: FakeTime) -> None:
    s = Session(service)
    stage(s)
    s.ok("<commit><confirmed/><confirm-timeout>10</confirm-timeout></commit>")
    stage(s, top("<mtu>3</mtu>"))  # a confirming commit may bring more changes
    s.ok("<commit/>")
    assert service.datastore.confirmed_commit is None
    fake.advance(3600)
    assert running(s) == data(top("<mtu>3</mtu>"))


def test_follow_up_confirmed_commit_extends(service: NetconfService, fake: FakeTime) -> None:
    s = Session(service)
    stage(s)
    s.ok("<commit><confirmed/><confirm-timeout>10</confirm-timeout></commit>")
    fake.advance(8)
    stage(s, top("<mtu>3</mtu>"))
    s.ok("<commit><confirmed/><confirm-timeout>20</confirm-timeout></commit>")
    fake.advance(19)
    assert running(s) == data(top("<mtu>3</mtu>"))
    fake.advance(1)
    # Back to the configuration from before the first confirmed commit.
    assert running(s) == data(OLD)


@pytest.mark.parametrize("how", ["close", "close-session", "kill-session"])
def test_session_end_rolls_back(service: NetconfService, fake: FakeTime, how: str) -> None:
    s, other = Session(service), Session(service)
    stage(s)
    s.ok("<commit><confirmed/></commit>")
    if how == "close":
        s.close()  # e.g. the call-home connection dropped
    elif how == "close-session":
        s.ok("<close-session/>")
    else:
        other.ok(f"<kill-session><session-id>{s.id}</session-id></kill-session>")
    assert running(other) == data(OLD)
    assert service.datastore.confirmed_commit is None
    assert fake.armed == []
    s.close()  # idempotent


def test_other_sessions_cannot_confirm_or_cancel(service: NetconfService) -> None:
    s, other = Session(service), Session(service)
    stage(s)
    s.ok("<commit><confirmed/></commit>")
    for body in ("<commit/>", "<cancel-commit/>", "<commit><confirmed/></commit>"):
        err = other.error(body)
        assert (err.tag, err.type) == (ErrorTag.IN_USE, ErrorType.PROTOCOL)
        assert err.info_items == {"session-id": str(s.id)}
    err = other.error("<commit><persist-id>x</persist-id></commit>")
    assert (err.tag, err.info_items) == (ErrorTag.INVALID_VALUE, {"bad-element": "persist-id"})
    s.ok("<commit/>")
    other.ok("<commit/>")  # nothing pending now: an ordinary commit


def test_lock_on_running_refused_during_another_sessions_confirmed_commit(
    service: NetconfService,
) -> None:
    s, other = Session(service), Session(service)
    stage(s)
    s.ok("<commit><confirmed/></commit>")
    err = other.error("<lock><target><running/></target></lock>")
    assert (err.tag, err.info_items) == (ErrorTag.LOCK_DENIED, {"session-id": str(s.id)})
    other.ok("<lock><target><candidate/></target></lock>")  # only running is held back
    s.ok("<lock><target><running/></target></lock>")
    s.ok("<unlock><target><running/></target></unlock>")
    assert s.error("<commit/>").tag is ErrorTag.IN_USE  # other holds the candidate
    other.ok("<unlock><target><candidate/></target></unlock>")
    s.ok("<commit/>")
    other.ok("<lock><target><running/></target></lock>")


def test_persist_survives_the_session_and_is_confirmed_by_persist_id(
    service: NetconfService, fake: FakeTime
) -> None:
    s = Session(service)
    stage(s)
    s.ok("<commit><confirmed/><persist>tok-1</persist></commit>")
    info = service.datastore.confirmed_commit
    assert info is not None and info.persist
    s.close()
    later = Session(service)  # the manager calls home again
    assert running(later) == data(NEW)
    err = later.error("<commit/>")
    assert (err.tag, err.info_items) == (ErrorTag.MISSING_ELEMENT, {"bad-element": "persist-id"})
    err = later.error("<commit><persist-id>tok-2</persist-id></commit>")
    assert (err.tag, err.info_items) == (ErrorTag.INVALID_VALUE, {"bad-element": "persist-id"})
    later.ok("<commit><persist-id>tok-1</persist-id></commit>")
    fake.advance(3600)
    assert running(later) == data(NEW)


def test_persist_follow_up_and_timeout(service: NetconfService, fake: FakeTime) -> None:
    s = Session(service)
    stage(s)
    s.ok("<commit><confirmed/><confirm-timeout>60</confirm-timeout><persist>a</persist></commit>")
    other = Session(service)
    other.ok(
        "<commit><confirmed/><confirm-timeout>120</confirm-timeout>"
        "<persist>b</persist><persist-id>a</persist-id></commit>"
    )
    s.close()
    fake.advance(100)
    assert running(other) == data(NEW)
    assert other.error("<cancel-commit><persist-id>a</persist-id></cancel-commit>").tag is (
        ErrorTag.INVALID_VALUE
    )
    fake.advance(20)
    assert running(other) == data(OLD)


def test_cancel_commit(service: NetconfService) -> None:
    s = Session(service)
    err = s.error("<cancel-commit/>")
    assert (err.tag, err.type) == (ErrorTag.OPERATION_FAILED, ErrorType.PROTOCOL)
    stage(s)
    s.ok("<commit><confirmed/></commit>")
    s.ok("<cancel-commit/>")
    assert running(s) == data(OLD)
    assert service.datastore.confirmed_commit is None
    # with persist: by persist-id from any session, or by the issuing session without it
    stage(s)
    s.ok("<commit><confirmed/><persist>p</persist></commit>")
    other = Session(service)
    err = other.error("<cancel-commit/>")
    assert (err.tag, err.info_items) == (ErrorTag.MISSING_ELEMENT, {"bad-element": "persist-id"})
    other.ok("<cancel-commit><persist-id>p</persist-id></cancel-commit>")
    assert running(s) == data(OLD)
    stage(s)
    s.ok("<commit><confirmed/><persist>q</persist></commit>")
    s.ok("<cancel-commit/>")
    assert running(s) == data(OLD)


def test_candidate_changes_made_after_the_commit_survive_a_rollback(
    service: NetconfService, fake: FakeTime
) -> None:
    s = Session(service)
    stage(s)
    s.ok("<commit><confirmed/><confirm-timeout>5</confirm-timeout></commit>")
    stage(s, top("<name>pending</name>"))
    fake.advance(5)
    assert running(s) == data(OLD)
    assert text(s.data(get_config("candidate"))) == data(top("<mtu>2</mtu><name>pending</name>"))


@pytest.mark.parametrize(
    ("body", "bad"),
    [
        ("<commit><confirm-timeout>5</confirm-timeout></commit>", "confirmed"),
        ("<commit><persist>x</persist></commit>", "confirmed"),
        ("<commit><confirmed/><confirm-timeout>0</confirm-timeout></commit>", "confirm-timeout"),
        ("<commit><confirmed/><confirm-timeout>-4</confirm-timeout></commit>", "confirm-timeout"),
        ("<commit><confirmed/><confirm-timeout>soon</confirm-timeout></commit>", "confirm-timeout"),
        (
            "<commit><confirmed/><confirm-timeout>4294967296</confirm-timeout></commit>",
            "confirm-timeout",
        ),
        ("<commit><persist-id>x</persist-id></commit>", "persist-id"),
        ("<cancel-commit><session-id>1</session-id></cancel-commit>", "session-id"),
    ],
)
def test_commit_parameter_errors(service: NetconfService, body: str, bad: str) -> None:
    s = Session(service)
    err = s.error(body)
    assert err.type is ErrorType.PROTOCOL
    assert err.info_items["bad-element"] == bad
    assert service.datastore.confirmed_commit is None


def test_events(service: NetconfService, fake: FakeTime) -> None:
    commits: list[ConfirmedCommitEvent] = []
    changes: list[ChangeEvent] = []
    service.add_commit_listener(commits.append)
    service.add_change_listener(changes.append)
    s = Session(service)
    stage(s)
    s.ok("<commit><confirmed/><confirm-timeout>10</confirm-timeout></commit>")
    s.ok("<commit><confirmed/><confirm-timeout>20</confirm-timeout><persist>p</persist></commit>")
    s.ok("<commit><persist-id>p</persist-id></commit>")
    stage(s, top("<mtu>7</mtu>"))
    s.ok("<commit><confirmed/></commit>")
    s.ok("<cancel-commit/>")
    stage(s, top("<mtu>8</mtu>"))
    s.ok("<commit><confirmed/><confirm-timeout>1</confirm-timeout></commit>")
    fake.advance(1)
    assert commits == [
        ConfirmedCommitEvent(ConfirmEvent.START, s.id, timeout=10),
        ConfirmedCommitEvent(ConfirmEvent.EXTEND, s.id, timeout=20, persist=True),
        ConfirmedCommitEvent(ConfirmEvent.COMPLETE, s.id, persist=True),
        ConfirmedCommitEvent(ConfirmEvent.START, s.id, timeout=600),
        ConfirmedCommitEvent(ConfirmEvent.CANCEL, s.id),
        ConfirmedCommitEvent(ConfirmEvent.START, s.id, timeout=1),
        ConfirmedCommitEvent(ConfirmEvent.TIMEOUT, None),
    ]
    rollbacks = [e for e in changes if e.operation == "rollback"]
    assert [(e.datastore, e.session_id, e.targets) for e in rollbacks] == [
        ("running", s.id, (EditTarget("/", "replace"),)),
        ("running", None, (EditTarget("/", "replace"),)),
    ]
    service.remove_commit_listener(commits.append)
    stage(s, top("<mtu>9</mtu>"))
    s.ok("<commit><confirmed/></commit>")
    assert len(commits) == 7


def test_an_early_timer_waits_for_the_deadline(tmp_path: Path) -> None:
    fake = FakeTime()
    calls: list[Any] = []

    def early(delay: float, callback: Any) -> Any:
        calls.append(delay)
        return fake.schedule(delay / 2, callback)

    ds = Datastore(clock=fake.clock, schedule=early)
    ds.edit_config("candidate", config(NEW))
    ds.commit(confirmed=True, confirm_timeout=8)
    fake.advance(4)  # the timer goes off after half the time
    assert ds.confirmed_commit is not None
    assert calls == [8, 4]
    fake.advance(4)
    assert ds.confirmed_commit is None


def test_restart_during_a_confirmed_commit_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "running.xml"
    fake = FakeTime()
    ds = Datastore(path, clock=fake.clock, schedule=fake.schedule)
    ds.edit_config("running", config(OLD))
    ds.edit_config("candidate", config(NEW))
    ds.commit(confirmed=True, persist="p")
    rollback = tmp_path / "running.xml.rollback"
    assert rollback.exists()
    # The device stops before a confirming commit: it starts with the old configuration.
    again = Datastore(path)
    assert text(again.read()) == data(OLD)
    assert not rollback.exists()
    assert text(Datastore(path).read()) == data(OLD)


def test_confirmed_and_cancelled_commits_leave_no_rollback_file(tmp_path: Path) -> None:
    path = tmp_path / "running.xml"
    fake = FakeTime()
    ds = Datastore(path, clock=fake.clock, schedule=fake.schedule)
    ds.edit_config("candidate", config(NEW))
    ds.commit(confirmed=True, session_id=1)
    ds.commit(session_id=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["running.xml"]
    ds.edit_config("candidate", config(OLD))
    ds.commit(confirmed=True, session_id=1)
    ds.release_session(1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["running.xml"]
    assert text(Datastore(path).read()) == data(NEW)


def test_failed_rollback_file_write_refuses_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "running.xml"
    ds = Datastore(path)
    ds.edit_config("candidate", config(NEW))

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(RpcError) as info:
        ds.commit(confirmed=True)
    assert info.value.first.tag is ErrorTag.OPERATION_FAILED
    monkeypatch.undo()
    assert ds.confirmed_commit is None
    assert text(ds.read()) == data("")
    assert ds.candidate_modified


def test_failed_running_write_removes_the_rollback_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "running.xml"
    ds = Datastore(path)
    ds.edit_config("running", config(OLD))
    ds.edit_config("candidate", config(NEW))
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if Path(dst) == path:
            raise OSError(5, "I/O error")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(RpcError):
        ds.commit(confirmed=True)
    monkeypatch.undo()
    assert ds.confirmed_commit is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidate.xml", "running.xml"]
    assert text(Datastore(path).read()) == data(OLD)


def test_rollback_that_cannot_be_saved_keeps_the_rollback_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "running.xml"
    fake = FakeTime()
    ds = Datastore(path, clock=fake.clock, schedule=fake.schedule)
    ds.edit_config("running", config(OLD))
    ds.edit_config("candidate", config(NEW))
    ds.commit(confirmed=True, confirm_timeout=5)

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    fake.advance(5)
    monkeypatch.undo()
    assert text(ds.read()) == data(OLD)  # rolled back in memory
    assert (tmp_path / "running.xml.rollback").exists()
    assert text(Datastore(path).read()) == data(OLD)  # and after a restart


def test_device_code_confirmed_commit() -> None:
    fake = FakeTime()
    ds = Datastore(clock=fake.clock, schedule=fake.schedule)
    ds.edit_config("candidate", config(NEW))
    ds.commit(confirmed=True)
    ds.lock("running", 0)  # the device's own code is the issuer here
    ds.unlock("running", 0)
    with pytest.raises(RpcError) as info:
        ds.lock("running", 4)
    assert info.value.first.info_items == {"session-id": "0"}
    ds.commit()
    assert ds.confirmed_commit is None
    with pytest.raises(RpcError) as info:
        ds.commit(confirmed=True, confirm_timeout=0)
    assert info.value.first.info_items == {"bad-element": "confirm-timeout"}


async def test_default_schedule_uses_the_running_loop() -> None:
    fired = asyncio.Event()
    handle = default_schedule(0.001, fired.set)
    assert isinstance(handle, asyncio.TimerHandle)
    await asyncio.wait_for(fired.wait(), 5)
    cancelled = default_schedule(0.001, lambda: pytest.fail("cancelled timer went off"))
    cancelled.cancel()
    await asyncio.sleep(0.01)


def test_default_schedule_without_a_loop_uses_a_thread() -> None:
    fired = threading.Event()
    timer = default_schedule(0.001, fired.set)
    assert isinstance(timer, threading.Timer)
    assert fired.wait(5)
    stopped = default_schedule(60, fired.clear)
    stopped.cancel()
    assert fired.is_set()


async def test_rollback_on_the_event_loop() -> None:
    ds = Datastore(list_keys={f"{{{T}}}top": ()})
    ds.edit_config("candidate", config(NEW))
    ds.commit(confirmed=True, confirm_timeout=0.01, session_id=1)
    for _ in range(500):
        if ds.confirmed_commit is None:
            break
        await asyncio.sleep(0.01)
    assert ds.confirmed_commit is None
    assert text(ds.read()) == data("")


def test_transport_drop_under_the_netconf_driver_rolls_back(fake: FakeTime) -> None:
    """The call-home connection drops after a confirmed commit: the driver tells the service,
    which rolls back."""
    service = new_service(fake)
    to_client: list[bytes] = []
    driver = NetconfServerDriver(service, to_client.append, lambda: None)
    client = ClientCore()
    driver.feed(client.hello())
    client.receive_data(b"".join(to_client))
    to_client.clear()
    while client.next_event() is not None:  # the device's hello
        pass

    def call(operation: Any) -> RpcReply:
        _, request = client.rpc(operation)
        driver.feed(request)
        client.receive_data(b"".join(to_client))
        to_client.clear()
        while (event := client.next_event()) is not None:
            if isinstance(event, RpcReply):
                return event
        raise AssertionError("no reply")

    assert call(ops.op_edit_config("candidate", NEW)).ok
    assert call(ops.op_commit(confirmed=True, confirm_timeout=60)).ok
    assert text(service.datastore.read()) == data(NEW)
    driver.connection_lost()
    assert text(service.datastore.read()) == data("")
    assert service.datastore.confirmed_commit is None
    assert fake.armed == []
