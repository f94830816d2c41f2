"""Where run logs live: one SQLite file for all runs, safe for many processes at once.

WAL mode lets readers (`codeact runs`, `codeact show`) read while runs write, and every write is
a committed transaction (`append_many` writes a batch of events in one), so a process killed
with SIGKILL loses nothing it had written.
`synchronous=NORMAL` keeps commits cheap (tens of microseconds); under WAL it is durable across
process crashes, and only an OS crash or power loss can drop the last commits.

Any text can be stored: SQLite wants UTF-8, so a lone surrogate (`os.fsdecode(b"caf\\xe9")`
printed by model code) is written as its `\\udce9` escape; inside an event's JSON that is the
JSON escape for the same character, so events read back exactly. `limits` caps what each run's
log keeps (see `LogLimits`).

The default file is `$CODEACT_HOME/runs.db` when that variable is set (tests and CI set it),
else `runs.db` in the user's data directory (platformdirs). A path or `sqlite:///path` URL
picks another file; `:memory:` keeps the log in this process only.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeact.errors import ConfigError, RunLogError
from codeact.runs.codec import decode_value, event_from_dict
from codeact.runs.events import Event
from codeact.runs.limits import LogLimits

__all__ = ["RunRecord", "RunStore", "default_store_path", "open_store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    task TEXT NOT NULL,
    agent TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    steps INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL,
    output TEXT,
    error TEXT,
    pid INTEGER,
    host TEXT,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    step INTEGER,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""
_RUN_COLUMNS = ("status", "steps", "prompt_tokens", "completion_tokens", "cost", "output", "error",
                "pid", "host", "meta", "model", "updated")


def default_store_path() -> Path:
    """`$CODEACT_HOME/runs.db`, else `runs.db` in the user's data directory."""
    home = os.environ.get("CODEACT_HOME")
    if home:
        return Path(home).expanduser() / "runs.db"
    import platformdirs

    return Path(platformdirs.user_data_dir("codeact", appauthor=False)) / "runs.db"


@dataclass(frozen=True)
class RunRecord:
    """One run's summary row, kept up to date as its events are written."""

    id: str
    task: str
    agent: str
    model: str
    status: str
    """The run's status; "running" while a process is writing it (see `state`)."""
    steps: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    created: float
    updated: float
    output: Any = None
    error: str | None = None
    pid: int | None = None
    host: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def writer_alive(self) -> bool:
        """Whether the process that writes this run still exists (only knowable on its host)."""
        if self.host != socket.gethostname():
            return True  # another machine's process: we cannot tell, so assume it lives
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @property
    def state(self) -> str:
        """`status`, except that a "running" run whose process is gone reads "crashed"."""
        if self.status == "running" and not self.writer_alive:
            return "crashed"
        return self.status


