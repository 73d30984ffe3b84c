"""The SQLite results store of an evaluation: one row per clip, one per attack step.

Five tables:

* ``runs``: a single row written when the database is created: the model, the data folder
  and the settings (JSON). A later run on the same database must use the same settings,
  otherwise the clips would not be comparable.
* ``clips``: one row per :class:`~freqrex.evaluation.task.ClipRecord` (its path relative to
  the data folder is the key), ``ok`` or ``error``; per domain (``fft_*``, ``stft_*``
  columns) the fields of its :class:`~freqrex.evaluation.task.DomainRecord` and of each set.
* ``attacks``: one row per :class:`~freqrex.evaluation.task.AttackRecord` (clip, domain,
  mode, k).
* ``baselines``: with ``--compare``, one row per
  :class:`~freqrex.evaluation.task.BaselineRecord` (clip, domain, ranking).
* ``claims``: the clips being evaluated right now, by which process (see
  :mod:`freqrex.evaluation.claims`); storing a clip deletes its claim.

The columns are derived from the record dataclasses' fields and types, so a field is
added to a record and appears here. Every clip is written in one transaction (WAL journal,
``synchronous=FULL``), so a process killed at any moment leaves each clip either complete
or absent: resuming is rerunning.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import types
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from freqrex.config import DOMAINS
from freqrex.criterion import KINDS
from freqrex.errors import InputError, OutputError
from freqrex.evaluation.claims import CLAIMS_SCHEMA
from freqrex.evaluation.task import (
    AttackRecord,
    BaselineRecord,
    ClipRecord,
    DomainRecord,
    SetRecord,
)

# 2: prefix_size and minimal per set; 3: attack modes (mode in the attacks key, gain and the
# perceptual proxy per step) and the redundancy columns of each domain; 4: the baselines
# table (evaluate --compare)
SCHEMA_VERSION = 4
# Settings that do not change any result; a resumed run may change them freely.
NOT_COMPARED = frozenset({"batch_size"})

__all__ = ["ATTACK_FIELDS", "BASELINE_FIELDS", "CLIP_FIELDS", "NOT_COMPARED", "SCHEMA_VERSION",
           "Store", "domain_columns"]

_SQL_TYPES = {bool: "INTEGER", int: "INTEGER", float: "REAL", str: "TEXT",
              tuple: "TEXT"}  # a tuple of strings is stored one per line
# Keys and checks; every other column's type comes from its record field.
_CLIP_CONSTRAINTS = {
    "clip": "TEXT PRIMARY KEY",
    "status": "TEXT NOT NULL CHECK (status IN ('ok', 'error'))",
    "retry": "INTEGER NOT NULL DEFAULT 0",
}
_ATTACK_CONSTRAINTS = {"clip": "TEXT NOT NULL REFERENCES clips(clip)"}
# ClipRecord fields that are not columns of ``clips``: expanded per domain, or another table.
_NESTED = ("domains", "attacks", "baselines")


def _sql_type(hint: Any, not_null: bool) -> str:
    args = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else ()
    base = next((a for a in args if a is not type(None)), hint)
    sql = _SQL_TYPES[get_origin(base) or base]
    return f"{sql} NOT NULL" if not_null and not args else sql


def _columns(cls: type, constraints: dict[str, str], not_null: bool,
             skip: tuple[str, ...] = (), prefix: str = "") -> list[tuple[str, str]]:
    """(name, SQL type) of the fields of ``cls``; Optional fields are nullable when
    ``not_null``, every field otherwise."""
    hints = get_type_hints(cls)
    return [(prefix + f.name, constraints.get(f.name) or _sql_type(hints[f.name], not_null))
            for f in fields(cls) if f.name not in skip]


def domain_columns(domain: str) -> list[tuple[str, str]]:
    """The ``clips`` columns (name, SQL type) holding one domain's results."""
    cols = _columns(DomainRecord, {}, False, skip=("sets",), prefix=f"{domain}_")
    for kind in KINDS:
        cols += _columns(SetRecord, {}, False, prefix=f"{domain}_{kind}_")
    return cols


