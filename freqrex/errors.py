"""Errors and warnings that freqrex shows to users."""


class FreqrexError(Exception):
    """A problem with the user's input, stated in one line with what to do about it.

    The CLI prints these as ``error: <message>`` and exits non-zero, without a traceback.
    """


class FreqrexWarning(UserWarning):
    """Something freqrex changed about the input on the user's behalf (padding, resampling)."""
