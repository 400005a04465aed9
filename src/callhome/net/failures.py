"""Why a call home failed, in words an operator can act on; never an empty reason.

A manager turns away a device it has not approved during the SSH key exchange: over
reverse-ssh it disconnects with "host key not verifiable" (RFC 4253's code 9), over turn it
refuses the device's user key. The device can tell, and says which key to approve where.
A manager that closes the connection during the handshake without a word may have done so
for the same reason (over reverse-tls it closes after the TLS handshake, before it says
anything): the device says that it may have, with the identities to approve.
"""

from __future__ import annotations

import asyncssh

__all__ = ["dial_failure", "not_approved"]


def not_approved(where: str, identity: str) -> str:
    return (
        f"the manager at {where} has not approved this device yet: its key is {identity} "
        f"(run `callhome approve {identity} --name NAME` on the manager)"
    )


def dial_failure(exc: BaseException, *, where: str, identities: list[str], max_wait: float) -> str:
    """The reason a dial to ``where`` failed with ``exc``. ``identities``: what the manager
    may know the device by (its key's fingerprint; for reverse-tls its certificate's, and
    the name a cert-to-name rule may map it to)."""
    first = identities[0]
    closed = (
        f"the manager at {where} closed the connection during the handshake: if it has not "
        f"approved this device yet, approve {' or '.join(identities)} there"
    )
    if isinstance(exc, asyncssh.DisconnectError):
        if exc.code == asyncssh.DISC_HOST_KEY_NOT_VERIFIABLE:
            return not_approved(where, first)
        if isinstance(exc, asyncssh.PermissionDenied):
            return f"{not_approved(where, first)}, or it refused this device"
        if isinstance(exc, asyncssh.ConnectionLost):
            return closed
    if isinstance(exc, TimeoutError):
        return f"no call-home connection within {max_wait:g}s (reconnect.max_wait)"
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing listens at {where} (connection refused)"
    if isinstance(exc, BrokenPipeError | ConnectionResetError):
        return closed
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
