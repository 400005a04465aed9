"""What a standards-strict NETCONF client sees of our agent, and does with it.

A strict client (libnetconf2's, for one) reads the modules a server announces, fetches their
texts with get-schema, builds a schema context from them with the announced features, and
creates every RPC from that schema: it refuses to send ``<commit>`` when ``ietf-netconf``'s
``candidate`` feature is not announced. These tests do the same with libyang (already the
agent's validator) against a real ``Agent``'s NETCONF service.
"""

from __future__ import annotations

from pathlib import Path

import asyncssh
import libyang
import pytest
from _libyang import ffi, lib  # type: ignore[import-not-found]
from lxml import etree

from callhome.agent.service import Agent
from callhome.agent.yang.library import MONITORING_NS, YANG_LIBRARY_NS
from callhome.config import AgentConfig
from callhome.errors import ErrorTag, RpcError
from callhome.proto.netconf.capabilities import (
    ModuleCapability,
    YangLibraryCapability,
    parse_capability,
    parse_modules_state,
)

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
YANG_DIR = Path(__file__).parent / "yang"
YUMA_IETF = Path("/usr/share/yuma/modules/ietf")
EXD = "urn:example:device"


def make_agent(state_dir: Path, **yang: object) -> Agent:
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    return Agent(
        AgentConfig.model_validate(
            {
                "state_dir": str(state_dir),
                "endpoints": [{"address": "127.0.0.1:1"}],
                "manager_keys": [key],
                "yang": yang,
            }
        )
    )


@pytest.fixture(params=["schemaless", "with-modules"])
def agent(request: pytest.FixtureRequest, tmp_path: Path) -> Agent:
    if request.param == "schemaless":
        return make_agent(tmp_path)
    return make_agent(tmp_path, modules=[str(YANG_DIR)], search_path=[str(YANG_DIR / "lib")])


def module_caps(agent: Agent) -> dict[str, ModuleCapability]:
    caps = [parse_capability(c) for c in agent.netconf.capabilities]
    return {c.module: c for c in caps if isinstance(c, ModuleCapability)}


def test_every_capability_parses_and_every_module_carries_its_revision(agent: Agent) -> None:
    parsed = [parse_capability(c) for c in agent.netconf.capabilities]  # raises if malformed
    libraries = [c for c in parsed if isinstance(c, YangLibraryCapability)]
    assert len(libraries) == 1 and libraries[0].module_set_id
    modules = module_caps(agent)
    assert modules, "no module is announced"
    for name, cap in modules.items():
        assert cap.revision, f"{name} is announced without its revision"
    base = modules["ietf-netconf"]
    assert (base.namespace, base.revision) == (NC, "2011-06-01")
    # the features are those the datastore has: everything but :url
    assert base.features == (
        "writable-running",
        "candidate",
        "confirmed-commit",
        "rollback-on-error",
        "validate",
        "startup",
        "xpath",
    )
    for name in ("ietf-netconf-monitoring", "ietf-netconf-with-defaults", "ietf-netconf-acm"):
        assert name in modules
    # YANG 1.1 modules are in the library only (RFC 7950 section 5.6.4)
    assert "ietf-netconf-server" not in modules


def library(agent: Agent, session: int) -> dict[str, tuple[str | None, bool]]:
    op = etree.fromstring(
        f'<get xmlns="{NC}"><filter><modules-state xmlns="{YANG_LIBRARY_NS}"/></filter></get>'
    )
    data = agent.netconf.handle(session, op)
    assert data is not None
    _id, rows = parse_modules_state(data)
    return {r.name: (r.revision, r.implemented) for r in rows}


def get_schema(agent: Agent, session: int, name: str, revision: str | None) -> str:
    op = etree.Element(f"{{{MONITORING_NS}}}get-schema")
    etree.SubElement(op, f"{{{MONITORING_NS}}}identifier").text = name
    if revision:
        etree.SubElement(op, f"{{{MONITORING_NS}}}version").text = revision
    data = agent.netconf.handle(session, op)
    assert data is not None and data.text
    return data.text


