"""Benchmark of terminals and forwards through call home: ``callhome connect`` throughput and
``callhome shell`` keystroke echo latency, each beside a direct loopback baseline.

Run ``python bench/bench_terminal.py`` (64 MiB copies, 3 runs of each; 200 keystrokes) or
``--quick`` (8 MiB, 3 runs; 100 keystrokes). See bench/README.md for what every figure means.

A real manager and a real agent run as processes of their own (tests/harness.py), with an
OpenSSH ``sshd`` and a TCP sink on loopback ports on the device's side. The agent's
``[[access]]`` allows a terminal (``/bin/sh``) and forwards to those two ports only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import pty
import pwd
import resource
import select
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
# tests/harness.py (real manager and agent processes on loopback) is imported where it is
# used, so that the helper roles (the sink, the direct sender) start as fast as a bare Python
sys.path.insert(0, str(HERE.parent / "tests"))
if TYPE_CHECKING:
    from harness import Proc

SSHD = "/usr/sbin/sshd"
USER = pwd.getpwuid(os.getuid()).pw_name
CHUNK = 64 * 1024
MB = 1e6
LETTERS = b"abcdefghijklmnopqrstuvwxyz"
PROMPT = b"<RDY> "


# --------------------------------------------------------------------------------------
# Helper roles: the TCP sink on the device's side, the direct TCP sender
# --------------------------------------------------------------------------------------


def sink_role() -> int:
    """Accept on a loopback port; for every connection, read to EOF, close, and print one
    JSON line: bytes read, and when (CLOCK_MONOTONIC, shared by every process) the
    connection was accepted and its first and last bytes arrived."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
    lock = threading.Lock()

    def serve(conn: socket.socket, accepted: float) -> None:
        buffer = bytearray(1 << 20)
        total, first, last = 0, 0.0, 0.0
        with conn:
            while n := conn.recv_into(buffer):
                last = time.monotonic()
                if not total:
                    first = last
                total += n
        with lock:
            line = {"bytes": total, "accepted": accepted, "first": first, "last": last}
            print(json.dumps(line), flush=True)

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, time.monotonic()), daemon=True).start()


def send_role(port: int, path: str) -> int:
    """Copy a file to 127.0.0.1:port in CHUNK reads and sendall; half-close and wait for
    the peer to close, as ``callhome connect`` does."""
    with socket.create_connection(("127.0.0.1", port)) as conn, open(path, "rb") as f:
        while data := f.read(CHUNK):
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(CHUNK):
            pass
    return 0


# --------------------------------------------------------------------------------------
# Processes and their CPU time
# --------------------------------------------------------------------------------------


