"""The house rules of DESIGN.md, read from the imports (ast): they fail the suite when broken.

- proto/ is sans-IO: no asyncio, sockets, TLS, SSH, databases, HTTP, clocks, and nothing
  of the layers above it;
- manager/ and agent/ never import each other;
- cli/ talks to the manager's HTTP API only: no storage/ and no manager/;
- nothing imports upward: net/ imports neither manager/, agent/, api/ nor cli/; storage/
  none of those nor net/;
- orientations are decided in net/ only: outside it, no code names one (``Orientation.X``
  or its string) but the configuration that lets a user choose (config/, cli/) and the
  access rules that say what a manager may do by the transport it came over
  (agent/access/); and manager/ and agent/ run no SSH or TLS of their own, but for the
  terminal service, which serves SSH channels.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "callhome"

IO_MODULES = frozenset(
    {
        "asyncio",
        "socket",
        "ssl",
        "selectors",
        "subprocess",
        "time",
        "asyncssh",
        "sqlalchemy",
        "aiosqlite",
        "httpx",
        "fastapi",
        "starlette",
        "uvicorn",
        "websockets",
    }
)

FORBIDDEN: dict[str, frozenset[str]] = {
    "proto": IO_MODULES
    | {
        "callhome.net",
        "callhome.manager",
        "callhome.agent",
        "callhome.storage",
        "callhome.api",
        "callhome.cli",
    },
    "manager": frozenset({"callhome.agent", "callhome.cli"}),
    "agent": frozenset({"callhome.manager", "callhome.api", "callhome.cli", "callhome.storage"}),
    "cli": frozenset({"callhome.storage", "callhome.manager"}),
    "net": frozenset({"callhome.manager", "callhome.agent", "callhome.api", "callhome.cli"}),
    "storage": frozenset(
        {"callhome.net", "callhome.manager", "callhome.agent", "callhome.api", "callhome.cli"}
    ),
}


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in a file, function-level ones included."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def broken(layer: str) -> list[str]:
    found = []
    for path in sorted((SRC / layer).rglob("*.py")):
        for line, module in imports(path):
            for bad in FORBIDDEN[layer]:
                if module == bad or module.startswith(f"{bad}."):
                    found.append(f"{path.relative_to(SRC.parent)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_what_it_must_not(layer: str) -> None:
    assert broken(layer) == []


def test_the_check_sees_a_broken_rule(tmp_path: Path) -> None:
    """The reader finds imports anywhere in a module, so the rules above can fail."""
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from callhome.manager import service\n")
    assert [m for _, m in imports(module)] == ["os", "callhome.manager"]


def test_the_api_reaches_the_manager_through_its_methods_only() -> None:
    """api/ asks the Manager; it does not reach into its store, dispatcher or config."""
    found = []
    for path in sorted((SRC / "api").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "manager"
                and node.attr in ("store", "jobs", "config", "sessions", "devices")
            ):
                found.append(f"{path.name}:{node.lineno} manager.{node.attr}")
    assert found == []


ORIENTATIONS = frozenset({"reverse-ssh", "reverse-tls", "turn"})
MAY_NAME_ORIENTATIONS = ("net", "config", "cli", "agent/access")
MAY_SPEAK_SSH = ("net", "agent/terminal.py")


def orientation_names(path: Path) -> Iterator[tuple[int, str]]:
    """(line, what) of each place ``path`` names an orientation in code (docstrings and
    comments may describe them)."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in ORIENTATIONS:
            if id(node) not in docstrings:
                yield node.lineno, repr(node.value)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "Orientation"
        ):
            yield node.lineno, f"Orientation.{node.attr}"


def outside(allowed: tuple[str, ...]) -> Iterator[Path]:
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if not any(relative == a or relative.startswith(f"{a}/") for a in allowed):
            yield path


def test_orientations_are_named_in_net_only() -> None:
    found = [
        f"{path.relative_to(SRC.parent)}:{line} names {what}"
        for path in outside(MAY_NAME_ORIENTATIONS)
        for line, what in orientation_names(path)
    ]
    assert found == []


def test_manager_and_agent_run_no_transport_of_their_own() -> None:
    found = [
        f"{path.relative_to(SRC.parent)}:{line} imports {module}"
        for path in outside(MAY_SPEAK_SSH)
        if path.relative_to(SRC).parts[0] in ("manager", "agent")
        for line, module in imports(path)
        if module.split(".")[0] in ("asyncssh", "ssl")
    ]
    assert found == []


def test_the_orientation_check_sees_a_name(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        '"""Over reverse-ssh."""\n\ndef f(o):\n    return o == "turn" or o is Orientation.TURN\n'
    )
    assert [what for _, what in orientation_names(module)] == ["'turn'", "Orientation.TURN"]
