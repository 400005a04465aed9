"""A fleet of simulated call-home devices in one process.

Every device is the product's own device side: a ``DeviceSshSettings`` with a host key of its
own (Ed25519, generated once in memory when the fleet starts) and ``dial_reverse_ssh``. All
devices share one ``NetconfService`` over one in-memory ``Datastore`` holding a small sample
configuration (see ``SAMPLE_CONFIG``), so that memory stays that of the connections.

The fleet has four kinds of device (``--mode``):

``product``
    reverse-ssh: ``DeviceSshSettings`` + ``dial_reverse_ssh`` (SSH server, public-key auth of
    the manager, the ``netconf`` subsystem served by ``NetconfService``).
``baseline``
    a bare ``asyncssh.connect_reverse``: the same host key type, the same key exchange and
    cipher lists (``callhome.config.SshAlgorithms`` defaults), public-key auth of the manager
    through ``authorized_client_keys``; no channel is served.
``tls``
    reverse-tls: ``DeviceTlsSettings.from_files`` + ``dial_reverse_tls``. Device ``i`` serves
    the certificate ``TLS_DIR/devices/device-IIIII.crt`` (and ``.key``) and trusts the
    manager's CA ``TLS_DIR/ca/ca.crt`` (``--tls-dir``); its identity is the certificate's
    fingerprint.
``turn``
    turn: ``DeviceTurnSettings`` + ``dial_turn``; the Ed25519 key is the device's user key,
    ``--manager-key`` the manager's turn host key.

Two ways to run it:

Controlled (``--control``), as ``bench_callhome.py`` does: the fleet reads one JSON command a
line on stdin and answers one JSON object a line on stdout. On start it prints
``{"event": "ready", "fingerprints": [...]}``; then:

- ``{"cmd": "dial", "host": H, "port": P, "first": i, "count": n}`` dials devices i..i+n-1
  and answers ``{"event": "dialed", "ok": .., "failed": .., "wall_s": .., "cpu_s": ..}``;
- ``{"cmd": "stats"}`` answers ``{"event": "stats", "cpu_s": .., "rss_kb": .., "open": ..}``;
- ``{"cmd": "close", "first": i, "count": n}`` closes devices i..i+n-1 (a device restarting)
  and answers ``{"event": "closed", "closed": ..}`` once their connections are gone;
- ``{"cmd": "redial", "host": H, "port": P, "index": i, "timeout": s}`` dials device i the
  way the agent does (``ReconnectPlan`` with ``[reconnect]``'s defaults: back-off from
  0.5 s, jitter, ``max_wait`` per attempt) until it connects or ``timeout`` passes, and
  answers ``{"event": "redialed", "ok": .., "attempts": .., "wall_s": .., "errors": [..]}``;
- ``{"cmd": "stop"}`` closes every connection and exits (so does the end of stdin).

Standalone, against a manager already running::

    python bench/fleet.py --connect 127.0.0.1:4334 --manager-key-file state/manager_key.pub \\
        --devices 200 --keys-file fleet-keys.json --fingerprints-out fleet.fps --hold 60

writes the devices' fingerprints (one a line), dials, holds the connections for ``--hold``
seconds (or until Ctrl-C) and prints a summary. Devices the manager does not know yet are
refused and recorded as pending: approve them (``callhome approve``), then run the same
command again; ``--keys-file`` keeps the host keys, hence the fingerprints, between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncssh
from lxml import etree

from callhome.agent.datastore.core import NETCONF_BASE_NS, Datastore
from callhome.agent.netconf_service import NetconfService
from callhome.config import (
    DEFAULT_SSH_PORT,
    AgentConfig,
    Endpoint,
    SshAlgorithms,
    parse_hostport,
)
from callhome.errors import AuthError
from callhome.net.keys import identity_of, write_private
from callhome.net.pki import file_fingerprint, key_type_of, load_certificates
from callhome.net.reverse_ssh import DeviceSshSettings, dial_reverse_ssh, manager_keys_from
from callhome.net.reverse_tls import DeviceTlsSettings, dial_reverse_tls
from callhome.net.ssh_algorithms import server_algorithm_options
from callhome.net.turn import DeviceTurnSettings, dial_turn
from callhome.proto.reconnect import ReconnectPlan

KEY_TYPE = "ssh-ed25519"
MODES = ("product", "baseline", "tls", "turn")


def device_name(index: int) -> str:
    """The name of device ``index``: its certificate's file name and DNS name in tls mode."""
    return f"device-{index:05d}"


