"""The tables of the SQL store (SQLAlchemy Core), written to be portable.

Types are the generic ones (``JSON``, ``Double`` ...) that SQLite and PostgreSQL both map;
``metadata.create_all`` makes whatever table is missing, so a table added later (jobs)
appears in an existing database at the next start.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

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
    sqlite_autoincrement=True,
)
