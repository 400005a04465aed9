"""Flood benchmark: N legitimate devices online, then hostile traffic at once, against the
same run without it.

Run ``python bench/bench_flood.py`` (N=1000 devices, every scenario) or ``--quick`` (N=100,
a few hundred flood sockets, two scenarios, about a minute). See bench/README.md for what
every figure means.

Every scenario is a process of its own (this script with ``--role run``): the product's
``Manager`` on SQLite in a temp dir, N pre-approved devices (``bench/fleet.py``, each from
its own loopback address) and one process per flood kind (``bench/flood.py``), so that the
manager's CPU time and RSS are its own. A scenario measures a quiet phase, then starts its
floods at once and measures the same figures again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_callhome import (
    CountingManager,
    FleetProcess,
    dial_and_wait,
    environment,
    percentile,
    profile_summary,
    profiled,
    raise_nofile_limit,
    settled_rss_kb,
    vm_rss_kb,
)
from callhome.config import GuardSection, ManagerConfig, ManagerSection
from callhome.net.keys import ensure_key, public_line
from callhome.net.netconf import NetconfLimits
from callhome.net.session import DeviceSession
from callhome.storage import DeviceStatus, open_store

HERE = Path(__file__).resolve().parent
FLOOD = HERE / "flood.py"

GOAL_RATIO = 2.0
LEGIT_NET = "127.1.0.0/16"
"""Legitimate device i dials from the i-th address of this network: one address each."""

SOURCES = {
    "slowloris": ("127.0.1.1", 19),
    "garbage": ("127.0.2.1", 19),
    "fresh-keys": ("127.0.3.1", 100),
    "hostile": ("127.0.4.1", 1),
}
"""Where each flood kind comes from: first address, how many (see bench/README.md)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    kinds: tuple[str, ...]
    one_source: bool = False
    """Slowloris from one address (127.0.1.1) rather than 19."""

    def describe(self, args: argparse.Namespace) -> str:
        parts = []
        for kind in self.kinds:
            if kind == "slowloris":
                count = 1 if self.one_source else SOURCES[kind][1]
                parts.append(f"slowloris {args.sockets} sockets from {count} address(es)")
            elif kind == "garbage":
                parts.append(f"garbage {args.garbage_rate:g}/s from {SOURCES[kind][1]}")
            elif kind == "fresh-keys":
                parts.append(f"fresh keys {args.fresh_rate:g}/s from {SOURCES[kind][1]}")
            else:
                parts.append("one hostile authenticated device")
        return "; ".join(parts)


ALL = ("slowloris", "garbage", "fresh-keys", "hostile")
SCENARIOS = {
    s.name: s
    for s in (
        Scenario("all", ALL),
        Scenario("all-one-source", ALL, one_source=True),
        Scenario("slowloris", ("slowloris",)),
        Scenario("slowloris-one-source", ("slowloris",), one_source=True),
        Scenario("garbage", ("garbage",)),
        Scenario("fresh-keys", ("fresh-keys",)),
        Scenario("hostile", ("hostile",)),
    )
}
DEFAULT_SCENARIOS = ("all", "all-one-source", "slowloris", "garbage", "fresh-keys", "hostile")
QUICK_SCENARIOS = ("all", "all-one-source")


# --------------------------------------------------------------------------------------
# The manager's side of one scenario
# --------------------------------------------------------------------------------------


def _shape(reason: str | None) -> str:
    """A close reason with its numbers taken out, for counting."""
    return re.sub(r"\d+(\.\d+)?", "N", reason or "none")[:120]


class FloodManager(CountingManager):
    """The product's Manager; tells when a given device is online again, and what became
    of the hostile device's sessions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hostile = ""
        self.hostile_sessions = 0
        self.hostile_ends: Counter[str] = Counter()
        self._waiting: dict[str, asyncio.Future[float]] = {}

    def when_ready(self, fingerprint: str) -> asyncio.Future[float]:
        """A future set to ``perf_counter()`` when this device's next session is ready."""
        future = asyncio.get_running_loop().create_future()
        self._waiting[fingerprint] = future
        return future

    async def session_ready(self, session: DeviceSession) -> None:
        await super().session_ready(session)
        future = self._waiting.pop(session.fingerprint, None)
        if future is not None and not future.done():
            future.set_result(time.perf_counter())
        if session.fingerprint == self.hostile:
            self.hostile_sessions += 1

    async def session_closed(self, session: DeviceSession) -> None:
        if session.fingerprint == self.hostile:
            self.hostile_ends[_shape(session.close_reason)] += 1
        await super().session_closed(session)