def tls_files(tls_dir: Path, index: int) -> tuple[Path, Path]:
    """Device ``index``'s certificate (leaf, then CA) and key under ``tls_dir``."""
    folder = tls_dir / "devices"
    return folder / f"{device_name(index)}.crt", folder / f"{device_name(index)}.key"


SAMPLE_CONFIG = (
    f'<config xmlns="{NETCONF_BASE_NS}">'
    '<system xmlns="urn:example:system"><hostname>device</hostname>'
    "<ntp><server>192.0.2.1</server><server>192.0.2.2</server></ntp></system>"
    '<interfaces xmlns="urn:example:interfaces">'
    + "".join(
        f"<interface><name>eth{i}</name><description>port {i}</description>"
        f"<enabled>true</enabled><mtu>1500</mtu></interface>"
        for i in range(8)
    )
    + "</interfaces></config>"
)
"""What every simulated device's running datastore holds (a get-config reply of ~1 KB)."""


def vm_rss_kb() -> int:
    """Resident set size of this process, in KiB, from /proc/self/status."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def load_or_make_keys(path: Path, count: int) -> list[asyncssh.SSHKey]:
    """``count`` device host keys kept in ``path`` (JSON, 0600): read, topped up if short."""
    keys: list[asyncssh.SSHKey] = []
    if path.exists():
        keys = [asyncssh.import_private_key(text) for text in json.loads(path.read_text())]
    if len(keys) < count:
        keys += [asyncssh.generate_private_key(KEY_TYPE) for _ in range(count - len(keys))]
        data = json.dumps([key.export_private_key().decode() for key in keys]).encode()
        write_private(path, data)
    return keys[:count]


def raise_nofile_limit() -> tuple[int, int]:
    """Raise the soft open-file limit to the hard limit; returns (old soft, new soft)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Fleet:
    """N simulated devices: their keys, their SSH settings and their open connections."""

    def __init__(
        self,
        count: int,
        mode: str,
        manager_keys: list[asyncssh.SSHKey],
        host_keys: list[asyncssh.SSHKey] | None = None,
        tls_dir: Path | None = None,
        source_net: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown fleet mode {mode!r}")
        self.mode = mode
        self.sources: list[str] | None = None
        """Device i's own source address (product mode with ``source_net``), else None."""
        if source_net is not None:
            if mode != "product":
                raise ValueError("source addresses are for product mode only")
            hosts = ipaddress.ip_network(source_net).hosts()
            self.sources = [str(a) for a, _ in zip(hosts, range(count), strict=False)]
            if len(self.sources) < count:
                raise ValueError(f"{source_net} has fewer than {count} addresses")
        self.key_type = KEY_TYPE
        self.connections: dict[int, Any] = {}
        algorithms = SshAlgorithms()
        defaults = AgentConfig(endpoints=[Endpoint(address="127.0.0.1")])
        if mode != "baseline":
            datastore = Datastore(None)
            datastore.edit_config("running", etree.fromstring(SAMPLE_CONFIG))
            self.service = NetconfService(datastore)
        if mode == "tls":
            if tls_dir is None:
                raise ValueError("tls mode needs the folder of the devices' certificates")
            self.host_keys: list[asyncssh.SSHKey] = []
            files = [tls_files(tls_dir, i) for i in range(count)]
            self.fingerprints = [file_fingerprint(cert) for cert, _ in files]
            self.key_type = key_type_of(load_certificates(files[0][0])[0]) if files else "x509"
            self._tls = [
                DeviceTlsSettings.from_files(
                    cert,
                    key,
                    manager_ca=[tls_dir / "ca" / "ca.crt"],
                    handler=self.service,
                    auth_timeout=defaults.auth_timeout,
                    keepalive=defaults.keepalive,
                    max_message_size=defaults.max_message_size,
                )
                for cert, key in files
            ]
            self._dial: Callable[[str, int, int], Awaitable[Any]] = self._dial_tls
            return
        self.host_keys = (host_keys or [])[:count]
        self.host_keys += [
            asyncssh.generate_private_key(KEY_TYPE) for _ in range(count - len(self.host_keys))
        ]
        self.fingerprints = [identity_of(key).fingerprint for key in self.host_keys]
        if mode == "turn":
            self._turn = [
                DeviceTurnSettings(
                    user_key=key,
                    manager_host_keys=manager_keys,
                    handler=self.service,
                    auth_timeout=defaults.auth_timeout,
                    keepalive=defaults.keepalive,
                    algorithms=algorithms,
                    max_message_size=defaults.max_message_size,
                )
                for key in self.host_keys
            ]
            self._dial = self._dial_turn
        elif mode == "product":
            self._settings = [
                DeviceSshSettings(
                    host_key=key,
                    manager_keys=manager_keys,
                    handler=self.service,
                    auth_timeout=defaults.auth_timeout,
                    keepalive=defaults.keepalive,
                    algorithms=algorithms,
                    max_message_size=defaults.max_message_size,
                )
                for key in self.host_keys
            ]
            self._dial = self._dial_product
        else:
            authorized = asyncssh.import_authorized_keys(
                "".join(key.export_public_key().decode() for key in manager_keys)
            )
            self._options = [
                asyncssh.SSHServerConnectionOptions(
                    server_host_keys=[key],
                    authorized_client_keys=authorized,
                    gss_host=None,
                    config=None,
                    **server_algorithm_options(algorithms),
                )
                for key in self.host_keys
            ]
            self._dial = self._dial_baseline

    async def _dial_product(self, host: str, port: int, index: int) -> asyncssh.SSHServerConnection:
        if self.sources is None:
            return await dial_reverse_ssh(host, port, self._settings[index])
        # dial_reverse_ssh, from the device's own address
        return await asyncssh.connect_reverse(
            host, port, options=self._settings[index].options, local_addr=(self.sources[index], 0)
        )

    async def _dial_baseline(
        self, host: str, port: int, index: int
    ) -> asyncssh.SSHServerConnection:
        return await asyncssh.connect_reverse(host, port, options=self._options[index])

    async def _dial_tls(self, host: str, port: int, index: int) -> Any:
        return await dial_reverse_tls(host, port, self._tls[index])

    async def _dial_turn(self, host: str, port: int, index: int) -> asyncssh.SSHClientConnection:
        return await dial_turn(host, port, self._turn[index])

    def open_connections(self) -> int:
        """Connections not closed yet (a reverse-tls connection is open until it says so)."""
        return sum(
            1
            for c in self.connections.values()
            if not (c.is_closed() if hasattr(c, "is_closed") else c._protocol.closed.done())
        )

    async def dial(
        self,
        host: str,
        port: int,
        indexes: range,
        *,
        concurrency: int,
        attempts: int,
        attempt_timeout: float,
        deadline: float,
    ) -> tuple[int, list[str]]:
        """Dial the devices in ``indexes``, at most ``concurrency`` handshakes at once.

        Each device tries at most ``attempts`` times, each attempt bounded by
        ``attempt_timeout``, and nothing starts after ``deadline`` (a monotonic time).
        Returns how many connected and the errors of those that did not.
        """
        gate = asyncio.Semaphore(concurrency)
        errors: list[str] = []

        async def one(index: int) -> bool:
            last = "not tried: deadline passed"
            for _ in range(attempts):
                if time.monotonic() >= deadline:
                    break
                async with gate:
                    if time.monotonic() >= deadline:
                        break
                    try:
                        conn = await asyncio.wait_for(
                            self._dial(host, port, index), attempt_timeout
                        )
                    except (OSError, asyncssh.Error, TimeoutError, AuthError) as exc:
                        last = f"{type(exc).__name__}: {exc}"
                        continue
                self.connections[index] = conn
                return True
            errors.append(f"device {index}: {last}")
            return False

        results = await asyncio.gather(*(one(i) for i in indexes))
        return sum(results), errors

    async def redial(
        self, host: str, port: int, index: int, deadline: float
    ) -> tuple[bool, int, list[str]]:
        """Dial device ``index`` as the agent does until it connects or ``deadline`` (a
        monotonic time) passes: ``ReconnectPlan`` with the agent's ``[reconnect]`` defaults
        between failed attempts, each attempt bounded by ``max_wait``. Returns whether it
        connected, the attempts made and their errors (the last 10)."""
        reconnect = AgentConfig(endpoints=[Endpoint(address="127.0.0.1")]).reconnect
        plan = ReconnectPlan(
            endpoints=1,
            start_with=reconnect.start_with,
            max_attempts=reconnect.max_attempts,
            initial=reconnect.backoff_initial,
            cap=reconnect.backoff_max,
            jitter=reconnect.backoff_jitter,
        )
        errors: list[str] = []
        attempts = 0
        while attempts < 10_000:
            attempt = plan.next_attempt()
            left = deadline - time.monotonic()
            if attempt.delay >= left:
                break
            if attempt.delay:
                await asyncio.sleep(attempt.delay)
            attempts += 1
            try:
                conn = await asyncio.wait_for(
                    self._dial(host, port, index), min(reconnect.max_wait, left)
                )
            except (OSError, asyncssh.Error, TimeoutError, AuthError) as exc:
                errors = [*errors[-9:], f"{type(exc).__name__}: {exc}"]
                plan.failed()
                continue
            self.connections[index] = conn
            return True, attempts, errors
        return False, attempts, errors

    async def close_some(self, indexes: range, timeout: float = 10.0) -> int:
        """Close the connections of the devices in ``indexes``; how many were open."""
        conns = [self.connections.pop(i) for i in indexes if i in self.connections]
        for conn in conns:
            conn.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(c.wait_closed() for c in conns), return_exceptions=True),
                timeout,
            )
        return len(conns)

    async def close(self, timeout: float = 10.0) -> None:
        conns = list(self.connections.values())
        self.connections.clear()
        for conn in conns:
            conn.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(c.wait_closed() for c in conns), return_exceptions=True),
                timeout,
            )


