"""Benchmark of the manager's reverse-ssh call home: the product against a bare asyncssh baseline.

Run ``python bench/bench_callhome.py`` (N=1000 devices, 3 runs of each side) or ``--quick``
(N=100, one run of each). See bench/README.md for what every figure means.

Every run of a side is a process of its own (this script with ``--role``), which starts its
fleet of simulated devices (``bench/fleet.py``) as another process, so that the manager's CPU
time and RSS are its own. Runs of the two sides alternate; the table shows medians.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncssh

from callhome.config import ManagerConfig, ManagerSection, SshAlgorithms
from callhome.manager.service import Manager
from callhome.net.keys import ensure_key, public_line
from callhome.net.session import DeviceSession
from callhome.net.ssh_algorithms import client_algorithm_options
from callhome.storage import open_store

HERE = Path(__file__).resolve().parent
FLEET = HERE / "fleet.py"

TARGET_RATIO = 1.5
TARGET_RSS_KIB = 40.0
TARGET_P50_MS = 1.0
TARGET_AGGREGATE = 5000.0


def vm_rss_kb() -> int:
    """Resident set size of this process, in KiB, from /proc/self/status."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def settled_rss_kb() -> int:
    gc.collect()
    return vm_rss_kb()


def allocated_blocks() -> int:
    """Memory blocks the Python allocator holds for live objects (after a collection)."""
    gc.collect()
    return sys.getallocatedblocks()


