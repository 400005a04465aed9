"""``callhome shell``, ``exec`` and ``connect``: a terminal, a command or a TCP stream on a
device, through the manager's WebSocket API (protocol: callhome.manager.terminal).

Exit codes: the remote command's status (128+N when killed by signal N); 255 when the
terminal could not be opened or was lost (the device is away, a right is missing, the
device refused ...), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import signal
import sys
import termios
import tty
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from callhome.cli.client import ApiTarget

EXIT_LOST = 255
CHUNK = 64 * 1024
STDOUT, STDERR = 1, 2


class TerminalError(Exception):
    """The terminal, command or stream could not be opened or was lost."""


def _ws_url(target: ApiTarget, path: str, params: dict[str, Any]) -> str:
    base = target.url
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return f"{base}{path}?{urlencode(params)}"


async def _open(target: ApiTarget, path: str, params: dict[str, Any]) -> ClientConnection:
    try:
        return await connect(
            _ws_url(target, path, params),
            additional_headers={"Authorization": f"Bearer {target.token}"},
            compression=None,
            open_timeout=30,
            max_size=4 * 1024 * 1024,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        message = ""
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(exc.response.body or b"{}").get("message", "")
        if status == 403 and "right" in message:
            message += " (ask for a token with the 'terminal' right; see api-tokens.toml)"
        raise TerminalError(message or f"the manager answered HTTP {status}") from None
    except (OSError, WebSocketException, TimeoutError) as exc:
        raise TerminalError(f"cannot reach the manager API: {exc or 'timeout'}") from None


async def _stdin_chunks(fd: int) -> AsyncIterator[bytes]:
    """What arrives on ``fd``, read only when the previous chunk has been taken."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    try:
        loop.add_reader(fd, ready.set)
    except PermissionError:  # a regular file: reading it never waits for long
        while data := await loop.run_in_executor(None, os.read, fd, CHUNK):
            yield data
        return
    try:
        while True:
            await ready.wait()
            ready.clear()
            try:
                data = os.read(fd, CHUNK)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not data:
                return
            loop.remove_reader(fd)
            yield data
            loop.add_reader(fd, ready.set)
    finally:
        loop.remove_reader(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            continue
        view = view[n:]


async def _pump_stdin(ws: ClientConnection, fd: int) -> None:
    async for data in _stdin_chunks(fd):
        await ws.send(data)
    await ws.send(json.dumps({"type": "eof"}))


async def _bridge(ws: ClientConnection, *, stdin: int | None, demux: bool) -> dict[str, Any]:
    """Copy stdin to the device and the device's output to stdout (and stderr); the exit
    message the manager sent last."""
    feeder = asyncio.create_task(_pump_stdin(ws, stdin)) if stdin is not None else None
    exit_message: dict[str, Any] = {}
    out, err = sys.stdout.fileno(), sys.stderr.fileno()
    try:
        async for message in ws:
            if isinstance(message, bytes):
                if demux and message:
                    _write_all(err if message[0] == STDERR else out, message[1:])
                else:
                    _write_all(out, message)
                continue
            with contextlib.suppress(ValueError):
                control = json.loads(message)
                if isinstance(control, dict) and control.get("type") == "exit":
                    exit_message = control
    except ConnectionClosed:
        pass
    finally:
        if feeder is not None:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, OSError):
                await feeder
    if not exit_message:
        exit_message = {"reason": "the connection to the manager was lost"}
    return exit_message


def _exit_code(message: dict[str, Any], what: str) -> int:
    status, sig = message.get("status"), message.get("signal")
    if isinstance(status, int):
        return status
    if sig:
        try:
            return 128 + signal.Signals["SIG" + str(sig)].value
        except KeyError:
            return EXIT_LOST
    reason = message.get("reason") or "no exit status"
    print(f"callhome: {what} ended: {reason}", file=sys.stderr)
    return EXIT_LOST


_pending: set[asyncio.Task[None]] = set()


