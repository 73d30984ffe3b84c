"""FFTW wisdom on disk: one small framed file, never pickle.

FFTW_MEASURE plans are ~1.2x faster per row than FFTW_ESTIMATE but cost seconds to make
(0.2 / 1.3 / 5.5 s at n = 16k / 160k / 480k on the dev box); the wisdom file gives every
later process the same plans in a few ms.  The file is ``MAGIC``, a uint32 part count
(3: double, single, long double) and each part as a uint64 length and its bytes, all
little-endian.  pyfftw is imported only when wisdom is read or written.
"""

from __future__ import annotations

import atexit
import os
import struct
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "MAGIC",
    "decode_wisdom",
    "encode_wisdom",
    "load_once",
    "load_wisdom",
    "mark_dirty",
    "save_wisdom",
    "wisdom_path",
]

FILE = "fftw_wisdom.bin"
MAGIC = b"FRQXWIS1"
_MAX_BYTES = 64 << 20  # a real wisdom file is a few KiB; refuse to slurp garbage

_state = {"loaded": False, "dirty": False}
_lock = threading.Lock()


def wisdom_path() -> Path:
    """Location of the persisted FFTW wisdom.

    Returns
    -------
    Path
        ``$FREQREX_CACHE_DIR/fftw_wisdom.bin`` if the variable is set, else the same file
        in ``platformdirs.user_cache_dir("freqrex")``.
    """
    root = os.environ.get("FREQREX_CACHE_DIR")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("freqrex")
    return Path(root) / FILE


def encode_wisdom(parts: Sequence[bytes]) -> bytes:
    """Frame FFTW's exported wisdom parts as the file's bytes."""
    chunks = [MAGIC, struct.pack("<I", len(parts))]
    for part in parts:
        chunks += [struct.pack("<Q", len(part)), part]
    return b"".join(chunks)


def decode_wisdom(blob: bytes) -> tuple[bytes, ...]:
    """Inverse of :func:`encode_wisdom`; raises ValueError on any inconsistency."""
    head = len(MAGIC)
    if blob[:head] != MAGIC or len(blob) < head + 4:
        raise ValueError("not a freqrex wisdom file")
    (count,) = struct.unpack_from("<I", blob, head)
    if count != 3:  # double, single, long double
        raise ValueError("unexpected wisdom part count")
    pos, parts = head + 4, []
    for _ in range(count):
        if pos + 8 > len(blob):
            raise ValueError("truncated wisdom file")
        (size,) = struct.unpack_from("<Q", blob, pos)
        pos += 8
        if pos + size > len(blob):
            raise ValueError("truncated wisdom file")
        parts.append(bytes(blob[pos : pos + size]))
        pos += size
    if pos != len(blob):
        raise ValueError("trailing bytes in wisdom file")
    return tuple(parts)


def load_wisdom() -> bool:
    """Import persisted FFTW wisdom, if any.

    A missing, unreadable or corrupt file is ignored (FFTW then simply plans).

    Returns
    -------
    bool
        True if wisdom was imported.
    """
    try:
        import pyfftw

        path = wisdom_path()
        if path.stat().st_size > _MAX_BYTES:
            return False
        parts = decode_wisdom(path.read_bytes())
        return any(pyfftw.import_wisdom(parts))
    except Exception:  # noqa: BLE001 - any failure just means "plan from scratch"
        return False


def save_wisdom() -> bool:
    """Persist the current FFTW wisdom atomically (temp file + ``os.replace``).

    An unwritable cache directory is ignored.

    Returns
    -------
    bool
        True if the file was written.
    """
    tmp = None
    try:
        import pyfftw

        path = wisdom_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = encode_wisdom(pyfftw.export_wisdom())
        fd, tmp = tempfile.mkstemp(prefix=".wisdom-", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, path)
        return True
    except Exception:  # noqa: BLE001 - the cache is an optimisation, never an error
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return False


def load_once() -> None:
    """Import the wisdom file before this process's first plan (later calls: nothing)."""
    with _lock:
        if not _state["loaded"]:
            _state["loaded"] = True
            load_wisdom()


def mark_dirty(dirty: bool = True) -> None:
    """Note that the in-memory wisdom holds plans worth saving (saved at exit if so)."""
    _state["dirty"] = dirty


@atexit.register
def _save_at_exit() -> None:
    # retry a save that failed earlier (e.g. cache dir created later in the run)
    if _state["dirty"]:
        save_wisdom()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a parent thread may have held it


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