def _clip_columns() -> list[tuple[str, str]]:
    # an error row has none of the results: every column but the keys may be NULL
    own = dict(_columns(ClipRecord, _CLIP_CONSTRAINTS, False, skip=_NESTED))
    cols = []
    for f in fields(ClipRecord):
        if f.name == "domains":
            cols += [c for d in DOMAINS for c in domain_columns(d)]
        elif f.name in own:
            cols.append((f.name, own[f.name]))
    return cols


_CLIP_COLUMNS = _clip_columns()
_ATTACK_COLUMNS = _columns(AttackRecord, _ATTACK_CONSTRAINTS, True)
CLIP_FIELDS = [name for name, _ in _CLIP_COLUMNS]
ATTACK_FIELDS = [name for name, _ in _ATTACK_COLUMNS]
_BASELINE_COLUMNS = _columns(BaselineRecord, _ATTACK_CONSTRAINTS, True)
BASELINE_FIELDS = [name for name, _ in _BASELINE_COLUMNS]

_SCHEMA = f"""
CREATE TABLE runs (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    created REAL NOT NULL,
    freqrex_version TEXT NOT NULL,
    model TEXT NOT NULL,
    model_sha256 TEXT,
    data_dir TEXT NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE clips ({", ".join(f"{n} {t}" for n, t in _CLIP_COLUMNS)});
CREATE TABLE attacks ({", ".join(f"{n} {t}" for n, t in _ATTACK_COLUMNS)},
    PRIMARY KEY (clip, domain, mode, k));
CREATE TABLE baselines ({", ".join(f"{n} {t}" for n, t in _BASELINE_COLUMNS)},
    PRIMARY KEY (clip, domain, ranking));
{CLAIMS_SCHEMA};
"""


def _when_unlocked(statement: Any, seconds: float = 30.0) -> Any:
    """``statement()``, retried while SQLite says the database is locked, for as long as
    a write waits (the connection's timeout). SQLite does not wait for the lock a switch
    to WAL takes: of two processes opening one new database at once (``freqrex evaluate``
    run twice on one ``--db``), one was told at once that it was locked, and refused it."""
    deadline, pause = time.monotonic() + seconds, 0.005
    while True:
        try:
            return statement()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(2 * pause, 0.25)


