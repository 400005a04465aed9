"""Benchmark: SNMP GET round trip and a 10,000-row GETBULK walk, Net-SNMP against call home.

Run ``python bench/bench_snmp.py`` (or ``--quick``). Prints figures, asserts nothing.

- **baseline, Net-SNMP over TLS, no call home**: Debian's snmpd (5.9.3, tlstcp, TLS 1.0)
  with a 10,000-line ``extend`` table, reached by Net-SNMP's own ``snmpget`` and
  ``snmpbulkwalk`` (whole command, process start to exit) and, in this process, by the
  project's SNMPv3/TSM codec over one open TLS session: synchronously
  (``TsmProbe``: ssl socket + ``SnmpStream``) and with the manager's asyncio ``SnmpClient``.
- **product, SNMP over SSH call home** (RFC 5592): the real ``Manager`` in this process,
  our agent in another (``--role device``: the product's ``Agent`` with a 10,000-row table
  added to its MIB the way a device's own code does), calling home over reverse-ssh; the
  manager's ``DeviceSession.snmp()`` client does the GETs and the walk.
- **product, SNMP over TLS call home** (RFC 6353), the real ``Manager`` in this process
  listening for SNMP over TLS: snmpd made to call home with socat (``TCP:MANAGER
  TCP:SNMPD``), in turns with the same client straight to the same snmpd; and our agent
  (``--role device``, the same table) calling home over reverse-tls with ``service = "snmp"``.
  See :func:`measure_through_tls_call_home`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "tests" / "interop"))

BENCH_ENTRY = (1, 3, 6, 1, 4, 1, 32473, 1, 1, 1)
"""The device's bench table entry, under the documentation enterprise number (RFC 5612)."""
BENCH_COLUMN = (*BENCH_ENTRY, 2)
SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured case: wall seconds per operation (each one timed), and this process's
    CPU seconds per operation where it makes sense."""

    label: str
    side: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peer_cpu: list[float] = field(default_factory=list)
    """CPU seconds of the answering process (snmpd, or our agent) per operation."""
    note: str = ""

    def median(self) -> float:
        return statistics.median(self.wall) if self.wall else float("nan")

    def p99(self) -> float:
        if not self.wall:
            return float("nan")
        ordered = sorted(self.wall)
        return ordered[max(0, int(len(ordered) * 0.99 + 0.999999) - 1)]


def fmt_time(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:,.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:,.2f} ms"
    return f"{seconds:,.2f} s"


def proc_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of process ``pid`` so far; 0 without one."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed_async(
    fig: Figure, count: int, op: Callable[[], Awaitable[object]], peer: int | None = None
) -> None:
    """``count`` calls of ``op``, each timed; the peer's CPU over all of them, per call."""
    p0 = proc_cpu(peer)
    for _ in range(count):
        c0, t0 = time.process_time(), time.perf_counter()
        await op()
        fig.wall.append(time.perf_counter() - t0)
        fig.cpu.append(time.process_time() - c0)
    if peer is not None and count:
        fig.peer_cpu.append((proc_cpu(peer) - p0) / count)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(
    fig: Figure,
    count: int,
    op: Callable[[], object],
    peer: int | None = None,
    *,
    command: bool = False,
) -> None:
    """As :func:`timed_async`; with ``command`` the client CPU is that of the reaped child
    processes (the Net-SNMP command), not this process's."""
    clock = children_cpu if command else time.process_time
    p0 = proc_cpu(peer)
    for _ in range(count):
        c0, t0 = clock(), time.perf_counter()
        op()
        fig.wall.append(time.perf_counter() - t0)
        fig.cpu.append(clock() - c0)
    if peer is not None and count:
        fig.peer_cpu.append((proc_cpu(peer) - p0) / count)


# --------------------------------------------------------------------------------------
# Baseline: Net-SNMP's snmpd over TLS, no call home
# --------------------------------------------------------------------------------------


