"""ONNX Runtime models: sessions, execution providers, thread options, input/output binding.

onnxruntime is imported only when a model is opened, so ``import freqrex.model`` stays light.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from freqrex.config import PROVIDERS, ModelConfig
from freqrex.errors import FreqrexWarning, InputError, ModelError, first_line
from freqrex.model.base import Model, optional_positive_int
from freqrex.model.labels import labels_from_metadata, load_labels, rate_from_metadata

__all__ = ["OnnxModel", "is_onnx", "load_model", "providers_for"]

# ONNX element types a waveform input may have; other float widths are cast to these.
_FLOAT_INPUTS: dict[str, type[np.floating]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
}

_SUPPORTED_INPUTS = "[N], [B, N] or [B, 1, N] (float32, float16 or float64)"

# What each name in freqrex.config.PROVIDERS asks ONNX Runtime for; "auto" probes CUDA once.
_PROVIDER_LISTS: dict[str, str | list[str]] = {
    "auto": "auto",
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


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


def load_model(path: str | os.PathLike, options: ModelConfig, *, activation: str = "auto",
               batch_size: int = 32) -> OnnxModel:
    """Open an ONNX model file as :class:`freqrex.config.ModelConfig` says.

    Parameters
    ----------
    path : str or path-like
        The ``.onnx`` file.
    options : ModelConfig
        Sample rate and labels file (for models whose metadata lacks them), execution
        provider and threads per call.
    activation : str
        ``"auto"``, ``"softmax"``, ``"sigmoid"`` or ``"none"``.
    batch_size : int
        Most waveforms per ``session.run``.

    Raises
    ------
    FreqrexError
        :class:`~freqrex.errors.InputError` for an unreadable labels file,
        :class:`~freqrex.errors.ModelError` for a model that cannot be opened.

    Examples
    --------
    >>> model = load_model("model.onnx", ModelConfig(provider="cpu"))  # doctest: +SKIP
    """
    labels = load_labels(options.labels) if options.labels is not None else None
    return OnnxModel(path, sample_rate=options.sample_rate, labels=labels,
                     activation=activation, batch_size=batch_size,
                     providers=providers_for(options.provider), threads=options.threads)


def is_onnx(obj: Any) -> bool:
    """Whether ``obj`` is something :class:`OnnxModel` opens (path, bytes, proto, session)."""
    return isinstance(obj, (str, os.PathLike, bytes)) or _is_session(obj) or _is_model_proto(obj)


class OnnxModel(Model):
    """An ONNX classifier run with ONNX Runtime.

    Parameters
    ----------
    path_or_session : str, path-like, bytes, onnx.ModelProto or onnxruntime.InferenceSession
        The model. Its single input must be a waveform of shape ``[N]``, ``[B, N]`` or
        ``[B, 1, N]`` (float32, float16 or float64; each dimension fixed or dynamic) and its
        first output ``[B, C]`` (``[C]`` for a ``[N]`` input).
    sample_rate : int, optional
        Overrides the ``sample_rate`` entry of the model's metadata.
    labels : list of str or path, optional
        Overrides the ``labels`` entry of the model's metadata (a JSON list or comma-separated).
    activation : str
        ``"auto"``, ``"softmax"``, ``"sigmoid"`` or ``"none"``.
    batch_size : int
        Most waveforms per ``session.run``; a fixed batch dimension in the model wins.
    providers : str or list of str
        A name from :data:`freqrex.config.PROVIDERS` (see :func:`providers_for`): ``"auto"``
        uses CUDA when it really initialises, else the CPU. Or ONNX Runtime provider names.
    threads : int, optional
        CPU threads ONNX Runtime may use within one call (``intra_op_num_threads``); its own
        default (one per core) when omitted. Use 1 when several processes share the cores.

    Attributes
    ----------
    path : pathlib.Path or None
        The file the model came from; None for bytes, protos and sessions.
    name : str
        How messages name the model: its path, or "the ONNX model" / "the ONNX session".

    Raises
    ------
    ModelError
        When the file is not a valid ONNX model or its inputs or outputs are unsupported.

    Examples
    --------
    >>> model = OnnxModel("model.onnx", providers="cpu")  # doctest: +SKIP
    >>> model(np.zeros((1, 16000), np.float32)).shape  # doctest: +SKIP
    (1, 527)
    """

    def __init__(
        self,
        path_or_session: Any,
        *,
        sample_rate: int | None = None,
        labels: Sequence[str] | str | os.PathLike | None = None,
        activation: str = "auto",
        batch_size: int = 32,
        providers: str | Sequence[str] = "auto",
        threads: int | None = None,
    ) -> None:
        self.name = _describe_source(path_or_session)
        self.path = (
            Path(path_or_session) if isinstance(path_or_session, (str, os.PathLike)) else None
        )
        self.session = _open_session(
            path_or_session, providers, optional_positive_int(threads, "threads")
        )
        meta = self.session.get_modelmeta().custom_metadata_map or {}
        super().__init__(
            sample_rate=(sample_rate if sample_rate is not None
                         else rate_from_metadata(meta, self.name)),
            labels=labels,
            activation=activation,
            batch_size=batch_size,
            provider=self.session.get_providers()[0],
            source=str(self.path) if self.path is not None else None,
        )
        if labels is None:
            self.labels = labels_from_metadata(meta, self.name)
            self._labels_source = f"metadata of {self.name}"
        self._bind_input()
        self._bind_output()

    def _bind_input(self) -> None:
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            listed = ", ".join(f"{i.name} {_shape_text(i.shape)}" for i in inputs)
            raise ModelError(
                f"{self.name} has {len(inputs)} inputs ({listed}); freqrex supports one "
                f"waveform input of shape {_SUPPORTED_INPUTS}"
            )
        inp = inputs[0]
        if inp.type not in _FLOAT_INPUTS:
            raise ModelError(
                f"{self.name} input {inp.name!r} has type {inp.type}; freqrex supports a "
                f"waveform input of shape {_SUPPORTED_INPUTS}"
            )
        shape = list(inp.shape or [])
        if not _supported_input_shape(shape):
            raise ModelError(
                f"{self.name} input {inp.name!r} has shape {_shape_text(shape)}; freqrex "
                f"supports {_SUPPORTED_INPUTS}"
            )
        self.input_name: str = inp.name
        self.input_dtype: type[np.floating] = _FLOAT_INPUTS[inp.type]
        self.input_rank = len(shape)
        self.input_length = _fixed(shape[-1])
        self.fixed_batch = 1 if self.input_rank == 1 else _fixed(shape[0])
        if self.fixed_batch is not None:
            self.batch_size = self.fixed_batch

    def _bind_output(self) -> None:
        out = self.session.get_outputs()[0]
        self.output_name: str = out.name
        shape = out.shape
        if not shape:
            # ORT reports [] (or None) when the model declares no output shape; the rank is
            # then checked on the first run instead.
            return
        rank_ok = len(shape) == 2 or (self.input_rank == 1 and len(shape) == 1)
        if not rank_ok:
            wanted = "[C] or [1, C]" if self.input_rank == 1 else "[B, C]"
            raise ModelError(
                f"{self.name} output {out.name!r} has shape {_shape_text(shape)}; freqrex "
                f"needs class scores of shape {wanted}"
            )
        classes = _fixed(shape[-1])
        if classes is not None:
            self._learn_classes(classes)

    def _forward(self, chunk: np.ndarray) -> np.ndarray:
        rows = chunk.shape[0]
        feed = chunk
        if self.fixed_batch is not None and rows < self.fixed_batch:
            # Fill a fixed batch with copies of a real row (not zeros: a model that normalises
            # its input would divide by zero); the extra rows are dropped below.
            feed = np.concatenate([chunk, np.repeat(chunk[-1:], self.fixed_batch - rows, 0)])
        feed = feed.astype(self.input_dtype, copy=False)
        if self.input_rank == 1:
            feed = feed[0]
        elif self.input_rank == 3:
            feed = feed[:, None, :]
        try:
            out = self.session.run([self.output_name], {self.input_name: feed})[0]
        except Exception as exc:  # ORT raises its own exception types per error kind
            raise ModelError(
                f"{self.name} failed on input of shape {tuple(feed.shape)} "
                f"({first_line(exc)}); check the model's expected input length"
            ) from exc
        out = np.asarray(out)
        if self.input_rank == 1 and out.ndim == 1:
            out = out[None, :]
        if out.ndim != 2:
            raise ModelError(
                f"{self.name} returned shape {out.shape}; freqrex needs class scores of "
                "shape [B, C]"
            )
        return out[:rows]

    def describe(self) -> dict[str, Any]:
        """What ``freqrex info`` shows, with the ONNX inputs and outputs as declared."""
        info = super().describe()
        info["inputs"] = [_arg_info(a) for a in self.session.get_inputs()]
        info["outputs"] = [_arg_info(a) for a in self.session.get_outputs()]
        info["source"] = self.name
        return info


# -- sessions ----------------------------------------------------------------------------------


def _is_session(obj: Any) -> bool:
    # Only a process that made a session has onnxruntime imported; avoid importing it here.
    ort = sys.modules.get("onnxruntime")
    return ort is not None and isinstance(obj, ort.InferenceSession)


def _is_model_proto(obj: Any) -> bool:
    return type(obj).__name__ == "ModelProto" and hasattr(obj, "SerializeToString")


def _describe_source(obj: Any) -> str:
    if isinstance(obj, (str, os.PathLike)):
        return str(obj)
    if _is_session(obj):
        return "the ONNX session"
    return "the ONNX model"


def _open_session(obj: Any, providers: str | Sequence[str], threads: int | None = None) -> Any:
    if _is_session(obj):
        return obj
    model = _model_bytes_or_path(obj)
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    options = _session_options(ort, threads)
    if isinstance(providers, str) and providers in PROVIDERS:
        providers = providers_for(providers)
    if isinstance(providers, str) and providers == "auto":
        return _auto_session(ort, model, options)
    names = [providers] if isinstance(providers, str) else list(providers)
    available = ort.get_available_providers()
    unknown = [name for name in names if name not in available]
    if not names or unknown:
        raise InputError(
            f"unknown execution provider {', '.join(unknown) or '(none given)'}; available: "
            f"{', '.join(available)}"
        )
    session = _quiet_session(ort, model, options, names)
    if session.get_providers()[0] != names[0]:
        warnings.warn(
            f"{names[0]} could not be initialised; running on {session.get_providers()[0]}",
            FreqrexWarning,
            stacklevel=4,
        )
    return session


def _model_bytes_or_path(obj: Any) -> str | bytes:
    if _is_model_proto(obj):
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
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


# Whether CUDA really initialised, learnt once per process: a failed attempt costs time and,
# in ORT, a burst of log lines, so it is not repeated for every model.
_cuda_works: bool | None = None


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
        ort.set_default_logger_severity(3)


def _new_session(ort: Any, model: str | bytes, options: Any, providers: list[str]) -> Any:
    where = model if isinstance(model, str) else "the ONNX model"
    try:
        return ort.InferenceSession(model, sess_options=options, providers=providers)
    except Exception as exc:  # ORT raises Fail, InvalidProtobuf, ValueError, ...
        raise ModelError(f"{where} is not a valid ONNX model ({first_line(exc)})") from exc


# -- shapes ------------------------------------------------------------------------------------


def _fixed(dim: Any) -> int | None:
    """A dimension's size when fixed; None for a named or unknown (dynamic) dimension."""
    if isinstance(dim, (int, np.integer)) and dim > 0:
        return int(dim)
    return None


def _supported_input_shape(shape: list[Any]) -> bool:
    if len(shape) in (1, 2):
        return True
    if len(shape) == 3:
        return _fixed(shape[1]) in (None, 1)  # one channel, or a dynamic dimension fed 1
    return False


def _shape_text(shape: Any) -> str:
    if shape is None:
        return "[unknown]"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _arg_info(arg: Any) -> dict[str, Any]:
    dtype = arg.type
    if dtype.startswith("tensor(") and dtype.endswith(")"):
        dtype = dtype[len("tensor(") : -1]
        dtype = {"float": "float32", "double": "float64"}.get(dtype, dtype)
    return {"name": arg.name, "shape": list(arg.shape or []), "dtype": dtype}
