"""Job listings are summaries, paged; one job's route keeps its whole result.

The API runs in process (httpx's ASGI transport) over a Manager on the in-memory Store,
whose jobs are made and finished through the Store as the job worker would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from callhome.api.app import create_app
from callhome.config import ManagerConfig
from callhome.manager.service import Manager
from callhome.storage import MemoryStore
from callhome.storage.jobs import JobInput

TOKEN = "t0ken"
DEV_FP = "SHA256:" + "A" * 42 + "E"
T0 = 1_700_000_000.0
REPLY = "<rpc-reply><data>" + "x" * 100_000 + "</data></rpc-reply>"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Manager]]:
    manager = Manager(ManagerConfig(state_dir=tmp_path), MemoryStore())
    await manager.approve(DEV_FP, "dev1", "tester")
    store = manager.store
    for n in range(100):
        await store.enqueue_job(
            "dev1",
            "netconf",
            {"name": "get-config", "operation": "<get-config/>"},
            actor="token:a",
            now=T0 + n,
        )
    for n in range(60):  # the first 60 done, each with a 100 KB reply
        job = await store.claim_next_job("dev1", T0 + 100 + n)
        assert job is not None
        await store.finish_job(job.id, JobInput.SUCCEED, T0 + 100 + n, {"reply": REPLY})
    transport = httpx.ASGITransport(app=create_app(manager, TOKEN))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://callhome.test",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        yield client, manager


async def test_the_listing_is_summaries_and_one_job_is_whole(api) -> None:
    client, _manager = api
    listing = await client.get("/v1/jobs")
    assert listing.status_code == 200
    jobs = listing.json()
    assert [j["id"] for j in jobs] == list(range(1, 101))
    assert len(listing.content) < 40_000  # 100 jobs; their results alone are over 6 MB
    done = jobs[0]
    assert "result" not in done and "payload" not in done
    assert done["operation"] == "get-config" and done["state"] == "succeeded"
    assert done["result_size"] == len(json.dumps({"reply": REPLY}))
    assert jobs[-1]["state"] == "queued" and jobs[-1]["result_size"] == 0

    one = (await client.get(f"/v1/jobs/{done['id']}")).json()
    assert one["result"] == {"reply": REPLY}
    assert one["payload"]["operation"] == "<get-config/>"
    assert {k: one[k] for k in done if k != "result_size"} == {
        k: v for k, v in done.items() if k != "result_size"
    }


async def test_pages_follow_their_next_link(api) -> None:
    client, _manager = api
    seen: list[int] = []
    url: str | None = "/v1/jobs?after=0&limit=30&state=succeeded"
    pages = 0
    while url is not None:
        page = await client.get(url)
        assert page.status_code == 200
        seen += [j["id"] for j in page.json()]
        pages += 1
        following = page.links.get("next")
        url = following["url"] if following else None
        if url is not None:
            assert "state=succeeded" in url and "limit=30" in url
    assert seen == list(range(1, 61))
    assert pages == 3  # 30, 30, and an empty last page says there is no more


async def test_the_newest_are_listed_without_after(api) -> None:
    client, _manager = api
    newest = await client.get("/v1/jobs", params={"limit": 5, "device": "dev1"})
    assert [j["id"] for j in newest.json()] == [96, 97, 98, 99, 100]
    assert "link" not in newest.headers
    assert (await client.get("/v1/jobs", params={"device": "nosuch"})).json() == []
