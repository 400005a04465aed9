"""The device's MIB: a registry of OID subtrees, and the objects served by default.

A device's own code adds objects through :class:`MibRegistry`:

* ``registry.scalar(oid, ValueType.X, getter, setter=None, validate=None)`` serves the
  instance ``oid.0``; ``getter()`` returns the Python value (int, bytes, str or an OID
  tuple), ``setter(value)`` stores a new one (absent: the object is read-only), and
  ``validate(value)`` may raise :class:`SetError` (wrongValue, wrongLength ...) before any
  setter of a SET runs;
* ``registry.table(entry_oid, {column: ValueType.X, ...}, rows)`` serves a read-only
  conceptual table whose rows come from ``rows()``: ``{index_tuple: {column: value}}``;
* ``registry.register(node)`` adds any :class:`MibNode` (a subtree with its own rules).

Subtrees may not overlap. :meth:`MibRegistry.walk` is the cursor GETNEXT and GETBULK read
the MIB through: one search for the start, then instances in order, the objects a view
hides skipped a whole subtree at a time where it can. :func:`register_ups_ident` (RFC 1628
upsIdent) is a small example of a device-specific MIB built this way.
"""

from __future__ import annotations

import bisect
import itertools
import os
import platform
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from callhome.errors import LocalProtocolError
from callhome.proto.snmp import ErrorStatus, Oid, Value, ValueType, VarBind

Raw = int | bytes | str | Oid
Getter = Callable[[], Raw]
Setter = Callable[[Raw], None]
Validator = Callable[[Value], None]

SYSTEM: Oid = (1, 3, 6, 1, 2, 1, 1)
SNMP_ENGINE: Oid = (1, 3, 6, 1, 6, 3, 10, 2, 1)
IF_NUMBER: Oid = (1, 3, 6, 1, 2, 1, 2, 1)
IF_ENTRY: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1)
UPS_IDENT: Oid = (1, 3, 6, 1, 2, 1, 33, 1, 1)


class SetError(Exception):
    """A SET cannot be done; ``status`` is the error-status to answer with."""

    def __init__(self, status: ErrorStatus, message: str = "") -> None:
        super().__init__(message or status.wire_name)
        self.status = status


def make_value(vtype: ValueType, raw: Raw | Value) -> Value:
    if isinstance(raw, Value):
        return raw
    if isinstance(raw, str):
        raw = raw.encode()
    return Value(vtype, raw)


class MibNode(Protocol):
    """One subtree of the MIB."""

    @property
    def prefix(self) -> Oid: ...

    def instances(self) -> Sequence[Oid]:
        """The instance OIDs served now, in lexicographic order, all inside ``prefix``."""
        ...

    def get(self, oid: Oid) -> Value | None:
        """The value of instance ``oid`` (inside this subtree), or None if there is none."""
        ...

    def check_set(self, oid: Oid, value: Value) -> None:
        """Raise SetError unless ``oid`` may take ``value`` (the RFC 3416 checks, in order)."""
        ...

    def set(self, oid: Oid, value: Value) -> None: ...


class Scalar:
    """A scalar object: the single instance ``oid.0``."""

    def __init__(
        self,
        oid: Oid,
        vtype: ValueType,
        getter: Getter,
        setter: Setter | None = None,
        validate: Validator | None = None,
    ) -> None:
        self.prefix = oid
        self.instance = (*oid, 0)
        self.vtype = vtype
        self._getter = getter
        self._setter = setter
        self._validate = validate

    def instances(self) -> Sequence[Oid]:
        return (self.instance,)

    def get(self, oid: Oid) -> Value | None:
        return make_value(self.vtype, self._getter()) if oid == self.instance else None

    def check_set(self, oid: Oid, value: Value) -> None:
        if self._setter is None:
            raise SetError(ErrorStatus.NOT_WRITABLE)
        if value.type is not self.vtype:
            raise SetError(ErrorStatus.WRONG_TYPE, f"{self.vtype.value} expected")
        if self._validate is not None:
            self._validate(value)
        if oid != self.instance:
            raise SetError(ErrorStatus.NO_CREATION)

    def set(self, oid: Oid, value: Value) -> None:
        assert self._setter is not None and value.value is not None
        self._setter(value.value)


