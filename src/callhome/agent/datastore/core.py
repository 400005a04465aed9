"""The device's configuration datastores, whatever reached them (NETCONF or the device's own code).

Three datastores: ``running``, ``candidate`` (RFC 6241 section 8.3) and ``startup`` (section
8.7); any other name is ``invalid-value``. The data is XML (``callhome.agent.datastore.xmldata``),
schemaless unless the device has YANG modules (``schema``, ``callhome.agent.yang.modules``);
the other modules of this package hold the rest: subtree filters (``subtree``), XPath
filters (``xpath``), edit-config semantics (``edit``), validation (``validate``),
with-defaults (``defaults``) and the confirmed commit's rules (``confirm``).

Files
    Each datastore has its own file, replaced atomically on every change
    (``callhome.agent.datastore.persist``): running in ``path``; candidate and startup beside it
    (``running.xml`` -> ``candidate.xml``, ``startup.xml``; see ``persist.sibling``) unless
    given. The candidate file exists only while the candidate has uncommitted changes, the
    startup file only while startup exists (delete-config removes it). While a confirmed commit
    is pending, the running configuration to go back to is kept in ``<path>.rollback``.
    Without ``path`` everything is kept in memory only.

Which file wins when the device starts
    startup if it exists, else a rollback file left by an unconfirmed commit, else running
    (details in ``callhome.agent.datastore.persist``). Uncommitted candidate changes found in the
    candidate file count as made by session 0 until a commit or discard-changes.

Candidate
    A candidate without uncommitted changes follows running (it is running's tree). Edits,
    copy-config and a device's own changes make it modified; commit, discard-changes, and
    copy-config of running into it make it clean again. A lock on candidate is refused while it
    holds changes made by another session (lock-denied, error-info session-id of one of them,
    0 for the device's own code); a session's own changes do not stop it. When the lock on
    candidate is released, by unlock or by the session's end, uncommitted changes are
    discarded (RFC 6241 section 8.3.5.2). A commit is refused (``in-use``) while another
    session holds a lock on running or candidate.

Confirmed commit
    ``commit(confirmed=True, ...)`` keeps running's configuration from before it and rolls back
    to it when the timeout expires, when cancel-commit is issued, or (without ``persist``) when
    the issuing session ends, e.g. when the call-home connection drops. While one is pending, a
    lock on running is refused to every session but the issuing one. Rules on who may confirm,
    extend or cancel are in ``callhome.agent.datastore.confirm``.

Locks
    Lock holders are session ids; the device's own code (``session_id`` None) counts as
    session 0, which NETCONF uses for "not a NETCONF session". Methods are safe to call from
    several threads.

Stored trees are never changed in place: every change installs a new tree. Listeners
(``callhome.agent.datastore.events``) hear of every change and of every confirmed-commit event.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeAlias

from lxml import etree

from callhome.agent.datastore.confirm import (
    DEFAULT_CONFIRM_TIMEOUT,
    Clock,
    ConfirmedCommitInfo,
    ConfirmedCommits,
    Schedule,
    default_schedule,
)
from callhome.agent.datastore.defaults import Defaults, check_mode
from callhome.agent.datastore.edit import (
    DEFAULT_OPERATIONS,
    ERROR_OPTIONS,
    TEST_OPTIONS,
    Edit,
    EditFailed,
    invalid_option,
)
from callhome.agent.datastore.events import (
    ChangeEvent,
    ChangeListener,
    CommitListener,
    ConfirmedCommitEvent,
    ConfirmEvent,
    EditTarget,
)
from callhome.agent.datastore.persist import load_datastores, remove_file, sibling, write_atomically
from callhome.agent.datastore.subtree import SubtreeFilter
from callhome.agent.datastore.validate import Checker, SchemaValidator, inline_config
from callhome.agent.datastore.xmldata import NETCONF_BASE_NS, count, empty_root
from callhome.agent.datastore.xpath import XPathFilter
from callhome.errors import ErrorTag, ErrorType, RpcError

__all__ = [
    "NETCONF_BASE_NS",
    "ChangeEvent",
    "ChangeListener",
    "CommitListener",
    "ConfirmEvent",
    "ConfirmedCommitEvent",
    "ConfirmedCommitInfo",
    "Datastore",
    "EditTarget",
    "StateProvider",
]

log = logging.getLogger(__name__)

StateProvider: TypeAlias = Callable[[], Iterable[etree._Element]]
"""Returns state data: top-level elements merged into the configuration for ``get``."""

_FILTER_CACHE_SIZE: Final = 64
_WHOLE: Final = (EditTarget("/", "replace"),)


@dataclass
class _Store:
    name: str
    root: etree._Element
    path: Path | None = None
    lock_holder: int | None = None
    size: int = 0
    """Number of elements under root."""

    def __post_init__(self) -> None:
        self.set_root(self.root)

    def set_root(self, root: etree._Element, size: int | None = None) -> None:
        self.root = root
        self.size = count(root) if size is None else size


def _who(session_id: int | None) -> int:
    return 0 if session_id is None else session_id


def _protocol_error(tag: ErrorTag, message: str, **info: str) -> RpcError:
    return RpcError.single(
        tag,
        message,
        type=ErrorType.PROTOCOL,
        info={k.replace("_", "-"): v for k, v in info.items()},
    )


def _save_failed(name: str, exc: OSError) -> RpcError:
    log.error("cannot save the %s datastore: %s", name, exc)
    return RpcError.single(ErrorTag.OPERATION_FAILED, f"cannot save the {name} datastore: {exc}")


class Datastore:
    """The device's datastores, with filtering, edit-config semantics, candidate, confirmed
    commit, startup, validation, locks and persistence (see the module docstring).

    ``path`` is the file the running datastore is kept in (None keeps everything in memory);
    ``candidate_path`` and ``startup_path`` default to files beside it. ``state_providers`` are
    called for ``get``; the elements they return are merged into a copy of running.
    ``list_keys`` maps a list entry's qualified name (Clark notation, ``{ns}local``) to the
    qualified names of its key leaves (see ``edit``); an empty sequence marks a
    single-instance element. ``defaults`` maps the Clark-name path of a leaf to its default
    value (see ``defaults``). ``clock`` and ``schedule`` are the confirmed
    commit's time (see ``callhome.agent.datastore.confirm``). ``schema`` (the device's YANG modules,
    ``callhome.agent.yang.modules``) validates every new content wherever the list structure is
    checked, unless its modeled data is the same as that of the content it replaces (see
    ``callhome.agent.datastore.validate``).
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        state_providers: Sequence[StateProvider] = (),
        list_keys: Mapping[str, Sequence[str]] | None = None,
        defaults: Mapping[str, str] | None = None,
        candidate_path: Path | None = None,
        startup_path: Path | None = None,
        clock: Clock = time.monotonic,
        schedule: Schedule = default_schedule,
        schema: SchemaValidator | None = None,
    ) -> None:
        self._list_keys: dict[str, tuple[str, ...]] = {
            tag: tuple(keys) for tag, keys in (list_keys or {}).items()
        }
        self._defaults = Defaults(defaults or {}, self._list_keys)
        self._checker = Checker(self._list_keys, schema)
        self._state_providers = list(state_providers)
        self._change_listeners: list[ChangeListener] = []
        self._commit_listeners: list[CommitListener] = []
        self._filters: dict[bytes, SubtreeFilter] = {}
        self._xpaths: dict[tuple[str, tuple[tuple[str, str], ...]], XPathFilter] = {}
        self._mutex = threading.RLock()
        self._candidate_by: set[int] = set()
        """Sessions that changed the candidate since it was last clean (0: device code)."""
        self._candidate_edits: list[EditTarget] = []
        if path is not None:
            candidate_path = candidate_path or sibling(path, "candidate")
            startup_path = startup_path or sibling(path, "startup")
        rollback_path = None if path is None else path.with_name(path.name + ".rollback")
        self._confirm = ConfirmedCommits(
            clock, schedule, rollback_path, self._confirm_timed_out, self._mutex
        )
        loaded = load_datastores(path, candidate_path, startup_path, rollback_path)
        running = _Store("running", loaded.running, path)
        self._startup_exists = loaded.startup is not None
        startup = _Store(
            "startup", empty_root() if loaded.startup is None else loaded.startup, startup_path
        )
        candidate = _Store("candidate", running.root, candidate_path)
        if loaded.candidate is not None:
            candidate.set_root(loaded.candidate)
            self._candidate_by.add(0)
            self._candidate_edits.extend(_WHOLE)
        self._stores = {"running": running, "candidate": candidate, "startup": startup}

    @property
    def path(self) -> Path | None:
        """The file running is kept in, if any."""
        return self._stores["running"].path

    @property
    def list_keys(self) -> Mapping[str, tuple[str, ...]]:
        """The declared lists' key leaves (see ``callhome.agent.datastore.edit``)."""
        return self._list_keys

    @property
    def candidate_modified(self) -> bool:
        """Whether the candidate holds uncommitted changes."""
        with self._mutex:
            return bool(self._candidate_by)

    @property
    def startup_exists(self) -> bool:
        with self._mutex:
            return self._startup_exists

    @property
    def confirmed_commit(self) -> ConfirmedCommitInfo | None:
        """The pending confirmed commit, if any."""
        with self._mutex:
            return self._confirm.info()

    # -- reading -------------------------------------------------------------------------------

    def get_config(
        self,
        source: str = "running",
        filter: etree._Element | None = None,
        *,
        select: str | None = None,
        namespaces: Mapping[str | None, str] | None = None,
        with_defaults: str | None = None,
    ) -> etree._Element:
        """A ``<data>`` element with the configuration the filter selects.

        ``filter`` is the element holding a subtree filter (normally ``<filter>``): its
        children are the filter's top-level nodes. ``select`` is an XPath filter instead, with
        the prefixes in ``namespaces``. Neither selects everything. ``with_defaults`` is a
        retrieval mode (explicit, report-all, trim).
        """
        with self._mutex:
            store = self._store(source, "source")
            return self._read(
                store.root, store.size, False, filter, select, namespaces, with_defaults
            )

    def get(
        self,
        filter: etree._Element | None = None,
        *,
        select: str | None = None,
        namespaces: Mapping[str | None, str] | None = None,
        with_defaults: str | None = None,
    ) -> etree._Element:
        """Like ``get_config`` on running, with the state providers' data merged in."""
        with self._mutex:
            store = self._stores["running"]
            if not self._state_providers:
                return self._read(
                    store.root, store.size, False, filter, select, namespaces, with_defaults
                )
            combined = copy.deepcopy(store.root)
            merger = Edit(combined, self._list_keys)
            for provider in self._state_providers:
                try:
                    for element in provider():
                        merger.apply(combined, element, "merge", ())
                except Exception as exc:
                    log.exception("state provider %r failed", provider)
                    raise RpcError.single(
                        ErrorTag.OPERATION_FAILED, f"state data unavailable: {exc}"
                    ) from exc
            return self._read(combined, 0, True, filter, select, namespaces, with_defaults)

    def read(self, source: str = "running") -> etree._Element:
        """A copy of a datastore's ``<data>`` element, for the device's own code."""
        with self._mutex:
            return copy.deepcopy(self._store(source, "source").root)

    def _read(
        self,
        root: etree._Element,
        size: int,
        owned: bool,
        filter_el: etree._Element | None,
        select: str | None,
        namespaces: Mapping[str | None, str] | None,
        with_defaults: str | None,
    ) -> etree._Element:
        if filter_el is not None and select is not None:
            raise ValueError("give a subtree filter or an XPath filter, not both")
        mode = "explicit" if with_defaults is None else check_mode(with_defaults)
        if mode != "explicit" and self._defaults:
            if not owned:
                root, owned = copy.deepcopy(root), True
            self._defaults.apply(root, mode)
        if select is not None:
            return self._xpath(select, namespaces or {}).apply(root, size, owned=owned)
        if filter_el is None:
            return root if owned else copy.deepcopy(root)
        # Managers tend to repeat their filters: keep the compiled ones, by their text.
        text = etree.tostring(filter_el, with_tail=False)
        compiled = self._filters.get(text)
        if compiled is None:
            compiled = SubtreeFilter(filter_el, self._list_keys)
            if len(self._filters) >= _FILTER_CACHE_SIZE:
                del self._filters[next(iter(self._filters))]
            self._filters[text] = compiled
        return compiled.apply(root, size, owned=owned)

    def _xpath(self, select: str, namespaces: Mapping[str | None, str]) -> XPathFilter:
        key = (select, tuple(sorted((p, u) for p, u in namespaces.items() if p)))
        compiled = self._xpaths.get(key)
        if compiled is None:
            compiled = XPathFilter(select, namespaces, self._list_keys)
            if len(self._xpaths) >= _FILTER_CACHE_SIZE:
                del self._xpaths[next(iter(self._xpaths))]
            self._xpaths[key] = compiled
        return compiled

    # -- editing -------------------------------------------------------------------------------

    def edit_config(
        self,
        target: str,
        config: etree._Element,
        *,
        default_operation: str = "merge",
        error_option: str = "stop-on-error",
        test_option: str = "test-then-set",
        session_id: int | None = None,
    ) -> None:
        """Apply ``config`` (the ``<config>`` element; its children are the edit) to ``target``
        (running or candidate).

        ``session_id`` is the NETCONF session asking (None: the device's own code); a datastore
        locked by anyone else gives ``in-use``. With test-option test-then-set or test-only
        what the edit changed is validated first. Raises RpcError with every error found.
        """
        if default_operation not in DEFAULT_OPERATIONS:
            raise invalid_option("default-operation", default_operation, DEFAULT_OPERATIONS)
        if error_option not in ERROR_OPTIONS:
            raise invalid_option("error-option", error_option, ERROR_OPTIONS)
        if test_option not in TEST_OPTIONS:
            raise invalid_option("test-option", test_option, TEST_OPTIONS)
        with self._mutex:
            store = self._store(target, "target")
            if target == "startup":
                raise _protocol_error(
                    ErrorTag.INVALID_VALUE,
                    "edit-config cannot target startup; use copy-config",
                    bad_element="target",
                )
            self._check_writable(store, session_id)
            edit = Edit(
                copy.deepcopy(store.root),
                self._list_keys,
                continue_on_error=error_option == "continue-on-error",
            )
            try:
                edit.run(config, default_operation)
            except EditFailed as exc:
                raise RpcError([exc.info]) from None
            if edit.changed and test_option != "set":
                problems = self._checker.check_touched(edit.root, edit.touched, store.root)
                if problems:
                    raise RpcError([*edit.errors, *problems])
            if edit.changed and test_option != "test-only":
                self._install(
                    target, edit.root, None, session_id, "edit-config", edit.targets, config
                )
            if edit.errors:
                raise RpcError(edit.errors)

    def copy_config(
        self, target: str, source: str | etree._Element, *, session_id: int | None = None
    ) -> None:
        """Replace ``target`` (running, candidate or startup) with ``source``: a datastore's
        name or an inline ``<config>`` element. The new content is validated first. A startup
        that does not exist (never saved, or deleted) cannot be copied (``invalid-value``):
        that would wipe the target."""
        with self._mutex:
            if isinstance(source, str):
                src = self._store(source, "source")
                if source == "startup" and not self._startup_exists:
                    raise _protocol_error(
                        ErrorTag.INVALID_VALUE,
                        "there is no startup configuration to copy",
                        bad_element="source",
                    )
                root, size = src.root, src.size
            else:
                root = inline_config(source)
                size = count(root)
            store = self._store(target, "target")
            if source == target:
                raise _protocol_error(
                    ErrorTag.INVALID_VALUE,
                    "source and target are the same datastore",
                    bad_element="target",
                )
            self._check_writable(store, session_id)
            exists = target != "startup" or self._startup_exists
            problems = self._checker.check_tree(root, store.root if exists else None)
            if problems:
                raise RpcError(problems)
            self._install(target, root, size, session_id, "copy-config", _WHOLE)

    def delete_config(self, target: str, *, session_id: int | None = None) -> None:
        """Delete startup; running and candidate cannot be deleted (``invalid-value``)."""
        with self._mutex:
            store = self._store(target, "target")
            if target != "startup":
                raise _protocol_error(
                    ErrorTag.INVALID_VALUE,
                    f"the {target} datastore cannot be deleted",
                    bad_element="target",
                )
            self._check_writable(store, session_id)
            if store.path is not None:
                try:
                    remove_file(store.path)
                except OSError as exc:
                    raise _save_failed("startup", exc) from exc
            store.set_root(empty_root(), 0)
            self._startup_exists = False
            self._emit(
                ChangeEvent(
                    "startup", session_id, None, "delete-config", (EditTarget("/", "delete"),)
                )
            )

    def validate(self, source: str | etree._Element) -> None:
        """Check a datastore, or an inline ``<config>``; RpcError with every problem found."""
        with self._mutex:
            if isinstance(source, str):
                root = self._store(source, "source").root
            else:
                root = inline_config(source)
            problems = self._checker.check_tree(root)
            if problems:
                raise RpcError(problems)

    # -- candidate and commit ------------------------------------------------------------------

    def commit(
        self,
        *,
        session_id: int | None = None,
        confirmed: bool = False,
        confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT,
        persist: str | None = None,
        persist_id: str | None = None,
    ) -> None:
        """Make the candidate the running configuration.

        ``confirmed`` starts (or extends) a confirmed commit rolled back after
        ``confirm_timeout`` seconds unless confirmed; ``persist`` lets it outlive this session
        and be confirmed by any session giving ``persist_id``. A plain commit confirms a
        pending confirmed commit.
        """
        if confirmed and not confirm_timeout > 0:
            raise _protocol_error(
                ErrorTag.INVALID_VALUE,
                "confirm-timeout must be at least 1 second",
                bad_element="confirm-timeout",
            )
        with self._mutex:
            confirm = self._confirm
            confirm.check_commit(session_id, persist_id)
            running, candidate = self._stores["running"], self._stores["candidate"]
            self._check_writable(running, session_id)
            self._check_writable(candidate, session_id)
            changed = candidate.root is not running.root
            if changed:
                problems = self._checker.check_tree(candidate.root, running.root)
                if problems:
                    raise RpcError(problems)
            starting = confirmed and confirm.pending is None
            if starting:
                try:
                    confirm.save_backup(running.root)
                except OSError as exc:
                    raise _save_failed("running", exc) from exc
            backup, backup_size = running.root, running.size
            if changed:
                edits = tuple(self._candidate_edits)
                try:
                    self._set_running(candidate.root, candidate.size, session_id, "commit", edits)
                except RpcError:
                    if starting:
                        confirm.forget_file()
                    raise
            if confirmed:
                kind = confirm.confirmed(backup, backup_size, session_id, confirm_timeout, persist)
                event = ConfirmedCommitEvent(
                    kind, session_id, timeout=confirm_timeout, persist=persist is not None
                )
                self._emit_commit(event)
            elif confirm.pending is not None:
                self._complete(session_id)

    def _complete(self, session_id: int | None) -> None:
        """A confirming commit went through."""
        pending = self._confirm.finish()
        self._confirm.forget_file()
        persist = pending.persist is not None
        self._emit_commit(ConfirmedCommitEvent(ConfirmEvent.COMPLETE, session_id, persist=persist))

    def _confirm_timed_out(self) -> None:
        log.warning("confirmed commit not confirmed in time: rolling back")
        self._rollback(ConfirmEvent.TIMEOUT, None)

    def _rollback(self, kind: ConfirmEvent, session_id: int | None) -> None:
        pending = self._confirm.finish()
        saved = True
        if pending.backup is not self._stores["running"].root:
            backup, size = pending.backup, pending.backup_size
            try:
                self._set_running(backup, size, session_id, "rollback", _WHOLE)
            except RpcError:
                # Rolled back in memory all the same; the rollback file stays, so that a
                # restart rolls back too.
                saved = False
                self._set_running(backup, size, session_id, "rollback", _WHOLE, save=False)
        if saved:
            self._confirm.forget_file()
        persist = pending.persist is not None
        self._emit_commit(ConfirmedCommitEvent(kind, session_id, persist=persist))

    def cancel_commit(
        self, *, session_id: int | None = None, persist_id: str | None = None
    ) -> None:
        """Cancel the pending confirmed commit: running goes back to what it was before."""
        with self._mutex:
            self._confirm.check_cancel(session_id, persist_id)
            self._rollback(ConfirmEvent.CANCEL, session_id)

    def discard_changes(self, *, session_id: int | None = None) -> None:
        """Reset the candidate to running, dropping its uncommitted changes."""
        with self._mutex:
            self._check_writable(self._stores["candidate"], session_id)
            self._discard(session_id, strict=True)

    def _discard(self, session_id: int | None, *, strict: bool) -> None:
        if not self._candidate_by:
            return
        candidate = self._stores["candidate"]
        if candidate.path is not None:
            try:
                remove_file(candidate.path)
            except OSError as exc:
                if strict:
                    raise _save_failed("candidate", exc) from exc
                log.error("cannot remove %s: %s", candidate.path, exc)
        self._make_clean()
        self._emit(ChangeEvent("candidate", session_id, None, "discard-changes", _WHOLE))

    def _make_clean(self) -> None:
        running = self._stores["running"]
        self._stores["candidate"].set_root(running.root, running.size)
        self._candidate_by.clear()
        self._candidate_edits.clear()

    # -- installing changes --------------------------------------------------------------------

    def _install(
        self,
        name: str,
        root: etree._Element,
        size: int | None,
        session_id: int | None,
        operation: str,
        targets: tuple[EditTarget, ...],
        edit: etree._Element | None = None,
    ) -> None:
        if name == "running":
            self._set_running(root, size, session_id, operation, targets, edit)
        elif name == "candidate":
            self._set_candidate(root, size, session_id, operation, targets, edit)
        else:
            store = self._stores["startup"]
            if store.path is not None:
                try:
                    write_atomically(store.path, root)
                except OSError as exc:
                    raise _save_failed("startup", exc) from exc
            store.set_root(root, size)
            self._startup_exists = True
            self._emit(ChangeEvent("startup", session_id, edit, operation, targets))

    def _set_running(
        self,
        root: etree._Element,
        size: int | None,
        session_id: int | None,
        operation: str,
        targets: tuple[EditTarget, ...],
        edit: etree._Element | None = None,
        *,
        save: bool = True,
    ) -> None:
        running = self._stores["running"]
        if save and running.path is not None:
            try:
                write_atomically(running.path, root)
            except OSError as exc:
                raise _save_failed("running", exc) from exc
        running.set_root(root, size)
        candidate = self._stores["candidate"]
        if not self._candidate_by or candidate.root is root:
            if self._candidate_by and candidate.path is not None:
                try:
                    remove_file(candidate.path)
                except OSError as exc:  # it equals running: harmless at the next start
                    log.error("cannot remove %s: %s", candidate.path, exc)
            self._make_clean()
        self._emit(ChangeEvent("running", session_id, edit, operation, targets))

    def _set_candidate(
        self,
        root: etree._Element,
        size: int | None,
        session_id: int | None,
        operation: str,
        targets: tuple[EditTarget, ...],
        edit: etree._Element | None,
    ) -> None:
        candidate = self._stores["candidate"]
        if root is self._stores["running"].root:  # copy-config running -> candidate
            self._discard(session_id, strict=True)
            return
        if candidate.path is not None:
            try:
                write_atomically(candidate.path, root)
            except OSError as exc:
                raise _save_failed("candidate", exc) from exc
        candidate.set_root(root, size)
        self._candidate_by.add(_who(session_id))
        self._candidate_edits.extend(targets)
        self._emit(ChangeEvent("candidate", session_id, edit, operation, targets))

    # -- listeners -----------------------------------------------------------------------------

    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener`` after every change to any datastore."""
        with self._mutex:
            self._change_listeners.append(listener)

    def remove_change_listener(self, listener: ChangeListener) -> None:
        with self._mutex, contextlib.suppress(ValueError):
            self._change_listeners.remove(listener)

    def add_commit_listener(self, listener: CommitListener) -> None:
        """Call ``listener`` on every confirmed-commit event."""
        with self._mutex:
            self._commit_listeners.append(listener)

    def remove_commit_listener(self, listener: CommitListener) -> None:
        with self._mutex, contextlib.suppress(ValueError):
            self._commit_listeners.remove(listener)

    def _emit(self, event: ChangeEvent) -> None:
        for listener in list(self._change_listeners):
            try:
                listener(event)
            except Exception:
                log.exception("change listener %r failed", listener)

    def _emit_commit(self, event: ConfirmedCommitEvent) -> None:
        for listener in list(self._commit_listeners):
            try:
                listener(event)
            except Exception:
                log.exception("confirmed-commit listener %r failed", listener)

    # -- locks ---------------------------------------------------------------------------------

    def lock(self, target: str, session_id: int) -> None:
        """Lock ``target`` for ``session_id``; ``lock-denied`` if anyone (even it) holds it,
        if the candidate holds another session's changes, or if running has another session's
        confirmed commit pending."""
        with self._mutex:
            store = self._store(target, "target")
            if store.lock_holder is not None:
                raise _protocol_error(
                    ErrorTag.LOCK_DENIED,
                    f"the {target} datastore is already locked by session {store.lock_holder}",
                    session_id=str(store.lock_holder),
                )
            others = self._candidate_by - {session_id}
            if target == "candidate" and others:
                raise _protocol_error(
                    ErrorTag.LOCK_DENIED,
                    "the candidate holds changes of another session that were neither "
                    "committed nor discarded",
                    session_id=str(min(others)),
                )
            blocker = self._confirm.lock_blocker(session_id) if target == "running" else None
            if blocker is not None:
                raise _protocol_error(
                    ErrorTag.LOCK_DENIED,
                    f"a confirmed commit of session {blocker} is pending",
                    session_id=str(blocker),
                )
            store.lock_holder = session_id

    def unlock(self, target: str, session_id: int) -> None:
        """Release the lock ``session_id`` holds on ``target``; ``operation-failed`` if none.
        Unlocking the candidate discards its uncommitted changes."""
        with self._mutex:
            store = self._store(target, "target")
            holder = store.lock_holder
            if holder is None:
                raise _protocol_error(
                    ErrorTag.OPERATION_FAILED, f"the {target} datastore is not locked"
                )
            if holder != session_id:
                raise _protocol_error(
                    ErrorTag.OPERATION_FAILED,
                    f"the {target} datastore is locked by session {holder}, not by this one",
                    session_id=str(holder),
                )
            store.lock_holder = None
            if target == "candidate":
                self._discard(session_id, strict=False)

    def lock_holder(self, target: str = "running") -> int | None:
        """The session holding the lock on ``target``, if any."""
        with self._mutex:
            return self._store(target, "target").lock_holder

    def release_session(self, session_id: int) -> None:
        """A session ended: roll back its confirmed commit (unless it was given ``persist``),
        drop its locks, and discard the candidate's changes if it held the candidate's lock."""
        with self._mutex:
            if self._confirm.issued_by(session_id):
                log.warning("session %d ended before confirming its commit: rollback", session_id)
                self._rollback(ConfirmEvent.CANCEL, session_id)
            for store in self._stores.values():
                if store.lock_holder == session_id:
                    store.lock_holder = None
                    if store.name == "candidate":
                        self._discard(session_id, strict=False)

    # -- datastores ----------------------------------------------------------------------------

    def _store(self, name: str, param: str) -> _Store:
        store = self._stores.get(name)
        if store is None:
            raise RpcError.single(
                ErrorTag.INVALID_VALUE,
                f"unknown datastore {name!r}",
                type=ErrorType.PROTOCOL,
                info={"bad-element": param},
            )
        return store

    def _check_writable(self, store: _Store, session_id: int | None) -> None:
        holder = store.lock_holder
        if holder is not None and holder != _who(session_id):
            raise _protocol_error(
                ErrorTag.IN_USE,
                f"the {store.name} datastore is locked by session {holder}",
                session_id=str(holder),
            )
