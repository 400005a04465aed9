"""The manager's HTTP API: what the CLI (and any operator tool) talks to.

Every route but ``/v1/health`` needs ``Authorization: Bearer <token>``. Errors are mapped
to HTTP in one place (:mod:`callhome.api.errors`) and always carry
``{"error": kind, "message": ...}``; a refusal is an answer, never a logged traceback.
Malformed operator input (a body that does not validate, a filter or config that is not
well-formed XML, a datastore or identity that cannot be one) is HTTP 400 with the reason,
and nothing is queued.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from lxml import etree
from pydantic import BaseModel, Field

from callhome.api import errors
from callhome.api.auth import TokenSet
from callhome.api.terminal import terminal_router
from callhome.config import ApiToken
from callhome.errors import ConfigError, LocalProtocolError, ProtocolError
from callhome.identity import is_identity, parse_identity
from callhome.manager import snmp as snmp_jobs
from callhome.manager.mibs import MibNames
from callhome.manager.schedule import next_expected
from callhome.manager.schedule_job import KIND as SCHEDULE_JOB
from callhome.manager.schedule_job import schedule_payload
from callhome.manager.service import Manager
from callhome.proto.netconf import operations, xmltools
from callhome.storage import Device, Event
from callhome.storage.jobs import Job, JobState, JobSummary


def schedule_json(d: Device, now: float) -> dict[str, Any]:
    """The device's call-home schedule (None: unknown) and when it is next expected (None:
    not known), as in ``callhome.manager.schedule``."""
    schedule = d.schedule
    expected = next_expected(d, now)
    return {
        "schedule": None
        if schedule is None
        else {
            "kind": schedule.kind.value,
            "period": schedule.period,
            "anchor": schedule.anchor,
            "idle_timeout": schedule.idle_timeout,
            "since": schedule.since,
        },
        "next_expected": None
        if expected is None
        else {
            "state": expected.state.value,
            "time": expected.time,
            "overdue_by": expected.overdue_by,
        },
    }


def device_json(d: Device) -> dict[str, Any]:
    return {
        "name": d.name,
        "fingerprint": d.fingerprint,
        "key_type": d.key_type,
        "status": d.status.value,
        "since": d.status_since,
        "address": d.address,
        "first_seen": d.first_seen,
        "last_seen": d.last_seen,
        "orientation": d.orientation,
        "capabilities": list(d.capabilities),
        "credential": d.credential,
        **schedule_json(d, time.time()),
    }


def event_json(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "time": e.time,
        "kind": e.kind,
        "device": e.device,
        "fingerprint": e.fingerprint,
        "detail": dict(e.detail),
    }


class ApproveBody(BaseModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    credential: str | None = Field(
        None, description="Credential set to present to this device (default: the manager key)."
    )


class NetconfBody(BaseModel):
    """One NETCONF operation: either a named one with its parameters, or raw ``rpc`` XML."""

    operation: str = Field(
        description="get, get-config, edit-config, lock, unlock, kill-session, or rpc"
    )
    source: str = "running"
    target: str = "running"
    filter: str | None = None
    config: str | None = None
    default_operation: str | None = None
    error_option: str | None = None
    test_option: str | None = None
    session_id: int | None = None
    rpc: str | None = Field(None, description="The operation element as XML, for 'rpc'.")
    wait: float | None = Field(
        None,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds to wait for the result (default: wait if the "
        "device is connected, return at once if it is away).",
    )
    not_before: float | None = Field(
        None, allow_inf_nan=False, description="Unix time before which not to run."
    )
    expires: float | None = Field(
        None, allow_inf_nan=False, description="Unix time after which never to run."
    )


class SnmpVarBindBody(BaseModel):
    oid: str = Field(
        description="Numeric OID (1.3.6.1.2.1.1.4.0) or a name from a loaded MIB module "
        "(sysContact.0, SNMPv2-MIB::sysContact.0)."
    )
    type: str = Field(description="i u c C t s x o a (as snmpset), or the type spelled out.")
    value: str


class SnmpBody(BaseModel):
    """One SNMP operation, run as a job of kind ``snmp``."""

    operation: str = Field(description="get, getnext, walk, bulkwalk or set")
    oids: list[str] = Field(
        default_factory=list,
        description="OIDs, numeric or names from loaded MIB modules (not for set); the job "
        "stores them numeric.",
    )
    varbinds: list[SnmpVarBindBody] = Field(default_factory=list, description="For set.")
    max_repetitions: int = Field(25, ge=1, le=1000, description="For bulkwalk.")
    wait: float | None = Field(None, ge=0, le=3600, allow_inf_nan=False)
    not_before: float | None = Field(None, allow_inf_nan=False)
    expires: float | None = Field(None, allow_inf_nan=False)


class ScheduleBody(BaseModel):
    """A device's call-home connection type (``callhome.manager.schedule_job``)."""

    connection: Literal["persistent", "periodic"]
    period: float | None = Field(
        None,
        description="periodic: seconds between connections, a whole number of minutes "
        "(default 60 minutes)",
    )
    anchor: str | None = Field(
        None, description="periodic: a date-and-time on a whole minute the schedule runs through"
    )
    idle_timeout: float | None = Field(
        None, description="periodic: seconds without use before the device hangs up (0: never)"
    )
    client: str | None = Field(
        None,
        description="The device's call-home client (netconf-client entry) to change; "
        "default: the one whose endpoint is this manager",
    )
    wait: float | None = Field(None, ge=0, le=3600)
    not_before: float | None = None
    expires: float | None = None


