"""ncclient, a NETCONF client nobody here wrote, accepts a call home from our agent (RFC 8071 S3).

ncclient listens (``manager.call_home``), our agent dials it and plays SSH server and NETCONF
server; ncclient plays SSH client (paramiko) and NETCONF client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from interop_helpers import make_manager_key
from lxml import etree

from harness import AgentProc, os_port

ncclient_manager = pytest.importorskip("ncclient.manager", reason="ncclient is not installed")
RPCError = pytest.importorskip("ncclient.operations").RPCError
NetconfBase = pytest.importorskip("ncclient.transport.session").NetconfBase

pytestmark = pytest.mark.interop

BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
IF_NS = "urn:example:interfaces"
USERS_NS = "urn:example:users"


def config(body: str) -> str:
    return f'<config xmlns="{BASE_NS}">{body}</config>'


def data_of(reply: Any) -> etree._Element:
    root = etree.fromstring(reply.xml.encode())
    assert etree.QName(root).localname == "rpc-reply", reply.xml
    data = root.find(f"{{{BASE_NS}}}data")
    assert data is not None, reply.xml
    return data


@dataclass
class Session:
    nc: Any  # ncclient.manager.Manager
    agent: AgentProc


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    base = tmp_path_factory.mktemp("ncclient")
    key = make_manager_key(base / "manager")
    port = os_port()
    # The agent dials before ncclient listens; it retries with a short back-off until accepted.
    agent = AgentProc(base / "agent", [f"127.0.0.1:{port}"], [key.public_line]).start()
    try:
        nc = ncclient_manager.call_home(
            host="127.0.0.1",
            port=port,
            username="netconf",
            key_filename=str(key.private),
            hostkey_verify=False,
            allow_agent=False,
            look_for_keys=False,
            timeout=30,
        )
    except Exception as exc:
        agent.stop()
        output = agent.proc.output() if agent.proc else ""
        pytest.fail(f"ncclient got no session from the agent ({exc!r}); agent said:\n{output}")
    try:
        yield Session(nc, agent)
    finally:
        with contextlib.suppress(Exception):
            nc.close_session()
        agent.stop()


def test_ncclient_sees_the_agents_host_key_and_capabilities(session: Session) -> None:
    nc = session.nc
    assert nc.connected
    host_key = nc._session._transport.get_remote_server_key()
    assert host_key.fingerprint == session.agent.fingerprint
    caps = set(nc.server_capabilities)
    assert "urn:ietf:params:netconf:base:1.0" in caps
    assert "urn:ietf:params:netconf:base:1.1" in caps
    assert "urn:ietf:params:netconf:capability:writable-running:1.0" in caps
    assert int(nc.session_id) > 0
    # both sides said base:1.1, so the session runs chunked framing (RFC 6242 S4.2)
    assert nc._session._base == NetconfBase.BASE_11


def test_get_config(session: Session) -> None:
    reply = session.nc.get_config(source="running")
    assert reply.ok
    data_of(reply)


def test_edit_config_merge_then_get_config_shows_it(session: Session) -> None:
    nc = session.nc
    edit = nc.edit_config(
        target="running",
        config=config(
            f'<interfaces xmlns="{IF_NS}">'
            "<interface><name>eth0</name><mtu>1500</mtu></interface>"
            "<interface><name>eth1</name><mtu>1500</mtu></interface>"
            "</interfaces>"
        ),
    )
    assert edit.ok
    # a second merge changes the entry whose first leaf (the name) matches, nothing else
    edit = nc.edit_config(
        target="running",
        config=config(
            f'<interfaces xmlns="{IF_NS}"><interface><name>eth1</name><mtu>9000</mtu></interface>'
            "</interfaces>"
        ),
    )
    assert edit.ok

    reply = nc.get_config(source="running", filter=("subtree", f'<interfaces xmlns="{IF_NS}"/>'))
    data = data_of(reply)
    ns = {"if": IF_NS}
    mtus = {
        i.findtext("if:name", namespaces=ns): i.findtext("if:mtu", namespaces=ns)
        for i in data.iterfind("if:interfaces/if:interface", ns)
    }
    assert mtus == {"eth0": "1500", "eth1": "9000"}

    # the subtree filter selects: other top-level data is not returned
    users = f'<users xmlns="{USERS_NS}"><user><name>bob</name></user></users>'
    assert nc.edit_config(target="running", config=config(users)).ok
    filtered = data_of(
        nc.get_config(source="running", filter=("subtree", f'<interfaces xmlns="{IF_NS}"/>'))
    )
    assert filtered.find(f"{{{USERS_NS}}}users") is None
    everything = data_of(nc.get_config(source="running"))
    assert everything.find(f"{{{USERS_NS}}}users") is not None
    assert everything.find(f"{{{IF_NS}}}interfaces") is not None


def test_lock_and_unlock(session: Session) -> None:
    nc = session.nc
    assert nc.lock(target="running").ok
    assert nc.unlock(target="running").ok
    with nc.locked(target="running"):
        assert nc.get_config(source="running").ok


def test_create_of_existing_entry_is_data_exists(session: Session) -> None:
    nc = session.nc
    entry = f'<users xmlns="{USERS_NS}"><user><name>alice</name><uid>1001</uid></user></users>'
    assert nc.edit_config(target="running", config=config(entry)).ok
    create = (
        f'<users xmlns="{USERS_NS}" xmlns:nc="{BASE_NS}">'
        '<user nc:operation="create"><name>alice</name><uid>1002</uid></user></users>'
    )
    with pytest.raises(RPCError) as caught:
        nc.edit_config(target="running", config=config(create))
    assert caught.value.tag == "data-exists"
    assert caught.value.type == "application"
    assert caught.value.severity == "error"
    # the failed create changed nothing
    data = data_of(
        nc.get_config(source="running", filter=("subtree", f'<users xmlns="{USERS_NS}"/>'))
    )
    ns = {"u": USERS_NS}
    assert data.findtext("u:users/u:user[u:name='alice']/u:uid", namespaces=ns) == "1001"


def test_unknown_operation_is_an_rpc_error(session: Session) -> None:
    with pytest.raises(RPCError) as caught:
        session.nc.dispatch(etree.fromstring('<no-such-op xmlns="urn:example:nothing"/>'))
    assert caught.value.tag == "operation-not-supported"
    assert caught.value.type == "protocol"
    # the session survives an rpc-error
    assert session.nc.get_config(source="running").ok