GUARD_LINE = re.compile(r"flood guard dropped connections(?: in the last \d+s)?: (.*)")
GUARD_COUNT = re.compile(r"(\d+) (.+?)(?:, (?=\d)|$)")


class LogCounter(logging.Handler):
    """The manager's log, counted: the guard's counted lines summed by reason, every other
    warning by its shape. Installed on the ``callhome`` logger, it also keeps the log off
    stderr."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.guard: Counter[str] = Counter()
        self.guard_lines = 0
        self.warnings: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        match = GUARD_LINE.match(message)
        if match:
            self.guard_lines += 1
            for count, reason in GUARD_COUNT.findall(match.group(1)):
                self.guard[reason] += int(count)
        elif record.levelno >= logging.WARNING:
            self.warnings[_shape(message)] += 1


class GcPauses:
    """The cyclic garbage collector's pauses in this process (``gc.callbacks``): each full
    (generation 2) collection stops the event loop for as long as it runs."""

    def __init__(self) -> None:
        self.full: list[float] = []
        self.other = 0.0
        self._t0 = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        elif info["generation"] == 2:
            self.full.append(time.perf_counter() - self._t0)
        else:
            self.other += time.perf_counter() - self._t0

    def since(self, mark: tuple[int, float]) -> dict[str, Any]:
        full = self.full[mark[0] :]
        return {
            "gc_full": len(full),
            "gc_full_max_ms": max(full, default=0.0) * 1e3,
            "gc_full_total_ms": sum(full) * 1e3,
            "gc_young_total_ms": (self.other - mark[1]) * 1e3,
        }

    def mark(self) -> tuple[int, float]:
        return len(self.full), self.other


GC = GcPauses()


class Phase:
    """The figures of one phase, measured while it runs (see ``measure``)."""

    def __init__(self) -> None:
        self.online: list[float] = []
        self.rss_peak_kb = 0
        self.latencies: list[float] = []
        self.failures: Counter[str] = Counter()
        self.restarts: list[dict[str, Any]] = []
        self.lags: list[float] = []


async def measure(
    name: str,
    manager: FloodManager,
    fleet: FleetProcess,
    port: int,
    fingerprints: list[str],
    others: list[str],
    restart: list[int],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One phase: sample the share of ``others`` online and the manager's RSS, time
    get-config on random ``others`` in ``args.lanes`` lanes, and restart each device of
    ``restart`` in turn (closed, gone from the manager, redialed as the agent does: time
    from the redial to ``session_ready``). Lasts ``args.phase`` seconds at least and until
    the restarts are done, ``args.phase_bound`` at most."""
    phase = Phase()
    stop = asyncio.Event()
    fleet_cpu0 = (await fleet.request({"cmd": "stats"}, 30.0))["cpu_s"]
    cpu0, t0, gc0 = time.process_time(), time.perf_counter(), GC.mark()
    wait0 = run_queue_wait_s()
    deadline = time.monotonic() + args.phase_bound

    async def sampler() -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            up = sum(1 for fp in others if fp in manager.sessions)
            phase.online.append(up / len(others))
            phase.rss_peak_kb = max(phase.rss_peak_kb, vm_rss_kb())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)

    async def lag_probe() -> None:
        """How late the event loop wakes a 10 ms sleep: what every callback waits."""
        while not stop.is_set() and time.monotonic() < deadline:
            l0 = time.perf_counter()
            await asyncio.sleep(0.01)
            phase.lags.append(time.perf_counter() - l0 - 0.01)

    async def lane(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set() and time.monotonic() < deadline:
            session = manager.sessions.get(rng.choice(others))
            if session is None:
                phase.failures["device offline"] += 1
            else:
                c0 = time.perf_counter()
                try:
                    await session.netconf.get_config()
                    phase.latencies.append(time.perf_counter() - c0)
                except Exception as exc:
                    phase.failures[type(exc).__name__] += 1
            await asyncio.sleep(args.pause)

    async def restarter() -> None:
        for index in restart:
            if time.monotonic() >= deadline:
                break
            fp = fingerprints[index]
            await fleet.request({"cmd": "close", "first": index, "count": 1}, 30.0)
            gone_by = time.monotonic() + 10.0
            while fp in manager.sessions and time.monotonic() < gone_by:
                await asyncio.sleep(0.01)
            await asyncio.sleep(args.restart_gap)
            ready = manager.when_ready(fp)
            left = max(1.0, deadline - time.monotonic())
            r0 = time.perf_counter()
            reply = await fleet.request(
                {"cmd": "redial", "host": "127.0.0.1", "port": port, "index": index,
                 "timeout": left},
                left + 60.0,
            )  # fmt: skip
            online_s = None
            if reply.get("ok"):
                with contextlib.suppress(TimeoutError):
                    online_s = await asyncio.wait_for(asyncio.shield(ready), 30.0) - r0
            phase.restarts.append(
                {
                    "online_s": online_s,
                    "attempts": reply.get("attempts"),
                    "dial_s": reply.get("wall_s"),
                    "errors": reply.get("errors", [])[-3:],
                }
            )
            await asyncio.sleep(args.restart_gap)

    tasks = [asyncio.ensure_future(sampler()), asyncio.ensure_future(lag_probe())]
    tasks += [asyncio.ensure_future(lane(i)) for i in range(args.lanes)]
    restarts = asyncio.ensure_future(restarter())
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(restarts), args.phase_bound)
        left = args.phase - (time.perf_counter() - t0)
        if left > 0:
            await asyncio.sleep(left)
    finally:
        stop.set()
        restarts.cancel()
        await asyncio.wait(tasks, timeout=args.rpc_bound)
        for task in tasks:
            task.cancel()
    cpu1, t1 = time.process_time(), time.perf_counter()
    wait1 = run_queue_wait_s()
    fleet_cpu1 = (await fleet.request({"cmd": "stats"}, 30.0))["cpu_s"]
    guard = manager.listeners.running[0].guard if manager.listeners.running else None
    if guard is not None:
        guard._report()  # say now what the guard counted since its last line
    lat = sorted(phase.latencies)
    lags = sorted(phase.lags)
    online_times = sorted(r["online_s"] for r in phase.restarts if r["online_s"] is not None)
    return {
        "name": name,
        **GC.since(gc0),
        "wall_s": t1 - t0,
        "cpu_s": cpu1 - cpu0,
        "wait_s": wait1 - wait0,
        "fleet_cpu_s": fleet_cpu1 - fleet_cpu0,
        "online_min": min(phase.online, default=float("nan")),
        "online_mean": statistics.fmean(phase.online) if phase.online else float("nan"),
        "online_samples": len(phase.online),
        "rss_peak_kb": phase.rss_peak_kb,
        "rss_end_kb": vm_rss_kb(),
        "calls": len(lat),
        "call_failures": dict(phase.failures),
        "p50_ms": percentile(lat, 50) * 1e3,
        "p95_ms": percentile(lat, 95) * 1e3,
        "p99_ms": percentile(lat, 99) * 1e3,
        "max_ms": (lat[-1] if lat else float("nan")) * 1e3,
        "lag_p50_ms": percentile(lags, 50) * 1e3,
        "lag_p95_ms": percentile(lags, 95) * 1e3,
        "lag_max_ms": (lags[-1] if lags else float("nan")) * 1e3,
        "restarts": phase.restarts,
        "restart_median_s": statistics.median(online_times) if online_times else None,
        "restart_min_s": online_times[0] if online_times else None,
        "restart_max_s": online_times[-1] if online_times else None,
        "restarts_online": len(online_times),
        "guard_dropped": guard.dropped_total if guard is not None else None,
    }