class GroupBody(BaseModel):
    edits: list[str] = Field(min_length=1, description="Contents of <config>, one per edit.")
    wait: float | None = Field(None, ge=0, le=3600, allow_inf_nan=False)
    not_before: float | None = Field(None, allow_inf_nan=False)
    expires: float | None = Field(None, allow_inf_nan=False)


def job_json(j: Job, mibs: MibNames | None = None) -> dict[str, Any]:
    """A job as JSON; with ``mibs``, an SNMP job's result has names beside its OIDs."""
    result = dict(j.result)
    if mibs is not None and j.kind == "snmp":
        result = mibs.annotate(result)
    return {
        "id": j.id,
        "device": j.device,
        "kind": j.kind,
        "operation": j.payload.get("name", j.kind),
        "state": j.state.value,
        "actor": j.actor,
        "created": j.created,
        "not_before": j.not_before,
        "expires": j.expires,
        "updated": j.updated,
        "attempts": j.attempts,
        "read_only": j.read_only,
        "payload": dict(j.payload),
        "result": result,
    }


def job_summary_json(j: JobSummary) -> dict[str, Any]:
    """A job in a listing: what ``job_json`` has but its payload and result, and the size
    of its result (``result_size``: characters of its JSON, 0 while it has none)."""
    return {
        "id": j.id,
        "device": j.device,
        "kind": j.kind,
        "operation": j.operation,
        "state": j.state.value,
        "actor": j.actor,
        "created": j.created,
        "not_before": j.not_before,
        "expires": j.expires,
        "updated": j.updated,
        "attempts": j.attempts,
        "read_only": j.read_only,
        "result_size": j.result_size,
    }


DATASTORES = ("running", "candidate", "startup")
"""The configuration datastores an operation may name (RFC 6241); a name with ``:`` is a URL."""


def _datastore(name: str, what: str) -> str:
    if name in DATASTORES or ":" in name:
        return name
    raise ConfigError(
        f"{what} {name!r} is not a datastore: one of {', '.join(DATASTORES)}, or a URL (:url)"
    )


def _fragment(xml: str | None, what: str) -> None:
    """ConfigError naming ``what`` when ``xml`` is not a well-formed fragment of elements."""
    if xml is None:
        return
    try:
        xmltools.parse_fragment(xml)
    except LocalProtocolError as exc:
        raise ConfigError(f"bad {what}: {exc}") from None


