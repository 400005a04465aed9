"""Terminals, commands and TCP forwards through the manager, bridged to an operator.

The operator's end (``OperatorLink``: a WebSocket in the API) and the device's channel are
joined both ways. Each direction waits for the other end to take what it was given before it
reads more, so memory stays bounded whatever either end does. Every terminal, command and
forward is audited twice: when it opens, and when it ends (how long, bytes each way, exit
status). One refused (no right, the device away, the device refusing) is audited too, as
``refused terminal`` (``refused exec``, ``refused forward``) with the reason. Terminals may
be recorded in asciicast v2 (``terminal.record``).

Messages to the operator: binary frames carry output (for ``exec``, the first byte says the
stream: 1 stdout, 2 stderr); text frames are JSON: ``{"type": "eof"}``, then
``{"type": "exit", "status": N | null, "signal": NAME | null, "reason": TEXT}``.
Messages from the operator: binary frames are input; text frames are JSON:
``{"type": "resize", "cols": C, "rows": R}``, ``{"type": "signal", "name": "INT"}``,
``{"type": "eof"}``.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from callhome.clock import Clock
from callhome.errors import CallHomeError, ConfigError
from callhome.manager.service import Manager
from callhome.net.channels import DeviceChannel, End, Eof, Output
from callhome.net.session import DeviceSession

log = logging.getLogger(__name__)

STDOUT, STDERR = b"\x01", b"\x02"


class OperatorLink(Protocol):
    """The operator's end of a bridge."""

    async def send_bytes(self, data: bytes) -> None: ...

    async def send_json(self, message: dict[str, Any]) -> None: ...

    async def receive(self) -> bytes | dict[str, Any] | None:
        """The next message: bytes (input), a control message, or None when gone."""
        ...


