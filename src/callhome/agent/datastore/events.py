"""What the datastore tells listeners: configuration changes and confirmed-commit events.

These carry what the notifications of RFC 6470 need, so that a notification producer can be
built on them later without touching the datastore:

* ``ChangeEvent`` -> ``netconf-config-change``: who (``session_id``), which datastore, and the
  edit records (``targets``: target path and operation). Events are sent for every datastore,
  candidate included; RFC 6470 reports only running and startup, so a producer filters.
* ``ConfirmedCommitEvent`` -> ``netconf-confirmed-commit``: start, extend, complete, cancel
  and timeout, with the session (none for a timeout) and the timeout of start and extend.

Register with ``Datastore.add_change_listener`` / ``add_commit_listener`` (or the same methods
of ``NetconfService``). Listeners are called synchronously after the change is in place and
saved, while the datastore's lock is held: they may read the datastore, must not change it,
and should be quick (hand work to a queue). A listener that raises is logged and ignored.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from lxml import etree

__all__ = [
    "ChangeEvent",
    "ChangeListener",
    "CommitListener",
    "ConfirmEvent",
    "ConfirmedCommitEvent",
    "EditTarget",
]


@dataclass(frozen=True)
class EditTarget:
    """One edit record: where, and what was done there."""

    target: str
    """Path of the element, like an error-path (``/top/users/user[name='fred']``); ``/`` is the
    whole datastore."""
    operation: str
    """merge, replace, create, delete or remove (RFC 6241 section 7.2)."""
    namespaces: tuple[tuple[str, str], ...] = ()
    """(prefix, namespace) of each prefix ``target`` uses."""


@dataclass(frozen=True)
class ChangeEvent:
    """A change made to a datastore."""

    datastore: str
    """Name of the datastore that changed: running, candidate or startup."""
    session_id: int | None
    """NETCONF session that made the change; None for the device's own code and for a
    confirmed commit's timeout."""
    edit: etree._Element | None
    """The ``<config>`` element that was applied, for edit-config (the caller's; do not
    modify); None for the other operations."""
    operation: str = "edit-config"
    """What changed it: edit-config, copy-config, delete-config, commit, discard-changes
    (also an unlock or session end that discards the candidate's changes) or rollback (a
    confirmed commit cancelled or timed out)."""
    targets: tuple[EditTarget, ...] = ()
    """The edit records. A commit reports the records of the candidate's edits since the last
    commit or discard; copy-config, discard-changes and rollback report ``/`` replace, and
    delete-config ``/`` delete."""


class ConfirmEvent(enum.StrEnum):
    """The confirm-event values of RFC 6470's netconf-confirmed-commit."""

    START = "start"
    """A confirmed commit began."""
    EXTEND = "extend"
    """A follow-up confirmed commit set a new timeout."""
    COMPLETE = "complete"
    """A confirming commit made the change permanent."""
    CANCEL = "cancel"
    """Rolled back by cancel-commit or because the issuing session ended."""
    TIMEOUT = "timeout"
    """Rolled back because no confirming commit came in time."""


@dataclass(frozen=True)
class ConfirmedCommitEvent:
    """Something happened to a confirmed commit."""

    event: ConfirmEvent
    session_id: int | None
    """The session that caused it (for cancel after a session ended: that session); None for
    timeout and for the device's own code."""
    timeout: float | None = None
    """Seconds until rollback, for start and extend."""
    persist: bool = False
    """Whether the confirmed commit was given a persist token (it outlives its session)."""


ChangeListener: TypeAlias = Callable[[ChangeEvent], None]
CommitListener: TypeAlias = Callable[[ConfirmedCommitEvent], None]
