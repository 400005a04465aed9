"""Events and the audit log: append, filter, page."""

from __future__ import annotations

import math

import pytest

from callhome.storage import AuditEntry, Event, EventKind, Store

T0 = 1_700_000_000.5


async def test_record_event(store: Store) -> None:
    event = await store.record_event(
        EventKind.CONNECTED,
        T0,
        device="router1",
        fingerprint="SHA256:x",
        detail={"address": "192.0.2.1:1", "orientation": "reverse-ssh", "ports": (1, 2)},
    )

    assert event == Event(
        id=1,
        time=T0,
        kind="connected",
        device="router1",
        fingerprint="SHA256:x",
        detail={"address": "192.0.2.1:1", "orientation": "reverse-ssh", "ports": [1, 2]},
    )
    assert type(event.kind) is str
    assert await store.list_events() == [event]

    bare = await store.record_event("job-done", T0 + 1)
    assert (bare.id, bare.device, bare.fingerprint, bare.detail) == (2, None, None, {})


async def test_events_are_copies(store: Store) -> None:
    detail = {"nested": {"a": 1}}
    event = await store.record_event("x", T0, detail=detail)
    detail["nested"]["a"] = 2
    event.detail["nested"]["a"] = 3

    assert (await store.list_events())[0].detail == {"nested": {"a": 1}}


@pytest.mark.parametrize("detail", [{"when": object()}, {"x": math.nan}, {"x": math.inf}])
async def test_event_detail_must_be_portable_json(store: Store, detail: dict[str, object]) -> None:
    with pytest.raises((TypeError, ValueError)):
        await store.record_event("x", T0, detail=detail)
    assert await store.list_events() == []


async def test_list_events_filters_and_pages(store: Store) -> None:
    script = [
        (EventKind.UNKNOWN_DEVICE, None, "SHA256:u"),
        (EventKind.CONNECTED, "r1", "SHA256:1"),
        (EventKind.CONNECTED, "r2", "SHA256:2"),
        (EventKind.AUTH_FAILED, "r1", "SHA256:1"),
        (EventKind.DISCONNECTED, "r1", "SHA256:1"),
        (EventKind.DISCONNECTED, "r2", "SHA256:2"),
    ]
    for n, (kind, device, fingerprint) in enumerate(script):
        await store.record_event(kind, T0 + n, device=device, fingerprint=fingerprint)

    assert [e.id for e in await store.list_events()] == [1, 2, 3, 4, 5, 6]
    assert [e.id for e in await store.list_events(device="r1")] == [2, 4, 5]
    assert [e.id for e in await store.list_events(kinds=["disconnected"])] == [5, 6]
    assert [
        e.id
        for e in await store.list_events(
            device="r2", kinds=[EventKind.CONNECTED, EventKind.DISCONNECTED]
        )
    ] == [3, 6]
    assert await store.list_events(kinds=[]) == []
    assert await store.list_events(device="nobody") == []

    # Paging by the last id seen.
    pages, after = [], 0
    while page := await store.list_events(after_id=after, limit=4):
        pages.append([e.id for e in page])
        after = page[-1].id
    assert pages == [[1, 2, 3, 4], [5, 6]]
    assert [e.id for e in await store.list_events(device="r1", after_id=2, limit=1)] == [4]
    assert await store.list_events(limit=0) == []


async def test_audit(store: Store) -> None:
    first = await store.record_audit("alice", "approve", "router1", T0, {"fingerprint": "F"})
    second = await store.record_audit("bob", "login", None, T0 + 1)
    third = await store.record_audit("alice", "forget", "router1", T0 + 2)

    assert first == AuditEntry(
        id=1,
        time=T0,
        actor="alice",
        action="approve",
        target="router1",
        detail={"fingerprint": "F"},
    )
    assert (second.id, second.target, second.detail) == (2, None, {})
    assert await store.list_audit() == [first, second, third]
    assert await store.list_audit(after_id=1, limit=1) == [second]
    assert await store.list_audit(after_id=3) == []
    assert await store.list_audit(limit=0) == []
    assert await store.list_audit(limit=2, newest=True) == [second, third]
    assert await store.list_audit(after_id=2, limit=5, newest=True) == [third]
    # Events and audit entries count apart.
    assert (await store.record_event("x", T0)).id == 1


async def test_newest_events_come_last_in_ascending_order(store):
    for n in range(5):
        await store.record_event("connected", 1000.0 + n, device=f"d{n % 2}")
    newest = await store.list_events(limit=2, newest=True)
    assert [e.id for e in newest] == [4, 5]
    of_d0 = await store.list_events(device="d0", limit=2, newest=True)
    assert [e.device for e in of_d0] == ["d0", "d0"] and of_d0[0].id < of_d0[1].id
    assert await store.list_events(limit=0, newest=True) == []