def test_the_library_lists_every_module_with_its_revision(agent: Agent) -> None:
    session = agent.netconf.open_session(lambda: None)
    listed = library(agent, session)
    for name in (
        "ietf-netconf",
        "ietf-netconf-monitoring",
        "ietf-yang-library",
        "ietf-netconf-acm",
        "ietf-netconf-with-defaults",
        "ietf-netconf-notifications",
        "notifications",
        "nc-notifications",
    ):
        assert listed[name][1], f"{name} is not listed as implemented"
        assert listed[name][0], f"{name} is listed without its revision"
    assert listed["ietf-netconf-server"] == ("2023-12-28", True)
    assert listed["ietf-yang-types"] == ("2013-07-15", False)
    # no package installable here ships ietf-netconf-server: listed, not served, and said so
    with pytest.raises(RpcError) as info:
        get_schema(agent, session, "ietf-netconf-server", None)
    assert info.value.errors[0].tag is ErrorTag.INVALID_VALUE
    assert "not installed" in (info.value.errors[0].message or "")


def set_features(module: libyang.Module, features: tuple[str, ...]) -> None:
    """Turn on exactly ``features`` of ``module`` (the bindings' feature_enable sets one)."""
    names = [ffi.new("char[]", f.encode()) for f in features]
    array = ffi.new("char *[]", [*names, ffi.NULL])
    assert lib.lys_set_implemented(module.cdata, array) == lib.LY_SUCCESS, features


def strict_context(
    agent: Agent, session: int, folder: Path, leave_out: frozenset[str] = frozenset()
) -> libyang.Context:
    """A schema context built as a strict client builds it: the texts of the implemented
    modules and their imports fetched with get-schema, the announced features turned on
    (but for ``leave_out``)."""
    if not (YUMA_IETF / "ietf-netconf@2011-06-01.yang").exists():
        pytest.skip(
            "the IETF module texts the agent serves are not installed "
            "(Debian's libyuma-base, which comes with netconfd)"
        )
    folder.mkdir()
    for name, (revision, _implemented) in library(agent, session).items():
        try:
            text = get_schema(agent, session, name, revision)
        except RpcError:
            continue  # not served (ietf-netconf-server): a client loads it from elsewhere
        (folder / f"{name}@{revision}.yang").write_text(text)
    ctx = libyang.Context(str(folder))
    for name, cap in module_caps(agent).items():
        if not (folder / f"{name}@{cap.revision}.yang").exists():
            continue
        module = ctx.load_module(name)
        set_features(module, tuple(f for f in cap.features if f not in leave_out))
    return ctx


def rpc(ctx: libyang.Context, path: str, value: str | None = None) -> etree._Element:
    node = ctx.create_data_path(path, value=value)
    assert node is not None
    return etree.fromstring(node.print_mem("xml", with_siblings=True))


def test_a_strict_client_builds_its_rpcs_from_the_announced_schema_and_runs_them(
    agent: Agent, tmp_path: Path
) -> None:
    session = agent.netconf.open_session(lambda: None)
    ctx = strict_context(agent, session, tmp_path / "schemas")
    handle = agent.netconf.handle
    assert handle(session, rpc(ctx, "/ietf-netconf:lock/target/candidate")) is None
    edit = rpc(ctx, "/ietf-netconf:edit-config/target/candidate")
    config = etree.SubElement(edit, f"{{{NC}}}config")  # anyxml: the client's own content
    system = etree.SubElement(config, f"{{{EXD}}}system")
    etree.SubElement(system, f"{{{EXD}}}hostname").text = "strict"
    assert handle(session, edit) is None
    assert handle(session, rpc(ctx, "/ietf-netconf:validate/source/candidate")) is None
    assert handle(session, rpc(ctx, "/ietf-netconf:commit")) is None
    assert handle(session, rpc(ctx, "/ietf-netconf:unlock/target/candidate")) is None
    running = agent.datastore.read("running")
    assert running.findtext(f"{{{EXD}}}system/{{{EXD}}}hostname") == "strict"
    reply = handle(
        session, rpc(ctx, "/ietf-netconf-monitoring:get-schema/identifier", "ietf-netconf")
    )
    assert reply is not None and "module ietf-netconf" in (reply.text or "")
    ctx.destroy()


def test_without_the_announced_feature_a_strict_client_refuses_the_rpc(tmp_path: Path) -> None:
    """The check above can fail: a context where candidate is not on will not build
    <commit>, as a strict client would not for a server that does not announce it."""
    agent = make_agent(tmp_path / "agent")
    session = agent.netconf.open_session(lambda: None)
    ctx = strict_context(
        agent, session, tmp_path / "schemas", frozenset({"candidate", "confirmed-commit"})
    )
    with pytest.raises(libyang.LibyangError):
        ctx.create_data_path("/ietf-netconf:commit")
    ctx.destroy()
