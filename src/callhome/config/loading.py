"""Reading configuration files: TOML, environment overrides, one ConfigError for any fault."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from callhome.config.manager import ApiToken, ApiTokens
from callhome.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def _field_type(model: type[BaseModel] | None, parts: list[str]) -> Any:
    """The annotation of the field at ``parts`` under ``model``, or None if unknown."""
    annotation: Any = model
    for part in parts:
        annotation = _unwrap_optional(annotation)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        field = annotation.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
    return _unwrap_optional(annotation)


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _env_list(text: str) -> list[Any]:
    """A list from an environment value: a TOML array (``["a", "b"]``), else items
    separated by commas (``a,b``); blanks around items are dropped, empty items too."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            return list(tomllib.loads(f"v = {stripped}")["v"])
        except tomllib.TOMLDecodeError:
            pass  # not TOML: perhaps "[::]:4334,..." - read it as a comma-separated list
    return [item.strip() for item in text.split(",") if item.strip()]


def _apply_env(
    data: dict[str, Any], model: type[BaseModel] | None = None, prefix: str = "CALLHOME_"
) -> dict[str, Any]:
    """Overlay ``CALLHOME_SECTION__KEY=value`` variables on ``data``. A value is a string,
    except for a list field of ``model``: a TOML array or a comma-separated list."""
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
            annotation = _field_type(model, parts)
            is_list = (get_origin(annotation) or annotation) in (list, tuple, set)
            node[parts[-1]] = _env_list(value) if is_list else value
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
    data = _apply_env(_read_toml(path), model)
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
