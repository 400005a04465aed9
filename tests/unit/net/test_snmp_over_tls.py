"""SNMP over a reverse-tls connection (RFC 6353 TLSTM with TSM): certificate to securityName,
RFC 5343 discovery, and both ends over real TLS on 127.0.0.1 in one loop."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from net_testkit import Pki, Recorder, listener_settings, tls_device

from callhome.agent.snmp.agent import SnmpAgent, SnmpState, UserAccess, register_system
from callhome.agent.snmp.mib import MibRegistry
from callhome.config import AgentSnmpSection, CertToNameRule, ManagerConfig
from callhome.errors import AuthError, ConfigError, SessionClosed
from callhome.manager import snmp as snmp_jobs
from callhome.net import pki
from callhome.net.reverse_tls import DeviceTlsSettings, TlsDeviceConnection
from callhome.net.session import DeviceSession, Orientation
from callhome.net.snmp_tls import (
    SnmpTlsListener,
    SnmpTlsService,
    dial_snmp_tls,
    snmp_security_name,
)
from callhome.proto.snmp import (
    LOCAL_ENGINE_ID,
    SNMP_ENGINE_ID_OID,
    ErrorStatus,
    Message,
    PduType,
    ValueType,
    discovery_message,
)

SYS = (1, 3, 6, 1, 2, 1, 1)
ENGINE_ID = bytes.fromhex("80000000050102030405")


# -- certificate to securityName (RFC 6353 section 5.3.2, certToTSN) ---------------------------


def rule(fingerprint: str, map_type: str, name: str = "") -> CertToNameRule:
    return CertToNameRule(fingerprint=fingerprint, map_type=map_type, name=name)  # type: ignore[arg-type]


def test_security_name_by_each_map_type(certs: Pki) -> None:
    issued = pki.issue(
        certs.ca,
        "manager",
        "ops-manager",
        dns=["Mgr.Example.NET"],
        ips=["2001:db8::7", "192.0.2.9"],
        emails=["Ops@Example.NET"],
        out=certs.directory / "tsn",
    )
    chain = (issued.cert, certs.ca.cert)
    leaf, ca = issued.fingerprint, pki.cert_identity(certs.ca.cert).fingerprint
    cases = [
        (rule(leaf, "specified", "snmpadmin"), "snmpadmin"),
        (rule(ca, "san-dns-name"), "mgr.example.net"),
        (rule(ca, "san-rfc822-name"), "Ops@example.net"),  # host part in lower case only
        (rule(ca, "san-ip-address"), "20010db8000000000000000000000007"),  # 32 hex, no colons
        (rule(ca, "san-any"), "mgr.example.net"),  # the first of those in the certificate
        (rule(ca, "common-name"), "ops-manager"),
    ]
    for given, expected in cases:
        assert pki.security_name_for(chain, [given]) == expected, given.map_type


def test_security_name_rules_in_order_and_refusals(certs: Pki) -> None:
    issued = pki.issue(certs.ca, "manager", "m", dns=[], out=certs.directory / "tsn2")
    chain = (issued.cert, certs.ca.cert)
    ca = pki.cert_identity(certs.ca.cert).fingerprint
    stranger = pki.cert_identity(certs.other.cert).fingerprint
    # a rule for another CA does not apply; a map type that yields nothing passes to the next
    rules = [
        rule(stranger, "specified", "wrong"),
        rule(ca, "san-dns-name"),
        rule(ca, "common-name"),
    ]
    assert pki.security_name_for(chain, rules) == "m"
    assert pki.security_name_for(chain, rules[:2]) is None  # nothing maps it: refused
    assert pki.security_name_for(chain, []) is None
    assert pki.security_name_for((), rules) is None
    long_name = "x" * 33  # securityName is 1..32 octets
    assert pki.security_name_for(chain, [rule(ca, "specified", long_name)]) is None
    # the fingerprint forms people paste all work
    openssl_form = "sha256 Fingerprint=" + ca.removeprefix("SHA256:")
    assert pki.security_name_for(chain, [rule(openssl_form, "specified", "ok")]) == "ok"
    with pytest.raises(ConfigError):
        pki.security_name_for(chain, [rule(ca, "specified")])


def test_ipv4_san_is_dotted_quad(certs: Pki) -> None:
    issued = pki.issue(
        certs.ca, "manager", "v4", dns=[], ips=["192.0.2.9"], out=certs.directory / "v4"
    )
    (san,) = issued.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.value == ipaddress.ip_address("192.0.2.9")
    chain = (issued.cert, certs.ca.cert)
    ca = pki.cert_identity(certs.ca.cert).fingerprint
    assert pki.security_name_for(chain, [rule(ca, "san-ip-address")]) == "192.0.2.9"


def test_manager_security_name_defaults_to_its_certificate_cn(certs: Pki, tmp_path: Path) -> None:
    config = ManagerConfig.model_validate(
        {"state_dir": str(tmp_path), "manager": {"tls": {"cert": str(certs.manager.cert_file)}}}
    )
    assert snmp_security_name(config) == "mgr"
    config.manager.tls.snmp_security_name = "ops"
    assert snmp_security_name(config) == "ops"


# -- discovery as the agent answers it (RFC 5343) ---------------------------------------------


def snmp_agent(tmp_path: Path) -> SnmpAgent:
    registry = MibRegistry()
    users = {"rw": UserAccess(((1, 3, 6, 1),), (SYS,)), "ro": UserAccess(((1, 3, 6, 1),), ())}
    agent = SnmpAgent(registry, ENGINE_ID, users)
    section = AgentSnmpSection(enabled=True, sys_descr="tls box")
    register_system(registry, agent, SnmpState(tmp_path / "s.json"), section, (1, 3, 6, 1, 4))
    return agent


@pytest.mark.parametrize("security_name", ["rw", "nobody"])
def test_discovery_is_answered_for_any_security_name(tmp_path: Path, security_name: str) -> None:
    """What Net-SNMP's manager sends first: its engine ID comes back in a Response, in the
    localEngineID context, whatever the securityName's access."""
    agent = snmp_agent(tmp_path)
    reply = agent.process(security_name, discovery_message(41, 42))
    assert reply is not None and reply.msg_id == 41
    assert reply.pdu.type is PduType.RESPONSE and reply.pdu.request_id == 42
    assert reply.context_engine_id == LOCAL_ENGINE_ID
    (vb,) = reply.pdu.varbinds
    assert (vb.oid, vb.value.type, vb.value.value) == (
        SNMP_ENGINE_ID_OID,
        ValueType.OCTET_STRING,
        ENGINE_ID,
    )
    # beyond discovery, an unknown securityName reads nothing
    other = Message(43, snmp_jobs_get((1, 3, 6, 1, 2, 1, 1, 1, 0)), ENGINE_ID)
    answer = agent.process(security_name, other)
    assert answer is not None
    expected = ErrorStatus.NO_ERROR if security_name == "rw" else ErrorStatus.AUTHORIZATION_ERROR
    assert answer.pdu.error_status is expected