def measure_netsnmp(tmp: Path, args: argparse.Namespace) -> list[Figure]:
    from netsnmp import (
        BIG_TABLE_COLUMN,
        NetSnmpClient,
        NetSnmpPki,
        Snmpd,
        TlsSnmpConnection,
        TsmProbe,
        bulkwalk_async,
    )

    from callhome.net.snmp import SnmpClient
    from callhome.proto.snmp import Oid

    ca = NetSnmpPki(tmp / "pki")
    snmpd = Snmpd(tmp / "snmpd", ca, rows=args.rows).start()
    client = NetSnmpClient(tmp / "client", ca.manager, [ca.ca.cert_file])
    assert snmpd.proc is not None
    pid = snmpd.proc.proc.pid
    rows, reps = args.rows, args.max_repetitions
    figures: list[Figure] = []
    try:
        # Net-SNMP's own commands, whole process each (start, TLS handshake, discovery ...)
        cmd_get = Figure("snmpget, whole command", "Net-SNMP -> snmpd")
        client.get(snmpd.port, SYS_DESCR)  # warm the page cache and snmpd
        timed(cmd_get, args.commands, lambda: client.get(snmpd.port, SYS_DESCR), pid, command=True)
        cmd_walk = Figure(f"snmpbulkwalk -Cr{reps}, whole command", "Net-SNMP -> snmpd")
        client.bulkwalk(snmpd.port, BIG_TABLE_COLUMN, reps)  # snmpd runs the extend command
        for _ in range(args.walks):
            timed(
                cmd_walk,
                1,
                lambda: check_count(
                    cmd_walk, len(client.bulkwalk(snmpd.port, BIG_TABLE_COLUMN, reps)), rows
                ),
                pid,
                command=True,
            )

        # the project's codec, one open TLS session, synchronous
        get_sync = Figure("GET, one TLS session (TsmProbe, sync)", "codec -> snmpd")
        walk_sync = Figure(f"GETBULK walk x{reps} (TsmProbe, sync)", "codec -> snmpd")
        with TsmProbe(snmpd.port, ca.manager, ca.ca.cert_file) as probe:
            probe.discover()
            timed(Figure("warm-up", ""), args.warmup, lambda: probe.get([SYS_DESCR]))
            timed(get_sync, args.gets, lambda: probe.get([SYS_DESCR]), pid)
            for _ in range(args.walks):
                timed(
                    walk_sync,
                    1,
                    lambda: check_count(
                        walk_sync, len(probe.bulkwalk(BIG_TABLE_COLUMN, reps)), rows
                    ),
                    pid,
                )

        # the manager's asyncio SnmpClient over one TLS session
        get_async = Figure(
            "GET, one TLS session (SnmpClient, asyncio)", "manager's client -> snmpd"
        )
        walk_async = Figure(f"GETBULK walk x{reps} (SnmpClient)", "manager's client -> snmpd")

        async def walk(client: SnmpClient, root: Oid) -> None:
            check_count(walk_async, await bulkwalk_async(client, root, reps), rows)

        async def with_client() -> None:
            conn = await TlsSnmpConnection.open(snmpd.port, ca.manager, ca.ca.cert_file)
            try:
                await conn.client.discover()
                await timed_async(Figure("", ""), args.warmup, lambda: conn.client.get([SYS_DESCR]))
                await timed_async(get_async, args.gets, lambda: conn.client.get([SYS_DESCR]), pid)
                for _ in range(args.walks):
                    await timed_async(
                        walk_async, 1, lambda: walk(conn.client, BIG_TABLE_COLUMN), pid
                    )
            finally:
                await conn.close()

        asyncio.run(with_client())
        figures += [cmd_get, get_sync, get_async, cmd_walk, walk_sync, walk_async]
    finally:
        snmpd.stop()
    return figures


def check_count(fig: Figure, got: int, want: int) -> None:
    if got != want:
        fig.note = f"WRONG COUNT: {got} rows, not {want}"


# --------------------------------------------------------------------------------------
# Product: SNMP over SSH call home (RFC 5592), our manager and our agent
# --------------------------------------------------------------------------------------

AGENT_SNMP = """
[snmp]
enabled = true
sys_descr = "bench device"
interfaces = false

[[snmp.users]]
name = "callhome"
read = ["1.3.6.1"]
"""


