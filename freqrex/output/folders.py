"""Output folders that appear whole or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from freqrex.errors import OutputError


def check_output_folder(out_dir: str | os.PathLike) -> Path:
    """``out_dir`` as a Path, refused when it is an existing file: check before long work."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(
            f"output path {out} exists and is not a folder; choose another output folder")
    return out


@contextmanager
def writing_folder(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``out_dir`` to write into; on success it becomes
    ``out_dir`` (replacing an earlier one), on any failure or interrupt it is removed.
    """
    out = check_output_folder(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace(new: Path, out: Path) -> None:
    if not out.exists():
        os.replace(new, out)
        return
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)
