"""Errors and warnings that freqrex shows to users.

Every error a user can cause is a :class:`FreqrexError`: one line that says what was
wrong and what to do. The subclasses say where it came from, for callers that care.
"""


class FreqrexError(Exception):
    """A problem with the user's input, stated in one line with what to do about it.

    The CLI prints these as ``error: <message>`` and exits with status 2, without a
    traceback.
    """


class InputError(FreqrexError):
    """The audio or a parameter is unusable (missing file, NaN samples, bad option)."""


class ModelError(FreqrexError):
    """The model cannot be loaded or run, or gives outputs freqrex cannot use."""


class OutputError(FreqrexError):
    """A result cannot be written where it was asked for."""


class FreqrexWarning(UserWarning):
    """Something freqrex changed about the input on the user's behalf (padding, resampling)."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (libraries' messages run on), or its type."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