def device_main(config: Path, rows: int) -> int:
    """``--role device``: the product's Agent, plus a ``rows``-row table in its MIB."""
    from callhome.agent.service import Agent
    from callhome.config import AgentConfig, load
    from callhome.proto.snmp import ValueType

    async def run() -> None:
        agent = Agent(load(AgentConfig, config))
        assert agent.snmp is not None, "[snmp] is not enabled"
        table = {(i,): {2: f"row-{i:05d}"} for i in range(1, rows + 1)}
        # a device's own code adds objects like this (callhome.agent.snmp.mib)
        agent.snmp.mib.table(
            BENCH_ENTRY, {2: ValueType.OCTET_STRING}, lambda: table, cache_for=3600
        )
        task = asyncio.create_task(agent.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        print("device ready", flush=True)
        reporter = asyncio.create_task(report_tls_version(agent))
        with contextlib.suppress(asyncio.CancelledError):
            await task
        reporter.cancel()
        if agent.connection is not None:
            agent.connection.abort()

    asyncio.run(run())
    return 0


async def report_tls_version(agent: Any) -> None:
    """Print ``device TLS VERSION`` once a reverse-tls connection is up (60 s at most)."""
    for _ in range(1200):
        version = getattr(agent.connection, "tls_version", None)
        if version:
            print(f"device TLS {version}", flush=True)
            return
        await asyncio.sleep(0.05)


def measure_ssh_call_home(tmp: Path, args: argparse.Namespace) -> list[Figure]:
    from netsnmp import bulkwalk_async

    from callhome.cli.setup import init_agent
    from callhome.config import ManagerConfig, ManagerSection
    from callhome.manager.service import Manager
    from callhome.net.keys import ensure_key
    from callhome.storage import open_store
    from harness import Proc

    rows, reps = args.rows, args.max_repetitions
    get_fig = Figure("GET, one call-home session (SnmpClient)", "manager -> agent, SSH")
    walk_fig = Figure(f"GETBULK walk x{reps} (SnmpClient)", "manager -> agent, SSH")

    async def run() -> None:
        state = tmp / "manager"
        config = ManagerConfig(state_dir=state, manager=ManagerSection(listen=["127.0.0.1:0"]))
        manager_key = ensure_key(config.path(config.manager.key))
        public = manager_key.export_public_key().decode().strip()
        store = open_store(config.database_url)
        manager = Manager(config, store)
        [port] = await manager.start()
        device_dir = tmp / "device"
        fingerprint = init_agent(device_dir, [f"127.0.0.1:{port}"], [public])
        with (device_dir / "agent.toml").open("a") as f:
            f.write(AGENT_SNMP)
        await manager.store.pre_approve(fingerprint, "ssh-ed25519", "dev", time.time())
        device = Proc(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--role",
                "device",
                "--config",
                str(device_dir / "agent.toml"),
                "--rows",
                str(rows),
            ],
            name="device",
        )
        try:
            deadline = time.monotonic() + 60
            while fingerprint not in manager.sessions:
                if time.monotonic() > deadline or device.proc.poll() is not None:
                    raise RuntimeError(f"the device did not call home:\n{device.output()}")
                await asyncio.sleep(0.05)
            client = await manager.sessions[fingerprint].snmp()
            await client.discover()
            await timed_async(Figure("", ""), args.warmup, lambda: client.get([SYS_DESCR]))
            await timed_async(get_fig, args.gets, lambda: client.get([SYS_DESCR]), device.proc.pid)

            async def walk() -> None:
                check_count(walk_fig, await bulkwalk_async(client, BENCH_COLUMN, reps), rows)

            await bulkwalk_async(client, BENCH_COLUMN, reps)  # unmeasured: the table is built
            for _ in range(args.walks):
                await timed_async(walk_fig, 1, walk, device.proc.pid)
        finally:
            device.stop()
            await manager.stop()

    asyncio.run(run())
    return [get_fig, walk_fig]


# --------------------------------------------------------------------------------------
# Product: SNMP over TLS call home (RFC 6353): snmpd through socat, and our agent
# --------------------------------------------------------------------------------------

AGENT_SNMP_TLS = """
[snmp]
enabled = true
sys_descr = "bench device"
interfaces = false

[[snmp.users]]
name = "callhome"
read = ["1.3.6.1"]

[[snmp.cert_to_name]]
fingerprint = "{manager}"
map_type = "specified"
name = "callhome"
"""
TLS_AGENT_NAME = "bench-agent"
"""The DNS name of our agent's certificate, hence its identity x509-name:bench-agent."""