def snmp_jobs_get(oid: tuple[int, ...]):  # type: ignore[no-untyped-def]
    from callhome.proto.snmp import get_request

    return get_request(7, [oid])


# -- both ends over real TLS --------------------------------------------------------------------


@pytest.fixture
async def manager(certs: Pki) -> AsyncIterator[tuple[SnmpTlsListener, Recorder, int]]:
    recorder = Recorder()
    listener = SnmpTlsListener(recorder, listener_settings(certs), "mgr")
    port = await listener.listen("127.0.0.1", 0)
    yield listener, recorder, port
    await listener.close()


def manager_rule(certs: Pki, name: str) -> CertToNameRule:
    return rule(certs.manager.fingerprint, "specified", name)


async def connect(
    certs: Pki, manager: tuple[SnmpTlsListener, Recorder, int], agent: SnmpAgent, name: str
) -> tuple[TlsDeviceConnection, DeviceSession]:
    _listener, recorder, port = manager
    issued = certs.device(f"{name}-dev.example.net")
    recorder.allowed.add(f"x509-name:{name}-dev.example.net")
    settings: DeviceTlsSettings = tls_device(certs, issued)
    service = SnmpTlsService(agent, [manager_rule(certs, name)])
    conn = await dial_snmp_tls("127.0.0.1", port, settings, service)
    session = await asyncio.wait_for(recorder.ready.get(), 10)
    return conn, session


