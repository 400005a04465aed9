"""ncclient drives our agent's candidate datastore, commit and confirmed commit (RFC 6241
sections 8.3 and 8.4) over call home: the agent dials, ncclient plays SSH and NETCONF client.

One listening socket (SO_REUSEADDR, port from the OS) takes every call of the agent, and each
test opens its own session with ``connect_ssh(sock=...)`` (ncclient's ``call_home`` binds a
fresh socket per call; see PEERS.md). The agent is persistent: when a session ends it calls
again, and the next accept takes that call, which is how a "second session" arrives.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from interop_helpers import KeyPair, make_manager_key
from lxml import etree

from harness import AgentProc

ncclient_manager = pytest.importorskip("ncclient.manager", reason="ncclient is not installed")
RPCError = pytest.importorskip("ncclient.operations").RPCError

pytestmark = pytest.mark.interop

BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
IF_NS = "urn:example:interfaces"
CAP = "urn:ietf:params:netconf:capability:"


def config(name: str, mtu: int) -> str:
    return (
        f'<config xmlns="{BASE_NS}"><interfaces xmlns="{IF_NS}">'
        f"<interface><name>{name}</name><mtu>{mtu}</mtu></interface></interfaces></config>"
    )


def mtu(nc: Any, name: str, source: str = "running") -> str | None:
    """The mtu of interface ``name`` in ``source``, None if there is no such interface."""
    reply = nc.get_config(source=source, filter=("subtree", f'<interfaces xmlns="{IF_NS}"/>'))
    root = etree.fromstring(reply.xml.encode())
    ns = {"nc": BASE_NS, "if": IF_NS}
    found: str | None = root.findtext(
        f"nc:data/if:interfaces/if:interface[if:name='{name}']/if:mtu", namespaces=ns
    )
    return found


def poll(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


class CallHomeListener:
    """Accepts the agent's calls; each ``session()`` is one ncclient session on one call."""

    def __init__(self, key: KeyPair) -> None:
        self.key = key
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(30)
        self.port: int = self.sock.getsockname()[1]

    def session(self) -> Any:
        conn, _ = self.sock.accept()
        conn.settimeout(None)
        return ncclient_manager.connect_ssh(
            sock=conn,
            host="127.0.0.1",
            port=self.port,
            username="netconf",
            key_filename=str(self.key.private),
            hostkey_verify=False,
            allow_agent=False,
            look_for_keys=False,
            timeout=30,
        )

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CallHomeListener]:
    base = tmp_path_factory.mktemp("ncclient-candidate")
    listener = CallHomeListener(make_manager_key(base / "manager"))
    agent = AgentProc(
        base / "agent", [f"127.0.0.1:{listener.port}"], [listener.key.public_line]
    ).start()
    try:
        yield listener
    finally:
        agent.stop()
        listener.close()


@pytest.fixture
def open_session(listener: CallHomeListener) -> Iterator[Callable[[], Any]]:
    """Opens ncclient sessions (one call of the agent each), closed at the end of the test."""
    opened: list[Any] = []

    def open_one() -> Any:
        nc = listener.session()
        opened.append(nc)
        return nc

    yield open_one
    for nc in opened:
        with contextlib.suppress(Exception):
            if nc.connected:
                nc.discard_changes()
                nc.close_session()


@pytest.fixture
def nc(open_session: Callable[[], Any]) -> Any:
    return open_session()


def test_the_agent_offers_candidate_confirmed_commit_validate_and_startup(nc: Any) -> None:
    caps = set(nc.server_capabilities)
    for cap in ("candidate:1.0", "confirmed-commit:1.1", "validate:1.1", "startup:1.0"):
        assert f"{CAP}{cap}" in caps


def test_lock_edit_validate_commit_then_read_back_from_running(nc: Any) -> None:
    assert nc.lock(target="candidate").ok
    try:
        assert nc.edit_config(target="candidate", config=config("c-eth0", 1400)).ok
        assert mtu(nc, "c-eth0", "candidate") == "1400"
        assert mtu(nc, "c-eth0") is None  # not in running before the commit
        assert nc.validate(source="candidate").ok
        assert nc.commit().ok
        assert mtu(nc, "c-eth0") == "1400"
    finally:
        assert nc.unlock(target="candidate").ok


