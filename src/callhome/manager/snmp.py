"""SNMP jobs: get, getnext, walk, bulkwalk and set on a device's call-home connection.

A job's payload (kind ``snmp``) is plain JSON, checked when the job is submitted::

    {"operation": "get", "oids": ["1.3.6.1.2.1.1.1.0"]}
    {"operation": "bulkwalk", "oids": ["1.3.6.1.2.1.2.2"], "max_repetitions": 25}
    {"operation": "set", "varbinds": [{"oid": "1.3.6.1.2.1.1.4.0", "type": "s",
                                       "value": "ops@example.net"}]}

Its result is ``{"varbinds": [...]}`` with one ``{"oid", "type", "value"}`` per binding
(and ``"hex"`` for octet strings), plus ``error_status``/``error_index`` when the agent
answered with an error (the job then fails).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from callhome.errors import ConfigError, LocalProtocolError
from callhome.net.snmp import SnmpClient
from callhome.proto.snmp import (
    ErrorStatus,
    Oid,
    Pdu,
    Value,
    ValueType,
    VarBind,
    format_oid,
    parse_oid,
)

OPERATIONS = ("get", "getnext", "walk", "bulkwalk", "set")
READ_ONLY = frozenset({"get", "getnext", "walk", "bulkwalk"})
MAX_WALK = 100_000
"""Most variable bindings one walk collects before it stops (and says so)."""

TYPE_LETTERS: dict[str, ValueType] = {
    "i": ValueType.INTEGER,
    "integer": ValueType.INTEGER,
    "u": ValueType.GAUGE32,
    "unsigned": ValueType.GAUGE32,
    "gauge32": ValueType.GAUGE32,
    "c": ValueType.COUNTER32,
    "counter32": ValueType.COUNTER32,
    "C": ValueType.COUNTER64,
    "counter64": ValueType.COUNTER64,
    "t": ValueType.TIMETICKS,
    "timeticks": ValueType.TIMETICKS,
    "s": ValueType.OCTET_STRING,
    "string": ValueType.OCTET_STRING,
    "x": ValueType.OCTET_STRING,
    "hex": ValueType.OCTET_STRING,
    "o": ValueType.OBJECT_IDENTIFIER,
    "oid": ValueType.OBJECT_IDENTIFIER,
    "a": ValueType.IP_ADDRESS,
    "ipaddress": ValueType.IP_ADDRESS,
}
"""Value types as Net-SNMP's snmpset letters, or spelled out."""


def parse_value(type_name: str, text: str) -> Value:
    """A typed value from the command line form (``s hello``, ``i 5``, ``x 0a0b``, ...)."""
    key = type_name if type_name in TYPE_LETTERS else type_name.lower()
    vtype = TYPE_LETTERS.get(key)
    if vtype is None:
        raise ConfigError(f"unknown SNMP type {type_name!r} (use i u c C t s x o a)")
    try:
        if key in ("x", "hex"):
            return Value(vtype, bytes.fromhex(text.replace(":", " ")))
        if vtype is ValueType.OCTET_STRING:
            return Value(vtype, text.encode())
        if vtype is ValueType.OBJECT_IDENTIFIER:
            return Value(vtype, parse_oid(text))
        if vtype is ValueType.IP_ADDRESS:
            return Value(vtype, ipaddress.IPv4Address(text).packed)
        return Value(vtype, int(text, 0))
    except (ValueError, LocalProtocolError) as exc:
        raise ConfigError(f"bad {vtype.value} value {text!r}: {exc}") from None


def numeric(text: Any) -> Oid:
    """A numeric OID from its text; ConfigError if it is not one."""
    if not isinstance(text, str):
        raise ConfigError(f"an OID is a string like '1.3.6.1.2.1.1.1.0', not {text!r}")
    try:
        return parse_oid(text)
    except LocalProtocolError as exc:
        raise ConfigError(str(exc)) from None


