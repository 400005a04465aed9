"""The fakes and builders the adapter tests share: an Admission that records, a NETCONF
service that answers get-config, a test PKI, and listener settings with short limits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from lxml import etree

from callhome.config import CertToNameRule, KeepaliveConfig, SshAlgorithms
from callhome.identity import Identity
from callhome.net import pki
from callhome.net.accept import ListenerLimits
from callhome.net.keys import identity_of
from callhome.net.reverse_tls import DeviceTlsSettings, ManagerTlsSettings
from callhome.net.session import DeviceSession

NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
CAPS = ["urn:ietf:params:netconf:base:1.0", "urn:ietf:params:netconf:base:1.1"]
KEEP = KeepaliveConfig(interval=5, count_max=3)
ALGS = SshAlgorithms()


def listener_limits(**kwargs: Any) -> ListenerLimits:
    """Listener limits with the tests' keepalive and the given changes."""
    return ListenerLimits(**{"keepalive": KEEP, **kwargs})


class Recorder:
    """An Admission that admits the fingerprints in ``allowed`` and records what happens."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.allowed = set(allowed)
        self.asked: list[Identity] = []
        self.refused: list[Identity] = []
        self.reports: list[tuple[str, bool]] = []  # (reason, auth) of each handshake failure
        self.ready: asyncio.Queue[DeviceSession] = asyncio.Queue()
        self.closed: asyncio.Queue[DeviceSession] = asyncio.Queue()

    @property
    def failures(self) -> list[str]:
        return [reason for reason, _ in self.reports]

    @property
    def auth_failures(self) -> list[str]:
        return [reason for reason, auth in self.reports if auth]

    def preferred(self, identities: Sequence[Identity]) -> Identity:
        return identities[0]

    def admit(self, identity: Identity, address: str) -> str | None:
        self.asked.append(identity)
        if identity.fingerprint in self.allowed:
            return ""
        self.refused.append(identity)
        return None

    def handshake_failed(
        self, address: str, identity: Identity | None, reason: str, *, auth: bool = False
    ) -> None:
        self.reports.append((reason, auth))

    async def session_ready(self, session: DeviceSession) -> None:
        await self.ready.put(session)

    async def session_closed(self, session: DeviceSession) -> None:
        await self.closed.put(session)

    async def report(self, timeout: float = 10) -> tuple[str, bool]:
        """The first handshake failure, (reason, auth), once there is one."""
        for _ in range(int(timeout / 0.02)):
            if self.reports:
                return self.reports[0]
            await asyncio.sleep(0.02)
        raise AssertionError("no handshake failure reported")

    async def failure(self, timeout: float = 10) -> str:
        """The reason of the first handshake failure, once there is one."""
        return (await self.report(timeout))[0]


class EchoHandler:
    """A NETCONF service that answers get-config and get with a fixed tree."""

    capabilities = CAPS

    def __init__(self) -> None:
        self.next_id = 0

    def open_session(self, on_kill: Callable[[], None], principal: object = None) -> int:
        self.next_id += 1
        return self.next_id

    def close_session(self, session_id: int) -> None:
        pass

    def handle(self, session_id: int, operation: etree._Element) -> etree._Element | None:
        if etree.QName(operation).localname in ("get-config", "get"):
            data = etree.Element(f"{{{NS}}}data")
            etree.SubElement(data, "{urn:x}leaf").text = "v"
            return data
        return None


@dataclass
class Pki:
    ca: pki.Ca
    other: pki.Ca
    manager: pki.Issued
    directory: Path

    def device(self, name: str, ca: pki.Ca | None = None, **kwargs: object) -> pki.Issued:
        return pki.issue(ca or self.ca, "device", name, out=self.directory / "out", **kwargs)  # type: ignore[arg-type]


def make_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, another CA (ed25519) and the manager's certificate from the first."""
    d = tmp_path_factory.mktemp("pki")
    ca = pki.init_ca(d / "ca", "Test CA")
    other = pki.init_ca(d / "other", "Other CA", key_type="ed25519")
    return Pki(ca, other, pki.issue(ca, "manager", "mgr", out=d / "out"), d)


def listener_settings(certs: Pki, **kwargs: object) -> ManagerTlsSettings:
    """The manager's TLS settings: its CA, CRL and a san-dns-name rule, short limits."""
    options: dict[str, object] = {
        "ca": [certs.ca.cert_file],
        "crl": [certs.ca.crl_file],
        "rules": [
            CertToNameRule(
                fingerprint=pki.file_fingerprint(certs.ca.cert_file), map_type="san-dns-name"
            )
        ],
        "limits": listener_limits(handshake_timeout=3, rpc_timeout=3),
    }
    options.update(kwargs)
    return ManagerTlsSettings.from_files(certs.manager.cert_file, certs.manager.key_file, **options)  # type: ignore[arg-type]


def tls_device(certs: Pki, issued: pki.Issued, **kwargs: object) -> DeviceTlsSettings:
    """A device's TLS settings trusting the manager's CA, serving EchoHandler."""
    options: dict[str, object] = {
        "manager_ca": [certs.ca.cert_file],
        "handler": EchoHandler(),
        "auth_timeout": 5,
        "keepalive": KEEP,
    }
    options.update(kwargs)
    return DeviceTlsSettings.from_files(issued.cert_file, issued.key_file, **options)  # type: ignore[arg-type]


HELLO = (
    b'<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>'
    b"<capability>urn:ietf:params:netconf:base:1.0</capability></capabilities>"
    b"<session-id>1</session-id></hello>]]>]]>"
)
"""A device's NETCONF 1.0 hello, as a device would write it on its channel."""


class _RawChannel(asyncssh.SSHServerSession[bytes]):
    def __init__(self, payload: bytes, answer: bytes | None, hang_up: bool) -> None:
        self._payload = payload
        self._answer = answer
        self._hang_up = hang_up
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._chan = chan

    def subsystem_requested(self, subsystem: str) -> bool:
        return True

    def session_started(self) -> None:
        assert self._chan is not None
        self._chan.write(self._payload)
        if self._hang_up:
            self._chan.get_extra_info("connection").abort()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self._answer is not None and b"<rpc" in data and self._chan is not None:
            self._chan.write(self._answer)


class _RawServer(asyncssh.SSHServer):
    def __init__(self, payload: bytes, answer: bytes | None, hang_up: bool) -> None:
        self._payload = payload
        self._answer = answer
        self._hang_up = hang_up

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return True

    def session_requested(self) -> asyncssh.SSHServerSession[bytes]:
        return _RawChannel(self._payload, self._answer, self._hang_up)


async def raw_ssh_device(
    port: int,
    payload: bytes,
    allowed: set[str],
    host_key: asyncssh.SSHKey | None = None,
    *,
    answer: bytes | None = None,
    hang_up: bool = False,
) -> asyncssh.SSHServerConnection:
    """A device calling home over reverse-ssh whose netconf subsystem sends ``payload``
    (whatever it is), then ``answer`` to what carries an ``<rpc``, if given, or hangs up
    at once (``hang_up``); its key is added to ``allowed``. Any manager key is accepted."""
    host_key = host_key or asyncssh.generate_private_key("ssh-ed25519")
    allowed.add(identity_of(host_key).fingerprint)
    return await asyncssh.connect_reverse(
        "127.0.0.1",
        port,
        server_host_keys=[host_key],
        server_factory=lambda: _RawServer(payload, answer, hang_up),
        encoding=None,
        config=None,
    )
