"""The CLI against a real manager: malformed input is refused with its reason (HTTP 400,
exit 1) and queues nothing."""

from __future__ import annotations

import base64
import hashlib

import pytest

from harness import ManagerProc

pytestmark = pytest.mark.integration


def identity(n: int) -> str:
    """A well-formed SSH key fingerprint nobody holds."""
    digest = hashlib.sha256(f"device {n}".encode()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def jobs(manager: ManagerProc) -> list[dict]:
    response = manager.api("GET", "/v1/jobs")
    response.raise_for_status()
    return response.json()


def test_malformed_input_is_refused_with_its_reason(manager: ManagerProc) -> None:
    fp = identity(1)
    assert manager.cli("approve", fp, "--name", "dev1").returncode == 0  # away: jobs queue

    bad_filter = manager.cli("netconf", "dev1", "get-config", "--filter", "<system")
    assert bad_filter.returncode == 1
    assert bad_filter.stderr.startswith("error: bad filter: XML fragment is not well-formed")
    bad_store = manager.cli("netconf", "dev1", "get-config", "--source", "runing")
    assert bad_store.returncode == 1
    assert "'runing' is not a datastore" in bad_store.stderr
    bad_config = manager.cli("netconf", "dev1", "edit-config", "--config", "<a><b></a>")
    assert bad_config.returncode == 1 and "bad config" in bad_config.stderr
    direct = manager.api(
        "POST", "/v1/devices/dev1/netconf", json={"operation": "get", "filter": "<a"}
    )
    assert direct.status_code == 400 and "bad filter" in direct.json()["message"]
    assert jobs(manager) == []  # nothing queued

    # the same request, well formed, is queued (the device is away)
    good = manager.cli("netconf", "dev1", "get-config", "--filter", "<system/>")
    assert good.returncode == 0 and "queued" in good.stderr, good.stderr
    assert len(jobs(manager)) == 1

    for command in (["approve", "SHA256:abc", "--name", "x"], ["reject", "SHA256:abc"]):
        refused = manager.cli(*command)
        assert refused.returncode == 1
        assert "not a device identity: 'SHA256:abc'" in refused.stderr
    nan = manager.cli("netconf", "dev1", "--expires", "nan", "get")
    assert nan.returncode == 2 and "not a duration" in nan.stderr
    assert len(jobs(manager)) == 1

    # forget takes the identity as well as the name
    forgot = manager.cli("forget", fp)
    assert forgot.returncode == 0, forgot.stderr
    assert fp not in manager.devices()
