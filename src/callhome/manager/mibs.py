"""MIB names for SNMP jobs: ``sysDescr.0`` and ``SNMPv2-MIB::sysName.0`` in, names out.

:class:`MibNames` is built once when the manager starts (``[manager.snmp]``): SNMPv2-MIB
always, plus ``mib_modules``, looked up in ``mib_dirs``. ASN.1 sources there are compiled
with pysmi into ``mib-cache/`` under the state dir (only when missing or older than their
source); modules already compiled for pysnmp are loaded as they are. pysnmp's builder and
view hold the tree; this module is the narrow typed face of them (neither pysnmp nor pysmi
has type stubs).

Names are resolved where a request is accepted, so a job always stores numeric OIDs and
runs the same whatever is loaded later. A name is ``[MODULE::]SYMBOL[.N.N...]``: a node of
a loaded module, then numeric sub-identifiers (a scalar's ``.0``, a table's index values).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pysnmp.smi import builder as smi_builder
from pysnmp.smi import error as smi_error
from pysnmp.smi import view as smi_view

from callhome.errors import ConfigError, LocalProtocolError
from callhome.proto.snmp import Oid, check_oid, parse_oid

log = logging.getLogger(__name__)

ALWAYS = ("SNMPv2-MIB",)
"""Modules loaded whatever the configuration says."""

STUBS = Path(__file__).with_name("mib_stubs")
"""Stand-ins for SNMPv2-SMI, -TC and -CONF sources, read after ``mib_dirs``: pysmi needs
the symbols of what a module imports, and pysnmp brings those modules only compiled."""

CACHE_DIR = "mib-cache"
"""Folder under the manager's state dir for modules pysmi compiled."""

_NAME = re.compile(
    r"^(?:(?P<module>[A-Za-z][A-Za-z0-9-]*)::)?(?P<symbol>[A-Za-z][A-Za-z0-9-]*)"
    r"(?P<suffix>(?:\.[0-9]+)*)$"
)