def test_discard_changes_reverts_the_candidate_to_running(nc: Any) -> None:
    assert nc.edit_config(target="candidate", config=config("d-eth0", 1500)).ok
    assert nc.commit().ok
    assert nc.edit_config(target="candidate", config=config("d-eth0", 9000)).ok
    assert mtu(nc, "d-eth0", "candidate") == "9000"

    assert nc.discard_changes().ok

    assert mtu(nc, "d-eth0", "candidate") == "1500"
    assert mtu(nc, "d-eth0") == "1500"


def test_a_locked_candidate_refuses_another_session(open_session: Callable[[], Any]) -> None:
    first = open_session()
    assert first.lock(target="candidate").ok
    first.close_session()  # a session's locks end with it
    second = open_session()
    assert second.lock(target="candidate").ok
    assert second.unlock(target="candidate").ok


def test_confirmed_commit_then_confirming_commit_keeps_the_change(nc: Any) -> None:
    assert nc.edit_config(target="candidate", config=config("k-eth0", 1300)).ok
    assert nc.commit(confirmed=True, timeout="2").ok
    assert mtu(nc, "k-eth0") == "1300"  # in force at once

    assert nc.commit().ok  # the confirming commit

    time.sleep(3)  # past the first commit's confirm-timeout: nothing may roll back now
    assert mtu(nc, "k-eth0") == "1300"


def test_confirmed_commit_never_confirmed_rolls_back(nc: Any) -> None:
    assert nc.edit_config(target="candidate", config=config("r-eth0", 1200)).ok
    assert nc.commit(confirmed=True, timeout="1").ok
    assert mtu(nc, "r-eth0") == "1200"

    assert poll(lambda: mtu(nc, "r-eth0") is None), "running did not roll back"
    # discard-changes makes the candidate match the rolled-back running again
    assert nc.discard_changes().ok
    assert mtu(nc, "r-eth0", "candidate") is None


def test_a_confirmed_commit_ends_with_its_session(open_session: Callable[[], Any]) -> None:
    first = open_session()
    assert first.edit_config(target="candidate", config=config("s-eth0", 1100)).ok
    assert first.commit(confirmed=True, timeout="600").ok
    assert mtu(first, "s-eth0") == "1100"
    first.close_session()  # no persist: the commit is rolled back when its session ends

    second = open_session()
    assert poll(lambda: mtu(second, "s-eth0") is None), "running did not roll back"


def test_persist_then_cancel_commit_with_persist_id_from_a_second_session(
    open_session: Callable[[], Any],
) -> None:
    first = open_session()
    assert first.edit_config(target="candidate", config=config("p-eth0", 1000)).ok
    assert first.commit(confirmed=True, timeout="600", persist="token-p1").ok
    assert mtu(first, "p-eth0") == "1000"
    first.close_session()  # with persist, the confirmed commit outlives the session

    second = open_session()
    assert mtu(second, "p-eth0") == "1000"
    with pytest.raises(RPCError):  # persist was given: only persist-id may cancel it
        second.cancel_commit()
    with pytest.raises(RPCError):
        second.cancel_commit(persist_id="not-the-token")
    assert mtu(second, "p-eth0") == "1000"

    assert second.cancel_commit(persist_id="token-p1").ok

    assert mtu(second, "p-eth0") is None  # running is as before the confirmed commit


def test_persist_then_confirming_commit_with_persist_id_from_a_second_session(
    open_session: Callable[[], Any],
) -> None:
    first = open_session()
    assert first.edit_config(target="candidate", config=config("q-eth0", 1001)).ok
    assert first.commit(confirmed=True, timeout="2", persist="token-q1").ok
    first.close_session()

    second = open_session()
    assert second.commit(persist_id="token-q1").ok
    time.sleep(3)  # past the confirm-timeout: confirmed, so it stays
    assert mtu(second, "q-eth0") == "1001"


def test_copy_config_candidate_to_running_and_running_to_startup(nc: Any) -> None:
    assert nc.edit_config(target="candidate", config=config("y-eth0", 1450)).ok
    assert nc.copy_config(source="candidate", target="running").ok
    assert mtu(nc, "y-eth0") == "1450"

    assert nc.copy_config(source="running", target="startup").ok
    assert mtu(nc, "y-eth0", "startup") == "1450"