def proc_cpu(pid: int, children: bool = False) -> float:
    """CPU seconds of a process (utime + stime), with its reaped children's if asked."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def start_sshd(directory: Path) -> tuple[Proc, int]:
    """An sshd on a loopback port from the OS, with a host key and one client key."""
    from harness import Proc, os_port

    directory.mkdir()
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / name)],
            check=True,
            timeout=10,
        )
    (directory / "authorized_keys").write_text((directory / "client_key.pub").read_text())
    sftp = next(
        (
            p
            for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server")
            if Path(p).exists()
        ),
        None,
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    port = os_port()
    config = directory / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1:{port}\n"
        f"HostKey {directory / 'host_key'}\n"
        f"AuthorizedKeysFile {directory / 'authorized_keys'}\n"
        "StrictModes no\nUsePAM no\nPidFile none\nPrintMotd no\nPrintLastLog no\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nMaxStartups 100\n"
        + (f"Subsystem sftp {sftp}\n" if sftp else "")
    )
    proc = Proc([SSHD, "-D", "-e", "-f", str(config)], name="sshd")
    proc.wait_for("Server listening", timeout=15)
    return proc, port


class Setup:
    """Manager, agent, sshd and sink, all on loopback; the device is named ``dev1``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[Callable[[], Any]] = []

    def start(self) -> Setup:
        from harness import AgentProc, ManagerProc, Proc, wait_until

        tmp = self.tmp
        self.sshd, self.sshd_port = start_sshd(tmp / "sshd")
        self.procs.append(self.sshd.stop)
        self.sink = Proc([sys.executable, __file__, "--role", "sink"], name="sink")
        self.procs.append(self.sink.stop)
        self.sink_port = int(json.loads(self.sink.wait_for(r"\{.*port.*\}").group(0))["port"])
        self.manager = ManagerProc(tmp / "manager").start()
        self.procs.append(self.manager.stop)
        self.agent = AgentProc(
            tmp / "dev", [f"127.0.0.1:{self.manager.port}"], [self.manager.public_key]
        )
        with open(self.agent.directory / "agent.toml", "a") as f:
            f.write(
                '\n[[access]]\nmanager = "*"\nshell = true\ncommand = "/bin/sh"\n'
                f'forward = ["127.0.0.1:{self.sshd_port}", "127.0.0.1:{self.sink_port}"]\n'
            )
        self.agent.start()
        self.procs.append(self.agent.stop)
        wait_until(lambda: self.manager.status(self.agent.fingerprint) == "pending", 60)
        approve = self.manager.cli("approve", self.agent.fingerprint, "--name", "dev1")
        if approve.returncode != 0:
            raise RuntimeError(f"approve failed: {approve.stderr}")
        wait_until(lambda: self.manager.status(self.agent.fingerprint) == "online", 60)

        d = tmp / "sshd"
        host_key = (d / "host_key.pub").read_text().strip()
        known = tmp / "known_hosts"
        known.write_text(f"dev1 {host_key}\n[127.0.0.1]:{self.sshd_port} {host_key}\n")
        self.env = {**os.environ, **self.manager.env}
        self.ssh_opts = [
            "-F", "/dev/null",
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "LogLevel=ERROR",
            "-o", "ControlMaster=no",
            "-o", f"UserKnownHostsFile={known}",
            "-o", "StrictHostKeyChecking=yes",
            "-i", str(d / "client_key"),
        ]  # fmt: skip
        self.proxy = f"{sys.executable} -m callhome.cli.main connect %h {self.sshd_port}"
        return self

    def ssh(self, via: bool, *, port_flag: str = "-p") -> tuple[list[str], str]:
        """Options and destination host for ssh (``port_flag="-P"`` for scp)."""
        if via:
            return [*self.ssh_opts, "-o", f"ProxyCommand={self.proxy}"], f"{USER}@dev1"
        return [*self.ssh_opts, port_flag, str(self.sshd_port)], f"{USER}@127.0.0.1"

    def sink_lines(self) -> int:
        return sum(1 for line in list(self.sink.lines) if '"bytes"' in line)

    def sink_result(self, index: int, timeout: float) -> dict[str, Any]:
        from harness import wait_until

        def get() -> dict[str, Any] | None:
            lines = [line for line in list(self.sink.lines) if '"bytes"' in line]
            return json.loads(lines[index]) if len(lines) > index else None

        result: dict[str, Any] = wait_until(get, timeout)
        return result

    def cpu(self) -> dict[str, float]:
        pids = {
            "manager": (self.manager.proc, False),
            "agent": (self.agent.proc, False),
            "sshd": (self.sshd, True),
        }
        out = {n: proc_cpu(p.proc.pid, ch) for n, (p, ch) in pids.items() if p is not None}
        out["client"] = children_cpu()
        return out

    def stop(self) -> None:
        for stop in reversed(self.procs):
            with contextlib.suppress(Exception):
                stop()


# --------------------------------------------------------------------------------------
# Throughput
# --------------------------------------------------------------------------------------


def timed(
    setup: Setup, argv: list[str], stdin: Path | None, timeout: float
) -> tuple[float, dict[str, float], str]:
    """Run one client command to its end: wall seconds, CPU seconds by process, error."""
    before = setup.cpu()
    start = time.monotonic()
    with contextlib.ExitStack() as stack:
        f = stack.enter_context(open(stdin, "rb")) if stdin else subprocess.DEVNULL
        proc = subprocess.Popen(
            argv,
            stdin=f,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=setup.env,
            start_new_session=True,
        )
        try:
            _, err = proc.communicate(timeout=timeout)
            error = "" if proc.returncode == 0 else f"exit {proc.returncode}: {err[-300:]!r}"
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            error = f"timed out after {timeout:.0f} s"
    wall = time.monotonic() - start
    after = setup.cpu()
    return wall, {k: after[k] - before[k] for k in after}, error