def raise_nofile_limit() -> tuple[int, int, int]:
    """Raise the soft open-file limit to the hard limit; returns (old soft, new soft, hard)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard


# --------------------------------------------------------------------------------------
# The fleet process, seen from the manager side
# --------------------------------------------------------------------------------------


class FleetProcess:
    """``fleet.py --control`` (or another script that speaks the same JSON lines, such as
    ``flood.py``) as a child process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc

    @property
    def pid(self) -> int:
        return self._proc.pid

    @classmethod
    async def launch(cls, script: Path, argv: Sequence[str]) -> FleetProcess:
        """Start ``script`` with ``argv`` in this interpreter, stdin and stdout piped."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 24,
        )
        return cls(proc)

    @classmethod
    async def start(
        cls,
        mode: str,
        devices: int,
        manager_key: str,
        concurrency: int,
        extra: Sequence[str] = (),
    ) -> FleetProcess:
        argv = ["--control", "--mode", mode, "--devices", str(devices)]
        argv += ["--concurrency", str(concurrency), "--manager-key", manager_key, *extra]
        return await cls.launch(FLEET, argv)

    def send(self, command: dict[str, Any]) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(command) + "\n").encode())

    async def receive(self, timeout: float) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"the fleet exited (status {await self._proc.wait()})")
        message: dict[str, Any] = json.loads(line)
        return message

    async def request(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.send(command)
        return await self.receive(timeout)

    async def stop(self, timeout: float = 30.0) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(Exception):
                self.send({"cmd": "stop"})
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            try:
                await asyncio.wait_for(self._proc.wait(), timeout)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()


async def dial_and_wait(
    fleet: FleetProcess,
    ready: asyncio.Event,
    *,
    host: str,
    port: int,
    first: int,
    count: int,
    timeout: float,
) -> dict[str, Any]:
    """Have the fleet dial ``count`` devices; return when ``ready`` is set (all of them are
    online), or a little after the fleet gave up on some of them, or at ``timeout``."""
    fleet.send(
        {
            "cmd": "dial",
            "host": host,
            "port": port,
            "first": first,
            "count": count,
            "timeout": timeout,
        }
    )
    dialed = asyncio.ensure_future(fleet.receive(timeout + 30.0))
    waiter = asyncio.ensure_future(ready.wait())
    try:
        await asyncio.wait({dialed, waiter}, timeout=timeout, return_when="FIRST_COMPLETED")
        if not waiter.done() and dialed.done():
            # the fleet is done dialing: the last hellos and registry writes are on their way
            await asyncio.wait({waiter}, timeout=10.0)
    finally:
        waiter.cancel()
    try:
        return await asyncio.wait_for(dialed, 30.0)
    except (TimeoutError, RuntimeError) as exc:
        return {"event": "dialed", "ok": -1, "failed": -1, "errors": [repr(exc)], "cpu_s": 0.0}


async def measure_connect(
    fleet: FleetProcess,
    ready: asyncio.Event,
    expect: Callable[[int], None],
    online: Callable[[], int],
    *,
    port: int,
    args: argparse.Namespace,
    profile_name: str,
) -> dict[str, Any]:
    """The connect phase of one run, the same for every kind of manager side.

    ``expect(k)`` clears ``ready`` and arms it to be set once ``k`` more devices are online;
    ``online()`` says how many are. Dials ``args.warmup`` devices unmeasured, then
    ``args.devices`` measured ones; reads RSS before they dial and ``args.settle`` seconds
    after they are online (each after ``gc.collect()``)."""
    n, warmup, timeout = args.devices, args.warmup, args.connect_timeout
    host = "127.0.0.1"
    if warmup:
        expect(warmup)
        await dial_and_wait(
            fleet, ready, host=host, port=port, first=0, count=warmup, timeout=timeout
        )
    await asyncio.sleep(0.2)
    rss0, blocks0 = settled_rss_kb(), allocated_blocks()
    fleet_cpu0 = (await fleet.request({"cmd": "stats"}, 30.0))["cpu_s"]
    expect(n)
    cpu0, t0 = time.process_time(), time.perf_counter()
    with profiled(args.profile_dir, profile_name):
        dialed = await dial_and_wait(
            fleet, ready, host=host, port=port, first=warmup, count=n, timeout=timeout
        )
    count = online()
    cpu1, t1 = time.process_time(), time.perf_counter()
    timed_out = not ready.is_set()
    fleet_cpu1 = (await fleet.request({"cmd": "stats"}, 30.0))["cpu_s"]
    await asyncio.sleep(args.settle)
    rss1, blocks1 = settled_rss_kb(), allocated_blocks()
    return {
        "timed_out": timed_out,
        "online": count,
        "dial_failed": dialed.get("failed"),
        "dial_errors": dialed.get("errors", [])[:3],
        "connect_wall_s": t1 - t0,
        "connect_cpu_s": cpu1 - cpu0,
        "fleet_connect_cpu_s": fleet_cpu1 - fleet_cpu0,
        "fleet_dial_wall_s": dialed.get("wall_s", float("nan")),
        "rss_before_kb": rss0,
        "rss_after_kb": rss1,
        "blocks": blocks1 - blocks0,
    }


# --------------------------------------------------------------------------------------
# Manager side of one run: the product
# --------------------------------------------------------------------------------------


class CountingManager(Manager):
    """The product's Manager; sets ``all_ready`` once ``expect(n)`` sessions are ready."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.all_ready = asyncio.Event()
        self.ready_count = 0
        self._expected = 0

    def expect(self, count: int) -> None:
        self.all_ready.clear()
        self.ready_count = 0
        self._expected = count

    async def session_ready(self, session: DeviceSession) -> None:
        await super().session_ready(session)
        self.ready_count += 1
        if self.ready_count >= self._expected:
            self.all_ready.set()


@contextlib.contextmanager
def profiled(directory: str | None, name: str) -> Iterator[None]:
    """Run the block under cProfile and save the stats, if asked to.

    The profiler's clock is this thread's CPU time: waits (epoll, the GIL) are not counted,
    and neither is the CPU of other threads (the store's worker)."""
    if not directory:
        yield
        return
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(Path(directory) / name)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of values sorted ascending."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(p / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


async def latency_run(session: DeviceSession, calls: int, deadline: float) -> list[float]:
    """Sequential get-config calls on one session; round trips in seconds.

    Stops early at ``deadline`` or at the first failure (what was measured is kept)."""
    times: list[float] = []
    clock = time.perf_counter
    try:
        for _ in range(min(100, calls)):  # warm the path (parsers, caches)
            if time.monotonic() >= deadline:
                return times
            await session.netconf.get_config()
        for _ in range(calls):
            if time.monotonic() >= deadline:
                break
            t0 = clock()
            await session.netconf.get_config()
            times.append(clock() - t0)
    except Exception as exc:
        print(f"get-config on one session failed: {exc!r}", file=sys.stderr)
    return times


