"""Hostile traffic against a call-home manager, one kind per process (``bench_flood.py``).

Kinds (``--kind``), each from its own source addresses on loopback (``--source-first``,
``--source-count``: consecutive addresses, bound with ``local_addr``):

``slowloris``
    ``--sockets`` TCP connections that connect and send nothing; each is reopened as soon
    as the manager closes it, from the same source address.
``garbage``
    ``--rate`` connections per second, each sending ``--size`` random bytes (no SSH version
    line), then waiting for the manager to close it (at most 10 s).
``fresh-keys``
    ``--rate`` connections per second, each a device with a new Ed25519 host key (the
    product's ``DeviceSshSettings``, dialed as ``dial_reverse_ssh`` does): the manager does
    the key exchange, records the key as pending and refuses it. At most ``--in-flight`` at
    once.
``hostile``
    one device with a key of its own (print its fingerprint at start, so the manager can
    pre-approve it): the product's device side (``DeviceSshSettings``, ``NetconfService``
    with a ``NotificationCenter``, so it offers ``:notification`` and the manager subscribes),
    with a raw writer on its ``netconf`` channel that, as soon as the manager's hello
    arrives, writes one kind of message after another as fast as the channel takes them,
    until the manager closes the session; then it redials at once and sends the next kind
    (see ``PAYLOADS``).

Controlled through JSON lines like ``fleet.py --control``: on start it prints
``{"event": "ready", ...}`` (the hostile device's ``fingerprint``); then ``{"cmd": "start"}``
starts the flood (answers ``started``), ``{"cmd": "stats"}`` answers the counters so far and
``{"cmd": "stop"}`` (or the end of stdin) stops, closes every socket, answers the final
counters and exits. The flood also stops by itself after ``--max-seconds`` (and every
counter-driven loop after ``MAX_CONNECTIONS`` connections), so nothing runs unbounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import ipaddress
import json
import logging
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import asyncssh

from callhome.agent.datastore.core import Datastore
from callhome.agent.netconf_service import NetconfService
from callhome.agent.notifications import EventLog, NotificationCenter
from callhome.config import AgentConfig, Endpoint, SshAlgorithms
from callhome.errors import AuthError
from callhome.net import reverse_ssh
from callhome.net.keys import identity_of
from callhome.net.reverse_ssh import DeviceSshSettings, manager_keys_from

KINDS = ("slowloris", "garbage", "fresh-keys", "hostile")
MAX_CONNECTIONS = 10_000_000
"""Connections one flood process opens at most, whatever its duration."""

NS_NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
NS_BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"


def _notification(body: bytes) -> bytes:
    return (
        (
            f'<notification xmlns="{NS_NOTIF}"><eventTime>2024-06-01T00:00:00Z</eventTime>'
            '<flood xmlns="urn:example:flood">'
        ).encode()
        + body
        + b"</flood></notification>"
    )


def _chunked(message: bytes) -> bytes:
    """One message in NETCONF 1.1 chunked framing (RFC 6242), a single chunk."""
    return b"\n#%d\n" % len(message) + message + b"\n##\n"


def build_payloads() -> dict[str, bytes]:
    """What the hostile device sends, framed, by kind (each against one budget of
    ``NetconfLimits``' defaults: 4 MiB messages, 250,000 elements, 1 MiB notifications,
    256 KiB/s of notifications in bursts of 4 MiB)."""
    return {
        # ~15 MB, ~1.9M elements: over the message cap
        "notif-15MB": _chunked(_notification(b"<x>1</x>" * 1_900_000)),
        # ~3 MB, 375k elements: under the message cap, over the notification cap
        "notif-3MB": _chunked(_notification(b"<x>1</x>" * 375_000)),
        # ~960 KB, 240k elements: under every cap, parsed once subscribed, until the
        # rate budget (4 MiB burst) ends the session
        "notif-under-caps": _chunked(_notification(b"<x/>" * 240_000)),
        # ~3.8 MB, 240k elements with an attribute each: an rpc-reply nobody asked for,
        # under the message and element caps (parsed, then refused: unknown message-id)
        "reply-under-caps": _chunked(
            f'<rpc-reply xmlns="{NS_BASE}" message-id="4242424242"><data>'.encode()
            + b'<x a="0123456"/>' * 240_000
            + b"</data></rpc-reply>"
        ),
    }


PAYLOADS = tuple(build_payloads())


def vm_rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def sources(first: str, count: int) -> list[str]:
    start = ipaddress.ip_address(first)
    return [str(start + i) for i in range(count)]


class Silent(asyncio.Protocol):
    """A connection that says nothing; ``lost`` is set when the manager closes it."""

    def __init__(self, lost: asyncio.Future[None]) -> None:
        self.lost = lost

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


class Flood:
    """One kind of flood; counters in ``self.counts``."""

    def __init__(self, args: argparse.Namespace, manager_keys: list[asyncssh.SSHKey]) -> None:
        self.args = args
        self.host, self.port = args.host, args.port
        self.sources = sources(args.source_first, args.source_count)
        self.counts: Counter[str] = Counter()
        self.held: list[float] = []  # slowloris: seconds each socket stayed open
        self.open_now = 0
        self.stopping = asyncio.Event()
        self.deadline = time.monotonic() + args.max_seconds
        self._tasks: set[asyncio.Task[Any]] = set()
        self._transports: set[asyncio.BaseTransport] = set()
        self._conns: set[Any] = set()
        self.manager_keys = manager_keys
        defaults = AgentConfig(endpoints=[Endpoint(address="127.0.0.1")])
        self.defaults = defaults
        self.algorithms = SshAlgorithms()
        self.service = NetconfService(Datastore(None))
        self.hostile_key = asyncssh.generate_private_key("ssh-ed25519")
        self.payloads = build_payloads() if args.kind == "hostile" else {}
        self.payload_kind = ""

    @property
    def running(self) -> bool:
        return (
            not self.stopping.is_set()
            and time.monotonic() < self.deadline
            and self.counts["opened"] < MAX_CONNECTIONS
        )

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start(self) -> None:
        kind = self.args.kind
        if kind == "slowloris":
            for i in range(self.args.sockets):
                self.spawn(self._slowloris(self.sources[i % len(self.sources)]))
        elif kind == "garbage":
            self.spawn(self._at_rate(self._garbage))
        elif kind == "fresh-keys":
            self.spawn(self._at_rate(self._fresh_key))
        else:
            self.spawn(self._hostile())

    async def stop(self) -> None:
        self.stopping.set()
        for transport in list(self._transports):
            transport.abort()
        for conn in list(self._conns):
            conn.abort()
        tasks = list(self._tasks)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10.0)
        for task in tasks:
            task.cancel()

    def stats(self) -> dict[str, Any]:
        held = sorted(self.held)
        return {
            "kind": self.args.kind,
            "counts": dict(self.counts),
            "open_now": self.open_now,
            "held_median_s": statistics.median(held) if held else None,
            "held_max_s": held[-1] if held else None,
            "cpu_s": time.process_time(),
            "rss_kb": vm_rss_kb(),
        }

    # -- slowloris -------------------------------------------------------------------------
    async def _slowloris(self, source: str) -> None:
        loop = asyncio.get_running_loop()
        while self.running:
            lost: asyncio.Future[None] = loop.create_future()
            try:
                transport, _ = await asyncio.wait_for(
                    loop.create_connection(
                        functools.partial(Silent, lost),
                        self.host,
                        self.port,
                        local_addr=(source, 0),
                    ),
                    10.0,
                )
            except (OSError, TimeoutError) as exc:
                self.counts[f"connect failed: {type(exc).__name__}"] += 1
                await asyncio.sleep(0.05)  # the listener is not taking them: do not spin
                continue
            self.counts["opened"] += 1
            self.open_now += 1
            self._transports.add(transport)
            t0 = time.monotonic()
            stop = asyncio.ensure_future(self.stopping.wait())
            try:
                await asyncio.wait(
                    {lost, stop},
                    timeout=max(0.0, self.deadline - t0),
                    return_when="FIRST_COMPLETED",
                )
            finally:
                stop.cancel()
            self._transports.discard(transport)
            self.open_now -= 1
            if lost.done():
                self.counts["closed by the manager"] += 1
                self.held.append(time.monotonic() - t0)
                if len(self.held) > 200_000:
                    self.held = self.held[-100_000:]
            transport.abort()

    # -- connections at a rate -------------------------------------------------------------
    async def _at_rate(self, one: Callable[[str], Any]) -> None:
        """Start ``one(source)`` ``--rate`` times a second, sources in turn, at most
        ``--in-flight`` at once (a start that finds them all busy is skipped and counted)."""
        interval = 1.0 / self.args.rate
        in_flight = 0
        n = 0
        next_at = time.monotonic()

        async def run(source: str) -> None:
            nonlocal in_flight
            try:
                await one(source)
            finally:
                in_flight -= 1

        while self.running:
            if in_flight >= self.args.in_flight:
                self.counts["skipped: too many in flight"] += 1
            else:
                in_flight += 1
                self.spawn(run(self.sources[n % len(self.sources)]))
                n += 1
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
            elif delay < -1.0:
                next_at = time.monotonic()  # fell behind: do not burst to catch up

    async def _garbage(self, source: str) -> None:
        self.counts["opened"] += 1
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, local_addr=(source, 0)), 10.0
            )
        except (OSError, TimeoutError) as exc:
            self.counts[f"connect failed: {type(exc).__name__}"] += 1
            return
        self._transports.add(writer.transport)
        try:
            writer.write(os.urandom(self.args.size))
            t0 = time.monotonic()
            with contextlib.suppress(OSError):
                await asyncio.wait_for(writer.drain(), 10.0)
                while await asyncio.wait_for(reader.read(65536), 10.0):
                    pass
            self.counts["closed by the manager"] += 1
            self.held.append(time.monotonic() - t0)
        except TimeoutError:
            self.counts["still open after 10 s"] += 1
        finally:
            self._transports.discard(writer.transport)
            writer.transport.abort()

    async def _fresh_key(self, source: str) -> None:
        self.counts["opened"] += 1
        settings = DeviceSshSettings(
            host_key=asyncssh.generate_private_key("ssh-ed25519"),
            manager_keys=self.manager_keys,
            handler=self.service,
            auth_timeout=self.defaults.auth_timeout,
            keepalive=self.defaults.keepalive,
            algorithms=self.algorithms,
            max_message_size=self.defaults.max_message_size,
        )
        t0 = time.monotonic()
        try:
            # dial_reverse_ssh, from this source address
            conn = await asyncio.wait_for(
                asyncssh.connect_reverse(
                    self.host, self.port, options=settings.options, local_addr=(source, 0)
                ),
                30.0,
            )
        except (OSError, asyncssh.Error, AuthError) as exc:
            self.counts[f"refused: {type(exc).__name__}"] += 1
            self.held.append(time.monotonic() - t0)
            return
        except TimeoutError:
            self.counts["no answer within 30 s"] += 1
            return
        self.counts["ADMITTED (unexpected)"] += 1
        conn.abort()

    # -- the hostile device ----------------------------------------------------------------
    def _hostile_settings(self) -> DeviceSshSettings:
        center = NotificationCenter(EventLog(None, max_events=100))
        settings = DeviceSshSettings(
            host_key=self.hostile_key,
            manager_keys=self.manager_keys,
            handler=NetconfService(Datastore(None), notifications=center),
            auth_timeout=self.defaults.auth_timeout,
            keepalive=self.defaults.keepalive,
            algorithms=self.algorithms,
            max_message_size=self.defaults.max_message_size,
        )
        flood = self

        class Channel(reverse_ssh._ServerChannel):
            """The product's netconf channel, plus a raw writer started by the manager's
            first bytes (its hello)."""

            pumping = False

            def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
                super().data_received(data, datatype)
                if not self.pumping and self._chan is not None and self._driver is not None:
                    self.pumping = True
                    flood.spawn(flood._pump(self._chan))

        class Server(reverse_ssh._DeviceSshServer):
            def session_requested(self) -> asyncssh.SSHServerSession[bytes]:
                device = self._device
                return Channel(device.handler, device.max_message_size, self._peer, self)

        settings.options = asyncssh.SSHServerConnectionOptions(
            options=settings.options, server_factory=lambda: Server(settings)
        )
        return settings

    async def _pump(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        kind = self.payload_kind
        data = self.payloads[kind]
        while self.running and not chan.is_closing():
            chan.write(data)
            self.counts[f"sent {kind}"] += 1
            self.counts["bytes sent"] += len(data)
            waited = 0
            while chan.get_write_buffer_size() > 1 << 20 and waited < 6000:
                if chan.is_closing() or not self.running:
                    return
                await asyncio.sleep(0.005)
                waited += 1

    async def _hostile(self) -> None:
        settings = self._hostile_settings()
        turn = 0
        source = self.sources[0]
        kinds = self.args.payloads
        while self.running:
            self.payload_kind = kinds[turn % len(kinds)]
            turn += 1
            self.counts["opened"] += 1
            try:
                conn = await asyncio.wait_for(
                    asyncssh.connect_reverse(
                        self.host, self.port, options=settings.options, local_addr=(source, 0)
                    ),
                    30.0,
                )
            except (OSError, asyncssh.Error, AuthError, TimeoutError) as exc:
                self.counts[f"dial failed: {type(exc).__name__}"] += 1
                await asyncio.sleep(0.1)
                continue
            self._conns.add(conn)
            self.counts[f"sessions ({self.payload_kind})"] += 1
            t0 = time.monotonic()
            stop = asyncio.ensure_future(self.stopping.wait())
            closed = asyncio.ensure_future(conn.wait_closed())
            try:
                await asyncio.wait(
                    {closed, stop},
                    timeout=max(0.0, min(60.0, self.deadline - t0)),
                    return_when="FIRST_COMPLETED",
                )
            finally:
                stop.cancel()
            self.held.append(time.monotonic() - t0)
            self._conns.discard(conn)
            conn.abort()
            if not closed.done():
                closed.cancel()
                self.counts["session still open after 60 s"] += 1


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def run(args: argparse.Namespace) -> None:
    flood = Flood(args, manager_keys_from([args.manager_key]))
    _emit(
        {
            "event": "ready",
            "kind": args.kind,
            "fingerprint": identity_of(flood.hostile_key).fingerprint,
            "key_type": "ssh-ed25519",
            "sources": [flood.sources[0], flood.sources[-1], len(flood.sources)],
        }
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            cmd = json.loads(line).get("cmd")
            if cmd == "start":
                flood.deadline = time.monotonic() + args.max_seconds
                flood.start()
                _emit({"event": "started"})
            elif cmd == "stats":
                _emit({"event": "stats", **flood.stats()})
            elif cmd == "stop":
                break
            else:
                _emit({"event": "error", "message": f"unknown command {cmd!r}"})
    finally:
        await flood.stop()
    _emit({"event": "stopped", **flood.stats()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="the manager's listener")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--manager-key", required=True, help="manager public key, one line")
    parser.add_argument("--source-first", default="127.0.1.1", help="first source address")
    parser.add_argument("--source-count", type=int, default=19, help="source addresses")
    parser.add_argument("--sockets", type=int, default=2000, help="slowloris: sockets held")
    parser.add_argument("--rate", type=float, default=50.0, help="connections per second")
    parser.add_argument("--in-flight", type=int, default=256, help="rate kinds: at once")
    parser.add_argument("--size", type=int, default=2048, help="garbage: bytes sent")
    parser.add_argument(
        "--payloads",
        type=lambda text: text.split(","),
        default=list(PAYLOADS),
        help=f"hostile: what to send, one kind per session in turn ({', '.join(PAYLOADS)})",
    )
    parser.add_argument(
        "--nice", type=int, default=0, help="lower this process's CPU priority by this much"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=600.0, help="the flood stops by itself after this"
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.source_count < 1:
        parser.error("--rate and --source-count must be positive")
    if not args.payloads or set(args.payloads) - set(PAYLOADS):
        parser.error(f"--payloads: some of {', '.join(PAYLOADS)}")
    random.seed()
    if args.nice:
        os.nice(args.nice)
    # writes after the manager closed a socket are expected here; asyncio would say so
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
