from pathlib import Path

import pytest

from callhome.config import AgentConfig, ManagerConfig, load, parse_hostport
from callhome.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:4334", ("127.0.0.1", 4334)),
        ("[::1]:99", ("::1", 99)),
        ("[::]", ("::", 4334)),
        ("example.net", ("example.net", 4334)),
    ],
)
def test_parse_hostport(text, expected):
    assert parse_hostport(text, 4334) == expected


@pytest.mark.parametrize("text", ["[::1", "host:notaport", "host:70000"])
def test_parse_hostport_errors(text):
    with pytest.raises(ConfigError):
        parse_hostport(text, 1)


def test_manager_defaults_and_relative_state_dir(tmp_path: Path):
    path = tmp_path / "m.toml"
    path.write_text('state_dir = "state"\n')
    cfg = load(ManagerConfig, path)
    assert cfg.state_dir == tmp_path / "state"
    assert cfg.manager.listen == ["0.0.0.0:4334", "[::]:4334"]
    assert cfg.database_url.endswith(str(tmp_path / "state" / "manager.db"))


def test_environment_overrides_nested_keys(tmp_path: Path, monkeypatch):
    path = tmp_path / "a.toml"
    path.write_text('[[endpoints]]\naddress = "127.0.0.1:1"\n')
    monkeypatch.setenv("CALLHOME_KEEPALIVE__INTERVAL", "0.25")
    cfg = load(AgentConfig, path)
    assert cfg.keepalive.interval == 0.25


def test_errors_name_the_key(tmp_path: Path):
    path = tmp_path / "a.toml"
    path.write_text("endpoints = []\n[reconnect]\nmax_attempts = 0\n")
    with pytest.raises(ConfigError) as info:
        load(AgentConfig, path)
    assert "endpoints" in str(info.value) and "reconnect.max_attempts" in str(info.value)


def test_unknown_keys_and_bad_toml_are_errors(tmp_path: Path):
    path = tmp_path / "m.toml"
    path.write_text("nonsense = 1\n")
    with pytest.raises(ConfigError, match="nonsense"):
        load(ManagerConfig, path)
    path.write_text("[broken\n")
    with pytest.raises(ConfigError):
        load(ManagerConfig, path)
    with pytest.raises(ConfigError, match="cannot read"):
        load(ManagerConfig, tmp_path / "missing.toml")


def test_other_list_fields_take_lists_and_strings_stay_strings(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CALLHOME_MANAGER__LISTEN", "[::1]:4334,127.0.0.1:4334")
    monkeypatch.setenv("CALLHOME_MANAGER__TLS__CIPHERS", "ECDHE+AESGCM,ECDHE+CHACHA20")
    path = tmp_path / "m.toml"
    path.write_text("")
    cfg = load(ManagerConfig, path)
    assert cfg.manager.listen == ["[::1]:4334", "127.0.0.1:4334"]
    assert cfg.manager.tls.ciphers == "ECDHE+AESGCM,ECDHE+CHACHA20"


def test_a_list_field_takes_a_toml_array(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CALLHOME_MANAGER__LISTEN", '["[::1]:4334", "127.0.0.1:4334"]')
    path = tmp_path / "m.toml"
    path.write_text('[manager]\nlisten = ["0.0.0.0:1"]\n')
    assert load(ManagerConfig, path).manager.listen == ["[::1]:4334", "127.0.0.1:4334"]
