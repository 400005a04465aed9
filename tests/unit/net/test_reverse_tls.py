"""The reverse-tls adapter and the certificate rules, with real TLS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from net_testkit import Pki, Recorder, listener_limits, listener_settings, tls_device

from callhome.config import CertToNameRule, KeepaliveConfig
from callhome.errors import AuthError, ConfigError, SessionClosed
from callhome.identity import Identity
from callhome.net import pki
from callhome.net.netconf import NetconfLimits
from callhome.net.reverse_tls import (
    ReverseTlsListener,
    dial_reverse_tls,
)
from callhome.net.session import Orientation


@pytest.fixture
async def manager(certs: Pki) -> AsyncIterator[tuple[ReverseTlsListener, Recorder, int]]:
    recorder = Recorder()
    listener = ReverseTlsListener(recorder, listener_settings(certs))
    port = await listener.listen("127.0.0.1", 0)
    yield listener, recorder, port
    await listener.close()


async def test_ca_issued_device_mapped_to_a_known_name_is_served(certs, manager):
    _listener, recorder, port = manager
    issued = certs.device("dev7.example.net")
    recorder.allowed.add("x509-name:dev7.example.net")
    conn = await dial_reverse_tls("127.0.0.1", port, tls_device(certs, issued))
    session = await asyncio.wait_for(recorder.ready.get(), 10)
    assert session.orientation is Orientation.REVERSE_TLS
    assert session.identity == Identity("x509", "x509-name:dev7.example.net", "x509-ecdsa-p256")
    assert conn.tls_version == "TLSv1.3"
    assert conn.manager_identity.fingerprint == certs.manager.fingerprint
    assert "urn:ietf:params:netconf:base:1.1" in session.capabilities
    reply = await session.netconf.get_config()
    assert reply.data is not None and reply.data[0].text == "v"
    conn.close()
    closed = await asyncio.wait_for(recorder.closed.get(), 10)
    assert closed is session
    with pytest.raises(SessionClosed):
        await session.netconf.get_config()


async def test_pinned_certificate_from_another_ca_is_known_by_its_fingerprint(certs, manager):
    _listener, recorder, port = manager
    issued = certs.device("pinned", ca=certs.other)
    recorder.allowed.add(issued.fingerprint)
    conn = await dial_reverse_tls("127.0.0.1", port, tls_device(certs, issued))
    session = await asyncio.wait_for(recorder.ready.get(), 10)
    assert session.identity == Identity("x509", issued.fingerprint, "x509-ecdsa-p256")
    assert session.fingerprint.startswith("SHA256:") and session.fingerprint.count(":") == 32
    assert (await session.netconf.get_config()).ok
    conn.close()


async def test_unknown_identifier_and_unknown_certificate_go_to_admission(certs, manager):
    """admit() is asked (and records them as pending); refused, they get no session."""
    _listener, recorder, port = manager
    known_name = certs.device("dev9")
    stranger = certs.device("stranger", ca=certs.other)
    for issued in (known_name, stranger):
        with pytest.raises((OSError, ssl.SSLError)):
            conn = await dial_reverse_tls("127.0.0.1", port, tls_device(certs, issued))
            await asyncio.wait_for(conn.wait_closed(), 10)
            raise ConnectionResetError("closed by the manager")
    assert [i.fingerprint for i in recorder.asked] == ["x509-name:dev9", stranger.fingerprint]
    assert recorder.ready.empty()


@pytest.mark.parametrize(
    "case",
    ["expired", "not-yet-valid", "revoked", "forged-issuer", "client-usage"],
)
async def test_bad_certificates_are_refused_before_admission(certs, case, tmp_path):
    recorder = Recorder()
    now = dt.datetime.now(dt.UTC)
    ca = certs.ca
    crl = [ca.crl_file]
    if case == "expired":
        issued = certs.device(
            "old", not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1)
        )
    elif case == "not-yet-valid":
        issued = certs.device("early", not_before=now + dt.timedelta(days=1))
    elif case == "revoked":
        copy = pki.init_ca(tmp_path / "ca2", "Revoking CA")
        issued = pki.issue(copy, "device", "gone", out=tmp_path)
        ca, crl = copy, [copy.crl_file]
    elif case == "forged-issuer":
        issued = forged(certs, tmp_path)
    else:
        issued = pki.issue(certs.ca, "manager", "not-a-server", out=tmp_path)
    rules = [CertToNameRule(fingerprint=pki.file_fingerprint(ca.cert_file), map_type="san-any")]
    listener = ReverseTlsListener(
        recorder, listener_settings(certs, ca=[ca.cert_file], crl=crl, rules=rules)
    )
    port = await listener.listen("127.0.0.1", 0)
    try:
        if case == "revoked":  # revoked after the manager started: the CRL is re-read
            pki.revoke(ca, issued.cert)
        with pytest.raises((OSError, ssl.SSLError)):
            conn = await dial_reverse_tls("127.0.0.1", port, tls_device(certs, issued))
            await asyncio.wait_for(conn.wait_closed(), 10)
            raise ConnectionResetError("closed by the manager")
        reason, auth = await recorder.report()
        expected = {
            "expired": "expired",
            "not-yet-valid": "not valid before",
            "revoked": "revoked",
            "forged-issuer": "does not verify",
            "client-usage": "not for TLS servers",
        }[case]
        assert expected in reason and auth
        assert recorder.asked == []  # never offered to the registry
        assert recorder.ready.empty()
    finally:
        await listener.close()


def forged(certs: Pki, directory: Path) -> pki.Issued:
    """A certificate naming the real CA as issuer, signed by another key."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forged")]))
        .issuer_name(certs.ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("forged")]), critical=False)
        .sign(key, pki.hashes.SHA256())
    )
    cert_file, key_file = directory / "forged.crt", directory / "forged.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki.Issued(cert_file, key_file, cert)