def flood_argv(
    kind: str, scenario: Scenario, port: int, key: str, args: argparse.Namespace
) -> list[str]:
    first, count = SOURCES[kind]
    if kind == "slowloris" and scenario.one_source:
        count = 1
    argv = ["--kind", kind, "--port", str(port), "--manager-key", key]
    argv += ["--source-first", first, "--source-count", str(count)]
    argv += ["--max-seconds", str(args.phase_bound + args.ramp + 60.0)]
    argv += ["--nice", str(args.flood_nice)]
    if kind == "slowloris":
        argv += ["--sockets", str(args.sockets)]
    elif kind == "garbage":
        argv += ["--rate", str(args.garbage_rate)]
    elif kind == "fresh-keys":
        argv += ["--rate", str(args.fresh_rate)]
    return argv


async def run_role(args: argparse.Namespace) -> dict[str, Any]:
    """One scenario: the manager, its fleet and its floods; the figures as a dict."""
    scenario = SCENARIOS[args.scenario]
    n, warmup, restarts = args.devices, args.warmup, args.restarts
    result: dict[str, Any] = {"scenario": scenario.name, "devices": n}
    counter = LogCounter()
    logger = logging.getLogger("callhome")
    logger.addHandler(counter)
    logger.setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="callhome-flood-") as tmp:
        state = Path(tmp)
        config = ManagerConfig(
            state_dir=state,
            manager=ManagerSection(listen=["127.0.0.1:0"], guard=GuardSection()),
        )
        key = public_line(ensure_key(config.path(config.manager.key)))
        fleet = await FleetProcess.start(
            "product", n + warmup, key, args.concurrency, ["--source-net", LEGIT_NET]
        )
        floods: dict[str, FleetProcess] = {}
        manager: FloodManager | None = None
        try:
            hello = await fleet.receive(timeout=300.0)
            fingerprints: list[str] = hello["fingerprints"]
            store = open_store(config.database_url)
            await store.open()
            now = time.time()
            for i, fp in enumerate(fingerprints):
                await store.pre_approve(fp, hello["key_type"], f"device-{i:05d}", now)
            manager = FloodManager(config, store)
            [port] = await manager.start()
            for kind in scenario.kinds:
                argv = flood_argv(kind, scenario, port, key, args)
                floods[kind] = await FleetProcess.launch(FLOOD, argv)
            for kind, proc in floods.items():
                ready = await proc.receive(timeout=120.0)
                if kind == "hostile":
                    manager.hostile = ready["fingerprint"]
                    await manager.approve(ready["fingerprint"], "hostile", "bench")

            # N devices online
            host = "127.0.0.1"
            if warmup:
                manager.expect(warmup)
                await dial_and_wait(
                    fleet, manager.all_ready, host=host, port=port, first=0, count=warmup,
                    timeout=args.connect_timeout,
                )  # fmt: skip
            manager.expect(n)
            c0 = time.perf_counter()
            dialed = await dial_and_wait(
                fleet, manager.all_ready, host=host, port=port, first=warmup, count=n,
                timeout=args.connect_timeout,
            )  # fmt: skip
            result["connect_s"] = time.perf_counter() - c0
            result["online_at_start"] = manager.ready_count
            result["dial_errors"] = dialed.get("errors", [])[:3]
            measured = list(range(warmup, warmup + n))
            restart = measured[:restarts]
            others = [fingerprints[i] for i in measured[restarts:]]
            await asyncio.sleep(1.0)
            result["rss_connected_kb"] = settled_rss_kb()
            result["tracked_objects"] = len(gc.get_objects())
            if args.gc_freeze:
                gc.freeze()  # what is alive now is never traversed again

            result["quiet"] = await measure(
                "quiet", manager, fleet, port, fingerprints, others, restart, args
            )
            result["rss_before_flood_kb"] = settled_rss_kb()

            starts = {}
            for kind, proc in floods.items():
                starts[kind] = (await proc.request({"cmd": "stats"}, 30.0))["cpu_s"]
            for proc in floods.values():
                proc.send({"cmd": "start"})
            for proc in floods.values():
                await proc.receive(timeout=30.0)
            guard = manager.listeners.running[0].guard if manager.listeners.running else None
            dropped0 = guard.dropped_total if guard is not None else 0
            guard_before = Counter(counter.guard)
            await asyncio.sleep(args.ramp)
            result["flood_after_ramp"] = {
                kind: (await proc.request({"cmd": "stats"}, 30.0)) for kind, proc in floods.items()
            }
            with profiled(args.profile_dir, f"{scenario.name}-flooded.pstats"):
                result["flooded"] = await measure(
                    "flooded", manager, fleet, port, fingerprints, others, restart, args
                )
            flood_stats = {}
            for kind, proc in floods.items():
                stats = await proc.request({"cmd": "stats"}, 30.0)
                stats["cpu_s"] -= starts[kind]
                flood_stats[kind] = stats
            result["floods"] = flood_stats
            if guard is not None:  # both read at once: the flood is still on
                guard._report()
                result["guard_dropped"] = guard.dropped_total - dropped0
            result["guard_reasons"] = dict(counter.guard - guard_before)
            result["guard_lines"] = counter.guard_lines
            for proc in floods.values():
                await proc.stop()
            floods.clear()
            await asyncio.sleep(args.settle)
            gc.collect()
            result["rss_end_kb"] = settled_rss_kb()
            result["online_end"] = sum(1 for fp in others if fp in manager.sessions) / len(others)
            result["hwm_kb"] = _status_kb("VmHWM")
            result["pending_devices"] = sum(
                1 for d in manager.devices.values() if d.status is DeviceStatus.PENDING
            )
            result["hostile_sessions"] = manager.hostile_sessions
            result["hostile_ends"] = dict(manager.hostile_ends.most_common(8))
            result["warnings"] = dict(counter.warnings.most_common(8))
            result["limits"] = NetconfLimits().__dict__
        finally:
            for proc in floods.values():
                await proc.stop()
            await fleet.stop()
            if manager is not None:
                drain_until = time.monotonic() + 20.0
                while manager.sessions and time.monotonic() < drain_until:
                    await asyncio.sleep(0.1)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(manager.stop(), 30.0)
    return result


