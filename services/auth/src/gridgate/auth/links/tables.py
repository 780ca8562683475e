"""The auth service's own table: one row per user, VO and group linked to DiracX."""

from __future__ import annotations

from sqlalchemy import Column, Float, MetaData, PrimaryKeyConstraint, String, Table, Text

metadata = MetaData()

diracx_links = Table(
    "diracx_links",
    metadata,
    Column("sub", String(255), nullable=False),
    Column("vo", String(64), nullable=False),
    Column("group_name", String(64), nullable=False),
    # linked | revoked | expired; a row with only a pending login is "pending"
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("diracx_user", String(255), nullable=True),
    # Fernet tokens (TokenBox); never a token in clear
    Column("sealed_refresh", Text, nullable=True),
    Column("refresh_expires_at", Float, nullable=True),
    Column("sealed_access", Text, nullable=True),
    Column("access_expires_at", Float, nullable=True),
    # a device login under way: its sealed device code and when DiracX forgets it
    Column("sealed_device_code", Text, nullable=True),
    Column("user_code", String(64), nullable=True),
    Column("verification_uri", Text, nullable=True),
    Column("device_expires_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
    PrimaryKeyConstraint("sub", "vo", "group_name"),
)