async def test_without_pinning_only_ca_issued_certificates_are_considered(certs):
    recorder = Recorder()
    listener = ReverseTlsListener(recorder, listener_settings(certs, allow_pinned=False))
    port = await listener.listen("127.0.0.1", 0)
    try:
        issued = certs.device("elsewhere", ca=certs.other)
        recorder.allowed.add(issued.fingerprint)
        with pytest.raises((OSError, ssl.SSLError)):
            conn = await dial_reverse_tls("127.0.0.1", port, tls_device(certs, issued))
            await asyncio.wait_for(conn.wait_closed(), 10)
            raise ConnectionResetError("closed by the manager")
        reason, _ = await recorder.report()
        assert "not issued by a configured CA" in reason
        assert recorder.asked == []
    finally:
        await listener.close()


async def test_device_refuses_a_manager_certificate_from_another_ca(certs, manager):
    _listener, recorder, port = manager
    issued = certs.device("dev7.example.net")
    recorder.allowed.add("x509-name:dev7.example.net")
    strict = tls_device(certs, issued, manager_ca=[certs.other.cert_file])
    with pytest.raises((ssl.SSLError, OSError)):
        await dial_reverse_tls("127.0.0.1", port, strict)
    reason, auth = await recorder.report()
    assert auth, reason
    assert recorder.ready.empty()


async def test_device_refuses_a_manager_certificate_not_pinned(certs, manager):
    _listener, recorder, port = manager
    issued = certs.device("dev7.example.net")
    recorder.allowed.add("x509-name:dev7.example.net")
    pinned = tls_device(
        certs, issued, manager_fingerprints=[certs.ca.cert.fingerprint(pki.hashes.SHA256()).hex()]
    )
    with pytest.raises(AuthError):
        await dial_reverse_tls("127.0.0.1", port, pinned)
    await recorder.report()
    ok = tls_device(certs, issued, manager_fingerprints=[certs.manager.fingerprint.lower()])
    conn = await dial_reverse_tls("127.0.0.1", port, ok)
    await asyncio.wait_for(recorder.ready.get(), 10)
    conn.close()


async def test_device_needs_a_manager_anchor(certs):
    issued = certs.device("lonely")
    with pytest.raises(ConfigError):
        tls_device(certs, issued, manager_ca=[])


