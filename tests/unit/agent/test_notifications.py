"""NETCONF notifications on the device: subscriptions, filters, replay, stopTime, the log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from callhome.agent.datastore.core import NETCONF_BASE_NS, Datastore
from callhome.agent.netconf_service import NetconfService
from callhome.agent.notifications import (
    INTERLEAVE_CAPABILITY,
    NOTIFICATION_CAPABILITY,
    NS_NC_NOTIFICATIONS,
    NS_NETMOD_NOTIF,
    NS_NOTIF,
    EventLog,
    NotificationCenter,
    format_time,
    parse_time,
)
from callhome.errors import ErrorTag, RpcError

NC = NETCONF_BASE_NS
T = "urn:example:t"
NCN = NS_NC_NOTIFICATIONS


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Sink:
    """Collects what one session was sent: (eventTime, tag of the content)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, etree._Element]] = []

    def __call__(self, event_time: str, content: Any) -> None:
        assert len(content) == 1
        self.sent.append((event_time, content[0]))

    @property
    def names(self) -> list[str]:
        return [etree.QName(el).localname for _, el in self.sent]

    def clear(self) -> None:
        self.sent.clear()


def subscription(body: str = "", **attrs: str) -> etree._Element:
    return etree.fromstring(f'<create-subscription xmlns="{NS_NOTIF}">{body}</create-subscription>')


def event(name: str, value: str = "") -> etree._Element:
    el = etree.Element(f"{{{T}}}{name}", nsmap={"t": T})
    if value:
        etree.SubElement(el, f"{{{T}}}value").text = value
    return el


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def center(clock: Clock) -> NotificationCenter:
    return NotificationCenter(EventLog(None, clock=clock), clock=clock)


def rpc_error(center: NotificationCenter, session: int, body: str) -> Any:
    with pytest.raises(RpcError) as info:
        center.subscribe(session, subscription(body))
    return info.value.first


def test_times_round_trip() -> None:
    micros = 1_700_000_000_123_456
    text = format_time(micros)
    assert text == "2023-11-14T22:13:20.123456Z"
    assert parse_time(text) == micros
    assert parse_time("2023-11-14T23:13:20.123456+01:00") == micros
    assert parse_time("2023-11-14") is None
    assert parse_time("yesterday") is None
    assert parse_time("2023-11-14T22:13:20") is None  # no offset


def test_live_events_reach_subscribers_only(center: NotificationCenter) -> None:
    a, b = Sink(), Sink()
    center.attach(1, a)
    center.attach(2, b)
    center.subscribe(1, subscription())
    assert center.subscribed(1) and not center.subscribed(2)
    center.notify(event("alarm"))
    assert a.names == ["alarm"]
    assert b.names == []


def test_second_subscription_is_operation_failed(center: NotificationCenter) -> None:
    center.attach(1, Sink())
    center.subscribe(1, subscription())
    assert rpc_error(center, 1, "").tag is ErrorTag.OPERATION_FAILED


def test_unknown_stream_and_parameters(center: NotificationCenter) -> None:
    center.attach(1, Sink())
    err = rpc_error(center, 1, "<stream>OTHER</stream>")
    assert err.tag is ErrorTag.INVALID_VALUE and err.info_items["bad-element"] == "stream"
    err = rpc_error(center, 1, "<bogus/>")
    assert err.tag is ErrorTag.UNKNOWN_ELEMENT
    center.subscribe(1, subscription("<stream>NETCONF</stream>"))


def test_time_parameter_errors(center: NotificationCenter, clock: Clock) -> None:
    center.attach(1, Sink())
    now = format_time(int(clock.now * 1e6))
    later = format_time(int((clock.now + 60) * 1e6))
    earlier = format_time(int((clock.now - 60) * 1e6))
    err = rpc_error(center, 1, f"<stopTime>{now}</stopTime>")
    assert err.tag is ErrorTag.MISSING_ELEMENT and err.info_items["bad-element"] == "startTime"
    err = rpc_error(center, 1, f"<startTime>{later}</startTime>")
    assert err.tag is ErrorTag.BAD_ELEMENT and err.info_items["bad-element"] == "startTime"
    err = rpc_error(center, 1, f"<startTime>{now}</startTime><stopTime>{earlier}</stopTime>")
    assert err.tag is ErrorTag.BAD_ELEMENT and err.info_items["bad-element"] == "stopTime"
    err = rpc_error(center, 1, "<startTime>noon</startTime>")
    assert err.tag is ErrorTag.INVALID_VALUE
    assert not center.subscribed(1)