class _Snapshot:
    """A table's rows as read at ``taken``, and its instances in order.

    ``cells[k]`` is the row and column of ``instances[k]``: the value is read from the row
    when it is asked for, as :meth:`Table.get` does, so a row that the device changes in
    place is seen at once. ``memo[k]`` keeps the binding last made for that cell with the
    raw value it was made from, reused while the row holds that same (immutable) object.
    """

    __slots__ = ("cells", "instances", "memo", "rows", "taken", "types")

    def __init__(
        self,
        taken: float,
        prefix: Oid,
        columns: Mapping[int, ValueType],
        rows: dict[Oid, Mapping[int, Raw | Value]],
    ) -> None:
        self.taken = taken
        self.rows = rows
        self.instances: list[Oid] = []
        self.cells: list[tuple[Mapping[int, Raw | Value], int]] = []
        self.types: list[ValueType] = []
        for col, vtype in columns.items():
            head = (*prefix, col)
            for index, row in rows.items():
                if col in row:
                    self.instances.append(head + index)
                    self.cells.append((row, col))
                    self.types.append(vtype)
        self.memo: list[tuple[object, VarBind] | None] = [None] * len(self.instances)


class Table:
    """A read-only conceptual table: ``entry.column.index``; rows cached ``cache_for`` s."""

    def __init__(
        self,
        entry: Oid,
        columns: Mapping[int, ValueType],
        rows: Callable[[], Mapping[Oid, Mapping[int, Raw | Value]]],
        *,
        cache_for: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = entry
        self.columns = dict(sorted(columns.items()))
        self._rows = rows
        self._cache_for = cache_for
        self._clock = clock
        self._cached: _Snapshot | None = None

    def _snapshot(self) -> _Snapshot:
        now = self._clock()
        cached = self._cached
        if cached is None or now - cached.taken >= self._cache_for:
            rows = dict(sorted(self._rows().items()))
            cached = self._cached = _Snapshot(now, self.prefix, self.columns, rows)
        return cached

    def instances(self) -> Sequence[Oid]:
        return self._snapshot().instances

    def rows(self) -> Mapping[Oid, Mapping[int, Raw | Value]]:
        return self._snapshot().rows

    def get(self, oid: Oid) -> Value | None:
        n = len(self.prefix)
        if len(oid) < n + 2 or oid[n] not in self.columns:
            return None
        row = self._snapshot().rows.get(oid[n + 1 :])
        if row is None or oid[n] not in row:
            return None
        return make_value(self.columns[oid[n]], row[oid[n]])

    def bindings_after(
        self, oid: Oid, readable: Callable[[Oid], bool] | None = None
    ) -> Iterator[VarBind]:
        """The instances after ``oid`` with their values, in order (see
        :meth:`MibRegistry.walk`); one snapshot for the whole walk."""
        snap = self._snapshot()
        instances, cells, types, memo = snap.instances, snap.cells, snap.types, snap.memo
        for k in range(bisect.bisect_right(instances, oid), len(instances)):
            if readable is not None and not readable(instances[k]):
                continue
            row, col = cells[k]
            if col not in row:
                continue
            raw = row[col]
            made = memo[k]
            if made is not None and made[0] is raw:
                yield made[1]
                continue
            vb = VarBind(instances[k], make_value(types[k], raw))
            memo[k] = (raw, vb)
            yield vb

    def check_set(self, oid: Oid, value: Value) -> None:
        raise SetError(ErrorStatus.NOT_WRITABLE)

    def set(self, oid: Oid, value: Value) -> None:
        raise SetError(ErrorStatus.NOT_WRITABLE)


class MibRegistry:
    """Every subtree the device serves, in OID order."""

    def __init__(self) -> None:
        self._prefixes: list[Oid] = []
        self._nodes: list[MibNode] = []

    def register(self, node: MibNode) -> MibNode:
        prefix = node.prefix
        i = bisect.bisect_left(self._prefixes, prefix)
        for neighbour in self._prefixes[max(0, i - 1) : i + 1]:
            short, long_ = sorted((neighbour, prefix), key=len)
            if long_[: len(short)] == short:
                raise LocalProtocolError(f"subtree {prefix} overlaps {neighbour}")
        self._prefixes.insert(i, prefix)
        self._nodes.insert(i, node)
        return node

    def scalar(
        self,
        oid: Oid,
        vtype: ValueType,
        getter: Getter,
        setter: Setter | None = None,
        validate: Validator | None = None,
    ) -> Scalar:
        node = Scalar(oid, vtype, getter, setter, validate)
        self.register(node)
        return node

    def table(
        self,
        entry: Oid,
        columns: Mapping[int, ValueType],
        rows: Callable[[], Mapping[Oid, Mapping[int, Raw | Value]]],
        *,
        cache_for: float = 1.0,
    ) -> Table:
        node = Table(entry, columns, rows, cache_for=cache_for)
        self.register(node)
        return node

    def find(self, oid: Oid) -> MibNode | None:
        """The node whose subtree holds ``oid``."""
        i = bisect.bisect_right(self._prefixes, oid) - 1
        if i >= 0 and oid[: len(self._prefixes[i])] == self._prefixes[i]:
            return self._nodes[i]
        return None

    def get(self, oid: Oid) -> Value:
        """The value, or noSuchObject / noSuchInstance (RFC 3416 section 4.2.1)."""
        node = self.find(oid)
        if node is None:
            return Value(ValueType.NO_SUCH_OBJECT)
        value = node.get(oid)
        return Value(ValueType.NO_SUCH_INSTANCE) if value is None else value

    def next(self, oid: Oid) -> tuple[Oid, Value] | None:
        """The first instance after ``oid`` in lexicographic order, or None at the end."""
        vb = next(self.walk(oid), None)
        return None if vb is None else (vb.oid, vb.value)

    def walk(self, oid: Oid, view: Sequence[Oid] | None = None) -> Iterator[VarBind]:
        """Every instance after ``oid`` that has a value, in lexicographic order, as
        bindings: what repeated :meth:`next` calls give, found with one search.

        With ``view`` (OID subtrees), only the instances inside one of them: a node whose
        subtree lies inside the view is read without a check per instance, and a node
        outside it is not read at all. A table is read from one snapshot for the whole walk.
        """
        start = max(0, bisect.bisect_right(self._prefixes, oid) - 1)
        for node in itertools.islice(self._nodes, start, None):
            readable: Callable[[Oid], bool] | None = None
            if view is not None:
                coverage = _coverage(node.prefix, view)
                if coverage is _NONE:
                    continue
                if coverage is _SOME:
                    readable = _Within(view)
            if type(node) is Table:  # a subclass may answer get() its own way
                yield from node.bindings_after(oid, readable)
                continue
            instances = node.instances()
            j = bisect.bisect_right(instances, oid)
            for instance in itertools.islice(instances, j, None):
                if readable is not None and not readable(instance):
                    continue
                value = node.get(instance)
                if value is not None:
                    yield VarBind(instance, value)


_ALL, _SOME, _NONE = "all", "some", "none"


def _coverage(prefix: Oid, view: Sequence[Oid]) -> str:
    """Whether the subtree ``prefix`` lies inside ``view``, partly, or not at all."""
    if any(prefix[: len(s)] == s for s in view):
        return _ALL
    if any(s[: len(prefix)] == prefix for s in view):
        return _SOME
    return _NONE


class _Within:
    """Is an OID inside one of these subtrees?"""

    __slots__ = ("_subtrees",)

    def __init__(self, subtrees: Sequence[Oid]) -> None:
        self._subtrees = subtrees

    def __call__(self, oid: Oid) -> bool:
        return any(oid[: len(s)] == s for s in self._subtrees)


# -- validators --------------------------------------------------------------------------------


def display_string(max_length: int = 255) -> Validator:
    """DisplayString (RFC 2579): NVT ASCII, at most ``max_length`` octets."""

    def check(value: Value) -> None:
        data = value.value
        assert isinstance(data, bytes)
        if len(data) > max_length:
            raise SetError(ErrorStatus.WRONG_LENGTH, f"at most {max_length} octets")
        if any(b > 126 or (b < 32 and b not in (9, 10, 13)) for b in data):
            raise SetError(ErrorStatus.WRONG_VALUE, "a DisplayString is printable ASCII")

    return check


# -- IF-MIB from /sys/class/net ----------------------------------------------------------------

IF_COLUMNS: dict[int, ValueType] = {
    1: ValueType.INTEGER,  # ifIndex
    2: ValueType.OCTET_STRING,  # ifDescr
    3: ValueType.INTEGER,  # ifType
    4: ValueType.INTEGER,  # ifMtu
    5: ValueType.GAUGE32,  # ifSpeed
    6: ValueType.OCTET_STRING,  # ifPhysAddress
    7: ValueType.INTEGER,  # ifAdminStatus
    8: ValueType.INTEGER,  # ifOperStatus
    9: ValueType.TIMETICKS,  # ifLastChange
    10: ValueType.COUNTER32,  # ifInOctets
    11: ValueType.COUNTER32,  # ifInUcastPkts
    13: ValueType.COUNTER32,  # ifInDiscards
    14: ValueType.COUNTER32,  # ifInErrors
    16: ValueType.COUNTER32,  # ifOutOctets
    17: ValueType.COUNTER32,  # ifOutUcastPkts
    19: ValueType.COUNTER32,  # ifOutDiscards
    20: ValueType.COUNTER32,  # ifOutErrors
}
_OPER = {"up": 1, "down": 2, "testing": 3, "unknown": 4, "dormant": 5, "notpresent": 6}
_OPER["lowerlayerdown"] = 7
_ARPHRD_TO_IFTYPE = {1: 6, 772: 24, 768: 131, 776: 131, 65534: 1}  # ether, loopback, tunnels
_STATS = {10: "rx_bytes", 11: "rx_packets", 13: "rx_dropped", 14: "rx_errors"}
_STATS |= {16: "tx_bytes", 17: "tx_packets", 19: "tx_dropped", 20: "tx_errors"}
_IFF_UP = 0x1


def _read(path: Path, default: str = "") -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return default


def _int(text: str, default: int = 0) -> int:
    try:
        return int(text, 0)
    except ValueError:
        return default


def read_interfaces(root: Path = Path("/sys/class/net")) -> dict[Oid, dict[int, Raw]]:
    """ifTable rows by (ifIndex,), read from sysfs; missing files read as zero."""
    rows: dict[Oid, dict[int, Raw]] = {}
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return rows
    for name in names:
        d = root / name
        index = _int(_read(d / "ifindex"))
        if index <= 0 or index > 2**31 - 1:
            continue
        mac = _read(d / "address")
        try:
            phys = bytes.fromhex(mac.replace(":", "")) if mac else b""
        except ValueError:
            phys = b""
        speed = _int(_read(d / "speed"), 0)
        row: dict[int, Raw] = {
            1: index,
            2: name,
            3: _ARPHRD_TO_IFTYPE.get(_int(_read(d / "type")), 1),
            4: max(0, min(_int(_read(d / "mtu")), 2**31 - 1)),
            5: min(max(speed, 0) * 1_000_000, 2**32 - 1),
            6: phys,
            7: 1 if _int(_read(d / "flags")) & _IFF_UP else 2,
            8: _OPER.get(_read(d / "operstate", "unknown"), 4),
            9: 0,
        }
        for col, stat in _STATS.items():
            row[col] = _int(_read(d / "statistics" / stat)) % 2**32
        rows[(index,)] = row
    return rows


def register_interfaces(registry: MibRegistry, root: Path = Path("/sys/class/net")) -> None:
    """IF-MIB ifNumber and ifTable (RFC 2863), read-only, from the host."""
    table = Table(IF_ENTRY, IF_COLUMNS, lambda: read_interfaces(root))
    registry.scalar(IF_NUMBER, ValueType.INTEGER, lambda: len(table.rows()))
    registry.register(table)


def register_ups_ident(
    registry: MibRegistry, manufacturer: str, model: str, software_version: str, agent_version: str
) -> None:
    """upsIdent (RFC 1628): manufacturer, model, UPS and agent software versions (read-only)."""
    for column, text in enumerate((manufacturer, model, software_version, agent_version), 1):
        registry.scalar((*UPS_IDENT, column), ValueType.OCTET_STRING, _constant(text))


def _constant(value: Raw) -> Getter:
    return lambda: value


def default_sys_descr() -> str:
    u = platform.uname()
    return f"{u.system} {u.node} {u.release} {u.version} {u.machine}"[:255]


def default_sys_name() -> str:
    return socket.gethostname()[:255]