# --------------------------------------------------------------------------------------
# Controlled mode: JSON lines on stdin/stdout
# --------------------------------------------------------------------------------------


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def run_controlled(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    manager_keys = manager_keys_from([args.manager_key])
    tls_dir = Path(args.tls_dir) if args.tls_dir else None
    fleet = Fleet(
        args.devices, args.mode, manager_keys, tls_dir=tls_dir, source_net=args.source_net
    )
    _emit(
        {
            "event": "ready",
            "fingerprints": fleet.fingerprints,
            "key_type": fleet.key_type,
            "setup_s": time.perf_counter() - started,
            "rss_kb": vm_rss_kb(),
        }
    )
    reader = await _stdin_lines()
    try:
        while line := await reader.readline():
            command = json.loads(line)
            cmd = command.get("cmd")
            if cmd == "dial":
                cpu0, t0 = time.process_time(), time.perf_counter()
                first, count = int(command["first"]), int(command["count"])
                ok, errors = await fleet.dial(
                    command["host"],
                    int(command["port"]),
                    range(first, first + count),
                    concurrency=int(command.get("concurrency", args.concurrency)),
                    attempts=int(command.get("attempts", 3)),
                    attempt_timeout=float(command.get("attempt_timeout", 30.0)),
                    deadline=time.monotonic() + float(command.get("timeout", 300.0)),
                )
                _emit(
                    {
                        "event": "dialed",
                        "ok": ok,
                        "failed": len(errors),
                        "errors": errors[:10],
                        "wall_s": time.perf_counter() - t0,
                        "cpu_s": time.process_time() - cpu0,
                    }
                )
            elif cmd == "stats":
                _emit(
                    {
                        "event": "stats",
                        "cpu_s": time.process_time(),
                        "rss_kb": vm_rss_kb(),
                        "open": fleet.open_connections(),
                        "tls_versions": sorted(
                            {str(c.tls_version) for c in fleet.connections.values()}
                            if fleet.mode == "tls"
                            else set()
                        ),
                    }
                )
            elif cmd == "close":
                first, count = int(command["first"]), int(command["count"])
                closed = await fleet.close_some(range(first, first + count))
                _emit({"event": "closed", "closed": closed})
            elif cmd == "redial":
                t0 = time.perf_counter()
                ok, attempts, errors = await fleet.redial(
                    command["host"],
                    int(command["port"]),
                    int(command["index"]),
                    time.monotonic() + float(command.get("timeout", 120.0)),
                )
                _emit(
                    {
                        "event": "redialed",
                        "ok": ok,
                        "attempts": attempts,
                        "errors": errors,
                        "wall_s": time.perf_counter() - t0,
                    }
                )
            elif cmd == "stop":
                break
            else:
                _emit({"event": "error", "message": f"unknown command {cmd!r}"})
    finally:
        await fleet.close()
    _emit({"event": "stopped"})


# --------------------------------------------------------------------------------------
# Standalone mode
# --------------------------------------------------------------------------------------


async def run_standalone(args: argparse.Namespace) -> None:
    host, port = parse_hostport(args.connect, DEFAULT_SSH_PORT)
    manager_keys = manager_keys_from(Path(args.manager_key_file).read_text().splitlines())
    host_keys = load_or_make_keys(Path(args.keys_file), args.devices) if args.keys_file else None
    tls_dir = Path(args.tls_dir) if args.tls_dir else None
    fleet = Fleet(
        args.devices,
        args.mode,
        manager_keys,
        host_keys,
        tls_dir=tls_dir,
        source_net=args.source_net,
    )
    if args.fingerprints_out:
        Path(args.fingerprints_out).write_text("\n".join(fleet.fingerprints) + "\n")
        print(f"{len(fleet.fingerprints)} fingerprints written to {args.fingerprints_out}")
    cpu0, t0 = time.process_time(), time.perf_counter()
    ok, errors = await fleet.dial(
        host,
        port,
        range(args.devices),
        concurrency=args.concurrency,
        attempts=3,
        attempt_timeout=30.0,
        deadline=time.monotonic() + 300.0,
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(
        f"{ok}/{args.devices} devices connected in {wall:.2f} s "
        f"({ok / wall if wall else 0:.0f}/s), fleet CPU {cpu * 1e6 / args.devices:.0f} us "
        "per device dialed"
    )
    for error in errors[:10]:
        print("  " + error)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), args.hold)
    still = fleet.open_connections()
    print(f"{still} connections still open after holding; closing")
    await fleet.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100, help="devices in the fleet")
    parser.add_argument("--mode", choices=MODES, default="product")
    parser.add_argument("--concurrency", type=int, default=64, help="handshakes in flight")
    parser.add_argument("--control", action="store_true", help="JSON lines on stdin/stdout")
    parser.add_argument("--manager-key", help="manager public key, one line (--control)")
    parser.add_argument("--connect", help="standalone: manager host:port to dial")
    parser.add_argument("--manager-key-file", help="standalone: manager public key file")
    parser.add_argument("--fingerprints-out", help="standalone: write fingerprints here")
    parser.add_argument(
        "--keys-file", help="standalone: keep the devices' host keys here (same fingerprints)"
    )
    parser.add_argument(
        "--tls-dir", help="tls mode: folder with ca/ca.crt and devices/device-NNNNN.crt/.key"
    )
    parser.add_argument(
        "--source-net",
        help="product mode: each device dials from its own address in this network "
        "(e.g. 127.1.0.0/16 on loopback), in order",
    )
    parser.add_argument("--hold", type=float, default=30.0, help="standalone: seconds to hold")
    args = parser.parse_args(argv)
    raise_nofile_limit()
    if args.control:
        if not args.manager_key:
            parser.error("--control needs --manager-key")
        asyncio.run(run_controlled(args))
    elif args.connect and args.manager_key_file:
        asyncio.run(run_standalone(args))
    else:
        parser.error("give --control, or --connect with --manager-key-file")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
