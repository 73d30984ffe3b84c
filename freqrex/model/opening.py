"""Opening ONNX Runtime sessions: execution providers (CUDA when it really starts), thread
options, quiet logs, and the error a file that is not a model gets.

onnxruntime is imported only when a session is opened.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from freqrex.config import PROVIDERS
from freqrex.errors import FreqrexWarning, InputError, ModelError, first_line

__all__ = ["ORT_LOG_SEVERITY", "describe_source", "is_model_proto", "is_session",
           "model_bytes_or_path", "narrow_session", "open_session", "providers_for"]

# ORT's own log: its errors reach freqrex as exceptions, whose message freqrex puts in its one
# line; at severity 3 (error) ORT would also print them, coloured, on stderr. 4 is fatal only.
ORT_LOG_SEVERITY = 4

# What each name in freqrex.config.PROVIDERS asks ONNX Runtime for; "auto" probes CUDA once.
_PROVIDER_LISTS: dict[str, str | list[str]] = {
    "auto": "auto",
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


_NO_CUDA = ("provider cuda was requested but CUDA could not be started; use provider auto "
            "(CUDA when it works, else the CPU) or cpu")


def providers_for(name: str) -> str | list[str]:
    """The ONNX Runtime providers a provider name stands for.

    Parameters
    ----------
    name : str
        One of :data:`freqrex.config.PROVIDERS`: ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    str or list of str
        ``"auto"`` (CUDA when it really starts, else the CPU), or the providers in order of
        preference.

    Raises
    ------
    InputError
        For any other name.

    Examples
    --------
    >>> providers_for("cpu")
    ['CPUExecutionProvider']
    """
    if name not in PROVIDERS:
        raise InputError(f"provider must be one of {', '.join(PROVIDERS)}; got {name!r}")
    chosen = _PROVIDER_LISTS[name]
    return chosen if isinstance(chosen, str) else list(chosen)



def is_session(obj: Any) -> bool:
    # Only a process that made a session has onnxruntime imported; avoid importing it here.
    ort = sys.modules.get("onnxruntime")
    return ort is not None and isinstance(obj, ort.InferenceSession)


def is_model_proto(obj: Any) -> bool:
    return type(obj).__name__ == "ModelProto" and hasattr(obj, "SerializeToString")


def describe_source(obj: Any) -> str:
    if isinstance(obj, (str, os.PathLike)):
        return str(obj)
    if is_session(obj):
        return "the ONNX session"
    return "the ONNX model"


def open_session(obj: Any, providers: str | Sequence[str], threads: int | None = None) -> Any:
    if is_session(obj):
        return obj
    model = model_bytes_or_path(obj)
    import onnxruntime as ort

    ort.set_default_logger_severity(ORT_LOG_SEVERITY)
    options = _session_options(ort, threads)
    # An explicit "cuda" is a requirement, not a preference: no silent CPU fallback.
    strict_cuda = isinstance(providers, str) and providers == "cuda"
    if isinstance(providers, str) and providers in PROVIDERS:
        providers = providers_for(providers)
    if isinstance(providers, str) and providers == "auto":
        return _auto_session(ort, model, options)
    names = [providers] if isinstance(providers, str) else list(providers)
    available = ort.get_available_providers()
    unknown = [name for name in names if name not in available]
    if strict_cuda and unknown:
        raise ModelError(_NO_CUDA + f" (this onnxruntime offers {', '.join(available)}; "
                         "install onnxruntime-gpu)")
    if not names or unknown:
        raise InputError(
            f"unknown execution provider {', '.join(unknown) or '(none given)'}; available: "
            f"{', '.join(available)}"
        )
    session = _quiet_session(ort, model, options, names)
    if strict_cuda and session.get_providers()[0] != names[0]:
        raise ModelError(_NO_CUDA + " (no usable GPU, or its CUDA/cuDNN libraries are missing)")
    if session.get_providers()[0] != names[0]:
        warnings.warn(
            f"{names[0]} could not be initialised; running on {session.get_providers()[0]}",
            FreqrexWarning,
            stacklevel=4,
        )
    return session


def model_bytes_or_path(obj: Any) -> str | bytes:
    if is_model_proto(obj):
        obj = obj.SerializeToString()
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if not path.exists():
            raise ModelError(f"{path} is not a valid ONNX model (file not found)")
        if path.is_dir():
            raise ModelError(f"{path} is not a valid ONNX model (it is a directory)")
        return str(path)
    if not isinstance(obj, bytes):
        raise ModelError(
            f"cannot load a {type(obj).__name__} as an ONNX model; give a path, bytes or an "
            "onnxruntime InferenceSession"
        )
    return obj


def _session_options(ort: Any, threads: int | None) -> Any:
    options = ort.SessionOptions()
    options.log_severity_level = ORT_LOG_SEVERITY
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


# Whether CUDA really initialised, learnt once per process: a failed attempt costs time and,
# in ORT, a burst of log lines, so it is not repeated for every model.
_cuda_works: bool | None = None


def cuda_fell_back() -> bool:
    """Whether ``provider="auto"`` found CUDA installed but could not start it here, and
    so runs on the CPU (said once in the output, never an error: auto is a preference)."""
    return _cuda_works is False


def _auto_session(ort: Any, model: str | bytes, options: Any) -> Any:
    global _cuda_works
    if _cuda_works is not False and "CUDAExecutionProvider" in ort.get_available_providers():
        try:
            session = _quiet_session(ort, model, options, list(_PROVIDER_LISTS["cuda"]))
        except ModelError:
            session = None  # CUDA can fail at creation; the CPU-only attempt below reports
        if session is not None and session.get_providers()[0] == "CUDAExecutionProvider":
            _cuda_works = True
            return session
        if session is not None:
            # CUDA was requested but not registered: it cannot initialise in this process. (A
            # failure to create the session says nothing: it could be the model's fault.)
            _cuda_works = False
            return session
    return _new_session(ort, model, options, list(_PROVIDER_LISTS["cpu"]))


def _quiet_session(ort: Any, model: str | bytes, options: Any, providers: list[str]) -> Any:
    # A GPU provider whose libraries are missing logs a burst of lines at error level (3), and
    # freqrex then runs on the CPU anyway; only the fatal level (4) silences them.
    ort.set_default_logger_severity(4)
    try:
        return _new_session(ort, model, options, providers)
    finally:
        ort.set_default_logger_severity(ORT_LOG_SEVERITY)


def _new_session(ort: Any, model: str | bytes, options: Any, providers: list[str]) -> Any:
    where = model if isinstance(model, str) else "the ONNX model"
    try:
        return ort.InferenceSession(model, sess_options=options, providers=providers)
    except Exception as exc:  # ORT raises Fail, InvalidProtobuf, ValueError, ...
        raise ModelError(f"{where} is not a valid ONNX model ({first_line(exc)})") from exc


def narrow_session(obj: Any) -> Any:
    import onnxruntime as ort

    return _new_session(ort, model_bytes_or_path(obj), _session_options(ort, 1),
                        list(_PROVIDER_LISTS["cpu"]))
