"""Paths the device writes name their nodes with prefixes bound to the nodes' namespaces:
error-paths (RFC 6241 section 4.3) and netconf-config-change targets (RFC 6470, an
instance-identifier), whatever prefixes the client's XML used (none, here)."""

from __future__ import annotations

from lxml import etree

from callhome.agent.datastore.core import Datastore
from callhome.agent.netconf_service import NetconfService
from callhome.agent.notifications import EventLog, NotificationCenter
from callhome.errors import RpcError
from callhome.proto.netconf.messages import rpc_error_from_xml, rpc_error_to_xml

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
EX = "urn:example:interfaces"
NCN = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
KEYS = {f"{{{EX}}}interface": (f"{{{EX}}}name",)}


def edit(body: str, operation: str = "") -> etree._Element:
    op = f' xmlns:nc="{NC}" nc:operation="{operation}"' if operation else ""
    return etree.fromstring(
        f'<edit-config xmlns="{NC}"><target><running/></target><config>'
        f'<interfaces xmlns="{EX}"><interface{op}><name>eth0</name>{body}</interface>'
        "</interfaces></config></edit-config>"
    )


def resolve(path_element: etree._Element) -> list[tuple[str, str]]:
    """Each prefixed name in an error-path, as (namespace, local name), through the
    prefixes in scope at the element."""
    names = []
    text = path_element.text or ""
    for step in text.strip("/").split("/"):
        for part in step.replace("[", " ").replace("=", " ").split():
            if ":" in part and not part.startswith("'"):
                prefix, local = part.split(":", 1)
                names.append((path_element.nsmap[prefix], local))
    return names


def test_an_rpc_error_path_binds_its_prefixes_on_the_error_path_element() -> None:
    service = NetconfService(Datastore(list_keys=KEYS))
    session = service.open_session(lambda: None)
    service.handle(session, edit("<mtu>1500</mtu>"))
    try:
        service.handle(session, edit("<mtu>9000</mtu>", "create"))
    except RpcError as exc:
        (error,) = exc.errors
    else:  # pragma: no cover - the create must fail
        raise AssertionError("create of an existing entry succeeded")
    assert error.path == "/interfaces:interfaces/interfaces:interface[interfaces:name='eth0']"
    wire = etree.fromstring(etree.tostring(rpc_error_to_xml(error)))
    path = wire.find(f"{{{NC}}}error-path")
    assert path is not None
    assert resolve(path) == [(EX, "interfaces"), (EX, "interface"), (EX, "name")]
    # and the manager, reading it, keeps the binding
    assert rpc_error_from_xml(wire).path_namespaces == {"interfaces": EX}


def test_a_config_change_target_is_an_instance_identifier_in_the_right_namespace(
    tmp_path,
) -> None:
    sent: list[etree._Element] = []
    center = NotificationCenter(EventLog(tmp_path / "events.jsonl"), list_keys=KEYS)
    center.notify = lambda content: sent.append(content)  # type: ignore[method-assign]
    service = NetconfService(Datastore(list_keys=KEYS), notifications=center)
    session = service.open_session(lambda: None)
    service.handle(session, edit("<mtu>1500</mtu>"))
    (change,) = [c for c in sent if etree.QName(c).localname == "netconf-config-change"]
    (target,) = change.findall(f"{{{NCN}}}edit/{{{NCN}}}target")
    assert resolve(target) == [(EX, "interfaces")]
    assert (target.text or "").startswith("/interfaces:interfaces")
