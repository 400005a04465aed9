"""The manager process's own log: refusals answered without a trace, one line per connect
and disconnect. A real manager and a real device, as processes."""

from __future__ import annotations

import re

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from harness import ManagerProc, wait_until

pytestmark = pytest.mark.integration


def test_refusals_cost_one_connection_and_no_log(manager: ManagerProc) -> None:
    before = len(manager.proc.lines) if manager.proc else 0
    admin = {"Authorization": f"Bearer {manager.token}"}
    fp = "SHA256:" + "C" * 42 + "E"
    with httpx.Client(base_url=manager.url, timeout=30) as client:
        assert client.post(f"/v1/devices/{fp}/approve", json={"name": "away"}, headers=admin)
        ports = set()
        statuses = []
        for _ in range(20):
            for method, path, headers, body in [
                ("GET", "/v1/devices", {}, None),
                ("GET", "/v1/devices/nosuch", admin, None),
                ("POST", "/v1/jobs/999/cancel", admin, None),
                ("POST", "/v1/devices/away/netconf", admin, {"operation": "get", "filter": "<"}),
            ]:
                response = client.request(method, path, headers=headers, json=body)
                statuses.append(response.status_code)
                assert response.json()["message"]
                stream = response.extensions["network_stream"]
                ports.add(stream.get_extra_info("client_addr")[1])
    assert sorted(set(statuses)) == [400, 401, 404]
    assert len(ports) == 1  # 80 refusals on one keep-alive connection
    ws = manager.url.replace("http://", "ws://") + "/v1/devices/away/terminal"
    with pytest.raises(InvalidStatus) as caught:
        connect(ws, additional_headers=admin)
    assert caught.value.response.status_code == 409
    assert manager.proc is not None
    logged = "".join(manager.proc.lines[before:])
    assert "Traceback" not in logged and "Exception in ASGI" not in logged, logged
    assert "ERROR" not in logged, logged


def test_connects_and_disconnects_are_logged(manager: ManagerProc, make_agent) -> None:
    agent = make_agent("dev")
    agent.start()
    wait_until(lambda: manager.status(agent.fingerprint) == "pending")
    assert manager.cli("approve", agent.fingerprint, "--name", "dev1").returncode == 0
    wait_until(lambda: manager.status(agent.fingerprint) == "online")
    assert manager.proc is not None
    fp = re.escape(agent.fingerprint)
    manager.proc.wait_for(rf"device dev1 \({fp}\) connected from 127\.0\.0\.1:\d+ over reverse-ssh")
    assert manager.cli("forget", "dev1").returncode == 0
    manager.proc.wait_for(rf"device dev1 \({fp}\) disconnected: forgotten by token:")
    manager.proc.wait_for(rf"unknown device {fp} from 127\.0\.0\.1:\d+ refused until approved")
