"""The CLI's view of the manager: its HTTP API, nothing else."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from callhome.config import default_client_file


class ApiError(Exception):
    """The API answered with an error (or could not be reached)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        super().__init__(body.get("message", f"HTTP {status}"))


@dataclass
class ApiTarget:
    url: str
    token: str

    @classmethod
    def find(cls, url: str | None = None, token: str | None = None) -> ApiTarget:
        """Flags first, then CALLHOME_API_URL/CALLHOME_API_TOKEN, then the client file."""
        url = url or os.environ.get("CALLHOME_API_URL")
        token = token or os.environ.get("CALLHOME_API_TOKEN")
        if not (url and token):
            path = default_client_file()
            try:
                data = tomllib.loads(Path(path).read_text())
            except OSError:
                raise ApiError(0, {"message": _unknown(f"{path} is missing")}) from None
            except tomllib.TOMLDecodeError as exc:
                raise ApiError(0, {"message": _unknown(f"{path} is not TOML ({exc})")}) from None
            url = url or str(data.get("url", ""))
            token = token or str(data.get("token", ""))
            if not (url and token):
                raise ApiError(0, {"message": _unknown(f"{path} has no url and token")})
        return cls(url.rstrip("/"), token)


def _unknown(why: str) -> str:
    return (
        f"no API address known: {why}. Start a manager with api.client_file set (`callhome "
        "init manager` sets it), set CALLHOME_API_URL and CALLHOME_API_TOKEN, or pass --api "
        "URL and --token TOKEN"
    )


class Api:
    def __init__(self, target: ApiTarget, timeout: float = 120.0) -> None:
        self._client = httpx.Client(
            base_url=target.url,
            headers={"Authorization": f"Bearer {target.token}"},
            timeout=timeout,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, {"message": f"cannot reach the manager API: {exc}"}) from None
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text}
        if response.status_code >= 400:
            raise ApiError(response.status_code, body if isinstance(body, dict) else {})
        return body

    def close(self) -> None:
        self._client.close()
