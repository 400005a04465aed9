"""The reasons a device gives for a failed call home: actionable, and never empty."""

from __future__ import annotations

import asyncssh
import pytest

from callhome.net.failures import dial_failure

KEY = "SHA256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


def why(exc: BaseException) -> str:
    return dial_failure(exc, where="mgr:4334", identities=[KEY], max_wait=30)


def test_a_manager_that_does_not_know_the_key_is_named_with_the_command_to_run() -> None:
    refused = asyncssh.HostKeyNotVerifiable("Host key is not trusted for host mgr")
    assert why(refused) == (
        f"the manager at mgr:4334 has not approved this device yet: its key is {KEY} "
        f"(run `callhome approve {KEY} --name NAME` on the manager)"
    )
    assert "not approved" in why(asyncssh.PermissionDenied("Permission denied"))
    assert KEY in why(asyncssh.ConnectionLost("Connection lost"))
    assert KEY in why(BrokenPipeError())


@pytest.mark.parametrize(
    "exc, text",
    [
        (TimeoutError(), "no call-home connection within 30s (reconnect.max_wait)"),
        (ConnectionRefusedError(111, "Connection refused"), "nothing listens at mgr:4334"),
        (OSError(), "OSError"),
        (ValueError("  "), "ValueError"),
        (OSError(101, "Network is unreachable"), "OSError: [Errno 101] Network is unreachable"),
    ],
)
def test_a_reason_is_never_empty(exc: BaseException, text: str) -> None:
    assert why(exc).startswith(text)


def test_a_tls_connection_closed_before_the_manager_spoke_names_both_identities() -> None:
    text = dial_failure(
        ConnectionResetError("the manager closed the connection before it spoke"),
        where="mgr:4335",
        identities=["SHA256:AB:CD", "x509-name:dev1"],
        max_wait=30,
    )
    assert "approve SHA256:AB:CD or x509-name:dev1 there" in text
