from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import AgentProc, ManagerProc


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[ManagerProc]:
    m = ManagerProc(tmp_path / "manager").start()
    yield m
    m.stop()


@pytest.fixture
def make_agent(tmp_path: Path, manager: ManagerProc) -> Iterator:
    agents: list[AgentProc] = []

    def make(name: str, addresses: list[str] | None = None, env: dict | None = None) -> AgentProc:
        agent = AgentProc(
            tmp_path / name,
            addresses or [f"127.0.0.1:{manager.port}"],
            [manager.public_key],
            env,
        )
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop()
