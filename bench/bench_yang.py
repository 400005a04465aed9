"""How long YANG validation takes on a device's configuration: prints figures, asserts nothing.

.venv/bin/python bench/bench_yang.py [--quick] [ENTRIES ...]     (default: 1000)

For each count of list entries: one whole check (``YangModules.validate``); an edit of one
modeled leaf (validated); an edit of a schemaless subtree beside the modeled data, as the
datastore runs it (the modeled data is unchanged, so the check is skipped) and as it ran
before that skip (checked all the same); and what deciding to skip costs
(``YangModules.same_modeled`` on two equal trees). Then one whole check of lists whose every
entry holds a leafref to another entry (``LEAFREF_COUNTS``, the costly case with yangson).
Each figure is the median of ``RUNS``. ``--quick``: fewer entries (a smoke run).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from callhome.agent.datastore.core import NETCONF_BASE_NS, Datastore
from callhome.agent.yang.modules import YangModules
from callhome.errors import RpcErrorInfo

YANG_DIR = Path(__file__).parent.parent / "tests" / "unit" / "agent" / "yang"
EXD = "urn:example:device"
OTHER = "urn:example:other"
RUNS = 9
LEAFREF_COUNTS = (200, 1000)
QUICK_COUNTS = (200,)
QUICK_LEAFREF_COUNTS = (50, 100)


class AlwaysCheck:
    """The modules, with the skip turned off: every change is checked (the old behaviour)."""

    def __init__(self, yang: YangModules) -> None:
        self._yang = yang

    def validate(self, root: etree._Element) -> list[RpcErrorInfo]:
        return self._yang.validate(root)

    def same_modeled(self, before: etree._Element, after: etree._Element) -> bool:
        return False


def median_ms(action: Callable[[int], object]) -> float:
    times = []
    for n in range(RUNS):
        start = time.perf_counter()
        action(n)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def config(body: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NETCONF_BASE_NS}">{body}</config>')


def modeled_edit(n: int) -> etree._Element:
    return config(
        f'<interfaces xmlns="{EXD}"><interface><name>eth0</name>'
        f"<description>changed {n}</description></interface></interfaces>"
    )


def schemaless_edit(n: int) -> etree._Element:
    return config(f'<notes xmlns="{OTHER}"><note>edit {n}</note></notes>')


def interfaces(entries: int, *, leafref: bool = False) -> str:
    """``entries`` list entries; with ``leafref``, each one's peer is the next entry."""
    rows = "".join(
        f"<interface><name>eth{i}</name><type>ethernet</type><description>port {i}</description>"
        + (f"<peer>eth{(i + 1) % entries}</peer>" if leafref else "")
        + f"<vlan>{2 + i % 4000}</vlan></interface>"
        for i in range(entries)
    )
    return f'<interfaces xmlns="{EXD}">{rows}</interfaces>'


def measure_leafrefs(yang: YangModules, entries: int) -> None:
    root = etree.fromstring(
        f'<data xmlns="{NETCONF_BASE_NS}">{interfaces(entries, leafref=True)}</data>'
    )

    def check(_n: int) -> None:
        assert not yang.validate(root)

    print(f"{entries} list entries, each with a leafref to another entry:")
    print(f"  validate the whole configuration          {median_ms(check):8.1f} ms")


def measure(yang: YangModules, entries: int) -> None:
    initial = config(interfaces(entries))
    skipping = Datastore(list_keys=yang.list_keys, defaults=yang.defaults, schema=yang)
    always = Datastore(list_keys=yang.list_keys, defaults=yang.defaults, schema=AlwaysCheck(yang))
    for datastore in (skipping, always):
        datastore.edit_config("running", initial)
    root = skipping.read()
    twin = skipping.read()

    def check(_n: int) -> None:
        assert not yang.validate(root)

    print(f"{entries} list entries:")
    print(f"  validate the whole configuration          {median_ms(check):8.1f} ms")
    edit_ms = median_ms(lambda n: skipping.edit_config("running", modeled_edit(n)))
    print(f"  edit-config of one modeled leaf           {edit_ms:8.1f} ms")
    skip_ms = median_ms(lambda n: skipping.edit_config("running", schemaless_edit(n)))
    print(f"  edit-config of schemaless data, skipped   {skip_ms:8.1f} ms")
    full_ms = median_ms(lambda n: always.edit_config("running", schemaless_edit(n)))
    print(f"  the same, checked all the same (before)   {full_ms:8.1f} ms")
    same_ms = median_ms(lambda _n: yang.same_modeled(root, twin))
    print(f"  same_modeled on two equal trees           {same_ms:8.1f} ms")


def main() -> None:
    args = sys.argv[1:]
    quick = "--quick" in args
    counts = [int(a) for a in args if a != "--quick"] or list(QUICK_COUNTS if quick else [1000])
    start = time.perf_counter()
    yang = YangModules([YANG_DIR], search_path=[YANG_DIR / "lib"])
    print(f"schema built once at start: {(time.perf_counter() - start) * 1000:.1f} ms")
    for entries in counts:
        measure(yang, entries)
    for entries in QUICK_LEAFREF_COUNTS if quick else LEAFREF_COUNTS:
        measure_leafrefs(yang, entries)


if __name__ == "__main__":
    main()
