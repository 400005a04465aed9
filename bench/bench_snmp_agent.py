"""Benchmark: the agent's side of a GETBULK walk, in one process, no transport.

Run ``python bench/bench_snmp_agent.py`` (or ``--quick``; ``--profile`` to see where the
product's time goes; ``--src DIR`` to import ``callhome`` from another tree, e.g. an older
commit's ``src`` from ``git archive``, for a before/after). Prints figures, asserts nothing.

What is timed is what the device does per request in ``bench_snmp.py``'s walk, without SSH
or TLS: an :class:`SnmpAgent` with a 10,000-row, one-column table added through
``MibRegistry.table`` (as the ``--role device`` of ``bench_snmp.py`` adds it), and its
``snmp`` channel (:class:`SnmpResponderChannel`) fed the encoded GETBULK requests
(non-repeaters 0, max-repetitions 50) of a whole walk of the column, one after another,
each response written to a list: decoding the request, access checks, the MIB, building
the response, fitting it to the size limit and encoding it.

- **product**: the agent as it is.
- **old request handling** (baseline in the same run): the same agent with GETNEXT,
  GETBULK and the size fitting as they were before the MIB walk (one registry search per
  binding, ``MibRegistry.next`` re-listing the table's instances each time, view checked per
  OID, a GETNEXT PDU per row of a GETBULK); the codec is the current one either way, so
  the difference is the request handling alone.

Cases: the table's snapshot taken once and reused walk after walk (as ``bench_snmp.py``'s
table, ``cache_for=3600``), and a fresh snapshot for every walk (the first walk after the
cache time: the snapshot is built inside the walk). CPU time (``time.process_time``) per
walk over the bindings it returned; the median over rounds, the two taking turns.
"""

from __future__ import annotations

import argparse
import bisect
import cProfile
import platform
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ENTRY = (1, 3, 6, 1, 4, 1, 32473, 1, 1, 1)
COLUMN = (*ENTRY, 2)
ENGINE_ID = bytes.fromhex("800000000501020304")


def build(rows: int, legacy: bool) -> tuple[Any, Any]:
    """An agent with the bench table, and its table node."""
    from callhome.agent.snmp.agent import SnmpAgent, UserAccess
    from callhome.agent.snmp.mib import MibRegistry
    from callhome.proto.snmp import ValueType

    registry = MibRegistry()
    cls = legacy_agent_class() if legacy else SnmpAgent
    agent = cls(registry, ENGINE_ID, {"callhome": UserAccess(((1, 3, 6, 1),), ())})
    table = {(i,): {2: f"row-{i:05d}"} for i in range(1, rows + 1)}
    node = registry.table(ENTRY, {2: ValueType.OCTET_STRING}, lambda: table, cache_for=3600)
    return agent, node


def walk_requests(agent: Any, reps: int) -> list[bytes]:
    """The encoded requests of one walk of the column (each asks after the last name)."""
    from callhome.proto.snmp import (
        AUTH_PRIV,
        Message,
        MsgFlags,
        SnmpStream,
        ValueType,
        getbulk_request,
    )

    stream, requests, oid = SnmpStream(), [], COLUMN
    for rid in range(1, 10**6):
        message = Message(
            rid,
            getbulk_request(rid, [oid], 0, reps),
            ENGINE_ID,
            flags=AUTH_PRIV | MsgFlags.REPORTABLE,
        )
        requests.append(stream.send(message))
        reply = agent.process("callhome", message)
        last = reply.pdu.varbinds[-1]
        if last.oid[: len(COLUMN)] != COLUMN or last.value.type is ValueType.END_OF_MIB_VIEW:
            break
        oid = last.oid
    return requests


class Walker:
    """One agent's channel, fed a whole walk's requests."""

    def __init__(self, rows: int, reps: int, legacy: bool) -> None:
        self.agent, self.table = build(rows, legacy)
        self.requests = walk_requests(self.agent, reps)
        self.written: list[bytes] = []
        self.channel = self.agent.open_channel(
            "callhome", None, "bench", self.written.append, lambda: None
        )
        self.bindings = self.count()

    def walk(self, fresh: bool) -> None:
        if fresh:
            self.table._cached = None  # the cache time is over: the next read snapshots
        self.written.clear()
        for request in self.requests:
            self.channel.feed(request)

    def count(self) -> int:
        from callhome.proto.snmp import SnmpStream

        self.walk(fresh=False)
        stream = SnmpStream()
        for data in self.written:
            stream.receive_data(data)
        total = 0
        while (message := stream.next_message()) is not None:
            total += len(message.pdu.varbinds)
        return total