async def aggregate_run(
    sessions: list[DeviceSession], rounds: int, deadline: float
) -> tuple[int, int, float]:
    """Every session runs ``rounds`` get-config calls in a row, all sessions at once.

    Returns (calls answered, calls failed, wall seconds)."""
    answered = failed = 0

    async def loop(session: DeviceSession) -> None:
        nonlocal answered, failed
        for _ in range(rounds):
            if time.monotonic() >= deadline:
                return
            try:
                await session.netconf.get_config()
                answered += 1
            except Exception:
                failed += 1
                return

    t0 = time.perf_counter()
    tasks = [asyncio.ensure_future(loop(s)) for s in sessions]
    _, pending = await asyncio.wait(tasks, timeout=max(1.0, deadline - time.monotonic() + 5.0))
    for task in pending:
        task.cancel()
    wall = time.perf_counter() - t0
    return answered, failed, wall


async def product_role(args: argparse.Namespace) -> dict[str, Any]:
    """One run of the product's manager against a fleet of product devices."""
    n, warmup = args.devices, args.warmup
    result: dict[str, Any] = {"role": "product", "devices": n}
    with tempfile.TemporaryDirectory(prefix="callhome-bench-") as tmp:
        state = Path(tmp)
        database = {
            "default": None,
            "sqlite": f"sqlite:///{state / 'manager.db'}",
            "memory": "memory://",
        }[args.database]
        config = ManagerConfig(
            state_dir=state, database=database, manager=ManagerSection(listen=["127.0.0.1:0"])
        )
        manager_key = ensure_key(config.path(config.manager.key))
        fleet = await FleetProcess.start(
            "product", n + warmup, public_line(manager_key), args.concurrency
        )
        manager: CountingManager | None = None
        try:
            hello = await fleet.receive(timeout=120.0)
            fingerprints: list[str] = hello["fingerprints"]
            result["database"] = config.database_url.split(":")[0]

            store = open_store(config.database_url)
            await store.open()
            now = time.time()
            for i, fp in enumerate(fingerprints):
                await store.pre_approve(fp, hello["key_type"], f"device-{i:05d}", now)
            if args.database != "memory":  # a MemoryStore forgets on close: the Manager keeps it
                await store.close()
                store = open_store(config.database_url)
            manager = CountingManager(config, store)
            [port] = await manager.start()
            ready_manager = manager
            result.update(
                await measure_connect(
                    fleet,
                    manager.all_ready,
                    manager.expect,
                    lambda: ready_manager.ready_count,
                    port=port,
                    args=args,
                    profile_name="product-connect.pstats",
                )
            )

            measured = set(fingerprints[warmup:])
            sessions = [s for fp, s in manager.sessions.items() if fp in measured]
            result["sessions"] = len(sessions)
            if sessions:
                deadline = time.monotonic() + args.phase_timeout
                times = await latency_run(sessions[0], args.calls, deadline)
                times.sort()
                result.update(
                    rtt_calls=len(times),
                    rtt_p50_ms=percentile(times, 50) * 1e3,
                    rtt_p99_ms=percentile(times, 99) * 1e3,
                    rtt_mean_ms=statistics.fmean(times) * 1e3 if times else float("nan"),
                )

                fleet_cpu1 = (await fleet.request({"cmd": "stats"}, 30.0))["cpu_s"]
                cpu0 = time.process_time()
                deadline = time.monotonic() + args.phase_timeout
                with profiled(args.profile_dir, "product-get-config.pstats"):
                    answered, failed, wall = await aggregate_run(sessions, args.rounds, deadline)
                cpu1 = time.process_time()
                fleet_cpu2 = (await fleet.request({"cmd": "stats"}, 30.0))["cpu_s"]
                result.update(
                    agg_calls=answered,
                    agg_failed=failed,
                    agg_wall_s=wall,
                    agg_cpu_s=cpu1 - cpu0,
                    fleet_agg_cpu_s=fleet_cpu2 - fleet_cpu1,
                )
            stats = await fleet.request({"cmd": "stats"}, 30.0)
            result["fleet_rss_kb"] = stats["rss_kb"]
        finally:
            await fleet.stop()
            if manager is not None:
                drain_until = time.monotonic() + 20.0
                while manager.sessions and time.monotonic() < drain_until:
                    await asyncio.sleep(0.1)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(manager.stop(), 30.0)
    return result