def build_payload(
    operation: str,
    oids: Sequence[str] = (),
    varbinds: Sequence[Mapping[str, Any]] = (),
    *,
    max_repetitions: int = 25,
    resolve: Callable[[str], Oid] = numeric,
) -> dict[str, Any]:
    """A checked job payload, its OIDs numeric (``resolve`` turns each OID the request gave
    into one: names too, with :class:`callhome.manager.mibs.MibNames`); ConfigError says
    what is wrong."""
    if operation not in OPERATIONS:
        raise ConfigError(f"unknown SNMP operation {operation!r} (one of {', '.join(OPERATIONS)})")
    payload: dict[str, Any] = {"operation": operation, "name": f"snmp {operation}"}
    if operation == "set":
        if not varbinds:
            raise ConfigError("set needs at least one varbind (oid, type, value)")
        checked = []
        for vb in varbinds:
            text = vb.get("oid")
            if not isinstance(text, str):
                raise ConfigError(f"a varbind's oid is a string, not {text!r}")
            oid = resolve(text)
            parse_value(str(vb.get("type", "")), str(vb.get("value", "")))
            checked.append(
                {"oid": format_oid(oid), "type": str(vb["type"]), "value": str(vb["value"])}
            )
        payload["varbinds"] = checked
        return payload
    if not oids:
        raise ConfigError(f"{operation} needs at least one OID")
    if operation in ("walk", "bulkwalk") and len(oids) != 1:
        raise ConfigError(f"{operation} takes one OID (the subtree)")
    payload["oids"] = [format_oid(resolve(o)) for o in oids]
    if operation == "bulkwalk":
        if not 1 <= max_repetitions <= 1000:
            raise ConfigError("max_repetitions is 1..1000")
        payload["max_repetitions"] = max_repetitions
    return payload


def varbind_json(vb: VarBind) -> dict[str, Any]:
    v = vb.value
    item: dict[str, Any] = {"oid": format_oid(vb.oid), "type": v.type.value}
    if isinstance(v.value, bytes):
        item["value"] = str(v)
        item["hex"] = v.value.hex()
    elif isinstance(v.value, tuple):
        item["value"] = format_oid(v.value)
    else:
        item["value"] = v.value
    return item


def _result(pdu: Pdu, varbinds: Sequence[VarBind] | None = None) -> tuple[bool, dict[str, Any]]:
    result: dict[str, Any] = {
        "varbinds": [varbind_json(vb) for vb in (pdu.varbinds if varbinds is None else varbinds)]
    }
    if not pdu.ok:
        result["error_status"] = pdu.error_status.wire_name
        result["error_index"] = pdu.error_index
        if 0 < pdu.error_index <= len(pdu.varbinds):
            result["error_oid"] = format_oid(pdu.varbinds[pdu.error_index - 1].oid)
    return pdu.ok, result


async def execute(client: SnmpClient, payload: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Run one job; (succeeded, result). SessionClosed or TimeoutError propagate."""
    operation = str(payload["operation"])
    if operation == "set":
        vbs = [
            VarBind(parse_oid(vb["oid"]), parse_value(vb["type"], vb["value"]))
            for vb in payload["varbinds"]
        ]
        return _result(await client.set(vbs))
    oids = [parse_oid(o) for o in payload["oids"]]
    if operation == "get":
        return _result(await client.get(oids))
    if operation == "getnext":
        return _result(await client.get_next(oids))
    return await _walk(client, oids[0], int(payload.get("max_repetitions", 0)), operation)


async def _walk(
    client: SnmpClient, root: Oid, max_repetitions: int, operation: str
) -> tuple[bool, dict[str, Any]]:
    """GETNEXT (walk) or GETBULK (bulkwalk) from ``root`` until the subtree ends."""
    found: list[VarBind] = []
    current = root
    while len(found) < MAX_WALK:
        if operation == "bulkwalk":
            pdu = await client.get_bulk([current], 0, max_repetitions)
        else:
            pdu = await client.get_next([current])
        if not pdu.ok:
            return _result(pdu, found)
        if not pdu.varbinds:
            break
        for vb in pdu.varbinds:
            if vb.value.type is ValueType.END_OF_MIB_VIEW or vb.oid[: len(root)] != root:
                return True, {"varbinds": [varbind_json(v) for v in found]}
            if vb.oid <= current:
                return False, {
                    "varbinds": [varbind_json(v) for v in found],
                    "error": f"the agent went backwards at {format_oid(vb.oid)}",
                    "error_status": ErrorStatus.GEN_ERR.wire_name,
                }
            found.append(vb)
            current = vb.oid
    ok = len(found) < MAX_WALK
    result: dict[str, Any] = {"varbinds": [varbind_json(v) for v in found]}
    if not ok:
        result["error"] = f"stopped after {MAX_WALK} variable bindings"
    return ok, result