def test_subtree_filter(center: NotificationCenter) -> None:
    sink = Sink()
    center.attach(1, sink)
    center.subscribe(1, subscription(f'<filter type="subtree"><alarm xmlns="{T}"/></filter>'))
    center.notify(event("alarm"))
    center.notify(event("other"))
    assert sink.names == ["alarm"]


def test_subtree_filter_content_match(center: NotificationCenter) -> None:
    sink = Sink()
    center.attach(1, sink)
    center.subscribe(
        1, subscription(f'<filter><alarm xmlns="{T}"><value>major</value></alarm></filter>')
    )
    center.notify(event("alarm", "minor"))
    center.notify(event("alarm", "major"))
    assert [el[0].text for _, el in sink.sent] == ["major"]


def test_xpath_filter(center: NotificationCenter) -> None:
    sink = Sink()
    center.attach(1, sink)
    center.subscribe(
        1, subscription(f'<filter type="xpath" xmlns:t="{T}" select="/t:alarm[t:value=\'x\']"/>')
    )
    center.notify(event("alarm", "x"))
    center.notify(event("alarm", "y"))
    center.notify(event("other", "x"))
    assert sink.names == ["alarm"]
    assert sink.sent[0][1][0].text == "x"


@pytest.mark.parametrize(
    "body",
    [
        '<filter type="xpath" select="/t:alarm[["/>',
        '<filter type="xpath" select="/nope:alarm"/>',
        '<filter type="xpath" select="count(/*)"/>',
    ],
)
def test_bad_xpath_filter_is_invalid_value(center: NotificationCenter, body: str) -> None:
    center.attach(1, Sink())
    err = rpc_error(center, 1, body)
    assert err.tag is ErrorTag.INVALID_VALUE
    assert err.info_items["bad-element"] == "filter"
    assert not center.subscribed(1)


def test_unknown_filter_type(center: NotificationCenter) -> None:
    center.attach(1, Sink())
    err = rpc_error(center, 1, '<filter type="regex"/>')
    assert err.tag is ErrorTag.BAD_ATTRIBUTE and err.info_items["bad-element"] == "filter"


def test_replay_from_start_time(center: NotificationCenter, clock: Clock) -> None:
    for i in range(5):
        clock.now += 10
        center.notify(event(f"e{i}"))
    sink = Sink()
    center.attach(1, sink)
    start = format_time(int((clock.now - 25) * 1e6))  # e2, e3 and e4, not e0 or e1
    center.subscribe(1, subscription(f"<startTime>{start}</startTime>"))
    # the session-start of this very session was logged before the subscription began
    assert sink.names == ["e2", "e3", "e4", "netconf-session-start", "replayComplete"]
    assert etree.QName(sink.sent[-1][1]).namespace == NS_NETMOD_NOTIF
    times = [parse_time(t) for t, _ in sink.sent]
    assert times == sorted(times)
    sink.clear()
    center.notify(event("live"))
    assert sink.names == ["live"]


def test_replay_is_filtered(center: NotificationCenter, clock: Clock) -> None:
    center.notify(event("alarm"))
    center.notify(event("other"))
    sink = Sink()
    center.attach(1, sink)
    start = format_time(0)
    center.subscribe(
        1,
        subscription(f'<filter><alarm xmlns="{T}"/></filter><startTime>{start}</startTime>'),
    )
    assert sink.names == ["alarm", "replayComplete"]


def test_stop_time_in_the_past_completes_at_once(center: NotificationCenter, clock: Clock) -> None:
    clock.now += 1
    center.notify(event("a"))
    stop = format_time(int(clock.now * 1e6) + 1)
    clock.now += 1
    center.notify(event("b"))
    sink = Sink()
    center.attach(1, sink)
    center.subscribe(
        1, subscription(f"<startTime>{format_time(0)}</startTime><stopTime>{stop}</stopTime>")
    )
    assert sink.names == ["a", "replayComplete", "notificationComplete"]
    assert not center.subscribed(1)
    center.notify(event("c"))
    assert sink.names[-1] == "notificationComplete"
    center.subscribe(1, subscription())  # a new subscription once the old one ended
    assert center.subscribed(1)


