"""The confirmed commit of RFC 6241 section 8.4 (``:confirmed-commit:1.1``): its state, who may
act on it, and the timer seam.

A confirmed commit copies the candidate to running and keeps the running configuration from
before it; unless a confirming commit comes within the timeout (600 s by default), running
goes back to that configuration. Who may act on it:

* without ``persist``: only the session that issued it may confirm, extend or cancel it, and
  it is rolled back when that session ends (``in-use`` for anyone else);
* with ``persist``: any session may, giving ``persist-id`` equal to the token (missing:
  ``missing-element``; different: ``invalid-value``); the session's end changes nothing. The
  issuing session may also cancel it without ``persist-id``.

A follow-up confirmed commit restarts the timer with its own timeout, and its own ``persist``
(or none) sets the terms from then on; the configuration to go back to stays the one from
before the first. ``persist-id`` with no confirmed commit pending (or one without a token) is
``invalid-value``; cancel-commit with none pending is ``operation-failed``.

Time is injected: ``Clock`` gives the current time in seconds (``time.monotonic``), and
``Schedule(delay, callback)`` runs ``callback`` after ``delay`` seconds and returns something
with ``cancel()``. ``default_schedule`` uses the running asyncio loop's ``call_later`` (the
service is called from inside the loop), or a daemon thread's timer when no loop is running.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol, TypeAlias

from lxml import etree

from callhome.agent.datastore.events import ConfirmEvent
from callhome.agent.datastore.persist import remove_file, write_atomically
from callhome.errors import ErrorTag, ErrorType, RpcError

__all__ = [
    "DEFAULT_CONFIRM_TIMEOUT",
    "Clock",
    "ConfirmedCommitInfo",
    "ConfirmedCommits",
    "PendingCommit",
    "Schedule",
    "Timer",
    "check_cancel",
    "check_commit",
    "default_schedule",
]

log = logging.getLogger(__name__)

DEFAULT_CONFIRM_TIMEOUT: Final = 600.0
"""Seconds (RFC 6241 section 8.4.5.1)."""


class Timer(Protocol):
    """What a scheduled callback hands back: asyncio's TimerHandle and threading.Timer fit."""

    def cancel(self) -> None: ...


Clock: TypeAlias = Callable[[], float]
Schedule: TypeAlias = Callable[[float, Callable[[], None]], Timer]


def default_schedule(delay: float, callback: Callable[[], None]) -> Timer:
    """Run ``callback`` after ``delay`` seconds: on the running event loop if there is one."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        timer = threading.Timer(delay, callback)
        timer.daemon = True
        timer.start()
        return timer
    return loop.call_later(delay, callback)


@dataclass(frozen=True)
class ConfirmedCommitInfo:
    """A pending confirmed commit, as the datastore reports it."""

    session_id: int | None
    """The session whose confirmed commit it is (the last to start or extend it)."""
    persist: bool
    """Whether it has a persist token."""
    deadline: float
    """When it is rolled back, on the datastore's clock."""


@dataclass
class PendingCommit:
    """A confirmed commit waiting for its confirming commit."""

    backup: etree._Element
    """Running as it was before the first confirmed commit (never modified)."""
    backup_size: int
    session_id: int | None
    persist: str | None
    deadline: float
    timer: Timer | None = None
    generation: int = 0
    """Counts the timers armed, so that a stale timer going off does nothing."""

    def info(self) -> ConfirmedCommitInfo:
        return ConfirmedCommitInfo(self.session_id, self.persist is not None, self.deadline)


def _protocol_error(
    tag: ErrorTag, message: str, bad_element: str | None = None, session: int | None = None
) -> RpcError:
    info: dict[str, str] = {}
    if bad_element is not None:
        info["bad-element"] = bad_element
    if session is not None:
        info["session-id"] = str(session)
    return RpcError.single(tag, message, type=ErrorType.PROTOCOL, info=info)


def _check_owner(pending: PendingCommit, session_id: int | None, persist_id: str | None) -> None:
    if pending.persist is not None:
        if persist_id is None:
            raise _protocol_error(
                ErrorTag.MISSING_ELEMENT,
                "a confirmed commit with persist is pending: give its persist-id",
                "persist-id",
            )
        if persist_id != pending.persist:
            raise _protocol_error(
                ErrorTag.INVALID_VALUE,
                "persist-id does not match the pending confirmed commit",
                "persist-id",
            )
        return
    if persist_id is not None:
        raise _protocol_error(
            ErrorTag.INVALID_VALUE,
            "the pending confirmed commit has no persist token",
            "persist-id",
        )
    if session_id != pending.session_id:
        raise _protocol_error(
            ErrorTag.IN_USE,
            f"a confirmed commit of session {pending.session_id or 0} is pending",
            session=pending.session_id or 0,
        )


