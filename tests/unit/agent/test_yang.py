"""YANG modules on the device: hello, YANG library, get-schema, and edits validated against them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from callhome.agent.datastore.core import NETCONF_BASE_NS, Datastore
from callhome.agent.netconf_service import CAPABILITIES, NetconfService
from callhome.agent.yang.library import (
    MONITORING_NS,
    STATE_LIST_KEYS,
    YANG_LIBRARY_NS,
    ModuleLibrary,
    protocol_modules,
)
from callhome.agent.yang.modules import YangModules
from callhome.errors import ConfigError, ErrorTag, RpcError

NC = NETCONF_BASE_NS
EXD = "urn:example:device"
YANG_DIR = Path(__file__).parent / "yang"
DEVICE_FILE = YANG_DIR / "example-device@2024-05-01.yang"
OTHER = "urn:example:other"


def load(**kwargs: Any) -> YangModules:
    return YangModules([YANG_DIR], search_path=[YANG_DIR / "lib"], **kwargs)


@pytest.fixture(scope="module")
def yang() -> YangModules:
    return load()


def library_of(yang: YangModules | None) -> ModuleLibrary:
    """The agent's library for these modules, with no folder of standard module texts."""
    return ModuleLibrary(protocol_modules(CAPABILITIES, notifications=False), yang)


def serve(yang: YangModules | None) -> NetconfService:
    """A service wired as the agent wires it (``callhome.agent.service.Agent``)."""
    library = library_of(yang)
    if yang is None:
        datastore = Datastore(list_keys=STATE_LIST_KEYS, state_providers=[library.state])
    else:
        datastore = Datastore(
            list_keys={**STATE_LIST_KEYS, **yang.list_keys},
            defaults=yang.defaults,
            schema=yang,
            state_providers=[library.state],
        )
    service = NetconfService(datastore)
    library.serve(service)
    return service


def op(body: str) -> etree._Element:
    rpc = etree.fromstring(
        f'<rpc xmlns="{NC}" xmlns:nc="{NC}" xmlns:ncm="{MONITORING_NS}" message-id="1">{body}</rpc>'
    )
    return rpc[0]


def edit(body: str, target: str = "running", **options: str) -> str:
    extra = "".join(
        f"<{k.replace('_', '-')}>{v}</{k.replace('_', '-')}>" for k, v in options.items()
    )
    return f"<edit-config><target><{target}/></target>{extra}<config>{body}</config></edit-config>"


def device(inner: str) -> str:
    return f'<interfaces xmlns="{EXD}">{inner}</interfaces>'


def iface(name: str, extra: str = "", type: str = "ethernet") -> str:
    return f"<interface><name>{name}</name><type>{type}</type>{extra}</interface>"


def stored(service: NetconfService, source: str = "running") -> bytes:
    return etree.tostring(service.datastore.read(source))


def refused(service: NetconfService, body: str) -> Any:
    session = service.session_ids[0] if service.session_ids else service.open_session(lambda: None)
    with pytest.raises(RpcError) as info:
        service.handle(session, op(body))
    return info.value.errors


@pytest.fixture
def service(yang: YangModules) -> NetconfService:
    svc = serve(yang)
    svc.open_session(lambda: None)
    return svc


def ok(service: NetconfService, body: str) -> etree._Element | None:
    return service.handle(service.session_ids[0], op(body))


# -- what the device tells -------------------------------------------------------------------


def test_hello_advertises_the_yang_library_and_yang_1_modules(service, yang):
    caps = service.capabilities
    assert caps[: len(CAPABILITIES)] == list(CAPABILITIES)
    assert (
        "urn:ietf:params:netconf:capability:yang-library:1.0?revision=2016-06-21"
        f"&module-set-id={library_of(yang).module_set_id}"
    ) in caps
    assert "urn:example:legacy?module=example-legacy&revision=2023-01-15&features=clock" in caps
    assert (
        f"{MONITORING_NS}?module=ietf-netconf-monitoring&revision=2010-10-04" in caps
    )  # get-schema
    # YANG 1.1 modules are announced through the YANG library only (RFC 7950 section 5.6.4)
    assert not any("module=example-device" in c for c in caps)


