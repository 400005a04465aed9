"""copy-config, delete-config, startup (:startup) and validate (:validate:1.1)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from agent_testkit import (
    NC,
    Session,
    T,
    config,
    copy_config,
    data,
    edit,
    get_config,
    new_service,
    text,
    top,
)

from callhome.agent.datastore.core import ChangeEvent, Datastore, EditTarget
from callhome.agent.netconf_service import NetconfService
from callhome.errors import ConfigError, ErrorTag, ErrorType, RpcError

USER = f"{{{T}}}user"
KEYS = {f"{{{T}}}top": (), USER: (f"{{{T}}}name",)}


@pytest.fixture
def service() -> NetconfService:
    return new_service(list_keys=KEYS)


# -- copy-config --------------------------------------------------------------------------------


def test_copy_running_to_startup_and_back(service: NetconfService) -> None:
    s = Session(service)
    assert not service.datastore.startup_exists
    assert text(s.data(get_config("startup"))) == data("")
    s.ok(edit("running", top("<mtu>1</mtu>")))
    s.ok(copy_config("startup", "running"))
    assert service.datastore.startup_exists
    s.ok(edit("running", top("<mtu>2</mtu>")))
    assert text(s.data(get_config("startup"))) == data(top("<mtu>1</mtu>"))
    s.ok(copy_config("running", "startup"))
    assert text(s.data(get_config("running"))) == data(top("<mtu>1</mtu>"))


def test_copy_into_candidate_and_running(service: NetconfService) -> None:
    s = Session(service)
    s.ok(edit("running", top("<mtu>1</mtu>")))
    inline = f'<config><top xmlns="{T}"><mtu>5</mtu></top></config>'
    s.ok(copy_config("candidate", inline))
    assert service.datastore.candidate_modified
    assert text(s.data(get_config("candidate"))) == data(top("<mtu>5</mtu>"))
    # copying running into the candidate is a discard
    s.ok(copy_config("candidate", "running"))
    assert not service.datastore.candidate_modified
    s.ok(copy_config("candidate", inline))
    # copying the candidate into running leaves it without uncommitted changes
    s.ok(copy_config("running", "candidate"))
    assert text(s.data(get_config("running"))) == data(top("<mtu>5</mtu>"))
    assert not service.datastore.candidate_modified


def test_copy_inline_config_replaces_running_whole(service: NetconfService) -> None:
    s = Session(service)
    s.ok(edit("running", top("<mtu>1</mtu>") + '<other xmlns="urn:x"/>'))
    events: list[ChangeEvent] = []
    service.add_change_listener(events.append)
    s.ok(
        copy_config(
            "running",
            f"<config><!-- c --><top xmlns='{T}'>\n  <name>n</name>\n</top></config>",
        )
    )
    assert text(s.data(get_config("running"))) == data(top("<name>n</name>"))
    assert [(e.datastore, e.operation, e.targets) for e in events] == [
        ("running", "copy-config", (EditTarget("/", "replace"),))
    ]


@pytest.mark.parametrize(
    ("body", "tag", "info"),
    [
        (copy_config("running", "running"), ErrorTag.INVALID_VALUE, {"bad-element": "target"}),
        (copy_config("config", "running"), ErrorTag.INVALID_VALUE, {"bad-element": "target"}),
        (copy_config("scratch", "running"), ErrorTag.INVALID_VALUE, {"bad-element": "target"}),
        (copy_config("running", "scratch"), ErrorTag.INVALID_VALUE, {"bad-element": "source"}),
        (
            copy_config("startup", "<url>file:///tmp/x.xml</url>"),
            ErrorTag.OPERATION_NOT_SUPPORTED,
            {"bad-element": "source"},
        ),
        (
            "<copy-config><target><url>file:///x</url></target><source><running/></source>"
            "</copy-config>",
            ErrorTag.OPERATION_NOT_SUPPORTED,
            {"bad-element": "target"},
        ),
        (
            "<copy-config><source><running/></source></copy-config>",
            ErrorTag.MISSING_ELEMENT,
            {"bad-element": "target"},
        ),
        (
            "<copy-config><target><startup/></target></copy-config>",
            ErrorTag.MISSING_ELEMENT,
            {"bad-element": "source"},
        ),
        (
            copy_config("running", f'<config><top xmlns="{T}" nc:operation="merge"/></config>'),
            ErrorTag.UNKNOWN_ATTRIBUTE,
            {"bad-attribute": "operation", "bad-element": "top"},
        ),
        (
            "<copy-config><target><startup/></target><source><running/></source>"
            '<with-defaults xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults">'
            "everything</with-defaults></copy-config>",
            ErrorTag.INVALID_VALUE,
            {"bad-element": "with-defaults"},
        ),
    ],
)
def test_copy_config_errors(
    service: NetconfService, body: str, tag: ErrorTag, info: dict[str, str]
) -> None:
    s = Session(service)
    s.ok(edit("running", top("<mtu>1</mtu>")))
    err = s.error(body)
    assert (err.tag, err.type, err.info_items) == (tag, ErrorType.PROTOCOL, info)
    assert text(s.data(get_config("running"))) == data(top("<mtu>1</mtu>"))
    assert not service.datastore.startup_exists


def test_copy_config_with_defaults_is_accepted(service: NetconfService) -> None:
    s = Session(service)
    s.ok(
        "<copy-config><target><startup/></target><source><running/></source>"
        '<with-defaults xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults">'
        "report-all</with-defaults></copy-config>"
    )
    assert service.datastore.startup_exists


def test_copy_config_of_invalid_content_is_refused(service: NetconfService) -> None:
    s = Session(service)
    duplicate = "<user><name>a</name></user><user><name>a</name></user>"
    errors = s.errors(copy_config("running", f"<config>{top(duplicate)}</config>"))
    assert [(e.tag, e.app_tag, e.path) for e in errors] == [
        (ErrorTag.OPERATION_FAILED, "data-not-unique", "/t:top/t:user[t:name='a']")
    ]
    assert text(s.data(get_config("running"))) == data("")


def test_copy_into_a_datastore_locked_by_another_session(service: NetconfService) -> None:
    one, two = Session(service), Session(service)
    one.ok(copy_config("startup", "running"))
    for target in ("running", "candidate", "startup"):
        one.ok(f"<lock><target><{target}/></target></lock>")
        source = "startup" if target == "running" else "running"
        err = two.error(copy_config(target, source))
        assert (err.tag, err.info_items) == (ErrorTag.IN_USE, {"session-id": str(one.id)})
        one.ok(copy_config(target, source))


# -- delete-config ------------------------------------------------------------------------------


def test_delete_startup(service: NetconfService) -> None:
    s = Session(service)
    s.ok(edit("running", top("<mtu>1</mtu>")))
    s.ok(copy_config("startup", "running"))
    events: list[ChangeEvent] = []
    service.add_change_listener(events.append)
    s.ok("<delete-config><target><startup/></target></delete-config>")
    assert not service.datastore.startup_exists
    assert text(s.data(get_config("startup"))) == data("")
    assert [(e.datastore, e.operation, e.targets) for e in events] == [
        ("startup", "delete-config", (EditTarget("/", "delete"),))
    ]
    s.ok("<delete-config><target><startup/></target></delete-config>")  # already gone


@pytest.mark.parametrize(
    ("target", "tag"),
    [
        ("running", ErrorTag.INVALID_VALUE),
        ("candidate", ErrorTag.INVALID_VALUE),
        ("scratch", ErrorTag.INVALID_VALUE),
        ("config", ErrorTag.INVALID_VALUE),
    ],
)
def test_delete_config_errors(service: NetconfService, target: str, tag: ErrorTag) -> None:
    s = Session(service)
    s.ok(edit("running", top("<mtu>1</mtu>")))
    err = s.error(f"<delete-config><target><{target}/></target></delete-config>")
    assert (err.tag, err.info_items) == (tag, {"bad-element": "target"})
    assert text(s.data(get_config("running"))) == data(top("<mtu>1</mtu>"))


def test_delete_startup_locked_by_another_session(service: NetconfService) -> None:
    one, two = Session(service), Session(service)
    one.ok(copy_config("startup", "running"))
    one.ok("<lock><target><startup/></target></lock>")
    err = two.error("<delete-config><target><startup/></target></delete-config>")
    assert err.tag is ErrorTag.IN_USE
    assert service.datastore.startup_exists


# -- startup on disk ----------------------------------------------------------------------------


def test_startup_wins_at_start(tmp_path: Path) -> None:
    path = tmp_path / "running.xml"
    ds = Datastore(path, list_keys=KEYS)
    ds.edit_config("running", config(top("<mtu>1</mtu>")))
    ds.copy_config("startup", "running")
    ds.edit_config("running", config(top("<mtu>2</mtu>")))
    assert (tmp_path / "startup.xml").exists()
    again = Datastore(path, list_keys=KEYS)
    assert text(again.read()) == data(top("<mtu>1</mtu>"))
    assert again.startup_exists
    # and the running file was rewritten to match
    assert text(Datastore(path, startup_path=tmp_path / "none.xml").read()) == data(
        top("<mtu>1</mtu>")
    )


def test_without_startup_running_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "running.xml"
    ds = Datastore(path, list_keys=KEYS)
    ds.edit_config("running", config(top("<mtu>1</mtu>")))
    ds.copy_config("startup", "running")
    ds.delete_config("startup")
    assert not (tmp_path / "startup.xml").exists()
    ds.edit_config("running", config(top("<mtu>2</mtu>")))
    again = Datastore(path, list_keys=KEYS)
    assert text(again.read()) == data(top("<mtu>2</mtu>"))
    assert not again.startup_exists


def test_corrupt_startup_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "startup.xml").write_text("<data")
    with pytest.raises(ConfigError) as info:
        Datastore(tmp_path / "running.xml")
    assert "startup.xml" in str(info.value)


@pytest.mark.parametrize(
    "operation",
    ["copy-startup", "delete-startup", "edit-candidate", "discard", "copy-running"],
)
def test_failed_writes_keep_the_old_files_and_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    path = tmp_path / "running.xml"
    ds = Datastore(path, list_keys=KEYS)
    ds.edit_config("running", config(top("<mtu>1</mtu>")))
    ds.copy_config("startup", "running")
    ds.edit_config("running", config(top("<mtu>2</mtu>")))
    if operation == "discard":
        ds.edit_config("candidate", config(top("<mtu>3</mtu>")))
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    before = {name: text(ds.read(name)) for name in ("running", "candidate", "startup")}

    def broken(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    if operation in ("delete-startup", "discard"):
        monkeypatch.setattr(os, "unlink", broken)
    with pytest.raises(RpcError) as info:
        if operation == "copy-startup":
            ds.copy_config("startup", "running")
        elif operation == "delete-startup":
            ds.delete_config("startup")
        elif operation == "edit-candidate":
            ds.edit_config("candidate", config(top("<mtu>4</mtu>")))
        elif operation == "discard":
            ds.discard_changes()
        else:
            ds.copy_config("running", config(top("<mtu>9</mtu>")))
    monkeypatch.undo()
    assert info.value.first.tag is ErrorTag.OPERATION_FAILED
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
    assert {name: text(ds.read(name)) for name in before} == before


# -- validate -----------------------------------------------------------------------------------


def test_validate_datastores_and_inline_config(service: NetconfService) -> None:
    s = Session(service)
    s.ok(edit("running", top("<user><name>a</name></user>")))
    for source in ("running", "candidate", "startup"):
        s.ok(f"<validate><source><{source}/></source></validate>")
    s.ok(
        f"<validate><source><config>{top('<user><name>b</name></user>')}</config></source>"
        "</validate>"
    )
    s.ok("<validate><source><config/></source></validate>")


def test_validate_reports_every_problem(service: NetconfService) -> None:
    s = Session(service)
    bad = top(
        "<user><kind>x</kind></user>"  # no key
        "<user><name>a</name></user><user><name>a</name></user>"  # twice the same key
        "<user><name>b</name><name>c</name></user>"  # the key twice
        "<user><name><first>d</first></name></user>"  # the key is not a leaf
    ) + top("")  # a single-instance element twice
    errors = s.errors(f"<validate><source><config>{bad}</config></source></validate>")
    got = [(e.tag, e.app_tag, e.path, e.info_items, e.type) for e in errors]
    app = ErrorType.APPLICATION
    assert got == [
        (ErrorTag.OPERATION_FAILED, "too-many-elements", "/t:top", {}, app),
        (
            ErrorTag.OPERATION_FAILED,
            "data-not-unique",
            "/t:top/t:user[t:name='a']",
            {"non-unique": "/t:top/t:user[t:name='a']"},
            app,
        ),
        (ErrorTag.MISSING_ELEMENT, None, "/t:top/t:user", {"bad-element": "name"}, app),
        (
            ErrorTag.BAD_ELEMENT,
            None,
            "/t:top/t:user[t:name='b']/t:name",
            {"bad-element": "name"},
            app,
        ),
        (ErrorTag.BAD_ELEMENT, None, "/t:top/t:user/t:name", {"bad-element": "name"}, app),
    ]


@pytest.mark.parametrize(
    ("body", "tag", "bad"),
    [
        ("<validate/>", ErrorTag.MISSING_ELEMENT, "source"),
        (
            "<validate><source><url>x</url></source></validate>",
            ErrorTag.OPERATION_NOT_SUPPORTED,
            "source",
        ),
        ("<validate><source><scratch/></source></validate>", ErrorTag.INVALID_VALUE, "source"),
        ("<validate><target><running/></target></validate>", ErrorTag.UNKNOWN_ELEMENT, "target"),
    ],
)
def test_validate_parameter_errors(
    service: NetconfService, body: str, tag: ErrorTag, bad: str
) -> None:
    err = Session(service).error(body)
    assert (err.tag, err.info_items["bad-element"]) == (tag, bad)


def test_test_then_set_validates_what_the_edit_changed(service: NetconfService) -> None:
    s = Session(service)
    s.ok(edit("running", top("<user><name>a</name><kind>x</kind></user>")))
    remove_key = top('<user><name>a</name><name nc:operation="remove"/></user>')
    for option in (
        "",
        "<test-option>test-then-set</test-option>",
        "<test-option>test-only</test-option>",
    ):
        err = s.error(edit("running", remove_key, option))
        assert (err.tag, err.path) == (ErrorTag.MISSING_ELEMENT, "/t:top/t:user")
        assert text(s.data(get_config("running"))) == data(
            top("<user><name>a</name><kind>x</kind></user>")
        )
    s.ok(edit("running", remove_key, "<test-option>set</test-option>"))
    assert text(s.data(get_config("running"))) == data(top("<user><kind>x</kind></user>"))
    # Problems already there do not block unrelated edits; touching them does.
    s.ok(edit("running", '<other xmlns="urn:x">1</other>'))
    err = s.error(edit("running", top("<user><kind>y</kind></user>")))
    assert err.tag is ErrorTag.MISSING_ELEMENT


def test_validation_errors_with_continue_on_error_change_nothing(service: NetconfService) -> None:
    s = Session(service)
    s.ok(edit("running", top("<user><name>a</name></user><mtu>1</mtu>")))
    errors = s.errors(
        edit(
            "running",
            top(
                '<mtu>2</mtu><gone nc:operation="delete"/>'
                '<user><name>a</name><name nc:operation="delete"/></user>'
            ),
            "<error-option>continue-on-error</error-option>",
        )
    )
    assert [e.tag for e in errors] == [ErrorTag.DATA_MISSING, ErrorTag.MISSING_ELEMENT]
    assert text(s.data(get_config("running"))) == data(
        top("<user><name>a</name></user><mtu>1</mtu>")
    )


def test_validate_accepts_an_inline_config_in_another_prefix(service: NetconfService) -> None:
    s = Session(service)
    s.ok(
        f'<validate><source><x:config xmlns:x="{NC}"><top xmlns="{T}"/></x:config></source>'
        "</validate>"
    )


def test_a_startup_that_does_not_exist_cannot_be_copied(service: NetconfService) -> None:
    s = Session(service)
    s.ok(edit("running", top("<mtu>1</mtu>")))
    err = s.error(copy_config("running", "startup"))
    assert (err.tag, err.info_items) == (ErrorTag.INVALID_VALUE, {"bad-element": "source"})
    s.ok(copy_config("startup", "running"))
    s.ok("<delete-config><target><startup/></target></delete-config>")
    assert s.error(copy_config("candidate", "startup")).tag is ErrorTag.INVALID_VALUE
    assert text(s.data(get_config("running"))) == data(top("<mtu>1</mtu>"))
    s.ok("<validate><source><startup/></source></validate>")
