"""The tables of the SQL store (SQLAlchemy Core), written to be portable.

Types are the generic ones (``JSON``, ``Double`` ...) that SQLite and PostgreSQL both map;
``metadata.create_all`` makes whatever table is missing, so a table added later (jobs)
appears in an existing database at the next start. A column added later to an existing
table must be nullable: :func:`add_missing_columns` adds it to a database made before it
(``ALTER TABLE ... ADD COLUMN``, which SQLite and PostgreSQL both do without a copy); an
index added later is made by :func:`add_missing_indexes`.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    inspect,
    text,
)
from sqlalchemy.schema import CreateColumn

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Ids of append-only logs: 64 bits on PostgreSQL, the rowid on SQLite (where
# AUTOINCREMENT keeps ids from being reused, so paging by id stays sound).
_LogId = BigInteger().with_variant(Integer(), "sqlite")

devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("fingerprint", String, nullable=False, unique=True),
    Column("key_type", String, nullable=False),
    Column("name", String, unique=True),
    Column("status", String(16), nullable=False),
    Column("status_since", Double, nullable=False),
    Column("address", String),
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("orientation", String),
    Column("capabilities", JSON, nullable=False),
    Column("credential", String),
    # the call-home schedule as learned (added later: nullable, see add_missing_columns)
    Column("schedule_kind", String(16)),
    Column("schedule_since", Double),
    Column("schedule_period", Double),
    Column("schedule_anchor", Double),
    Column("schedule_idle_timeout", Double),
    # the pending devices, least recently seen first (the cap on pending devices)
    Index(None, "status", "last_seen"),
)

events = Table(
    "events",
    metadata,
    Column("id", _LogId, primary_key=True),
    Column("time", Double, nullable=False),
    Column("kind", String, nullable=False),
    Column("device", String),
    Column("fingerprint", String),
    Column("detail", JSON, nullable=False),
    Index(None, "device", "id"),
    Index(None, "time"),  # retention by age
    sqlite_autoincrement=True,
)

audit = Table(
    "audit",
    metadata,
    Column("id", _LogId, primary_key=True),
    Column("time", Double, nullable=False),
    Column("actor", String, nullable=False),
    Column("action", String, nullable=False),
    Column("target", String),
    Column("detail", JSON, nullable=False),
    Index(None, "time"),  # retention by age
    sqlite_autoincrement=True,
)


def add_missing_columns(conn: Connection) -> list[str]:
    """Add to existing tables the columns of ``metadata`` they lack; their names.

    Run after ``metadata.create_all``. A missing column that is not nullable cannot be added
    to rows already there: that is a programming error (RuntimeError).
    """
    found = inspect(conn)
    added: list[str] = []
    for table in metadata.sorted_tables:
        if not found.has_table(table.name):
            continue
        present = {c["name"] for c in found.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable or column.primary_key:
                raise RuntimeError(f"column {table.name}.{column.name} must be nullable")
            ddl = CreateColumn(column).compile(dialect=conn.dialect)
            name = conn.dialect.identifier_preparer.format_table(table)
            conn.execute(text(f"ALTER TABLE {name} ADD COLUMN {ddl}"))
            added.append(f"{table.name}.{column.name}")
    return added


def add_missing_indexes(conn: Connection) -> list[str]:
    """Make the indexes of ``metadata`` that existing tables lack (``CREATE INDEX``); their
    names. Run after ``metadata.create_all``, which makes a table's indexes only with it."""
    found = inspect(conn)
    added: list[str] = []
    for table in metadata.sorted_tables:
        if not found.has_table(table.name):
            continue
        present = {i["name"] for i in found.get_indexes(table.name)}
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            if index.name not in present:
                index.create(conn)
                added.append(str(index.name))
    return added