# --------------------------------------------------------------------------------------
# Manager side of one run: the baseline
# --------------------------------------------------------------------------------------


async def baseline_role(args: argparse.Namespace) -> dict[str, Any]:
    """One run of a bare asyncssh reverse listener: the handshake and nothing else."""
    n, warmup = args.devices, args.warmup
    result: dict[str, Any] = {"role": "baseline", "devices": n}
    algorithms = SshAlgorithms()
    manager_key = asyncssh.generate_private_key("ssh-ed25519")
    options = asyncssh.SSHClientConnectionOptions(
        username="callhome",
        known_hosts=None,
        client_keys=[manager_key],
        agent_path=None,
        password_auth=False,
        kbdint_auth=False,
        host_based_auth=False,
        gss_host=None,
        config=None,
        **client_algorithm_options(algorithms),
    )
    ready = asyncio.Event()
    counter = {"ready": 0, "expected": 0}

    def acceptor(conn: asyncssh.SSHClientConnection) -> None:
        counter["ready"] += 1
        if counter["ready"] >= counter["expected"]:
            ready.set()

    def expect(count: int) -> None:
        ready.clear()
        counter.update(ready=0, expected=count)

    fleet = await FleetProcess.start(
        "baseline", n + warmup, public_line(manager_key), args.concurrency
    )
    acceptor_server: asyncssh.SSHAcceptor | None = None
    try:
        await fleet.receive(timeout=120.0)
        acceptor_server = await asyncssh.listen_reverse(
            "127.0.0.1", 0, options=options, acceptor=acceptor, reuse_address=True
        )
        port = acceptor_server.get_port()
        result.update(
            await measure_connect(
                fleet,
                ready,
                expect,
                lambda: counter["ready"],
                port=port,
                args=args,
                profile_name="baseline-connect.pstats",
            )
        )
    finally:
        await fleet.stop()
        if acceptor_server is not None:
            acceptor_server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(acceptor_server.wait_closed(), 10.0)
    return result


# --------------------------------------------------------------------------------------
# Orchestration and the table
# --------------------------------------------------------------------------------------