class Store:
    """An evaluation database, opened for writing (one writer) or for reading.

    Parameters
    ----------
    path : str or path-like
        The SQLite file; created with its tables when missing.
    settings : dict, optional
        The run's settings (JSON-able). Required to create a database; when the database
        exists they must equal the stored ones (keys in :data:`NOT_COMPARED` aside).
    model : str, optional
        The model's path (stored; informative).
    model_sha256 : str, optional
        Digest of the model file; a database made with another model is refused.
    data_dir : str, optional
        The folder whose clips are evaluated (resolved); must match when resuming.

    Raises
    ------
    InputError
        When the file is not a freqrex results database, or was made with other settings,
        another model or another data folder.
    """

    def __init__(self, path: str | os.PathLike, *, settings: dict | None = None,
                 model: str | None = None, model_sha256: str | None = None,
                 data_dir: str | None = None) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise InputError(f"--db {self.path} is a directory; give a file name")
        creating = settings is not None
        if not creating and not self.path.is_file():
            raise InputError(f"results database {self.path} does not exist")
        if creating:
            # SQLite writes its -wal and -shm files next to the database: the folder must
            # take new files, which is said now rather than as "not a database" later
            from freqrex.output.folders import check_output_file

            check_output_file(self.path, "results database")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: transactions are opened explicitly (BEGIN IMMEDIATE).
            self.conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
            # Look before changing anything: another application's file is refused as it is
            # (switching it to WAL would rewrite its header).
            self._check_or_create(settings, model, model_sha256, data_dir, configure=True)
        except sqlite3.OperationalError as exc:
            if "unable to open" in str(exc) or "readonly" in str(exc):
                raise OutputError(f"cannot write results database {self.path} ({exc}); "
                                  "choose a writable --db") from exc
            raise InputError(
                f"{self.path} is not a freqrex results database ({exc}); use a new --db") from exc
        except sqlite3.DatabaseError as exc:
            raise InputError(
                f"{self.path} is not a freqrex results database ({exc}); use a new --db") from exc

    def _configure(self) -> None:
        _when_unlocked(lambda: self.conn.execute("PRAGMA journal_mode=WAL"))
        # FULL: a committed clip survives power loss too, at ~1 fsync per clip.
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")

    # -- opening ---------------------------------------------------------------------------

    def _check_or_create(self, settings: dict | None, model: str | None,
                         model_sha256: str | None, data_dir: str | None,
                         configure: bool = False) -> None:
        tables = {r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            if settings is None:
                raise InputError(f"{self.path} holds no evaluation results")
            if configure:
                self._configure()
            self._create(settings, model, model_sha256, data_dir)
            return
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if not {"runs", "clips", "attacks"} <= tables:  # "baselines" since schema 4
            raise InputError(
                f"{self.path} is not a freqrex results database (schema {version}); "
                "use a new --db")
        if version != SCHEMA_VERSION:
            made = "an older" if 0 < version < SCHEMA_VERSION else "another"
            raise InputError(
                f"{self.path} holds results of {made} freqrex (results schema {version}; this "
                f"one reads schema {SCHEMA_VERSION}, whose columns differ); use a new --db, "
                "or the freqrex that wrote it to read it")
        if configure:
            self._configure()
        if settings is not None:
            self._check_same(settings, model_sha256, data_dir)
            if "claims" not in tables:  # a database made before claims existed
                self.conn.execute(CLAIMS_SCHEMA)

    def _create(self, settings: dict, model: str | None, model_sha256: str | None,
                data_dir: str | None) -> None:
        from freqrex import __version__

        self.conn.execute("BEGIN IMMEDIATE")
        try:
            raced = self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
            if not raced:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(
                    "INSERT INTO runs VALUES (1, ?, ?, ?, ?, ?, ?)",
                    (time.time(), __version__, str(model or ""), model_sha256,
                     str(data_dir or ""), json.dumps(settings, sort_keys=True, allow_nan=False)))
                self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        if raced:  # another process created it since we looked: check against it instead
            self._check_or_create(settings, model, model_sha256, data_dir)

    def _check_same(self, settings: dict, model_sha256: str | None,
                    data_dir: str | None) -> None:
        run = self.run()
        diffs = _differences(run["settings"], settings)
        if model_sha256 != run["model_sha256"]:
            diffs.append(f"model {run['model'] or 'callable'} -> another model")
        if data_dir is not None and data_dir != run["data_dir"]:
            diffs.append(f"data folder {run['data_dir']} -> {data_dir}")
        if diffs:
            raise InputError(
                f"{self.path} was made with different settings ({'; '.join(diffs)}); use a "
                "new --db or the same options")

    # -- reading ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """The ``runs`` row, with ``settings`` decoded."""
        row = self.conn.execute(
            "SELECT created, freqrex_version, model, model_sha256, data_dir, settings "
            "FROM runs WHERE id = 1").fetchone()
        if row is None:
            raise InputError(f"{self.path} has no run record; use a new --db")
        keys = ("created", "freqrex_version", "model", "model_sha256", "data_dir", "settings")
        out = dict(zip(keys, row))
        out["settings"] = json.loads(out["settings"])
        return out

    def done_clips(self) -> set[str]:
        """Clips recorded for good (ok, or an error of the clip's own): a resumed run skips them."""
        return {r[0] for r in self.conn.execute("SELECT clip FROM clips WHERE retry = 0")}

    def error_clips(self, retry_only: bool = False) -> set[str]:
        """Clips recorded with an error; only those to evaluate again with ``retry_only``."""
        sql = "SELECT clip FROM clips WHERE status = 'error'" + (" AND retry" if retry_only else "")
        return {r[0] for r in self.conn.execute(sql)}

    def clips(self) -> list[dict[str, Any]]:
        """Every ``clips`` row as a dict, by clip path."""
        return self._rows("SELECT * FROM clips ORDER BY clip")

    def attacks(self) -> list[dict[str, Any]]:
        """Every ``attacks`` row as a dict, by clip, domain, mode and ``k``."""
        return self._rows("SELECT * FROM attacks ORDER BY clip, domain, mode, k")

    def baselines(self) -> list[dict[str, Any]]:
        """Every ``baselines`` row (``--compare``) as a dict, by clip, domain and ranking."""
        return self._rows("SELECT * FROM baselines ORDER BY clip, domain, ranking")

    def _rows(self, sql: str) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur]

    # -- writing ---------------------------------------------------------------------------

    def write(self, record: ClipRecord) -> bool:
        """Store one clip's record (see :func:`freqrex.evaluation.evaluate_clip`) atomically.

        Returns
        -------
        bool
            False when the clip was already stored (the record is dropped, nothing changes).
        """
        clip_row, attack_rows = _rows_of(record)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(
                f"INSERT INTO clips ({', '.join(clip_row)}) "
                f"VALUES ({', '.join('?' * len(clip_row))})", list(clip_row.values()))
            self.conn.executemany(
                f"INSERT INTO attacks ({', '.join(ATTACK_FIELDS)}) "
                f"VALUES ({', '.join('?' * len(ATTACK_FIELDS))})",
                [[getattr(a, name) for name in ATTACK_FIELDS] for a in attack_rows])
            self.conn.executemany(
                f"INSERT INTO baselines ({', '.join(BASELINE_FIELDS)}) "
                f"VALUES ({', '.join('?' * len(BASELINE_FIELDS))})",
                [[getattr(b, name) for name in BASELINE_FIELDS] for b in record.baselines])
            # the clip is done: whoever claimed it (see freqrex.evaluation.claims) is released
            self.conn.execute("DELETE FROM claims WHERE clip = ?", (record.clip,))
            self.conn.execute("COMMIT")
        except sqlite3.IntegrityError:
            self.conn.execute("ROLLBACK")
            if self.conn.execute("SELECT 1 FROM clips WHERE clip = ?",
                                 (record.clip,)).fetchone():
                return False
            raise
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return True

    def forget(self, clips: Iterable[str]) -> None:
        """Delete clips (and their attacks and baselines) so that they are evaluated again."""
        clips = list(clips)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for table in ("attacks", "baselines"):
                self.conn.executemany(f"DELETE FROM {table} WHERE clip = ?",
                                      [(c,) for c in clips])
            self.conn.executemany("DELETE FROM clips WHERE clip = ?", [(c,) for c in clips])
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _differences(old: dict, new: dict) -> list[str]:
    keys = sorted((set(old) | set(new)) - NOT_COMPARED)
    return [f"{k} {_show(old.get(k))} -> {_show(new.get(k))}" for k in keys
            if old.get(k) != new.get(k)]


def _show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _rows_of(record: ClipRecord) -> tuple[dict[str, Any], tuple[AttackRecord, ...]]:
    """Flatten a clip record into its ``clips`` row and ``attacks`` rows."""
    row = {name: getattr(record, name) for name in CLIP_FIELDS if hasattr(record, name)}
    for domain, d in record.domains.items():
        for f in fields(DomainRecord):
            if f.name != "sets":
                row[f"{domain}_{f.name}"] = getattr(d, f.name)
        for kind in KINDS:
            for f in fields(SetRecord):
                row[f"{domain}_{kind}_{f.name}"] = getattr(d.sets[kind], f.name)
    row["retry"] = int(record.retry)
    row["warnings"] = "\n".join(record.warnings) or None
    return row, record.attacks
