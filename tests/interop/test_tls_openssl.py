"""reverse-tls against TLS peers nobody here wrote: OpenSSL's ``s_server`` and ``s_client``.

- ``s_server`` made a call-home "device" with socat (it dials our manager, then plays TLS
  server): our manager, as TLS client, judges its certificate, knows it by the fingerprint
  ``openssl x509 -fingerprint -sha256`` prints, presents its client certificate, and speaks
  NETCONF once the device is approved.
- ``s_client`` as the "manager" joined to our device by a listen-listen socat splice: our
  device, as TLS server, shows a chain OpenSSL verifies, sends its NETCONF hello, and closes
  on a manager without a certificate or with one it has not pinned.
- ``s_client`` on the manager's port (two TLS clients) is a clean handshake failure.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_helpers import require

from callhome.net import pki
from harness import OrientedAgentProc, OrientedManagerProc, Proc, TestPki, os_port, wait_until

pytestmark = pytest.mark.interop

HELLO = (
    '<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>'
    "<capability>urn:ietf:params:netconf:base:1.0</capability></capabilities>"
    "<session-id>7</session-id></hello>]]>]]>\n"
)


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    return require("openssl", "socat")


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def manager(
    tmp_path_factory: pytest.TempPathFactory, ca: TestPki, tools: dict[str, str]
) -> Iterator[OrientedManagerProc]:
    m = OrientedManagerProc(
        tmp_path_factory.mktemp("manager"), ca, env={"CALLHOME_MANAGER__HANDSHAKE_TIMEOUT": "3"}
    ).start()
    yield m
    m.stop()


def openssl_fingerprint(openssl: str, cert: Path) -> str:
    out = subprocess.run(
        [openssl, "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    return pki.normalize_fingerprint(out)


class Interactive(Proc):
    """A peer whose standard input we hold open and write to (``s_server``/``s_client``
    treat the end of their input as the end of the connection), and whose output we read
    as it comes (a NETCONF hello ends with no newline)."""

    def __init__(self, args: list[str], name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self.proc = subprocess.Popen(  # type: ignore[assignment]
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read_chunks, daemon=True)
        self._reader.start()

    def _read_chunks(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while data := os.read(fd, 65536):
            self.lines.append(data.decode("utf-8", "replace"))

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        def find() -> re.Match[str] | None:
            if m := re.search(pattern, self.output()):
                return m
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.output()}")
            return None

        return wait_until(find, timeout)

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()


class SServerDevice:
    """``openssl s_server`` serving one TLS connection, which socat dials to the manager."""

    def __init__(self, tools: dict[str, str], cert: pki.Issued, ca: TestPki, tls_port: int):
        self.port = os_port()
        self.server = Interactive(
            [
                tools["openssl"],
                "s_server",
                "-accept",
                f"127.0.0.1:{self.port}",
                "-cert",
                str(cert.cert_file),
                "-key",
                str(cert.key_file),
                "-Verify",
                "1",  # a client certificate is required ...
                "-CAfile",
                str(ca.ca.cert_file),  # ... issued by our CA
                "-verify_return_error",
                "-naccept",
                "1",
                "-brief",
            ],
            "s_server",
        )
        wait_until(lambda: _listening(self.port))
        self.socat = Proc(
            [
                tools["socat"],
                f"TCP:127.0.0.1:{tls_port},retry=20,interval=0.1",
                f"TCP:127.0.0.1:{self.port}",
            ],
            name="socat",
        )

    def stop(self) -> None:
        self.socat.stop()
        self.server.stop()


def test_s_server_device_is_known_by_the_fingerprint_openssl_prints(manager, ca, tools, tmp_path):
    """A device certificate from a CA the manager does not know: pinned like an SSH key."""
    other = pki.init_ca(tmp_path / "other", "Other CA")
    cert = pki.issue(other, "device", "s-server", out=tmp_path)
    fingerprint = openssl_fingerprint(tools["openssl"], cert.cert_file)
    assert fingerprint == cert.fingerprint
    device = SServerDevice(tools, cert, ca, manager.tls_port)
    try:
        wait_until(lambda: manager.status(fingerprint) == "pending")
        # the manager presented its client certificate, TLS 1.3, before judging the device
        device.server.wait_for(r"Peer certificate: CN = manager")
        device.server.wait_for(r"Protocol version: TLSv1\.3")
    finally:
        device.stop()


def test_s_server_device_approved_gets_netconf(manager, ca, tools):
    cert = ca.issue("device", "talker.example.net")
    identity = "x509-name:talker.example.net"
    response = manager.api("POST", f"/v1/devices/{identity}/approve", json={"name": "talker"})
    assert response.status_code == 200
    device = SServerDevice(tools, cert, ca, manager.tls_port)
    try:
        # what s_server sees: our manager's certificate over TLS 1.3, then its NETCONF hello
        device.server.wait_for(r"Protocol version: TLSv1\.3")
        device.server.wait_for(r"Peer certificate: CN = manager")
        device.server.wait_for(r"urn:ietf:params:netconf:base:1\.1.*\]\]>\]\]>")
        device.server.send(HELLO)  # and the "device" answers with its own
        wait_until(lambda: manager.status(identity) == "online")
        listed = manager.devices()[identity]
        assert listed["orientation"] == "reverse-tls"
        assert listed["capabilities"] == ["urn:ietf:params:netconf:base:1.0"]
    finally:
        device.stop()
    wait_until(lambda: manager.status(identity) == "offline")


def test_s_server_device_with_an_expired_certificate_is_refused(manager, ca, tools):
    now = dt.datetime.now(dt.UTC)
    cert = ca.issue(
        "device",
        "stale.example.net",
        not_before=now - dt.timedelta(days=10),
        not_after=now - dt.timedelta(days=1),
    )
    device = SServerDevice(tools, cert, ca, manager.tls_port)
    try:

        def refused() -> str | None:
            for e in manager.events():
                reason = str(e["detail"].get("reason"))
                if e["kind"] == "auth-failed" and "expired" in reason:
                    return reason
            return None

        wait_until(refused)
        assert manager.status("x509-name:stale.example.net") is None  # never a candidate
    finally:
        device.stop()


def _listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port (read from /proc, without connecting)."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].endswith(wanted) and fields[3] == "0A":
                return True
    return False


def test_s_client_as_manager_against_our_device(manager, ca, tools, tmp_path):
    """Our device is the TLS server: OpenSSL verifies its chain, and it refuses managers
    without a certificate, or with one that is not the pinned one."""
    call_home, local = os_port(), os_port()
    agent = OrientedAgentProc(tmp_path / "dev", "reverse-tls", manager)
    # the device calls the splice instead of the manager
    config = agent.directory / "agent.toml"
    config.write_text(
        config.read_text().replace(manager.address("reverse-tls"), f"127.0.0.1:{call_home}")
    )
    agent.start()
    stranger = ca.issue("manager", "stranger")
    cases = {
        "right": ["-cert", str(manager.cert.cert_file), "-key", str(manager.cert.key_file)],
        "none": [],
        "unpinned": ["-cert", str(stranger.cert_file), "-key", str(stranger.key_file)],
    }
    outputs = {}
    try:
        for case, options in cases.items():
            splice = Proc(
                [
                    tools["socat"],
                    f"TCP-LISTEN:{call_home},bind=127.0.0.1,reuseaddr",
                    f"TCP-LISTEN:{local},bind=127.0.0.1,reuseaddr",
                ],
                name="splice",
            )
            client = None
            try:
                wait_until(lambda: _listening(local))  # the device has called the splice
                client = Interactive(
                    [
                        tools["openssl"],
                        "s_client",
                        "-connect",
                        f"127.0.0.1:{local}",
                        "-CAfile",
                        str(ca.ca.cert_file),
                        "-verify_return_error",
                        *options,
                    ],
                    f"s_client {case}",
                )
                # a device hello, or the device closing the connection
                wait_until(lambda c=client: "<hello" in c.output() or c.proc.poll() is not None)
                outputs[case] = client.output()
            finally:
                if client is not None:
                    client.stop()
                splice.stop()
    finally:
        agent.stop()
    right = outputs["right"]
    assert "Verify return code: 0 (ok)" in right  # our device's chain, as OpenSSL sees it
    assert "urn:ietf:params:netconf:base:1.1" in right and "<hello" in right
    assert "<hello" not in outputs["none"]
    assert "<hello" not in outputs["unpinned"]  # handshake done, then closed: not pinned
    log = agent.proc.output() if agent.proc else ""
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in log, log
    assert "is not a pinned one" in log, log


def test_a_tls_client_on_the_manager_port_is_a_handshake_failure(manager, tools):
    client = subprocess.run(
        [tools["openssl"], "s_client", "-connect", f"127.0.0.1:{manager.tls_port}"],
        input="",
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert client.returncode != 0

    def failed() -> bool:
        return any(
            e["kind"] == "protocol-error" and "TLS handshake failed" in str(e["detail"])
            for e in manager.events()
        )

    wait_until(failed)
