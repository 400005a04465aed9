"""Random sequences of operations give the same results on the fake and on SQLite.

(The SQL store through the AsyncEngine runs the same SQL; the shared suite covers it.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callhome.errors import CallHomeError
from callhome.storage import MemoryStore, SqlStore, Store

fingerprints = st.sampled_from([f"SHA256:{c * 43}" for c in "abc"])
names = st.sampled_from(["r1", "r2", "r3"])
maybe_names = st.none() | names
key_types = st.sampled_from(["ssh-ed25519", "ecdsa-sha2-nistp256"])
addresses = st.none() | st.sampled_from(["192.0.2.1:4000", "[2001:db8::1]:22", "198.51.100.9:1"])
credentials = st.none() | st.sampled_from(["lab", "ops"])
orientations = st.sampled_from(["reverse-ssh", "reverse-tls", "turn"])
capabilities = st.lists(st.sampled_from(["urn:a", "urn:b", "urn:c"]), max_size=3)
kinds = st.sampled_from(["connected", "disconnected", "unknown-device", "auth-failed"])
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
details = st.none() | st.dictionaries(st.text(max_size=4), json_values, max_size=3)
after_ids = st.integers(-1, 8)
limits = st.integers(0, 5)

note_unknown = st.tuples(st.just("note_unknown"), fingerprints, key_types, addresses)
approve = st.tuples(st.just("approve"), fingerprints, names, credentials)
mark_online = st.tuples(st.just("mark_online"), fingerprints, addresses, orientations, capabilities)
# Operations that move devices along come more often than the others.
operations = st.one_of(
    note_unknown,
    note_unknown,
    approve,
    approve,
    st.tuples(st.just("pre_approve"), fingerprints, key_types, names, credentials),
    st.tuples(st.just("reject"), fingerprints),
    st.tuples(st.just("forget"), names),
    mark_online,
    mark_online,
    st.tuples(st.just("mark_offline"), fingerprints),
    st.tuples(st.just("mark_all_offline")),
    st.tuples(st.just("device_by_fingerprint"), fingerprints),
    st.tuples(st.just("device_by_name"), names),
    st.tuples(st.just("record_event"), kinds, maybe_names, details),
    st.tuples(st.just("list_events"), maybe_names, after_ids, limits, st.none() | st.lists(kinds)),
    st.tuples(st.just("record_audit"), st.sampled_from(["alice", "bob"]), maybe_names, details),
    st.tuples(st.just("list_audit"), after_ids, limits),
)


async def apply(store: Store, op: tuple[Any, ...], now: float) -> Any:
    name, *args = op
    match name:
        case "note_unknown":
            return await store.note_unknown(args[0], args[1], args[2], now)
        case "approve":
            return await store.approve(args[0], args[1], now, credential=args[2])
        case "pre_approve":
            return await store.pre_approve(args[0], args[1], args[2], now, credential=args[3])
        case "reject":
            return await store.reject(args[0], now)
        case "forget":
            return await store.forget(args[0])
        case "mark_online":
            return await store.mark_online(
                args[0], now, address=args[1], orientation=args[2], capabilities=args[3]
            )
        case "mark_offline":
            return await store.mark_offline(args[0], now)
        case "mark_all_offline":
            return await store.mark_all_offline(now)
        case "device_by_fingerprint":
            return await store.device_by_fingerprint(args[0])
        case "device_by_name":
            return await store.device_by_name(args[0])
        case "record_event":
            return await store.record_event(args[0], now, device=args[1], detail=args[2])
        case "list_events":
            return await store.list_events(
                device=args[0], after_id=args[1], limit=args[2], kinds=args[3]
            )
        case "record_audit":
            return await store.record_audit(args[0], "act", args[1], now, args[2])
        case "list_audit":
            return await store.list_audit(after_id=args[0], limit=args[1])
    raise AssertionError(name)


async def outcome(store: Store, op: tuple[Any, ...], now: float) -> Any:
    try:
        return ("ok", await apply(store, op, now))
    except CallHomeError as exc:
        return ("error", type(exc).__name__)


async def run_all(ops: list[tuple[Any, ...]]) -> None:
    stores: list[Store] = [MemoryStore(), SqlStore("sqlite://")]
    for store in stores:
        await store.open()
    try:
        for step, op in enumerate(ops):
            now = 1_700_000_000.5 + step
            results = [await outcome(store, op, now) for store in stores]
            assert results[1] == results[0], (step, op)
        final = [
            (
                await store.list_devices(),
                await store.list_events(limit=1000),
                await store.list_audit(limit=1000),
            )
            for store in stores
        ]
        assert final[1] == final[0]
    finally:
        for store in stores:
            await store.close()


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(operations, min_size=20, max_size=50))
def test_every_store_gives_the_same_results(ops: list[tuple[Any, ...]]) -> None:
    asyncio.run(run_all(ops))