def legacy_agent_class() -> type:
    """``SnmpAgent`` with GETNEXT, GETBULK and ``_fit`` as they were before the MIB walk."""
    from callhome.agent.snmp import agent as snmp
    from callhome.agent.snmp.mib import MibRegistry
    from callhome.proto.snmp import ErrorStatus, Oid, Pdu, PduType, Value, ValueType, VarBind

    def registry_next(mib: MibRegistry, oid: Oid) -> tuple[Oid, Value] | None:
        start = max(0, bisect.bisect_right(mib._prefixes, oid) - 1)
        for node in mib._nodes[start:]:
            instances = node.instances()
            j = bisect.bisect_right(instances, oid)
            while j < len(instances):
                value = node.get(instances[j])
                if value is not None:
                    return instances[j], value
                j += 1
        return None

    def may_read(access: snmp.UserAccess, oid: Oid) -> bool:
        w = snmp._within
        return w(oid, access.read) or w(oid, access.write) or w(oid, (snmp.SNMP_ENGINE,))

    class LegacyAgent(snmp.SnmpAgent):  # type: ignore[misc]
        def _fit(self, request: Any, pdu: Pdu) -> Any:
            limit = min(request.max_size, self.max_message_size)
            answer = self._answer(request, pdu)
            if snmp._size(answer) <= limit:
                return answer
            if request.pdu.type is PduType.GETBULK and pdu.ok:
                varbinds = list(pdu.varbinds)
                while varbinds:
                    del varbinds[max(1, len(varbinds) // 8) * -1 :]
                    answer = self._answer(request, snmp.response(pdu.request_id, varbinds))
                    if snmp._size(answer) <= limit:
                        return answer
            return self._answer(request, snmp.response(pdu.request_id, (), ErrorStatus.TOO_BIG, 0))

        def _next(self, oid: Oid, access: Any) -> VarBind:
            current = oid
            while (found := registry_next(self.mib, current)) is not None:
                current, value = found
                if may_read(access, current):
                    return VarBind(current, value)
            return VarBind(oid, Value(ValueType.END_OF_MIB_VIEW))

        def _get_bulk(self, pdu: Pdu, access: Any) -> Pdu:
            varbinds = pdu.varbinds
            n = min(max(pdu.non_repeaters, 0), len(varbinds))
            r = len(varbinds) - n
            reps = min(max(pdu.max_repetitions, 0), (snmp.MAX_BULK_VARBINDS - n) // r if r else 0)
            first = self._get_next(Pdu(PduType.GETNEXT, pdu.request_id, varbinds[:n]), access)
            if not first.ok:
                return first
            out = list(first.varbinds)
            last = list(varbinds[n:])
            for _ in range(reps):
                step = self._get_next(Pdu(PduType.GETNEXT, pdu.request_id, tuple(last)), access)
                if not step.ok:
                    return snmp.response(
                        pdu.request_id, varbinds, step.error_status, step.error_index
                    )
                out += step.varbinds
                last = list(step.varbinds)
                if all(vb.value.type is ValueType.END_OF_MIB_VIEW for vb in last):
                    break
            return snmp.response(pdu.request_id, out)

    return LegacyAgent


def cpu_per_walk(walker: Walker, fresh: bool) -> float:
    c0 = time.process_time()
    walker.walk(fresh)
    return time.process_time() - c0


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:,.2f} µs"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--max-repetitions", type=int, default=50)
    parser.add_argument(
        "--rounds", type=int, default=0, help="walks per case (default 15, quick 5)"
    )
    parser.add_argument("--src", type=Path, help="import callhome from this src directory")
    parser.add_argument("--no-legacy", action="store_true", help="the product only")
    parser.add_argument("--profile", action="store_true", help="cProfile one product walk")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 15)
    sys.path.insert(0, str(args.src.resolve() if args.src else HERE.parent / "src"))

    import callhome

    print(f"callhome from {Path(callhome.__file__).parent}")
    print(
        f"Python {platform.python_version()}, {platform.machine()}; {args.rows:,} rows, "
        f"max-repetitions {args.max_repetitions}, {rounds} walks per case"
    )
    walkers: dict[str, Walker] = {"product": Walker(args.rows, args.max_repetitions, False)}
    if not args.no_legacy:
        walkers["old request handling"] = Walker(args.rows, args.max_repetitions, True)
    for name, w in walkers.items():
        print(f"  {name}: {len(w.requests)} requests, {w.bindings:,} bindings per walk")
    if args.profile:
        w = walkers["product"]
        profiler = cProfile.Profile()
        profiler.runcall(w.walk, False)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)

    results: dict[tuple[str, bool], list[float]] = {}
    for fresh in (False, True):
        for _ in range(rounds):
            for name, w in walkers.items():
                results.setdefault((name, fresh), []).append(cpu_per_walk(w, fresh))

    print()
    print("| case | snapshot | CPU per walk | CPU per binding |")
    print("|---|---|---:|---:|")
    for (name, fresh), times in results.items():
        median = statistics.median(times)
        bindings = walkers[name].bindings
        label = "fresh each walk" if fresh else "reused"
        print(f"| {name} | {label} | {fmt_ms(median)} | {fmt_us(median / bindings)} |")
    if not args.no_legacy:
        print()
        for fresh in (False, True):
            old = statistics.median(results[("old request handling", fresh)])
            new = statistics.median(results[("product", fresh)])
            label = "fresh snapshot" if fresh else "reused snapshot"
            print(f"old request handling ÷ product, {label}: {old / new:.1f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
