"""The connection: opening, configuring and migrating the database, one write
transaction at a time, and the one mapping from database errors to the reader's words."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from pydantic import ValidationError

from tutor.errors import StoreError
from tutor.store.schema import (
    _REPAIRS,
    CORE_TABLES,
    KNOWN_MIGRATIONS,
    MIGRATION_SET,
    MIGRATIONS_TABLE,
    SCHEMA_VERSION,
    _statements,
    migrations,
)

if TYPE_CHECKING:
    from sqlite_utils import Database

BUSY_TIMEOUT_MS = 5000
ROLES = ("reader", "tutor", "system")
STATUSES = ("active", "finished")
FEEDBACK_SOURCES = ("model", "reader", "rules")  # rules: the tutor on its own instructions, not the explainer
TRANSCRIPT_FORMAT = "tutor-transcript"
TRANSCRIPT_VERSION = 1


def now_iso() -> str:
    """UTC timestamps as ISO 8601 text with microseconds: sortable as plain strings."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def normalise_path(path: str | Path) -> str:
    """Sessions are found again by explainer path, so store one absolute spelling of it."""
    try:
        return str(Path(path).expanduser().resolve())
    except (OSError, RuntimeError):
        return str(Path(path).absolute())


def section_hash(text: str) -> str:
    """A section's identity across versions: whitespace at line ends and blank lines around ignored."""
    norm = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


def _utf8(text: str | None) -> str | None:
    """SQLite stores UTF-8, and text from a model or a paste can hold lone surrogates
    (valid in JSON, not in UTF-8); they become U+FFFD instead of failing the write."""
    from tutor.text import utf8_text

    return None if text is None else utf8_text(text)


_DAMAGED_HINT = "Restore it from a backup, or move it aside (mv {q} {q}.damaged) and tutor starts a new one."


def db_error(path: str | Path, e: BaseException) -> StoreError:
    """The one mapping from a sqlite3 or OS error on the session database to the words the
    reader sees: what is wrong with which file, and what to do (docs/database.md, "Damaged
    databases"). Every Store method and every command goes through it, so the wording of a
    database problem lives here and nowhere else."""
    import shlex

    path = Path(path)
    q = shlex.quote(str(path))
    if isinstance(e, StoreError):
        return e
    if isinstance(e, OSError) and not isinstance(e, sqlite3.Error):
        if e.errno == errno.ENAMETOOLONG:
            return StoreError(f"{str(path)[:60]}…: the path is too long ({len(os.fsencode(str(path)))} bytes)",
                              hint="Choose a shorter path with --db or TUTOR_HOME.")
        if e.errno == errno.ENOSPC:
            return StoreError(f"{path}: the disk is full", hint="Free some space and try again; nothing saved before was lost.")
        return StoreError(f"{path}: cannot use the database ({e.strerror or e})",
                          hint="Check the path, and that tutor may read and write it and its folder.")
    msg = str(e)
    low = msg.lower()
    if "locked" in low or "busy" in low:
        return StoreError(
            f"{path}: the database stayed busy for {BUSY_TIMEOUT_MS // 1000} s "
            "(another tutor or another program is using it)",
            hint="Close the other program (or wait for it) and try again; nothing saved before was lost.",
        )
    if "readonly" in low or "read-only" in low:
        if path.exists() and not os.access(path, os.W_OK):
            return StoreError(f"{path}: the database file is read-only, so tutor cannot save to it",
                              hint=f"Make it writable (chmod u+w {q}), or use --db to pick another database.")
        if not os.access(path.parent, os.W_OK):
            return StoreError(
                f"{path}: its folder is read-only, and SQLite must create {path.name}-wal and {path.name}-shm beside it",
                hint="Make the folder writable, or copy the database to a writable folder and use --db.")
        return StoreError(f"{path}: the database is read-only ({msg})",
                          hint="Check that tutor may write to the file and its folder, or use --db.")
    if "disk is full" in low or "database or disk is full" in low:
        return StoreError(f"{path}: the disk is full; the last change was not saved",
                          hint="Free some space and try again; everything saved before is kept.")
    if "disk i/o error" in low:
        return StoreError(
            f"{path}: reading or writing the database failed (disk I/O error: the disk may be full or failing)",
            hint="Free some space or check the disk, then try again; everything saved before is kept.")
    m = re.search(r"no such (table|column): (?:\w+\.)*(\S+)", msg)  # main.x, or a query alias s.x
    if m and m.group(2).startswith("messages_fts"):
        return StoreError(f"{path}: the search index is missing and the database is read-only, so it was not rebuilt",
                          hint="Make the database writable and run tutor once more: it rebuilds the index itself.")
    if m:
        return StoreError(f"{path}: the database is damaged ({m.group(1)} {m.group(2)} is missing)",
                          hint=_DAMAGED_HINT.format(q=q))
    if "not a database" in low or "malformed" in low or "encrypted" in low:
        return StoreError(f"{path}: is not a tutor database, or it is damaged ({msg})",
                          hint="Point --db at another file; this one was left untouched.")
    if "could not decode" in low:
        return StoreError(f"{path}: the database is damaged (text that is not UTF-8: {msg})",
                          hint=_DAMAGED_HINT.format(q=q))
    if "unable to open" in low:
        return StoreError(f"{path}: cannot open the database ({msg})",
                          hint="Check that the folder exists and that tutor may read and write it.")
    return StoreError(f"{path}: cannot use the database ({msg})", hint=_DAMAGED_HINT.format(q=q))


