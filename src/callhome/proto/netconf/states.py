"""The NETCONF session state machines: one transition table per side.

A core looks up ``(state, input)`` in its table; a missing entry is a protocol violation,
by us (:data:`LOCAL_INPUTS`, raising :class:`LocalProtocolError`) or by the peer (raising
:class:`RemoteProtocolError`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from callhome.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "CLIENT_TRANSITIONS",
    "LOCAL_INPUTS",
    "SERVER_TRANSITIONS",
    "Input",
    "SessionState",
    "next_state",
]


class SessionState(enum.Enum):
    """Where a NETCONF session stands, seen from one side."""

    START = "start"
    """No hello sent or received yet."""
    HELLO_SENT = "hello-sent"
    """Our hello is out; the peer's has not come."""
    HELLO_RECEIVED = "hello-received"
    """The peer's hello came; ours is not out yet."""
    ESTABLISHED = "established"
    """Both hellos exchanged: rpcs, replies and notifications flow."""
    CLOSING = "closing"
    """A ``<close-session>`` is under way (client: sent; server: received, not answered)."""
    CLOSED = "closed"
    """``<close-session>`` was answered with ok: nothing more is sent."""
    ENDED = "ended"
    """The peer closed the connection."""
    BROKEN = "broken"
    """The peer broke the protocol; nothing more can be trusted."""


class Input(enum.Enum):
    """What happens to a session: something we send or something we receive."""

    SEND_HELLO = "send hello"
    RECV_HELLO = "receive hello"
    # client
    SEND_RPC = "send an rpc"
    SEND_CLOSE = "send close-session"
    RECV_REPLY = "receive an rpc-reply"
    RECV_CLOSE_OK = "receive ok to close-session"
    RECV_CLOSE_ERROR = "receive an error to close-session"
    RECV_NOTIFICATION = "receive a notification"
    # server
    RECV_RPC = "receive an rpc"
    RECV_CLOSE = "receive close-session"
    SEND_REPLY = "send an rpc-reply"
    SEND_CLOSE_OK = "send ok to close-session"
    SEND_CLOSE_ERROR = "send an error to close-session"
    SEND_NOTIFICATION = "send a notification"
    # both
    EOF = "see the connection end"
    PEER_ERROR = "see the peer break the protocol"


LOCAL_INPUTS = frozenset(
    {
        Input.SEND_HELLO,
        Input.SEND_RPC,
        Input.SEND_CLOSE,
        Input.SEND_REPLY,
        Input.SEND_CLOSE_OK,
        Input.SEND_CLOSE_ERROR,
        Input.SEND_NOTIFICATION,
    }
)
"""Inputs that are our own doing: a missing transition for one is our mistake."""

S = SessionState
_LIVE = (S.START, S.HELLO_SENT, S.HELLO_RECEIVED, S.ESTABLISHED, S.CLOSING, S.CLOSED)

_HELLO_EXCHANGE: dict[tuple[SessionState, Input], SessionState] = {
    (S.START, Input.SEND_HELLO): S.HELLO_SENT,
    (S.START, Input.RECV_HELLO): S.HELLO_RECEIVED,
    (S.HELLO_SENT, Input.RECV_HELLO): S.ESTABLISHED,
    (S.HELLO_RECEIVED, Input.SEND_HELLO): S.ESTABLISHED,
}
_ENDINGS: dict[tuple[SessionState, Input], SessionState] = {
    **{(state, Input.EOF): S.ENDED for state in _LIVE},
    **{(state, Input.PEER_ERROR): S.BROKEN for state in _LIVE},
}

CLIENT_TRANSITIONS: Mapping[tuple[SessionState, Input], SessionState] = MappingProxyType(
    {
        **_HELLO_EXCHANGE,
        (S.ESTABLISHED, Input.SEND_RPC): S.ESTABLISHED,
        (S.ESTABLISHED, Input.SEND_CLOSE): S.CLOSING,
        (S.ESTABLISHED, Input.RECV_REPLY): S.ESTABLISHED,
        (S.ESTABLISHED, Input.RECV_NOTIFICATION): S.ESTABLISHED,
        (S.CLOSING, Input.RECV_REPLY): S.CLOSING,
        (S.CLOSING, Input.RECV_NOTIFICATION): S.CLOSING,
        (S.CLOSING, Input.RECV_CLOSE_OK): S.CLOSED,
        (S.CLOSING, Input.RECV_CLOSE_ERROR): S.ESTABLISHED,
        (S.CLOSED, Input.RECV_REPLY): S.CLOSED,
        (S.CLOSED, Input.RECV_NOTIFICATION): S.CLOSED,
        **_ENDINGS,
    }
)
"""The client (manager) side: it sends rpcs and receives replies and notifications."""

SERVER_TRANSITIONS: Mapping[tuple[SessionState, Input], SessionState] = MappingProxyType(
    {
        **_HELLO_EXCHANGE,
        (S.ESTABLISHED, Input.RECV_RPC): S.ESTABLISHED,
        (S.ESTABLISHED, Input.RECV_CLOSE): S.CLOSING,
        (S.ESTABLISHED, Input.SEND_REPLY): S.ESTABLISHED,
        (S.ESTABLISHED, Input.SEND_NOTIFICATION): S.ESTABLISHED,
        # RFC 6241 section 7.8: requests after <close-session> are ignored.
        (S.CLOSING, Input.RECV_RPC): S.CLOSING,
        (S.CLOSING, Input.RECV_CLOSE): S.CLOSING,
        (S.CLOSING, Input.SEND_REPLY): S.CLOSING,
        (S.CLOSING, Input.SEND_NOTIFICATION): S.CLOSING,
        (S.CLOSING, Input.SEND_CLOSE_OK): S.CLOSED,
        (S.CLOSING, Input.SEND_CLOSE_ERROR): S.ESTABLISHED,
        (S.CLOSED, Input.RECV_RPC): S.CLOSED,
        (S.CLOSED, Input.RECV_CLOSE): S.CLOSED,
        **_ENDINGS,
    }
)
"""The server (device) side: it receives rpcs and sends replies and notifications."""

del S


def next_state(
    table: Mapping[tuple[SessionState, Input], SessionState],
    state: SessionState,
    event: Input,
) -> SessionState:
    """The state after ``event`` in ``state``, or the protocol error it would be."""
    try:
        return table[(state, event)]
    except KeyError:
        if event in LOCAL_INPUTS:
            raise LocalProtocolError(f"cannot {event.value} in state {state.value}") from None
        what = event.value.removeprefix("receive ")
        raise RemoteProtocolError(f"peer sent {what} in state {state.value}") from None