def run_role(role: str, args: argparse.Namespace, profile_dir: str | None = None) -> dict[str, Any]:
    """Run one side once in a process of its own; its result is the last line it prints."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--role",
        role,
        "--devices",
        str(args.devices),
        "--warmup",
        str(args.warmup),
        "--concurrency",
        str(args.concurrency),
        "--calls",
        str(args.calls),
        "--rounds",
        str(args.rounds),
        "--settle",
        str(args.settle),
        "--connect-timeout",
        str(args.connect_timeout),
        "--phase-timeout",
        str(args.phase_timeout),
    ]
    command += ["--database", args.database]
    if profile_dir:
        command += ["--profile-dir", profile_dir]
    bound = 120.0 + args.connect_timeout * 2 + args.phase_timeout * 2 + 60.0
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=bound)
    except subprocess.TimeoutExpired:
        return {"role": role, "error": f"run did not finish within {bound:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"role": role, "error": f"run failed (status {done.returncode})"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def environment() -> list[str]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = []
    for dist in ("asyncssh", "cryptography", "lxml", "SQLAlchemy", "aiosqlite"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{dist} {metadata.version(dist)}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        + ", ".join(versions),
        f"{ssl.OPENSSL_VERSION}",
        f"cpu: {cpu}; {os.cpu_count()} cores; load average at start {load}",
    ]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _spread(values: list[float], fmt: str) -> str:
    if len(values) < 2:
        return ""
    return f"{format(min(values), fmt)} .. {format(max(values), fmt)}"


def report(args: argparse.Namespace, results: list[dict[str, Any]], notes: list[str]) -> str:
    product = [r for r in results if r.get("role") == "product" and "error" not in r]
    baseline = [r for r in results if r.get("role") == "baseline" and "error" not in r]
    n = args.devices

    def per(runs: list[dict[str, Any]], num: str, den: str, scale: float) -> list[float]:
        return [r[num] / r[den] * scale for r in runs if r.get(den)]

    p_rate = [r["online"] / r["connect_wall_s"] for r in product if r.get("connect_wall_s")]
    b_rate = [r["online"] / r["connect_wall_s"] for r in baseline if r.get("connect_wall_s")]
    p_cpu = per(product, "connect_cpu_s", "online", 1e6)
    b_cpu = per(baseline, "connect_cpu_s", "online", 1e6)
    p_fleet = per(product, "fleet_connect_cpu_s", "online", 1e6)
    b_fleet = per(baseline, "fleet_connect_cpu_s", "online", 1e6)
    p_util = [r["connect_cpu_s"] / r["connect_wall_s"] * 100 for r in product]
    p_lag = [(r["connect_wall_s"] - r["fleet_dial_wall_s"]) * 1e3 for r in product]
    pairs = [p / b for p, b in zip(p_cpu, b_cpu, strict=False)]
    ratio = _median(p_cpu) / _median(b_cpu) if p_cpu and b_cpu else float("nan")
    p_rss = [(r["rss_after_kb"] - r["rss_before_kb"]) / r["online"] for r in product if r["online"]]
    b_rss = [
        (r["rss_after_kb"] - r["rss_before_kb"]) / r["online"] for r in baseline if r["online"]
    ]
    p50 = [r["rtt_p50_ms"] for r in product if "rtt_p50_ms" in r]
    p99 = [r["rtt_p99_ms"] for r in product if "rtt_p99_ms" in r]
    agg = [r["agg_calls"] / r["agg_wall_s"] for r in product if r.get("agg_wall_s")]
    agg_cpu = per(product, "agg_cpu_s", "agg_calls", 1e6)
    agg_fleet = per(product, "fleet_agg_cpu_s", "agg_calls", 1e6)

    def ok(value: float, target: float, below: bool) -> str:
        if value != value:  # nan
            return "n/a"
        return "met" if (value <= target if below else value >= target) else "MISSED"

    rows: list[tuple[str, str, str, str, str]] = []

    def row(name: str, values: list[float], fmt: str, unit: str, target: str = "") -> None:
        value = _median(values)
        rows.append((name, f"{format(value, fmt)} {unit}", target, _spread(values, fmt), ""))

    row("devices online per second (product)", p_rate, ".0f", "/s")
    row("handshakes per second (baseline)", b_rate, ".0f", "/s")
    row("manager CPU per device online (product)", p_cpu, ".0f", "us")
    row("manager CPU per handshake (baseline)", b_cpu, ".0f", "us")
    rows.append(
        (
            "product / baseline, manager CPU",
            f"{ratio:.2f} x",
            f"<= {TARGET_RATIO} x  {ok(ratio, TARGET_RATIO, True)}",
            _spread(pairs, ".2f"),
            "",
        )
    )
    row("manager CPU busy while connecting (product)", p_util, ".0f", "%")
    row("last device authenticated -> all N ready", p_lag, ".0f", "ms")
    row(
        "manager RSS per idle device (product)",
        p_rss,
        ".1f",
        "KiB",
        f"<= {TARGET_RSS_KIB:.0f} KiB  {ok(_median(p_rss), TARGET_RSS_KIB, True)}",
    )
    row("manager RSS per idle connection (baseline)", b_rss, ".1f", "KiB")
    row(
        "get-config round trip p50 (one session)",
        p50,
        ".3f",
        "ms",
        f"< {TARGET_P50_MS} ms  {ok(_median(p50), TARGET_P50_MS, True)}",
    )
    row("get-config round trip p99 (one session)", p99, ".3f", "ms")
    row(
        f"aggregate get-config/s, {n} sessions",
        agg,
        ".0f",
        "/s",
        f">= {TARGET_AGGREGATE:.0f}/s  {ok(_median(agg), TARGET_AGGREGATE, False)}",
    )
    row("manager CPU per get-config (aggregate)", agg_cpu, ".0f", "us")
    row("  = get-config/s one manager core could serve", [1e6 / c for c in agg_cpu], ".0f", "/s")
    row("fleet CPU per device online (product)", p_fleet, ".0f", "us")
    row("fleet CPU per handshake (baseline)", b_fleet, ".0f", "us")
    row("fleet CPU per get-config (aggregate)", agg_fleet, ".0f", "us")

    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    head = ("figure", "median", "target", "min .. max")
    out = [
        f"callhome benchmark: N={n} devices (+{args.warmup} warm-up), "
        f"{len(product)} product and {len(baseline)} baseline runs",
        *environment(),
        *notes,
        "",
        "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=False)),
        "  ".join("-" * w for w in widths),
    ]
    for name, value, target, spread, _ in rows:
        out.append(
            "  ".join(
                [
                    name.ljust(widths[0]),
                    value.rjust(widths[1]),
                    target.ljust(widths[2]),
                    spread.ljust(widths[3]),
                ]
            ).rstrip()
        )
    out.append("")
    for r in results:
        if "error" in r:
            out.append(f"run of {r['role']} failed: {r['error']}")
        elif r.get("online", 0) < n:
            bound = f" within {args.connect_timeout:.0f} s" if r.get("timed_out") else ""
            out.append(
                f"run of {r['role']}: only {r.get('online')} of {n} devices came online{bound}; "
                f"first errors: {r.get('dial_errors') or 'none reported'}"
            )
        elif r["role"] == "product" and r.get("agg_failed"):
            out.append(f"run of product: {r['agg_failed']} get-config calls failed")
    return "\n".join(out)


def _area(filename: str) -> str:
    """Where a profiled function lives: a package, callhome's sub-package, or the stdlib."""
    path = filename.replace(os.sep, "/")
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/src/callhome/" in path:
        return "callhome." + path.split("/src/callhome/", 1)[1].split("/", 1)[0]
    if "/bench/" in path:
        return "bench"
    if "/asyncio/" in path:
        return "asyncio"
    return "stdlib"


