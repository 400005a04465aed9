"""``[algorithms]`` as asyncssh options: what each end offers, the host key algorithms a
server offers, the warning for legacy algorithms; and a real asyncssh handshake."""

from __future__ import annotations

import asyncio
import logging

import asyncssh
import pytest
from net_testkit import KEEP, EchoHandler, Recorder

from callhome.config import SshAlgorithms
from callhome.errors import ConfigError
from callhome.net.keys import identity_of
from callhome.net.reverse_ssh import (
    DeviceSshSettings,
    ManagerSshSettings,
    ReverseSshListener,
    dial_reverse_ssh,
)
from callhome.net.ssh_algorithms import client_algorithm_options
from callhome.net.turn import DeviceTurnSettings, ManagerTurnSettings, TurnListener


def device(algorithms: SshAlgorithms, host_key: asyncssh.SSHKey | None = None) -> DeviceSshSettings:
    return DeviceSshSettings(
        host_key=host_key or asyncssh.generate_private_key("ssh-ed25519"),
        manager_keys=[asyncssh.generate_private_key("ssh-ed25519")],
        handler=EchoHandler(),  # type: ignore[arg-type]
        auth_timeout=5,
        keepalive=KEEP,
        algorithms=algorithms,
    )


def test_the_client_accepts_only_host_keys_that_sign_with_the_signatures() -> None:
    algorithms = SshAlgorithms()
    options = client_algorithm_options(algorithms)
    assert options["server_host_key_algs"] == algorithms.signatures
    assert options["mac_algs"] == algorithms.macs
    asyncssh.SSHClientConnectionOptions(config=None, **options)  # asyncssh takes them all


def test_an_rsa_host_key_offers_sha2_only_unless_ssh_rsa_is_listed() -> None:
    rsa = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    offered = list(device(SshAlgorithms(), rsa).options.server_host_keys)
    assert offered == [b"rsa-sha2-256", b"rsa-sha2-512"]
    with_sha1 = SshAlgorithms(signatures=[*SshAlgorithms().signatures, "ssh-rsa"])
    assert b"ssh-rsa" in device(with_sha1, rsa).options.server_host_keys


def test_a_host_key_no_listed_signature_allows_is_a_config_error() -> None:
    ecdsa = asyncssh.generate_private_key("ecdsa-sha2-nistp256")
    with pytest.raises(ConfigError, match="no host key algorithm left"):
        device(SshAlgorithms(signatures=["ssh-ed25519"]), ecdsa)
    ed25519 = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(ConfigError, match="no host key algorithm left"):
        TurnListener(
            Recorder(set()),
            ManagerTurnSettings(ed25519, SshAlgorithms(signatures=["rsa-sha2-256"])),
        )


def test_legacy_algorithms_are_logged_at_setup_and_defaults_are_quiet(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="callhome.net.ssh_algorithms")
    key = asyncssh.generate_private_key("ssh-ed25519")
    device(SshAlgorithms())
    ReverseSshListener(Recorder(), ManagerSshSettings("m", {"": key}, SshAlgorithms()))
    assert caplog.records == []

    legacy = SshAlgorithms(
        ciphers=["aes128-ctr", "aes128-cbc"], macs=["hmac-sha2-256", "hmac-sha1"]
    )
    device(legacy)
    DeviceTurnSettings(key, [key], EchoHandler(), 5, KEEP, legacy)  # type: ignore[arg-type]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("reverse-ssh device: [algorithms] allows legacy algorithms")
    assert messages[1].startswith("turn device:")
    assert "ciphers aes128-cbc (CBC), macs hmac-sha1 (SHA-1)" in messages[0]


async def test_ends_with_only_a_ctr_cipher_in_common_negotiate_it_and_serve() -> None:
    """A manager restricted to aes256-ctr and hmac-sha2-512-etm against a device on the
    defaults: the session comes up on those, and NETCONF runs over it."""
    manager_key = asyncssh.generate_private_key("ssh-ed25519")
    recorder = Recorder()
    restricted = SshAlgorithms(ciphers=["aes256-ctr"], macs=["hmac-sha2-512-etm@openssh.com"])
    listener = ReverseSshListener(
        recorder, ManagerSshSettings("mgr", {"": manager_key}, restricted)
    )
    port = await listener.listen("127.0.0.1", 0)
    dev = DeviceSshSettings(
        host_key=asyncssh.generate_private_key("ssh-ed25519"),
        manager_keys=[manager_key],
        handler=EchoHandler(),  # type: ignore[arg-type]
        auth_timeout=5,
        keepalive=KEEP,
        algorithms=SshAlgorithms(),
    )
    recorder.allowed.add(identity_of(dev.host_key).fingerprint)
    conn = await dial_reverse_ssh("127.0.0.1", port, dev)
    try:
        session = await asyncio.wait_for(recorder.ready.get(), 10)
        assert conn.get_extra_info("recv_cipher") == "aes256-ctr"
        assert conn.get_extra_info("recv_mac") == "hmac-sha2-512-etm@openssh.com"
        reply = await session.netconf.get_config()
        assert reply.data is not None and reply.data[0].text == "v"
    finally:
        conn.close()
        await listener.close()
