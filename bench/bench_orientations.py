"""Benchmark of the three call-home orientations side by side: reverse-ssh, reverse-tls, turn.

Run ``python bench/bench_orientations.py`` (N=1000 devices, 3 runs of each side) or
``--quick`` (N=100, one run of each); ``--orientation reverse-ssh|reverse-tls|turn|all``
picks the product sides (default all); the bare asyncssh reverse handshake of
``bench_callhome.py`` is measured in every run as the baseline. See bench/README.md.

Every run of a side is a process of its own (this script with ``--role``) with its own
fleet process (``bench/fleet.py``), as in ``bench_callhome.py``, whose connect phase
(``measure_connect``) every side shares. The device certificates for reverse-tls are
issued once per invocation, one per device, from one CA.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_callhome import (
    CountingManager,
    FleetProcess,
    _median,
    _spread,
    baseline_role,
    environment,
    measure_connect,
    raise_nofile_limit,
)
from callhome.config import (
    CertToNameRule,
    ManagerConfig,
    ManagerSection,
    ManagerTlsSection,
    ManagerTurnSection,
    SshAlgorithms,
)
from callhome.net import pki
from callhome.net.keys import ensure_key, public_line
from callhome.storage import open_store
from fleet import device_name, tls_files

SIDES = {
    "reverse-ssh": ("reverse-ssh",),
    "reverse-tls": ("tls-pinned", "tls-mapped"),
    "turn": ("turn",),
}
TITLES = {
    "baseline": "bare asyncssh reverse handshake [baseline]",
    "reverse-ssh": "reverse-ssh",
    "tls-pinned": "reverse-tls, pinned fingerprints",
    "tls-mapped": "reverse-tls, CA + cert-to-name",
    "turn": "turn",
}
FLEET_MODE = {"reverse-ssh": "product", "tls-pinned": "tls", "tls-mapped": "tls", "turn": "turn"}


# --------------------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------------------


def issue_certificates(directory: Path, count: int) -> float:
    """A CA in ``directory/ca``, the manager's certificate in ``directory/manager`` and one
    P-256 certificate per device (``fleet.tls_files``, DNS name = the device's name).
    Returns the seconds it took."""
    t0 = time.perf_counter()
    ca = pki.init_ca(directory / "ca", "bench CA")
    pki.issue(ca, "manager", "manager", out=directory / "manager")
    for index in range(count):
        pki.issue(ca, "device", device_name(index), out=directory / "devices")
    assert tls_files(directory, count - 1)[0].exists()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------------------
# Manager side of one run
# --------------------------------------------------------------------------------------


def manager_config(side: str, state: Path, tls_dir: Path, database: str) -> ManagerConfig:
    """The product's manager configured to listen for one orientation only, on 127.0.0.1:0."""
    here = ["127.0.0.1:0"]
    tls, turn = ManagerTlsSection(), ManagerTurnSection()
    if side == "turn":
        turn = ManagerTurnSection(listen=here)
    elif side.startswith("tls-"):
        ca = tls_dir / "ca" / "ca.crt"
        mapped = side == "tls-mapped"
        tls = ManagerTlsSection(
            listen=here,
            cert=tls_dir / "manager" / "manager.crt",
            key=tls_dir / "manager" / "manager.key",
            ca=[ca] if mapped else [],
            cert_to_name=(
                [CertToNameRule(fingerprint=pki.file_fingerprint(ca), map_type="san-dns-name")]
                if mapped
                else []
            ),
            allow_pinned=not mapped,
        )
    section = ManagerSection(listen=here if side == "reverse-ssh" else [], tls=tls, turn=turn)
    url = {"default": None, "sqlite": f"sqlite:///{state / 'manager.db'}", "memory": "memory://"}
    return ManagerConfig(state_dir=state, database=url[database], manager=section)


def identities(side: str, hello: dict[str, Any]) -> tuple[list[str], str]:
    """What to pre-approve for each device, and its key type."""
    fingerprints: list[str] = hello["fingerprints"]
    if side == "tls-mapped":
        names = [pki.MAPPED_PREFIX + device_name(i) for i in range(len(fingerprints))]
        return names, hello["key_type"]
    return fingerprints, hello["key_type"]


async def orientation_role(args: argparse.Namespace) -> dict[str, Any]:
    """One run of the product's Manager listening for one orientation, against a fleet."""
    side, n, warmup = args.role, args.devices, args.warmup
    result: dict[str, Any] = {"role": side, "devices": n}
    with tempfile.TemporaryDirectory(prefix="callhome-bench-") as tmp:
        config = manager_config(side, Path(tmp), Path(args.tls_dir or tmp), args.database)
        # what the devices must know of the manager: its SSH key (reverse-ssh) or its turn
        # host key (turn); reverse-tls devices trust the CA in --tls-dir
        key_file = config.manager.turn.host_key if side == "turn" else config.manager.key
        manager_key = public_line(ensure_key(config.path(key_file)))
        extra = ["--tls-dir", args.tls_dir] if side.startswith("tls-") else []
        fleet = await FleetProcess.start(
            FLEET_MODE[side], n + warmup, manager_key, args.concurrency, extra
        )
        manager: CountingManager | None = None
        try:
            hello = await fleet.receive(timeout=300.0)
            result["fleet_setup_s"] = hello["setup_s"]
            names, key_type = identities(side, hello)
            store = open_store(config.database_url)
            await store.open()
            now = time.time()
            for i, identity in enumerate(names):
                await store.pre_approve(identity, key_type, device_name(i), now)
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
                    profile_name=f"{side}-connect.pstats",
                )
            )
            orientations = {s.orientation.value for s in manager.sessions.values()}
            result["orientations"] = sorted(orientations)
            stats = await fleet.request({"cmd": "stats"}, 30.0)
            result.update(fleet_rss_kb=stats["rss_kb"], tls_versions=stats["tls_versions"])
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
# Orchestration and the table
# --------------------------------------------------------------------------------------


