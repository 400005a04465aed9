"""``callhome``: the command line. Daemons (manager, agent, demo) and thin API commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lxml import etree

from callhome.cli.client import Api, ApiError, ApiTarget
from callhome.errors import CallHomeError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_API = 0, 1, 2, 3
EXIT_PIPE = 128 + 13
"""What a shell reports for a command ended by SIGPIPE: stdout was closed early (``| head``)."""


def _ago(ts: float | None) -> str:
    if not ts:
        return "-"
    delta = max(0.0, time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{int(delta // size)}{unit} ago"
    return f"{int(delta)}s ago"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _read_arg(value: str) -> str:
    """A value, or the contents of a file when written @path (- for stdin)."""
    if value == "@-":
        return sys.stdin.read()
    if value.startswith("@"):
        return Path(value[1:]).read_text()
    return value


def _pretty(xml: str) -> str:
    try:
        root = etree.fromstring(
            xml.encode(), etree.XMLParser(remove_blank_text=True, resolve_entities=False)
        )
    except etree.XMLSyntaxError:
        return xml
    return etree.tostring(root, pretty_print=True).decode()


# -- API commands ------------------------------------------------------------------------


def cmd_devices(api: Api, args: argparse.Namespace) -> int:
    devices = api.call("GET", "/v1/devices")
    if args.json:
        print(json.dumps(devices, indent=2))
        return EXIT_OK
    rows = [
        [
            d["name"] or "-",
            d["fingerprint"],
            d["status"],
            _ago(d["since"]),
            d["address"] or "-",
            d.get("orientation") or "-",
            schedule_text(d.get("schedule")),
            next_text(d.get("next_expected")),
        ]
        for d in devices
    ]
    header = ["NAME", "FINGERPRINT", "STATUS", "SINCE", "ADDRESS", "ORIENTATION"]
    print(_table(rows, [*header, "SCHEDULE", "NEXT"]))
    return EXIT_OK


def span_text(seconds: float) -> str:
    """A duration as 15m, 1h30m, 3s, 0.5s."""
    if seconds < 1 and seconds != int(seconds):
        return f"{seconds:g}s"
    rest, parts = round(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def schedule_text(schedule: dict[str, Any] | None) -> str:
    """The SCHEDULE column: persistent, periodic 15m, or - while unknown."""
    if not schedule:
        return "-"
    if schedule["kind"] == "periodic" and schedule.get("period"):
        return f"periodic {span_text(schedule['period'])}"
    return str(schedule["kind"])


def next_text(expected: dict[str, Any] | None, now: float | None = None) -> str:
    """The NEXT column: now, reconnecting, the expected time, or overdue 3m."""
    if not expected:
        return "-"
    state = expected["state"]
    if state == "connected":
        return "now"
    if state == "overdue":
        return f"overdue {span_text(expected.get('overdue_by') or 0)}"
    if state != "expected":
        return str(state)
    when = float(expected["time"])
    now = time.time() if now is None else now
    shape = "%H:%M:%S" if abs(when - now) < 86400 else "%Y-%m-%d %H:%M"
    return time.strftime(shape, time.localtime(when))


def cmd_approve(api: Api, args: argparse.Namespace) -> int:
    body = {"name": args.name, "credential": args.credential}
    d = api.call("POST", f"/v1/devices/{args.fingerprint}/approve", json=body)
    print(f"approved {d['fingerprint']} as {d['name']}")
    return EXIT_OK


def cmd_reject(api: Api, args: argparse.Namespace) -> int:
    d = api.call("POST", f"/v1/devices/{args.fingerprint}/reject")
    print(f"rejected {d['fingerprint']}")
    return EXIT_OK


def cmd_forget(api: Api, args: argparse.Namespace) -> int:
    api.call("DELETE", f"/v1/devices/{args.name}")
    print(f"forgot {args.name}")
    return EXIT_OK


def _print_event(e: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(e), flush=True)
        return
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"]))
    who = e["device"] or e["fingerprint"] or "-"
    detail = " ".join(f"{k}={v}" for k, v in e["detail"].items())
    print(f"{e['id']:>6}  {when}  {e['kind']:<18} {who}  {detail}".rstrip(), flush=True)


def cmd_events(api: Api, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.after is not None:
        params["after"] = args.after
    if args.device:
        params["device"] = args.device
    events = api.call("GET", "/v1/events", params=params)
    if args.json and not args.follow:
        print(json.dumps(events, indent=2))
        return EXIT_OK
    for e in events:
        _print_event(e, args.json)
    last = events[-1]["id"] if events else (args.after or 0)
    while args.follow:
        params.update(after=last, wait=30, limit=1000)
        for e in api.call("GET", "/v1/events", params=params):
            _print_event(e, args.json)
            last = e["id"]
    return EXIT_OK


def cmd_audit(api: Api, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.after is not None:
        params["after"] = args.after
    entries = api.call("GET", "/v1/audit", params=params)
    if args.json:
        print(json.dumps(entries, indent=2))
        return EXIT_OK
    rows = [
        [
            str(e["id"]),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"])),
            e["actor"],
            e["action"],
            e.get("target") or "-",
            " ".join(f"{k}={v}" for k, v in sorted((e.get("detail") or {}).items())),
        ]
        for e in entries
    ]
    print(_table(rows, ["ID", "TIME", "WHO", "ACTION", "TARGET", "DETAIL"]))
    return EXIT_OK


def _duration(text: str) -> float:
    """Seconds from '90', '90s', '15m', '2h' or '1d': a finite number, 0 or more."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip()
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        seconds = float(number) * unit
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30s, 15m, 2h)") from None
    if not math.isfinite(seconds):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (a finite number, e.g. 15m)")
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"a duration cannot be negative: {text!r}")
    return seconds


