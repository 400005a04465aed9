"""Jobs in the Store: one suite against the store in memory and the SQL store on SQLite."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL

from callhome.errors import CallHomeError, Conflict, LocalProtocolError, NotFound, QueueFull
from callhome.storage import Event, MemoryStore, SqlStore, Store
from callhome.storage.jobs import INTERRUPTED_BY_RESTART, Job, JobInput, JobState, JobStore

T0 = 1_700_000_000.25


_Sql = SqlStore
_Mem = MemoryStore


class Stores(Store, JobStore, Protocol):
    """A Store with jobs."""


KINDS = ["memory", "sqlite", "aiosqlite"]


def make_store(kind: str, path: Path) -> Stores:
    if kind == "memory":
        return _Mem()
    if kind == "sqlite":
        return _Sql(URL.create("sqlite+pysqlite", database=str(path)))
    return _Sql(f"sqlite+aiosqlite:///{path}")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "manager.db"


@pytest.fixture(params=KINDS)
async def store(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Stores]:
    store = make_store(request.param, db_path)
    await store.open()
    yield store
    await store.close()


async def enqueue(store: Stores, device: str = "r1", now: float = T0, **options: Any) -> Job:
    payload = options.pop("payload", {"operation": "<get-config/>"})
    return await store.enqueue_job(device, "netconf", payload, actor="alice", now=now, **options)


async def job_events(store: Stores, **filters: Any) -> list[Event]:
    return [
        e for e in await store.list_events(limit=10_000, **filters) if e.kind.startswith("job-")
    ]


# --- enqueue -----------------------------------------------------------------------------


async def test_enqueue(store: Stores) -> None:
    payload = {"operation": "<get-config><source><running/></source></get-config>", "n": (1, 2)}
    job = await store.enqueue_job(
        "r1", "netconf", payload, actor="alice", now=T0, read_only=True, expires=T0 + 60
    )

    assert job == Job(
        id=1,
        device="r1",
        kind="netconf",
        payload={"operation": payload["operation"], "n": [1, 2]},
        actor="alice",
        created=T0,
        not_before=T0,
        expires=T0 + 60,
        state=JobState.QUEUED,
        updated=T0,
        attempts=0,
        read_only=True,
        retry_safe=False,
        result={},
    )
    assert type(job.payload) is dict
    assert await store.get_job(1) == job
    assert await job_events(store) == [
        Event(
            id=1,
            time=T0,
            kind="job-queued",
            device="r1",
            fingerprint=None,
            detail={"job": 1, "state": "queued", "attempts": 0, "kind": "netconf"},
        )
    ]
    later = await enqueue(store, "r2", T0 + 1, not_before=T0 + 30)
    assert (later.id, later.not_before, later.expires, later.read_only) == (2, T0 + 30, None, False)


async def test_payloads_are_copies(store: Stores) -> None:
    payload: dict[str, Any] = {"edits": ["<a/>"]}
    job = await enqueue(store, payload=payload)
    payload["edits"].append("<b/>")
    job.payload["edits"].append("<c/>")

    assert (await store.get_job(job.id)).payload == {"edits": ["<a/>"]}


@pytest.mark.parametrize("payload", [{"x": float("nan")}, {"x": object()}])
async def test_payload_must_be_portable_json(store: Stores, payload: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        await enqueue(store, payload=payload)
    assert await store.list_jobs() == []
    assert await job_events(store) == []


async def test_queue_full(store: Stores) -> None:
    for _ in range(2):
        await enqueue(store, max_queued=2)
    await enqueue(store, "r2", max_queued=2)  # another device has a queue of its own

    with pytest.raises(QueueFull, match=r"'r1'.*limit is 2") as caught:
        await enqueue(store, max_queued=2)
    assert isinstance(caught.value, Conflict)
    assert await store.queue_length("r1") == 2
    assert len(await job_events(store)) == 3

    # A running job is no longer queued: it leaves room.
    await store.claim_next_job("r1", T0)
    assert (await enqueue(store, max_queued=2)).id == 4
    await enqueue(store)  # no limit given: none applies
    assert await store.queue_length("r1") == 3


# --- claim -------------------------------------------------------------------------------


async def test_claim_oldest_first(store: Stores) -> None:
    first = await enqueue(store, "r1")
    await enqueue(store, "r2")
    second = await enqueue(store, "r1")

    claimed = await store.claim_next_job("r1", T0 + 5)
    assert claimed is not None
    assert claimed.id == first.id
    assert (claimed.state, claimed.attempts, claimed.updated) == (JobState.RUNNING, 1, T0 + 5)
    assert await store.get_job(first.id) == claimed
    assert (await store.claim_next_job("r1", T0 + 6)).id == second.id  # type: ignore[union-attr]
    assert await store.claim_next_job("r1", T0 + 7) is None
    assert await store.claim_next_job("nobody", T0 + 7) is None

    running = [e for e in await job_events(store) if e.kind == "job-running"]
    assert [(e.device, e.time, e.detail) for e in running] == [
        ("r1", T0 + 5, {"job": 1, "state": "running", "attempts": 1, "kind": "netconf"}),
        ("r1", T0 + 6, {"job": 3, "state": "running", "attempts": 1, "kind": "netconf"}),
    ]


async def test_claim_skips_jobs_not_yet_due_or_expired(store: Stores) -> None:
    await enqueue(store, not_before=T0 + 100)
    await enqueue(store, expires=T0 + 10)
    ready = await enqueue(store)

    assert (await store.claim_next_job("r1", T0 + 10)).id == ready.id  # type: ignore[union-attr]
    assert await store.claim_next_job("r1", T0 + 99) is None
    due = await store.claim_next_job("r1", T0 + 100)
    assert due is not None and due.id == 1
    # The expired job was never claimed, and is still queued until expire_jobs runs.
    assert (await store.get_job(2)).state is JobState.QUEUED


async def test_claim_at_the_edges_of_the_window(store: Stores) -> None:
    job = await enqueue(store, not_before=T0 + 1, expires=T0 + 2)
    assert await store.claim_next_job("r1", T0 + 0.5) is None
    assert await store.claim_next_job("r1", T0 + 2) is None  # expires is exclusive
    assert (await store.claim_next_job("r1", T0 + 1)).id == job.id  # type: ignore[union-attr]


async def test_read_only_only_never_overtakes(store: Stores) -> None:
    read1 = await enqueue(store, read_only=True)
    write = await enqueue(store)
    read2 = await enqueue(store, read_only=True)

    assert (await store.claim_next_job("r1", T0, read_only_only=True)).id == read1.id  # type: ignore[union-attr]
    # The oldest job that may run is a write: no read overtakes it.
    assert await store.claim_next_job("r1", T0, read_only_only=True) is None
    assert (await store.get_job(read2.id)).state is JobState.QUEUED
    assert (await store.claim_next_job("r1", T0)).id == write.id  # type: ignore[union-attr]
    assert (await store.claim_next_job("r1", T0, read_only_only=True)).id == read2.id  # type: ignore[union-attr]


async def test_concurrent_claims_never_share_a_job(store: Stores) -> None:
    for i in range(20):
        await enqueue(store, read_only=i % 2 == 0)
    claims = await asyncio.gather(*(store.claim_next_job("r1", T0 + 1) for _ in range(30)))

    ids = [job.id for job in claims if job is not None]
    assert sorted(ids) == list(range(1, 21))
    assert claims.count(None) == 10
    assert await store.queue_length("r1") == 0
    assert len(await store.list_jobs(state=JobState.RUNNING)) == 20


# --- finish ------------------------------------------------------------------------------


async def test_finish_succeed_keeps_the_result_whole(store: Stores) -> None:
    job = await enqueue(store, payload={"operation": "<get-config/>", "password": "s3cret"})
    await store.claim_next_job("r1", T0 + 1)
    result = {"reply": "<rpc-reply><data><secret>s3cret</secret></data></rpc-reply>", "e": []}

    done = await store.finish_job(job.id, JobInput.SUCCEED, T0 + 2, result)

    assert (done.state, done.updated, done.result, done.attempts) == (
        JobState.SUCCEEDED,
        T0 + 2,
        result,
        1,
    )
    assert await store.get_job(job.id) == done
    last = (await job_events(store))[-1]
    assert (last.kind, last.device, last.time) == ("job-succeeded", "r1", T0 + 2)
    assert last.detail == {
        "job": job.id,
        "state": "succeeded",
        "attempts": 1,
        "kind": "netconf",
        "summary": "succeeded after 1 attempt",
    }
    # No event ever holds the payload or the result.
    for event in await store.list_events(limit=1000):
        assert "s3cret" not in json.dumps(event.detail)


async def test_finish_fail_summarises_the_error_tags(store: Stores) -> None:
    job = await enqueue(store)
    await store.claim_next_job("r1", T0)
    errors = [
        {"tag": "access-denied", "message": "no s3cret for you"},
        {"tag": "access-denied"},
        {"tag": "<made-up>"},
        {"tag": "lock-denied"},
        "junk",
    ]
    done = await store.finish_job(job.id, JobInput.FAIL, T0 + 1, {"errors": errors})

    assert done.state is JobState.FAILED
    assert done.result == {"errors": errors}
    last = (await job_events(store))[-1]
    assert last.kind == "job-failed"
    assert last.detail["summary"] == "failed after 1 attempt: access-denied, lock-denied"


async def test_requeue_and_lost(store: Stores) -> None:
    read = await enqueue(store, read_only=True)
    await enqueue(store)
    await store.claim_next_job("r1", T0)
    requeued = await store.finish_job(read.id, JobInput.REQUEUE, T0 + 1, {"interrupted": "x"})
    assert (requeued.state, requeued.attempts, requeued.result) == (
        JobState.QUEUED,
        1,
        {"interrupted": "x"},
    )
    # A requeued job is still the oldest: it runs again first.
    again = await store.claim_next_job("r1", T0 + 2)
    assert again is not None
    assert (again.id, again.attempts, again.result) == (read.id, 2, {"interrupted": "x"})
    # No result given: the stored one is kept.
    assert (await store.finish_job(read.id, JobInput.SUCCEED, T0 + 3)).result == {
        "interrupted": "x"
    }

    write = await store.claim_next_job("r1", T0 + 4)
    assert write is not None
    lost = await store.finish_job(write.id, JobInput.LOST, T0 + 5, {"interrupted": "y"})
    assert lost.state is JobState.OUTCOME_UNKNOWN
    kinds = [e.kind for e in await job_events(store)]
    assert kinds == [
        "job-queued",
        "job-queued",
        "job-running",
        "job-queued",
        "job-running",
        "job-succeeded",
        "job-running",
        "job-outcome-unknown",
    ]
    assert (await job_events(store))[-1].detail["summary"].startswith("sent, but its reply")


@pytest.mark.parametrize(
    "event", [JobInput.CLAIM, JobInput.CANCEL, JobInput.EXPIRE, JobInput.SUCCEED]
)
async def test_finish_refuses_illegal_moves(store: Stores, event: JobInput) -> None:
    job = await enqueue(store)  # queued, not running: nothing may finish it
    with pytest.raises(LocalProtocolError):
        await store.finish_job(job.id, event, T0 + 1, {"x": 1})
    assert await store.get_job(job.id) == job
    assert len(await job_events(store)) == 1


async def test_finish_refuses_a_final_job(store: Stores) -> None:
    job = await enqueue(store)
    await store.claim_next_job("r1", T0)
    done = await store.finish_job(job.id, JobInput.SUCCEED, T0 + 1)
    for event in (JobInput.SUCCEED, JobInput.FAIL, JobInput.REQUEUE, JobInput.LOST):
        with pytest.raises(LocalProtocolError):
            await store.finish_job(job.id, event, T0 + 2)
    assert await store.get_job(job.id) == done
    with pytest.raises(NotFound):
        await store.finish_job(99, JobInput.SUCCEED, T0)


# --- retry-safe, cancel, expire, recover -------------------------------------------------


async def test_set_retry_safe(store: Stores) -> None:
    job = await enqueue(store)
    marked = await store.set_job_retry_safe(job.id, True, T0 + 1)
    assert (marked.retry_safe, marked.updated, marked.state) == (True, T0 + 1, JobState.QUEUED)
    assert await store.get_job(job.id) == marked
    await store.claim_next_job("r1", T0 + 2)
    assert (await store.set_job_retry_safe(job.id, False, T0 + 3)).retry_safe is False
    assert len(await job_events(store)) == 2  # queued, running: no event for the mark

    await store.finish_job(job.id, JobInput.FAIL, T0 + 4)
    with pytest.raises(Conflict, match="failed"):
        await store.set_job_retry_safe(job.id, True, T0 + 5)
    with pytest.raises(NotFound):
        await store.set_job_retry_safe(99, True, T0)


async def test_cancel(store: Stores) -> None:
    first = await enqueue(store)
    second = await enqueue(store)
    cancelled = await store.cancel_job(second.id, T0 + 1)
    assert (cancelled.state, cancelled.updated) == (JobState.CANCELLED, T0 + 1)
    assert await store.queue_length("r1") == 1
    last = (await job_events(store))[-1]
    assert (last.kind, last.detail["summary"]) == ("job-cancelled", "cancelled while queued")

    await store.claim_next_job("r1", T0 + 2)
    assert await store.claim_next_job("r1", T0 + 2) is None  # the cancelled job never runs
    with pytest.raises(Conflict, match=r"job 1 is running: only a queued job can be cancelled"):
        await store.cancel_job(first.id, T0 + 3)
    with pytest.raises(Conflict, match=r"job 2 is cancelled"):
        await store.cancel_job(second.id, T0 + 3)
    with pytest.raises(NotFound):
        await store.cancel_job(99, T0)


async def test_expire_jobs(store: Stores) -> None:
    await enqueue(store, expires=T0 + 10)  # 1: expires
    await enqueue(store, "r2", expires=T0 + 5)  # 2: expires
    await enqueue(store, expires=T0 + 11)  # 3: not yet
    await enqueue(store)  # 4: never
    await enqueue(store, "r3", expires=T0 + 1)  # 5: running, so it never expires
    await store.claim_next_job("r3", T0)

    expired = await store.expire_jobs(T0 + 10)

    assert [(j.id, j.state, j.updated) for j in expired] == [
        (1, JobState.EXPIRED, T0 + 10),
        (2, JobState.EXPIRED, T0 + 10),
    ]
    assert [j.id for j in await store.list_jobs(state=JobState.QUEUED)] == [3, 4]
    assert (await store.get_job(5)).state is JobState.RUNNING
    last = (await job_events(store))[-1]
    assert (last.kind, last.device, last.detail["summary"]) == (
        "job-expired",
        "r2",
        "expired while queued",
    )
    assert await store.expire_jobs(T0 + 10) == []


async def test_recover_jobs(store: Stores) -> None:
    await enqueue(store, read_only=True)  # 1: a read: resent
    await enqueue(store)  # 2: a write: outcome unknown
    await enqueue(store)  # 3: a write marked retry-safe: resent
    await enqueue(store)  # 4: still queued: untouched
    for _ in range(3):
        await store.claim_next_job("r1", T0)
    await store.set_job_retry_safe(3, True, T0)

    recovered = await store.recover_jobs(T0 + 50)

    assert [(j.id, j.state, j.attempts, j.updated) for j in recovered] == [
        (1, JobState.QUEUED, 1, T0 + 50),
        (2, JobState.OUTCOME_UNKNOWN, 1, T0 + 50),
        (3, JobState.QUEUED, 1, T0 + 50),
    ]
    assert all(j.result == INTERRUPTED_BY_RESTART for j in recovered)
    assert (await store.get_job(4)).state is JobState.QUEUED
    assert await store.queue_length("r1") == 3
    assert [e.kind for e in (await job_events(store))[-3:]] == [
        "job-queued",
        "job-outcome-unknown",
        "job-queued",
    ]
    assert await store.recover_jobs(T0 + 51) == []
    assert (await store.claim_next_job("r1", T0 + 52)).id == 1  # type: ignore[union-attr]


async def test_cancel_device_jobs(store: Stores) -> None:
    await enqueue(store)  # 1: running, left to finish
    await enqueue(store)  # 2
    await enqueue(store, "r2")  # 3: another device
    await enqueue(store, not_before=T0 + 99)  # 4
    await store.claim_next_job("r1", T0)

    cancelled = await store.cancel_device_jobs("r1", T0 + 1)

    assert [(j.id, j.state) for j in cancelled] == [
        (2, JobState.CANCELLED),
        (4, JobState.CANCELLED),
    ]
    assert await store.queue_length("r1") == 0
    assert (await store.get_job(1)).state is JobState.RUNNING
    assert await store.queue_length("r2") == 1
    assert await store.cancel_device_jobs("nobody", T0) == []


# --- reading -----------------------------------------------------------------------------


async def test_get_job_unknown(store: Stores) -> None:
    with pytest.raises(NotFound, match="99"):
        await store.get_job(99)


async def test_list_jobs(store: Stores) -> None:
    for i in range(7):
        await enqueue(store, "r1" if i % 3 else "r2", T0 + i)  # r2 has 1, 4, 7
    await store.claim_next_job("r1", T0 + 10)  # 2 runs

    def ids(jobs: list[Job]) -> list[int]:
        return [j.id for j in jobs]

    assert ids(await store.list_jobs()) == [1, 2, 3, 4, 5, 6, 7]
    assert ids(await store.list_jobs(limit=3)) == [1, 2, 3]
    assert ids(await store.list_jobs(limit=3, newest=True)) == [5, 6, 7]
    assert ids(await store.list_jobs(after_id=5)) == [6, 7]
    assert ids(await store.list_jobs(after_id=2, limit=2, newest=True)) == [6, 7]
    assert ids(await store.list_jobs(device="r2")) == [1, 4, 7]
    assert ids(await store.list_jobs(device="r1", limit=2, newest=True)) == [5, 6]
    assert ids(await store.list_jobs(state=JobState.RUNNING)) == [2]
    assert ids(await store.list_jobs(device="r1", state=JobState.QUEUED)) == [3, 5, 6]
    assert ids(await store.list_jobs(device="r2", state=JobState.RUNNING)) == []
    assert await store.list_jobs(limit=0) == []
    assert await store.list_jobs(limit=0, newest=True) == []
    assert (await store.list_jobs())[1] == await store.get_job(2)


async def test_next_not_before_and_queue_length(store: Stores) -> None:
    assert await store.next_not_before("r1") is None
    assert await store.queue_length("r1") == 0
    await enqueue(store, now=T0)  # 1: runs first, then no longer counts
    await enqueue(store, not_before=T0 + 30)  # 2
    await enqueue(store, not_before=T0 + 20, expires=T0 + 25)  # 3
    await enqueue(store, "r2", not_before=T0 + 1)

    assert await store.next_not_before("r1") == T0
    assert await store.queue_length("r1") == 3
    await store.claim_next_job("r1", T0)
    assert await store.next_not_before("r1") == T0 + 20
    assert await store.next_not_before("r1", T0 + 24) == T0 + 20
    # Given the time, a job that has expired (but is not marked so yet) does not count.
    assert await store.next_not_before("r1", T0 + 25) == T0 + 30
    assert await store.queue_length("r1") == 2
    assert await store.next_not_before("r2") == T0 + 1


# --- what only the SQL store has ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "aiosqlite"])
async def test_jobs_survive_a_restart(kind: str, db_path: Path) -> None:
    store = make_store(kind, db_path)
    await store.open()
    await enqueue(store, payload={"edits": ["<a/>", {"b": None}]}, expires=T0 + 5)
    await enqueue(store, read_only=True)
    await store.claim_next_job("r1", T0)
    jobs = await store.list_jobs()
    await store.close()

    store = make_store(kind, db_path)
    await store.open()
    try:
        assert await store.list_jobs() == jobs
        assert [j.id for j in await store.recover_jobs(T0 + 1)] == [1]
        assert (await enqueue(store)).id == 3
    finally:
        await store.close()


async def test_a_stale_move_changes_nothing() -> None:
    """The guard that keeps two racing claims apart, on a database with many writers."""
    from sqlalchemy import create_engine

    from callhome.storage import sql_jobs
    from callhome.storage.schema import events, metadata

    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    values = {
        "device": "r1",
        "kind": "netconf",
        "payload": {},
        "actor": "a",
        "created": T0,
        "not_before": T0,
        "expires": None,
        "state": "queued",
        "updated": T0,
        "attempts": 0,
        "read_only": False,
        "retry_safe": False,
        "result": {},
    }
    with engine.begin() as conn:
        job = sql_jobs._enqueue(conn, values, None)
        first = sql_jobs._move(conn, job, JobInput.CLAIM, T0 + 1)
        assert first is not None
        # Claimed, then requeued: the state is "queued" again, but attempts moved on.
        assert sql_jobs._move(conn, first, JobInput.REQUEUE, T0 + 2) is not None
        assert sql_jobs._move(conn, job, JobInput.CLAIM, T0 + 3) is None
        assert sql_jobs._get(conn, job.id).attempts == 1
        assert len(conn.execute(events.select()).all()) == 3
    engine.dispose()


# --- the same results on every store -----------------------------------------------------

devices = st.sampled_from(["r1", "r2"])
job_ids = st.integers(0, 8)
times = st.integers(-3, 12)
maybe_times = st.none() | times
results = st.none() | st.dictionaries(st.sampled_from(["reply", "errors"]), st.text(max_size=3))
operations = st.one_of(
    st.tuples(
        st.just("enqueue"),
        devices,
        st.booleans(),
        maybe_times,
        maybe_times,
        st.none() | st.integers(0, 3),
    ),
    st.tuples(st.just("claim"), devices, st.booleans()),
    st.tuples(st.just("claim"), devices, st.booleans()),
    st.tuples(st.just("finish"), job_ids, st.sampled_from(list(JobInput)), results),
    st.tuples(st.just("retry_safe"), job_ids, st.booleans()),
    st.tuples(st.just("cancel"), job_ids),
    st.tuples(st.just("expire")),
    st.tuples(st.just("recover")),
    st.tuples(st.just("get"), job_ids),
    st.tuples(
        st.just("list"),
        st.none() | devices,
        st.none() | st.sampled_from(list(JobState)),
        st.integers(0, 5),
        st.integers(0, 4),
        st.booleans(),
    ),
    st.tuples(st.just("next"), devices, maybe_times),
    st.tuples(st.just("length"), devices),
    st.tuples(st.just("cancel_device"), devices),
)


async def apply(store: Stores, op: tuple[Any, ...], now: float) -> Any:
    name, *args = op
    match name:
        case "enqueue":
            device, read_only, not_before, expires, max_queued = args
            return await store.enqueue_job(
                device,
                "netconf",
                {"operation": "<get/>"},
                actor="alice",
                now=now,
                read_only=read_only,
                not_before=None if not_before is None else now + not_before,
                expires=None if expires is None else now + expires,
                max_queued=max_queued,
            )
        case "claim":
            return await store.claim_next_job(args[0], now, read_only_only=args[1])
        case "finish":
            return await store.finish_job(args[0], args[1], now, args[2])
        case "retry_safe":
            return await store.set_job_retry_safe(args[0], args[1], now)
        case "cancel":
            return await store.cancel_job(args[0], now)
        case "expire":
            return await store.expire_jobs(now)
        case "recover":
            return await store.recover_jobs(now)
        case "get":
            return await store.get_job(args[0])
        case "list":
            device, state, after_id, limit, newest = args
            return await store.list_jobs(
                device=device, state=state, after_id=after_id, limit=limit, newest=newest
            )
        case "next":
            return await store.next_not_before(args[0], None if args[1] is None else now + args[1])
        case "length":
            return await store.queue_length(args[0])
        case "cancel_device":
            return await store.cancel_device_jobs(args[0], now)
    raise AssertionError(name)


async def outcome(store: Stores, op: tuple[Any, ...], now: float) -> Any:
    try:
        return ("ok", await apply(store, op, now))
    except CallHomeError as exc:
        return ("error", type(exc).__name__, str(exc))


async def run_all(ops: list[tuple[Any, ...]]) -> None:
    stores: list[Stores] = [_Mem(), _Sql("sqlite://")]
    for store in stores:
        await store.open()
    try:
        for step, op in enumerate(ops):
            now = T0 + step
            results = [await outcome(store, op, now) for store in stores]
            assert results[1] == results[0], (step, op)
        final = [
            (await store.list_jobs(limit=1000), await store.list_events(limit=1000))
            for store in stores
        ]
        assert final[1] == final[0]
    finally:
        for store in stores:
            await store.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, min_size=10, max_size=40))
def test_every_store_gives_the_same_results(ops: list[tuple[Any, ...]]) -> None:
    asyncio.run(run_all(ops))
