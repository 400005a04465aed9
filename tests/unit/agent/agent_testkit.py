"""Helpers shared by the agent's tests: a fake clock and timers, NETCONF sessions in memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from lxml import etree

from callhome.agent.datastore.core import NETCONF_BASE_NS, Datastore
from callhome.agent.netconf_service import NetconfService
from callhome.errors import RpcError, RpcErrorInfo

NC = NETCONF_BASE_NS
T = "urn:example:t"
WD = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"


@dataclass
class _Timer:
    due: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class FakeTime:
    """A clock that moves only when told, and timers that go off when it passes them."""

    now: float = 1000.0
    timers: list[_Timer] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def schedule(self, delay: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            due = [t for t in self.timers if not t.cancelled and t.due <= end]
            if not due:
                break
            timer = min(due, key=lambda t: t.due)
            self.now = max(self.now, timer.due)
            timer.cancelled = True
            timer.callback()
        self.now = end

    @property
    def armed(self) -> list[float]:
        """Due times of the timers not yet gone off or cancelled."""
        return sorted(t.due for t in self.timers if not t.cancelled)


def op(body: str) -> etree._Element:
    """The operation element of ``<rpc>`` from its XML (in the base namespace by default)."""
    rpc = etree.fromstring(f'<rpc xmlns="{NC}" xmlns:nc="{NC}" message-id="1">{body}</rpc>')
    return rpc[0]


def config(body: str) -> etree._Element:
    return etree.fromstring(f'<config xmlns="{NC}" xmlns:nc="{NC}">{body}</config>')


class Killed:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


class Session:
    """One NETCONF session of a service, for tests: ``s.ok(xml)``, ``s.data(xml)``,
    ``s.error(xml)``."""

    def __init__(self, service: NetconfService) -> None:
        self.service = service
        self.killed = Killed()
        self.id = service.open_session(self.killed)

    def ok(self, body: str) -> None:
        assert self.service.handle(self.id, op(body)) is None

    def data(self, body: str) -> etree._Element:
        result = self.service.handle(self.id, op(body))
        assert result is not None
        return result

    def errors(self, body: str) -> list[RpcErrorInfo]:
        with pytest.raises(RpcError) as info:
            self.service.handle(self.id, op(body))
        return info.value.errors

    def error(self, body: str) -> RpcErrorInfo:
        return self.errors(body)[0]

    def close(self) -> None:
        """The transport ended (e.g. the call-home connection dropped)."""
        self.service.close_session(self.id)


def get_config(source: str, extra: str = "") -> str:
    return f"<get-config><source><{source}/></source>{extra}</get-config>"


def edit(target: str, body: str, options: str = "") -> str:
    return (
        f"<edit-config><target><{target}/></target>{options}<config>{body}</config></edit-config>"
    )


def copy_config(target: str, source: str) -> str:
    src = source if source.startswith("<") else f"<{source}/>"
    return f"<copy-config><target><{target}/></target><source>{src}</source></copy-config>"


def text(data: etree._Element) -> str:
    """Canonical XML of a reply's ``<data>``."""
    return etree.tostring(data, method="c14n").decode()


def data(body: str) -> str:
    """Canonical XML of a ``<data>`` element holding ``body``."""
    return text(etree.fromstring(f'<data xmlns="{NC}">{body}</data>'))


def top(inner: str) -> str:
    return f'<top xmlns="{T}">{inner}</top>'


def new_service(fake: FakeTime | None = None, **kwargs: Any) -> NetconfService:
    """A service over an in-memory datastore where ``top`` is a container."""
    kwargs.setdefault("list_keys", {f"{{{T}}}top": ()})
    if fake is not None:
        kwargs.update(clock=fake.clock, schedule=fake.schedule)
    return NetconfService(Datastore(**kwargs))