def _expiry(text: str) -> float:
    """A duration after which a job is given up: more than 0 (a job that expires at once
    could never run)."""
    seconds = _duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(
            f"must be more than 0, not {text!r} (a job that expires at once never runs)"
        )
    return seconds


def _print_errors(errors: list[dict[str, Any]]) -> None:
    for err in errors:
        if err.get("severity") == "warning":
            continue
        text = f"{err['type']}/{err['tag']}"
        if err.get("message"):
            text += f": {err['message']}"
        if err.get("path"):
            text += f" (at {err['path']})"
        for k, v in (err.get("info_items") or {}).items():
            text += f" [{k}={v}]"
        print(f"rpc-error: {text}", file=sys.stderr)


def show_job_outcome(job: dict[str, Any], numeric: bool = False) -> int:
    """Print a job's outcome as the user asked for it; the exit code says how it went.
    SNMP bindings show MIB names where the manager knows them, unless ``numeric``."""
    state, result = job["state"], job.get("result") or {}
    if state == "succeeded":
        for err in result.get("errors", []):
            if err.get("severity") == "warning":
                print(f"warning: {err['tag']}: {err.get('message') or ''}", file=sys.stderr)
        if "reply" in result:
            print(_pretty(result["reply"]), end="")
        elif "varbinds" in result:
            _print_varbinds(result["varbinds"], numeric)
        else:
            print(f"job {job['id']} succeeded")
        return EXIT_OK
    if state in ("queued", "running"):
        print(
            f"job {job['id']} {state} for {job['device']}: it runs when the device is connected; "
            f"`callhome job {job['id']}` shows its result",
            file=sys.stderr,
        )
        if job.get("note"):
            print(f"note: {job['note']}", file=sys.stderr)
        print(job["id"])
        return EXIT_OK
    if state == "failed":
        if result.get("errors"):
            _print_errors(result["errors"])
        else:
            print(
                f"job {job['id']} failed: {result.get('error', 'see callhome job')}",
                file=sys.stderr,
            )
        return EXIT_FAILED
    reason = result.get("interrupted", "")
    print(f"job {job['id']} {state}" + (f": {reason}" if reason else ""), file=sys.stderr)
    return EXIT_FAILED