def test_features_off_are_not_advertised_and_their_nodes_are_unknown():
    yang = load(features=[])
    svc = serve(yang)
    assert "urn:example:legacy?module=example-legacy&revision=2023-01-15" in svc.capabilities
    assert yang.module_set_id != load().module_set_id
    svc.open_session(lambda: None)
    (error,) = refused(svc, edit(f'<system xmlns="{EXD}"><fan-speed>10</fan-speed></system>'))
    assert error.tag is ErrorTag.UNKNOWN_ELEMENT
    assert error.path == "/device:system/device:fan-speed"


def test_get_lists_modules_state(service, yang):
    data = ok(service, f'<get><filter><modules-state xmlns="{YANG_LIBRARY_NS}"/></filter></get>')
    ns = {"y": YANG_LIBRARY_NS}
    assert data.xpath("string(y:modules-state/y:module-set-id)", namespaces=ns) == (
        library_of(yang).module_set_id
    )
    modules = {
        m.findtext("y:name", namespaces=ns): m for m in data.xpath("//y:module", namespaces=ns)
    }
    assert {"example-device", "example-legacy", "example-types"} <= set(modules)
    assert {"ietf-netconf", "ietf-yang-library", "ietf-netconf-monitoring"} <= set(modules)
    dev = modules["example-device"]
    assert dev.findtext("y:revision", namespaces=ns) == "2024-05-01"
    assert dev.findtext("y:namespace", namespaces=ns) == EXD
    assert dev.findtext("y:conformance-type", namespaces=ns) == "implement"
    assert [f.text for f in dev.findall("y:feature", namespaces=ns)] == ["fan-control"]
    assert modules["example-types"].findtext("y:conformance-type", namespaces=ns) == "import"


def test_get_lists_netconf_state_schemas(service):
    data = ok(service, f'<get><filter><netconf-state xmlns="{MONITORING_NS}"/></filter></get>')
    ns = {"m": MONITORING_NS}
    rows = {
        (s.findtext("m:identifier", namespaces=ns), s.findtext("m:version", namespaces=ns)): s
        for s in data.xpath("//m:schema", namespaces=ns)
    }
    assert set(rows) == {
        ("example-device", "2024-05-01"),
        ("example-legacy", "2023-01-15"),
        ("example-types", "2024-04-01"),
    }
    for row in rows.values():
        assert row.findtext("m:format", namespaces=ns) == "yang"
        assert row.findtext("m:location", namespaces=ns) == "NETCONF"
    # the configuration is still there beside the state data, and state stays out of get-config
    ok(service, edit(device(iface("eth0"))))
    assert ok(service, "<get/>").find(f"{{{EXD}}}interfaces") is not None
    assert (
        ok(service, "<get-config><source><running/></source></get-config>").find(
            f"{{{MONITORING_NS}}}netconf-state"
        )
        is None
    )


# -- get-schema ------------------------------------------------------------------------------


def test_get_schema_returns_the_file_text_exactly(service):
    reply = ok(
        service, "<ncm:get-schema><ncm:identifier>example-device</ncm:identifier></ncm:get-schema>"
    )
    assert reply.tag == f"{{{MONITORING_NS}}}data"
    assert reply.text == DEVICE_FILE.read_text()
    imported = ok(
        service,
        "<ncm:get-schema><ncm:identifier>example-types</ncm:identifier>"
        "<ncm:version>2024-04-01</ncm:version><ncm:format>ncm:yang</ncm:format></ncm:get-schema>",
    )
    assert imported.text == (YANG_DIR / "lib" / "example-types@2024-04-01.yang").read_text()


