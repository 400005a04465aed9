"""Many real agents in one process, for tests that need a fleet that comes and goes.

    python tests/fleet_agents.py STATE_DIR MANAGER_PORT MANAGER_PUBKEY_FILE COUNT [CHURN_SECONDS]

Each device keeps its state (host key, datastore) in STATE_DIR/dev-N, so a second run brings
the same devices back. Their fingerprints are written to STATE_DIR/fingerprints (one per
line, in order) before any of them dials. With CHURN_SECONDS > 0, a random device drops its
connection about that often (it redials at once, as a device whose path broke would).
The process runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
from pathlib import Path

from callhome.agent.service import Agent
from callhome.config import AgentConfig, Endpoint, KeepaliveConfig, ReconnectConfig


async def main() -> None:
    state = Path(sys.argv[1])
    port = int(sys.argv[2])
    manager_key = Path(sys.argv[3]).read_text().strip()
    count = int(sys.argv[4])
    churn = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    agents = []
    for n in range(count):
        config = AgentConfig(
            state_dir=state / f"dev-{n}",
            endpoints=[Endpoint(address=f"127.0.0.1:{port}")],
            manager_keys=[manager_key],
            reconnect=ReconnectConfig(backoff_initial=0.1, backoff_max=0.5, max_wait=10),
            keepalive=KeepaliveConfig(interval=2, count_max=2),
        )
        agents.append(Agent(config, rng=random.Random(n)))
    (state / "fingerprints").write_text("".join(f"{a.identity}\n" for a in agents))
    print("fleet ready", flush=True)
    tasks = [asyncio.create_task(a.run()) for a in agents]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    rng = random.Random(1)

    async def churner() -> None:
        while churn > 0:
            await asyncio.sleep(rng.uniform(0.5, 1.5) * churn)
            victim = rng.choice(agents)
            if victim.connection is not None:
                victim.connection.abort()

    churn_task = asyncio.create_task(churner())
    await stop.wait()
    churn_task.cancel()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
