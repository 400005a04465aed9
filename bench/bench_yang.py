"""How long YANG validation takes on a device's configuration: prints figures, asserts nothing.

.venv/bin/python bench/bench_yang.py [ENTRIES]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lxml import etree

from callhome.agent.datastore import NETCONF_BASE_NS, Datastore
from callhome.agent.yang import YangModules

YANG_DIR = Path(__file__).parent.parent / "tests" / "unit" / "agent" / "yang"
EXD = "urn:example:device"


def main() -> None:
    entries = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    start = time.perf_counter()
    yang = YangModules([YANG_DIR], search_path=[YANG_DIR / "lib"])
    print(f"schema built once at start: {(time.perf_counter() - start) * 1000:.1f} ms")
    rows = "".join(
        f"<interface><name>eth{i}</name><type>ethernet</type><description>port {i}</description>"
        f"<vlan>{2 + i % 4000}</vlan></interface>"
        for i in range(entries)
    )
    config = etree.fromstring(
        f'<config xmlns="{NETCONF_BASE_NS}"><interfaces xmlns="{EXD}">{rows}</interfaces></config>'
    )
    datastore = Datastore(list_keys=yang.list_keys, defaults=yang.defaults, schema=yang)
    datastore.edit_config("running", config)
    root = datastore.read()
    runs = 10
    start = time.perf_counter()
    for _ in range(runs):
        assert not yang.validate(root)
    per_check = (time.perf_counter() - start) / runs
    print(f"validate {entries} list entries: {per_check * 1000:.1f} ms")

    def small(n: int) -> etree._Element:
        return etree.fromstring(
            f'<config xmlns="{NETCONF_BASE_NS}"><interfaces xmlns="{EXD}"><interface>'
            f"<name>eth0</name><description>changed {n}</description></interface></interfaces>"
            "</config>"
        )

    start = time.perf_counter()
    for n in range(runs):
        datastore.edit_config("running", small(n))
    per_edit = (time.perf_counter() - start) / runs
    print(f"edit-config of one leaf among {entries} entries (validation included): ")
    print(f"  {per_edit * 1000:.1f} ms")


if __name__ == "__main__":
    main()