@pytest.mark.parametrize(
    ("params", "tag", "bad"),
    [
        ("<ncm:identifier>no-such-module</ncm:identifier>", ErrorTag.INVALID_VALUE, "identifier"),
        (
            "<ncm:identifier>example-device</ncm:identifier><ncm:version>1999-01-01</ncm:version>",
            ErrorTag.INVALID_VALUE,
            "identifier",
        ),
        (
            "<ncm:identifier>example-device</ncm:identifier><ncm:format>yin</ncm:format>",
            ErrorTag.INVALID_VALUE,
            "format",
        ),
        ("", ErrorTag.MISSING_ELEMENT, "identifier"),
        (
            "<ncm:identifier>x</ncm:identifier><ncm:colour>red</ncm:colour>",
            ErrorTag.UNKNOWN_ELEMENT,
            "colour",
        ),
    ],
)
def test_get_schema_errors(service, params, tag, bad):
    (error,) = refused(service, f"<ncm:get-schema>{params}</ncm:get-schema>")
    assert error.tag is tag
    assert error.info_items["bad-element"] == bad


# -- validation of edits ---------------------------------------------------------------------


def test_a_valid_edit_is_stored(service):
    assert (
        ok(service, edit(device(iface("eth0", "<vlan>10</vlan>") + iface("lo", type="loopback"))))
        is None
    )
    got = ok(service, "<get-config><source><running/></source></get-config>")
    names = got.xpath("//e:interface/e:name/text()", namespaces={"e": EXD})
    assert names == ["eth0", "lo"]


INVALID = [
    # (config, error-tag, error-app-tag, error-path, bad-element)
    (
        f'<system xmlns="{EXD}"><mtu>9001</mtu></system>',
        ErrorTag.INVALID_VALUE,
        None,
        "/device:system/device:mtu",
        "mtu",
    ),
    (
        f'<system xmlns="{EXD}"><mtu>big</mtu></system>',
        ErrorTag.INVALID_VALUE,
        None,
        "/device:system/device:mtu",
        "mtu",
    ),
    (
        f'<system xmlns="{EXD}"><hostname>Router_1</hostname></system>',
        ErrorTag.INVALID_VALUE,
        None,
        "/device:system/device:hostname",
        "hostname",
    ),
    (
        f'<system xmlns="{EXD}"><colour>red</colour></system>',
        ErrorTag.UNKNOWN_ELEMENT,
        None,
        "/device:system/device:colour",
        "colour",
    ),
    (
        device("<interface><type>ethernet</type></interface>"),
        ErrorTag.MISSING_ELEMENT,
        None,
        "/device:interfaces/device:interface",
        "name",
    ),
    (
        device("<interface><name>eth5</name></interface>"),
        ErrorTag.MISSING_ELEMENT,
        None,
        "/device:interfaces/device:interface[device:name='eth5']",
        "type",
    ),
    (
        device(iface("eth0", type="token-ring")),
        ErrorTag.INVALID_VALUE,
        None,
        "/device:interfaces/device:interface[device:name='eth0']/device:type",
        "type",
    ),
    (
        device(iface("eth0", "<vlan>1</vlan>")),
        ErrorTag.OPERATION_FAILED,
        "must-violation",
        "/device:interfaces/device:interface[device:name='eth0']/device:vlan",
        None,
    ),
    (
        device(iface("eth0", "<peer>eth9</peer>")),
        ErrorTag.DATA_MISSING,
        "instance-required",
        "/device:interfaces/device:interface[device:name='eth0']/device:peer",
        "peer",
    ),
    (
        device(iface("eth0", '<x:extra xmlns:x="urn:example:unknown"/>')),
        ErrorTag.UNKNOWN_NAMESPACE,
        None,
        "/device:interfaces/device:interface[device:name='eth0']/x:extra",
        "extra",
    ),
]


@pytest.mark.parametrize(("body", "tag", "app_tag", "path", "bad"), INVALID)
@pytest.mark.parametrize("target", ["running", "candidate"])
def test_an_invalid_edit_changes_nothing(service, target, body, tag, app_tag, path, bad):
    ok(service, edit(device(iface("eth0", "<vlan>10</vlan>"))))
    before = {name: stored(service, name) for name in ("running", "candidate")}
    (error,) = refused(service, edit(body, target))
    assert error.tag is tag, error.describe()
    assert error.app_tag == app_tag
    assert error.path == path
    assert error.info_items.get("bad-element") == bad
    assert error.message
    assert {name: stored(service, name) for name in ("running", "candidate")} == before
    assert not service.datastore.candidate_modified


