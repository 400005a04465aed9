"""GETNEXT, GETBULK and the MIB walk against a simple reference: every instance of a random
registry (tables with gaps and missing columns, scalars between them, a node of its own)
listed and sorted, then searched one by one."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callhome.agent.snmp.agent import SnmpAgent, UserAccess
from callhome.agent.snmp.mib import MibRegistry, Table
from callhome.errors import LocalProtocolError
from callhome.proto.snmp import (
    AUTH_PRIV,
    ErrorStatus,
    Message,
    MsgFlags,
    Oid,
    Pdu,
    Value,
    ValueType,
    VarBind,
    encode_message,
    getbulk_request,
    getnext_request,
    response,
)

ENGINE_ID = bytes.fromhex("800000000501020304")
BASE = (1, 3, 6, 1, 4, 1, 9)
MANY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Sparse:
    """A node of a device's own: some listed instances have no value (get gives None)."""

    def __init__(self, prefix: Oid, present: dict[Oid, int], listed: Sequence[Oid]) -> None:
        self.prefix = prefix
        self._present = present
        self._listed = sorted(listed)

    def instances(self) -> Sequence[Oid]:
        return self._listed

    def get(self, oid: Oid) -> Value | None:
        value = self._present.get(oid)
        return None if value is None else Value.integer(value)

    def check_set(self, oid: Oid, value: Value) -> None:
        raise AssertionError("read only")

    def set(self, oid: Oid, value: Value) -> None:
        raise AssertionError("read only")


sub = st.integers(0, 6)
prefixes = st.lists(sub, min_size=1, max_size=3).map(lambda t: (*BASE, *t))
indexes = st.lists(st.integers(0, 300), min_size=1, max_size=2).map(tuple)
table_rows = st.dictionaries(
    indexes,
    st.dictionaries(st.integers(1, 4), st.integers(0, 1000), max_size=4),
    max_size=12,
)


@st.composite
def registries(draw: st.DrawFn) -> tuple[SnmpAgent, MibRegistry]:
    registry = MibRegistry()
    agent = SnmpAgent(
        registry, ENGINE_ID, {}, clock=lambda: 100.0
    )  # the engine's scalars sit after the device's objects
    for _ in range(draw(st.integers(0, 8))):
        prefix = draw(prefixes)
        kind = draw(st.sampled_from(["table", "scalar", "sparse", "subclass"]))
        try:
            if kind == "scalar":
                value = draw(st.integers(0, 99))
                registry.scalar(prefix, ValueType.INTEGER, lambda v=value: v)
            elif kind in ("table", "subclass"):
                rows = draw(table_rows)
                columns = draw(st.sets(st.integers(1, 4), min_size=1))
                kinds = {c: ValueType.GAUGE32 for c in columns}
                cls = Table if kind == "table" else type("MyTable", (Table,), {})
                registry.register(cls(prefix, kinds, lambda r=rows: r))  # type: ignore[misc]
            else:
                listed = draw(st.lists(indexes, max_size=8, unique=True))
                oids = [(*prefix, *i) for i in listed]
                present = {o: draw(st.integers(0, 9)) for o in oids if draw(st.booleans())}
                registry.register(Sparse(prefix, present, oids))
        except LocalProtocolError:
            pass  # overlaps a subtree already there
    return agent, registry


def reference(registry: MibRegistry) -> list[tuple[Oid, Value]]:
    """Every instance with a value, sorted: the registry read one object at a time."""
    found = []
    for node in registry._nodes:
        for oid in node.instances():
            value = node.get(oid)
            if value is not None:
                found.append((oid, value))
    found.sort()
    return found


def within(oid: Oid, view: Sequence[Oid]) -> bool:
    return any(oid[: len(s)] == s for s in view)


def ref_next(items: list[tuple[Oid, Value]], oid: Oid, view: Sequence[Oid]) -> VarBind:
    i = bisect.bisect_right(items, oid, key=lambda item: item[0])
    for name, value in items[i:]:
        if within(name, view):
            return VarBind(name, value)
    return VarBind(oid, Value(ValueType.END_OF_MIB_VIEW))


def ref_bulk(
    items: list[tuple[Oid, Value]], oids: list[Oid], n: int, reps: int, view: Sequence[Oid]
) -> list[VarBind]:
    """RFC 3416 section 4.2.3, literally."""
    n = min(n, len(oids))
    out = [ref_next(items, o, view) for o in oids[:n]]
    last = [VarBind(o) for o in oids[n:]]
    for _ in range(reps if last else 0):
        last = [ref_next(items, vb.oid, view) for vb in last]
        out += last
        if all(vb.value.type is ValueType.END_OF_MIB_VIEW for vb in last):
            break
    return out


starts = st.one_of(
    prefixes,
    st.tuples(prefixes, indexes).map(lambda t: (*t[0], *t[1])),
    st.lists(st.integers(0, 7), min_size=2, max_size=12).map(lambda t: (1, 3, *t)),
    st.just((1, 3, 6, 1, 6, 3, 10, 2, 1)),
    st.just((2, 0)),
)
views = st.one_of(
    st.just([(1, 3, 6, 1)]),
    st.lists(st.one_of(prefixes, starts), max_size=4),
)


def ask(agent: SnmpAgent, pdu: Pdu, user: str = "u", max_size: int = 65535) -> Pdu:
    message = Message(5, pdu, ENGINE_ID, flags=AUTH_PRIV | MsgFlags.REPORTABLE, max_size=max_size)
    reply = agent.process(user, message)
    assert reply is not None
    return reply.pdu


