import pytest
from lxml import etree

from callhome.agent.datastore.core import Datastore
from callhome.agent.netconf_service import NetconfService
from callhome.agent.schedule import ScheduleState, check, parse
from callhome.errors import RpcError
from callhome.proto.call_home import connection_type_edit
from callhome.proto.schedule import Periodic, Persistent

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NCS = "urn:ietf:params:xml:ns:yang:ietf-netconf-server"


def schedule_config(
    period: float | None, anchor: float | None = None, idle_timeout: float = 180.0
) -> str:
    """The content of ``<config>`` the manager sends to set client ``default``'s schedule."""
    kind = Persistent() if period is None else Periodic(period, anchor, idle_timeout)
    config = connection_type_edit("default", kind)
    return "".join(etree.tostring(child).decode() for child in config)


def kind_xml(inner: str) -> str:
    return (
        f'<netconf-server xmlns="{NCS}"><call-home><netconf-client><name>default</name>'
        f'<connection-type xmlns:nc="{NC}" nc:operation="replace">{inner}</connection-type>'
        "</netconf-client></call-home></netconf-server>"
    )


@pytest.fixture
def device():
    ds = Datastore()
    service = NetconfService(ds)
    service.add_validator(check)
    state = ScheduleState(ds.read(), read=ds.read, clock=lambda: 100.0)
    ds.add_change_listener(state.changed)
    sid = service.open_session(lambda: None)

    def edit(config: str, target: str = "running") -> None:
        op = etree.fromstring(
            f'<edit-config xmlns="{NC}"><target><{target}/></target>'
            f"<config>{config}</config></edit-config>"
        )
        service.handle(sid, op)

    return ds, service, state, sid, edit


def test_absent_schedule_is_persistent(device):
    ds, _, state, _, _ = device
    assert parse(ds.read()) == Persistent() and state.kind == Persistent()


def test_edit_applies_live(device):
    _, _, state, _, edit = device
    heard = []
    state.on_change = lambda: heard.append(state.kind)
    edit(schedule_config(900, 1704067200.0, 60))
    assert state.kind == Periodic(period=900.0, anchor=1704067200.0, idle_timeout=60.0)
    edit(schedule_config(None))
    assert state.kind == Persistent()
    assert len(heard) == 2


@pytest.mark.parametrize(
    "inner, tag, element",
    [
        ("<periodic><period>0</period></periodic>", "invalid-value", "period"),
        ("<periodic><period>-5</period></periodic>", "invalid-value", "period"),
        ("<periodic><period>soon</period></periodic>", "invalid-value", "period"),
        (
            "<periodic><period>5</period><anchor-time>noon</anchor-time></periodic>",
            "invalid-value",
            "anchor-time",
        ),
        ("<periodic><idle-timeout>-1</idle-timeout></periodic>", "invalid-value", "idle-timeout"),
        ("<periodic><often/></periodic>", "bad-element", "often"),
        ("<sometimes/>", "bad-element", "sometimes"),
        ("<persistent/><periodic/>", "bad-element", "periodic"),
    ],
)
def test_invalid_schedule_is_refused_and_old_one_stays(device, inner, tag, element):
    ds, _, state, _, edit = device
    edit(schedule_config(180))
    before = etree.tostring(ds.read())
    with pytest.raises(RpcError) as caught:
        edit(kind_xml(inner))
    (err,) = caught.value.errors
    assert err.tag.value == tag and err.info_items["bad-element"] == element
    assert etree.tostring(ds.read()) == before
    assert state.kind == Periodic(period=180.0)


def test_invalid_schedule_is_refused_through_candidate_commit(device):
    ds, _, state, _, edit = device
    with pytest.raises(RpcError):
        edit(kind_xml("<periodic><period>0</period></periodic>"), target="candidate")
    assert not ds.candidate_modified and state.kind == Persistent()


def test_unrelated_edits_ignore_a_bad_stored_schedule():
    root = etree.fromstring(f'<data xmlns="{NC}">{kind_xml("<nope/>")}</data>')
    assert check(root, root) == []
    with pytest.raises(RpcError):
        parse(root)
