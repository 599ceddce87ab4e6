"""SQLite persistence for everything the sandbox serves, plus the append-only request log.

Every call happens on the server's event-loop thread, so one connection without locking is enough.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    key TEXT PRIMARY KEY, name TEXT NOT NULL, workspace TEXT NOT NULL,
    permissions TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scim_tokens (
    token TEXT PRIMARY KEY, name TEXT NOT NULL, company TEXT NOT NULL, origin TEXT);
CREATE TABLE IF NOT EXISTS catalogs (
    workspace TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
    fields TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (workspace, name));
CREATE TABLE IF NOT EXISTS catalog_items (
    pk INTEGER PRIMARY KEY, workspace TEXT NOT NULL, catalog TEXT NOT NULL,
    item_id TEXT NOT NULL, data TEXT NOT NULL, UNIQUE (workspace, catalog, item_id));
CREATE TABLE IF NOT EXISTS catalog_selections (
    workspace TEXT NOT NULL, catalog TEXT NOT NULL, name TEXT NOT NULL, definition TEXT NOT NULL,
    created_at TEXT NOT NULL, PRIMARY KEY (workspace, catalog, name));
CREATE TABLE IF NOT EXISTS catalog_inventory (
    workspace TEXT NOT NULL, catalog TEXT NOT NULL, inventory TEXT NOT NULL,
    PRIMARY KEY (workspace, catalog));
CREATE TABLE IF NOT EXISTS tags (workspace TEXT NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (workspace, name));
CREATE TABLE IF NOT EXISTS email_templates (
    id TEXT PRIMARY KEY, workspace TEXT NOT NULL, template_name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '', subject TEXT NOT NULL, body TEXT NOT NULL,
    plaintext_body TEXT, preheader TEXT, tags TEXT NOT NULL, should_inline_css INTEGER,
    editor TEXT NOT NULL DEFAULT 'html', created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS content_blocks (
    id TEXT PRIMARY KEY, workspace TEXT NOT NULL, name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '', content TEXT NOT NULL, content_type TEXT NOT NULL,
    state TEXT NOT NULL, tags TEXT NOT NULL, inclusion_data TEXT NOT NULL DEFAULT '[]',
    editor TEXT NOT NULL DEFAULT 'html', deleted INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS preference_centers (
    id TEXT PRIMARY KEY, workspace TEXT NOT NULL, name TEXT NOT NULL, title TEXT NOT NULL,
    page_html TEXT NOT NULL, confirmation_html TEXT NOT NULL, redirect_html TEXT,
    options TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scim_users (
    id TEXT PRIMARY KEY, company TEXT NOT NULL, user_name TEXT NOT NULL,
    given_name TEXT NOT NULL, family_name TEXT NOT NULL, department TEXT NOT NULL,
    permissions TEXT NOT NULL, last_sign_in_at TEXT, created_at TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS translations (
    workspace TEXT NOT NULL, kind TEXT NOT NULL, resource_id TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (workspace, kind, resource_id));
CREATE TABLE IF NOT EXISTS users (
    workspace TEXT NOT NULL, external_id TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (workspace, external_id));
CREATE TABLE IF NOT EXISTS pending_ops (
    id INTEGER PRIMARY KEY, workspace TEXT NOT NULL, catalog TEXT NOT NULL, op TEXT NOT NULL,
    items TEXT NOT NULL, accepted_at REAL NOT NULL, due REAL NOT NULL);
CREATE INDEX IF NOT EXISTS pending_ops_due ON pending_ops (due);
CREATE TABLE IF NOT EXISTS async_results (
    id INTEGER PRIMARY KEY, workspace TEXT NOT NULL, catalog TEXT NOT NULL, op TEXT NOT NULL,
    accepted_at REAL NOT NULL, applied_at REAL NOT NULL, outcome TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS request_log (
    id INTEGER PRIMARY KEY, t REAL NOT NULL, t_end REAL NOT NULL, key_name TEXT,
    workspace TEXT, grp TEXT, method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL,
    item_ids TEXT NOT NULL, item_count INTEGER NOT NULL, counted INTEGER NOT NULL,
    external INTEGER NOT NULL, injected TEXT, window_seconds REAL, algorithm TEXT);
"""

# Tables that hold Braze-side state; a reset empties these (keys and the log are handled apart).
CONTENT_TABLES = (
    "catalogs",
    "catalog_items",
    "catalog_selections",
    "catalog_inventory",
    "tags",
    "email_templates",
    "content_blocks",
    "preference_centers",
    "scim_users",
    "users",
    "translations",
    "pending_ops",
    "async_results",
)


def iso_now() -> str:
    """Braze's catalog style: ``2022-11-02T20:04:06.879+00:00``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def parse_iso(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL keeps WAL durable across process crashes (only an OS crash could lose a commit).
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        # Data directories made before SCIM kept fields it does not know.
        columns = {r["name"] for r in self.q("PRAGMA table_info(scim_users)")}
        if "extra" not in columns:
            self.db.execute("ALTER TABLE scim_users ADD COLUMN extra TEXT NOT NULL DEFAULT '{}'")

    def close(self) -> None:
        self.db.close()

    def q(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self.db.execute(sql, params).fetchall()

    def q1(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute(sql, params).fetchone()
        return row

    def x(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self.db.execute(sql, params)
        return cur.lastrowid or 0

    def xm(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.db.execute("BEGIN")
        try:
            self.db.executemany(sql, rows)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def is_empty(self) -> bool:
        return all(self.q1(f"SELECT 1 FROM {t} LIMIT 1") is None for t in CONTENT_TABLES)  # noqa: S608

    def workspace_is_empty(self, workspace: str) -> bool:
        tables = ("catalogs", "email_templates", "content_blocks", "preference_centers")
        return all(
            self.q1(f"SELECT 1 FROM {t} WHERE workspace=? LIMIT 1", (workspace,)) is None  # noqa: S608
            for t in tables
        )

    def wipe(self, *, keep_log: bool) -> None:
        self.db.execute("BEGIN")
        for table in CONTENT_TABLES:
            self.db.execute(f"DELETE FROM {table}")  # noqa: S608
        self.db.execute("DELETE FROM api_keys")
        self.db.execute("DELETE FROM scim_tokens")
        if not keep_log:
            self.db.execute("DELETE FROM request_log")
        self.db.execute("COMMIT")

    # --- small typed helpers used by several modules -------------------------------------

    def workspace_tags(self, workspace: str) -> set[str]:
        return {r["name"] for r in self.q("SELECT name FROM tags WHERE workspace=?", (workspace,))}

    def add_tags(self, workspace: str, names: Iterable[str]) -> None:
        for name in names:
            self.x("INSERT OR IGNORE INTO tags (workspace, name) VALUES (?, ?)", (workspace, name))

    def add_key(self, key: str, name: str, workspace: str, permissions: list[str]) -> None:
        self.x(
            "INSERT OR REPLACE INTO api_keys VALUES (?, ?, ?, ?, ?)",
            (key, name, workspace, json.dumps(permissions), iso_now()),
        )

    def add_scim_token(self, token: str, name: str, company: str, origin: str | None) -> None:
        self.x(
            "INSERT OR REPLACE INTO scim_tokens VALUES (?, ?, ?, ?)", (token, name, company, origin)
        )