class RunStore:
    """The SQLite file that holds every run's events. Thread-safe; many processes may share it.

    Args:
        location: a path, a `sqlite:///path` URL, or ":memory:"; None for the default file.
        limits: what a run's log keeps at most (per value, text, step and run).
    """

    def __init__(self, location: str | Path | None = None, *, limits: LogLimits | None = None) -> None:
        self.path = _resolve(location)
        self.limits = limits or LogLimits()
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 30000")
            _retry_while_busy(self._set_up, seconds=30.0)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot open the run log at {self.path}: {exc}; pick another file with store=... "
                "(--store on the command line) or set CODEACT_HOME"
            ) from exc
        self._lock = threading.Lock()

    def _set_up(self) -> None:
        if self.path != ":memory:":
            # Switching to WAL takes an exclusive lock and does not wait for one (SQLite answers
            # "database is locked" at once), so it is done only by the first opener of a new file.
            if self._db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                self._db.execute("PRAGMA journal_mode = WAL")
            # The WAL is disk the log holds too: checkpoint it at SQLite's default (~4 MB) and
            # truncate it back to that size after, so a busy run cannot make it grow past it.
            self._db.execute("PRAGMA wal_autocheckpoint = 1000")
            self._db.execute(f"PRAGMA journal_size_limit = {4 * 2**20}")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.executescript(_SCHEMA)

    # -- writing -------------------------------------------------------------------------------
    def create_run(self, *, run_id: str, task: str, agent: str, model: str,
                   meta: Mapping[str, Any] | None = None) -> None:
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT INTO runs (id, created, updated, task, agent, model, status, pid, host, meta) "
                "VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                (run_id, now, now, _utf8(task), _utf8(agent), _utf8(model), os.getpid(), socket.gethostname(),
                 json.dumps(dict(meta or {}), default=repr)),
            )

    def append(self, run_id: str, seq: int, kind: str, step: int | None, data: str,
               **summary: Any) -> None:
        """Write one event (JSON text) and update the run's summary columns, atomically."""
        self.append_many(run_id, [(seq, time.time(), kind, step, data)], **summary)

    def append_many(self, run_id: str, rows: Sequence[tuple[int, float, str, int | None, str]],
                    **summary: Any) -> None:
        """Write events (seq, time, kind, step, JSON text) and update the run's summary columns,
        in one transaction: a step's events cost one commit, not one each."""
        unknown = set(summary) - set(_RUN_COLUMNS)
        if unknown:
            raise ConfigError(f"unknown run columns {sorted(unknown)}")
        summary["updated"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in summary)
        with self._write() as db:
            db.executemany("INSERT INTO events (run_id, seq, time, kind, step, data) VALUES (?, ?, ?, ?, ?, ?)",
                           [(run_id, seq, at, kind, step, _utf8(data)) for seq, at, kind, step, data in rows])
            db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*map(_utf8, summary.values()), run_id))

    def update_run(self, run_id: str, **columns: Any) -> None:
        unknown = set(columns) - set(_RUN_COLUMNS)
        if unknown:
            raise ConfigError(f"unknown run columns {sorted(unknown)}")
        columns["updated"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self._write() as db:
            db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*map(_utf8, columns.values()), run_id))

    def delete(self, run_id: str) -> None:
        run_id = self.resolve(run_id)
        with self._write() as db:
            db.execute("DELETE FROM events WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    # -- reading -------------------------------------------------------------------------------
    def resolve(self, run_id: str) -> str:
        """The full id for an id or a unique prefix of one (like git's short hashes)."""
        rows = self._read(
            "SELECT id FROM runs WHERE id = ? OR id LIKE ? ESCAPE '\\' ORDER BY created DESC LIMIT 6",
            (run_id, _like_prefix(run_id)),
        )
        ids = [r[0] for r in rows]
        if run_id in ids:
            return run_id
        if not ids:
            raise ConfigError(f"no run {run_id!r} in {self.path}; `codeact runs` lists the runs there")
        if len(ids) > 1:
            raise ConfigError(f"run id {run_id!r} is ambiguous: it starts {', '.join(ids[:5])}; give more of it")
        return ids[0]

    def get(self, run_id: str) -> RunRecord:
        full = self.resolve(run_id)
        return _record(self._read(f"SELECT {_SELECT} FROM runs WHERE id = ?", (full,))[0])

    def runs(self, *, limit: int | None = 20, status: str | None = None) -> list[RunRecord]:
        """The newest runs first; `status` filters by `RunRecord.state` ("crashed" included)."""
        query = f"SELECT {_SELECT} FROM runs"
        params: list[Any] = []
        if status is not None:
            query += " WHERE status = ?"
            params.append("running" if status == "crashed" else status)
        query += " ORDER BY created DESC"
        if limit is not None and status not in ("running", "crashed"):  # those two filter below
            query += " LIMIT ?"
            params.append(limit)
        rows = self._read(query, params)
        records = [_record(r) for r in rows]
        if status is not None:
            records = [r for r in records if r.state == status]
        return records if limit is None else records[:limit]

    def children(self, run_id: str) -> list[RunRecord]:
        """Runs started by run `run_id` (team members: `parent_run` in their meta), oldest first."""
        full = self.resolve(run_id)
        rows = self._read(f"SELECT {_SELECT} FROM runs WHERE json_extract(meta, '$.parent_run') = ? "
                          "ORDER BY created", (full,))
        return [_record(r) for r in rows]

    def raw_events(self, run_id: str) -> list[dict[str, Any]]:
        """The run's events as the JSON dicts that were written, in order."""
        full = self.resolve(run_id)
        rows = self._read("SELECT data FROM events WHERE run_id = ? ORDER BY seq", (full,))
        try:
            return [json.loads(r[0]) for r in rows]
        except (ValueError, RecursionError) as exc:
            raise RunLogError(f"run {full} in {self.path} has an unreadable event: {exc}") from exc

    def events(self, run_id: str) -> list[Event]:
        """The run's events, typed, in the order they happened."""
        return [event_from_dict(d) for d in self.raw_events(run_id)]

    def last_seq(self, run_id: str) -> int:
        rows = self._read("SELECT max(seq) FROM events WHERE run_id = ?", (run_id,))
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    def _read(self, query: str, params: Sequence[Any]) -> list[Any]:
        try:
            with self._lock:
                return self._db.execute(query, params).fetchall()
        except sqlite3.Error as exc:
            raise RunLogError(f"cannot read the run log at {self.path}: {exc}") from exc

    def _write(self) -> _Transaction:
        return _Transaction(self._db, self._lock)


class _Transaction:
    """`BEGIN IMMEDIATE ... COMMIT` under the store's lock: takes the write lock up front, so
    concurrent writers wait (busy_timeout) instead of failing on a read-to-write upgrade."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db = db
        self._lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._lock.release()
            raise RunLogError(f"cannot write the run log: {exc}") from exc
        except BaseException:
            self._lock.release()
            raise
        return self._db

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            if exc is not None:
                self._rollback()  # SQLite may have rolled back already (disk full)
            else:
                try:
                    self._db.execute("COMMIT")
                except sqlite3.Error as error:
                    self._rollback()
                    raise RunLogError(f"cannot write the run log: {error}") from error
        finally:
            self._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise RunLogError(f"cannot write the run log: {exc}") from exc


    def _rollback(self) -> None:
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the error being reported is the one that matters


def open_store(store: RunStore | str | Path | None | bool = None) -> RunStore | None:
    """Normalise the `store=` argument: a RunStore, a location, None (default file), False (off)."""
    if store is False:
        return None
    if isinstance(store, RunStore):
        return store
    if store is True:
        store = None
    if os.environ.get("CODEACT_RUNS", "").lower() in ("0", "off", "false", "no") and store is None:
        return None
    return RunStore(store)


_SELECT = ("id, task, agent, model, status, steps, prompt_tokens, completion_tokens, cost, created, "
           "updated, output, error, pid, host, meta")


def _record(row: tuple[Any, ...]) -> RunRecord:
    (id_, task, agent, model, status, steps, pt, ct, cost, created, updated, output, error, pid, host,
     meta) = row
    value = decode_value(json.loads(output), allow_pickle=False) if output else None
    return RunRecord(id_, task, agent, model, status, steps, pt, ct, cost, created, updated,
                     value, error, pid, host, json.loads(meta or "{}"))


def _resolve(location: str | Path | None) -> str:
    if location is None:
        return str(default_store_path())
    text = str(location)
    if text == ":memory:":
        return text
    if text.startswith("sqlite:"):
        # SQLAlchemy's form: sqlite:///relative.db, sqlite:////absolute.db, sqlite:///:memory:
        if not text.startswith("sqlite:///") or text == "sqlite:///":
            raise ConfigError(f"store URL {text!r} must look like sqlite:///runs.db or sqlite:////abs/runs.db")
        rest = text[len("sqlite:///"):]
        return rest if rest == ":memory:" else str(Path(rest).expanduser())
    if "://" in text:
        raise ConfigError(f"store {text!r}: only SQLite is supported; give a path or sqlite:///path")
    return str(Path(text).expanduser())


def _utf8(value: Any) -> Any:
    """Text SQLite can store: lone surrogates become `\\udXXX` escapes (in JSON, the same text)."""
    if not isinstance(value, str) or value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (named in the sqlite3 module from Python 3.11)


def _retry_while_busy(setup: Any, *, seconds: float) -> None:
    """Run `setup` again while another process holds the lock it needs (several processes opening
    a new log at once), up to `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            setup()
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", None) in _BUSY_CODES
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