@MANY
@given(registries(), st.lists(starts, min_size=1, max_size=4))
def test_next_and_walk_match_the_sorted_list(built, oids):
    _, registry = built
    items = reference(registry)
    everything = [(1,)]
    for oid in oids:
        want = ref_next(items, oid, everything)
        got = registry.next(oid)
        if want.value.type is ValueType.END_OF_MIB_VIEW:
            assert got is None
        else:
            assert got == (want.oid, want.value)
        i = bisect.bisect_right(items, oid, key=lambda item: item[0])
        assert [(vb.oid, vb.value) for vb in registry.walk(oid)] == items[i:]


@MANY
@given(registries(), views, st.lists(starts, min_size=1, max_size=4))
def test_getnext_matches_the_reference_in_any_view(built, view, oids):
    agent, registry = built
    agent.users["u"] = UserAccess(tuple(view[:2]), tuple(view[2:]))
    readable = [*view, (1, 3, 6, 1, 6, 3, 10, 2, 1)]
    pdu = ask(agent, getnext_request(1, oids))
    items = reference(registry)
    assert pdu.ok
    assert list(pdu.varbinds) == [ref_next(items, o, readable) for o in oids]


@MANY
@given(
    registries(),
    views,
    st.lists(starts, min_size=0, max_size=4),
    st.integers(0, 5),
    st.integers(0, 30),
)
def test_getbulk_matches_the_reference_in_any_view(built, view, oids, n, reps):
    agent, registry = built
    agent.users["u"] = UserAccess(tuple(view), ())
    readable = [*view, (1, 3, 6, 1, 6, 3, 10, 2, 1)]
    pdu = ask(agent, getbulk_request(1, oids, n, reps))
    assert pdu.ok
    assert list(pdu.varbinds) == ref_bulk(reference(registry), oids, n, reps, readable)


def old_fit_count(request: Message, varbinds: list[VarBind], limit: int) -> int | None:
    """How many bindings the cut-an-eighth-at-a-time loop keeps (None: tooBig)."""
    kept = list(varbinds)
    while kept:
        del kept[max(1, len(kept) // 8) * -1 :]
        reply = Message(request.msg_id, response(1, kept), ENGINE_ID, flags=AUTH_PRIV)
        if len(encode_message(reply)) <= limit:
            return len(kept)
    return None


@settings(max_examples=40, deadline=None)
@given(st.integers(484, 9000), st.integers(1, 400))
def test_a_big_getbulk_response_is_cut_as_before(max_size, reps):
    registry = MibRegistry()
    agent = SnmpAgent(registry, ENGINE_ID, {"u": UserAccess(((1, 3, 6, 1),), ())})
    rows = {(i,): {1: f"row {i:05d}" * (i % 4)} for i in range(500)}
    registry.table((*BASE, 1), {1: ValueType.OCTET_STRING}, lambda: rows)
    request = Message(5, getbulk_request(1, [BASE], 0, reps), ENGINE_ID, max_size=max_size)
    full = agent._get_bulk(request.pdu, agent.users["u"])
    reply = agent.process("u", request)
    assert reply is not None
    if len(encode_message(Message(5, full, ENGINE_ID, flags=AUTH_PRIV))) <= max_size:
        assert reply.pdu.varbinds == full.varbinds
        return
    count = old_fit_count(request, list(full.varbinds), max_size)
    if count is None:
        assert reply.pdu.error_status is ErrorStatus.TOO_BIG and not reply.pdu.varbinds
    else:
        assert reply.pdu.ok and reply.pdu.varbinds == full.varbinds[:count]
    assert len(encode_message(reply)) <= max_size


def test_a_row_changed_in_place_is_seen_within_the_cache_time():
    registry = MibRegistry()
    rows: dict[Oid, dict[int, int]] = {(1,): {1: 5, 2: 6}, (2,): {1: 7}}
    registry.table((*BASE, 1), {1: ValueType.GAUGE32, 2: ValueType.GAUGE32}, lambda: rows)
    assert [vb.value.value for vb in registry.walk(BASE)] == [5, 7, 6]
    rows[(1,)][1] = 50
    del rows[(1,)][2]
    rows[(3,)] = {1: 9}  # a new row waits for the next snapshot
    assert [vb.value.value for vb in registry.walk(BASE)] == [50, 7]


def test_a_failing_table_gives_gen_err_at_its_repeater():
    registry = MibRegistry()
    agent = SnmpAgent(registry, ENGINE_ID, {"u": UserAccess(((1, 3, 6, 1),), ())})
    registry.scalar((*BASE, 1), ValueType.INTEGER, lambda: 1)
    registry.scalar((*BASE, 2), ValueType.INTEGER, lambda: 1 // 0)
    pdu = ask(agent, getbulk_request(1, [(1, 3), BASE], 1, 3))
    assert (pdu.error_status, pdu.error_index) == (ErrorStatus.GEN_ERR, 1)
    assert [vb.oid for vb in pdu.varbinds] == [(1, 3), BASE]
    pdu = ask(agent, getbulk_request(1, [BASE], 0, 3))
    assert (pdu.error_status, pdu.error_index) == (ErrorStatus.GEN_ERR, 1)
    assert [vb.oid for vb in pdu.varbinds] == [BASE]
