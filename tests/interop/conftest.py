"""Fixtures of the interop tests: a manager key pair, agents that call a given port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from interop_helpers import KeyPair, make_manager_key

from harness import AgentProc


@pytest.fixture
def manager_key(tmp_path: Path) -> KeyPair:
    return make_manager_key(tmp_path / "manager")


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., AgentProc]]:
    """Start agents that call 127.0.0.1:PORT and accept the given manager keys."""
    agents: list[AgentProc] = []

    def start(port: int, manager_keys: list[str], name: str = "agent") -> AgentProc:
        agent = AgentProc(tmp_path / name, [f"127.0.0.1:{port}"], manager_keys).start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.stop()
