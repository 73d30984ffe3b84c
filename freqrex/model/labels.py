"""Class labels and sample rates: from a labels file, a list, or a model's metadata."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from freqrex.errors import InputError, ModelError

__all__ = ["check_labels", "labels_from_metadata", "load_labels", "rate_from_metadata"]


def load_labels(path: str | os.PathLike) -> list[str]:
    """Read class labels: a text file with one label per line, or a JSON list.

    Parameters
    ----------
    path : str or path-like
        The labels file.

    Returns
    -------
    list of str
        The labels, stripped, in file order.

    Raises
    ------
    InputError
        When the file is missing or unreadable, holds no labels, an empty label or a duplicate.

    Examples
    --------
    >>> load_labels("labels.txt")  # doctest: +SKIP
    ['dog', 'cat', 'bird']
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise InputError(f"labels file {path} {what}; give a text file with one label per line")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"labels file {path} could not be read as UTF-8 text ({exc})") from exc
    text = text.strip()
    if text.startswith("["):
        try:
            labels = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"labels file {path} is not a valid JSON list ({exc})") from exc
    else:
        labels = [line.strip() for line in text.splitlines()]
    return _checked(labels, f"labels file {path}", InputError)


def check_labels(labels: Any, source: str = "labels") -> list[str] | None:
    """Labels as a clean list: None stays None, a path is read with :func:`load_labels`.

    Raises
    ------
    InputError
        For an empty list, names that are not strings, an empty name or a duplicate.
    """
    if labels is None:
        return None
    if isinstance(labels, (str, os.PathLike)):
        return load_labels(labels)
    return _checked(labels, source, InputError)


def rate_from_metadata(meta: dict[str, str], source: str) -> int | None:
    """The ``sample_rate`` entry of a model's metadata, when it has one.

    Raises
    ------
    ModelError
        When the entry is not a positive whole number in the range of
        :func:`freqrex.audio.check_sample_rate`.
    """
    text = meta.get("sample_rate")
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0 or value != int(value):
        raise ModelError(
            f"{source} metadata sample_rate {text!r} is not a positive integer; pass "
            "sample_rate explicitly"
        )
    from freqrex.audio import check_sample_rate

    try:
        return check_sample_rate(value, f"{source} metadata sample_rate")
    except InputError as exc:  # the model's fault, not the user's input
        raise ModelError(f"{exc}; or pass sample_rate explicitly") from None


def labels_from_metadata(meta: dict[str, str], source: str) -> list[str] | None:
    """The ``labels`` entry of a model's metadata (a JSON list or comma-separated), if any.

    Raises
    ------
    ModelError
        When the entry is not a valid list of unique, non-empty names.
    """
    text = meta.get("labels")
    if text is None or not text.strip():
        return None
    text = text.strip()
    if text.startswith("["):
        try:
            labels = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(
                f"{source} metadata labels is not a valid JSON list ({exc}); pass labels explicitly"
            ) from exc
    else:
        labels = text.split(",")
    return _checked(labels, f"{source} metadata labels", ModelError)


def _checked(labels: Any, source: str, error: type[Exception]) -> list[str]:
    if not isinstance(labels, (list, tuple)) or not labels:
        raise error(f"{source} must be a non-empty list of class names")
    if any(isinstance(label, (dict, list, tuple)) for label in labels):
        raise error(f"{source} must list class names as strings")
    names = [str(label).strip() for label in labels]
    for i, name in enumerate(names):
        if not name:
            raise error(f"{source}: label {i} is empty; give one name per class")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise error(f"{source}: label {name!r} appears twice; labels must be unique")
        seen.add(name)
    return names