def build_operation(body: NetconfBody) -> etree._Element:
    """The operation element asked for; ConfigError (HTTP 400) naming what is malformed."""
    _fragment(body.filter, "filter")
    _fragment(body.config, "config")
    try:
        return _build_operation(body)
    except LocalProtocolError as exc:
        raise ConfigError(f"{body.operation}: {exc}") from None


def _build_operation(body: NetconfBody) -> etree._Element:
    op = body.operation
    if op == "get":
        return operations.op_get(body.filter)
    if op == "get-config":
        return operations.op_get_config(_datastore(body.source, "source"), body.filter)
    if op == "edit-config":
        if not body.config:
            raise ConfigError("edit-config needs 'config' (the XML content of <config>)")
        return operations.op_edit_config(
            _datastore(body.target, "target"),
            body.config,
            default_operation=body.default_operation,
            error_option=body.error_option,
            test_option=body.test_option,
        )
    if op == "lock":
        return operations.op_lock(_datastore(body.target, "target"))
    if op == "unlock":
        return operations.op_unlock(_datastore(body.target, "target"))
    if op == "kill-session":
        if body.session_id is None:
            raise ConfigError("kill-session needs 'session_id'")
        return operations.op_kill_session(body.session_id)
    if op == "rpc":
        if not body.rpc:
            raise ConfigError("'rpc' needs the operation XML in 'rpc'")
        try:
            return xmltools.parse_xml(body.rpc.encode())
        except ProtocolError as exc:
            raise ConfigError(f"bad rpc XML: {exc}") from None
    raise ConfigError(f"unknown operation {op!r}")


_bearer = HTTPBearer(auto_error=False)


