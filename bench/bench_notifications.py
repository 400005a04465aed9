"""Benchmark: NETCONF notifications from many devices to the manager, stored durably.

Run ``python bench/bench_notifications.py`` (100 devices, 100 notifications each) or pass
``--devices`` / ``--per-device``. One process: a manager (SQLite store in a temporary
folder, so every event is committed to disk) and N devices, each the product's device side
(its own ``NetconfService`` and ``NotificationCenter``, with an in-memory replay log) dialing
over reverse-ssh on loopback. The manager subscribes on each connection; then every device
emits its notifications as fast as it can. The figure is stored notifications per second,
from the first emitted to the last stored; the run ends with a count check per device that
none was lost or stored twice. Devices and manager share one CPU here, so the figure is a
floor for the manager alone. Nothing about time is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import asyncssh
from lxml import etree

from callhome.agent.datastore.core import Datastore
from callhome.agent.netconf_service import NetconfService
from callhome.agent.notifications import EventLog, NotificationCenter
from callhome.config import (
    AgentConfig,
    Endpoint,
    ManagerConfig,
    ManagerSection,
    SshAlgorithms,
)
from callhome.manager.notifications import EVENT_KIND
from callhome.manager.service import Manager
from callhome.net.keys import ensure_key, identity_of
from callhome.net.reverse_ssh import DeviceSshSettings, dial_reverse_ssh
from callhome.storage import open_store

NS = "urn:example:bench"


async def run(devices: int, per_device: int) -> int:
    with tempfile.TemporaryDirectory(prefix="callhome-bench-") as tmp:
        state = Path(tmp)
        config = ManagerConfig(state_dir=state, manager=ManagerSection(listen=["127.0.0.1:0"]))
        manager_key = ensure_key(config.path(config.manager.key))
        host_keys = [asyncssh.generate_private_key("ssh-ed25519") for _ in range(devices)]
        store = open_store(config.database_url)
        await store.open()
        now = time.time()
        for i, key in enumerate(host_keys):
            await store.pre_approve(identity_of(key).fingerprint, "ssh-ed25519", f"d{i}", now)
        await store.close()
        store = open_store(config.database_url)
        manager = Manager(config, store)
        [port] = await manager.start()
        defaults = AgentConfig(endpoints=[Endpoint(address="127.0.0.1")])
        centers: list[NotificationCenter] = []
        connections = []
        try:
            for key in host_keys:
                center = NotificationCenter(EventLog(None, max_events=per_device + 100))
                centers.append(center)
                service = NetconfService(Datastore(None), notifications=center)
                settings = DeviceSshSettings(
                    host_key=key,
                    manager_keys=[manager_key],
                    handler=service,
                    auth_timeout=defaults.auth_timeout,
                    keepalive=defaults.keepalive,
                    algorithms=SshAlgorithms(),
                    max_message_size=defaults.max_message_size,
                )
                connections.append(await dial_reverse_ssh("127.0.0.1", port, settings))

            async def all_subscribed() -> None:
                while not all(c.subscribed(1) for c in centers):
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(all_subscribed(), 60)
            before = await _count(manager, devices)

            t0 = time.perf_counter()
            for n in range(per_device):
                for center in centers:
                    el = etree.Element(f"{{{NS}}}tick")
                    el.text = str(n)
                    center.notify(el)
                if n % 10 == 9:
                    await asyncio.sleep(0)  # let the manager read as the devices write
            emitted = time.perf_counter() - t0
            total = devices * per_device
            deadline = time.monotonic() + 300
            while sum((await _count(manager, devices)).values()) - sum(before.values()) < total:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            elapsed = time.perf_counter() - t0
            after = await _count(manager, devices)
        finally:
            for conn in connections:
                conn.abort()
            await manager.stop()

    stored = {d: after[d] - before.get(d, 0) for d in after}
    wrong = {d: c for d, c in stored.items() if c != per_device}
    missing = [f"d{i}" for i in range(devices) if f"d{i}" not in stored]
    print(f"devices                 {devices}")
    print(f"notifications           {total} ({per_device} per device)")
    print(f"emitted in              {emitted:.2f} s")
    print(f"all stored in           {elapsed:.2f} s")
    print(f"stored per second       {total / elapsed:,.0f}")
    print(f"count check             {'ok' if not wrong and not missing else 'FAILED'}")
    if wrong or missing:
        print(f"  wrong counts: {wrong}; missing devices: {missing}", file=sys.stderr)
        return 1
    return 0


async def _count(manager: Manager, devices: int) -> Counter[str]:
    """tick notifications stored per device (session events left out)."""
    counts: Counter[str] = Counter()
    after = 0
    while True:
        events = await manager.store.list_events(after_id=after, limit=10_000, kinds=[EVENT_KIND])
        if not events:
            return counts
        for e in events:
            if e.detail.get("name") == "tick" and e.device is not None:
                counts[e.device] += 1
        after = events[-1].id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--per-device", type=int, default=100)
    args = parser.parse_args(argv)
    return asyncio.run(run(args.devices, args.per_device))


if __name__ == "__main__":
    sys.exit(main())