def test_rollback_on_error_undoes_the_whole_edit(service):
    ok(service, edit(device(iface("eth0"))))
    before = stored(service)
    body = device(
        '<interface nc:operation="create"><name>eth0</name><type>ethernet</type></interface>'
        + iface("eth1")
    )
    (error,) = refused(service, edit(body, error_option="rollback-on-error"))
    assert error.tag is ErrorTag.DATA_EXISTS
    assert stored(service) == before


def test_continue_on_error_keeps_what_succeeded_when_the_result_is_valid(service):
    ok(service, edit(device(iface("eth0"))))
    body = device(
        '<interface nc:operation="create"><name>eth0</name><type>ethernet</type></interface>'
        + iface("eth1")
    )
    (error,) = refused(service, edit(body, error_option="continue-on-error"))
    assert error.tag is ErrorTag.DATA_EXISTS
    names = service.datastore.read().xpath("//e:interface/e:name/text()", namespaces={"e": EXD})
    assert names == ["eth0", "eth1"]


def test_continue_on_error_still_refuses_a_result_that_fails_validation(service):
    # RFC 6241 test-then-set: a validation error means the edit is not performed at all
    ok(service, edit(device(iface("eth0"))))
    before = stored(service)
    errors = refused(
        service,
        edit(
            device(iface("eth1") + iface("eth2", "<vlan>5000</vlan>")),
            error_option="continue-on-error",
        ),
    )
    assert [e.tag for e in errors] == [ErrorTag.INVALID_VALUE]
    assert stored(service) == before


def test_list_keys_come_from_the_schema(service, yang):
    assert yang.list_keys[f"{{{EXD}}}interface"] == (f"{{{EXD}}}name",)
    assert yang.list_keys[f"{{{EXD}}}system"] == ()
    ok(service, edit(device(iface("eth0"))))
    # the key is not the first child here: schemaless guessing would take <type> as the key
    ok(
        service,
        edit(
            device(
                "<interface><type>ethernet</type><name>eth0</name><description>up</description></interface>"
            )
        ),
    )
    entries = service.datastore.read().xpath("//e:interface", namespaces={"e": EXD})
    assert len(entries) == 1
    assert entries[0].findtext(f"{{{EXD}}}description") == "up"
    # a container is matched by name, even when it starts with a leaf
    ok(service, edit(f'<system xmlns="{EXD}"><hostname>a</hostname></system>'))
    ok(service, edit(f'<system xmlns="{EXD}"><hostname>b</hostname></system>'))
    assert service.datastore.read().xpath("//e:hostname/text()", namespaces={"e": EXD}) == ["b"]


def test_schemaless_subtrees_are_not_validated(service):
    other = f'<system xmlns="{OTHER}"><mtu>99999</mtu><anything><at>all</at></anything></system>'
    assert ok(service, edit(other)) is None
    assert service.datastore.read().find(f"{{{OTHER}}}system") is not None
    # and the schemaless data does not hide an invalid modeled subtree in the same edit
    (error,) = refused(service, edit(other + f'<system xmlns="{EXD}"><mtu>1</mtu></system>'))
    assert error.tag is ErrorTag.INVALID_VALUE


def test_without_modules_the_datastore_stays_schemaless():
    svc = serve(None)
    session = svc.open_session(lambda: None)
    assert svc.capabilities[: len(CAPABILITIES)] == list(CAPABILITIES)
    svc.handle(
        session, op(edit(f'<system xmlns="{EXD}"><mtu>99999</mtu><colour>red</colour></system>'))
    )
    assert svc.datastore.read().find(f"{{{EXD}}}system/{{{EXD}}}colour") is not None
    # get-schema is served all the same (for the protocol modules), and knows no such module
    with pytest.raises(RpcError) as info:
        svc.handle(
            session, op("<ncm:get-schema><ncm:identifier>x</ncm:identifier></ncm:get-schema>")
        )
    assert info.value.errors[0].tag is ErrorTag.INVALID_VALUE