def cmd_netconf(api: Api, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"operation": args.operation}
    for key in ("source", "target", "default_operation", "error_option", "test_option", "wait"):
        value = getattr(args, key, None)
        if value is not None:
            body[key] = value
    if getattr(args, "filter", None):
        body["filter"] = _read_arg(args.filter)
    if getattr(args, "config", None):
        body["config"] = _read_arg(args.config)
    if getattr(args, "xml", None):
        body["rpc"] = _read_arg(args.xml)
    if getattr(args, "session_id", None) is not None:
        body["session_id"] = args.session_id
    if args.expires is not None:
        body["expires"] = time.time() + args.expires
    if args.after is not None:
        body["not_before"] = time.time() + args.after
    path = f"/v1/devices/{args.name}/netconf"
    if args.operation == "commit-group":
        body = {k: v for k, v in body.items() if k in ("wait", "expires", "not_before")}
        body["edits"] = [_read_arg(c) for c in args.edit]
        path = f"/v1/devices/{args.name}/netconf-group"
    return show_job_outcome(api.call("POST", path, json=body))


def cmd_schedule(api: Api, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"connection": "persistent" if args.persistent else "periodic"}
    for key in ("anchor", "idle_timeout", "client", "wait"):
        value = getattr(args, key)
        if value is not None:
            body[key] = value
    if args.periodic is not None:
        body["period"] = args.periodic
    return show_job_outcome(api.call("POST", f"/v1/devices/{args.name}/schedule", json=body))


def _print_varbinds(varbinds: list[dict[str, Any]], numeric: bool = False) -> None:
    """One ``OID = Type: value`` line per binding; names (the manager's ``name`` and
    ``value_name``) instead of numeric OIDs where known, unless ``numeric``."""
    for vb in varbinds:
        oid = vb["oid"] if numeric else vb.get("name") or vb["oid"]
        if vb["type"] in ("noSuchObject", "noSuchInstance", "endOfMibView"):
            print(f"{oid} = {vb['type']}")
        else:
            value = vb["value"] if numeric else vb.get("value_name") or vb["value"]
            print(f"{oid} = {vb['type']}: {value}")


def cmd_snmp(api: Api, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"operation": args.operation}
    if args.operation == "set":
        if len(args.args) % 3:
            print("set takes OID TYPE VALUE triples", file=sys.stderr)
            return EXIT_USAGE
        triples = [args.args[i : i + 3] for i in range(0, len(args.args), 3)]
        body["varbinds"] = [{"oid": o, "type": t, "value": v} for o, t, v in triples]
    else:
        body["oids"] = args.args
    if args.max_repetitions is not None:
        body["max_repetitions"] = args.max_repetitions
    if args.wait is not None:
        body["wait"] = args.wait
    if args.expires is not None:
        body["expires"] = time.time() + args.expires
    if args.after is not None:
        body["not_before"] = time.time() + args.after
    job = api.call("POST", f"/v1/devices/{args.name}/snmp", json=body)
    if args.json:
        print(json.dumps(job, indent=2))
        return EXIT_OK if job["state"] in ("succeeded", "queued", "running") else EXIT_FAILED
    result = job.get("result") or {}
    if job["state"] == "failed" and "varbinds" in result:
        _print_varbinds(result["varbinds"], args.numeric)
        error_oid = result.get("error_oid")
        if error_oid and not args.numeric:
            error_oid = result.get("error_name") or error_oid
        where = f" at {error_oid}" if error_oid else ""
        error = result.get("error_status") or result.get("error") or "failed"
        index = f" (index {result['error_index']})" if result.get("error_index") else ""
        print(f"snmp error: {error}{index}{where}", file=sys.stderr)
        return EXIT_FAILED
    return show_job_outcome(job, args.numeric)