async def test_snmp_over_tls_read_write_by_security_name(certs, manager, tmp_path):
    agent = snmp_agent(tmp_path)
    conn, session = await connect(certs, manager, agent, "rw")
    try:
        assert session.orientation is Orientation.REVERSE_TLS
        assert session.services == ("snmp",) and not session.carries_netconf
        client = await session.snmp()
        assert client.engine_id == ENGINE_ID  # discovered before the session was ready
        assert client.security_name == "mgr"
        ok, result = await snmp_jobs.execute(
            client, {"operation": "get", "oids": ["1.3.6.1.2.1.1.1.0"]}
        )
        assert ok and result["varbinds"][0]["value"] == "tls box"
        payload = {"operation": "bulkwalk", "oids": ["1.3.6.1.2.1.1"], "max_repetitions": 3}
        ok, result = await snmp_jobs.execute(client, payload)
        assert ok and len(result["varbinds"]) == 7
        contact = {"oid": "1.3.6.1.2.1.1.4.0", "type": "s", "value": "noc@example.net"}
        ok, _ = await snmp_jobs.execute(client, {"operation": "set", "varbinds": [contact]})
        assert ok
        with pytest.raises(SessionClosed):
            await session.netconf.get_config()  # this connection carries SNMP only
    finally:
        conn.close()
    closed = await asyncio.wait_for(manager[1].closed.get(), 10)
    assert closed is session


async def test_read_only_security_name_is_refused_a_set(certs, manager, tmp_path):
    conn, session = await connect(certs, manager, snmp_agent(tmp_path), "ro")
    try:
        client = await session.snmp()
        contact = {"oid": "1.3.6.1.2.1.1.4.0", "type": "s", "value": "x"}
        ok, result = await snmp_jobs.execute(client, {"operation": "set", "varbinds": [contact]})
        assert not ok and result["error_status"] == "noAccess"
        assert result["error_oid"] == "1.3.6.1.2.1.1.4.0"
    finally:
        conn.close()


async def test_manager_certificate_mapped_to_no_name_is_refused(certs, manager, tmp_path):
    _listener, recorder, port = manager
    issued = certs.device("unmapped.example.net")
    recorder.allowed.add("x509-name:unmapped.example.net")
    other_ca = pki.cert_identity(certs.other.cert).fingerprint
    service = SnmpTlsService(snmp_agent(tmp_path), [rule(other_ca, "common-name")])
    with pytest.raises(AuthError, match="maps to no securityName"):
        await dial_snmp_tls("127.0.0.1", port, tls_device(certs, issued), service)
    assert recorder.ready.empty()
    reason = await recorder.failure()
    assert reason


def old_device(certs: Pki, issued: pki.Issued, **kwargs: object) -> DeviceTlsSettings:
    """A device that speaks TLS 1.0 only, as Net-SNMP 5.9's tlstcp does."""
    weak = tls_device(certs, issued, minimum_version="TLSv1", ciphers="DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        weak.context.maximum_version = ssl.TLSVersion.TLSv1
    return weak


async def test_old_tls_only_when_the_manager_allows_it(certs, manager, tmp_path):
    """The knob for old peers: TLS 1.0 is refused by default, and works when allowed."""
    _listener, recorder, port = manager
    issued = certs.device("old-dev.example.net")
    recorder.allowed.add("x509-name:old-dev.example.net")
    service = SnmpTlsService(snmp_agent(tmp_path), [manager_rule(certs, "rw")])
    with pytest.raises((ssl.SSLError, OSError)):
        await dial_snmp_tls("127.0.0.1", port, old_device(certs, issued), service)
    assert recorder.ready.empty()

    weak = {"minimum_version": "TLSv1", "ciphers": "DEFAULT:@SECLEVEL=0"}
    listener = SnmpTlsListener(recorder, listener_settings(certs, **weak), "mgr")
    old_port = await listener.listen("127.0.0.1", 0)
    try:
        conn = await dial_snmp_tls("127.0.0.1", old_port, old_device(certs, issued), service)
        assert conn.tls_version == "TLSv1"
        session = await asyncio.wait_for(recorder.ready.get(), 10)
        assert (await session.snmp()).engine_id == ENGINE_ID
        conn.close()
    finally:
        await listener.close()