def run_queue_wait_s() -> float:
    """Seconds this process's threads have been runnable but waiting for a CPU (their
    ``schedstat``): what the machine's other load takes from the manager."""
    total = 0
    with contextlib.suppress(OSError):
        for task in os.listdir("/proc/self/task"):
            path = f"/proc/self/task/{task}/schedstat"
            with contextlib.suppress(OSError, ValueError, IndexError), open(path) as stat:
                total += int(stat.read().split()[1])
    return total / 1e9


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------------------
# Orchestration and the table
# --------------------------------------------------------------------------------------


PASSED = (
    "devices", "warmup", "restarts", "concurrency", "sockets", "garbage_rate", "fresh_rate",
    "lanes", "pause", "phase", "phase_bound", "ramp", "settle", "restart_gap",
    "connect_timeout", "rpc_bound", "flood_nice",
)  # fmt: skip


def run_scenario(name: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--role", "run", "--scenario", name]
    for option in PASSED:
        command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    if args.profile_dir:
        command += ["--profile-dir", args.profile_dir]
    if args.gc_freeze:
        command += ["--gc-freeze"]
    bound = 300.0 + args.connect_timeout + 2 * (args.phase_bound + 60.0) + args.ramp
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=bound)
    except subprocess.TimeoutExpired:
        return {"scenario": name, "error": f"run did not finish within {bound:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"scenario": name, "error": f"run failed (status {done.returncode})"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return f"{seconds * 1e3:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _ratio(flooded: float | None, quiet: float | None) -> float:
    if flooded is None or quiet is None or quiet <= 0:
        return float("nan") if flooded is not None else float("inf")
    return flooded / quiet


def _goal(ratio: float) -> str:
    if ratio != ratio:
        return "n/a"
    return "met" if ratio <= GOAL_RATIO else "MISSED"


def _mib(kb: float) -> str:
    return f"{kb / 1024:.0f} MiB"


def table(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    scenario = SCENARIOS[result["scenario"]]
    head = f"== {scenario.name}: {scenario.describe(args)}"
    if "error" in result:
        return [head, f"   run failed: {result['error']}"]
    q, f = result["quiet"], result["flooded"]
    rows: list[tuple[str, str, str, str, str]] = []

    def row(name: str, quiet: str, flooded: str, ratio: str = "", goal: str = "") -> None:
        rows.append((name, quiet, flooded, ratio, goal))

    row(
        "others online, min / mean of samples",
        f"{q['online_min'] * 100:.1f} / {q['online_mean'] * 100:.1f} %",
        f"{f['online_min'] * 100:.1f} / {f['online_mean'] * 100:.1f} %",
    )
    rq, rf = q["restart_median_s"], f["restart_median_s"]
    ratio = _ratio(rf, rq)
    row(
        f"restarted device online, median of {args.restarts}",
        _ms(rq),
        _ms(rf) + ("" if f["restarts_online"] == args.restarts else
                   f" ({f['restarts_online']}/{args.restarts} came)"),
        f"{ratio:.2f} x",
        f"<= {GOAL_RATIO:g} x {_goal(ratio)}",
    )  # fmt: skip
    row(
        "  min .. max",
        f"{_ms(q['restart_min_s'])} .. {_ms(q['restart_max_s'])}",
        f"{_ms(f['restart_min_s'])} .. {_ms(f['restart_max_s'])}",
    )
    attempts_q = [r["attempts"] for r in q["restarts"]]
    attempts_f = [r["attempts"] for r in f["restarts"]]
    row("  dial attempts each", " ".join(map(str, attempts_q)), " ".join(map(str, attempts_f)))
    row("others' get-config p50", f"{q['p50_ms']:.2f} ms", f"{f['p50_ms']:.2f} ms",
        f"{_ratio(f['p50_ms'], q['p50_ms']):.2f} x")  # fmt: skip
    ratio = _ratio(f["p95_ms"], q["p95_ms"])
    row("others' get-config p95", f"{q['p95_ms']:.2f} ms", f"{f['p95_ms']:.2f} ms",
        f"{ratio:.2f} x", f"<= {GOAL_RATIO:g} x {_goal(ratio)}")  # fmt: skip
    row("others' get-config p99 / max", f"{q['p99_ms']:.1f} / {q['max_ms']:.0f} ms",
        f"{f['p99_ms']:.1f} / {f['max_ms']:.0f} ms")  # fmt: skip
    row("manager event loop lag p50 / p95 / max",
        f"{q['lag_p50_ms']:.1f} / {q['lag_p95_ms']:.1f} / {q['lag_max_ms']:.0f} ms",
        f"{f['lag_p50_ms']:.1f} / {f['lag_p95_ms']:.1f} / {f['lag_max_ms']:.0f} ms")  # fmt: skip
    row("manager GC: full collections, longest, all",
        f"{q['gc_full']}, {q['gc_full_max_ms']:.0f}, {q['gc_full_total_ms']:.0f} ms",
        f"{f['gc_full']}, {f['gc_full_max_ms']:.0f}, {f['gc_full_total_ms']:.0f} ms")  # fmt: skip
    fails_q = sum(q["call_failures"].values())
    fails_f = sum(f["call_failures"].values())
    row("  calls (failed)", f"{q['calls']} ({fails_q})", f"{f['calls']} ({fails_f})")
    row("manager CPU busy", f"{q['cpu_s'] / q['wall_s'] * 100:.0f} %",
        f"{f['cpu_s'] / f['wall_s'] * 100:.0f} %")  # fmt: skip
    row("manager waiting for a CPU (run queue)", f"{q['wait_s'] / q['wall_s'] * 100:.0f} %",
        f"{f['wait_s'] / f['wall_s'] * 100:.0f} %")  # fmt: skip
    row("fleet CPU busy", f"{q['fleet_cpu_s'] / q['wall_s'] * 100:.0f} %",
        f"{f['fleet_cpu_s'] / f['wall_s'] * 100:.0f} %")  # fmt: skip
    grow = f["rss_peak_kb"] - result["rss_before_flood_kb"]
    row("manager RSS peak (sampled)", _mib(q["rss_peak_kb"]), _mib(f["rss_peak_kb"]),
        f"{_ratio(f['rss_peak_kb'], q['rss_peak_kb']):.2f} x",
        f"+{grow / 1024:.0f} MiB over quiet")  # fmt: skip
    row("manager RSS at the end", _mib(result["rss_before_flood_kb"]), _mib(result["rss_end_kb"]),
        f"{_ratio(result['rss_end_kb'], result['rss_before_flood_kb']):.2f} x",
        f"+{(result['rss_end_kb'] - result['rss_before_flood_kb']) / 1024:.0f} MiB, "
        f"flood stopped {args.settle:g} s")  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    heads = ("figure", "quiet", "flooded", "flooded/quiet", "goal")
    widths = [max(w, len(h)) for w, h in zip(widths, heads, strict=True)]
    out = [head, "  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:4], widths[1:4], strict=True)
        ]
        out.append("  ".join([*cells, r[4]]).rstrip())
    out += notes(result, args)
    return out


def notes(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    f = result["flooded"]
    out = []
    reasons = ", ".join(f"{n} {why}" for why, n in sorted(result["guard_reasons"].items()))
    out.append(
        f"  guard dropped or refused {result['guard_dropped']} connections while flooded "
        f"({result['guard_dropped'] / f['wall_s']:.0f}/s); the log's counted lines: "
        f"{reasons or 'none'}"
    )
    wall = f["wall_s"] + args.ramp
    for kind, stats in result["floods"].items():
        counts = stats["counts"]
        opened = counts.get("opened", 0)
        extra = ", ".join(
            f"{n} {k}" for k, n in sorted(counts.items()) if k not in ("opened", "bytes sent")
        )
        held = ""
        if stats.get("held_median_s") is not None:
            held = f", held median {stats['held_median_s']:.2f} s (max {stats['held_max_s']:.1f})"
        ramp = result["flood_after_ramp"].get(kind, {})
        now = f", {ramp.get('open_now')} open after the ramp" if kind == "slowloris" else ""
        out.append(
            f"  {kind}: {opened} connections ({opened / wall:.0f}/s){now}{held}; {extra}; "
            f"its CPU {stats['cpu_s'] / wall * 100:.0f} %"
        )
    if "hostile" in result["floods"]:
        ends = ", ".join(f"{n} x {why}" for why, n in result["hostile_ends"].items())
        sent = result["floods"]["hostile"]["counts"].get("bytes sent", 0)
        out.append(
            f"  hostile device: {result['hostile_sessions']} sessions ready, "
            f"{sent / 2**20:.0f} MiB written; sessions ended: {ends or 'none'}"
        )
    if result.get("pending_devices"):
        out.append(f"  registry: {result['pending_devices']} pending devices recorded")
    if result.get("warnings"):
        shown = "; ".join(f"{n} x {w}" for w, n in list(result["warnings"].items())[:4])
        out.append(f"  other manager warnings: {shown}")
    failures = {**f["call_failures"]}
    if failures:
        out.append(f"  get-config failures while flooded: {failures}")
    out.append(
        f"  online when the flood stopped + {args.settle:g} s: {result['online_end'] * 100:.1f} %; "
        f"manager VmHWM {_mib(result['hwm_kb'])}; connect phase {result['connect_s']:.1f} s; "
        f"{result['tracked_objects']} objects tracked by the GC with N online"
        + (" (then frozen)" if args.gc_freeze else "")
    )
    return out


def orchestrate(args: argparse.Namespace) -> int:
    old, new, hard = raise_nofile_limit()
    print(
        f"flood benchmark: N={args.devices} devices (+{args.warmup} warm-up), each from its own "
        f"address in {LEGIT_NET}; scenarios: {', '.join(args.scenarios)}"
    )
    for line in environment():
        print(line)
    print(
        f"open files: soft limit {old} -> {new} (hard {hard}); manager: Manager + SqlStore "
        f"(SQLite in a temp dir), [manager.guard] and NetconfLimits defaults"
    )
    print(
        f"each phase: >= {args.phase:g} s, {args.restarts} restarts (a device closed, then "
        f"redialed as the agent does), get-config in {args.lanes} lanes with "
        f"{args.pause * 1e3:g} ms pauses; flood measured after a {args.ramp:g} s ramp"
    )
    results = []
    with contextlib.ExitStack() as stack:
        if args.profile:
            args.profile_dir = args.profile_keep or stack.enter_context(
                tempfile.TemporaryDirectory(prefix="callhome-profile-")
            )
            Path(args.profile_dir).mkdir(parents=True, exist_ok=True)
        for name in args.scenarios:
            t0 = time.perf_counter()
            result = run_scenario(name, args)
            results.append(result)
            state = result.get("error") or "done"
            print(f"  scenario {name}: {state} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        for result in results:
            print()
            print("\n".join(table(result, args)))
        if args.profile:
            for name in args.scenarios:
                print(f"\n== cProfile of the manager's event loop thread, {name}, flooded phase ==")
                print(profile_summary(Path(args.profile_dir), f"{name}-flooded.pstats", 25))
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=100, small floods, 2 scenarios")
    parser.add_argument("--devices", type=int, help="legitimate devices N (default 1000)")
    parser.add_argument(
        "--scenarios",
        type=lambda text: text.split(","),
        help=f"comma-separated, of: {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--warmup", type=int, default=8, help="devices connected first")
    parser.add_argument("--restarts", type=int, default=5, help="restarts per phase")
    parser.add_argument("--concurrency", type=int, default=64, help="fleet handshakes in flight")
    parser.add_argument("--sockets", type=int, help="slowloris sockets (2000; quick 300)")
    parser.add_argument("--garbage-rate", type=float, help="garbage connections/s (100; 30)")
    parser.add_argument("--fresh-rate", type=float, help="fresh-key connections/s (50; 20)")
    parser.add_argument("--lanes", type=int, default=4, help="get-config lanes")
    parser.add_argument(
        "--pause", type=float, default=0.02, help="seconds between calls, each lane"
    )
    parser.add_argument("--phase", type=float, help="seconds per phase at least (20; quick 8)")
    parser.add_argument(
        "--phase-bound", type=float, default=150.0, help="seconds per phase at most"
    )
    parser.add_argument("--ramp", type=float, help="seconds of flood before measuring (3; 2)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after the flood")
    parser.add_argument("--restart-gap", type=float, default=0.5, help="seconds between restarts")
    parser.add_argument("--connect-timeout", type=float, help="bound on connecting N, seconds")
    parser.add_argument(
        "--flood-nice",
        type=int,
        default=10,
        help="the flood processes' nice value (10): on one machine they would otherwise take "
        "the CPU the manager needs; an attacker's CPU is elsewhere",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() in the manager once the N devices are online (not the product's "
        "setup: to see what full collections cost)",
    )
    parser.add_argument("--rpc-bound", type=float, default=70.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the manager's flooded phases"
    )
    parser.add_argument("--profile-keep", help="folder to keep the .pstats files in")
    parser.add_argument("--profile-dir", help=argparse.SUPPRESS)
    parser.add_argument("--role", choices=("run",), help=argparse.SUPPRESS)
    parser.add_argument("--scenario", choices=tuple(SCENARIOS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "devices": (1000, 100),
        "sockets": (2000, 300),
        "garbage_rate": (100.0, 30.0),
        "fresh_rate": (50.0, 20.0),
        "phase": (20.0, 8.0),
        "ramp": (3.0, 2.0),
    }
    for name, (full, small) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    if args.scenarios is None:
        args.scenarios = list(QUICK_SCENARIOS if quick else DEFAULT_SCENARIOS)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    if args.connect_timeout is None:
        args.connect_timeout = max(60.0, args.devices * 0.1)
    if args.devices <= args.restarts or args.restarts < 1:
        parser.error("--restarts must be at least 1 and fewer than --devices")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # asyncssh names cryptography's deprecated DSA classes on import, in every process
    os.environ.setdefault("PYTHONWARNINGS", "ignore:DSA is deprecated")
    if args.role:
        raise_nofile_limit()
        result = asyncio.run(run_role(args))
        print(json.dumps(result), flush=True)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
