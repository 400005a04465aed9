"""``[algorithms]``: the defaults, names checked against asyncssh at load, legacy ones
found, and lists given through the environment (comma-separated or a TOML array)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callhome.config import AgentConfig, ManagerConfig, SshAlgorithms, load
from callhome.config.common import ALGORITHM_KINDS, legacy_reason, supported_algorithms
from callhome.errors import ConfigError

AGENT_TOML = '[[endpoints]]\naddress = "127.0.0.1:1"\n'


@pytest.fixture
def agent_file(tmp_path: Path) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(AGENT_TOML)
    return path


@pytest.fixture
def manager_file(tmp_path: Path) -> Path:
    path = tmp_path / "manager.toml"
    path.write_text("")
    return path


def test_defaults_are_known_to_asyncssh_and_none_is_legacy() -> None:
    defaults = SshAlgorithms()
    for kind in ALGORITHM_KINDS:
        names = getattr(defaults, kind)
        assert names, kind
        assert set(names) <= set(supported_algorithms(kind)), kind
    assert defaults.legacy() == []


def test_defaults_offer_what_ctr_only_stacks_need_fastest_first() -> None:
    defaults = SshAlgorithms()
    assert defaults.ciphers[:2] == ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
    assert {"aes128-ctr", "aes192-ctr", "aes256-ctr"} <= set(defaults.ciphers)
    sha2 = ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"]
    sha2 += ["hmac-sha2-256", "hmac-sha2-512"]
    assert [m for m in defaults.macs if m.startswith("hmac-")] == sha2
    assert defaults.kex[:2] == ["curve25519-sha256", "curve25519-sha256@libssh.org"]
    assert "mlkem768x25519-sha256" not in defaults.kex  # the operator's choice (CPU)
    assert "ssh-rsa" not in defaults.signatures and "ssh-dss" not in defaults.signatures
    assert {"rsa-sha2-256", "rsa-sha2-512", "ssh-ed25519"} <= set(defaults.signatures)


@pytest.mark.parametrize(
    ("kind", "name", "reason"),
    [
        ("ciphers", "aes128-cbc", "CBC"),
        ("ciphers", "3des-cbc", "CBC"),
        ("ciphers", "seed-cbc@ssh.com", "CBC"),
        ("ciphers", "arcfour256", "RC4"),
        ("macs", "hmac-sha1", "SHA-1"),
        ("macs", "hmac-sha1-etm@openssh.com", "SHA-1"),
        ("macs", "hmac-md5", "MD5"),
        ("kex", "diffie-hellman-group14-sha1", "SHA-1"),
        ("kex", "diffie-hellman-group-exchange-sha1", "SHA-1"),
        ("signatures", "ssh-rsa", "SHA-1"),
        ("signatures", "ssh-dss", "DSA"),
        ("signatures", "rsa-sha2-256", None),
        ("signatures", "ssh-rsa-sha256@ssh.com", None),
        ("ciphers", "aes256-ctr", None),
        ("macs", "hmac-sha2-256", None),
        ("kex", "diffie-hellman-group14-sha256", None),
    ],
)
def test_legacy_reason(kind, name, reason) -> None:
    assert legacy_reason(kind, name) == reason


def test_listing_a_legacy_algorithm_is_allowed_and_reported() -> None:
    algorithms = SshAlgorithms(
        ciphers=["aes128-gcm@openssh.com", "aes128-cbc"], signatures=["ssh-ed25519", "ssh-rsa"]
    )
    assert algorithms.legacy() == [
        ("ciphers", "aes128-cbc", "CBC"),
        ("signatures", "ssh-rsa", "SHA-1"),
    ]


def test_an_unknown_name_stops_the_load_naming_key_and_name(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(AGENT_TOML + '[algorithms]\nciphers = ["aes128-ctr", "aes128-ctrr"]\n')
    with pytest.raises(ConfigError) as info:
        load(AgentConfig, path)
    text = str(info.value)
    assert "algorithms.ciphers" in text and "'aes128-ctrr'" in text
    assert "did you mean 'aes128-ctr'" in text


def test_an_unknown_name_in_the_manager_section_stops_it(manager_file: Path) -> None:
    manager_file.write_text('[manager.algorithms]\nmacs = ["hmac-sha3-256"]\n')
    with pytest.raises(ConfigError, match=r"manager\.algorithms\.macs: .*unknown MAC"):
        load(ManagerConfig, manager_file)


def test_a_signature_name_must_be_a_signature_not_a_certificate() -> None:
    with pytest.raises(ValueError, match="unknown signature algorithm"):
        SshAlgorithms(signatures=["ssh-ed25519-cert-v01@openssh.com"])


def test_an_empty_list_is_refused_but_macs_may_be_empty() -> None:
    with pytest.raises(ValueError, match="at least one key exchange"):
        SshAlgorithms(kex=[])
    with pytest.raises(ValueError, match="at least one cipher"):
        SshAlgorithms(ciphers=[])
    assert SshAlgorithms(ciphers=["aes128-gcm@openssh.com"], macs=[]).macs == []


@pytest.mark.parametrize(
    "value",
    [
        "aes256-ctr,aes128-ctr",
        " aes256-ctr , aes128-ctr ,",
        '["aes256-ctr", "aes128-ctr"]',
        "['aes256-ctr','aes128-ctr']",
    ],
)
def test_agent_ciphers_from_the_environment(agent_file: Path, monkeypatch, value: str) -> None:
    monkeypatch.setenv("CALLHOME_ALGORITHMS__CIPHERS", value)
    cfg = load(AgentConfig, agent_file)
    assert cfg.algorithms.ciphers == ["aes256-ctr", "aes128-ctr"]
    assert cfg.algorithms.macs == SshAlgorithms().macs  # the others keep their defaults


@pytest.mark.parametrize(
    "value", ["hmac-sha2-512,hmac-sha2-256", '["hmac-sha2-512","hmac-sha2-256"]']
)
def test_manager_macs_from_the_environment(manager_file: Path, monkeypatch, value: str) -> None:
    monkeypatch.setenv("CALLHOME_MANAGER__ALGORITHMS__MACS", value)
    cfg = load(ManagerConfig, manager_file)
    assert cfg.manager.algorithms.macs == ["hmac-sha2-512", "hmac-sha2-256"]


def test_the_environment_wins_over_the_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "manager.toml"
    path.write_text('[manager.algorithms]\nkex = ["ecdh-sha2-nistp256"]\n')
    monkeypatch.setenv(
        "CALLHOME_MANAGER__ALGORITHMS__KEX", "mlkem768x25519-sha256,curve25519-sha256"
    )
    cfg = load(ManagerConfig, path)
    assert cfg.manager.algorithms.kex == ["mlkem768x25519-sha256", "curve25519-sha256"]


def test_an_unknown_name_from_the_environment_is_a_config_error(
    agent_file: Path, monkeypatch
) -> None:
    monkeypatch.setenv("CALLHOME_ALGORITHMS__CIPHERS", "aes128-ctr,blowfish-ctr")
    with pytest.raises(ConfigError, match="'blowfish-ctr'"):
        load(AgentConfig, agent_file)
