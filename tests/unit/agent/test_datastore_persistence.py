"""The running datastore on disk: reload, atomic replacement, file mode, corrupt files."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from callhome.agent.datastore.core import NETCONF_BASE_NS, Datastore
from callhome.errors import ConfigError, ErrorTag, RpcError

NC = NETCONF_BASE_NS
T = "urn:example:t"


def config(body: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}" xmlns:nc="{NC}">{body}</config>')


def text(ds: Datastore) -> bytes:
    return etree.tostring(ds.get_config(), method="c14n")


def test_changes_survive_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "running.xml"
    keys = {f"{{{T}}}top": ()}  # <top> is a container, not a list keyed by <a>
    ds = Datastore(path, list_keys=keys)
    assert not path.exists()
    ds.edit_config("running", config(f'<top xmlns="{T}"><a>1</a><b><c>2</c></b></top>'))
    ds.edit_config("running", config(f'<top xmlns="{T}"><b nc:operation="delete"/></top>'))
    assert path.exists()
    again = Datastore(path, list_keys=keys)
    assert text(again) == text(ds)
    assert again.path == path
    # And it keeps being edited correctly after the reload.
    again.edit_config("running", config(f'<top xmlns="{T}"><a>3</a></top>'))
    assert (
        text(Datastore(path))
        == f'<data xmlns="{NC}"><top xmlns="{T}"><a>3</a></top></data>'.encode()
    )


def test_file_is_private_and_no_temporary_files_remain(tmp_path: Path) -> None:
    path = tmp_path / "running.xml"
    ds = Datastore(path)
    for i in range(3):
        ds.edit_config("running", config(f'<top xmlns="{T}"><a>{i}</a></top>'))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["running.xml"]


def test_write_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    Datastore(tmp_path / "r.xml").edit_config("running", config(f'<top xmlns="{T}"/>'))
    assert len(synced) == 2  # the file, then its directory


def test_failed_replace_keeps_the_old_file_and_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "running.xml"
    ds = Datastore(path)
    ds.edit_config("running", config(f'<top xmlns="{T}"><a>old</a></top>'))
    before_file = path.read_bytes()
    before = text(ds)
    events: list[Any] = []
    ds.add_change_listener(events.append)

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(RpcError) as info:
        ds.edit_config("running", config(f'<top xmlns="{T}"><a>new</a></top>'))
    assert info.value.first.tag is ErrorTag.OPERATION_FAILED
    assert path.read_bytes() == before_file
    assert text(ds) == before
    assert events == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["running.xml"]
    monkeypatch.undo()
    assert text(Datastore(path)) == before


def test_failed_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "running.xml"
    ds = Datastore(path)

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(RpcError):
        ds.edit_config("running", config(f'<top xmlns="{T}"/>'))
    assert list(tmp_path.iterdir()) == []


def test_test_only_and_no_op_edits_do_not_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "running.xml"
    ds = Datastore(path)
    ds.edit_config("running", config(f'<top xmlns="{T}"><a>1</a></top>'))
    replaced: list[Any] = []
    monkeypatch.setattr(os, "replace", lambda src, dst: replaced.append(dst))
    ds.edit_config("running", config(f'<top xmlns="{T}"><a>2</a></top>'), test_option="test-only")
    ds.edit_config("running", config(f'<top xmlns="{T}"><a>1</a></top>'))
    assert replaced == []


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"<data xmlns='urn:ietf:params:xml:ns:netconf:base:1.0'><top>",
        b"\x00\x01garbage",
        b"<data><top/></data>",  # not in the NETCONF namespace
        b"<other xmlns='urn:x'/>",
    ],
)
def test_corrupt_file_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "running.xml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        Datastore(path)
    assert str(path) in str(info.value)


def test_unreadable_path_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "running.xml"
    path.mkdir()
    with pytest.raises(ConfigError) as info:
        Datastore(path)
    assert str(path) in str(info.value)


def test_hand_written_config_file_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "running.xml"
    path.write_text(
        f"""<?xml version="1.0"?>
        <!-- written by hand -->
        <config xmlns="{NC}">
          <top xmlns="{T}">
            <!-- the answer -->
            <a>42</a>
            <b>  spaced  </b>
          </top>
        </config>
        """
    )
    ds = Datastore(path)
    got = ds.get_config()
    assert etree.tostring(got[0]) == (f'<top xmlns="{T}"><a>42</a><b>  spaced  </b></top>'.encode())
    assert got.tag == f"{{{NC}}}data"


def test_entities_are_not_expanded(tmp_path: Path) -> None:
    path = tmp_path / "running.xml"
    path.write_text(
        f'<!DOCTYPE data [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        f'<data xmlns="{NC}"><top xmlns="{T}"><a>&e;</a></top></data>'
    )
    ds = Datastore(path)
    assert b"root:" not in etree.tostring(ds.get_config())
