"""How a parameter is declared, parsed and checked: the machinery of :mod:`freqrex.config`.

The configs themselves (every parameter, its default and its help) live in
:mod:`freqrex.config`, which re-exports what other modules need from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, Field, asdict, field, fields, replace
from typing import Any

from freqrex.errors import InputError


def param(default: Any, help: str, *, flag: str | None = None,
          aliases: tuple[str, ...] = (), parse: Callable[[str], Any] | None = None,
          metavar: str | None = None) -> Any:
    """A dataclass field with what the command line needs to offer it.

    ``flag`` renames the option (default: the field name with dashes) and ``aliases`` adds
    other names; ``parse`` turns the option's text into the field's value, for fields that
    are not plain numbers or words.
    """
    return field(default=default, metadata={"help": help, "flag": flag, "aliases": aliases,
                                            "parse": parse, "metavar": metavar})


def parse_range(text: str) -> tuple[float, float]:
    """``"LOW:HIGH"`` (or ``LOW,HIGH``) in Hz."""
    try:
        lo, hi = (float(v) for v in text.replace(":", ",").split(","))
    except ValueError:
        raise InputError(
            f"freq_range takes LOW:HIGH in Hz (e.g. 100:4000), got {text!r}") from None
    return lo, hi


def parse_target(text: str) -> int | str:
    """A class index (digits) or a label."""
    return int(text) if text.lstrip("-").isdigit() else text


def parse_ints(text: str) -> tuple[int, ...]:
    """``"1,2,5"``."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(
            f"ks takes whole numbers separated by commas, got {text!r}") from None


class Checked:
    """What the three configs share: validation on construction and plain records."""

    def replace(self, **changes: Any) -> Any:
        """Return a copy with some parameters changed (validated again)."""
        return replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict:
        """Plain dict for JSON records."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def params(cls) -> list[Field]:
        """The fields, with their help text, in the order the command line shows them."""
        return list(fields(cls))  # type: ignore[arg-type]
def check_above(config: Any, name: str, low: float) -> None:
    value = getattr(config, name)
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or value <= low):
        raise InputError(f"{name} must be a number above {low:g}, got {value!r}")


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2,
          "g": 1000**3, "gb": 1000**3, "t": 1000**4, "tb": 1000**4, "kib": 1024,
          "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}


def parse_memory(value: Any) -> int:
    """A memory size in bytes: a positive whole number, or text such as ``"4GiB"``,
    ``"1.5 GB"`` or ``"500MB"`` (k/M/G/T: powers of 1000; KiB/MiB/GiB/TiB: of 1024).

    Examples
    --------
    >>> parse_memory("4GiB"), parse_memory("500MB"), parse_memory(1024)
    (4294967296, 500000000, 1024)
    """
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        digits = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = text[len(digits):]
        try:
            number = float(digits)
        except ValueError:
            number = math.nan
        if unit not in _UNITS or not math.isfinite(number) or number * _UNITS[unit] < 1:
            raise InputError(f"max_memory takes bytes or a size such as 4GiB or 500MB, got "
                             f"{value!r}")
        return int(number * _UNITS[unit])
    return positive_int(value, "max_memory")


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int if it is a positive whole number; an error naming ``name`` if not.

    Integral floats (16000.0, e.g. from JSON or numpy) are accepted; 2.5, "16k" or True
    are not.
    """
    if type(value) is int and value > 0:   # the common case, asked per model call
        return value
    import numbers

    ok = isinstance(value, numbers.Integral) or (
        isinstance(value, numbers.Real) and math.isfinite(value) and value == math.floor(value))
    if isinstance(value, bool) or not ok or value <= 0:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return math.floor(value)


def default_of(f: Field) -> Any:
    return None if f.default is MISSING else f.default


def check_positive(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int):  # a config holds exact ints, not 16000.0
            raise InputError(f"{name} must be a positive integer, got {value!r}")
        positive_int(value, name)


def check_choice(config: Any, name: str, allowed: tuple[str, ...]) -> None:
    value = getattr(config, name)
    if value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")

def check_unit_interval(config: Any, name: str, closed: bool) -> None:
    value = getattr(config, name)
    ok = isinstance(value, (int, float)) and (0.0 <= value <= 1.0 if closed
                                              else 0.0 <= value < 1.0)
    if not ok:
        raise InputError(f"{name} must be in [0, 1{']' if closed else ')'}, got {value!r}")
