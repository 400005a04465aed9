"""``callhome schedule``: set a device's call-home connection type, on any standard server.

A job of kind ``schedule`` (deferred while the device is away, as every job) carries the
connection type wanted and, optionally, the name of the device's call-home client to change.
When it runs:

1. The device must implement ietf-netconf-server (hello or YANG library,
   ``callhome.manager.modules``) at a revision whose call-home structure is known
   (``callhome.proto.call_home.SUPPORTED_FROM`` and later); otherwise the job fails saying so
   and nothing is sent. An anchor is checked against that revision too.
2. One ``<get-config>`` reads the device's ``netconf-server/call-home``.
3. The ``netconf-client`` entry that is this connection is picked: the one named in the job,
   or the one whose ssh (reverse-ssh) or tls (reverse-tls) endpoint is the address and port
   the device dialled (the manager's listener, or one of ``[manager] public_addresses``).
   None or several: the job fails naming the entries found.
4. One ``<edit-config>`` replaces that entry's ``connection-type`` and nothing else: of
   running where the device has ``:writable-running``, else of candidate, under its lock,
   then committed (``:candidate``).

Crash rules: the read changes nothing, so a session lost during it puts the job back in the
queue; once the edit is sent, the rules of any write hold (outcome-unknown).

:func:`schedule_payload` checks what an operator asked (whole minutes, whole seconds, an
anchor on a whole minute) before anything is queued.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from lxml import etree

from callhome.errors import ConfigError
from callhome.manager.jobs import reply_result
from callhome.net.session import DeviceSession
from callhome.proto.call_home import (
    FILTER,
    SUPPORTED_FROM,
    NoClientMatch,
    anchor_allowed,
    connection_type_edit,
    pick_client,
    read_clients,
    revision_supported,
)
from callhome.proto.netconf import RpcReply, operations
from callhome.proto.netconf.capabilities import ModuleSet
from callhome.proto.schedule import (
    DEFAULT_IDLE_TIMEOUT,
    ConnectionType,
    Periodic,
    Persistent,
    parse_date_and_time,
)

__all__ = [
    "KIND",
    "MODULE",
    "connection_type_of",
    "run_schedule_job",
    "schedule_payload",
]

KIND: Final = "schedule"
"""The job kind."""
MODULE: Final = "ietf-netconf-server"
_MAX_UINT16: Final = 65535
_CAP: Final = "urn:ietf:params:netconf:capability:"
WRITABLE_RUNNING: Final = f"{_CAP}writable-running:1.0"
CANDIDATE: Final = f"{_CAP}candidate:1.0"

Send = Callable[[etree._Element, bool], Awaitable[RpcReply]]
"""Sends one operation on the job's session: (operation, whether it may change the device)."""
Outcome = tuple[bool, dict[str, Any]]


def schedule_payload(
    *,
    periodic: bool,
    period: float | None = None,
    anchor: str | None = None,
    idle_timeout: float | None = None,
    client: str | None = None,
) -> dict[str, Any]:
    """The payload of a schedule job, checked against the model's types (ConfigError):
    ``period`` in seconds, a whole number of minutes from 1 to 65535; ``idle_timeout`` whole
    seconds from 0 to 65535; ``anchor`` a date-and-time on a whole minute."""
    if not periodic:
        if period is not None or anchor is not None or idle_timeout is not None:
            raise ConfigError("a persistent connection takes no period, anchor or idle-timeout")
        return {"connection": "persistent", "client": client}
    if period is None:
        period = 3600.0
    minutes = period / 60
    if not (period == period and minutes == int(minutes) and 1 <= minutes <= _MAX_UINT16):
        raise ConfigError(
            f"the period is a whole number of minutes (1 to {_MAX_UINT16}, the model's unit), "
            f"not {period:g}s"
        )
    if idle_timeout is not None and not (
        idle_timeout == int(idle_timeout) and 0 <= idle_timeout <= _MAX_UINT16
    ):
        raise ConfigError(
            f"idle-timeout is a whole number of seconds (0 to {_MAX_UINT16}), not {idle_timeout:g}"
        )
    payload: dict[str, Any] = {
        "connection": "periodic",
        "period_minutes": int(minutes),
        "idle_timeout": None if idle_timeout is None else int(idle_timeout),
        "anchor": None,
        "client": client,
    }
    if anchor is not None:
        problem = anchor_allowed(None, anchor)
        if problem is not None:
            raise ConfigError(problem)
        payload["anchor"] = anchor
    return payload


