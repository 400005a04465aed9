"""Datastore files: reading, atomic replacement, removal, where each datastore lives, and
which file wins when the device starts.

Every file is replaced atomically: a private (0600) temporary file in the same directory is
written and fsynced, renamed over the old one, and the directory is fsynced. A crash at any
point leaves either the old file or the new one, never a mix; a failed write leaves no
temporary file behind.

Which file wins when the device starts (``load_datastores``)
    1. startup, if its file exists: running is loaded from it (and the running file is
       rewritten to match). Changes to running that were not copied to startup are lost, as
       ``:startup`` means.
    2. otherwise the rollback file, if one exists: a confirmed commit was neither confirmed nor
       rolled back before the device stopped, so running goes back (RFC 6241 section 8.4).
    3. otherwise the running file; none gives an empty running.
    The rollback file is removed. Then the candidate file, if it exists and differs from
    running, holds uncommitted changes (a candidate file equal to running is removed).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from callhome.agent.datastore.xmldata import (
    CONFIG_TAG,
    DATA_TAG,
    NETCONF_BASE_NS,
    PARSER,
    empty_root,
    normalize,
)
from callhome.errors import ConfigError

__all__ = [
    "Loaded",
    "load_datastores",
    "load_tree",
    "remove_file",
    "same",
    "sibling",
    "write_atomically",
]

log = logging.getLogger(__name__)


def sibling(running: Path, kind: str) -> Path:
    """Where datastore ``kind`` lives beside the running file ``running``: ``running`` in its
    name becomes ``kind`` (``running.xml`` -> ``candidate.xml``), or ``.kind`` goes before the
    suffix (``device.xml`` -> ``device.candidate.xml``)."""
    name = running.name
    if "running" in running.stem:
        return running.with_name(running.stem.replace("running", kind) + running.suffix)
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        return running.with_name(f"{name}.{kind}")
    return running.with_name(f"{stem}.{kind}.{suffix}")


def load_tree(path: Path) -> etree._Element:
    """The ``<data>`` element kept in ``path`` (which may hold ``<data>`` or ``<config>``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the datastore file: {exc}") from exc
    try:
        root = etree.fromstring(data, PARSER)
    except etree.XMLSyntaxError as exc:
        raise ConfigError(f"{path}: the datastore file is not well-formed XML: {exc}") from exc
    if root.tag not in (DATA_TAG, CONFIG_TAG):
        raise ConfigError(
            f"{path}: the datastore file must hold a <data> or <config> element in namespace "
            f"{NETCONF_BASE_NS}, not {root.tag!r}"
        )
    root.tag = DATA_TAG
    normalize(root)
    return root


def write_atomically(path: Path, root: etree._Element) -> None:
    """Replace ``path`` with ``root``: a 0600 temporary file, fsync, rename, fsync directory."""
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _sync_directory(directory)


def remove_file(path: Path) -> None:
    """Remove ``path`` if it exists, and make that durable (fsync the directory)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def same(a: etree._Element, b: etree._Element) -> bool:
    """Whether two trees hold the same XML (canonical form)."""
    return a is b or etree.tostring(a, method="c14n") == etree.tostring(b, method="c14n")


@dataclass(frozen=True)
class Loaded:
    """The datastores as found at start."""

    running: etree._Element
    startup: etree._Element | None
    """None: there is no startup."""
    candidate: etree._Element | None
    """None: no uncommitted changes."""


def load_datastores(
    running_path: Path | None,
    candidate_path: Path | None,
    startup_path: Path | None,
    rollback_path: Path | None,
) -> Loaded:
    """Read the files in the order of the module docstring; ConfigError if one is bad."""
    try:
        return _load_datastores(running_path, candidate_path, startup_path, rollback_path)
    except OSError as exc:
        raise ConfigError(f"cannot prepare the datastore files: {exc}") from exc


def _load_datastores(
    running_path: Path | None,
    candidate_path: Path | None,
    startup_path: Path | None,
    rollback_path: Path | None,
) -> Loaded:
    def read(path: Path | None) -> etree._Element | None:
        return load_tree(path) if path is not None and path.exists() else None

    on_disk = read(running_path)
    startup = read(startup_path)
    running = startup
    if running is None:
        running = read(rollback_path)
        if running is not None:
            log.warning("a confirmed commit was not confirmed before the restart: rolled back")
    if running is None:
        running = empty_root() if on_disk is None else on_disk
    elif running_path is not None and (on_disk is None or not same(running, on_disk)):
        write_atomically(running_path, running)
    if rollback_path is not None:
        remove_file(rollback_path)
    candidate = read(candidate_path)
    if candidate is not None and same(candidate, running):
        assert candidate_path is not None
        remove_file(candidate_path)
        candidate = None
    return Loaded(running, startup, candidate)
