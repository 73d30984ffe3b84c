"""Output folders that appear whole or not at all, and writability checks made before any
long computation (a result computed for an hour and then refused is the worst failure)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from freqrex.errors import OutputError

__all__ = ["check_output_file", "check_output_folder", "check_writable_folder",
           "writing_folder"]


def check_output_folder(out_dir: str | os.PathLike) -> Path:
    """``out_dir`` as a Path, refused when it is an existing file or cannot be written:
    check before long work.

    The folder is written next to itself and moved into place (:func:`writing_folder`), so
    what must be writable is its parent, or the nearest folder above it that exists.

    Raises
    ------
    OutputError
        Naming the path and why: an existing file, a path under a file, or a folder that
        cannot be written (permissions, a read-only file system).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(
            f"output path {out} exists and is not a folder; choose another output folder")
    check_writable_folder(out.parent, f"output folder {out}")
    return out


def check_output_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """``path`` as a Path when a file can be written there (its folder made if needed).

    Raises
    ------
    OutputError
        For a folder at ``path``, a path under a file, or a place that cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file name such as "
                          f"{path / 'report.md'}")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{what} {path} exists and is not writable; choose another path")
    check_writable_folder(path.parent, f"{what} {path}")
    return path


def check_writable_folder(folder: str | os.PathLike, what: str) -> None:
    """Refuse ``what`` unless files can be created in ``folder`` (or, when it does not exist
    yet, in the nearest folder above it, where it would be made).

    ``os.access`` alone is not enough: root passes it everywhere, and it knows nothing of
    read-only file systems; so a probe file is created and removed, too.
    """
    folder = Path(folder)
    base = folder
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise OutputError(f"cannot write {what}: {base} is a file, not a folder; choose "
                          "another path")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {what}: folder {base} is not writable (permission "
                          "denied); choose another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".freqrex-probe-", dir=base)
    except OSError as exc:
        raise OutputError(f"cannot write {what}: folder {base} refuses new files "
                          f"({exc.strerror or exc}); choose another path") from None
    os.close(fd)
    os.unlink(probe)


@contextmanager
def writing_folder(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``out_dir`` to write into; on success it becomes
    ``out_dir`` (replacing an earlier one), on any failure or interrupt it is removed.
    """
    out = check_output_folder(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would outlive the rename: the user's mode
    try:
        yield tmp
        _replace(tmp, out)
    except BaseException:
        with _interrupts_deferred():  # a second Ctrl-C must not leave half of it behind
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace(new: Path, out: Path) -> None:
    with _interrupts_deferred():  # a Ctrl-C between the two moves would lose the old folder
        _swap(new, out)


def _swap(new: Path, out: Path) -> None:
    if not out.exists():
        os.replace(new, out)
        return
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT back for a few file-system calls; it is delivered right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None
                      else signal.default_int_handler)
        if caught:
            signal.raise_signal(signal.SIGINT)


def _umask() -> int:
    """The process umask (read by setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
