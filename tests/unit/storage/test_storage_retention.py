"""Bounded growth: the cap on pending devices, retention of events, audit and finished jobs,
and job listings without results; on every Store, with explicit times."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from callhome.storage import DeviceStatus, EventKind, SqlStore, Store
from callhome.storage.jobs import JobInput, JobState, summary_of

T0 = 1_700_000_000.0


def fp(n: int) -> str:
    return f"SHA256:{n:043d}"


# -- the cap on pending devices ---------------------------------------------------------------


async def test_past_the_cap_the_least_recently_seen_pending_device_goes(store: Store) -> None:
    await store.pre_approve(fp(90), "ssh-ed25519", "approved", T0)
    await store.note_unknown(fp(91), "ssh-ed25519", None, T0)
    await store.reject(fp(91), T0)  # refused: kept, and not counted
    for n in range(3):
        noted = await store.note_pending(fp(n), "ssh-ed25519", "192.0.2.1:1", T0 + n, max_pending=3)
        assert noted.evicted == () and noted.device.status is DeviceStatus.PENDING
    # fp(0) calls again: now fp(1) is the least recently seen
    await store.note_pending(fp(0), "ssh-ed25519", None, T0 + 10, max_pending=3)

    noted = await store.note_pending(fp(3), "ssh-ed25519", "192.0.2.9:9", T0 + 11, max_pending=3)

    assert noted.evicted == (fp(1),)
    assert noted.device.fingerprint == fp(3) and noted.device.address == "192.0.2.9:9"
    left = {d.fingerprint: d.status for d in await store.list_devices()}
    assert left == {
        fp(90): DeviceStatus.OFFLINE,
        fp(91): DeviceStatus.REFUSED,
        fp(0): DeviceStatus.PENDING,
        fp(2): DeviceStatus.PENDING,
        fp(3): DeviceStatus.PENDING,
    }
    (event,) = await store.list_events(kinds=[EventKind.PENDING_EVICTED])
    assert (event.time, event.device, event.detail) == (
        T0 + 11,
        None,
        {"count": 1, "max_pending": 3},
    )


async def test_a_lower_cap_evicts_in_one_batch_and_one_event(store: Store) -> None:
    for n in range(6):
        await store.note_pending(fp(n), "ssh-ed25519", None, T0 + n, max_pending=100)
    noted = await store.note_pending(fp(6), "ssh-ed25519", None, T0 + 6, max_pending=2)
    assert noted.evicted == (fp(0), fp(1), fp(2), fp(3), fp(4))
    assert [d.fingerprint for d in await store.list_devices()] == [fp(5), fp(6)]
    events = await store.list_events(kinds=[EventKind.PENDING_EVICTED])
    assert [e.detail["count"] for e in events] == [5]


async def test_a_flood_evicts_in_batches_down_to_nine_tenths(store: Store) -> None:
    for n in range(40):
        await store.note_pending(fp(n), "ssh-ed25519", None, T0 + n, max_pending=20)
    # the 21st leaves 18 (3 evicted), and so does every third after it: 21 evicted in 7
    # batches, with an event each, where one by one would have made 20
    events = await store.list_events(kinds=[EventKind.PENDING_EVICTED])
    assert [e.detail["count"] for e in events] == [3] * 7
    assert [d.fingerprint for d in await store.list_devices()] == [fp(n) for n in range(21, 40)]


async def test_known_devices_are_not_capped(store: Store) -> None:
    await store.note_pending(fp(1), "ssh-ed25519", None, T0, max_pending=1)
    await store.approve(fp(1), "r1", T0)
    noted = await store.note_pending(fp(1), "ssh-ed25519", None, T0 + 1, max_pending=1)
    assert noted.evicted == () and noted.device.name == "r1"
    assert (await store.note_pending(fp(2), "k", None, T0 + 2, max_pending=1)).evicted == ()


# -- events and audit ---------------------------------------------------------------------------


async def log_ten(store: Store, what: str) -> None:
    for n in range(10):
        if what == "events":
            await store.record_event("x", T0 + n, detail={"n": n})
        else:
            await store.record_audit("token:a", "x", None, T0 + n, {"n": n})


async def ids(store: Store, what: str) -> list[int]:
    if what == "events":
        return [e.id for e in await store.list_events(limit=1000)]
    return [e.id for e in await store.list_audit(limit=1000)]


async def prune(store: Store, what: str, **kwargs: Any) -> int:
    if what == "events":
        return await store.prune_events(**kwargs)
    return await store.prune_audit(**kwargs)


@pytest.mark.parametrize("what", ["events", "audit"])
async def test_entries_older_than_the_age_go(store: Store, what: str) -> None:
    await log_ten(store, what)
    assert await prune(store, what, before=T0 + 4, keep=None, batch=3) == 4
    assert await ids(store, what) == [5, 6, 7, 8, 9, 10]
    assert await prune(store, what, before=T0 + 4, keep=None, batch=3) == 0


@pytest.mark.parametrize("what", ["events", "audit"])
async def test_only_the_newest_rows_are_kept(store: Store, what: str) -> None:
    await log_ten(store, what)
    assert await prune(store, what, before=None, keep=3, batch=2) == 7
    assert await ids(store, what) == [8, 9, 10]
    assert await prune(store, what, before=None, keep=3, batch=2) == 0
    assert await prune(store, what, before=T0 + 8.5, keep=10, batch=100) == 2
    assert await ids(store, what) == [10]


@pytest.mark.parametrize("what", ["events", "audit"])
async def test_ids_go_on_growing_and_paging_still_works_after_a_prune(
    store: Store, what: str
) -> None:
    await log_ten(store, what)
    await prune(store, what, before=T0 + 5, keep=None, batch=1000)
    if what == "events":
        assert (await store.record_event("y", T0 + 20)).id == 11
        page = await store.list_events(after_id=2, limit=2)
        newest = await store.list_events(limit=2, newest=True)
    else:
        assert (await store.record_audit("token:a", "y", None, T0 + 20)).id == 11
        page = await store.list_audit(after_id=2, limit=2)
        newest = await store.list_audit(limit=2, newest=True)
    assert [e.id for e in page] == [6, 7]
    assert [e.id for e in newest] == [10, 11]


async def test_everything_may_go_and_ids_are_not_reused(store: Store) -> None:
    await log_ten(store, "events")
    assert await store.prune_events(before=T0 + 100, keep=None, batch=4) == 10
    assert await store.list_events() == []
    assert (await store.record_event("y", T0 + 200)).id == 11


# -- finished jobs ------------------------------------------------------------------------------


async def jobs_in_every_state(store: Store) -> None:
    """Six jobs: 1 running (the oldest), 2 succeeded at T0+1, 3 failed at T0+2, 4 succeeded
    at T0+50, 5 cancelled at T0+60, 6 queued."""
    for _ in range(6):
        await store.enqueue_job("r1", "netconf", {"name": "get"}, actor="a", now=T0)
    assert (await store.claim_next_job("r1", T0)) is not None
    for when, how in [(1, JobInput.SUCCEED), (2, JobInput.FAIL), (50, JobInput.SUCCEED)]:
        claimed = await store.claim_next_job("r1", T0 + when)
        assert claimed is not None
        await store.finish_job(claimed.id, how, T0 + when, {"reply": "x" * 100})
    await store.cancel_job(5, T0 + 60)


async def states(store: Store) -> dict[int, JobState]:
    return {j.id: j.state for j in await store.list_jobs(limit=100)}


async def test_finished_jobs_older_than_the_age_go_and_no_queued_or_running_one(
    store: Store,
) -> None:
    await jobs_in_every_state(store)
    before = await states(store)
    assert sorted(before.values()) == sorted(
        [
            JobState.RUNNING,
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.SUCCEEDED,
            JobState.QUEUED,
            JobState.CANCELLED,
        ]
    )
    assert await store.prune_jobs(before=T0 + 1000, keep=None, batch=1) == 4
    assert await states(store) == {1: JobState.RUNNING, 6: JobState.QUEUED}


async def test_finished_jobs_by_age_and_by_count(store: Store) -> None:
    await jobs_in_every_state(store)
    assert await store.prune_jobs(before=T0 + 10, keep=None, batch=10) == 2  # the old two
    assert await states(store) == {
        1: JobState.RUNNING,
        4: JobState.SUCCEEDED,
        5: JobState.CANCELLED,
        6: JobState.QUEUED,
    }
    assert await store.prune_jobs(before=None, keep=1, batch=10) == 1  # the older finished
    assert await states(store) == {1: JobState.RUNNING, 5: JobState.CANCELLED, 6: JobState.QUEUED}
    assert await store.prune_jobs(before=None, keep=0, batch=10) == 1
    assert await states(store) == {1: JobState.RUNNING, 6: JobState.QUEUED}
    # the survivors still move, and new ids are new
    newer = await store.enqueue_job("r1", "netconf", {}, actor="a", now=T0 + 70)
    assert newer.id == 7


# -- job listings: summaries ------------------------------------------------------------------


async def test_summaries_leave_out_payload_and_result(store: Store) -> None:
    big = {"reply": "<data>" + "x" * 10_000 + "</data>"}
    first = await store.enqueue_job(
        "r1", "netconf", {"name": "get-config", "operation": "<g/>"}, actor="a", now=T0
    )
    await store.enqueue_job("r1", "netconf-group", {"edits": ["<a/>"]}, actor="b", now=T0 + 1)
    claimed = await store.claim_next_job("r1", T0 + 2)
    assert claimed is not None and claimed.id == first.id
    await store.finish_job(first.id, JobInput.SUCCEED, T0 + 3, big)

    summaries = await store.list_job_summaries()

    done, waiting = summaries
    assert (done.operation, done.state, done.attempts) == ("get-config", JobState.SUCCEEDED, 1)
    assert done.result_size == len('{"reply": "<data>' + "x" * 10_000 + '</data>"}')
    assert (waiting.operation, waiting.result_size, waiting.actor) == ("netconf-group", 0, "b")
    for summary in summaries:
        assert summary == summary_of(await store.get_job(summary.id))
        assert not hasattr(summary, "result") and not hasattr(summary, "payload")


async def test_summaries_filter_and_page_as_jobs_do(store: Store) -> None:
    for n in range(7):
        await store.enqueue_job(f"r{n % 2}", "netconf", {"name": "get"}, actor="a", now=T0 + n)
    await store.cancel_job(3, T0 + 10)
    for query in [
        {},
        {"device": "r1"},
        {"state": JobState.CANCELLED},
        {"after_id": 2, "limit": 3},
        {"limit": 2, "newest": True},
        {"device": "r0", "after_id": 1, "limit": 2, "newest": True},
    ]:
        jobs = await store.list_jobs(**query)
        assert await store.list_job_summaries(**query) == [summary_of(j) for j in jobs], query


# -- the SQL store: bounded transactions, and a database made before these indexes ----------------


async def test_sql_prunes_in_transactions_of_at_most_a_batch(
    open_sql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store: SqlStore = await open_sql()
    await log_ten(store, "events")
    deleted: list[int] = []
    run = store._run

    async def counting(fn: Any, *args: Any, **kwargs: Any) -> Any:
        result = await run(fn, *args, **kwargs)
        if fn.__name__ == "_delete_some":
            deleted.append(result)
        return result

    monkeypatch.setattr(store, "_run", counting)
    assert await store.prune_events(before=T0 + 100, keep=None, batch=3) == 10
    assert deleted == [3, 3, 3, 1]


async def test_a_database_made_before_the_retention_indexes_gets_them(
    open_sql: Any, db_path: Path
) -> None:
    store = await open_sql()
    await store.close()
    with sqlite3.connect(db_path) as db:
        for name in ("ix_events_time", "ix_audit_time", "ix_jobs_state_updated"):
            db.execute(f"DROP INDEX {name}")
    db.close()
    await store.open()
    with sqlite3.connect(db_path) as db:
        found = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    db.close()
    assert {"ix_events_time", "ix_audit_time", "ix_jobs_state_updated"} <= found
