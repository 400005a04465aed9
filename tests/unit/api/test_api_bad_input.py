"""Malformed operator input is HTTP 400 with the reason, and nothing is queued.

The API runs in process (httpx's ASGI transport) over a Manager on the in-memory Store;
the device it names is approved but away, so a well-formed request is queued as a job.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from callhome.api.app import create_app
from callhome.config import ManagerConfig
from callhome.manager.service import Manager
from callhome.storage import MemoryStore

TOKEN = "t0ken"
DEV_FP = "SHA256:" + "A" * 42 + "E"
CERT_FP = "SHA256:" + ":".join(["ab"] * 32)
GOOD_FILTER = '<system xmlns="urn:example:demo"/>'


@dataclass
class Api:
    client: httpx.AsyncClient
    manager: Manager

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, path, **kwargs)

    async def jobs(self) -> int:
        return len(await self.manager.store.list_jobs(device="dev1"))


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    manager = Manager(ManagerConfig(state_dir=tmp_path), MemoryStore())
    await manager.approve(DEV_FP, "dev1", "tester")
    transport = httpx.ASGITransport(app=create_app(manager, TOKEN), raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://callhome.test",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        yield Api(client, manager)


def refused(response: httpx.Response, *words: str) -> str:
    """The reason of a 400 answer, which must name each of ``words``."""
    assert response.status_code == 400, response.text
    message: str = response.json()["message"]
    for word in words:
        assert word in message, message
    return message


async def test_a_well_formed_request_is_queued(api: Api) -> None:
    """The control for the tests below: the same route takes good input."""
    body = {"operation": "get-config", "source": "candidate", "filter": GOOD_FILTER}
    response = await api.call("POST", "/v1/devices/dev1/netconf", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "queued"
    assert await api.jobs() == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"operation": "get", "filter": "<system"}, ["bad filter", "not well-formed"]),
        ({"operation": "get-config", "filter": "<a></b>"}, ["bad filter"]),
        ({"operation": "get-config", "filter": "text <a/>"}, ["bad filter", "text outside"]),
        ({"operation": "edit-config", "config": "<a><b></a>"}, ["bad config"]),
        ({"operation": "get-config", "source": "runing"}, ["'runing' is not a datastore"]),
        ({"operation": "get-config", "source": "run ning"}, ["not a datastore"]),
        ({"operation": "edit-config", "target": "", "config": "<a/>"}, ["target"]),
        ({"operation": "lock", "target": "<x>"}, ["not a datastore"]),
        ({"operation": "rpc", "rpc": "<get"}, ["bad rpc XML"]),
        ({"operation": "frobnicate"}, ["unknown operation"]),
        ({"operation": "get", "expires": math.nan}, ["expires", "finite"]),
        ({"operation": "get", "not_before": math.inf}, ["not_before", "finite"]),
        ({"operation": "get", "wait": -1}, ["wait"]),
    ],
)
async def test_malformed_netconf_requests_are_400_and_queue_nothing(
    api: Api, body: dict[str, Any], words: list[str]
) -> None:
    # as Python's json writes NaN and Infinity (httpx's json= refuses them)
    content = json.dumps(body, allow_nan=True)
    headers = {"Content-Type": "application/json"}
    response = await api.call("POST", "/v1/devices/dev1/netconf", content=content, headers=headers)
    refused(response, *words)
    assert await api.jobs() == 0


async def test_a_malformed_edit_of_a_group_is_named(api: Api) -> None:
    body = {"edits": ["<a/>", "<b>"]}
    response = await api.call("POST", "/v1/devices/dev1/netconf-group", json=body)
    refused(response, "bad edit 2")
    assert await api.jobs() == 0


@pytest.mark.parametrize(
    "identity",
    [
        "SHA256:short",
        "SHA256:" + "A" * 42 + "E=",
        "SHA256:" + "A" * 42 + "-",  # base64url is not OpenSSH's alphabet
        "SHA256:" + ":".join(["ab"] * 31),
        "SHA256:" + ":".join(["zz"] * 32),
        "MD5:" + ":".join(["ab"] * 16),
        "x509-name:",
        "x509-name: padded",
        "nonsense:thing",
    ],
)
async def test_approve_and_reject_check_the_identity(api: Api, identity: str) -> None:
    approve = await api.call("POST", f"/v1/devices/{identity}/approve", json={"name": "dev2"})
    refused(approve, "not a device identity", "SHA256:", "x509-name:NAME")
    reject = await api.call("POST", f"/v1/devices/{identity}/reject")
    refused(reject, "not a device identity")
    assert [d.name for d in await api.manager.list_devices()] == ["dev1"]


async def test_identities_in_each_form_are_approved_as_the_registry_writes_them(
    api: Api,
) -> None:
    """A certificate fingerprint typed in lower case is stored as openssl prints it."""
    for identity, name in [
        ("SHA256:" + "b" * 42 + "A", "ssh"),
        (CERT_FP, "cert"),
        ("x509-name:pdu-7.example.net", "mapped"),
    ]:
        response = await api.call("POST", f"/v1/devices/{identity}/approve", json={"name": name})
        assert response.status_code == 200, response.text
    stored = {d.name: d.fingerprint for d in await api.manager.list_devices()}
    assert stored["cert"] == CERT_FP.upper()
    assert stored["ssh"] == "SHA256:" + "b" * 42 + "A"
    assert stored["mapped"] == "x509-name:pdu-7.example.net"


async def test_a_bad_name_is_400_with_the_field_named(api: Api) -> None:
    response = await api.call("POST", f"/v1/devices/{DEV_FP}/approve", json={"name": "a b"})
    refused(response, "body.name")


async def test_forget_by_identity_or_by_name(api: Api) -> None:
    await api.manager.approve(CERT_FP.upper(), "dev2", "tester")
    by_identity = await api.call("DELETE", f"/v1/devices/{CERT_FP}")
    assert by_identity.status_code == 200, by_identity.text
    by_name = await api.call("DELETE", "/v1/devices/dev1")
    assert by_name.status_code == 200, by_name.text
    assert await api.manager.list_devices() == []
    refused(await api.call("DELETE", "/v1/devices/SHA256:nope"), "not a device identity")
    assert (await api.call("DELETE", "/v1/devices/dev1")).status_code == 404


async def test_forget_of_a_device_without_a_name_says_so(api: Api) -> None:
    await api.manager.approve(CERT_FP.upper(), "dev2", "tester")
    await api.manager.reject(CERT_FP.upper(), "tester")
    response = await api.call("DELETE", f"/v1/devices/{CERT_FP}")
    assert response.status_code == 409, response.text
    assert "refused and has no name" in response.json()["message"]