def _send_soon(ws: ClientConnection, control: dict[str, Any]) -> None:
    """Send a control message from a signal handler."""
    task = asyncio.get_running_loop().create_task(ws.send(json.dumps(control)))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


def _size() -> tuple[int, int]:
    for stream in (sys.stdout, sys.stdin, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            size = os.get_terminal_size(stream.fileno())
            return size.columns, size.lines
    return 80, 24


async def _shell(target: ApiTarget, name: str) -> int:
    cols, rows = _size()
    term = os.environ.get("TERM") or "xterm"
    ws = await _open(
        target, f"/v1/devices/{name}/terminal", {"term": term, "cols": cols, "rows": rows}
    )
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd) if os.isatty(fd) else None

    def resized() -> None:
        c, r = _size()
        _send_soon(ws, {"type": "resize", "cols": c, "rows": r})

    loop.add_signal_handler(signal.SIGWINCH, resized)
    try:
        if saved is not None:
            tty.setraw(fd, termios.TCSANOW)
        message = await _bridge(ws, stdin=fd, demux=False)
    finally:
        loop.remove_signal_handler(signal.SIGWINCH)
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        await ws.close()
    return _exit_code(message, "the terminal")


async def _exec(target: ApiTarget, name: str, command: str, use_stdin: bool) -> int:
    ws = await _open(target, f"/v1/devices/{name}/exec", {"command": command})
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        _send_soon(ws, {"type": "signal", "name": "INT"})

    loop.add_signal_handler(signal.SIGINT, interrupt)
    try:
        if not use_stdin:
            await ws.send(json.dumps({"type": "eof"}))
        message = await _bridge(ws, stdin=sys.stdin.fileno() if use_stdin else None, demux=True)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        await ws.close()
    return _exit_code(message, "the command")


async def _connect(target: ApiTarget, name: str, port: int, host: str) -> int:
    ws = await _open(target, f"/v1/devices/{name}/forward", {"port": port, "host": host})
    try:
        message = await _bridge(ws, stdin=sys.stdin.fileno(), demux=False)
    finally:
        await ws.close()
    reason = message.get("reason") or ""
    if reason and "lost" in reason:
        print(f"callhome: the stream to {host}:{port} ended: {reason}", file=sys.stderr)
        return EXIT_LOST
    return 0


def _run(coro: Any) -> int:
    try:
        code: int = asyncio.run(coro)
        return code
    except TerminalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_LOST


def cmd_shell(args: argparse.Namespace) -> int:
    return _run(_shell(ApiTarget.find(args.api, args.token), args.name))


def cmd_exec(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("exec needs a command: callhome exec NAME -- CMD [ARGS]", file=sys.stderr)
        return 2
    command = argv[0] if len(argv) == 1 else shlex.join(argv)
    target = ApiTarget.find(args.api, args.token)
    return _run(_exec(target, args.name, command, not args.no_stdin))


def cmd_connect(args: argparse.Namespace) -> int:
    target = ApiTarget.find(args.api, args.token)
    return _run(_connect(target, args.name, args.port, args.host))


def add_parsers(sub: Any) -> None:
    """The shell, exec and connect subcommands."""
    s = sub.add_parser("shell", help="an interactive terminal on a device")
    s.add_argument("name")
    s.set_defaults(daemon=cmd_shell)

    s = sub.add_parser("exec", help="run a command on a device: callhome exec NAME -- CMD ARGS")
    s.add_argument("name")
    s.add_argument("-n", "--no-stdin", action="store_true", help="send no input (like ssh -n)")
    s.add_argument("argv", nargs=argparse.REMAINDER, help="the command and its arguments")
    s.set_defaults(daemon=cmd_exec)

    s = sub.add_parser(
        "connect",
        help="join stdin/stdout to a TCP port on a device (ssh -o ProxyCommand='callhome "
        "connect %%h 22')",
    )
    s.add_argument("name")
    s.add_argument("port", type=int)
    s.add_argument("--host", default="127.0.0.1", help="target as the device sees it")
    s.set_defaults(daemon=cmd_connect)