def connection_type_of(payload: dict[str, Any]) -> ConnectionType:
    """The connection type a schedule job's payload sets."""
    if payload.get("connection") != "periodic":
        return Persistent()
    anchor = payload.get("anchor")
    idle = payload.get("idle_timeout")
    return Periodic(
        period=float(payload["period_minutes"]) * 60,
        anchor=None if anchor is None else parse_date_and_time(str(anchor)),
        idle_timeout=DEFAULT_IDLE_TIMEOUT if idle is None else float(idle),
    )


def _failed(message: str, **more: Any) -> Outcome:
    return False, {"error": message, **more}


async def run_schedule_job(
    session: DeviceSession,
    payload: dict[str, Any],
    modules: ModuleSet,
    dialled: list[tuple[str, int]],
    send: Send,
) -> Outcome:
    """Carry out a schedule job on ``session`` (see the module); (succeeded, result)."""
    server = modules.implemented(MODULE)
    if server is None:
        return _failed(
            f"the device does not implement {MODULE} (no capability in its hello and none "
            "in its YANG library): it keeps no call-home schedule that a manager can set"
        )
    if not revision_supported(server.revision):
        return _failed(
            f"the device implements {MODULE} revision {server.revision}, whose call-home "
            f"structure is not supported (revisions from {SUPPORTED_FROM} are)"
        )
    anchor = payload.get("anchor")
    if anchor is not None:
        problem = anchor_allowed(server.revision, str(anchor))
        if problem is not None:
            return _failed(problem)
    reply = await send(operations.op_get_config("running", FILTER), False)
    if not reply.ok or reply.data is None:
        return False, {"step": "read call-home", **reply_result(reply)}
    clients = read_clients(reply.data)
    try:
        client = pick_client(
            clients,
            transport=session.orientation.model_transport,
            dialled=dialled,
            name=payload.get("client"),
        )
    except NoClientMatch as exc:
        return _failed(str(exc), clients=[c.name for c in clients])
    config = connection_type_edit(
        client.name,
        connection_type_of(payload),
        idle_timeout=payload.get("idle_timeout") is not None,
    )
    done = {"client": client.name, "revision": server.revision}
    caps = set(session.capabilities)
    if WRITABLE_RUNNING in caps:
        reply = await send(operations.op_edit_config("running", config), True)
        return reply.ok, {**done, **reply_result(reply)}
    if CANDIDATE not in caps:
        return _failed("the device has neither :writable-running nor :candidate", **done)
    return await _through_candidate(config, send, done)


async def _through_candidate(config: etree._Element, send: Send, done: dict[str, Any]) -> Outcome:
    """lock candidate, edit it, commit, unlock; on a refusal, discard and unlock."""
    steps: list[dict[str, Any]] = []
    lock = await send(operations.op_lock("candidate"), False)
    steps.append(reply_result(lock))
    if not lock.ok:
        return False, {**done, "step": "lock candidate", "steps": steps, **reply_result(lock)}
    for step, operation in (
        ("edit candidate", operations.op_edit_config("candidate", config)),
        ("commit", operations.op_commit()),
    ):
        reply = await send(operation, True)
        steps.append(reply_result(reply))
        if not reply.ok:
            for undo in (operations.op_discard_changes(), operations.op_unlock("candidate")):
                await send(undo, True)
            return False, {**done, "step": step, "steps": steps, **reply_result(reply)}
    steps.append(reply_result(await send(operations.op_unlock("candidate"), True)))
    return True, {**done, "steps": steps}
