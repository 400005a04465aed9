"""ncclient, a NETCONF client nobody here wrote, manages our agent with YANG modules.

ncclient listens (``manager.call_home``, a fresh port from the OS: it binds without
SO_REUSEADDR, see PEERS.md); our agent, configured with the unit tests' modules, dials it and
plays SSH server and NETCONF server. ncclient reads the YANG library and the schemas with its
own ``get_schema`` and ``get``, and its edits are validated against the modules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from interop_helpers import make_manager_key
from lxml import etree

from harness import AgentProc, os_port

ncclient_manager = pytest.importorskip("ncclient.manager", reason="ncclient is not installed")
RPCError = pytest.importorskip("ncclient.operations").RPCError

pytestmark = pytest.mark.interop

BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
CAP = "urn:ietf:params:netconf:capability:"
EXD = "urn:example:device"
YLIB = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
NCM = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
YANG_DIR = Path(__file__).parent.parent / "unit" / "agent" / "yang"


def config(body: str) -> str:
    return f'<config xmlns="{BASE_NS}">{body}</config>'


def data_of(reply: Any) -> etree._Element:
    root = etree.fromstring(reply.xml.encode())
    data = root.find(f"{{{BASE_NS}}}data")
    assert data is not None, reply.xml
    return data


def running(nc: Any) -> bytes:
    reply = nc.get_config(source="running", filter=("subtree", f'<system xmlns="{EXD}"/>'))
    return etree.tostring(data_of(reply), method="c14n")


@pytest.fixture(scope="module")
def nc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    base = tmp_path_factory.mktemp("ncclient-yang")
    key = make_manager_key(base / "manager")
    port = os_port()
    agent = AgentProc(base / "agent", [f"127.0.0.1:{port}"], [key.public_line])
    with (agent.directory / "agent.toml").open("a") as toml:
        toml.write(f'\n[yang]\nmodules = ["{YANG_DIR}"]\nsearch_path = ["{YANG_DIR / "lib"}"]\n')
    agent.start()
    try:
        session = ncclient_manager.call_home(
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
        yield session
    finally:
        with contextlib.suppress(Exception):
            session.close_session()
        agent.stop()


def test_the_hello_has_the_yang_library_and_monitoring(nc: Any) -> None:
    caps = list(nc.server_capabilities)
    library = [c for c in caps if c.startswith(f"{CAP}yang-library:1.0")]
    assert len(library) == 1, caps
    assert "revision=2016-06-21" in library[0] and "module-set-id=" in library[0]
    assert f"{NCM}?module=ietf-netconf-monitoring&revision=2010-10-04" in caps
    # a YANG 1 module is announced in the hello too (a YANG 1.1 one only in the library)
    assert "urn:example:legacy?module=example-legacy&revision=2023-01-15&features=clock" in caps
    assert not any("module=example-device" in c for c in caps)


def test_get_schema_returns_the_module_text_exactly(nc: Any) -> None:
    reply = nc.get_schema("example-device")
    assert reply.ok
    assert reply.data == (YANG_DIR / "example-device@2024-05-01.yang").read_text()
    imported = nc.get_schema("example-types", version="2024-04-01", format="yang")
    assert imported.data == (YANG_DIR / "lib" / "example-types@2024-04-01.yang").read_text()


def test_get_schema_of_an_unknown_module_is_an_rpc_error(nc: Any) -> None:
    with pytest.raises(RPCError) as info:
        nc.get_schema("no-such-module")
    assert info.value.tag == "invalid-value"


def test_get_with_a_subtree_filter_lists_the_module(nc: Any) -> None:
    select = (
        f'<modules-state xmlns="{YLIB}"><module><name>example-device</name></module>'
        "</modules-state>"
    )
    data = data_of(nc.get(filter=("subtree", select)))
    ns = {"y": YLIB}
    modules = data.findall("y:modules-state/y:module", namespaces=ns)
    assert len(modules) == 1, etree.tostring(data)
    assert modules[0].findtext("y:name", namespaces=ns) == "example-device"
    assert modules[0].findtext("y:revision", namespaces=ns) == "2024-05-01"
    assert modules[0].findtext("y:namespace", namespaces=ns) == EXD
    assert modules[0].findtext("y:conformance-type", namespaces=ns) == "implement"
    assert [f.text for f in modules[0].findall("y:feature", namespaces=ns)] == ["fan-control"]


def test_an_invalid_edit_is_an_rpc_error_and_changes_nothing(nc: Any) -> None:
    assert nc.edit_config(
        target="running", config=config(f'<system xmlns="{EXD}"><mtu>1400</mtu></system>')
    ).ok
    before = running(nc)
    with pytest.raises(RPCError) as info:
        nc.edit_config(
            target="running",
            config=config(
                f'<system xmlns="{EXD}"><hostname>edge</hostname><mtu>70000</mtu></system>'
            ),
        )
    error = info.value
    assert error.tag == "invalid-value"
    assert error.type == "application"
    assert error.path is not None and error.path.strip() == "/device:system/device:mtu"
    assert running(nc) == before


def test_a_valid_edit_reads_back(nc: Any) -> None:
    body = f'<system xmlns="{EXD}"><hostname>edge-1</hostname><mtu>9000</mtu></system>'
    assert nc.edit_config(target="running", config=config(body)).ok
    data = data_of(nc.get_config(source="running", filter=("subtree", f'<system xmlns="{EXD}"/>')))
    ns = {"e": EXD}
    assert data.findtext("e:system/e:hostname", namespaces=ns) == "edge-1"
    assert data.findtext("e:system/e:mtu", namespaces=ns) == "9000"
