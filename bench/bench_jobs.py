"""Benchmark of durable jobs: the enqueue rate and the drain of queued jobs, each beside a baseline.

Run ``python bench/bench_jobs.py`` (enqueue: 5,000 jobs over 50 devices; drain: N=1000
devices with 10 queued get-config jobs each; 3 runs of each side) or ``--quick`` (1,000 jobs;
N=100; one run of each). See bench/README.md for what every figure means.

Every run is a process of its own (this script with ``--role``); a drain run starts its fleet
of simulated devices (``bench/fleet.py``) as another process, so that the manager's CPU time
is its own. Runs of the two sides alternate; the tables show medians.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lxml import etree
from sqlalchemy import create_engine, event
from sqlalchemy.pool import Pool

from bench_callhome import (
    CountingManager,
    FleetProcess,
    aggregate_run,
    environment,
    profile_summary,
    raise_nofile_limit,
)
from callhome.config import ManagerConfig, ManagerSection
from callhome.manager.jobs import MAX_READS_IN_FLIGHT
from callhome.manager.service import Manager
from callhome.net.keys import ensure_key, public_line
from callhome.proto.netconf import operations
from callhome.storage import open_store
from callhome.storage.jobs import Job, JobState
from callhome.storage.schema import metadata
from callhome.storage.sql import SqlStore

ACTOR = "bench"
STORE_THREAD = "callhome-store"

# --------------------------------------------------------------------------------------
# Measuring helpers: SQL counters, per-thread CPU, profiling of both threads
# --------------------------------------------------------------------------------------


class SqlCounter:
    """What the store asks of SQLite, counted without slowing it much: transactions are pool
    checkouts (``SqlStore`` checks a connection out for each), statements and write commits
    come from SQLite's own trace of each connection (``set_trace_callback``: pysqlite sends
    ``BEGIN`` before the first write of a transaction and ``COMMIT`` at its end; a read-only
    transaction reaches SQLite as its SELECTs alone).

    No SQLAlchemy execution event is used: a listener on those moves every statement off
    SQLAlchemy's fast path, which costs more than the count is worth."""

    def __init__(self) -> None:
        self.transactions = 0
        self.statements = 0
        self.write_commits = 0

    def install(self) -> None:
        event.listen(Pool, "connect", self._connected)
        event.listen(Pool, "checkout", self._checkout)

    def _connected(self, dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.set_trace_callback(self._trace)

    def _checkout(self, *_args: Any) -> None:
        self.transactions += 1

    def _trace(self, statement: str) -> None:
        if statement.startswith("COMMIT"):
            self.write_commits += 1
        elif not statement.startswith(("BEGIN", "ROLLBACK")):
            self.statements += 1

    def snapshot(self) -> dict[str, int]:
        return {
            "transactions": self.transactions,
            "statements": self.statements,
            "write_commits": self.write_commits,
        }


SQL = SqlCounter()


def delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    return {key: after[key] - before[key] for key in after}


class Clocks:
    """CPU clocks of this process, of the event loop's thread and of the store's thread."""

    def __init__(self, store_ident: int | None) -> None:
        self._store_clock = (
            time.pthread_getcpuclockid(store_ident) if store_ident is not None else None
        )

    def read(self) -> dict[str, float]:
        store = time.clock_gettime(self._store_clock) if self._store_clock is not None else 0.0
        return {
            "wall_s": time.perf_counter(),
            "cpu_s": time.process_time(),
            "loop_cpu_s": time.thread_time(),
            "store_cpu_s": store,
        }


async def store_thread_ident(store: Any) -> int | None:
    """The id of the thread a SqlStore runs its transactions in (None for another store).

    ``_run`` is how SqlStore carries out a transaction in its worker thread (see
    ``callhome.storage.sql_jobs``): the function runs there."""
    if not isinstance(store, SqlStore):
        return None
    ident: int = await store._run(lambda _conn: threading.get_ident())
    return ident


class BothThreads:
    """cProfile of the event loop's thread and of the store's thread, saved on ``stop``.

    The clock of each is its own thread's CPU time: waits are not counted."""

    def __init__(self, directory: str | None, prefix: str, store: Any) -> None:
        self.directory, self.prefix, self.store = directory, prefix, store
        self.loop = cProfile.Profile(time.thread_time)
        self.worker = cProfile.Profile(time.thread_time)

    async def start(self) -> None:
        if not self.directory:
            return
        await self.store._run(lambda _conn: self.worker.enable())
        self.loop.enable()

    async def stop(self) -> None:
        if not self.directory:
            return
        self.loop.disable()
        await self.store._run(lambda _conn: self.worker.disable())
        self.loop.dump_stats(Path(self.directory) / f"{self.prefix}-loop.pstats")
        self.worker.dump_stats(Path(self.directory) / f"{self.prefix}-store.pstats")


def get_config_op() -> etree._Element:
    return operations.op_get_config("running")


def netconf_payload() -> dict[str, Any]:
    """What ``Manager.submit_netconf`` stores for a get-config (for the direct enqueue)."""
    op = get_config_op()
    return {"operation": etree.tostring(op).decode(), "name": etree.QName(op).localname}


def bench_config(state: Path) -> ManagerConfig:
    return ManagerConfig(state_dir=state, manager=ManagerSection(listen=["127.0.0.1:0"]))


async def pre_approve(url: str, fingerprints: list[str], names: list[str], key_type: str) -> None:
    store = open_store(url)
    await store.open()
    try:
        now = time.time()
        for fp, name in zip(fingerprints, names, strict=True):
            await store.pre_approve(fp, key_type, name, now)
    finally:
        await store.close()


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def job_states(path: Path) -> dict[str, int]:
    """How many jobs are in each state, read from the database file by a connection of its own
    (WAL: it reads beside the store's)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
    finally:
        conn.close()


# --------------------------------------------------------------------------------------
# Enqueue: the product's paths and the bare sqlite3 baselines, each on a fresh database
# --------------------------------------------------------------------------------------

PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON")
"""What SqlStore sets on every SQLite connection (``callhome.storage.sql._sqlite_pragmas``)."""

INSERT_JOB = (
    "INSERT INTO jobs (device, kind, payload, actor, created, not_before, expires, state, "
    "updated, attempts, read_only, retry_safe, result) "
    "VALUES (?, 'netconf', ?, ?, ?, ?, ?, 'queued', ?, 0, 1, 0, '{}')"
)
COUNT_QUEUED = "SELECT count(*) FROM jobs WHERE device = ? AND state = 'queued'"
INSERT_EVENT = "INSERT INTO events (time, kind, device, fingerprint, detail) VALUES (?, ?, ?, ?, ?)"


def make_schema(path: Path) -> None:
    """The product's tables and indexes in a new SQLite file (``metadata.create_all``)."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()


def bare_connection(path: Path) -> sqlite3.Connection:
    make_schema(path)
    conn = sqlite3.connect(path, check_same_thread=False)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


def bare_counts(jobs: int, statements: int) -> dict[str, int]:
    """The counts of a bare variant: one transaction and one commit per job, by construction."""
    return {"transactions": jobs, "write_commits": jobs, "statements": jobs * statements}


class EnqueueRun:
    """One variant: ``count`` jobs round-robin over ``devices``, one at a time, after
    ``warmup`` unmeasured ones; stops early at ``deadline`` (what was done is kept)."""

    def __init__(self, args: argparse.Namespace, directory: Path) -> None:
        self.count, self.warmup = args.enqueue_jobs, args.enqueue_warmup
        self.names = [f"device-{i:03d}" for i in range(args.enqueue_devices)]
        self.directory = directory
        self.deadline = time.monotonic() + args.phase_timeout
        self.payload_text = json.dumps(netconf_payload())
        self.expiry = ManagerConfig().jobs.default_expiry
        self.profile_dir: str | None = None

    async def measure(
        self, step: Callable[[str], Awaitable[Any]], store: Any = None
    ) -> dict[str, Any]:
        names = self.names
        for i in range(self.warmup):
            await step(names[i % len(names)])
        clocks = Clocks(await store_thread_ident(store) if store is not None else None)
        profile = BothThreads(self.profile_dir, "enqueue", store) if store is not None else None
        if profile is not None:
            await profile.start()
        sql0, c0 = SQL.snapshot(), clocks.read()
        done = 0
        for i in range(self.count):
            if time.monotonic() >= self.deadline:
                break
            await step(names[i % len(names)])
            done += 1
        c1, sql1 = clocks.read(), SQL.snapshot()
        if profile is not None:
            await profile.stop()
        return {"jobs": done, **delta(c1, c0), **delta(sql1, sql0)}

    def bare_row(self, name: str) -> tuple[Any, ...]:
        now = time.time()
        return (name, self.payload_text, ACTOR, now, now, now + self.expiry, now)

    async def bare(self) -> dict[str, Any]:
        """One INSERT into the product's ``jobs`` table and a commit, synchronously."""
        conn = bare_connection(self.directory / "bare.db")
        try:

            async def step(name: str) -> None:
                conn.execute(INSERT_JOB, self.bare_row(name))
                conn.commit()

            result = await self.measure(step)
        finally:
            conn.close()
        return {**result, **bare_counts(result["jobs"], 1)}

    async def bare_hop(self) -> dict[str, Any]:
        """The same, each transaction handed to one worker thread (``run_in_executor``)."""
        conn = bare_connection(self.directory / "hop.db")
        executor = ThreadPoolExecutor(1, thread_name_prefix="bench-hop")
        loop = asyncio.get_running_loop()

        def insert(name: str) -> None:
            conn.execute(INSERT_JOB, self.bare_row(name))
            conn.commit()

        try:

            async def step(name: str) -> None:
                await loop.run_in_executor(executor, insert, name)

            result = await self.measure(step)
        finally:
            executor.shutdown(wait=True)
            conn.close()
        return {**result, **bare_counts(result["jobs"], 1)}

    async def bare_enqueue_sql(self) -> dict[str, Any]:
        """The statements ``enqueue_job`` runs (queue count, job insert, event insert) and a
        commit, through sqlite3 synchronously."""
        conn = bare_connection(self.directory / "sql.db")
        try:

            async def step(name: str) -> None:
                (queued,) = conn.execute(COUNT_QUEUED, (name,)).fetchone()
                if queued >= 1000:
                    raise RuntimeError("queue full")
                row = self.bare_row(name)
                (job_id,) = conn.execute(INSERT_JOB + " RETURNING id", row).fetchone()
                detail = {"job": job_id, "state": "queued", "attempts": 0, "kind": "netconf"}
                conn.execute(INSERT_EVENT, (row[3], "job-queued", name, None, json.dumps(detail)))
                conn.commit()

            result = await self.measure(step)
        finally:
            conn.close()
        return {**result, **bare_counts(result["jobs"], 3)}

    async def store_enqueue(self) -> dict[str, Any]:
        """``SqlStore.enqueue_job`` at the product's default URL, as ``Dispatcher.submit``
        calls it (read-only job, the default expiry, the default queue limit)."""
        config = bench_config(self.directory)
        store = open_store(config.database_url)
        await store.open()
        payload = netconf_payload()
        limit = config.jobs.max_queued_per_device
        try:

            async def step(name: str) -> Job:
                now = time.time()
                return await store.enqueue_job(
                    name,
                    "netconf",
                    payload,
                    actor=ACTOR,
                    now=now,
                    read_only=True,
                    expires=now + self.expiry,
                    max_queued=limit,
                )

            return await self.measure(step, store)
        finally:
            await store.close()

    async def manager_submit(self) -> dict[str, Any]:
        """``Manager.submit_netconf`` on a started Manager (listening, no device connected),
        the devices pre-approved."""
        config = bench_config(self.directory)
        ensure_key(config.path(config.manager.key))
        fingerprints = [f"SHA256:bench-{name}" for name in self.names]
        await pre_approve(config.database_url, fingerprints, self.names, "ssh-ed25519")
        manager = Manager(config, open_store(config.database_url))
        await manager.start()
        try:

            async def step(name: str) -> Job:
                return await manager.submit_netconf(name, get_config_op(), ACTOR)

            return await self.measure(step, manager.store)
        finally:
            await manager.stop()


ENQUEUE_VARIANTS = ("bare", "bare_hop", "bare_enqueue_sql", "store_enqueue", "manager_submit")


async def enqueue_role(args: argparse.Namespace) -> dict[str, Any]:
    SQL.install()
    shift = args.rotation % len(ENQUEUE_VARIANTS)
    order = ENQUEUE_VARIANTS[shift:] + ENQUEUE_VARIANTS[:shift]
    if args.rotation % 2:
        order = tuple(reversed(order))
    result: dict[str, Any] = {"role": "enqueue", "order": list(order)}
    with tempfile.TemporaryDirectory(prefix="callhome-bench-jobs-") as tmp:
        for name in order:
            directory = Path(tmp) / name
            directory.mkdir()
            run = EnqueueRun(args, directory)
            if name == "manager_submit":
                run.profile_dir = args.profile_dir
            result[name] = await getattr(run, name)()
    return result


# --------------------------------------------------------------------------------------
# Drain: N devices with queued jobs call home at once (product) or are asked directly
# --------------------------------------------------------------------------------------


class DrainManager(CountingManager):
    """The product's Manager; sets ``jobs_done`` once ``expect_jobs(n)`` jobs are final,
    and notes when the first job started and the last one ended."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobs_done = asyncio.Event()
        self.expect_jobs(0)

    def expect_jobs(self, count: int) -> None:
        self.jobs_done.clear()
        self._jobs_expected = count
        self.final: dict[str, int] = {}
        self.first_running: float | None = None
        self.last_final: float | None = None
        self.all_ready_at: float | None = None

    async def session_ready(self, session: Any) -> None:
        await super().session_ready(session)
        if self.all_ready.is_set() and self.all_ready_at is None:
            self.all_ready_at = time.perf_counter()

    async def _job_changed(self, job: Job) -> None:
        await super()._job_changed(job)
        if job.state is JobState.RUNNING:
            if self.first_running is None:
                self.first_running = time.perf_counter()
        elif job.final:
            self.final[job.state.value] = self.final.get(job.state.value, 0) + 1
            self.last_final = time.perf_counter()
            if sum(self.final.values()) >= self._jobs_expected:
                self.jobs_done.set()


@contextlib.contextmanager
def dialing(
    fleet: FleetProcess, port: int, first: int, count: int, timeout: float
) -> Iterator[asyncio.Future[dict[str, Any]]]:
    """Have the fleet dial devices first..first+count-1; yields the future of its answer."""
    fleet.send(
        {
            "cmd": "dial",
            "host": "127.0.0.1",
            "port": port,
            "first": first,
            "count": count,
            "timeout": timeout,
        }
    )
    answer = asyncio.ensure_future(fleet.receive(timeout + 60.0))
    try:
        yield answer
    finally:
        if not answer.done():
            answer.cancel()


async def settle_answer(answer: asyncio.Future[dict[str, Any]], timeout: float) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(answer, timeout)
    except (TimeoutError, RuntimeError, asyncio.CancelledError) as exc:
        return {"event": "dialed", "ok": -1, "failed": -1, "errors": [repr(exc)], "cpu_s": 0.0}


async def wait_event(ev: asyncio.Event, timeout: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ev.wait(), timeout)
    return ev.is_set()


async def stop_all(fleet: FleetProcess, manager: CountingManager | None) -> None:
    await fleet.stop()
    if manager is not None:
        until = time.monotonic() + 30.0
        while manager.sessions and time.monotonic() < until:
            await asyncio.sleep(0.1)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(manager.stop(), 30.0)


async def drain_role(args: argparse.Namespace) -> dict[str, Any]:
    """One run of either side; ``args.role`` says which (``product`` or ``direct``)."""
    SQL.install()
    product = args.role == "product"
    n, warm, per = args.devices, args.warmup, args.jobs_per_device
    result: dict[str, Any] = {"role": args.role, "devices": n, "per_device": per}
    with tempfile.TemporaryDirectory(prefix="callhome-bench-jobs-") as tmp:
        config = bench_config(Path(tmp))
        url = config.database_url
        manager_key = ensure_key(config.path(config.manager.key))
        fleet = await FleetProcess.start(
            "product", n + warm, public_line(manager_key), args.concurrency
        )
        manager: DrainManager | None = None
        try:
            hello = await fleet.receive(timeout=120.0)
            names = [f"device-{i:05d}" for i in range(n + warm)]
            await pre_approve(url, hello["fingerprints"], names, hello["key_type"])
            manager = DrainManager(config, open_store(url))
            [port] = await manager.start()
            clocks = Clocks(await store_thread_ident(manager.store))

            if product:  # every job queued while the devices are offline, round-robin
                op = get_config_op()
                deadline = time.monotonic() + args.phase_timeout
                c0, queued = clocks.read(), 0
                for _ in range(per):
                    for name in names:
                        if time.monotonic() >= deadline:
                            break
                        await manager.submit_netconf(name, op, ACTOR)
                        queued += 1
                c1 = clocks.read()
                result.update(queued=queued, enqueue_wall_s=c1["wall_s"] - c0["wall_s"])
                result["enqueue_cpu_s"] = c1["cpu_s"] - c0["cpu_s"]

            if warm:  # one-time costs (imports, statement caches) not charged to the N
                manager.expect(warm)
                manager.expect_jobs(warm * per)
                with dialing(fleet, port, 0, warm, args.connect_timeout) as answer:
                    await wait_event(manager.all_ready, args.connect_timeout)
                    if product:
                        await wait_event(manager.jobs_done, args.phase_timeout)
                    else:
                        sessions = list(manager.sessions.values())
                        await aggregate_run(sessions, per, time.monotonic() + args.phase_timeout)
                    await settle_answer(answer, 30.0)
            await asyncio.sleep(0.2)
            fleet_cpu0 = (await fleet.request({"cmd": "stats"}, 30.0))["cpu_s"]

            manager.expect(n)
            manager.expect_jobs(n * per)
            measured = set(hello["fingerprints"][warm:])
            profile = BothThreads(args.profile_dir, "drain", manager.store)
            await profile.start()
            sql0, c0 = SQL.snapshot(), clocks.read()
            with dialing(fleet, port, warm, n, args.connect_timeout) as answer:
                if product:
                    finished = await wait_event(manager.jobs_done, args.drain_timeout)
                    c2, sql2 = clocks.read(), SQL.snapshot()
                    c1 = c0
                else:
                    finished = await wait_event(manager.all_ready, args.connect_timeout)
                    c1 = clocks.read()
                    sessions = [s for fp, s in manager.sessions.items() if fp in measured]
                    deadline = time.monotonic() + args.drain_timeout
                    answered, failed, _ = await aggregate_run(sessions, per, deadline)
                    c2, sql2 = clocks.read(), SQL.snapshot()
                    result.update(answered=answered, call_failed=failed)
                await profile.stop()
                dialed = await settle_answer(answer, 60.0)
            fleet_cpu1 = (await fleet.request({"cmd": "stats"}, 30.0))["cpu_s"]
            result.update(
                finished=finished,
                online=manager.ready_count,
                dial_failed=dialed.get("failed"),
                dial_errors=dialed.get("errors", [])[:3],
                fleet_dial_wall_s=dialed.get("wall_s", float("nan")),
                fleet_cpu_s=fleet_cpu1 - fleet_cpu0,
                total=delta(c2, c0),
                sql=delta(sql2, sql0),
            )
            if not product:
                result.update(connect=delta(c1, c0), direct=delta(c2, c1))
            else:
                t0 = c0["wall_s"]
                result["final"] = dict(manager.final)
                for key, mark in (
                    ("all_ready_s", manager.all_ready_at),
                    ("first_running_s", manager.first_running),
                    ("last_final_s", manager.last_final),
                ):
                    result[key] = None if mark is None else mark - t0
                result["states"] = job_states(sqlite_path(url))
        finally:
            await stop_all(fleet, manager)
    return result


# --------------------------------------------------------------------------------------
# Orchestration and the tables
# --------------------------------------------------------------------------------------


def run_role(
    role: str, args: argparse.Namespace, rotation: int = 0, profile_dir: str | None = None
) -> dict[str, Any]:
    """Run one side once in a process of its own; its result is the last line it prints."""
    command = [sys.executable, str(Path(__file__).resolve()), "--role", role]
    for option in (
        "devices",
        "warmup",
        "jobs_per_device",
        "concurrency",
        "enqueue_jobs",
        "enqueue_devices",
        "enqueue_warmup",
        "connect_timeout",
        "phase_timeout",
        "drain_timeout",
    ):
        command += ["--" + option.replace("_", "-"), str(getattr(args, option))]
    command += ["--rotation", str(rotation)]
    if profile_dir:
        command += ["--profile-dir", profile_dir]
    if role == "enqueue":
        bound = 60.0 + len(ENQUEUE_VARIANTS) * (args.phase_timeout + 30.0)
    else:
        bound = 180.0 + args.phase_timeout * 2 + args.connect_timeout + args.drain_timeout
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=bound)
    except subprocess.TimeoutExpired:
        return {"role": role, "error": f"run did not finish within {bound:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"role": role, "error": f"run failed (status {done.returncode})"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def file_system(path: str) -> str:
    """The file system ``path`` is on, from /proc/mounts (longest matching mount point)."""
    best = ("", "unknown", "?")
    with contextlib.suppress(OSError), open("/proc/mounts") as mounts:
        for line in mounts:
            parts = line.split()
            if len(parts) < 3:
                continue
            device, point, kind = parts[0], parts[1], parts[2]
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > len(
                best[0]
            ):
                best = (point, kind, device)
    return f"{path} on {best[1]} ({best[2]} at {best[0]})"


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float], fmt: str) -> str:
    if len(values) < 2:
        return ""
    return f"{format(min(values), fmt)} .. {format(max(values), fmt)}"


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add(self, name: str, values: list[float], fmt: str, unit: str) -> None:
        value = med(values)
        shown = "n/a" if value != value else f"{format(value, fmt)} {unit}".rstrip()
        self.rows.append((name, shown, spread(values, fmt)))

    def ratio(self, name: str, top: list[float], bottom: list[float]) -> None:
        """Ratio of the medians; the spread is that of the runs paired in order."""
        pairs = [a / b for a, b in zip(top, bottom, strict=False) if b]
        value = med(top) / med(bottom) if top and bottom and med(bottom) else float("nan")
        self.rows.append(
            (name, "n/a" if value != value else f"{value:.2f} x", spread(pairs, ".2f"))
        )

    def note(self, text: str) -> None:
        self.rows.append((text, "", ""))

    def render(self) -> list[str]:
        widths = [
            max(len(r[i]) for r in [("figure", "median", "min .. max"), *self.rows])
            for i in range(3)
        ]
        out = [
            "  ".join(
                h.ljust(w) for h, w in zip(("figure", "median", "min .. max"), widths, strict=True)
            ),
            "  ".join("-" * w for w in widths),
        ]
        for name, value, rng in self.rows:
            if not value:
                out.append(name)
                continue
            out.append(f"{name.ljust(widths[0])}  {value.rjust(widths[1])}  {rng}".rstrip())
        return out


ENQUEUE_TITLES = {
    "bare": "bare INSERT + commit (sqlite3, same thread)  [baseline]",
    "bare_hop": "bare INSERT + commit, one thread hop each",
    "bare_enqueue_sql": "enqueue_job's SQL, bare (count + 2 INSERTs + commit)",
    "store_enqueue": "SqlStore.enqueue_job",
    "manager_submit": "Manager.submit_netconf",
}


def enqueue_report(args: argparse.Namespace, runs: list[dict[str, Any]]) -> list[str]:
    ok = [r for r in runs if "error" not in r]
    table = Table()

    def values(variant: str, fn: Callable[[dict[str, Any]], float]) -> list[float]:
        return [fn(r[variant]) for r in ok if r.get(variant, {}).get("jobs")]

    def rate(m: dict[str, Any]) -> float:
        return float(m["jobs"] / m["wall_s"])

    def cpu_us(m: dict[str, Any]) -> float:
        return float(m["cpu_s"] / m["jobs"] * 1e6)

    def wall_us(m: dict[str, Any]) -> float:
        return float(m["wall_s"] / m["jobs"] * 1e6)

    for variant in ENQUEUE_VARIANTS:
        table.add(f"{ENQUEUE_TITLES[variant]}: jobs/s", values(variant, rate), ".0f", "/s")
    for variant in ENQUEUE_VARIANTS:
        table.add(f"{ENQUEUE_TITLES[variant]}: CPU/job", values(variant, cpu_us), ".0f", "us")
    for variant in ("store_enqueue", "manager_submit"):
        title = ENQUEUE_TITLES[variant]
        table.ratio(
            f"{title} / baseline, wall per job",
            values(variant, wall_us),
            values("bare", wall_us),
        )
        table.ratio(
            f"{title} / baseline, CPU per job", values(variant, cpu_us), values("bare", cpu_us)
        )
    for variant in ("store_enqueue", "manager_submit"):
        title = ENQUEUE_TITLES[variant]
        per = {
            key: values(variant, lambda m, k=key: m[k] / m["jobs"])
            for key in ("transactions", "write_commits", "statements")
        }
        table.add(f"{title}: transactions per job", per["transactions"], ".2f", "")
        table.add(f"{title}: of which write (WAL) commits", per["write_commits"], ".2f", "")
        table.add(f"{title}: SQL statements per job", per["statements"], ".2f", "")
        loop = values(variant, lambda m: m["loop_cpu_s"] / m["jobs"] * 1e6)
        table.add(f"{title}: CPU/job in the event loop's thread", loop, ".0f", "us")
        store = values(variant, lambda m: m["store_cpu_s"] / m["jobs"] * 1e6)
        table.add(f"{title}: CPU/job in the store's thread", store, ".0f", "us")
    out = [
        "",
        f"== enqueue: {args.enqueue_jobs} jobs round-robin over {args.enqueue_devices} "
        f"offline pre-approved devices, one at a time, after {args.enqueue_warmup} unmeasured; "
        f"{len(ok)} runs ==",
        *table.render(),
    ]
    out += [f"run failed: {r['error']}" for r in runs if "error" in r]
    for r in ok:
        short = [v for v in ENQUEUE_VARIANTS if r[v]["jobs"] < args.enqueue_jobs]
        if short:
            out.append(f"run cut short by --phase-timeout in: {', '.join(short)}")
    return out


def drain_report(args: argparse.Namespace, runs: list[dict[str, Any]]) -> list[str]:
    product = [r for r in runs if r.get("role") == "product" and "error" not in r]
    direct = [r for r in runs if r.get("role") == "direct" and "error" not in r]
    n, per = args.devices, args.jobs_per_device
    jobs = n * per
    table = Table()

    def done_jobs(r: dict[str, Any]) -> int:
        return int(r["final"].get("succeeded", 0))

    p_total = [r["total"]["wall_s"] for r in product]
    d_total = [r["total"]["wall_s"] for r in direct]
    table.add(f"first dial -> all {jobs} jobs succeeded (product)", p_total, ".2f", "s")
    table.add(f"first dial -> all {n} ready + {jobs} get-config (baseline)", d_total, ".2f", "s")
    table.ratio("product / baseline, wall", p_total, d_total)
    table.add(
        "jobs/s, first dial -> last job done (product)",
        [done_jobs(r) / r["total"]["wall_s"] for r in product],
        ".0f",
        "/s",
    )
    table.add(
        "get-config/s, first dial -> last reply (baseline)",
        [r["answered"] / r["total"]["wall_s"] for r in direct],
        ".0f",
        "/s",
    )
    window = [
        done_jobs(r) / (r["last_final_s"] - r["first_running_s"])
        for r in product
        if r.get("last_final_s") and r.get("first_running_s") is not None
    ]
    table.add("jobs/s, first job started -> last job done (product)", window, ".0f", "/s")
    table.add(
        "get-config/s, all connected -> last reply (baseline)",
        [r["answered"] / r["direct"]["wall_s"] for r in direct],
        ".0f",
        "/s",
    )
    table.add(
        f"first dial -> all {n} ready (product, jobs running meanwhile)",
        [r["all_ready_s"] for r in product if r.get("all_ready_s") is not None],
        ".2f",
        "s",
    )
    table.add(
        f"first dial -> all {n} ready (baseline)",
        [r["connect"]["wall_s"] for r in direct],
        ".2f",
        "s",
    )
    p_cpu = [r["total"]["cpu_s"] / jobs * 1e6 for r in product]
    d_cpu = [r["total"]["cpu_s"] / jobs * 1e6 for r in direct]
    table.add("manager CPU per job, connects included (product)", p_cpu, ".0f", "us")
    table.add("manager CPU per get-config, connects included (baseline)", d_cpu, ".0f", "us")
    table.ratio("product / baseline, manager CPU", p_cpu, d_cpu)
    table.add(
        "  what a job costs beyond a direct get-config (runs paired)",
        [p - d for p, d in zip(p_cpu, d_cpu, strict=False)],
        ".0f",
        "us",
    )
    table.add(
        "manager CPU per get-config, direct phase only (baseline)",
        [r["direct"]["cpu_s"] / max(1, r["answered"]) * 1e6 for r in direct],
        ".0f",
        "us",
    )
    table.add(
        "manager CPU busy, first dial -> done (product; 100 % = one core)",
        [r["total"]["cpu_s"] / r["total"]["wall_s"] * 100 for r in product],
        ".0f",
        "%",
    )
    for side, runs, what in (("product", product, "job"), ("baseline", direct, "get-config")):
        for key, thread in (("loop_cpu_s", "event loop's"), ("store_cpu_s", "store's")):
            table.add(
                f"  {thread} thread CPU per {what}, connects included ({side})",
                [r["total"][key] / jobs * 1e6 for r in runs],
                ".0f",
                "us",
            )
    table.add(
        "manager CPU busy, first dial -> done (baseline; 100 % = one core)",
        [r["total"]["cpu_s"] / r["total"]["wall_s"] * 100 for r in direct],
        ".0f",
        "%",
    )
    table.add(
        "store transactions per job (product)",
        [r["sql"]["transactions"] / jobs for r in product],
        ".2f",
        "",
    )
    table.add(
        "  of which write (WAL) commits",
        [r["sql"]["write_commits"] / jobs for r in product],
        ".2f",
        "",
    )
    table.add(
        "  SQL statements per job",
        [r["sql"]["statements"] / jobs for r in product],
        ".2f",
        "",
    )
    table.add(
        "store transactions per device (baseline: connect, no job)",
        [r["sql"]["transactions"] / n for r in direct],
        ".2f",
        "",
    )
    table.add(
        "fleet CPU per job (product)", [r["fleet_cpu_s"] / jobs * 1e6 for r in product], ".0f", "us"
    )
    table.add(
        "fleet CPU per get-config (baseline)",
        [r["fleet_cpu_s"] / jobs * 1e6 for r in direct],
        ".0f",
        "us",
    )
    table.add(
        f"enqueue before the drain: Manager.submit_netconf, {n + args.warmup} devices",
        [r["queued"] / r["enqueue_wall_s"] for r in product if r.get("enqueue_wall_s")],
        ".0f",
        "/s",
    )
    out = [
        "",
        f"== drain: N={n} devices (+{args.warmup} warm-up) with {per} queued get-config jobs "
        f"each ({jobs} jobs), all calling home at once; {len(product)} product and "
        f"{len(direct)} baseline runs ==",
        *table.render(),
    ]
    out += [f"run of {r['role']} failed: {r['error']}" for r in runs if "error" in r]
    for r in product:
        states = r.get("states", {})
        bad = {k: v for k, v in states.items() if k != "succeeded"}
        if not r.get("finished") or bad or r.get("online", 0) < n:
            out.append(
                f"run of product: {r.get('online')} of {n} online; jobs by state in the "
                f"store {states}; first dial errors: {r.get('dial_errors') or 'none'}"
            )
    for r in direct:
        if r.get("answered", 0) < jobs or r.get("online", 0) < n:
            out.append(
                f"run of baseline: {r.get('online')} of {n} online, {r.get('answered')} of "
                f"{jobs} get-config answered; first dial errors: {r.get('dial_errors') or 'none'}"
            )
    return out


def run_profiles(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="callhome-profile-") as tmp:
        print(
            "\ncProfile, one more run of each product path: CPU time of the event loop's thread "
            "and of the store's thread, each under its own profiler (inflated by profiling)"
        )
        if args.only in (None, "enqueue"):
            result = run_role("enqueue", args, profile_dir=tmp)
            if "error" in result:
                print(f"profiled enqueue run failed: {result['error']}")
        if args.only in (None, "drain"):
            result = run_role("product", args, profile_dir=tmp)
            if "error" in result:
                print(f"profiled drain run failed: {result['error']}")
        for name, title in (
            ("enqueue-loop.pstats", "Manager.submit_netconf, event loop thread"),
            ("enqueue-store.pstats", "Manager.submit_netconf, store thread"),
            ("drain-loop.pstats", "drain (connects included), event loop thread"),
            ("drain-store.pstats", "drain (connects included), store thread"),
        ):
            if (Path(tmp) / name).exists():
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
    lines = [
        f"callhome jobs benchmark: {args.repeat} runs of each side",
        *environment(),
        f"database: ManagerConfig.database_url ({ManagerConfig().database_url.split(':')[0]}, "
        f"SqlStore's worker thread), pragmas {', '.join(p.split()[1] for p in PRAGMAS)}; "
        f"temp dir {file_system(tempfile.gettempdir())}",
        f"open files: soft limit {old} -> {new} (hard {hard}); fleet: {args.concurrency} "
        f"handshakes in flight at most; the dispatcher runs up to {MAX_READS_IN_FLIGHT} "
        "read-only jobs per device at once",
    ]
    enqueue_runs: list[dict[str, Any]] = []
    drain_runs: list[dict[str, Any]] = []
    for rep in range(args.repeat):
        if args.only in (None, "enqueue"):
            t0 = time.perf_counter()
            result = run_role("enqueue", args, rotation=rep)
            enqueue_runs.append(result)
            state = result.get("error") or "done"
            wall = time.perf_counter() - t0
            print(
                f"  run {rep + 1}/{args.repeat} enqueue: {state} ({wall:.1f} s)",
                file=sys.stderr,
            )
        if args.only in (None, "drain"):
            order = ("direct", "product") if rep % 2 == 0 else ("product", "direct")
            for role in order:
                t0 = time.perf_counter()
                result = run_role(role, args)
                drain_runs.append(result)
                state = result.get("error") or f"{result.get('online')} online"
                print(
                    f"  run {rep + 1}/{args.repeat} drain {role}: {state} "
                    f"({time.perf_counter() - t0:.1f} s)",
                    file=sys.stderr,
                )
    if enqueue_runs:
        lines += enqueue_report(args, enqueue_runs)
    if drain_runs:
        lines += drain_report(args, drain_runs)
    print("\n".join(lines))
    if args.profile:
        run_profiles(args)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, one run")
    parser.add_argument("--only", choices=("enqueue", "drain"), help="run one part only")
    parser.add_argument("--repeat", type=int, help="runs of each side (default 3, quick 1)")
    parser.add_argument("--enqueue-jobs", type=int, help="jobs per enqueue variant (5000)")
    parser.add_argument("--enqueue-devices", type=int, default=50, help="devices to spread over")
    parser.add_argument("--enqueue-warmup", type=int, default=100, help="unmeasured enqueues")
    parser.add_argument("--devices", type=int, help="drain: devices N (default 1000, quick 100)")
    parser.add_argument("--jobs-per-device", type=int, default=10, help="drain: jobs per device")
    parser.add_argument("--warmup", type=int, help="drain: devices drained before measuring")
    parser.add_argument("--concurrency", type=int, default=64, help="handshakes in flight")
    parser.add_argument("--connect-timeout", type=float, help="bound on connecting, s")
    parser.add_argument("--phase-timeout", type=float, default=120.0, help="bound per phase, s")
    parser.add_argument("--drain-timeout", type=float, help="bound on the measured drain, s")
    parser.add_argument("--profile", action="store_true", help="one more run under cProfile")
    parser.add_argument("--profile-top", type=int, default=25, help="functions to list")
    parser.add_argument("--profile-keep", help="folder to keep the .pstats files in")
    parser.add_argument("--role", choices=("enqueue", "product", "direct"), help=argparse.SUPPRESS)
    parser.add_argument("--rotation", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--profile-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    if args.repeat is None:
        args.repeat = 1 if quick else 3
    if args.enqueue_jobs is None:
        args.enqueue_jobs = 1000 if quick else 5000
    if args.devices is None:
        args.devices = 100 if quick else 1000
    if args.warmup is None:
        args.warmup = 4 if quick else 8
    if args.connect_timeout is None:
        args.connect_timeout = max(30.0, args.devices * 0.1)
    if args.drain_timeout is None:
        args.drain_timeout = max(120.0, args.devices * args.jobs_per_device * 0.03)
    if (
        min(args.repeat, args.enqueue_jobs, args.enqueue_devices, args.devices) < 1
        or min(args.warmup, args.enqueue_warmup, args.jobs_per_device) < 0
    ):
        parser.error("counts must be positive (warm-ups and jobs per device not negative)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role:
        raise_nofile_limit()
        role = enqueue_role if args.role == "enqueue" else drain_role
        result = asyncio.run(role(args))
        print(json.dumps(result), flush=True)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
