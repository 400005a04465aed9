"""`callhome init` keeps what is there, and leaves the CLI able to find the manager's API."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from callhome.cli.client import ApiError, ApiTarget
from callhome.cli.main import EXIT_FAILED, EXIT_OK, main

MANAGER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJJd85JWxqjvzF5FTwY0ZV8In3rNmMQ/8aWbRNYSmQUZ"


@pytest.fixture(autouse=True)
def _own_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test has its own ~/.config, and no API taken from the caller's environment."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name in ("CALLHOME_CLIENT_FILE", "CALLHOME_API_URL", "CALLHOME_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return home


def test_init_agent_refuses_to_overwrite_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = tmp_path / "device"
    first = ["init", "agent", str(device), "--manager", "127.0.0.1:4334"]
    assert main([*first, "--manager-key", MANAGER_KEY]) == EXIT_OK
    written = (device / "agent.toml").read_text()
    key = (device / "ssh_host_ed25519_key").read_bytes()
    fingerprint = capsys.readouterr().out.split("callhome approve ")[1].split()[0]

    # again, without the manager key: refused, the file as it was
    assert main(first) == EXIT_FAILED
    assert "agent.toml exists: not overwritten" in capsys.readouterr().err
    assert (device / "agent.toml").read_text() == written

    # with --force: rewritten, and the device keeps its key (and so its identity)
    assert main([*first, "--force"]) == EXIT_OK
    assert fingerprint in capsys.readouterr().out
    assert (device / "agent.toml").read_text() != written
    assert MANAGER_KEY not in (device / "agent.toml").read_text()
    assert (device / "ssh_host_ed25519_key").read_bytes() == key


def test_init_manager_refuses_to_overwrite_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "manager"
    assert main(["init", "manager", str(directory), "--listen", "127.0.0.1:4334"]) == EXIT_OK
    line = capsys.readouterr().out.strip().splitlines()[-1]
    written = (directory / "manager.toml").read_text()
    assert main(["init", "manager", str(directory), "--listen", "127.0.0.1:9"]) == EXIT_FAILED
    assert "manager.toml exists" in capsys.readouterr().err
    assert (directory / "manager.toml").read_text() == written
    assert main(["init", "manager", str(directory), "--force"]) == EXIT_OK
    assert capsys.readouterr().out.strip().splitlines()[-1] == line  # the same manager key
    assert "127.0.0.1:4334" not in (directory / "manager.toml").read_text()


def _client_file_of(directory: Path) -> str | None:
    data = tomllib.loads((directory / "manager.toml").read_text())
    value = data["api"].get("client_file")
    return None if value is None else str(value)


def test_init_manager_has_the_manager_write_the_cli_client_file(
    tmp_path: Path, _own_config_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _own_config_home / ".config" / "callhome" / "client.toml"
    assert main(["init", "manager", str(tmp_path / "a")]) == EXIT_OK
    assert _client_file_of(tmp_path / "a") == str(expected)
    assert str(expected) in capsys.readouterr().out

    os.environ["CALLHOME_CLIENT_FILE"] = str(tmp_path / "elsewhere.toml")
    assert main(["init", "manager", str(tmp_path / "b")]) == EXIT_OK
    assert _client_file_of(tmp_path / "b") == str(tmp_path / "elsewhere.toml")

    mine = tmp_path / "mine.toml"
    assert main(["init", "manager", str(tmp_path / "c"), "--client-file", str(mine)]) == EXIT_OK
    assert _client_file_of(tmp_path / "c") == str(mine)

    assert main(["init", "manager", str(tmp_path / "d"), "--no-client-file"]) == EXIT_OK
    assert _client_file_of(tmp_path / "d") is None
    assert "CALLHOME_API_URL and CALLHOME_API_TOKEN" in capsys.readouterr().out
    assert stat.S_IMODE((tmp_path / "d" / "manager.toml").stat().st_mode) == 0o600


# -- finding the API ---------------------------------------------------------------------


def test_the_api_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLHOME_API_URL", "http://127.0.0.1:1/")
    monkeypatch.setenv("CALLHOME_API_TOKEN", "secret")
    assert ApiTarget.find() == ApiTarget("http://127.0.0.1:1", "secret")
    assert ApiTarget.find("http://[::1]:2", "other") == ApiTarget("http://[::1]:2", "other")


def test_no_api_known_says_every_way_to_name_it(_own_config_home: Path) -> None:
    with pytest.raises(ApiError) as caught:
        ApiTarget.find()
    message = str(caught.value)
    assert str(_own_config_home / ".config" / "callhome" / "client.toml") in message
    for way in ("CALLHOME_API_URL", "CALLHOME_API_TOKEN", "--api", "--token", "init manager"):
        assert way in message


def test_a_client_file_without_a_token_is_no_api(tmp_path: Path) -> None:
    client = tmp_path / "client.toml"
    client.write_text('url = "http://127.0.0.1:1"\n')
    os.environ["CALLHOME_CLIENT_FILE"] = str(client)
    with pytest.raises(ApiError, match="has no url and token"):
        ApiTarget.find()