def measure_through_tls_call_home(tmp: Path, args: argparse.Namespace) -> list[Figure]:
    """GET and GETBULK walk through SNMP-over-TLS call home, in one in-process ``Manager``
    (SQLite store, ``[manager.tls] snmp_listen`` on 127.0.0.1:0, TLS 1.0 and SECLEVEL 0
    allowed for snmpd, devices mapped by their DNS name and pre-approved):

    - snmpd calling home: ``socat TCP:MANAGER TCP:SNMPD`` (snmpd stays TLS server); the
      session's ``SnmpClient`` walks ``BIG_TABLE_COLUMN``. Beside it, measured in turns
      with it, the same ``SnmpClient`` over a TLS connection of its own straight to the
      same snmpd: what socat and the call-home session add.
    - our agent (``--role device``, the SSH case's 10,000-row table) calling home over
      reverse-tls with ``service = "snmp"`` at its default TLS settings.
    """
    from netsnmp import (
        AGENT_NAME,
        BIG_TABLE_COLUMN,
        TLS_ALGORITHMS,
        NetSnmpPki,
        Snmpd,
        TlsSnmpConnection,
        bulkwalk_async,
        snmpd_calls_home,
    )

    from callhome.cli.setup import init_agent
    from callhome.config import CertToNameRule, ManagerConfig, ManagerSection, ManagerTlsSection
    from callhome.manager.service import Manager
    from callhome.net import pki
    from callhome.net.snmp import SnmpClient
    from callhome.proto.snmp import Oid
    from callhome.storage import open_store
    from harness import Proc

    rows, reps = args.rows, args.max_repetitions
    direct_side, snmpd_side = "client -> same snmpd, TLS", "manager -> snmpd via socat, TLS"
    agent_side = "manager -> agent, TLS"
    get_direct = Figure("GET, straight to snmpd (SnmpClient)", direct_side)
    get_snmpd = Figure("GET, call home (SnmpClient)", snmpd_side)
    get_agent = Figure("GET, call home (SnmpClient)", agent_side)
    walk_direct = Figure(f"GETBULK walk x{reps}, straight (SnmpClient)", direct_side)
    walk_snmpd = Figure(f"GETBULK walk x{reps} (SnmpClient)", snmpd_side)
    walk_agent = Figure(f"GETBULK walk x{reps} (SnmpClient)", agent_side)

    ca = NetSnmpPki(tmp / "pki")
    agent_cert = ca.issue("device", TLS_AGENT_NAME)
    snmpd = Snmpd(tmp / "snmpd", ca, rows=rows).start()
    assert snmpd.proc is not None
    snmpd_pid = snmpd.proc.proc.pid

    def config() -> ManagerConfig:
        ca_file = ca.ca.cert_file
        tls = ManagerTlsSection(
            snmp_listen=["127.0.0.1:0"],
            cert=ca.manager.cert_file,
            key=ca.manager.key_file,
            ca=[ca_file],
            cert_to_name=[
                CertToNameRule(fingerprint=pki.file_fingerprint(ca_file), map_type="san-dns-name")
            ],
            allow_pinned=False,
            minimum_version="TLSv1",  # snmpd 5.9.3 speaks TLS 1.0 only
            ciphers=TLS_ALGORITHMS,
        )
        return ManagerConfig(state_dir=tmp / "manager", manager=ManagerSection(listen=[], tls=tls))

    def device_files(port: int) -> Path:
        directory = tmp / "device"
        init_agent(
            directory,
            [f"127.0.0.1:{port}"],
            [],
            orientation="reverse-tls",
            tls_cert=agent_cert.cert_file,
            tls_key=agent_cert.key_file,
            manager_ca=[ca.ca.cert_file],
            manager_fingerprints=[ca.manager.fingerprint],
        )
        toml = directory / "agent.toml"
        text = toml.read_text().replace(
            'orientation = "reverse-tls"\n', 'orientation = "reverse-tls"\nservice = "snmp"\n'
        )
        toml.write_text(text + AGENT_SNMP_TLS.format(manager=ca.manager.fingerprint))
        return toml

    async def session_of(manager: Manager, identity: str, proc: Proc) -> SnmpClient:
        deadline = time.monotonic() + 60
        while identity not in manager.sessions:
            if time.monotonic() > deadline or proc.proc.poll() is not None:
                raise RuntimeError(f"{identity} did not call home:\n{proc.output()}")
            await asyncio.sleep(0.05)
        return await manager.sessions[identity].snmp()

    async def walk(fig: Figure, client: SnmpClient, root: Oid) -> None:
        check_count(fig, await bulkwalk_async(client, root, reps), rows)

    async def run() -> None:
        cfg = config()
        manager = Manager(cfg, open_store(cfg.database_url))
        [port] = await manager.start()
        snmpd_id, agent_id = pki.MAPPED_PREFIX + AGENT_NAME, pki.MAPPED_PREFIX + TLS_AGENT_NAME
        await manager.approve(snmpd_id, "snmpd", "bench")  # as `callhome approve` does
        await manager.approve(agent_id, "agent", "bench")
        socat = snmpd_calls_home(port, snmpd.port)
        device: Proc | None = None
        direct: TlsSnmpConnection | None = None
        try:
            # snmpd through socat, in turns with the same client straight to snmpd
            via = await session_of(manager, snmpd_id, socat)
            direct = await TlsSnmpConnection.open(snmpd.port, ca.manager, ca.ca.cert_file)
            await direct.client.discover()

            def get(client: SnmpClient) -> Callable[[], Awaitable[object]]:
                return lambda: client.get([SYS_DESCR])

            def walk_of(fig: Figure, client: SnmpClient) -> Callable[[], Awaitable[None]]:
                return lambda: walk(fig, client, BIG_TABLE_COLUMN)

            for client in (direct.client, via):
                await timed_async(Figure("", ""), args.warmup, get(client))
            # in blocks, taking turns, so that both see the same neighbours
            socat_get = socat_walk = 0.0
            block = max(1, min(100, args.gets // 4))
            for done in range(0, args.gets, block):
                count = min(block, args.gets - done)
                await timed_async(get_direct, count, get(direct.client), snmpd_pid)
                s0 = proc_cpu(socat.proc.pid)
                await timed_async(get_snmpd, count, get(via), snmpd_pid)
                socat_get += proc_cpu(socat.proc.pid) - s0
            get_snmpd.note = f"socat CPU {fmt_time(socat_get / args.gets)}/GET"
            for fig, client in ((walk_direct, direct.client), (walk_snmpd, via)):
                await walk_of(fig, client)()  # unmeasured: snmpd runs its extend command
            for _ in range(args.walks):
                await timed_async(walk_direct, 1, walk_of(walk_direct, direct.client), snmpd_pid)
                s0 = proc_cpu(socat.proc.pid)
                await timed_async(walk_snmpd, 1, walk_of(walk_snmpd, via), snmpd_pid)
                socat_walk += proc_cpu(socat.proc.pid) - s0
            if not walk_snmpd.note:
                walk_snmpd.note = f"socat CPU {fmt_time(socat_walk / max(1, args.walks))}/walk"

            # our agent over reverse-tls, service snmp
            device = Proc(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--role",
                    "device",
                    "--config",
                    str(device_files(port)),
                    "--rows",
                    str(rows),
                ],
                name="device",
            )
            ours = await session_of(manager, agent_id, device)
            pid = device.proc.pid
            await timed_async(Figure("", ""), args.warmup, get(ours))
            await timed_async(get_agent, args.gets, get(ours), pid)
            await bulkwalk_async(ours, BENCH_COLUMN, reps)  # unmeasured: the table is built
            for _ in range(args.walks):
                await timed_async(walk_agent, 1, lambda: walk(walk_agent, ours, BENCH_COLUMN), pid)
            version = next(
                (ln.split()[-1] for ln in device.lines if ln.startswith("device TLS ")), "?"
            )
            get_agent.note = f"{version}, the agent's default TLS settings"
        finally:
            if direct is not None:
                await direct.close()
            if device is not None:
                device.stop()
            socat.stop()
            await manager.stop()

    try:
        asyncio.run(run())
    finally:
        snmpd.stop()
    get_direct.note = "TLSv1, all snmpd 5.9.3 speaks"
    return [get_direct, get_snmpd, get_agent, walk_direct, walk_snmpd, walk_agent]


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def header(args: argparse.Namespace) -> None:
    import ssl

    snmpd = subprocess.run(
        ["/usr/sbin/snmpd", "-v"], capture_output=True, text=True, timeout=10
    ).stdout
    version = next((ln.split(":")[1].strip() for ln in snmpd.splitlines() if "version" in ln), "?")
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    print(
        f"Python {platform.python_version()}, pysnmp {metadata.version('pysnmp')}, "
        f"asyncssh {metadata.version('asyncssh')}, {ssl.OPENSSL_VERSION}, Net-SNMP {version}"
    )
    print(f"{cpu}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    print(
        f"GET: {args.gets} timed after {args.warmup} unmeasured; walks: {args.walks} of "
        f"{args.rows:,} rows each, max-repetitions {args.max_repetitions}; "
        f"snmpget commands: {args.commands}"
    )
    print()


def table(figures: list[Figure]) -> None:
    print(
        f"{'case':<44} {'path':<32} {'median':>10} {'p99/max':>10} {'CPU client':>10} "
        f"{'CPU agent':>10}  note"
    )
    for f in figures:
        cpu = fmt_time(statistics.median(f.cpu)) if f.cpu else "-"
        peer = fmt_time(statistics.median(f.peer_cpu)) if f.peer_cpu else "-"
        spread = fmt_time(f.p99()) if len(f.wall) >= 20 else fmt_time(max(f.wall, default=nan()))
        print(
            f"{f.label:<44} {f.side:<32} {fmt_time(f.median()):>10} {spread:>10} {cpu:>10} "
            f"{peer:>10}  {f.note}"
        )


def nan() -> float:
    return float("nan")


def ratios(figures: list[Figure]) -> None:
    by = {(f.label, f.side): f for f in figures}

    def find(prefix: str, side: str) -> Figure | None:
        return next(
            (f for (label, s), f in by.items() if label.startswith(prefix) and s == side), None
        )

    pairs = [
        (
            "GET",
            "manager -> agent, SSH",
            "GET, one TLS session (SnmpClient",
            "manager's client -> snmpd",
        ),
        ("GETBULK", "manager -> agent, SSH", "GETBULK walk", "manager's client -> snmpd"),
        ("GET", "manager -> agent, SSH", "snmpget", "Net-SNMP -> snmpd"),
        ("GETBULK", "manager -> agent, SSH", "snmpbulkwalk", "Net-SNMP -> snmpd"),
        # SNMP over TLS call home (RFC 6353)
        ("GET,", "manager -> snmpd via socat, TLS", "GET,", "client -> same snmpd, TLS"),
        ("GETBULK", "manager -> snmpd via socat, TLS", "GETBULK", "client -> same snmpd, TLS"),
        ("GET,", "manager -> agent, TLS", "GET,", "manager -> agent, SSH"),
        ("GETBULK", "manager -> agent, TLS", "GETBULK", "manager -> agent, SSH"),
        ("GET,", "manager -> agent, TLS", "GET,", "client -> same snmpd, TLS"),
        ("GETBULK", "manager -> agent, TLS", "GETBULK", "client -> same snmpd, TLS"),
    ]
    print()
    for p_label, p_side, b_label, b_side in pairs:
        product, base = find(p_label, p_side), find(b_label, b_side)
        if product and base and product.wall and base.wall:
            print(
                f"{product.label} [{p_side}] / {base.label} [{b_side}]: "
                f"{product.median() / base.median():.2f} x"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["bench", "device"], default="bench")
    parser.add_argument("--config", type=Path, help="--role device: the agent.toml")
    parser.add_argument("--quick", action="store_true", help="a small run (~15 s)")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--gets", type=int, help="GETs timed (2,000; 200 with --quick)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--walks", type=int, default=3, help="walks timed per case")
    parser.add_argument("--commands", type=int, help="snmpget commands (20; 5 with --quick)")
    parser.add_argument("--max-repetitions", type=int, default=50)
    parser.add_argument("--skip-ssh", action="store_true")
    args = parser.parse_args(argv)
    if args.role == "device":
        assert args.config is not None
        return device_main(args.config, args.rows)
    args.gets = args.gets or (200 if args.quick else 2000)
    args.commands = args.commands or (5 if args.quick else 20)
    header(args)
    with tempfile.TemporaryDirectory(prefix="callhome-bench-snmp-") as tmp:
        figures = measure_netsnmp(Path(tmp) / "netsnmp", args)
        if not args.skip_ssh:
            figures += measure_ssh_call_home(Path(tmp) / "ssh", args)
        figures += measure_through_tls_call_home(Path(tmp) / "tls", args)
    table(figures)
    ratios(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