class _Recording:
    """An asciicast v2 file: a header line, then [time, code, data] lines."""

    def __init__(self, path: Path, cols: int, rows: int, term: str, clock: Clock) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._file: IO[str] = path.open("w", encoding="utf-8")
        self._clock = clock
        self._start = clock.monotonic()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        header = {
            "version": 2,
            "width": cols,
            "height": rows,
            "timestamp": int(clock.time()),
            "env": {"TERM": term},
        }
        self._file.write(json.dumps(header) + "\n")

    def _event(self, code: str, data: str) -> None:
        when = round(self._clock.monotonic() - self._start, 6)
        self._file.write(json.dumps([when, code, data]) + "\n")

    def output(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if text:
            self._event("o", text)

    def resize(self, cols: int, rows: int) -> None:
        self._event("r", f"{cols}x{rows}")

    def close(self) -> None:
        self._file.close()


@dataclass
class Bridge:
    """One open terminal, command or forward, and what is known of it so far."""

    kind: str
    device: str
    actor: str
    channel: DeviceChannel
    detail: dict[str, Any]
    started: float = field(default_factory=time.time)
    recording: _Recording | None = None
    session: DeviceSession | None = None
    """The connection it is open on; counted in its ``operator_channels`` until released."""

    def held(self) -> Bridge:
        """Count this bridge as open on its session (a periodic session is kept meanwhile)."""
        if self.session is not None:
            self.session.operator_channels += 1
        return self

    def release(self) -> None:
        """Stop counting it (once; closing the channel is the caller's business)."""
        if self.session is not None:
            self.session.operator_channels -= 1
            self.session = None


class TerminalService:
    """Opens channels on connected devices for operators, and audits them."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self._clock = manager.clock
        self._serial = 0

    @property
    def _limit(self) -> int:
        return self.manager.config.terminal.buffer

    async def open_terminal(self, name: str, actor: str, term: str, cols: int, rows: int) -> Bridge:
        detail: dict[str, Any] = {"term": term, "size": f"{cols}x{rows}"}
        async with self._refusals("terminal", name, actor, detail):
            session = await self.manager.session_for(name)
            channel = await session.open_terminal(term, (cols, rows), limit=self._limit)
        bridge = self._bridge("terminal", session, actor, channel, detail)
        bridge.recording = self._record(bridge, cols, rows, term)
        await self._audit_open(bridge)
        return bridge

    async def open_exec(self, name: str, actor: str, command: str) -> Bridge:
        detail: dict[str, Any] = {"command": command}
        async with self._refusals("exec", name, actor, detail):
            if not command.strip():
                raise ConfigError("exec needs a command")
            session = await self.manager.session_for(name)
            channel = await session.open_exec(command, limit=self._limit)
        bridge = self._bridge("exec", session, actor, channel, detail)
        await self._audit_open(bridge)
        return bridge

    async def open_forward(self, name: str, actor: str, host: str, port: int) -> Bridge:
        detail: dict[str, Any] = {"target": f"{host}:{port}"}
        async with self._refusals("forward", name, actor, detail):
            if not 0 < port < 65536:
                raise ConfigError(f"port out of range: {port}")
            session = await self.manager.session_for(name)
            channel = await session.open_forward(port, host, limit=self._limit)
        bridge = self._bridge("forward", session, actor, channel, detail)
        await self._audit_open(bridge)
        return bridge

    def _bridge(
        self,
        kind: str,
        session: DeviceSession,
        actor: str,
        channel: DeviceChannel,
        detail: dict[str, Any],
    ) -> Bridge:
        started = self._clock.time()
        return Bridge(kind, session.name, actor, channel, detail, started, session=session).held()

    @contextlib.asynccontextmanager
    async def _refusals(
        self, kind: str, name: str, actor: str, detail: dict[str, Any]
    ) -> AsyncIterator[None]:
        """Audit a refusal of what the block opens, and let it go on to the operator."""
        try:
            yield
        except (CallHomeError, TimeoutError) as exc:
            await self.audit_refused(kind, name, actor, exc, detail)
            raise

    async def audit_refused(
        self, kind: str, name: str, actor: str, exc: Exception, detail: dict[str, Any]
    ) -> None:
        """Audit ``refused KIND`` of ``name`` for ``actor``: why (``reason``, ``error``)."""
        device = self.manager.display_name(name)
        entry = {**detail, "reason": str(exc) or type(exc).__name__, "error": type(exc).__name__}
        try:
            await self.manager.store.record_audit(
                actor, f"refused {kind}", device, self._clock.time(), entry
            )
        except Exception:  # the refusal goes on to the operator whatever happens here
            log.exception("cannot audit a refused %s of %s", kind, device)

    def _record(self, bridge: Bridge, cols: int, rows: int, term: str) -> _Recording | None:
        template = self.manager.config.terminal.record
        if not template:
            return None
        self._serial += 1
        fields = {
            "device": bridge.device,
            "actor": bridge.actor.replace("/", "_"),
            "time": time.strftime("%Y%m%dT%H%M%S", time.gmtime(bridge.started)),
            "id": f"{int(bridge.started)}-{self._serial}",
        }
        try:
            path = self.manager.config.path(Path(template.format(**fields)))
            recording = _Recording(path, cols, rows, term, self._clock)
        except (OSError, KeyError, ValueError) as exc:
            log.warning("cannot record the terminal of %s: %s", bridge.device, exc)
            return None
        bridge.detail["recording"] = str(path)
        return recording

    async def _audit_open(self, bridge: Bridge) -> None:
        """Audit the opening; one that cannot be audited is closed again (and refused)."""
        try:
            await self.manager.store.record_audit(
                bridge.actor, f"open {bridge.kind}", bridge.device, bridge.started, bridge.detail
            )
        except BaseException:
            bridge.channel.close()
            bridge.release()
            if bridge.recording is not None:
                bridge.recording.close()
            raise

    async def run(self, bridge: Bridge, link: OperatorLink) -> End:
        """Join the operator and the device until either ends; audit how it went."""
        to_operator = asyncio.create_task(self._device_to_operator(bridge, link))
        to_device = asyncio.create_task(self._operator_to_device(bridge, link))
        end = End(reason="the operator went away")
        try:
            done, _ = await asyncio.wait(
                {to_operator, to_device}, return_when=asyncio.FIRST_COMPLETED
            )
            if to_operator in done and not to_operator.cancelled():
                result = to_operator.exception() or to_operator.result()
                if isinstance(result, End):
                    end = result
                else:
                    end = End(reason=f"sending to the operator failed: {result}")
        finally:
            bridge.channel.close()
            bridge.release()
            for task in (to_operator, to_device):
                task.cancel()
            await asyncio.gather(to_operator, to_device, return_exceptions=True)
            if bridge.recording is not None:
                bridge.recording.close()
            await self._audit_end(bridge, end)
        return end

    async def _device_to_operator(self, bridge: Bridge, link: OperatorLink) -> End:
        channel = bridge.channel
        while True:
            event = await channel.read()
            if isinstance(event, Output):
                if bridge.recording is not None:
                    bridge.recording.output(event.data)
                if bridge.kind == "exec":
                    await link.send_bytes((STDERR if event.stderr else STDOUT) + event.data)
                else:
                    await link.send_bytes(event.data)
            elif isinstance(event, Eof):
                await link.send_json({"type": "eof"})
            else:
                with contextlib.suppress(Exception):  # the operator may be gone already
                    await link.send_json(
                        {
                            "type": "exit",
                            "status": event.status,
                            "signal": event.signal,
                            "reason": event.reason,
                        }
                    )
                return event

    async def _operator_to_device(self, bridge: Bridge, link: OperatorLink) -> None:
        channel = bridge.channel
        while True:
            message = await link.receive()
            if message is None:
                return
            if isinstance(message, bytes):
                channel.write(message)
                await channel.drain()
                continue
            kind = message.get("type")
            if kind == "resize":
                try:
                    cols, rows = int(message.get("cols", 0)), int(message.get("rows", 0))
                except (TypeError, ValueError):  # not a size: ignored, as one out of range
                    continue
                if 0 < cols < 10000 and 0 < rows < 10000:
                    channel.resize(cols, rows)
                    if bridge.recording is not None:
                        bridge.recording.resize(cols, rows)
            elif kind == "signal":
                channel.send_signal(str(message.get("name", "")))
            elif kind == "eof":
                channel.write_eof()

    async def _audit_end(self, bridge: Bridge, end: End) -> None:
        now = self._clock.time()
        detail = {
            **bridge.detail,
            "started": bridge.started,
            "duration": round(now - bridge.started, 3),
            "bytes_from_device": bridge.channel.bytes_in,
            "bytes_to_device": bridge.channel.bytes_out,
            "exit_status": end.status,
            "exit_signal": end.signal,
            "reason": end.reason,
        }
        try:
            await self.manager.store.record_audit(
                bridge.actor, f"close {bridge.kind}", bridge.device, now, detail
            )
        except Exception:  # the manager may be stopping; never lose the exit path over it
            log.exception("cannot audit the end of a %s on %s", bridge.kind, bridge.device)