def cmd_jobs(api: Api, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.device:
        params["device"] = args.device
    if args.state:
        params["state"] = args.state
    jobs = api.call("GET", "/v1/jobs", params=params)
    if args.json:
        print(json.dumps(jobs, indent=2))
        return EXIT_OK
    rows = [
        [
            str(j["id"]),
            j["device"],
            j["operation"],
            j["state"],
            str(j["attempts"]),
            _ago(j["created"]),
            j["actor"],
        ]
        for j in jobs
    ]
    print(_table(rows, ["ID", "DEVICE", "OPERATION", "STATE", "TRIES", "CREATED", "BY"]))
    return EXIT_OK


def cmd_job(api: Api, args: argparse.Namespace) -> int:
    job = api.call("GET", f"/v1/jobs/{args.id}", params={"wait": args.wait or 0})
    if args.json:
        print(json.dumps(job, indent=2))
        return EXIT_OK
    print(
        f"job {job['id']} on {job['device']}: {job['operation']} {job['state']} "
        f"(tries {job['attempts']}, by {job['actor']})",
        file=sys.stderr,
    )
    return show_job_outcome(job, args.numeric)


def cmd_cancel(api: Api, args: argparse.Namespace) -> int:
    job = api.call("POST", f"/v1/jobs/{args.id}/cancel")
    print(f"job {job['id']} {job['state']}")
    return EXIT_OK


# -- daemons and setup -------------------------------------------------------------------


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("asyncssh").setLevel(logging.WARNING)


def cmd_manager(args: argparse.Namespace) -> int:
    from callhome.api.server import serve_manager
    from callhome.config import ManagerConfig, load

    _setup_logging(args.verbose)
    asyncio.run(serve_manager(load(ManagerConfig, Path(args.config))))
    return EXIT_OK


def cmd_agent(args: argparse.Namespace) -> int:
    from callhome.agent.service import run_agent

    _setup_logging(args.verbose)
    asyncio.run(run_agent(Path(args.config)))
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    from callhome.cli.setup import existing_config, init_agent, init_manager
    from callhome.config import default_client_file

    directory = Path(args.dir)
    existing = existing_config(directory, args.role)
    if existing is not None and not args.force:
        print(
            f"{existing} exists: not overwritten (--force writes a new one; the keys beside it "
            "are kept either way)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if args.role == "manager":
        client_file = None
        if not args.no_client_file:
            client_file = Path(args.client_file or default_client_file()).expanduser().resolve()
        line = init_manager(
            directory,
            args.listen or None,
            args.api,
            client_file,
            tls_listen=args.tls_listen or [],
            tls_cert=Path(args.tls_cert) if args.tls_cert else None,
            tls_key=Path(args.tls_key) if args.tls_key else None,
            tls_ca=[Path(p) for p in args.tls_ca or []],
            tls_crl=[Path(p) for p in args.tls_crl or []],
            tls_map=args.tls_map,
            turn_listen=args.turn_listen or [],
        )
        print(f"wrote {directory / 'manager.toml'}")
        if client_file is not None:
            print(f"the manager writes the API address and token for the CLI to {client_file}")
        else:
            print("the CLI needs --api and --token, or CALLHOME_API_URL and CALLHOME_API_TOKEN")
        print("give devices this manager key (agent.toml manager_keys):")
        print(line)
        _print_orientation_hints(args, directory)
    else:
        if not args.manager:
            print("init agent needs --manager HOST:PORT (one or more)", file=sys.stderr)
            return EXIT_USAGE
        keys = list(args.manager_key or [])
        for path in args.manager_key_file or []:
            keys += [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
        fingerprint = init_agent(
            directory,
            args.manager,
            keys,
            orientation=args.orientation,
            tls_cert=Path(args.tls_cert) if args.tls_cert else None,
            tls_key=Path(args.tls_key) if args.tls_key else None,
            manager_ca=[Path(p) for p in args.manager_ca or []],
            manager_crl=[Path(p) for p in args.manager_crl or []],
            manager_fingerprints=args.manager_cert_fingerprint or [],
            manager_host_keys=args.manager_host_key or [],
        )
        print(f"wrote {directory / 'agent.toml'}")
        print("approve this device on the manager with:")
        print(f"callhome approve {fingerprint} --name NAME")
    return EXIT_OK


def _print_orientation_hints(args: argparse.Namespace, directory: Path) -> None:
    from callhome.cli.setup import turn_host_key_line
    from callhome.net.pki import file_fingerprint

    if args.tls_listen and args.tls_cert:
        print("reverse-tls devices: --manager-ca <the CA of the manager's certificate>")
        print(f"  --manager-cert-fingerprint {file_fingerprint(Path(args.tls_cert))}")
    if args.turn_listen:
        print("turn devices: --manager-host-key with this line:")
        print(turn_host_key_line(directory))


def cmd_demo(args: argparse.Namespace) -> int:
    from callhome.cli.demo import run_demo

    return run_demo(Path(args.dir), args.devices, args.port, args.api_port)


# -- parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="callhome", description="Manage devices that call home.")
    p.add_argument("--api", help="manager API URL (default: from the client file)")
    p.add_argument("--token", help="API bearer token (default: from the client file)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("manager", help="run the manager")
    s.add_argument("--config", required=True)
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(daemon=cmd_manager)

    s = sub.add_parser("agent", help="run a device that calls home")
    s.add_argument("--config", required=True)
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(daemon=cmd_agent)

    s = sub.add_parser("init", help="write config and keys for a manager or a device")
    s.add_argument("role", choices=["manager", "agent"])
    s.add_argument("dir")
    s.add_argument("--listen", action="append", help="manager: call-home listen address")
    s.add_argument("--api", dest="api", help="manager: API listen address")
    s.add_argument("--manager", action="append", help="agent: manager HOST:PORT (repeatable)")
    s.add_argument("--manager-key", action="append", help="agent: a manager public key line")
    s.add_argument("--manager-key-file", action="append", help="agent: file of manager keys")
    s.add_argument("--tls-listen", action="append", help="manager: reverse-tls listen address")
    s.add_argument("--tls-ca", action="append", help="manager: CA file of device certificates")
    s.add_argument("--tls-crl", action="append", help="manager: CRL file of that CA")
    s.add_argument(
        "--tls-map",
        default="san-dns-name",
        choices=["san-dns-name", "san-rfc822-name", "san-ip-address", "san-any", "common-name"],
        help="manager: how a CA-issued certificate names its device (cert-to-name)",
    )
    s.add_argument("--turn-listen", action="append", help="manager: turn SSH server address")
    s.add_argument("--tls-cert", help="the manager's client / the device's server certificate")
    s.add_argument("--tls-key", help="the key of --tls-cert")
    s.add_argument(
        "--orientation",
        choices=["reverse-ssh", "reverse-tls", "turn"],
        default="reverse-ssh",
        help="agent: how it calls home (every --manager given)",
    )
    s.add_argument("--manager-ca", action="append", help="agent: anchor for the manager's cert")
    s.add_argument("--manager-crl", action="append", help="agent: CRL of that CA")
    s.add_argument(
        "--manager-cert-fingerprint", action="append", help="agent: pin the manager's cert"
    )
    s.add_argument(
        "--manager-host-key", action="append", help="agent: the manager's turn host key line"
    )
    s.add_argument(
        "--client-file",
        help="manager: where it writes the API address and token for the CLI (default: "
        "$CALLHOME_CLIENT_FILE or ~/.config/callhome/client.toml)",
    )
    s.add_argument(
        "--no-client-file",
        action="store_true",
        help="manager: write no client file (the CLI then needs --api and --token)",
    )
    s.add_argument(
        "--force",
        action="store_true",
        help="overwrite an existing manager.toml / agent.toml (existing keys are kept)",
    )
    s.set_defaults(daemon=cmd_init)

    s = sub.add_parser("demo", help="a manager and a few local devices, for a first look")
    s.add_argument("--dir", default="demo")
    s.add_argument("--devices", type=int, default=3)
    s.add_argument("--port", type=int, default=14334, help="call-home port of the demo")
    s.add_argument("--api-port", type=int, default=14380)
    s.set_defaults(daemon=cmd_demo)

    s = sub.add_parser("devices", help="list devices")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_devices)

    s = sub.add_parser("approve", help="bind a device key to a name")
    s.add_argument("fingerprint")
    s.add_argument("--name", required=True)
    s.add_argument(
        "--credential", help="credential set (manager.credentials) to present to this device"
    )
    s.set_defaults(func=cmd_approve)

    s = sub.add_parser("reject", help="refuse a device key")
    s.add_argument("fingerprint")
    s.set_defaults(func=cmd_reject)

    s = sub.add_parser("forget", help="remove a device from the registry")
    s.add_argument("name", metavar="NAME|IDENTITY", help="its name, or SHA256:... / x509-name:...")
    s.set_defaults(func=cmd_forget)

    s = sub.add_parser("events", help="what happened")
    s.add_argument("--device")
    s.add_argument("--after", type=int, help="events after this id (default: the newest)")
    s.add_argument("--limit", type=int, default=100)
    s.add_argument("--json", action="store_true", help="JSON (one object per line with --follow)")
    s.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    s.set_defaults(func=cmd_events)

    s = sub.add_parser("audit", help="what operators did: approvals, jobs, terminals ...")
    s.add_argument("--after", type=int, help="entries after this id (default: the newest)")
    s.add_argument("--limit", type=int, default=100)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_audit)

    s = sub.add_parser("jobs", help="list jobs (summaries: `callhome job ID` has the result)")
    s.add_argument("--device")
    s.add_argument(
        "--state",
        choices=[
            "queued",
            "running",
            "succeeded",
            "failed",
            "expired",
            "cancelled",
            "outcome-unknown",
        ],
    )
    s.add_argument("--limit", type=int, default=100)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_jobs)

    s = sub.add_parser("job", help="one job, with its whole result")
    s.add_argument("id", type=int)
    s.add_argument("--wait", type=_duration, help="wait up to this long for it to finish")
    s.add_argument("--json", action="store_true")
    s.add_argument("-n", "--numeric", action="store_true", help="SNMP: numeric OIDs, no MIB names")
    s.set_defaults(func=cmd_job)

    s = sub.add_parser("cancel", help="cancel a queued job")
    s.add_argument("id", type=int)
    s.set_defaults(func=cmd_cancel)

    s = sub.add_parser(
        "netconf",
        help="run a NETCONF operation on a device (a job: deferred while the device is away)",
    )
    s.add_argument("name")
    s.add_argument(
        "--wait",
        nargs="?",
        const=3600.0,
        type=_duration,
        help="wait for the result even if the device is away (up to TIMEOUT, default 1h)",
    )
    s.add_argument("--expires", type=_expiry, help="give up if not run within this time")
    s.add_argument("--after", type=_duration, help="do not run before this much time has passed")
    ops = s.add_subparsers(dest="operation", required=True)
    o = ops.add_parser("get")
    o.add_argument("--filter", help="subtree filter XML, or @file")
    o = ops.add_parser("get-config")
    o.add_argument("--source", default="running")
    o.add_argument("--filter", help="subtree filter XML, or @file")
    o = ops.add_parser("edit-config")
    o.add_argument("--target", default="running")
    o.add_argument("--config", required=True, help="content of <config>, or @file")
    o.add_argument("--default-operation", choices=["merge", "replace", "none"])
    o.add_argument(
        "--error-option", choices=["stop-on-error", "continue-on-error", "rollback-on-error"]
    )
    o.add_argument("--test-option", choices=["test-then-set", "set", "test-only"])
    for name in ("lock", "unlock"):
        o = ops.add_parser(name)
        o.add_argument("--target", default="running")
    o = ops.add_parser("kill-session")
    o.add_argument("session_id", type=int)
    o = ops.add_parser("commit-group", help="several edits as one candidate commit")
    o.add_argument(
        "--edit", action="append", required=True, help="content of <config>, or @file (repeat)"
    )
    o = ops.add_parser("rpc", help="any operation, given as XML")
    o.add_argument("xml", help="the operation element (child of <rpc>), or @file")
    s.set_defaults(func=cmd_netconf)

    s = sub.add_parser(
        "schedule",
        help="set when a device calls home (a job: deferred while the device is away)",
    )
    s.add_argument("name")
    kind = s.add_mutually_exclusive_group(required=True)
    kind.add_argument("--persistent", action="store_true", help="keep a connection up")
    kind.add_argument(
        "--periodic",
        type=_duration,
        metavar="PERIOD",
        help="call home every PERIOD, whole minutes (e.g. 15m, 1h)",
    )
    s.add_argument(
        "--anchor",
        help="a date-and-time on a whole minute the schedule runs through "
        "(e.g. 2024-01-01T00:15:00Z)",
    )
    s.add_argument(
        "--idle-timeout",
        type=_duration,
        help="hang up after this long without use, whole seconds (0: never)",
    )
    s.add_argument(
        "--client",
        help="the device's call-home client to change (default: the one whose endpoint "
        "is this manager)",
    )
    s.add_argument(
        "--wait",
        nargs="?",
        const=3600.0,
        type=_duration,
        help="wait for the result even if the device is away (up to TIMEOUT, default 1h)",
    )
    s.set_defaults(func=cmd_schedule)

    s = sub.add_parser(
        "snmp",
        help="an SNMP operation on a device (a job: deferred while the device is away)",
        description="An OID is numeric (1.3.6.1.2.1.1.1.0) or a name from a MIB module the "
        "manager loaded ([manager.snmp] mib_modules; SNMPv2-MIB always): sysDescr.0, "
        "SNMPv2-MIB::sysDescr.0, a table column with numeric index values (ifDescr.3). "
        "Results show names where known (--numeric: numbers only). set takes OID TYPE VALUE "
        "triples; TYPE is one of i (INTEGER), u (Gauge32), c (Counter32), C (Counter64), "
        "t (TimeTicks), s (string), x (hex string), o (OID), a (IpAddress).",
    )
    s.add_argument("name")
    s.add_argument("operation", choices=["get", "getnext", "walk", "bulkwalk", "set"])
    s.add_argument("args", nargs="+", metavar="OID [TYPE VALUE]")
    s.add_argument("--max-repetitions", type=int, help="bulkwalk: bindings per request")
    s.add_argument(
        "--wait",
        nargs="?",
        const=3600.0,
        type=_duration,
        help="wait for the result even if the device is away (up to TIMEOUT, default 1h)",
    )
    s.add_argument("--expires", type=_expiry, help="give up if not run within this time")
    s.add_argument("--after", type=_duration, help="do not run before this much time has passed")
    s.add_argument("--json", action="store_true", help="the whole job as JSON")
    s.add_argument("-n", "--numeric", action="store_true", help="print numeric OIDs, no MIB names")
    s.set_defaults(func=cmd_snmp)

    from callhome.cli.terminal import add_parsers

    add_parsers(sub)
    from callhome.cli.pki import add_parsers as add_pki_parsers

    add_pki_parsers(sub)
    return p


def _quiet_known_warnings() -> None:
    """Hide the one warning every command would print otherwise: asyncssh names
    cryptography's DSA classes when it is imported, and cryptography deprecates DSA. Only
    that warning: other warnings, cryptography's included, still show."""
    from cryptography.utils import CryptographyDeprecationWarning

    warnings.filterwarnings(
        "ignore", message=r"DSA is deprecated", category=CryptographyDeprecationWarning
    )


def _stdout_closed() -> int:
    """stdout's reader went away (``callhome events | head``): end quietly, as a command
    killed by SIGPIPE would, and let nothing more be written to the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_known_warnings()
    try:
        code = _run(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        return _stdout_closed()
    return code


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        daemon: Callable[[argparse.Namespace], int] | None = getattr(args, "daemon", None)
        if daemon is not None:
            return daemon(args)
        api = Api(ApiTarget.find(args.api, args.token))
        try:
            code: int = args.func(api, args)
            return code
        finally:
            api.close()
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_API if exc.status == 0 else EXIT_FAILED
    except CallHomeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
