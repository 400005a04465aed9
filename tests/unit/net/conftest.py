"""Fixtures of the adapter tests (the fakes they use live in net_testkit)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncssh
import pytest
from net_testkit import ALGS, Pki, Recorder, listener_limits, make_pki

from callhome.net.reverse_ssh import ManagerSshSettings, ReverseSshListener


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory)


@pytest.fixture
async def ssh_manager() -> AsyncIterator[tuple[ReverseSshListener, Recorder, int, asyncssh.SSHKey]]:
    """A reverse-ssh listener on 127.0.0.1 admitting what its Recorder allows."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    recorder = Recorder()
    settings = ManagerSshSettings(
        "mgr", {"": key}, ALGS, listener_limits(handshake_timeout=3, rpc_timeout=2)
    )
    listener = ReverseSshListener(recorder, settings)
    port = await listener.listen("127.0.0.1", 0)
    yield listener, recorder, port, key
    await listener.close()
