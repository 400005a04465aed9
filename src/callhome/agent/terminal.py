"""Terminals, commands and TCP forwards the device serves to its managers, per ``[[access]]``.

Nothing is allowed unless an ``[[access]]`` entry for the manager's key fingerprint, for one of
its groups (``group = ...``, from ``[[managers]]``) or the entry ``manager = "*"`` allows it:
``shell`` (an interactive terminal under a real PTY), ``exec`` (commands, stdout and stderr
apart) and ``forward`` (an allowlist of host:port). Terminals run the login shell of ``user``
(or ``command`` instead, for a restricted terminal).

Output is read only while the SSH channel has room (``pause``/``resume``), so a manager that
reads slowly slows the process down instead of filling memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import pty
import pwd
import signal
import struct
import subprocess
import termios
from collections.abc import Sequence
from dataclasses import dataclass

import asyncssh

from callhome.agent.access.managers import ManagerDirectory
from callhome.config import Access, parse_hostport
from callhome.errors import ConfigError
from callhome.identity import Identity
from callhome.net.channels import ProcessHandle, PtyRequest

log = logging.getLogger(__name__)

READ_SIZE = 32 * 1024
INPUT_LIMIT = 256 * 1024
"""Bytes of input waiting for the process before the channel stops reading."""
KILL_GRACE = 2.0
"""Seconds between SIGHUP and SIGKILL when the channel goes away under a process."""


@dataclass(frozen=True)
class _Rule:
    shell: bool
    exec: bool
    forward: frozenset[tuple[str, int]]
    user: pwd.struct_passwd
    command: str


def _user(name: str) -> pwd.struct_passwd:
    if not name:
        return pwd.getpwuid(os.getuid())
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(f"access.user: no local user {name!r}") from None
    if entry.pw_uid != os.getuid() and os.geteuid() != 0:
        raise ConfigError(f"access.user {name!r}: the agent must run as root to switch user")
    return entry


class DeviceAccess:
    """The device's ``DeviceServices``: rules by manager key, and the processes they allow."""

    def __init__(self, entries: Sequence[Access], managers: ManagerDirectory | None = None) -> None:
        self._managers = managers or ManagerDirectory()
        self._rules: dict[str, _Rule] = {}
        self._group_rules: dict[str, _Rule] = {}
        known_groups = self._managers.groups
        for entry in entries:
            if entry.group and entry.group not in known_groups:
                raise ConfigError(
                    f"access: group {entry.group!r} is given to no manager in [[managers]]"
                )
            rules = self._group_rules if entry.group else self._rules
            whom = entry.group or entry.manager
            if whom in rules:
                raise ConfigError(f"access: two entries for {whom!r}")
            rules[whom] = _Rule(
                shell=entry.shell,
                exec=entry.exec,
                forward=frozenset(parse_hostport(t, 0) for t in entry.forward),
                user=_user(entry.user),
                command=entry.command,
            )

    def _rule(self, manager: Identity) -> _Rule | None:
        """The entry for the manager's key, else the first of its groups' (in the order of
        its groups), else the entry for '*'."""
        rule = self._rules.get(manager.fingerprint)
        if rule is not None:
            return rule
        for group in self._managers.groups_of(manager.fingerprint):
            rule = self._group_rules.get(group)
            if rule is not None:
                return rule
        return self._rules.get("*")

    def may_open(self, manager: Identity, what: str) -> bool:
        rule = self._rule(manager)
        if rule is None:
            return False
        allowed = {"shell": rule.shell, "exec": rule.exec, "pty": rule.shell or rule.exec}
        if not allowed.get(what, False):
            log.warning("manager %s asked for %s: not allowed", manager, what)
            return False
        return True

    def check_forward(self, manager: Identity, host: str, port: int) -> None:
        rule = self._rule(manager)
        if rule is None or (host, port) not in rule.forward:
            log.warning("manager %s asked for a stream to %s:%d: not allowed", manager, host, port)
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                f"forwarding to {host}:{port} is not allowed to this manager",
            )

    def start(
        self,
        manager: Identity,
        chan: asyncssh.SSHServerChannel[bytes],
        command: str | None,
        pty: PtyRequest | None,
    ) -> ProcessHandle:
        rule = self._rule(manager)
        assert rule is not None
        user = rule.user
        shell = user.pw_shell or "/bin/sh"
        env = {
            "HOME": user.pw_dir,
            "USER": user.pw_name,
            "LOGNAME": user.pw_name,
            "SHELL": shell,
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            if user.pw_uid == 0
            else "/usr/local/bin:/usr/bin:/bin",
            "CALLHOME_MANAGER": manager.fingerprint,
        }
        if "LANG" in os.environ:
            env["LANG"] = os.environ["LANG"]
        if pty is not None:
            env["TERM"] = pty.term
        if command is not None:
            argv, argv0 = [shell, "-c", command], shell
        elif rule.command:
            argv, argv0 = [shell, "-c", rule.command], shell
        else:  # a login shell: argv[0] starts with '-'
            argv, argv0 = ["-" + os.path.basename(shell)], shell
        log.info(
            "manager %s: %s %s",
            manager,
            "terminal" if pty else "command",
            command or rule.command or shell,
        )
        process = _Process(chan, argv, argv0, env, user, pty)
        process.start()
        return process