def throughput_run(
    setup: Setup, case: str, via: bool, payload: Path, size: int, timeout: float
) -> dict[str, Any]:
    from harness import PY

    result: dict[str, Any] = {"case": case, "via": via}
    if case in ("raw", "raw-connect"):
        index = setup.sink_lines()
        if via:
            argv = [*PY, "connect", "dev1", str(setup.sink_port)]
            stdin: Path | None = payload
        else:
            argv = [sys.executable, __file__, "--role", "send", str(setup.sink_port), str(payload)]
            stdin = None
        started = time.monotonic()
        wall, cpu, error = timed(setup, argv, stdin, timeout)
        if not error:
            sink = setup.sink_result(index, 10.0)
            if sink["bytes"] != size:
                error = f"the sink read {sink['bytes']} bytes of {size}"
            elif sink["last"] > sink["first"]:
                result["stream_s"] = sink["last"] - sink["first"]
                result["first_byte_s"] = sink["first"] - started
    elif case == "ssh-cat":
        opts, dest = setup.ssh(via)
        wall, cpu, error = timed(setup, ["ssh", *opts, dest, "cat > /dev/null"], payload, timeout)
    elif case == "scp":
        opts, dest = setup.ssh(via, port_flag="-P")
        target = setup.tmp / "scp-target.bin"
        shm = Path("/dev/shm")
        if shm.is_dir() and os.access(shm, os.W_OK):
            target = shm / f"callhome-bench-{os.getpid()}.bin"
        argv = ["scp", "-q", *opts, str(payload), f"{dest}:{target}"]
        wall, cpu, error = timed(setup, argv, None, timeout)
        if not error and (not target.exists() or target.stat().st_size != size):
            error = "the copy is missing or short"
        with contextlib.suppress(OSError):
            target.unlink()
    elif case == "ssh-true":
        opts, dest = setup.ssh(via)
        wall, cpu, error = timed(setup, ["ssh", *opts, dest, "true"], None, timeout)
    else:
        raise ValueError(case)
    result.update(wall_s=wall, cpu=cpu)
    if error:
        result["error"] = error
    return result


# --------------------------------------------------------------------------------------
# Keystroke echo latency
# --------------------------------------------------------------------------------------


class PtyReader:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def until(self, token: bytes, timeout: float) -> None:
        """Read until ``token`` has arrived; drop what came up to and including it."""
        deadline = time.monotonic() + timeout
        while (i := self.buffer.find(token)) < 0:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError(f"waited {timeout} s for {token!r}; got {self.buffer[-200:]!r}")
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                data = b""
            if not data:
                raise EOFError(f"the terminal closed; last output {self.buffer[-200:]!r}")
            self.buffer += data
        self.buffer = self.buffer[i + len(token) :]


def keystroke_run(
    argv: list[str], env: dict[str, str], keys: int, warmup: int, line: int, budget: float
) -> dict[str, Any]:
    """Spawn ``argv`` under a pty (80x24), set a prompt, then type ``warmup + keys``
    letters one at a time, each timed from the write to the moment its echo is read.
    Lines are comments (``#`` first) ended every ``line`` letters by Enter."""
    pid, fd = pty.fork()
    if pid == 0:  # the child
        try:
            os.execvpe(argv[0], argv, {**env, "TERM": "xterm", "PS1": "$ ", "ENV": ""})
        finally:
            os._exit(127)
    fcntl_winsize(fd, 24, 80)
    reader = PtyReader(fd)
    samples: list[float] = []
    result: dict[str, Any] = {}
    started = time.monotonic()
    try:
        os.write(fd, b"PS1='<''RDY> '\n")
        reader.until(PROMPT, 60)
        result["start_s"] = time.monotonic() - started
        deadline = time.monotonic() + budget
        typed = 0
        while typed < warmup + keys and time.monotonic() < deadline:
            os.write(fd, b"#")
            reader.until(b"#", 10)
            for _ in range(min(line, warmup + keys - typed)):
                key = LETTERS[typed % len(LETTERS) : typed % len(LETTERS) + 1]
                t0 = time.perf_counter()
                os.write(fd, key)
                reader.until(key, 10)
                if typed >= warmup:
                    samples.append(time.perf_counter() - t0)
                typed += 1
            os.write(fd, b"\n")
            reader.until(PROMPT, 10)
        os.write(fd, b"exit\n")
    except (TimeoutError, EOFError, OSError) as exc:
        result["error"] = str(exc)
    finally:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with contextlib.suppress(OSError):
                if select.select([fd], [], [], 0.05)[0]:
                    os.read(fd, 65536)
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    result["samples"] = samples
    return result


def fcntl_winsize(fd: int, rows: int, cols: int) -> None:
    import fcntl

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def latency_cases(setup: Setup) -> list[tuple[str, list[str]]]:
    from harness import PY

    direct_opts, direct = setup.ssh(False)
    via_opts, via = setup.ssh(True)
    return [
        ("local /bin/sh under a pty [floor]", ["/bin/sh"]),
        ("ssh -tt direct to sshd [baseline]", ["ssh", "-tt", *direct_opts, direct, "/bin/sh"]),
        ("callhome shell [product]", [*PY, "shell", "dev1"]),
        ("ssh -tt via callhome connect", ["ssh", "-tt", *via_opts, via, "/bin/sh"]),
    ]


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of values sorted ascending."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(p / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _spread(values: list[float], fmt: str) -> str:
    if len(values) < 2:
        return ""
    return f"{format(min(values), fmt)} .. {format(max(values), fmt)}"


