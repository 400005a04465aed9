"""Benchmark: the SNMPv3/TSM message codec, product against the reference codec, one process.

Run ``python bench/bench_snmp_codec.py`` (or ``--quick``, or ``--profile`` to see where the
product's time goes). Prints figures, asserts nothing about time.

- **baseline**: :mod:`callhome.proto.snmp.reference`, the codec as it first was: pysnmp's
  ``SNMPv3Message`` and RFC 1905 PDU classes filled in field by field, then pyasn1's BER
  encoder and decoder on the whole tree.
- **product**: ``callhome.proto.snmp.encode_message`` / ``decode_message``
  (:mod:`callhome.proto.snmp.codec`).

Both run on the same messages in the same process, alternating round by round. Each figure
is the median over rounds of the mean time of one call within a round. "µs/binding" is the
time of one message divided by its variable bindings; "marginal µs/binding" is
(t(50 bindings) - t(1 binding)) / 49, the cost of one more binding with the header taken
out. Before timing, the two codecs must agree on every message (same bytes, same values).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import itertools
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from callhome.proto.snmp import (  # noqa: E402
    AUTH_PRIV,
    Message,
    MsgFlags,
    Value,
    ValueType,
    VarBind,
    decode_message,
    encode_message,
    get_request,
    reference,
    response,
)

ENGINE_ID = bytes.fromhex("80001f8880c71100000102030405")
IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)


def mixed_value(i: int) -> Value:
    """The i-th of a cycle of every syntax a binding carries (and the exceptions)."""
    kinds: list[Value] = [
        Value.integer(-(i * 7919) % 100000),
        Value.octets(f"GigabitEthernet0/{i}"),
        Value.oid((1, 3, 6, 1, 4, 1, 9, 1, 1000 + i)),
        Value(ValueType.COUNTER32, (i * 2654435761) % 2**32),
        Value(ValueType.COUNTER64, (i * 11400714819323198485) % 2**64),
        Value(ValueType.GAUGE32, 1_000_000_000),
        Value(ValueType.TIMETICKS, 123456 + i),
        Value(ValueType.IP_ADDRESS, bytes([10, 0, i % 256, 1])),
        Value.null(),
        Value(ValueType.NO_SUCH_OBJECT),
        Value(ValueType.END_OF_MIB_VIEW),
    ]
    return kinds[i % len(kinds)]


def envelope(pdu_msg_id: int, pdu: object, reportable: bool) -> Message:
    flags = AUTH_PRIV | MsgFlags.REPORTABLE if reportable else AUTH_PRIV
    return Message(pdu_msg_id, pdu, ENGINE_ID, b"", flags)  # type: ignore[arg-type]


def walk_page(page: int) -> Message:
    """The ``page``-th response of a 10,000-row GETBULK walk of one column, 25 a page."""
    column = [
        VarBind((*IF_ENTRY, 10, 1 + i), Value(ValueType.COUNTER32, 1000 * i))
        for i in range(page * 25, page * 25 + 25)
    ]
    return envelope(103 + page, response(1003 + page, column), False)


def cases() -> list[tuple[str, list[Message]]]:
    """Each case is a pool of equal (or, for the walk, successive) messages, used in turn:
    the product remembers the last message it encoded, and the names it encoded, and a
    benchmark that encodes one object over and over would time only those memories."""
    mixed = [VarBind((*IF_ENTRY, 2 + i % 20, 1 + i), mixed_value(i)) for i in range(50)]
    fixed = [
        ("GET request, 1 binding", envelope(101, get_request(1001, [SYS_DESCR]), True)),
        (
            "Response, 1 binding",
            envelope(101, response(1001, [VarBind(SYS_DESCR, Value.octets("Linux 6.1"))]), False),
        ),
        ("Response, 50 mixed", envelope(102, response(1002, mixed), False)),
    ]
    pools = [(label, [m, dataclasses.replace(m)]) for label, m in fixed]
    pools.append(("Response, 25 Counter32 (walk)", [walk_page(p) for p in range(400)]))
    return pools


Codec = tuple[Callable[[Message], bytes], Callable[[bytes], Message]]
CODECS: dict[str, Codec] = {
    "baseline": (reference.encode_message, reference.decode_message),
    "product": (encode_message, decode_message),
}


def check_agreement(pools: list[tuple[str, list[Message]]]) -> None:
    for label, pool in pools:
        message = pool[0]
        wire = reference.encode_message(message)
        if encode_message(message) != wire:
            raise SystemExit(f"{label}: the product encodes other bytes than the reference")
        if (
            decode_message(wire) != reference.decode_message(wire)
            or decode_message(wire) != message
        ):
            raise SystemExit(f"{label}: the product decodes another message than the reference")


def time_call(fn: Callable[[], object], loops: int) -> float:
    """Mean seconds per call over ``loops`` calls (garbage collection off meanwhile)."""
    gc_was = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        return (time.perf_counter() - start) / loops
    finally:
        if gc_was:
            gc.enable()


@dataclass
class Row:
    label: str
    bindings: int
    op: str
    times: dict[str, list[float]]

    def median_us(self, side: str) -> float:
        return statistics.median(self.times[side]) * 1e6

    def spread(self, side: str) -> str:
        t = self.times[side]
        return f"{min(t) * 1e6:.0f}..{max(t) * 1e6:.0f}"


def measure(pools: list[tuple[str, list[Message]]], rounds: int, budget: float) -> list[Row]:
    rows: list[Row] = []
    for label, pool in pools:
        wires = [reference.encode_message(m) for m in pool]
        n = len(pool[0].pdu.varbinds)
        for op in ("encode", "decode"):
            row = Row(label, n, op, {side: [] for side in CODECS})
            calls: dict[str, Callable[[], object]] = {}
            for side, (enc, dec) in CODECS.items():
                if op == "encode":
                    messages = itertools.cycle(pool)
                    calls[side] = lambda e=enc, it=messages: e(next(it))
                else:
                    data = itertools.cycle(wires)
                    calls[side] = lambda d=dec, it=data: d(next(it))
            # loops per round: about ``budget`` seconds of the slower side
            loops = max(1, int(budget / max(time_call(calls["baseline"], 3), 1e-7)))
            for _ in range(rounds):
                for side, fn in calls.items():
                    row.times[side].append(time_call(fn, loops))
            rows.append(row)
    return rows


def report(rows: list[Row]) -> None:
    head = (
        f"{'message':32} {'op':6} {'baseline µs':>12} {'product µs':>11} {'ratio':>6}"
        f" {'base µs/vb':>10} {'prod µs/vb':>10}   spread base | prod"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        b, p = r.median_us("baseline"), r.median_us("product")
        print(
            f"{r.label:32} {r.op:6} {b:12.1f} {p:11.1f} {b / p:5.1f}x"
            f" {b / r.bindings:10.1f} {p / r.bindings:10.1f}"
            f"   {r.spread('baseline')} | {r.spread('product')}"
        )
    by = {(r.label, r.op): r for r in rows}
    print()
    for op in ("encode", "decode"):
        one, fifty = by[("Response, 1 binding", op)], by[("Response, 50 mixed", op)]
        marginal = {side: (fifty.median_us(side) - one.median_us(side)) / 49 for side in CODECS}
        print(
            f"marginal µs/binding, {op}: baseline {marginal['baseline']:.1f}, product"
            f" {marginal['product']:.1f} ({marginal['baseline'] / marginal['product']:.1f}x)"
        )


def profile(pools: list[tuple[str, list[Message]]], seconds: float) -> None:
    label, pool = pools[2]
    messages = itertools.cycle(pool)
    wire = encode_message(pool[0])
    for name, fn in (
        ("encode", lambda: encode_message(next(messages))),
        ("decode", lambda: decode_message(wire)),
    ):
        loops = max(1, int(seconds / max(time_call(fn, 3), 1e-7)))
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(loops):
            fn()
        prof.disable()
        print(f"\n--- product {name}, {label}, {loops} calls ---")
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 short rounds (a few seconds)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per case (default 15)")
    parser.add_argument("--profile", action="store_true", help="then cProfile the product")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 15)
    budget = 0.02 if args.quick else 0.1

    pools = cases()
    check_agreement(pools)
    print(
        f"SNMP codec: python {platform.python_version()}, pyasn1 {metadata.version('pyasn1')},"
        f" pysnmp {metadata.version('pysnmp')}; {rounds} rounds, medians\n"
    )
    report(measure(pools, rounds, budget))
    if args.profile:
        profile(pools, 1.0)


if __name__ == "__main__":
    main()