def test_stop_time_in_the_future(center: NotificationCenter, clock: Clock) -> None:
    sink = Sink()
    center.attach(1, sink)
    start = format_time(int(clock.now * 1e6))
    stop = format_time(int((clock.now + 30) * 1e6))
    center.subscribe(1, subscription(f"<startTime>{start}</startTime><stopTime>{stop}</stopTime>"))
    clock.now += 10
    center.notify(event("inside"))
    clock.now += 30
    center.notify(event("after"))
    assert sink.names[-2:] == ["inside", "notificationComplete"]
    assert not center.subscribed(1)


def test_stop_time_expire_without_events(center: NotificationCenter, clock: Clock) -> None:
    sink = Sink()
    center.attach(1, sink)
    start = format_time(int(clock.now * 1e6))
    stop = format_time(int((clock.now + 5) * 1e6))
    center.subscribe(1, subscription(f"<startTime>{start}</startTime><stopTime>{stop}</stopTime>"))
    center.expire()
    assert center.subscribed(1)
    clock.now += 6
    center.expire()
    assert sink.names[-1] == "notificationComplete" and not center.subscribed(1)


def test_session_start_and_end(center: NotificationCenter) -> None:
    watcher = Sink()
    center.attach(1, watcher)
    center.subscribe(1, subscription())
    center.attach(2, Sink(), username="admin", source_host="192.0.2.1")
    center.detach(2, "killed", killed_by=1)
    center.detach(2)  # idempotent
    assert watcher.names == ["netconf-session-start", "netconf-session-end"]
    start, end = (el for _, el in watcher.sent)
    assert start.findtext(f"{{{NCN}}}username") == "admin"
    assert start.findtext(f"{{{NCN}}}session-id") == "2"
    assert start.findtext(f"{{{NCN}}}source-host") == "192.0.2.1"
    assert end.findtext(f"{{{NCN}}}killed-by") == "1"
    assert end.findtext(f"{{{NCN}}}termination-reason") == "killed"


# -- through the NETCONF service ---------------------------------------------------------------


@pytest.fixture
def service(center: NotificationCenter) -> NetconfService:
    return NetconfService(Datastore(list_keys={f"{{{T}}}top": ()}), notifications=center)


def op(body: str) -> etree._Element:
    return etree.fromstring(f'<rpc xmlns="{NC}" message-id="1">{body}</rpc>')[0]


def open_session(service: NetconfService, sink: Sink, user: str = "") -> int:
    sid = service.open_session(lambda: None)
    service.attach_session(sid, sink, username=user, source_host="127.0.0.1")
    return sid


def test_capabilities_advertised(service: NetconfService) -> None:
    assert NOTIFICATION_CAPABILITY in service.capabilities
    assert INTERLEAVE_CAPABILITY in service.capabilities
    plain = NetconfService(Datastore())
    assert NOTIFICATION_CAPABILITY not in plain.capabilities


def test_config_change_and_confirmed_commit(service: NetconfService) -> None:
    sink = Sink()
    sid = open_session(service, sink, "fred")
    assert service.handle(sid, subscription()) is None
    edit = (
        f'<edit-config><target><running/></target><config><top xmlns="{T}"><mtu>9000</mtu>'
        "</top></config></edit-config>"
    )
    service.handle(sid, op(edit))
    assert sink.names == ["netconf-config-change"]
    change = sink.sent[0][1]
    assert change.findtext(f"{{{NCN}}}datastore") == "running"
    by = change.find(f"{{{NCN}}}changed-by")
    assert by is not None
    assert by.findtext(f"{{{NCN}}}username") == "fred"
    assert by.findtext(f"{{{NCN}}}session-id") == str(sid)
    edits = change.findall(f"{{{NCN}}}edit")
    assert edits and edits[0].findtext(f"{{{NCN}}}operation") == "merge"
    assert (edits[0].findtext(f"{{{NCN}}}target") or "").endswith("top")
    sink.clear()
    # candidate edits are not reported; the commit that brings them to running is
    service.handle(sid, op(edit.replace("running", "candidate").replace("9000", "1500")))
    assert sink.names == []
    service.handle(sid, op("<commit><confirmed/><confirm-timeout>60</confirm-timeout></commit>"))
    assert "netconf-confirmed-commit" in sink.names and "netconf-config-change" in sink.names
    confirmed = next(el for _, el in sink.sent if etree.QName(el).localname.endswith("commit"))
    assert confirmed.findtext(f"{{{NCN}}}confirm-event") == "start"
    assert confirmed.findtext(f"{{{NCN}}}timeout") == "60"
    sink.clear()
    service.handle(sid, op("<commit/>"))
    assert any(el.findtext(f"{{{NCN}}}confirm-event") == "complete" for _, el in sink.sent)


