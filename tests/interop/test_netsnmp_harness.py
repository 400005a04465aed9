"""The Net-SNMP harness (``netsnmp.py``) proved with Net-SNMP on both sides, and with the
project's SNMPv3/TSM codec as a bare TLS client of snmpd.

- ``snmpget`` of sysDescr.0 and ``snmpbulkwalk`` of the 10,000-row table, over tlstcp
  straight to snmpd; ``snmpset`` by the read-write securityName, refused to the read-only one.
- ``TsmProbe``: Python's ssl (TLS 1.0, SECLEVEL 0, a client certificate) and
  ``SnmpStream`` messages: RFC 5343 discovery, then GET and GETBULK in the discovered
  engine's context. What snmpd answers is pinned here, since a manager depends on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_helpers import require
from netsnmp import (
    BIG_TABLE_COLUMN,
    BIG_TABLE_ROWS,
    SNMPD,
    SYS_CONTACT,
    SYS_DESCR,
    NetSnmpClient,
    NetSnmpError,
    NetSnmpPki,
    Snmpd,
    TsmProbe,
    big_table_line,
)

from callhome.proto.snmp import (
    AUTH_PRIV,
    LOCAL_ENGINE_ID,
    SNMP_ENGINE_ID_OID,
    TSM_SECURITY_MODEL,
    Message,
    MsgFlags,
    PduType,
    ValueType,
    format_oid,
    get_request,
)

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    return require(SNMPD, "snmpget", "snmpbulkwalk", "snmpset")


@pytest.fixture(scope="module")
def netsnmp_pki(tmp_path_factory: pytest.TempPathFactory, tools: dict[str, str]) -> NetSnmpPki:
    return NetSnmpPki(tmp_path_factory.mktemp("netsnmp-pki"))


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory, netsnmp_pki: NetSnmpPki) -> Iterator[Snmpd]:
    daemon = Snmpd(tmp_path_factory.mktemp("snmpd"), netsnmp_pki, sys_descr="harness box")
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def manager_client(tmp_path_factory: pytest.TempPathFactory, netsnmp_pki: NetSnmpPki):
    return NetSnmpClient(
        tmp_path_factory.mktemp("client"), netsnmp_pki.manager, [netsnmp_pki.ca.cert_file]
    )


def test_snmpget_sysdescr_over_tls(snmpd, manager_client):
    [line] = manager_client.get(snmpd.port, SYS_DESCR)
    assert (line.oid, line.type, line.value) == (format_oid(SYS_DESCR), "STRING", "harness box")


def test_snmpbulkwalk_of_the_big_table(snmpd, manager_client):
    rows = manager_client.bulkwalk(snmpd.port, BIG_TABLE_COLUMN, max_repetitions=50)
    assert len(rows) == BIG_TABLE_ROWS
    prefix = format_oid(BIG_TABLE_COLUMN)
    assert rows[0].oid == f"{prefix}.1" and rows[0].value == big_table_line(1)
    assert rows[-1].oid == f"{prefix}.{BIG_TABLE_ROWS}"
    assert rows[-1].value == big_table_line(BIG_TABLE_ROWS)
    assert len({r.oid for r in rows}) == BIG_TABLE_ROWS


def test_snmpset_by_the_writer_and_not_by_the_reader(snmpd, netsnmp_pki, manager_client, tmp_path):
    manager_client.set(snmpd.port, SYS_CONTACT, "s", "noc@example.net")
    [line] = manager_client.get(snmpd.port, SYS_CONTACT)
    assert line.value == "noc@example.net"

    reader = NetSnmpClient(tmp_path / "reader", netsnmp_pki.reader, [netsnmp_pki.ca.cert_file])
    assert reader.get(snmpd.port, SYS_DESCR)[0].value == "harness box"
    refused = reader.set(snmpd.port, SYS_CONTACT, "s", "intruder", check=False)
    assert refused.returncode != 0
    assert "noAccess" in refused.stderr or "authorizationError" in refused.stderr, refused.stderr


def test_a_client_that_does_not_trust_snmpd_gets_nothing(snmpd, netsnmp_pki, tmp_path):
    """The client checks snmpd's DNS name: a wrong expected name is a failed handshake."""
    client = NetSnmpClient(tmp_path / "c", netsnmp_pki.manager, [netsnmp_pki.ca.cert_file])
    with pytest.raises(NetSnmpError):
        client.get(snmpd.port, SYS_DESCR, their_hostname="someone-else")


def test_python_tsm_probe_discovery_then_get(snmpd, netsnmp_pki):
    with TsmProbe(snmpd.port, netsnmp_pki.manager, netsnmp_pki.ca.cert_file) as probe:
        assert probe.tls_version == "TLSv1"  # all Debian's 5.9.3 speaks over tlstcp
        reply = probe.discover()
        # RFC 5343 discovery is answered with a Response (not a Report), in the same
        # localEngineID context, at the security level asked for, reportable flag cleared
        assert reply.pdu.type is PduType.RESPONSE and reply.pdu.ok
        assert reply.context_engine_id == LOCAL_ENGINE_ID
        assert reply.flags == AUTH_PRIV
        assert reply.security_model == TSM_SECURITY_MODEL
        assert reply.security_parameters == b""
        [vb] = reply.pdu.varbinds
        assert vb.oid == SNMP_ENGINE_ID_OID and vb.value.type is ValueType.OCTET_STRING
        engine_id = probe.engine_id
        assert engine_id is not None and 5 <= len(engine_id) <= 32
        assert engine_id[:4] == bytes.fromhex("80001f88")  # Net-SNMP's enterprise, 8072

        pdu = probe.get([SYS_DESCR])
        assert pdu.type is PduType.RESPONSE and pdu.ok
        assert [(vb.oid, vb.value.value) for vb in pdu.varbinds] == [(SYS_DESCR, b"harness box")]

        rows = probe.bulkwalk(BIG_TABLE_COLUMN, max_repetitions=50)
        assert len(rows) == BIG_TABLE_ROWS
        assert rows[-1].value.value == big_table_line(BIG_TABLE_ROWS).encode()


def test_discovery_needs_no_reportable_flag(snmpd, netsnmp_pki):
    with TsmProbe(snmpd.port, netsnmp_pki.manager, netsnmp_pki.ca.cert_file) as probe:
        request = get_request(1, [SNMP_ENGINE_ID_OID])
        reply = probe.exchange(Message(1, request, LOCAL_ENGINE_ID, flags=AUTH_PRIV))
        assert reply.pdu.type is PduType.RESPONSE
        assert reply.pdu.varbinds[0].value.type is ValueType.OCTET_STRING


def test_other_objects_in_the_discovery_context_get_no_answer(snmpd, netsnmp_pki):
    """snmpd drops a GET in the localEngineID context for anything but snmpEngineID.0:
    no Response, no Report (a manager must discover, then use the real engine ID)."""
    with TsmProbe(snmpd.port, netsnmp_pki.manager, netsnmp_pki.ca.cert_file, timeout=1.0) as probe:
        flags = AUTH_PRIV | MsgFlags.REPORTABLE
        with pytest.raises(TimeoutError):
            probe.exchange(Message(1, get_request(1, [SYS_DESCR]), LOCAL_ENGINE_ID, flags=flags))


def test_private_keys_are_0600(snmpd, manager_client):
    for conf in (snmpd.conf, manager_client.conf):
        keys = list(Path(conf, "tls", "private").iterdir())
        assert keys and all(k.stat().st_mode & 0o777 == 0o600 for k in keys)
