"""NETCONF notifications (RFC 5277) with peers nobody here wrote.

* ncclient calls ``create_subscription`` on our agent, reached through call home (ncclient
  listens, the agent dials it): live notifications while RPCs go on (:interleave), replay
  with startTime, and rpc-errors for a bad filter and a second subscription.
* Our manager subscribes to yuma123 netconfd (behind sshd, made to call home by socat, as in
  test_netconfd_device.py): netconfd's netconf-config-change on commit is stored as an event.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from interop_helpers import make_manager_key
from lxml import etree
from test_netconfd_device import SYSTEM_NS, YumaDevice, manager, netconf, yuma_device

from harness import AgentProc, ManagerProc, os_port, wait_until

ncclient_manager = pytest.importorskip("ncclient.manager", reason="ncclient is not installed")
RPCError = pytest.importorskip("ncclient.operations").RPCError

pytestmark = pytest.mark.interop

__all__ = ["manager", "yuma_device"]  # fixtures used here

BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
NOTIF_CAP = "urn:ietf:params:netconf:capability:notification:1.0"
INTERLEAVE_CAP = "urn:ietf:params:netconf:capability:interleave:1.0"
NCN = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
DEMO = "urn:example:demo"


def config(hostname: str) -> str:
    return (
        f'<config xmlns="{BASE_NS}"><system xmlns="{DEMO}">'
        f"<hostname>{hostname}</hostname></system></config>"
    )


def listen(port: int, key: Any) -> Any:
    """ncclient waits for the agent's call on ``port`` and opens a session on it."""
    return ncclient_manager.call_home(
        host="127.0.0.1",
        port=port,
        username="netconf",
        key_filename=str(key.private),
        hostkey_verify=False,
        allow_agent=False,
        look_for_keys=False,
        timeout=30,
    )


def ncclient_session(base: Path, spare: int | None = None) -> tuple[Any, AgentProc, Any, int]:
    """ncclient's session with a new agent; the agent fails over to ``spare`` if given."""
    key = make_manager_key(base / "manager")
    port = os_port()
    addresses = [f"127.0.0.1:{p}" for p in (port, spare) if p is not None]
    agent = AgentProc(base / "agent", addresses, [key.public_line]).start()
    try:
        nc = listen(port, key)
    except Exception as exc:
        agent.stop()
        output = agent.proc.output() if agent.proc else ""
        pytest.fail(f"ncclient got no session from the agent ({exc!r}); agent said:\n{output}")
    return nc, agent, key, port


@pytest.fixture
def nc_session(tmp_path: Path) -> Iterator[tuple[Any, AgentProc]]:
    nc, agent, _key, _port = ncclient_session(tmp_path)
    try:
        yield nc, agent
    finally:
        with contextlib.suppress(Exception):
            nc.close_session()
        agent.stop()


def content_of(notification: Any) -> etree._Element:
    root = etree.fromstring(notification.notification_xml.encode())
    children = [c for c in root if etree.QName(c).localname != "eventTime"]
    return children[0]


def take(nc: Any, name: str, limit: int = 20) -> etree._Element:
    """The next notification named ``name`` (skipping others), within bounded waits."""
    for _ in range(limit):
        notification = nc.take_notification(block=True, timeout=10)
        assert notification is not None, f"no {name} notification came"
        content = content_of(notification)
        if etree.QName(content).localname == name:
            return content
    raise AssertionError(f"no {name} among {limit} notifications")


def test_ncclient_subscribes_through_call_home(nc_session: tuple[Any, AgentProc]) -> None:
    nc, _agent = nc_session
    assert NOTIF_CAP in nc.server_capabilities
    assert INTERLEAVE_CAP in nc.server_capabilities

    # a bad filter is refused and leaves no subscription behind
    with pytest.raises(RPCError) as bad:
        nc.create_subscription(filter=("xpath", "/t:x[["))
    assert bad.value.tag in ("invalid-value", "bad-element")

    nc.create_subscription(filter=("subtree", f'<netconf-config-change xmlns="{NCN}"/>'))
    # interleave: RPCs are served on the subscribed session, and its own change is notified
    nc.edit_config(target="running", config=config("subscribed"))
    change = take(nc, "netconf-config-change")
    assert change.findtext(f"{{{NCN}}}datastore") == "running"
    by = change.find(f"{{{NCN}}}changed-by")
    assert by is not None and by.findtext(f"{{{NCN}}}username") == "netconf"
    assert by.findtext(f"{{{NCN}}}session-id") == str(nc.session_id)

    # one subscription per session (RFC 5277): the second is refused
    with pytest.raises(RPCError) as second:
        nc.create_subscription()
    assert second.value.tag == "operation-failed"


def test_ncclient_replay_with_start_and_stop_time(tmp_path: Path) -> None:
    # ncclient's listener cannot be bound again at once (no SO_REUSEADDR): the agent
    # fails over to a second port for the second session
    spare = os_port()
    first, agent, key, _port = ncclient_session(tmp_path, spare)
    try:
        first.edit_config(target="running", config=config("before"))
        first.close_session()
        # a second session replays what the first one caused (its edit and its end)
        nc = listen(spare, key)
        try:
            nc.create_subscription(
                start_time="2000-01-01T00:00:00Z", stop_time="2999-01-01T00:00:00Z"
            )
            change = take(nc, "netconf-config-change")
            assert change.findtext(f"{{{NCN}}}datastore") == "running"
            end = take(nc, "netconf-session-end")
            assert end.findtext(f"{{{NCN}}}termination-reason") == "closed"
            take(nc, "replayComplete")
        finally:
            with contextlib.suppress(Exception):
                nc.close_session()
    finally:
        agent.stop()


def test_manager_stores_netconfd_notifications(
    manager: ManagerProc, yuma_device: YumaDevice
) -> None:
    (yuma_device.directory / "authorized_keys").write_text(manager.public_key + "\n")
    fingerprint = yuma_device.fingerprint
    approved = manager.cli("approve", fingerprint, "--name", "yuma")
    assert approved.returncode == 0, approved.stderr
    socat = yuma_device.call_home(manager.port)
    try:
        wait_until(lambda: manager.status(fingerprint) == "online", timeout=30)
        caps = manager.devices()[fingerprint]["capabilities"]
        assert NOTIF_CAP in caps
        hostname = f'<system xmlns="{SYSTEM_NS}"><hostname>notified</hostname></system>'
        assert "<ok/>" in netconf(
            manager, "edit-config", "--target", "candidate", "--config", hostname
        )
        assert "<ok/>" in netconf(manager, "rpc", f'<commit xmlns="{BASE_NS}"/>')

        def stored() -> list[dict[str, Any]]:
            return [
                e
                for e in manager.events(device="yuma")
                if e["kind"] == "netconf-notification"
                and e["detail"]["name"] == "netconf-config-change"
            ]

        found = wait_until(stored, timeout=20)
        detail = found[-1]["detail"]
        assert detail["namespace"] == NCN
        assert "hostname" in detail["xml"] or "system" in detail["xml"]
        assert detail["eventTime"]
    finally:
        socat.stop()
