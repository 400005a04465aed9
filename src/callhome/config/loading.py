"""Reading configuration files: TOML, environment overrides, one ConfigError for any fault."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from callhome.config.manager import ApiToken, ApiTokens
from callhome.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def _apply_env(data: dict[str, Any], prefix: str = "CALLHOME_") -> dict[str, Any]:
    for key, value in os.environ.items():
        if not key.startswith(prefix) or "__" not in key:
            continue
        parts = key[len(prefix) :].lower().split("__")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    return data


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _validate(model: type[M], data: dict[str, Any], path: Path) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc


def load(model: type[M], path: Path) -> M:
    """Load a config file into ``model``, with environment overrides; ConfigError on any fault."""
    data = _apply_env(_read_toml(path))
    data.setdefault("state_dir", ".")
    state_dir = Path(data["state_dir"])
    if not state_dir.is_absolute():
        data["state_dir"] = str((path.parent / state_dir).resolve())
    return _validate(model, data, path)


def load_api_tokens(path: Path) -> list[ApiToken]:
    """The tokens listed in ``path``; none if the file does not exist."""
    if not path.exists():
        return []
    return _validate(ApiTokens, _read_toml(path), path).token


def default_client_file() -> Path:
    """Where the CLI finds the API address and token unless told otherwise."""
    explicit = os.environ.get("CALLHOME_CLIENT_FILE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "callhome" / "client.toml"