def profile_breakdown(path: Path) -> list[tuple[str, float]]:
    """Own time per area, built-in functions (socket.send, lxml, ...) charged to their callers'
    areas; largest first, as shares of the total."""
    raw: dict[Any, Any] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    areas: dict[str, float] = {}
    for (filename, _, _), (_, _, tottime, _, callers) in raw.items():
        if filename != "~":
            areas[_area(filename)] = areas.get(_area(filename), 0.0) + tottime
            continue
        edges = {caller: edge[2] for caller, edge in callers.items()}
        total_edges = sum(edges.values())
        if not edges or total_edges <= 0:
            areas["(built-ins)"] = areas.get("(built-ins)", 0.0) + tottime
            continue
        for (caller_file, _, _), share in edges.items():
            area = "(built-ins)" if caller_file == "~" else _area(caller_file)
            areas[area] = areas.get(area, 0.0) + tottime * share / total_edges
    total = sum(areas.values()) or 1.0
    return sorted(((a, t / total) for a, t in areas.items()), key=lambda x: -x[1])


def profile_summary(profile_dir: Path, name: str, top: int) -> str:
    path = profile_dir / name
    if not path.exists():
        return f"(no profile {name})"
    shares = profile_breakdown(path)
    lines = ["own time by area (built-ins charged to their callers):"]
    lines += [f"  {share * 100:5.1f}%  {area}" for area, share in shares[:12] if share >= 0.005]
    buffer = io.StringIO()
    stats = pstats.Stats(str(path), stream=buffer)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    body = buffer.getvalue()
    start = body.find("   ncalls")
    lines.append(body[start:] if start >= 0 else body)
    return "\n".join(lines)


def run_profiles(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="callhome-profile-") as tmp:
        print(
            "\ncProfile of the manager process, one more run of each side: CPU time of the "
            "event loop's thread (the store's worker thread is not seen), inflated by profiling"
        )
        for role in ("baseline", "product"):
            result = run_role(role, args, profile_dir=tmp)
            if "error" in result:
                print(f"profiled {role} run failed: {result['error']}")
        for name, title in (
            ("baseline-connect.pstats", "baseline, connect phase"),
            ("product-connect.pstats", "product, connect phase"),
            ("product-get-config.pstats", "product, aggregate get-config phase"),
        ):
            print(f"\n== {title} ==")
            print(profile_summary(Path(tmp), name, args.profile_top))
        if args.profile_keep:
            keep = Path(args.profile_keep)
            keep.mkdir(parents=True, exist_ok=True)
            for src in Path(tmp).glob("*.pstats"):
                (keep / src.name).write_bytes(src.read_bytes())
            print(f"profiles kept in {keep}")


