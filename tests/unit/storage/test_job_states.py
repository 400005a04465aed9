"""The life of a job as a pure state machine: the table, and properties of any path."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhome.errors import LocalProtocolError
from callhome.storage.jobs import (
    FINISH_INPUTS,
    TRANSITIONS,
    Job,
    JobInput,
    JobState,
    advance,
    after_interruption,
    check_finish,
    event_detail,
    event_kind,
    job_summary,
    next_state,
)

T0 = 1_700_000_000.0

LEGAL = [
    (JobState.QUEUED, JobInput.CLAIM, JobState.RUNNING),
    (JobState.QUEUED, JobInput.CANCEL, JobState.CANCELLED),
    (JobState.QUEUED, JobInput.EXPIRE, JobState.EXPIRED),
    (JobState.RUNNING, JobInput.SUCCEED, JobState.SUCCEEDED),
    (JobState.RUNNING, JobInput.FAIL, JobState.FAILED),
    (JobState.RUNNING, JobInput.REQUEUE, JobState.QUEUED),
    (JobState.RUNNING, JobInput.LOST, JobState.OUTCOME_UNKNOWN),
]
ILLEGAL = [
    (state, event)
    for state, event in itertools.product(JobState, JobInput)
    if (state, event) not in TRANSITIONS
]


def new_job(**changes: object) -> Job:
    values: dict[str, object] = {
        "id": 7,
        "device": "r1",
        "kind": "netconf",
        "payload": {"operation": "<get/>"},
        "actor": "alice",
        "created": T0,
        "not_before": T0,
        "expires": None,
        "state": JobState.QUEUED,
        "updated": T0,
    }
    values.update(changes)
    return Job(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("state", "event", "after"), LEGAL)
def test_legal_moves(state: JobState, event: JobInput, after: JobState) -> None:
    assert next_state(state, event) is after


def test_the_table_is_exactly_the_legal_moves() -> None:
    assert dict(TRANSITIONS) == {(s, e): a for s, e, a in LEGAL}
    assert len(ILLEGAL) == len(JobState) * len(JobInput) - len(LEGAL)


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_illegal_moves(state: JobState, event: JobInput) -> None:
    with pytest.raises(LocalProtocolError, match=f"a {state.value} job cannot {event.value}"):
        next_state(state, event)


@pytest.mark.parametrize(
    ("state", "final"),
    [(JobState.QUEUED, False), (JobState.RUNNING, False)]
    + [(s, True) for s in JobState if s not in (JobState.QUEUED, JobState.RUNNING)],
)
def test_final_states(state: JobState, final: bool) -> None:
    assert state.final is final
    assert new_job(state=state).final is final
    assert all(s is not state for s, _ in TRANSITIONS) is final


@pytest.mark.parametrize(
    ("read_only", "retry_safe", "event"),
    [
        (True, False, JobInput.REQUEUE),
        (True, True, JobInput.REQUEUE),
        (False, True, JobInput.REQUEUE),
        (False, False, JobInput.LOST),
    ],
)
def test_after_interruption(read_only: bool, retry_safe: bool, event: JobInput) -> None:
    assert after_interruption(read_only, retry_safe) is event
    assert event in FINISH_INPUTS


def test_check_finish() -> None:
    for event in FINISH_INPUTS:
        check_finish(event)
    for event in set(JobInput) - FINISH_INPUTS:
        with pytest.raises(LocalProtocolError):
            check_finish(event)


def test_event_kinds() -> None:
    assert {event_kind(s) for s in JobState} == {
        "job-queued",
        "job-running",
        "job-succeeded",
        "job-failed",
        "job-expired",
        "job-cancelled",
        "job-outcome-unknown",
    }


@pytest.mark.parametrize(
    ("state", "attempts", "result", "summary"),
    [
        (JobState.SUCCEEDED, 1, {}, "succeeded after 1 attempt"),
        (JobState.SUCCEEDED, 3, {}, "succeeded after 3 attempts"),
        (JobState.FAILED, 1, {"error": "s3cret went wrong"}, "failed after 1 attempt"),
        (
            JobState.FAILED,
            2,
            {"errors": [{"tag": "in-use", "message": "s3cret"}, {"tag": "s3cret"}]},
            "failed after 2 attempts: in-use",
        ),
        (JobState.FAILED, 1, {"errors": "s3cret"}, "failed after 1 attempt"),
        (
            JobState.OUTCOME_UNKNOWN,
            1,
            {},
            "sent, but its reply never came (after 1 attempt): the outcome is unknown",
        ),
        (JobState.CANCELLED, 0, {}, "cancelled while queued"),
        (JobState.EXPIRED, 0, {}, "expired while queued"),
    ],
)
def test_summary(state: JobState, attempts: int, result: dict[str, object], summary: str) -> None:
    job = new_job(state=state, attempts=attempts, result=result)
    assert job_summary(job) == summary
    assert event_detail(job) == {
        "job": 7,
        "state": state.value,
        "attempts": attempts,
        "kind": "netconf",
        "summary": summary,
    }


def test_summary_names_at_most_four_tags() -> None:
    tags = ["in-use", "too-big", "lock-denied", "data-exists", "data-missing"]
    job = new_job(state=JobState.FAILED, attempts=1, result={"errors": [{"tag": t} for t in tags]})
    assert job_summary(job).endswith(": in-use, too-big, lock-denied, data-exists")


def test_event_detail_of_a_live_job_has_no_summary() -> None:
    assert event_detail(new_job(attempts=2)) == {
        "job": 7,
        "state": "queued",
        "attempts": 2,
        "kind": "netconf",
    }


def test_advance() -> None:
    job = new_job(result={"old": 1})
    running = advance(job, JobInput.CLAIM, T0 + 1)
    assert (running.state, running.attempts, running.updated, running.result) == (
        JobState.RUNNING,
        1,
        T0 + 1,
        {"old": 1},
    )
    done = advance(running, JobInput.SUCCEED, T0 + 2, {"reply": "<ok/>"})
    assert (done.state, done.attempts, done.result) == (JobState.SUCCEEDED, 1, {"reply": "<ok/>"})
    assert (done.id, done.payload, done.created) == (job.id, job.payload, job.created)
    with pytest.raises(LocalProtocolError):
        advance(done, JobInput.REQUEUE, T0 + 3)


@given(st.lists(st.sampled_from(list(JobInput)), max_size=40))
def test_any_path_of_inputs(events: list[JobInput]) -> None:
    job = new_job()
    finals: list[JobState] = []
    claims = 0
    for step, event in enumerate(events):
        before = job
        if (job.state, event) not in TRANSITIONS:
            with pytest.raises(LocalProtocolError):
                advance(job, event, T0 + step)
            continue
        job = advance(job, event, T0 + step)
        claims += event is JobInput.CLAIM
        # A job never leaves a final state: a move is legal only from a live one.
        assert not before.final
        # Attempts grow by one on a claim, and never otherwise.
        assert job.attempts == before.attempts + (event is JobInput.CLAIM)
        # Only a claim makes a job running; only a requeue brings it back to the queue.
        assert (job.state is JobState.RUNNING) == (event is JobInput.CLAIM)
        if job.state is JobState.QUEUED:
            assert event is JobInput.REQUEUE
        if job.final:
            finals.append(job.state)
    # At most one final state is ever reached, and the job stays in it.
    assert len(finals) <= 1
    if finals:
        assert job.state is finals[0]
    assert job.attempts == claims