@pytest.mark.parametrize(
    "payload",
    [b"\x16\x03\x01\x00\x05hello" + bytes(range(256)) * 4, b"GET / HTTP/1.0\r\n\r\n", b""],
)
async def test_garbage_and_stalls_are_handshake_failures_and_others_are_served(certs, payload):
    recorder = Recorder()
    listener = ReverseTlsListener(
        recorder, listener_settings(certs, limits=listener_limits(handshake_timeout=0.5))
    )
    port = await listener.listen("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)  # an empty payload: a peer that stalls in the handshake
        await writer.drain()
        good = certs.device("good.example.net")
        recorder.allowed.add("x509-name:good.example.net")
        conn = await dial_reverse_tls("127.0.0.1", port, tls_device(certs, good))
        session = await asyncio.wait_for(recorder.ready.get(), 10)
        await asyncio.wait_for(reader.read(), 10)  # the manager hangs up on the bad one
        writer.close()
        reason, _ = await recorder.report()
        assert "TLS handshake failed" in reason or "timed out" in reason
        assert (await session.netconf.get_config()).ok
        conn.close()
    finally:
        await listener.close()


async def test_silent_device_is_probed_and_dropped(certs):
    """A device that stops answering on a live TCP path is noticed by the NETCONF probe."""
    recorder = Recorder()
    keep = KeepaliveConfig(interval=0.2, count_max=2)
    listener = ReverseTlsListener(
        recorder, listener_settings(certs, limits=listener_limits(keepalive=keep))
    )
    port = await listener.listen("127.0.0.1", 0)
    try:
        issued = certs.device("deaf.example.net")
        recorder.allowed.add("x509-name:deaf.example.net")
        conn = await dial_reverse_tls("127.0.0.1", port, tls_device(certs, issued, keepalive=keep))
        heard: list[bytes] = []
        conn._protocol.driver.feed = heard.append  # reads everything, answers nothing
        session = await asyncio.wait_for(recorder.ready.get(), 10)
        closed = await asyncio.wait_for(recorder.closed.get(), 10)
        assert closed is session
        assert "no reply" in session.close_reason
        probe = b"".join(heard)
        assert b"<get" in probe and b'<filter type="subtree"/>' in probe
    finally:
        await listener.close()


def test_fingerprint_forms_are_normalized(certs):
    fp = certs.manager.fingerprint
    hex_digits = fp.removeprefix("SHA256:").replace(":", "")
    for form in (
        fp,
        fp.lower(),
        f"sha256 Fingerprint={fp.removeprefix('SHA256:')}",
        "04:" + fp.removeprefix("SHA256:"),
        hex_digits,
    ):
        assert pki.normalize_fingerprint(form) == fp
    with pytest.raises(ConfigError):
        pki.normalize_fingerprint("SHA256:abc")


def test_cert_to_name_map_types(certs, tmp_path):
    issued = pki.issue(
        certs.ca,
        "device",
        "Router-1",
        dns=["Router-1.Example.NET"],
        ips=["192.0.2.7", "2001:db8::7"],
        emails=["ops@Example.NET"],
        out=tmp_path,
    )
    fp = pki.file_fingerprint(certs.ca.cert_file)

    def name(map_type: str, **kw: str) -> str | None:
        rule = CertToNameRule(fingerprint=fp, map_type=map_type, **kw)  # type: ignore[arg-type]
        return pki.map_certificate(issued.cert, rule)

    assert name("specified", name="r1") == "r1"
    assert name("san-dns-name") == "router-1.example.net"
    assert name("san-ip-address") == "192.0.2.7"
    assert name("san-rfc822-name") == "ops@example.net"
    assert name("san-any") == "router-1.example.net"
    assert name("common-name") == "Router-1"
    bare = pki.issue(certs.ca, "device", "no SAN here", out=tmp_path)
    rule = CertToNameRule(fingerprint=fp, map_type="san-any")
    assert pki.map_certificate(bare.cert, rule) is None


def test_rules_apply_in_order_and_only_to_their_ca(certs, tmp_path):
    mine = pki.issue(certs.ca, "device", "a.example", out=tmp_path)
    theirs = pki.issue(certs.other, "device", "b.example", out=tmp_path)
    rules = [
        CertToNameRule(
            fingerprint=pki.file_fingerprint(certs.other.cert_file),
            map_type="specified",
            name="from-other",
        ),
        CertToNameRule(fingerprint=mine.fingerprint, map_type="specified", name="pinned-a"),
        CertToNameRule(
            fingerprint=pki.file_fingerprint(certs.ca.cert_file), map_type="san-dns-name"
        ),
    ]
    policy = pki.CertPolicy.from_files([certs.ca.cert_file], [], rules)
    der = mine.cert.public_bytes(serialization.Encoding.DER)
    decision = policy.decide([der], dt.datetime.now(dt.UTC).timestamp())
    assert decision.identity is not None
    assert decision.identity.fingerprint == "x509-name:pinned-a"
    other = policy.decide(
        [theirs.cert.public_bytes(serialization.Encoding.DER)], dt.datetime.now(dt.UTC).timestamp()
    )
    assert other.identity is not None and other.identity.fingerprint == theirs.fingerprint
    assert other.mapped_name is None
    with pytest.raises(ConfigError):
        pki.CertPolicy([], [], [CertToNameRule(fingerprint=mine.fingerprint, map_type="specified")])


def test_ca_refuses_to_overwrite_itself_and_writes_private_keys(certs):
    with pytest.raises(ConfigError):
        pki.init_ca(certs.ca.directory)
    assert (certs.ca.directory / "ca.key").stat().st_mode & 0o777 == 0o600
    assert certs.manager.key_file.stat().st_mode & 0o777 == 0o600
    reopened = pki.Ca.open(certs.ca.directory)
    assert reopened.cert == certs.ca.cert


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"<hello>" + b"x" * 8192, "message exceeds the maximum size of 4096 bytes"),
        (b"<notnetconf/>]]>]]>", "expected a <hello> in namespace"),
    ],
    ids=["too-large", "malformed"],
)
async def test_a_hostile_hello_is_reported_as_what_it_was(certs, payload, reason):
    """A device that completes TLS and then breaks the hello: the first failure reported
    says how (not "connection closed", nor a certificate the device would not accept)."""
    recorder = Recorder()
    listener = ReverseTlsListener(
        recorder,
        listener_settings(
            certs, limits=listener_limits(netconf=NetconfLimits(max_message_size=4096))
        ),
    )
    port = await listener.listen("127.0.0.1", 0)
    try:
        issued = certs.device("hostile.example.net")
        recorder.allowed.add("x509-name:hostile.example.net")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(issued.cert_file, issued.key_file)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        loop = asyncio.get_running_loop()
        tls = await loop.start_tls(
            writer.transport, writer.transport.get_protocol(), context, server_side=True
        )
        assert tls is not None
        tls.write(payload)
        await asyncio.wait_for(reader.read(), 10)  # the manager hangs up
        tls.close()
        first, auth = await recorder.report()
        assert first.startswith(f"no NETCONF hello: protocol error: {reason}"), first
        assert not auth
        assert recorder.ready.empty()
    finally:
        await listener.close()