def test_device_change_is_changed_by_server(service: NetconfService) -> None:
    sink = Sink()
    sid = open_session(service, sink)
    service.handle(sid, subscription())
    config = etree.fromstring(f'<config xmlns="{NC}"><top xmlns="{T}"><mtu>1</mtu></top></config>')
    service.datastore.edit_config("running", config)
    by = sink.sent[-1][1].find(f"{{{NCN}}}changed-by")
    assert by is not None and by.find(f"{{{NCN}}}server") is not None


def test_close_and_kill_report_reasons(service: NetconfService) -> None:
    watcher = Sink()
    sid = open_session(service, watcher)
    service.handle(sid, subscription())
    other = open_session(service, Sink())
    service.handle(other, op("<close-session/>"))
    service.close_session(other)  # the transport's own call afterwards: no second event
    victim = open_session(service, Sink())
    service.handle(sid, op(f"<kill-session><session-id>{victim}</session-id></kill-session>"))
    dropped = open_session(service, Sink())
    service.close_session(dropped)
    ends = [el for _, el in watcher.sent if etree.QName(el).localname == "netconf-session-end"]
    reasons = [el.findtext(f"{{{NCN}}}termination-reason") for el in ends]
    assert reasons == ["closed", "killed", "dropped"]


def test_bad_filter_through_service(service: NetconfService) -> None:
    sid = open_session(service, Sink())
    with pytest.raises(RpcError) as info:
        service.handle(sid, subscription('<filter type="xpath" select="//["/>'))
    assert info.value.first.tag is ErrorTag.INVALID_VALUE


# -- the log -----------------------------------------------------------------------------------


def test_log_survives_restart(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "n.log"
    first = EventLog(path, clock=clock)
    for i in range(3):
        first.append(event(f"e{i}"))
    first.close()
    again = EventLog(path, clock=clock)
    assert [etree.QName(e.element()).localname for e in again] == ["e0", "e1", "e2"]
    later = again.append(event("e3"))
    assert later.micros > max(e.micros for e in again.since(0)[:-1])


def test_log_times_strictly_increase(clock: Clock) -> None:
    log = EventLog(None, clock=clock)
    times = [log.append(event("e")).micros for _ in range(5)]
    assert times == sorted(set(times))


def test_log_bounded_by_count_and_compacted(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "n.log"
    log = EventLog(path, max_events=10, clock=clock)
    for i in range(35):
        log.append(event(f"e{i}"))
    assert len(log) == 10
    assert etree.QName(next(iter(log)).element()).localname == "e25"
    lines = path.read_bytes().splitlines()
    assert len(lines) < 20  # rewritten when it held twice what is kept
    log.close()
    assert len(EventLog(path, max_events=10, clock=clock)) == 10


def test_log_bounded_by_age(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "n.log"
    log = EventLog(path, max_age=100, clock=clock)
    log.append(event("old"))
    clock.now += 60
    log.append(event("young"))
    clock.now += 60
    log.append(event("new"))
    assert [etree.QName(e.element()).localname for e in log] == ["young", "new"]
    log.close()
    clock.now += 200
    assert len(EventLog(path, max_age=100, clock=clock)) == 0
    assert path.read_bytes() == b""


def test_log_skips_a_torn_line(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "n.log"
    log = EventLog(path, clock=clock)
    log.append(event("whole"))
    log.close()
    with path.open("ab") as f:
        f.write(b'{"t": 17000000')
    again = EventLog(path, clock=clock)
    assert len(again) == 1
    again.append(event("next"))
    again.close()
    records = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert len(records) == 2


def test_replay_after_restart(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "n.log"
    center = NotificationCenter(EventLog(path, clock=clock), clock=clock)
    center.notify(event("before"))
    center.log.close()
    clock.now += 5
    center = NotificationCenter(EventLog(path, clock=clock), clock=clock)
    sink = Sink()
    center.attach(1, sink)
    center.subscribe(1, subscription(f"<startTime>{format_time(0)}</startTime>"))
    assert sink.names == ["before", "netconf-session-start", "replayComplete"]