def _authorized(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The operator behind a request (``token:NAME``), or AuthError; reads need the ``read``
    right, everything else ``operate`` (see callhome.api.auth)."""
    tokens: TokenSet = request.app.state.tokens
    right = "read" if request.method in ("GET", "HEAD") else "operate"
    header = f"Bearer {creds.credentials}" if creds is not None else None
    return tokens.authorize(header, right).actor


Actor = Annotated[str, Depends(_authorized)]


def create_app(manager: Manager, token: str, tokens: Sequence[ApiToken] = ()) -> FastAPI:
    app = FastAPI(title="callhome manager", version="1")
    app.state.tokens = TokenSet(token, tokens)
    errors.install(app)
    app.include_router(terminal_router(manager))

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "ports": manager.ports, "online": manager.online}

    @app.get("/v1/devices")
    async def devices(who: Actor) -> list[dict[str, Any]]:
        return [device_json(d) for d in await manager.list_devices()]

    @app.get("/v1/devices/{name:path}")
    async def device(name: str, who: Actor) -> dict[str, Any]:
        return device_json(manager.resolve(name))

    @app.post("/v1/devices/{fingerprint:path}/approve")
    async def approve(fingerprint: str, body: ApproveBody, who: Actor) -> dict[str, Any]:
        identity = parse_identity(fingerprint)
        return device_json(await manager.approve(identity, body.name, who, body.credential))

    @app.post("/v1/devices/{fingerprint:path}/reject")
    async def reject(fingerprint: str, who: Actor) -> dict[str, Any]:
        return device_json(await manager.reject(parse_identity(fingerprint), who))

    @app.delete("/v1/devices/{name:path}")
    async def forget(name: str, who: Actor) -> dict[str, Any]:
        """Forget a device by its name or by its identity."""
        key = parse_identity(name) if is_identity(name) else name
        await manager.forget(key, who)
        return {"forgotten": name}

    async def _settle(job: Job, wait: float | None) -> dict[str, Any]:
        job = await manager.settle_job(job, wait)
        shown = job_json(job, manager.mibs)
        if not job.final and (manager.resolve(job.device)).orientation is None:
            shown["note"] = (
                f"{job.device} is approved but has never called home: the job waits for its "
                "first call (check that the device dials this manager and that the identity "
                "approved is the one it presents)"
            )
        return shown

    @app.post("/v1/devices/{name:path}/netconf")
    async def netconf(name: str, body: NetconfBody, who: Actor) -> dict[str, Any]:
        """Queue one NETCONF operation as a job; wait for it if the device is connected."""
        job = await manager.submit_netconf(
            name, build_operation(body), who, not_before=body.not_before, expires=body.expires
        )
        return await _settle(job, body.wait)

    @app.post("/v1/devices/{name:path}/snmp")
    async def snmp(name: str, body: SnmpBody, who: Actor) -> dict[str, Any]:
        """Queue one SNMP operation (RFC 5592 over the call-home connection) as a job."""
        payload = snmp_jobs.build_payload(
            body.operation,
            body.oids,
            [vb.model_dump() for vb in body.varbinds],
            max_repetitions=body.max_repetitions,
            resolve=manager.mibs.resolve,
        )
        job = await manager.submit(
            name,
            "snmp",
            payload,
            who,
            read_only=body.operation in snmp_jobs.READ_ONLY,
            not_before=body.not_before,
            expires=body.expires,
        )
        return await _settle(job, body.wait)

    @app.post("/v1/devices/{name:path}/schedule")
    async def schedule(name: str, body: ScheduleBody, who: Actor) -> dict[str, Any]:
        """Set when the device calls home: a job that edits its call-home client's
        connection-type (and nothing else), checked against the model before it is queued."""
        payload = schedule_payload(
            periodic=body.connection == "periodic",
            period=body.period,
            anchor=body.anchor,
            idle_timeout=body.idle_timeout,
            client=body.client,
        )
        job = await manager.submit(
            name, SCHEDULE_JOB, payload, who, not_before=body.not_before, expires=body.expires
        )
        return await _settle(job, body.wait)

    @app.post("/v1/devices/{name:path}/netconf-group")
    async def netconf_group(name: str, body: GroupBody, who: Actor) -> dict[str, Any]:
        """Several edits applied as one candidate commit, all or nothing."""
        for n, edit in enumerate(body.edits, 1):
            _fragment(edit, f"edit {n}")
        job = await manager.submit(
            name,
            "netconf-group",
            {"edits": body.edits},
            who,
            not_before=body.not_before,
            expires=body.expires,
        )
        return await _settle(job, body.wait)

    @app.get("/v1/jobs")
    async def jobs(
        request: Request,
        response: Response,
        who: Actor,
        device: str | None = None,
        state: JobState | None = None,
        after: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Job summaries (no payload, no result: ``GET /v1/jobs/{id}`` has them), oldest
        first: those with id above ``after``, or the newest ``limit`` when ``after`` is not
        given. A full page after ``after`` links the next (``Link: <...>; rel="next"``,
        ``after`` its last id)."""
        limit = max(1, min(limit, 1000))
        found = await manager.list_job_summaries(
            device=device, state=state, after_id=after or 0, limit=limit, newest=after is None
        )
        if after is not None and len(found) == limit:
            following = request.url.include_query_params(after=found[-1].id, limit=limit)
            response.headers["Link"] = f'<{following}>; rel="next"'
        return [job_summary_json(j) for j in found]

    @app.get("/v1/jobs/{job_id}")
    async def job(job_id: int, who: Actor, wait: float = 0) -> dict[str, Any]:
        found = await manager.get_job(job_id)
        return await _settle(found, min(max(wait, 0), 3600))

    @app.post("/v1/jobs/{job_id}/cancel")
    async def cancel(job_id: int, who: Actor) -> dict[str, Any]:
        return job_json(await manager.cancel_job(job_id, who), manager.mibs)

    @app.get("/v1/events")
    async def events(
        who: Actor,
        device: str | None = None,
        after: int | None = None,
        limit: int = 100,
        wait: float = 0,
    ) -> list[dict[str, Any]]:
        """Events with id above ``after`` (the newest ``limit`` when ``after`` is not given);
        ``wait`` long-polls up to that many seconds for one to come."""
        limit = max(1, min(limit, 1000))
        if wait > 0 and after is not None:
            await manager.wait_for_events(after, min(wait, 60))
        found = await manager.list_events(
            device=device, after_id=after or 0, limit=limit, newest=after is None
        )
        return [event_json(e) for e in found]

    return app
