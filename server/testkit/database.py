"""A stack's own throw-away database: a fresh PostgreSQL database on the server DATABASE_URL
names (dropped afterwards), or SQLite inside the stack's data dir."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql", "psql")


def is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in POSTGRES_SCHEMES


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def pg_connect(url: str) -> Any:
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username,
        password=parts.password,
        dbname=parts.path.lstrip("/") or "postgres",
        autocommit=True,
    )


@dataclass
class ThrowawayDatabase:
    url: str
    admin_url: str | None = None  # set for PostgreSQL: where to CREATE/DROP from
    name: str | None = None

    def __repr__(self) -> str:  # the URL may hold a password
        return f"ThrowawayDatabase({self.name or 'sqlite'!r})"

    @classmethod
    def create(
        cls, data_dir: Path, base_url: str = "", prefix: str = "e2ee_live_"
    ) -> ThrowawayDatabase:
        if not is_postgres(base_url):
            return cls(url=f"sqlite:///{data_dir / 'db.sqlite3'}")
        name = prefix + secrets.token_hex(6)
        admin_url = with_database(base_url, "postgres")
        with pg_connect(admin_url) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return cls(url=with_database(base_url, name), admin_url=admin_url, name=name)

    @property
    def is_postgres(self) -> bool:
        return is_postgres(self.url)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read query against the stack's database (placeholders: %s)."""
        if is_postgres(self.url):
            with pg_connect(self.url) as conn:
                return list(conn.execute(sql, params).fetchall())
        conn = sqlite3.connect(self.url.removeprefix("sqlite:///"))
        try:
            return list(conn.execute(sql.replace("%s", "?"), params).fetchall())
        finally:
            conn.close()

    def drop(self) -> None:
        if self.admin_url is None:
            return
        with pg_connect(self.admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