def _set_controlling_tty() -> None:  # runs in the child, after setsid
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _winsize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class _Process:
    """One process on one channel, under a PTY or with pipes."""

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel[bytes],
        argv: list[str],
        executable: str,
        env: dict[str, str],
        user: pwd.struct_passwd,
        pty_request: PtyRequest | None,
    ) -> None:
        self._chan = chan
        self._argv = argv
        self._executable = executable
        self._env = env
        self._user = user
        self._pty = pty_request
        self._loop = asyncio.get_running_loop()
        self._proc: subprocess.Popen[bytes] | None = None
        self._master = -1
        self._stdin = -1
        self._outputs: dict[int, bool] = {}  # fd -> is stderr
        self._paused = False
        self._input = bytearray()
        self._input_eof = False
        self._input_paused = False
        self._exited = False
        self._finished = False
        self._pidfd = -1
        self._kill_timer: asyncio.TimerHandle | None = None

    # -- start -----------------------------------------------------------------------------
    def start(self) -> None:
        user = self._user
        switch = user.pw_uid != os.getuid()
        cwd = user.pw_dir if os.path.isdir(user.pw_dir) else "/"
        common: dict[str, object] = {}
        if switch:
            common = {
                "user": user.pw_uid,
                "group": user.pw_gid,
                "extra_groups": os.getgrouplist(user.pw_name, user.pw_gid),
            }
        if self._pty is not None:
            master, slave = pty.openpty()
            _winsize(slave, self._pty.cols, self._pty.rows)
            try:
                self._proc = subprocess.Popen(
                    self._argv,
                    executable=self._executable,
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    env=self._env,
                    cwd=cwd,
                    start_new_session=True,
                    preexec_fn=_set_controlling_tty,
                    close_fds=True,
                    **common,  # type: ignore[call-overload]
                )
            except OSError:
                os.close(master)
                raise
            finally:
                os.close(slave)
            self._master = self._stdin = master
            os.set_blocking(master, False)
            self._outputs = {master: False}
        else:
            self._proc = subprocess.Popen(
                self._argv,
                executable=self._executable,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
                **common,  # type: ignore[call-overload]
            )
            assert self._proc.stdin and self._proc.stdout and self._proc.stderr
            self._stdin = self._proc.stdin.fileno()
            self._outputs = {self._proc.stdout.fileno(): False, self._proc.stderr.fileno(): True}
            for fd in (self._stdin, *self._outputs):
                os.set_blocking(fd, False)
        for fd in self._outputs:
            self._loop.add_reader(fd, self._readable, fd)
        self._watch_exit()

    def _watch_exit(self) -> None:
        assert self._proc is not None
        try:
            self._pidfd = os.pidfd_open(self._proc.pid)
        except (AttributeError, OSError):
            self._loop.run_in_executor(None, self._wait_thread)
            return
        self._loop.add_reader(self._pidfd, self._reap)

    def _wait_thread(self) -> None:
        assert self._proc is not None
        self._proc.wait()
        self._loop.call_soon_threadsafe(self._reap)

    def _reap(self) -> None:
        assert self._proc is not None
        if self._proc.poll() is None:
            return
        if self._pidfd >= 0:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        self._exited = True
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        if self._pty is not None:
            # what the process wrote before it exited is in the PTY now; background
            # processes may keep the PTY open, so do not wait for EOF
            self._drain_pty()
        self._maybe_finish()

    # -- output ----------------------------------------------------------------------------
    def _readable(self, fd: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: the PTY's other side is closed
            data = b""
        if not data:
            self._close_output(fd)
            return
        self._send(data, self._outputs.get(fd, False))

    def _send(self, data: bytes, stderr: bool) -> None:
        if self._chan.is_closing():
            return
        if stderr:
            self._chan.write_stderr(data)
        else:
            self._chan.write(data)

    def _drain_pty(self) -> None:
        fd = self._master
        while fd in self._outputs and not self._paused:
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close_output(fd)
                return
            self._send(data, False)

    def _close_output(self, fd: int) -> None:
        if self._outputs.pop(fd, None) is None:
            return
        self._loop.remove_reader(fd)
        if fd != self._master:
            os.close(fd)
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self._finished or not self._exited:
            return
        if self._pty is None and self._outputs:
            return  # pipes: wait for their EOF
        if self._pty is not None and self._paused and self._master in self._outputs:
            return  # output still unread in the PTY: finish on resume
        self._finished = True
        self._release()
        assert self._proc is not None
        code = self._proc.returncode
        if self._chan.is_closing():
            return
        if code >= 0:
            self._chan.exit(code)
        else:
            try:
                name = signal.Signals(-code).name.removeprefix("SIG")
            except ValueError:
                name = str(-code)
            self._chan.exit_with_signal(name)

    def pause(self) -> None:
        if not self._paused:
            self._paused = True
            for fd in self._outputs:
                self._loop.remove_reader(fd)

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            for fd in self._outputs:
                self._loop.add_reader(fd, self._readable, fd)
            if self._exited and self._pty is not None:
                self._drain_pty()
                self._maybe_finish()

    # -- input -----------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._stdin < 0 or self._input_eof:
            return
        self._input += data
        self._flush_input()

    def _flush_input(self) -> None:
        fd = self._stdin
        if fd < 0:
            return
        while self._input:
            try:
                n = os.write(fd, self._input[:READ_SIZE])
            except BlockingIOError:
                break
            except OSError:
                self._input.clear()
                break
            del self._input[:n]
        if self._input:
            self._loop.add_writer(fd, self._flush_input)
            if len(self._input) > INPUT_LIMIT and not self._input_paused:
                self._input_paused = True
                self._chan.pause_reading()
            return
        self._loop.remove_writer(fd)
        if self._input_paused:
            self._input_paused = False
            self._chan.resume_reading()
        if self._input_eof and self._pty is None:
            self._close_stdin()

    def _close_stdin(self) -> None:
        if self._stdin >= 0 and self._pty is None:
            self._loop.remove_writer(self._stdin)
            os.close(self._stdin)
            self._stdin = -1

    def eof_received(self) -> None:
        if self._pty is not None:
            self.data_received(b"\x04")  # end of input, as a terminal user would type it
            return
        self._input_eof = True
        if not self._input:
            self._close_stdin()

    # -- control ---------------------------------------------------------------------------
    def resize(self, cols: int, rows: int) -> None:
        if self._master >= 0 and cols > 0 and rows > 0:
            with contextlib.suppress(OSError):
                _winsize(self._master, cols, rows)

    def signal(self, name: str) -> None:
        try:
            sig = signal.Signals["SIG" + name.upper().removeprefix("SIG")]
        except KeyError:
            log.info("unknown signal %r asked for", name)
            return
        self._kill(sig, foreground=True)

    def _kill(self, sig: int, *, foreground: bool = False) -> None:
        if self._proc is None or self._exited:
            return
        group = self._proc.pid
        if foreground and self._master >= 0:
            with contextlib.suppress(OSError):
                group = os.tcgetpgrp(self._master)
        with contextlib.suppress(OSError):
            os.killpg(group, sig)

    def close(self) -> None:
        """The channel is gone (the manager closed it, or the connection broke)."""
        if not self._exited:
            self._kill(signal.SIGHUP)
            self._kill_timer = self._loop.call_later(KILL_GRACE, self._kill, signal.SIGKILL)
        self._paused = False
        self._release()

    def _release(self) -> None:
        for fd in list(self._outputs):
            self._loop.remove_reader(fd)
            if fd != self._master:
                os.close(fd)
        self._outputs.clear()
        if self._stdin >= 0:
            self._loop.remove_writer(self._stdin)
            if self._stdin != self._master:
                os.close(self._stdin)
            self._stdin = -1
        if self._master >= 0:
            os.close(self._master)
            self._master = -1