def run_side(side: str, args: argparse.Namespace, tls_dir: Path) -> dict[str, Any]:
    """Run one side once in a process of its own; its result is the last line it prints."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--role",
        side,
        "--devices",
        str(args.devices),
        "--warmup",
        str(args.warmup),
        "--concurrency",
        str(args.concurrency),
        "--settle",
        str(args.settle),
        "--connect-timeout",
        str(args.connect_timeout),
        "--database",
        args.database,
        "--tls-dir",
        str(tls_dir),
    ]
    bound = 300.0 + args.connect_timeout * 2 + 60.0
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=bound)
    except subprocess.TimeoutExpired:
        return {"role": side, "error": f"run did not finish within {bound:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"role": side, "error": f"run failed (status {done.returncode})"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def report(
    args: argparse.Namespace, sides: list[str], results: list[dict[str, Any]], notes: list[str]
) -> str:
    good = [r for r in results if "error" not in r and r.get("online")]

    def figures(side: str) -> dict[str, list[float]]:
        runs = [r for r in good if r["role"] == side]
        return {
            "rate": [r["online"] / r["connect_wall_s"] for r in runs],
            "cpu": [r["connect_cpu_s"] / r["online"] * 1e6 for r in runs],
            "rss": [(r["rss_after_kb"] - r["rss_before_kb"]) / r["online"] for r in runs],
            "fleet": [r["fleet_connect_cpu_s"] / r["online"] * 1e6 for r in runs],
            "busy": [r["connect_cpu_s"] / r["connect_wall_s"] * 100 for r in runs],
        }

    table = {side: figures(side) for side in ["baseline", *sides]}
    base_cpu = _median(table["baseline"]["cpu"])
    ssh_cpu = _median(table["reverse-ssh"]["cpu"]) if "reverse-ssh" in table else float("nan")
    head = (
        "side",
        "online/s",
        "mgr CPU/device",
        "/ baseline",
        "/ reverse-ssh",
        "mgr RSS/idle dev",
        "mgr busy",
        "fleet CPU/dev",
        "runs",
    )
    rows = [head]
    for side, f in table.items():
        cpu = _median(f["cpu"])
        rows.append(
            (
                TITLES[side],
                f"{_median(f['rate']):.0f}/s",
                f"{cpu:.0f} us",
                f"{cpu / base_cpu:.2f} x",
                f"{cpu / ssh_cpu:.2f} x" if ssh_cpu == ssh_cpu else "-",  # nan: not run
                f"{_median(f['rss']):.1f} KiB",
                f"{_median(f['busy']):.0f} %",
                f"{_median(f['fleet']):.0f} us",
                str(len(f["cpu"])),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    out = [
        f"call-home orientations: N={args.devices} devices (+{args.warmup} warm-up), "
        f"{args.repeat} run(s) of each side",
        *environment(),
        *notes,
        "",
    ]
    for i, line in enumerate(rows):
        cells = [line[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]
        out.append("  ".join(cells))
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    if args.repeat > 1:
        out += ["", "min .. max over runs (manager CPU per device; RSS per idle device):"]
        for side, f in table.items():
            out.append(
                f"  {TITLES[side]}: {_spread(f['cpu'], '.0f')} us; {_spread(f['rss'], '.1f')} KiB"
            )
    out.append("")
    for side, label in (("tls-pinned", "pinned"), ("tls-mapped", "CA + cert-to-name")):
        versions = sorted({v for r in good if r["role"] == side for v in r["tls_versions"]})
        if versions:
            out.append(f"reverse-tls, {label}: negotiated {', '.join(versions)}")
    for r in good:
        expected = {"baseline": [], "tls-pinned": ["reverse-tls"], "tls-mapped": ["reverse-tls"]}
        sessions = r.get("orientations", [])
        if sessions != expected.get(r["role"], [r["role"]]):
            out.append(f"run of {r['role']}: the manager's sessions were {sessions}")
    for r in results:
        if "error" in r:
            out.append(f"run of {r['role']} failed: {r['error']}")
        elif r.get("online", 0) < args.devices:
            bound = f" within {args.connect_timeout:.0f} s" if r.get("timed_out") else ""
            out.append(
                f"run of {r['role']}: only {r.get('online')} of {args.devices} devices came "
                f"online{bound}; first errors: {r.get('dial_errors') or 'none reported'}"
            )
    return "\n".join(out).rstrip()


def orchestrate(args: argparse.Namespace) -> int:
    old, new, hard = raise_nofile_limit()
    sides = [s for o in SIDES if args.orientation in (o, "all") for s in SIDES[o]]
    needed = 2 * (args.devices + args.warmup) + 256
    if new < needed:
        print(f"warning: open-file limit {new} is below the ~{needed} this run needs")
    algorithms = SshAlgorithms()
    notes = [
        f"open files: soft limit {old} -> {new} (hard {hard}); fleet: {args.concurrency} "
        f"handshakes in flight at most; manager store: {args.database} "
        f"({ManagerConfig().database_url.split(':')[0]} in a temp dir by default)",
        f"ssh (reverse-ssh, turn, baseline): kex {algorithms.kex[0]}, cipher "
        f"{algorithms.ciphers[0]}, Ed25519 keys; each side: the product's Manager listening "
        "for that orientation alone, every device pre-approved",
    ]
    with tempfile.TemporaryDirectory(prefix="callhome-bench-pki-") as tmp:
        tls_dir = Path(tmp)
        if any(s.startswith("tls-") for s in sides):
            count = args.devices + args.warmup
            seconds = issue_certificates(tls_dir, count)
            notes.append(
                f"reverse-tls: one P-256 certificate per device ({count}, issued by one P-256 CA "
                f"in {seconds:.1f} s); pinned: no CA configured, each certificate "
                "fingerprint pre-approved; CA + cert-to-name: the CA and one san-dns-name rule, "
                "x509-name:NAME pre-approved for each"
            )
        results: list[dict[str, Any]] = []
        order = ["baseline", *sides]
        for rep in range(args.repeat):
            for side in order[rep % len(order) :] + order[: rep % len(order)]:
                t0 = time.perf_counter()
                result = run_side(side, args, tls_dir)
                results.append(result)
                state = result.get("error") or f"{result.get('online')} online"
                print(
                    f"  run {rep + 1}/{args.repeat} {side}: {state} "
                    f"({time.perf_counter() - t0:.1f} s)",
                    file=sys.stderr,
                )
    print(report(args, sides, results, notes))
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: N=100, one run each")
    parser.add_argument(
        "--orientation", choices=[*SIDES, "all"], default="all", help="product sides to run"
    )
    parser.add_argument("--devices", type=int, help="simulated devices N (default 1000)")
    parser.add_argument("--repeat", type=int, help="runs of each side (default 3, quick 1)")
    parser.add_argument("--warmup", type=int, help="devices connected before measuring")
    parser.add_argument("--concurrency", type=int, default=64, help="handshakes in flight")
    parser.add_argument("--settle", type=float, default=1.0, help="idle seconds before RSS")
    parser.add_argument("--connect-timeout", type=float, help="bound on the connect phase, s")
    parser.add_argument("--database", choices=("default", "sqlite", "memory"), default="default")
    parser.add_argument("--role", choices=["baseline", *FLEET_MODE], help=argparse.SUPPRESS)
    parser.add_argument("--tls-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.devices is None:
        args.devices = 100 if args.quick else 1000
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.warmup is None:
        args.warmup = 4 if args.quick else 8
    if args.connect_timeout is None:
        args.connect_timeout = max(30.0, args.devices * 0.1)
    if args.devices < 1 or args.repeat < 1 or args.warmup < 0:
        parser.error("--devices and --repeat must be positive, --warmup not negative")
    args.profile_dir = None  # measure_connect's cProfile hook is not used here
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role:
        raise_nofile_limit()
        role = baseline_role if args.role == "baseline" else orientation_role
        result = asyncio.run(role(args))
        print(json.dumps(result), flush=True)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