class MibNames:
    """Name <-> OID over a fixed set of loaded MIB modules."""

    def __init__(self, view: Any, modules: Sequence[str]) -> None:
        self._view = view
        self.modules: tuple[str, ...] = tuple(modules)
        """The modules asked for (SNMPv2-MIB first), all loaded."""

    @classmethod
    def load(
        cls, modules: Iterable[str] = (), dirs: Sequence[Path] = (), cache: Path | None = None
    ) -> MibNames:
        """Load SNMPv2-MIB and ``modules``, compiling sources from ``dirs`` into ``cache``;
        ConfigError names any module that cannot be found, compiled or loaded."""
        wanted = list(dict.fromkeys([*ALWAYS, *modules]))
        mib_builder = smi_builder.MibBuilder()
        sources = [*([cache] if cache is not None and dirs else []), *dirs]
        if sources:
            mib_builder.add_mib_sources(*(smi_builder.DirMibSource(str(p)) for p in sources))
        failures: dict[str, str] = {}
        if dirs:
            if cache is None:
                raise ConfigError("compiling MIB sources needs a cache folder")
            failures = compile_sources(wanted, dirs, cache)
        for name in wanted:
            try:
                with warnings.catch_warnings():
                    # modules pysmi writes call pysnmp's deprecated camelCase names
                    warnings.simplefilter("ignore", DeprecationWarning)
                    mib_builder.load_modules(name)
            except smi_error.SmiError as exc:
                why = failures.get(name) or _first_line(exc)
                where = ", ".join(str(d) for d in dirs) or "no mib_dirs configured"
                raise ConfigError(f"MIB module {name} not loaded ({where}): {why}") from None
        view = smi_view.MibViewController(mib_builder)
        log.info("MIB modules loaded: %s", ", ".join(wanted))
        return cls(view, wanted)

    # -- name -> OID -----------------------------------------------------------------------
    def resolve(self, text: str) -> Oid:
        """The numeric OID of ``1.3.6.1.2.1.1.1.0``, ``.1.3...``, ``sysDescr.0`` or
        ``SNMPv2-MIB::sysDescr.0``; ConfigError for a name no loaded module has."""
        if not isinstance(text, str):
            raise ConfigError(f"an OID is a string like 'sysDescr.0' or '1.3.6.1', not {text!r}")
        text = text.strip()
        if text[:1].isdigit() or text.startswith("."):
            try:
                return parse_oid(text)
            except LocalProtocolError as exc:
                raise ConfigError(str(exc)) from None
        match = _NAME.match(text)
        if match is None:
            raise ConfigError(
                f"not an OID: {text!r} (numeric like 1.3.6.1.2.1.1.1.0, or a name like "
                "sysDescr.0 or SNMPv2-MIB::sysDescr.0 with numeric index values)"
            )
        module, symbol = match["module"] or "", match["symbol"]
        if module and module not in self._loaded_modules():
            raise ConfigError(
                f"MIB module {module} is not loaded (loaded: {self.loaded_text()}); "
                "add it to [manager.snmp] mib_modules"
            )
        try:
            oid, _label, _suffix = self._view.get_node_name_by_desc(symbol, module)
        except smi_error.SmiError:
            where = (
                f"in {module}" if module else f"in the loaded MIB modules ({self.loaded_text()})"
            )
            raise ConfigError(f"unknown MIB name {symbol!r} {where}") from None
        suffix = tuple(int(s) for s in match["suffix"].split(".")[1:])
        try:
            return check_oid(tuple(int(s) for s in oid) + suffix)
        except LocalProtocolError as exc:
            raise ConfigError(f"{text}: {exc}") from None

    # -- OID -> name -----------------------------------------------------------------------
    def name(self, oid: Oid) -> str | None:
        """``MODULE::symbol.suffix`` for the deepest named node above ``oid``; None when no
        loaded module names any node above it."""
        try:
            module, symbol, suffix = self._view.get_node_location(tuple(oid))
        except (smi_error.SmiError, KeyError, ValueError, TypeError):
            return None
        rest = "".join(f".{int(s)}" for s in suffix)
        return f"{module}::{symbol}{rest}"

    def name_text(self, text: str) -> str | None:
        """:meth:`name` of a numeric OID given as text; None when it is not one."""
        try:
            return self.name(parse_oid(text))
        except LocalProtocolError:
            return None

    def annotate(self, result: Mapping[str, Any]) -> dict[str, Any]:
        """An SNMP job's result with names beside numeric OIDs: ``name`` in each varbind,
        ``value_name`` for an ObjectIdentifier value, ``error_name`` beside ``error_oid``."""
        out = dict(result)
        varbinds = result.get("varbinds")
        if isinstance(varbinds, list):
            out["varbinds"] = [self._annotate_varbind(vb) for vb in varbinds]
        error_oid = result.get("error_oid")
        if isinstance(error_oid, str) and (name := self.name_text(error_oid)):
            out["error_name"] = name
        return out

    def _annotate_varbind(self, vb: Any) -> Any:
        if not isinstance(vb, dict) or not isinstance(vb.get("oid"), str):
            return vb
        vb = dict(vb)
        if name := self.name_text(vb["oid"]):
            vb["name"] = name
        value = vb.get("value")
        is_oid = vb.get("type") == "ObjectIdentifier" and isinstance(value, str)
        if is_oid and (value_name := self.name_text(value)):
            vb["value_name"] = value_name
        return vb

    def loaded_text(self) -> str:
        return ", ".join(self.modules)

    def _loaded_modules(self) -> set[str]:
        return set(self._view.mibBuilder.mibSymbols)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def compile_sources(modules: Sequence[str], dirs: Sequence[Path], cache: Path) -> dict[str, str]:
    """Compile ``modules`` (and what they import) from the ASN.1 sources in ``dirs`` into
    pysnmp modules in ``cache``; a module already compiled and newer than its source is left
    alone. Returns why each module that was not compiled failed (a module with no source may
    still be a compiled one: loading it decides)."""
    from pysmi import error as pysmi_error  # type: ignore[import-untyped]
    from pysmi.codegen.pysnmp import PySnmpCodeGen, baseMibs  # type: ignore[import-untyped]
    from pysmi.compiler import MibCompiler  # type: ignore[import-untyped]
    from pysmi.parser.dialect import smi_v1_relaxed  # type: ignore[import-untyped]
    from pysmi.parser.smi import parserFactory  # type: ignore[import-untyped]
    from pysmi.reader import FileReader  # type: ignore[import-untyped]
    from pysmi.searcher import (  # type: ignore[import-untyped]
        PyFileSearcher,
        PyPackageSearcher,
        StubSearcher,
    )
    from pysmi.writer import PyFileWriter  # type: ignore[import-untyped]

    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    compiler = MibCompiler(
        parserFactory(**smi_v1_relaxed)(), PySnmpCodeGen(), PyFileWriter(str(cache))
    )
    compiler.add_sources(*(FileReader(str(d)) for d in dirs), FileReader(str(STUBS)))
    compiler.add_searchers(
        PyFileSearcher(str(cache)),
        *(PyFileSearcher(str(d)) for d in dirs),
        PyPackageSearcher("pysnmp.smi.mibs"),
        StubSearcher(*baseMibs),
    )
    try:
        status: dict[str, Any] = compiler.compile(*modules, ignoreErrors=True)
    except pysmi_error.PySmiError as exc:
        raise ConfigError(f"compiling MIB modules failed: {_first_line(exc)}") from None
    failures: dict[str, str] = {}
    for name, state in status.items():
        if state in ("compiled", "borrowed"):
            log.info("MIB module %s compiled into %s", name, cache)
        elif state == "failed":
            failures[name] = f"does not compile: {_first_line(getattr(state, 'error', state))}"
        elif state == "missing":
            failures[name] = "no source or compiled module found"
        elif state == "unprocessed":
            failures[name] = "not compiled (a module it imports failed)"
    return failures