def test_test_option_set_skips_validation_but_commit_checks(service):
    ok(
        service,
        edit(f'<system xmlns="{EXD}"><mtu>9999</mtu></system>', "candidate", test_option="set"),
    )
    assert service.datastore.candidate_modified
    running = stored(service)
    (error,) = refused(service, "<commit/>")
    assert error.tag is ErrorTag.INVALID_VALUE and error.path == "/device:system/device:mtu"
    assert stored(service) == running
    (error,) = refused(service, "<validate><source><candidate/></source></validate>")
    assert error.tag is ErrorTag.INVALID_VALUE


def test_validate_and_copy_config_check_inline_configurations(service):
    bad = f'<config><system xmlns="{EXD}"><mtu>10</mtu></system></config>'
    good = f'<config><system xmlns="{EXD}"><mtu>1400</mtu></system></config>'
    (error,) = refused(service, f"<validate><source>{bad}</source></validate>")
    assert error.tag is ErrorTag.INVALID_VALUE
    assert ok(service, f"<validate><source>{good}</source></validate>") is None
    before = stored(service)
    refused(
        service, f"<copy-config><target><running/></target><source>{bad}</source></copy-config>"
    )
    assert stored(service) == before
    ok(service, f"<copy-config><target><running/></target><source>{good}</source></copy-config>")
    assert service.datastore.read().xpath("//e:mtu/text()", namespaces={"e": EXD}) == ["1400"]


def test_duplicate_containers_and_list_entries_are_refused(service):
    twice = f'<config><system xmlns="{EXD}"/><system xmlns="{EXD}"/></config>'
    (error,) = refused(service, f"<validate><source>{twice}</source></validate>")
    assert error.app_tag == "too-many-elements"
    same = f"<config>{device(iface('a') + iface('a'))}</config>"
    (error,) = refused(service, f"<validate><source>{same}</source></validate>")
    assert error.app_tag == "data-not-unique"


def test_schema_defaults_are_reported_with_report_all(service):
    ok(service, edit(device(iface("eth0"))))
    wd = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
    data = ok(
        service,
        f'<get-config><source><running/></source><with-defaults xmlns="{wd}">report-all'
        "</with-defaults></get-config>",
    )
    e = {"e": EXD}
    assert data.xpath("//e:system/e:mtu/text()", namespaces=e) == ["1500"]
    assert data.xpath("//e:interface/e:enabled/text()", namespaces=e) == ["true"]


def test_empty_values_and_type_empty(service):
    ok(service, edit(device(iface("eth0", "<description></description><shutdown/>"))))
    (error,) = refused(service, edit(device(iface("eth1", "<shutdown>now</shutdown>"))))
    assert error.tag is ErrorTag.INVALID_VALUE


# -- loading ---------------------------------------------------------------------------------


def test_a_missing_import_is_a_config_error(tmp_path):
    (tmp_path / "example-device@2024-05-01.yang").write_text(DEVICE_FILE.read_text())
    with pytest.raises(ConfigError, match="imports 'example-types'"):
        YangModules([tmp_path])


def test_a_misnamed_file_is_a_config_error(tmp_path):
    (tmp_path / "device.yang").write_text(DEVICE_FILE.read_text())
    with pytest.raises(ConfigError, match=r"example-device@2024-05-01\.yang"):
        YangModules([tmp_path / "device.yang"], search_path=[YANG_DIR / "lib"])


def test_an_unknown_feature_is_a_config_error():
    with pytest.raises(ConfigError, match="example-device:warp-drive"):
        load(features=["example-device:warp-drive"])


def test_a_broken_module_is_a_config_error(tmp_path):
    (tmp_path / "broken.yang").write_text("module broken { namespace 'urn:b'; prefix b; leaf x {")
    with pytest.raises(ConfigError, match=r"broken\.yang"):
        YangModules([tmp_path])
