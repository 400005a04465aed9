"""Real manager and agent processes on loopback, for integration and interop tests."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from callhome.cli.setup import init_agent, init_manager

T = TypeVar("T")
PY = [sys.executable, "-m", "callhome.cli.main"]


def os_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (for a listener that must keep its port across restarts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], T], timeout: float = 20.0, interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


class Proc:
    """A child process whose output is collected in the background."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str] | None = None,
        name: str = "",
        cwd: Path | None = None,
    ) -> None:
        self.name = name or args[0]
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
            cwd=cwd,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        def find() -> re.Match[str] | None:
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.output()}")
            return None

        try:
            return wait_until(find, timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}; {self.name} wrote:\n{self.output()}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        return self.proc.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class ManagerProc:
    """A manager in its own process, with its state in ``directory``."""

    def __init__(self, directory: Path, port: int | None = None, env: dict[str, str] | None = None):
        self.directory = directory
        self.port = port or os_port()
        self.client_file = directory / "client.toml"
        self.public_key = init_manager(
            directory, [f"127.0.0.1:{self.port}"], "127.0.0.1:0", self.client_file
        )
        self.env = {"CALLHOME_CLIENT_FILE": str(self.client_file), **(env or {})}
        self.proc: Proc | None = None
        self.url = ""
        self.token = ""

    def start(self) -> ManagerProc:
        self.proc = Proc(
            [*PY, "manager", "--config", str(self.directory / "manager.toml")],
            self.env,
            "manager",
        )
        self.url = self.proc.wait_for(r"API on (\S+)").group(1)
        self.token = (self.directory / "api-token").read_text().strip()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            self.proc.stop(sig)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            self.url + path,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
            **kwargs,
        )

    def devices(self) -> dict[str, dict[str, Any]]:
        """Devices by fingerprint."""
        response = self.api("GET", "/v1/devices")
        response.raise_for_status()
        return {d["fingerprint"]: d for d in response.json()}

    def status(self, fingerprint: str) -> str | None:
        d = self.devices().get(fingerprint)
        return d["status"] if d else None

    def events(self, **params: Any) -> list[dict[str, Any]]:
        response = self.api("GET", "/v1/events", params={"limit": 1000, **params})
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def short_schedule(
        self, name: str, period: float, anchor: str | None = None, idle_timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Set a schedule shorter than a minute on one of our agents: a plain edit-config of
        client ``default``'s connection-type with a fractional ``period`` in minutes, a
        deviation our agent accepts (``callhome schedule`` sends whole minutes only)."""
        leaves = f"<period>{period / 60:.10g}</period>"
        if anchor is not None:
            leaves += f"<anchor-time>{anchor}</anchor-time>"
        if idle_timeout is not None:
            leaves += f"<idle-timeout>{round(idle_timeout)}</idle-timeout>"
        nc = "urn:ietf:params:xml:ns:netconf:base:1.0"
        config = (
            '<netconf-server xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-server">'
            "<call-home><netconf-client><name>default</name>"
            f'<connection-type xmlns:nc="{nc}" nc:operation="replace">'
            f"<periodic>{leaves}</periodic></connection-type>"
            "</netconf-client></call-home></netconf-server>"
        )
        return self.cli("netconf", name, "edit-config", "--config", config)

    def cli(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PY, *args],
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
            env={**os.environ, **self.env},
        )


class AgentProc:
    """A device in its own process, calling the manager at ``port``."""

    def __init__(
        self,
        directory: Path,
        manager_addresses: list[str],
        manager_keys: list[str],
        env: dict[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.fingerprint = init_agent(directory, manager_addresses, manager_keys)
        self.env = {
            "CALLHOME_RECONNECT__BACKOFF_INITIAL": "0.1",
            "CALLHOME_RECONNECT__BACKOFF_MAX": "0.5",
            **(env or {}),
        }
        self.proc: Proc | None = None

    def start(self) -> AgentProc:
        self.proc = Proc(
            [*PY, "agent", "--config", str(self.directory / "agent.toml")],
            self.env,
            f"agent {self.directory.name}",
        )
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            self.proc.stop(sig)


# -- the other orientations: reverse-tls and turn ----------------------------------------


class TestPki:
    """A CA in ``directory`` and the certificates it issues, for reverse-tls tests."""

    __test__ = False

    def __init__(self, directory: Path) -> None:
        from callhome.net.pki import init_ca

        self.directory = directory
        self.ca = init_ca(directory / "ca", "Test CA")

    def issue(self, role: str, name: str, **kwargs: Any) -> Any:
        from callhome.net.pki import issue

        return issue(self.ca, role, name, out=self.directory / "issued", **kwargs)


class OrientedManagerProc(ManagerProc):
    """A manager with its reverse-tls and turn listeners on as well as reverse-ssh.

    Device certificates from ``pki`` are mapped by their DNS name (x509-name:NAME)."""

    def __init__(self, directory: Path, pki: TestPki, env: dict[str, str] | None = None) -> None:
        from callhome.cli.setup import turn_host_key_line

        super().__init__(directory, env=env)
        self.pki = pki
        self.tls_port, self.turn_port = os_port(), os_port()
        self.cert = pki.issue("manager", "manager")
        init_manager(
            directory,
            [f"127.0.0.1:{self.port}"],
            "127.0.0.1:0",
            self.client_file,
            tls_listen=[f"127.0.0.1:{self.tls_port}"],
            tls_cert=self.cert.cert_file,
            tls_key=self.cert.key_file,
            tls_ca=[pki.ca.cert_file],
            tls_crl=[pki.ca.crl_file],
            turn_listen=[f"127.0.0.1:{self.turn_port}"],
        )
        self.turn_host_key = turn_host_key_line(directory)

    def address(self, orientation: str) -> str:
        port = {"reverse-ssh": self.port, "reverse-tls": self.tls_port, "turn": self.turn_port}
        return f"127.0.0.1:{port[orientation]}"


class OrientedAgentProc(AgentProc):
    """A device calling ``manager`` in one orientation; ``fingerprint`` is the identity the
    manager will see (for reverse-tls, ``x509-name:`` and its DNS name)."""

    def __init__(
        self,
        directory: Path,
        orientation: str,
        manager: OrientedManagerProc,
        env: dict[str, str] | None = None,
        cert: Any = None,
    ) -> None:
        self.directory = directory
        self.orientation = orientation
        kwargs: dict[str, Any] = {"orientation": orientation}
        if orientation == "reverse-tls":
            self.cert = cert or manager.pki.issue("device", f"{directory.name}.example.net")
            kwargs.update(
                tls_cert=self.cert.cert_file,
                tls_key=self.cert.key_file,
                manager_ca=[manager.pki.ca.cert_file],
                manager_fingerprints=[manager.cert.fingerprint],
            )
        elif orientation == "turn":
            kwargs.update(manager_host_keys=[manager.turn_host_key])
        fingerprint = init_agent(
            directory, [manager.address(orientation)], [manager.public_key], **kwargs
        )
        if orientation == "reverse-tls":
            from callhome.config import CertToNameRule
            from callhome.net.pki import map_certificate

            rule = CertToNameRule(fingerprint=self.cert.fingerprint, map_type="san-dns-name")
            name = map_certificate(self.cert.cert, rule)
            if name and self.cert.cert.issuer == manager.pki.ca.cert.subject:
                fingerprint = f"x509-name:{name}"
        self.fingerprint = fingerprint
        self.env = {
            "CALLHOME_RECONNECT__BACKOFF_INITIAL": "0.1",
            "CALLHOME_RECONNECT__BACKOFF_MAX": "0.5",
            **(env or {}),
        }
        self.proc = None
