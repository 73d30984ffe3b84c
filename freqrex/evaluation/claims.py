"""Claims: how several ``evaluate`` processes on one database share the clips.

Before a process evaluates a clip it claims it: one row of the ``claims`` table of the
results database (:mod:`freqrex.evaluation.store`) with its owner (host, process id and a
random token), taken in a ``BEGIN IMMEDIATE`` transaction, so two processes never hold the
same clip. Storing the clip deletes its claim in the transaction that writes it. A claim is
a lease: its owner renews it every :data:`RENEW_SECONDS` from a background thread; a claim
whose lease ran out (its process was killed, or its machine lost) is free again, and so is,
at once, a claim of a process on this host that no longer exists. A clip is therefore
computed twice only when a live owner stops renewing for a whole lease, and even then the
store keeps the first copy.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CLAIMS_SCHEMA", "LEASE_SECONDS", "RENEW_SECONDS", "Claims", "ClipQueue"]

CLAIMS_SCHEMA = """CREATE TABLE IF NOT EXISTS claims (
    clip TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    expires REAL NOT NULL
)"""

# A lease outlives a renewal period several times over, so a busy machine (a renewal thread
# that waits for the GIL, a database locked by another writer) does not lose its claims.
LEASE_SECONDS = 120.0
RENEW_SECONDS = 20.0


class Claims:
    """This process's claims on one results database.

    Parameters
    ----------
    path : str or path-like
        The results database (made by :class:`~freqrex.evaluation.store.Store`).
    lease : float
        Seconds a claim stays valid without renewal.

    Examples
    --------
    >>> with Claims("results.sqlite").held() as claims:  # doctest: +SKIP
    ...     mine = claims.take(["a.wav", "b.wav"], 1)
    """

    def __init__(self, path: str | os.PathLike, lease: float = LEASE_SECONDS) -> None:
        self.path = Path(path)
        self.lease = float(lease)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.owner = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self._conn = _connect(self.path)

    def take(self, clips: Iterable[str], limit: int) -> list[str]:
        """Claim up to ``limit`` of ``clips`` (in their order) that are neither stored nor
        validly claimed by another owner; return the ones now held."""
        wanted = list(clips)
        now = time.time()
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._drop_stale(now)
            done = {r[0] for r in conn.execute("SELECT clip FROM clips")}
            held = {r[0] for r in conn.execute("SELECT clip FROM claims")}
            chosen = [c for c in wanted if c not in done and c not in held][:max(0, limit)]
            conn.executemany("INSERT INTO claims VALUES (?, ?, ?, ?, ?)",
                             [(c, self.owner, self.host, self.pid, now + self.lease)
                              for c in chosen])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return chosen

    def unfinished(self, clips: Iterable[str]) -> list[str]:
        """Those of ``clips`` not stored yet (claimed by someone, or free)."""
        done = {r[0] for r in self._conn.execute("SELECT clip FROM clips")}
        return [c for c in clips if c not in done]

    def others(self) -> dict[str, int]:
        """Owners (``host:pid``) of the valid claims of other processes, and how many each."""
        rows = self._conn.execute(
            "SELECT host, pid, count(*) FROM claims WHERE owner != ? AND expires >= ? "
            "GROUP BY host, pid", (self.owner, time.time()))
        return {f"{host}:{pid}": n for host, pid, n in rows}

    def renew(self) -> None:
        """Extend the lease of every claim this owner holds."""
        self._conn.execute("UPDATE claims SET expires = ? WHERE owner = ?",
                           (time.time() + self.lease, self.owner))

    def release(self, clips: Iterable[str] | None = None) -> None:
        """Give up some claims (all of them when ``clips`` is None)."""
        if clips is None:
            self._conn.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))
        else:
            self._conn.executemany("DELETE FROM claims WHERE owner = ? AND clip = ?",
                                   [(self.owner, c) for c in clips])

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def held(self) -> Iterator[Claims]:
        """Renew the claims in the background meanwhile; release them all at the end (an
        interrupted run leaves nothing claimed, so the next run starts at once)."""
        stop = threading.Event()
        thread = threading.Thread(target=_renewing, args=(self.path, self.owner, self.lease,
                                                          stop), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=5)
            try:
                self.release()
            except sqlite3.Error:
                pass  # the database went away; the claims expire on their own
            self.close()

    def _drop_stale(self, now: float) -> None:
        self._conn.execute("DELETE FROM claims WHERE expires < ?", (now,))
        local = self._conn.execute("SELECT DISTINCT pid FROM claims WHERE host = ? AND pid != ?",
                                   (self.host, self.pid)).fetchall()
        dead = [(self.host, pid) for (pid,) in local if not _alive(pid)]
        self._conn.executemany("DELETE FROM claims WHERE host = ? AND pid = ?", dead)


class ClipQueue:
    """The clips still to do, each handed out once claimed by this run."""

    # How often to look again when every clip left is being evaluated by another run.
    POLL_SECONDS = 0.5

    def __init__(self, pending: list[tuple[str, Path]], claims: Claims) -> None:
        self.paths = dict(pending)
        self.order = [c for c, _ in pending]
        self.claims = claims

    def take(self, limit: int) -> list[tuple[str, Path]]:
        """Up to ``limit`` clips claimed for this run; none when all are stored or claimed."""
        return [(c, self.paths[c]) for c in self.claims.take(self.order, limit)]

    def wait(self) -> bool:
        """When nothing could be taken: wait for the other runs' clips; False when every
        clip is stored (nothing left to wait for)."""
        self.order = self.claims.unfinished(self.order)
        if not self.order:
            return False
        time.sleep(self.POLL_SECONDS)
        return True


def _connect(path: Path) -> sqlite3.Connection:
    # autocommit; transactions explicit, as in the store; wait for other writers
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _renewing(path: Path, owner: str, lease: float, stop: threading.Event) -> None:
    # its own connection: sqlite3 connections stay in the thread that made them
    conn = _connect(path)
    try:
        while not stop.wait(min(RENEW_SECONDS, lease / 4)):
            try:
                conn.execute("UPDATE claims SET expires = ? WHERE owner = ?",
                             (time.time() + lease, owner))
            except sqlite3.OperationalError:
                continue  # locked for longer than the timeout: the next round renews
    finally:
        conn.close()


def _alive(pid: int) -> bool:
    """Whether a process of this host with this id exists (possibly another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True  # cannot tell: let the lease decide
    return True