def orchestrate(args: argparse.Namespace) -> int:
    old, new, hard = raise_nofile_limit()
    notes = [
        f"open files: soft limit {old} -> {new} (hard {hard}); each side holds N sockets",
        f"algorithms (callhome.config.SshAlgorithms defaults, both sides): kex "
        f"{SshAlgorithms().kex[0]}, cipher {SshAlgorithms().ciphers[0]}; "
        f"Ed25519 host and manager keys",
        f"fleet: {args.concurrency} handshakes in flight at most; manager store: "
        + {
            "default": f"{ManagerConfig().database_url.split(':')[0]} in a temp dir "
            "(the product's default URL)",
            "sqlite": "sqlite (pysqlite in SqlStore's worker thread) in a temp dir",
            "memory": "MemoryStore (no storage cost; not the product's setup)",
        }[args.database],
    ]
    needed = 2 * (args.devices + args.warmup) + 256
    if new < needed:
        print(f"warning: open-file limit {new} is below the ~{needed} this run needs")
    results: list[dict[str, Any]] = []
    for rep in range(args.repeat):
        order = ("baseline", "product") if rep % 2 == 0 else ("product", "baseline")
        for role in order:
            t0 = time.perf_counter()
            result = run_role(role, args)
            results.append(result)
            state = result.get("error") or f"{result.get('online')} online"
            print(
                f"  run {rep + 1}/{args.repeat} {role}: {state} ({time.perf_counter() - t0:.1f} s)",
                file=sys.stderr,
            )
    print(report(args, results, notes))
    if args.profile:
        run_profiles(args)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: N=100, one run each")
    parser.add_argument("--devices", type=int, help="simulated devices N (default 1000)")
    parser.add_argument("--repeat", type=int, help="runs of each side (default 3, quick 1)")
    parser.add_argument("--warmup", type=int, help="devices connected before measuring")
    parser.add_argument("--concurrency", type=int, default=64, help="handshakes in flight")
    parser.add_argument("--calls", type=int, help="sequential get-config calls (p50/p99)")
    parser.add_argument("--rounds", type=int, help="get-config calls per session, aggregate")
    parser.add_argument("--settle", type=float, default=1.0, help="idle seconds before RSS")
    parser.add_argument("--connect-timeout", type=float, help="bound on the connect phase, s")
    parser.add_argument("--phase-timeout", type=float, default=120.0, help="bound per phase, s")
    parser.add_argument(
        "--database",
        choices=("default", "sqlite", "memory"),
        default="default",
        help="manager's store: the product's default URL (sqlite:///), sqlite:/// "
        "(SqlStore's own worker thread) or memory:// (no storage cost)",
    )
    parser.add_argument("--profile", action="store_true", help="one more run under cProfile")
    parser.add_argument("--profile-top", type=int, default=25, help="functions to list")
    parser.add_argument("--profile-keep", help="folder to keep the .pstats files in")
    parser.add_argument("--role", choices=("product", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--profile-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    if args.devices is None:
        args.devices = 100 if quick else 1000
    if args.repeat is None:
        args.repeat = 1 if quick else 3
    if args.warmup is None:
        args.warmup = 4 if quick else 8
    if args.calls is None:
        args.calls = 1000 if quick else 2000
    if args.rounds is None:
        args.rounds = 20 if quick else 10
    if args.connect_timeout is None:
        args.connect_timeout = max(30.0, args.devices * 0.1)
    if args.devices < 1 or args.repeat < 1 or args.warmup < 0:
        parser.error("--devices and --repeat must be positive, --warmup not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role:
        raise_nofile_limit()
        role = product_role if args.role == "product" else baseline_role
        result = asyncio.run(role(args))
        print(json.dumps(result), flush=True)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
