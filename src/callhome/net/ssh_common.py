"""What the SSH orientations (reverse-ssh and turn) share on the manager's side: a
channel whose bytes go to a NetconfClient."""

from __future__ import annotations

import asyncssh

from callhome.net.netconf import ClientFeed

__all__ = ["SSH_ERRORS", "FeedingChannel"]

SSH_ERRORS = (OSError, asyncssh.Error)
"""What writing to an SSH channel the device has closed raises."""


class FeedingChannel:
    """Mixin for an SSH channel session whose bytes go to a NetconfClient (``self.feed``)."""

    feed: ClientFeed
    eof_reason = "device closed the netconf channel"

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if datatype is None:
            self.feed.data(data)

    def eof_received(self) -> bool:
        self.feed.ended(self.eof_reason)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.feed.ended(f"channel lost: {exc}" if exc else "channel closed")