def check_commit(
    pending: PendingCommit | None, session_id: int | None, persist_id: str | None
) -> None:
    """Raise RpcError unless ``session_id`` may commit now (confirm, extend or start)."""
    if pending is None:
        if persist_id is not None:
            raise _protocol_error(
                ErrorTag.INVALID_VALUE,
                "no confirmed commit with this persist-id is pending",
                "persist-id",
            )
        return
    _check_owner(pending, session_id, persist_id)


def check_cancel(
    pending: PendingCommit | None, session_id: int | None, persist_id: str | None
) -> PendingCommit:
    """The pending commit ``session_id`` may cancel; RpcError otherwise."""
    if pending is None:
        raise _protocol_error(ErrorTag.OPERATION_FAILED, "no confirmed commit is pending")
    if persist_id is None and pending.persist is not None and session_id == pending.session_id:
        return pending  # the issuing session may cancel without the token
    _check_owner(pending, session_id, persist_id)
    return pending


class ConfirmedCommits:
    """The pending confirmed commit of one datastore, its timer and its rollback file.

    ``rollback_path`` (None: memory only) keeps the configuration to go back to while a
    confirmed commit is pending, so that a restart rolls back too. ``on_due`` is called, with
    ``mutex`` held, when the pending commit's time is up; it rolls back (``finish`` first).
    """

    def __init__(
        self,
        clock: Clock,
        schedule: Schedule,
        rollback_path: Path | None,
        on_due: Callable[[], None],
        mutex: AbstractContextManager[object],
    ) -> None:
        self._clock = clock
        self._schedule = schedule
        self.rollback_path = rollback_path
        self._on_due = on_due
        self._mutex = mutex
        self.pending: PendingCommit | None = None

    def info(self) -> ConfirmedCommitInfo | None:
        return None if self.pending is None else self.pending.info()

    def check_commit(self, session_id: int | None, persist_id: str | None) -> None:
        check_commit(self.pending, session_id, persist_id)

    def check_cancel(self, session_id: int | None, persist_id: str | None) -> None:
        check_cancel(self.pending, session_id, persist_id)

    def issued_by(self, session_id: int) -> bool:
        """Whether the pending commit ends with ``session_id`` (it has no persist token)."""
        pending = self.pending
        return pending is not None and pending.persist is None and pending.session_id == session_id

    def lock_blocker(self, session_id: int) -> int | None:
        """The session whose pending commit keeps ``session_id`` from locking running."""
        pending = self.pending
        if pending is None or (pending.session_id or 0) == session_id:
            return None
        return pending.session_id or 0

    def save_backup(self, running: etree._Element) -> None:
        """Before a confirmed commit starts: keep ``running`` in the rollback file (OSError)."""
        if self.pending is None and self.rollback_path is not None:
            write_atomically(self.rollback_path, running)

    def confirmed(
        self,
        backup: etree._Element,
        backup_size: int,
        session_id: int | None,
        timeout: float,
        persist: str | None,
    ) -> ConfirmEvent:
        """A confirmed commit went through: start one, or extend the pending one."""
        deadline = self._clock() + timeout
        pending = self.pending
        if pending is None:
            pending = self.pending = PendingCommit(
                backup, backup_size, session_id, persist, deadline
            )
            kind = ConfirmEvent.START
        else:
            if pending.timer is not None:
                pending.timer.cancel()
            pending.session_id, pending.persist, pending.deadline = session_id, persist, deadline
            kind = ConfirmEvent.EXTEND
        self._arm(pending, timeout)
        return kind

    def finish(self) -> PendingCommit:
        """The pending commit is over (confirmed or rolled back): stop its timer."""
        pending = self.pending
        assert pending is not None
        self.pending = None
        if pending.timer is not None:
            pending.timer.cancel()
        return pending

    def forget_file(self) -> None:
        """Remove the rollback file; a failure is logged (a restart would roll back)."""
        if self.rollback_path is not None:
            try:
                remove_file(self.rollback_path)
            except OSError as exc:
                log.error("cannot remove %s: %s", self.rollback_path, exc)

    def _arm(self, pending: PendingCommit, delay: float) -> None:
        pending.generation += 1
        generation = pending.generation
        pending.timer = self._schedule(delay, lambda: self._fire(pending, generation))

    def _fire(self, pending: PendingCommit, generation: int) -> None:
        with self._mutex:
            if self.pending is not pending or pending.generation != generation:
                return  # confirmed, cancelled or extended meanwhile
            remaining = pending.deadline - self._clock()
            if remaining > 0:  # early (e.g. a timer with coarser resolution): wait on
                self._arm(pending, remaining)
                return
            self._on_due()