def environment() -> list[str]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = []
    for dist in ("asyncssh", "websockets", "cryptography"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{dist} {metadata.version(dist)}")
    openssh = subprocess.run(["ssh", "-V"], capture_output=True, text=True, timeout=10)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        + ", ".join(versions),
        f"{ssl.OPENSSL_VERSION}; {openssh.stderr.strip()}",
        f"cpu: {cpu}; {os.cpu_count()} cores; load average at start {load}",
    ]


def table(rows: list[tuple[str, str, str]], head: tuple[str, str, str]) -> list[str]:
    widths = [max(len(r[i]) for r in [*rows, head]) for i in range(3)]
    out = [
        "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    for name, value, spread in rows:
        out.append("  ".join([name.ljust(widths[0]), value.rjust(widths[1]), spread]).rstrip())
    return out


THROUGHPUT_CASES = [
    ("raw", False, "raw TCP: direct loopback copy [baseline]"),
    ("raw-connect", True, "raw TCP: callhome connect [product]"),
    ("ssh-cat", False, "ssh cat>/dev/null: direct [baseline]"),
    ("ssh-cat", True, "ssh cat>/dev/null: via callhome connect"),
    ("scp", False, "scp: direct [baseline]"),
    ("scp", True, "scp: via callhome connect"),
]


def report_throughput(
    results: list[dict[str, Any]], size: int, setup_runs: list[dict[str, Any]]
) -> list[str]:
    rows: list[tuple[str, str, str]] = []

    def runs(case: str, via: bool) -> list[dict[str, Any]]:
        return [r for r in results if r["case"] == case and r["via"] == via and "error" not in r]

    def row(name: str, values: list[float], fmt: str, unit: str) -> None:
        rows.append((name, f"{format(_median(values), fmt)} {unit}", _spread(values, fmt)))

    rates: dict[tuple[str, bool], list[float]] = {}
    for case, via, label in THROUGHPUT_CASES:
        rs = runs(case, via)
        rates[(case, via)] = [size / r["wall_s"] / MB for r in rs]
        row(f"{label}, end to end", rates[(case, via)], ".1f", "MB/s")
        overhead = _median(
            [r["wall_s"] for r in setup_runs if r["via"] == via and "error" not in r]
        )
        if case in ("ssh-cat", "scp") and overhead == overhead:
            net = [size / (r["wall_s"] - overhead) / MB for r in rs if r["wall_s"] > overhead]
            row("  less connection setup (median ssh true)", net, ".1f", "MB/s")
        if case.startswith("raw"):
            streaming = [size / r["stream_s"] / MB for r in rs if r.get("stream_s")]
            row("  streaming (sink: first -> last byte)", streaming, ".1f", "MB/s")
            first = [r["first_byte_s"] * 1e3 for r in rs if "first_byte_s" in r]
            row("  start -> first byte at the sink", first, ".0f", "ms")
        if via:
            base = rates[(case if case != "raw-connect" else "raw", False)]
            ratio = _median(rates[(case, via)]) / _median(base) if base else float("nan")
            pairs = [v / b for v, b in zip(rates[(case, via)], base, strict=False)]
            rows.append(("  / direct, end to end", f"{ratio:.2f} x", _spread(pairs, ".2f")))
            if case.startswith("raw"):
                s_via = [size / r["stream_s"] for r in rs if r.get("stream_s")]
                s_dir = [size / r["stream_s"] for r in runs("raw", False) if r.get("stream_s")]
                if s_via and s_dir:
                    sr = _median(s_via) / _median(s_dir)
                    rows.append(("  / direct, streaming", f"{sr:.2f} x", ""))
            for proc in ("manager", "agent"):
                per_mb = [r["cpu"][proc] / (size / MB) * 1e3 for r in rs]
                row(f"  {proc} CPU per MB", per_mb, ".1f", "ms")
            per_mb = [r["cpu"]["client"] / (size / MB) * 1e3 for r in rs]
            row("  client CPU per MB (ssh/scp + callhome connect)", per_mb, ".1f", "ms")
    for via in (False, True):
        values = [r["wall_s"] * 1e3 for r in setup_runs if r["via"] == via and "error" not in r]
        label = "via callhome connect" if via else "direct"
        row(f"ssh true (connection setup), {label}", values, ".0f", "ms")
    return table(rows, ("figure", "median", "min .. max"))


def report_latency(results: dict[str, dict[str, Any]]) -> list[str]:
    rows: list[tuple[str, str, str]] = []
    for name, r in results.items():
        samples = sorted(r.get("samples", []))
        if not samples:
            rows.append((name, "n/a", r.get("error", "")[:60]))
            continue
        p50, p90, p99 = (percentile(samples, p) * 1e3 for p in (50, 90, 99))
        rows.append(
            (
                f"{name} (n={len(samples)})",
                f"{p50:.2f} / {p90:.2f} / {p99:.2f} ms",
                f"{min(samples) * 1e3:.2f} .. {max(samples) * 1e3:.2f}",
            )
        )
    return table(rows, ("keystroke -> echo", "p50 / p90 / p99", "min .. max"))


# --------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def running(tmp: Path) -> Iterator[Setup]:
    setup = Setup(tmp)
    try:
        yield setup.start()
    finally:
        setup.stop()


def orchestrate(args: argparse.Namespace) -> int:
    for program in ("ssh", "scp", "ssh-keygen", SSHD):
        if shutil.which(program) is None and not os.access(program, os.X_OK):
            print(f"needs {program}", file=sys.stderr)
            return 2
    size = args.size_mib * 1024 * 1024
    header = [
        f"callhome terminal benchmark: {args.size_mib} MiB copies x {args.repeat} runs each, "
        f"{args.keys} keystrokes (+{args.warmup} warm-up) per terminal",
        *environment(),
    ]
    print("\n".join(header), flush=True)
    notes: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="callhome-bench-") as tmpdir,
        running(Path(tmpdir)) as setup,
    ):
        payload = Path(tmpdir) / "payload.bin"
        with open(payload, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1024 * 1024))
        timeout = max(60.0, args.size_mib * 2.0)

        throughput: list[dict[str, Any]] = []
        setup_runs: list[dict[str, Any]] = []
        if not args.skip_throughput:
            # one unmeasured pass of each, then runs in an order that rotates
            for case, via, _ in THROUGHPUT_CASES:
                throughput_run(setup, case, via, payload, size, timeout)
            for i in range(args.repeat):
                order = THROUGHPUT_CASES if i % 2 == 0 else THROUGHPUT_CASES[::-1]
                for case, via, label in order:
                    r = throughput_run(setup, case, via, payload, size, timeout)
                    throughput.append(r)
                    if "error" in r:
                        notes.append(f"{label}, run {i + 1}: {r['error']}")
                    print(f"  {label}: {size / r['wall_s'] / MB:.1f} MB/s", flush=True)
            for _ in range(args.setup_runs):
                for via in (False, True):
                    r = throughput_run(setup, "ssh-true", via, payload, size, 60.0)
                    setup_runs.append(r)
                    if "error" in r:
                        notes.append(f"ssh true (via={via}): {r['error']}")

        latency: dict[str, dict[str, Any]] = {}
        if not args.skip_latency:
            for name, argv in latency_cases(setup):
                r = keystroke_run(argv, setup.env, args.keys, args.warmup, 40, args.key_budget)
                latency[name] = r
                if "error" in r:
                    notes.append(f"{name}: {r['error']}")
                samples = sorted(r["samples"])
                print(f"  {name}: p50 {percentile(samples, 50) * 1e3:.2f} ms", flush=True)

    out = [""]
    if throughput or setup_runs:
        out += [*report_throughput(throughput, size, setup_runs), ""]
    if latency:
        out += [*report_latency(latency), ""]
    out += notes
    print("\n".join(out))
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="8 MiB copies, 100 keystrokes")
    p.add_argument("--size-mib", type=int, help="size of the copied file (64; 8 with --quick)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each copy (3)")
    p.add_argument("--setup-runs", type=int, default=5, help="runs of ssh true each way (5)")
    p.add_argument("--keys", type=int, help="measured keystrokes per terminal (200; 100)")
    p.add_argument("--warmup", type=int, default=10, help="unmeasured keystrokes first (10)")
    p.add_argument("--key-budget", type=float, default=60.0, help="seconds per terminal (60)")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--role", choices=["sink", "send"], help=argparse.SUPPRESS)
    p.add_argument("role_args", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.size_mib is None:
        args.size_mib = 8 if args.quick else 64
    if args.keys is None:
        args.keys = 100 if args.quick else 200
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "sink":
        return sink_role()
    if args.role == "send":
        return send_role(int(args.role_args[0]), args.role_args[1])
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