def _damaged_row(path: Path, table: str, row: Mapping[str, Any], e: Exception) -> StoreError:
    """A row whose values do not fit its columns (text in a number column, a blob, a NULL):
    name the row and say how to get rid of it."""
    if isinstance(e, ValidationError):
        err = e.errors()[0]
        field = ".".join(str(x) for x in err.get("loc", ())) or "?"
        what = f"{field}: {str(err.get('msg', 'invalid')).split(',')[0].lower()}, found {str(err.get('input'))[:30]!r}"
    else:
        what = str(e)[:80]
    sid = row.get("session_id") if table != "sessions" else row.get("id")
    key = row.get("id") or row.get("hash") or row.get("concept_id") or "?"
    if isinstance(key, str) and len(key) >= 32:
        key = key[:8]
    hint = (f"Remove that session (tutor sessions rm {str(sid)[:8]}), fix the row with sqlite3, or restore a backup."
            if sid else "Fix the row with sqlite3, or restore a backup.")
    return StoreError(f"{path}: {table} row {key} is damaged ({what})", hint=hint + " Nothing was changed.")


def _row_dict(cursor: sqlite3.Cursor, row: tuple) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row)}


class Connection:
    """One connection to the session database. Safe to share between threads (one lock).
    The query classes (messages, sessions, authoring) build on it; ``Store`` is all of them."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path
        self._db: Database | None = None
        self._lock = threading.RLock()
        self.notices: list[str] = []  # one quiet line per repair made at open (the search index rebuilt)
        self.skipped: list[str] = []  # damaged rows a listing left out, one line each

    @property
    def db(self) -> Database:
        """A sqlite-utils view of the same connection (for migrations and ad-hoc use)."""
        if self._db is None:
            from sqlite_utils import Database

            self._db = Database(self.conn, execute_plugins=False)
        return self._db

    # -- opening --------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True) -> Self:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date.

        Raises StoreError, never a raw sqlite3 error: a file that is not a database, a
        database from a newer tutor, or a folder we cannot write to are user problems.
        """
        path = Path(path).expanduser()
        try:
            return cls._open(path, create)
        except (OSError, sqlite3.Error) as e:  # a path too long, a folder we may not enter, ...
            raise db_error(path, e) from None

    @classmethod
    def _open(cls, path: Path, create: bool) -> Self:
        if path.is_dir():
            raise StoreError(
                f"{path}: is a folder, not a database file",
                hint="Give a file path to --db, e.g. --db sessions/tutor.db.",
            )
        if path.exists() and not path.is_file():
            # /dev/zero or a FIFO: SQLite says only "disk I/O error" (or waits on the pipe)
            raise StoreError(
                f"{path}: not a regular file (a device, pipe or socket), so not a database",
                hint="Give --db the path of a database file, e.g. --db sessions/tutor.db.",
            )
        if not path.exists():
            if not create:
                raise StoreError(f"{path}: no tutor database here yet")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"{path.parent}: cannot create the data folder ({e.strerror or e})") from None
        try:
            conn = sqlite3.connect(
                str(path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
                check_same_thread=False,
            )
        except sqlite3.Error as e:
            raise db_error(path, e) from None
        store = cls(conn, path)
        try:
            store._configure()
            store._migrate()
            store._check_schema()
            store._opened()
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as e:
            conn.close()
            raise db_error(path, e) from None
        return store

    def _configure(self) -> None:
        c = self.conn
        c.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        c.execute("PRAGMA foreign_keys = ON")
        # Switching to WAL needs a moment alone with the file; another process that is
        # opening the same new file at the same moment makes it return "locked".
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000  # another program holding the file
        for attempt in range(50):
            if time.monotonic() > deadline:
                raise self._busy_error(sqlite3.OperationalError("database is locked"))
            try:
                mode = c.execute("PRAGMA journal_mode").fetchone()[0]
                if mode.lower() != "wal":
                    mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
                time.sleep(0.02 * (attempt + 1))
        else:
            raise self._busy_error(sqlite3.OperationalError("database is locked"))
        if mode.lower() != "wal":  # e.g. a read-only folder: WAL needs to create -wal/-shm files
            raise StoreError(
                f"{self.path}: cannot switch the database to WAL mode (journal mode stays {mode!r})",
                hint="Check that tutor may write to the file and its folder.",
            )
        c.execute("PRAGMA synchronous = FULL")

    def _migrate(self) -> None:
        """Apply pending migrations under a write lock so two processes never race."""
        self._check_not_newer()
        if self._applied_migrations() == KNOWN_MIGRATIONS and self._user_version() == SCHEMA_VERSION:
            return
        with self._write():
            self._check_not_newer()
            migrations().apply(self.db)

    def _applied_migrations(self) -> list[str]:
        """Names of the steps recorded in the database, in the order they ran."""
        has_table = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (MIGRATIONS_TABLE,)
        ).fetchone()
        if not has_table:
            return []
        rows = self.conn.execute(
            f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = ? ORDER BY rowid", (MIGRATION_SET,)
        )
        return [r[0] for r in rows]

    def _user_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _check_not_newer(self) -> None:
        applied = self._applied_migrations()
        unknown = [name for name in applied if name not in KNOWN_MIGRATIONS]
        version = self._user_version()
        if unknown or version > SCHEMA_VERSION:
            what = f"schema step {unknown[0]!r}" if unknown else f"schema version {version}"
            raise StoreError(
                f"{self.path}: this database was written by a newer tutor ({what}; "
                f"this tutor knows up to version {SCHEMA_VERSION})",
                hint="Upgrade tutor, or use --db to pick another database. The file was not changed.",
            )
        if not applied and version == 0:
            tables = {
                r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if tables:
                raise StoreError(
                    f"{self.path}: is an SQLite database, but not a tutor one "
                    f"(it has tables: {', '.join(sorted(tables)[:5])})",
                    hint="Point --db at another file; this one was left untouched.",
                )

    def _check_schema(self) -> None:
        """One look at sqlite_master after the migrations: a missing core table is a clear
        StoreError (nothing is touched); a missing search index, trigger or index is rebuilt
        here, from the rows themselves, so nothing is lost (docs/database.md, "Damaged
        databases"). On a read-only file the repair is skipped; reads still work."""
        present = {(r[0], r[1]) for r in self.conn.execute("SELECT type, name FROM sqlite_master")}
        missing_tables = [t for t in CORE_TABLES if ("table", t) not in present]
        if missing_tables:
            raise db_error(self.path, sqlite3.OperationalError(f"no such table: {missing_tables[0]}"))
        todo = [name for kind, name, _ in _REPAIRS if (kind, name) not in present]
        if not todo:
            return
        try:
            with self._write() as c:
                present = {(r[0], r[1]) for r in c.execute("SELECT type, name FROM sqlite_master")}
                done = []
                for kind, name, sql in _REPAIRS:
                    if (kind, name) not in present:
                        for q in _statements(sql):
                            c.execute(q)
                        present |= {(k, n) for k, n, sq in _REPAIRS if sq == sql}
                        done.append(name)
        except StoreError:
            return  # read-only or busy: use it as it is; a search then says what is missing
        if any(n.startswith("messages_fts") for n in done):
            n = self.conn.execute("SELECT count(*) FROM messages").fetchone()[0]
            self.notices.append(f"{self.path}: the search index was missing; rebuilt it from {n} messages.")

    def _opened(self) -> None:
        """Work due once the schema is right (``MessageQueries`` folds replies cut by a kill)."""

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self._user_version()

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE takes the write lock up front (waiting
        up to busy_timeout), so we never hit SQLITE_BUSY halfway through; COMMIT on exit."""
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise self._busy_error(e) from None
            try:
                yield self.conn
            except BaseException as e:
                self._rollback()
                if isinstance(e, sqlite3.Error):  # read-only, disk full, a table gone, ...
                    raise db_error(self.path, e) from None
                raise
            else:
                try:
                    self.conn.execute("COMMIT")
                except sqlite3.Error as e:
                    self._rollback()
                    raise db_error(self.path, e) from None

    def _rollback(self) -> None:
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except sqlite3.Error:  # a full disk can refuse even this; SQLite rolls back on close
            pass

    def _busy_error(self, e: sqlite3.Error) -> StoreError:
        return db_error(self.path, e)

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                cur = self.conn.execute(sql, tuple(params))
                return [_row_dict(cur, r) for r in cur.fetchall()]
            except sqlite3.Error as e:
                raise db_error(self.path, e) from None

    def _rows(self, model: type[Any], rows: Iterable[Mapping[str, Any]], table: str, *, skip: bool = False) -> list[Any]:
        """Rows into models. A row whose values do not fit (text in a number column, a blob,
        a NULL) is a StoreError naming it; with ``skip`` (listings) it is left out and named
        in ``self.skipped``, so one damaged session does not hide all the others."""
        out = []
        for r in rows:
            try:
                out.append(model(**r))
            except (ValidationError, TypeError, ValueError) as e:
                err = _damaged_row(self.path, table, r, e)
                if not skip:
                    raise err from None
                self.skipped.append(err.message)
        return out

    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        rows = self._query(sql, params)
        return rows[0] if rows else None

