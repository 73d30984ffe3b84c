"""The model adapter: any audio classifier as a black box from waveforms to class probabilities.

freqrex evaluates a model thousands of times per clip, so the adapter does three things once and
for all: it finds out how to feed the model (input rank, fixed batch or length, dtype), turns its
outputs into probabilities the same way for every call (the activation is decided from the first
batch, the original clip), and counts every call in :class:`ModelStats`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from freqrex.errors import FreqrexError, FreqrexWarning

ACTIVATIONS = ("auto", "softmax", "sigmoid", "none")

# Outputs this far outside [0, 1] still count as probabilities (float32 rounding of a softmax).
PROB_TOLERANCE = 1e-5

# ONNX element types a waveform input may have; other float widths are cast to these.
_FLOAT_INPUTS = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
}

_SUPPORTED_INPUTS = "[N], [B, N] or [B, 1, N] (float32, float16 or float64)"

__all__ = [
    "ACTIVATIONS",
    "CallableModel",
    "Model",
    "ModelStats",
    "OnnxModel",
    "as_model",
    "load_labels",
]


@dataclass
class ModelStats:
    """Counts of every model call.

    Attributes
    ----------
    calls : int
        Forward passes (``session.run`` or ``fn`` calls).
    samples : int
        Waveforms evaluated (padding rows added for a fixed batch size are not counted).
    seconds : float
        Wall time spent inside inference only.
    """

    calls: int = 0
    samples: int = 0
    seconds: float = 0.0

    def reset(self) -> None:
        """Set every count back to zero."""
        self.calls = 0
        self.samples = 0
        self.seconds = 0.0


class Model:
    """A black box mapping float32 waveforms ``[B, N]`` to class probabilities ``[B, C]``.

    Subclasses implement :meth:`_forward` for one chunk of at most :attr:`batch_size` rows.

    Attributes
    ----------
    sample_rate : int or None
        Rate the model expects, when known.
    labels : list of str or None
        Class names, when known.
    input_length : int or None
        Fixed number of samples ``N`` the model takes, or None when any length works.
    activation : str
        ``"auto"`` until the first batch is scored, then ``"softmax"``, ``"sigmoid"`` or
        ``"none"``.
    batch_size : int
        Most waveforms per forward pass.
    stats : ModelStats
        Counts of every call.
    provider : str
        Where inference runs: an ONNX Runtime execution provider, or ``"python"``.
    """

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        labels: Sequence[str] | str | os.PathLike | None = None,
        activation: str = "auto",
        batch_size: int = 32,
        input_length: int | None = None,
        provider: str = "python",
    ) -> None:
        self.sample_rate = _optional_positive_int(sample_rate, "sample_rate")
        self.labels = _check_labels(labels)
        self.activation = _check_activation(activation)
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.input_length = _optional_positive_int(input_length, "input_length")
        self.provider = provider
        self.stats = ModelStats()
        self._n_classes: int | None = None
        self._labels_source = "labels argument"

    # -- to implement ------------------------------------------------------------------------

    def _forward(self, chunk: np.ndarray) -> np.ndarray:
        """Raw outputs ``[b, C]`` for a float32 C-contiguous chunk ``[b, N]``."""
        raise NotImplementedError

    # -- public API --------------------------------------------------------------------------

    @property
    def n_classes(self) -> int | None:
        """Number of classes ``C``, when known (from the labels, the model or a first call)."""
        if self._n_classes is not None:
            return self._n_classes
        return len(self.labels) if self.labels is not None else None

    def scores(self, batch: np.ndarray) -> np.ndarray:
        """Raw model outputs, before any activation.

        Parameters
        ----------
        batch : numpy.ndarray
            Waveforms ``[B, N]``; cast to float32. ``N`` must equal :attr:`input_length` when
            that is fixed.

        Returns
        -------
        numpy.ndarray
            float64 ``[B, C]``. The batch is split into chunks of :attr:`batch_size`; every
            chunk is one counted call.

        Raises
        ------
        FreqrexError
            For a batch of the wrong shape, or outputs of the wrong shape or not finite.
        """
        x = self._check_batch(batch)
        if x.shape[0] == 0:
            if self.n_classes is None:
                raise FreqrexError("cannot score an empty batch before the classes are known")
            return np.empty((0, self.n_classes), dtype=np.float64)
        parts = [self._timed_forward(x[i : i + self.batch_size]) for i in self._starts(x)]
        raw = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
        if not np.all(np.isfinite(raw)):
            raise FreqrexError(
                "the model returned NaN or infinite outputs; check the model and the input audio"
            )
        self._learn_classes(raw.shape[1])
        if self.activation == "auto":
            # Decided once, from the first batch (the original clip), so every later batch is
            # turned into probabilities the same way.
            self.activation = self.resolve_activation(raw)
        return raw

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities float64 ``[B, C]`` (raw outputs after :attr:`activation`)."""
        return apply_activation(self.scores(batch), self.activation)

    def resolve_activation(self, raw: np.ndarray) -> str:
        """Choose how raw outputs become probabilities.

        Parameters
        ----------
        raw : numpy.ndarray
            Raw outputs ``[B, C]`` of the first batch.

        Returns
        -------
        str
            ``"none"`` when every value lies in [0, 1] (rows summing to one are already a
            distribution; other rows are independent sigmoid probabilities, kept as they are);
            otherwise ``"softmax"`` (logits), or ``"sigmoid"`` for a single output column,
            whose softmax would always be 1.
        """
        raw = np.asarray(raw, dtype=np.float64)
        if raw.size and raw.min() >= -PROB_TOLERANCE and raw.max() <= 1 + PROB_TOLERANCE:
            return "none"
        if raw.ndim == 2 and raw.shape[1] == 1:
            return "sigmoid"
        return "softmax"

    def label(self, index: int) -> str:
        """Name of class ``index``: its label, or ``"class_<index>"`` without one."""
        index = int(index)
        if self.labels is not None and 0 <= index < len(self.labels):
            return self.labels[index]
        return f"class_{index}"

    def class_index(self, target: int | str) -> int:
        """Index of a class given by index or label.

        Parameters
        ----------
        target : int or str
            A class index, a label, or a string of digits (as typed on the command line).

        Raises
        ------
        FreqrexError
            For an unknown label or an index out of range.
        """
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
            return self._check_index(int(target))
        if isinstance(target, str):
            if self.labels is not None and target in self.labels:
                return self.labels.index(target)
            text = target.strip()
            if text.lstrip("-").isdigit():
                return self._check_index(int(text))
            raise FreqrexError(f"unknown class {target!r}; {self._known_classes()}")
        raise FreqrexError(f"class must be an index or a label, got {target!r}")

    def describe(self) -> dict[str, Any]:
        """What ``freqrex info`` shows: inputs and outputs, rate, labels, provider, activation."""
        n = self.input_length if self.input_length is not None else "N"
        return {
            "inputs": [{"name": "waveform", "shape": ["B", n], "dtype": "float32"}],
            "outputs": [{"name": "scores", "shape": ["B", self.n_classes], "dtype": "float64"}],
            "sample_rate": self.sample_rate,
            "labels": self.labels,
            "n_classes": self.n_classes,
            "input_length": self.input_length,
            "batch_size": self.batch_size,
            "provider": self.provider,
            "activation": self.activation,
        }

    # -- internals ---------------------------------------------------------------------------

    def _check_batch(self, batch: np.ndarray) -> np.ndarray:
        try:
            x = np.asarray(batch, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise FreqrexError(f"a batch of waveforms must hold numbers ({exc})") from exc
        if x.ndim != 2:
            raise FreqrexError(
                f"a batch of waveforms must be 2-D [B, N], got shape {x.shape}; "
                "use x[None, :] for one waveform"
            )
        if x.shape[1] == 0:
            raise FreqrexError("the waveforms in the batch have no samples")
        if self.input_length is not None and x.shape[1] != self.input_length:
            raise FreqrexError(
                f"the model takes {self.input_length} samples per waveform, got {x.shape[1]}; "
                "pad or crop the audio to that length (freqrex.audio.fit_length)"
            )
        return np.ascontiguousarray(x)

    def _starts(self, x: np.ndarray) -> range:
        return range(0, x.shape[0], self.batch_size)

    def _timed_forward(self, chunk: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        out = self._forward(chunk)
        self.stats.seconds += time.perf_counter() - start
        self.stats.calls += 1
        self.stats.samples += chunk.shape[0]
        return self._check_output(out, chunk.shape[0])

    def _check_output(self, out: Any, rows: int) -> np.ndarray:
        try:
            arr = np.asarray(out, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise FreqrexError(
                f"the model returned {type(out).__name__}, not an array of scores ({exc})"
            ) from exc
        if arr.ndim != 2 or arr.shape[0] != rows or arr.shape[1] == 0:
            raise FreqrexError(
                f"the model returned shape {arr.shape} for {rows} waveforms; "
                f"freqrex needs scores of shape [B, C] = [{rows}, C]"
            )
        return arr

    def _learn_classes(self, n: int) -> None:
        if self.labels is not None and len(self.labels) != n:
            raise FreqrexError(
                f"the model has {n} classes but {len(self.labels)} labels were given "
                f"({self._labels_source}); give exactly one label per class"
            )
        if self._n_classes is not None and self._n_classes != n:
            raise FreqrexError(f"the model returned {n} classes, earlier {self._n_classes}")
        self._n_classes = n

    def _check_index(self, index: int) -> int:
        n = self.n_classes
        if index < 0 or (n is not None and index >= n):
            limit = f"0-{n - 1}" if n is not None else "0 or more"
            raise FreqrexError(f"class {index} is out of range; give an index in {limit}")
        return index

    def _known_classes(self) -> str:
        if not self.labels:
            n = self.n_classes
            hint = f" (0-{n - 1})" if n else ""
            return f"the model has no labels, give a class index{hint}"
        shown = ", ".join(self.labels[:20])
        more = f", ... ({len(self.labels)} in all)" if len(self.labels) > 20 else ""
        return f"known: {shown}{more}"


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
    providers : "auto" or list of str
        ``"auto"`` uses CUDA when it really initialises, else the CPU.
    threads : int, optional
        CPU threads ONNX Runtime may use within one call (``intra_op_num_threads``); its own
        default (one per core) when omitted. Use 1 when several processes share the cores.

    Raises
    ------
    FreqrexError
        When the file is not a valid ONNX model or its inputs or outputs are unsupported.
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
        self.source = _describe_source(path_or_session)
        # the file the model came from; None for bytes, protos and sessions
        self.path = (
            Path(path_or_session) if isinstance(path_or_session, (str, os.PathLike)) else None
        )
        self.session = _open_session(
            path_or_session, providers, _optional_positive_int(threads, "threads")
        )
        meta = self.session.get_modelmeta().custom_metadata_map or {}
        super().__init__(
            sample_rate=sample_rate if sample_rate is not None else _meta_rate(meta, self.source),
            labels=labels,
            activation=activation,
            batch_size=batch_size,
            provider=self.session.get_providers()[0],
        )
        if labels is None:
            self.labels = _meta_labels(meta, self.source)
            self._labels_source = f"metadata of {self.source}"
        self._bind_input()
        self._bind_output()

    def _bind_input(self) -> None:
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            listed = ", ".join(f"{i.name} {_shape_text(i.shape)}" for i in inputs)
            raise FreqrexError(
                f"{self.source} has {len(inputs)} inputs ({listed}); freqrex supports one "
                f"waveform input of shape {_SUPPORTED_INPUTS}"
            )
        inp = inputs[0]
        if inp.type not in _FLOAT_INPUTS:
            raise FreqrexError(
                f"{self.source} input {inp.name!r} has type {inp.type}; freqrex supports a "
                f"waveform input of shape {_SUPPORTED_INPUTS}"
            )
        shape = list(inp.shape or [])
        if not _supported_input_shape(shape):
            raise FreqrexError(
                f"{self.source} input {inp.name!r} has shape {_shape_text(shape)}; freqrex "
                f"supports {_SUPPORTED_INPUTS}"
            )
        self.input_name = inp.name
        self.input_dtype = _FLOAT_INPUTS[inp.type]
        self.input_rank = len(shape)
        self.input_length = _fixed(shape[-1])
        fixed_batch = 1 if self.input_rank == 1 else _fixed(shape[0])
        self.fixed_batch = fixed_batch
        if fixed_batch is not None:
            self.batch_size = fixed_batch

    def _bind_output(self) -> None:
        out = self.session.get_outputs()[0]
        self.output_name = out.name
        shape = out.shape
        if not shape:
            # ORT reports [] (or None) when the model declares no output shape; the rank is then
            # checked on the first run instead.
            return
        rank_ok = len(shape) == 2 or (self.input_rank == 1 and len(shape) == 1)
        if not rank_ok:
            wanted = "[C] or [1, C]" if self.input_rank == 1 else "[B, C]"
            raise FreqrexError(
                f"{self.source} output {out.name!r} has shape {_shape_text(shape)}; freqrex "
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
            raise FreqrexError(
                f"{self.source} failed on input of shape {tuple(feed.shape)} "
                f"({_first_line(exc)}); check the model's expected input length"
            ) from exc
        out = np.asarray(out)
        if self.input_rank == 1 and out.ndim == 1:
            out = out[None, :]
        if out.ndim != 2:
            raise FreqrexError(
                f"{self.source} returned shape {out.shape}; freqrex needs class scores of "
                "shape [B, C]"
            )
        return out[:rows]

    def describe(self) -> dict[str, Any]:
        """What ``freqrex info`` shows, with the ONNX inputs and outputs as declared."""
        info = super().describe()
        info["inputs"] = [_arg_info(a) for a in self.session.get_inputs()]
        info["outputs"] = [_arg_info(a) for a in self.session.get_outputs()]
        info["source"] = self.source
        return info


class CallableModel(Model):
    """A Python function used as a model.

    Parameters
    ----------
    fn : callable
        Maps float32 numpy ``[B, N]`` to an array-like ``[B, C]`` (numpy, lists, or a torch
        tensor, converted by duck typing without importing torch).
    sample_rate, labels, activation, batch_size
        As for :class:`OnnxModel`.
    input_length : int, optional
        Fixed number of samples the function takes.
    """

    def __init__(
        self,
        fn: Callable[[np.ndarray], Any],
        *,
        sample_rate: int | None = None,
        labels: Sequence[str] | str | os.PathLike | None = None,
        activation: str = "auto",
        batch_size: int = 32,
        input_length: int | None = None,
    ) -> None:
        if not callable(fn):
            raise FreqrexError(f"a model function must be callable, got {type(fn).__name__}")
        super().__init__(
            sample_rate=sample_rate,
            labels=labels,
            activation=activation,
            batch_size=batch_size,
            input_length=input_length,
            provider="python",
        )
        self.fn = fn

    def _forward(self, chunk: np.ndarray) -> np.ndarray:
        out = self.fn(chunk)
        if hasattr(out, "detach"):
            out = out.detach()
        if hasattr(out, "cpu"):
            out = out.cpu()
        if hasattr(out, "numpy") and not isinstance(out, np.ndarray):
            out = out.numpy()
        return out


def as_model(obj: Any, **kwargs: Any) -> Model:
    """Wrap anything freqrex can evaluate as a :class:`Model`.

    Parameters
    ----------
    obj : Model, str, path-like, bytes, onnx.ModelProto, onnxruntime.InferenceSession or callable
        A :class:`Model` is returned unchanged (``kwargs`` are ignored: it carries its own
        settings); paths, serialized models and sessions become :class:`OnnxModel`; other
        callables become :class:`CallableModel`.
    **kwargs
        Constructor options. Options the chosen class does not take are dropped when None
        (``providers`` is always dropped for a callable) and rejected otherwise.

    Raises
    ------
    FreqrexError
        For anything else.
    """
    if isinstance(obj, Model):
        return obj
    if isinstance(obj, (str, os.PathLike, bytes)) or _is_session(obj) or _is_model_proto(obj):
        return OnnxModel(obj, **_options(kwargs, _ONNX_OPTIONS, "an ONNX model"))
    if callable(obj):
        kwargs = {k: v for k, v in kwargs.items() if k != "providers"}
        return CallableModel(obj, **_options(kwargs, _CALLABLE_OPTIONS, "a Python callable"))
    raise FreqrexError(
        f"cannot use a {type(obj).__name__} as a model; give an .onnx path, an onnxruntime "
        "InferenceSession or a function from waveforms [B, N] to scores [B, C]"
    )


def load_labels(path: str | os.PathLike) -> list[str]:
    """Read class labels: a text file with one label per line, or a JSON list.

    Raises
    ------
    FreqrexError
        When the file is missing or unreadable, holds no labels, an empty label or a duplicate.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise FreqrexError(f"labels file {path} {what}; give a text file with one label per line")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FreqrexError(f"labels file {path} could not be read as UTF-8 text ({exc})") from exc
    text = text.strip()
    if text.startswith("["):
        try:
            labels = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FreqrexError(f"labels file {path} is not a valid JSON list ({exc})") from exc
    else:
        labels = [line.strip() for line in text.splitlines()]
    return _check_labels(labels, f"labels file {path}")


# -- activation --------------------------------------------------------------------------------


def apply_activation(raw: np.ndarray, activation: str) -> np.ndarray:
    """Turn raw scores ``[B, C]`` into probabilities with a resolved activation."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.size == 0:
        return raw.copy()  # an empty batch needs no activation (and cannot resolve one)
    if activation == "softmax":
        return softmax(raw)
    if activation == "sigmoid":
        return sigmoid(raw)
    if activation == "none":
        return raw.copy()
    raise FreqrexError(f"activation {activation!r} is not resolved; score a batch first")


def softmax(raw: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits (the row maximum is subtracted first)."""
    shifted = raw - raw.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(raw: np.ndarray) -> np.ndarray:
    """Element-wise logistic function, without overflow for large negative scores."""
    return np.exp(-np.logaddexp(0.0, -raw))


# -- validation helpers ------------------------------------------------------------------------


def _check_activation(activation: str) -> str:
    if activation not in ACTIVATIONS:
        raise FreqrexError(
            f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}"
        )
    return activation


def _positive_int(value: Any, name: str) -> int:
    # Integral floats (16000.0, e.g. from JSON) are accepted; 2.5, "16k" or True are not.
    ok = isinstance(value, (int, np.integer)) or (
        isinstance(value, (float, np.floating)) and math.isfinite(value) and value == int(value)
    )
    if isinstance(value, bool) or not ok or value <= 0:
        raise FreqrexError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _optional_positive_int(value: Any, name: str) -> int | None:
    return None if value is None else _positive_int(value, name)


def _check_labels(labels: Any, source: str = "labels") -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, (str, os.PathLike)):
        return load_labels(labels)
    if not isinstance(labels, (list, tuple)) or not labels:
        raise FreqrexError(f"{source} must be a non-empty list of class names")
    if any(isinstance(label, (dict, list, tuple)) for label in labels):
        raise FreqrexError(f"{source} must list class names as strings")
    names = [str(label).strip() for label in labels]
    for i, name in enumerate(names):
        if not name:
            raise FreqrexError(f"{source}: label {i} is empty; give one name per class")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise FreqrexError(f"{source}: label {name!r} appears twice; labels must be unique")
        seen.add(name)
    return names


# -- ONNX helpers ------------------------------------------------------------------------------


_ONNX_OPTIONS = ("sample_rate", "labels", "activation", "batch_size", "providers", "threads")
_CALLABLE_OPTIONS = ("sample_rate", "labels", "activation", "batch_size", "input_length")


def _options(kwargs: dict[str, Any], allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    out = {}
    for key, value in kwargs.items():
        if key in allowed:
            out[key] = value
        elif value is not None:
            raise FreqrexError(f"option {key!r} does not apply to {what}")
    return out


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
    import onnxruntime as ort

    if _is_session(obj):
        return obj
    if _is_model_proto(obj):
        obj = obj.SerializeToString()
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if not path.exists():
            raise FreqrexError(f"{path} is not a valid ONNX model (file not found)")
        if path.is_dir():
            raise FreqrexError(f"{path} is not a valid ONNX model (it is a directory)")
        obj = str(path)
    elif not isinstance(obj, bytes):
        raise FreqrexError(
            f"cannot load a {type(obj).__name__} as an ONNX model; give a path, bytes or an "
            "onnxruntime InferenceSession"
        )
    ort.set_default_logger_severity(3)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if isinstance(providers, str) and providers == "auto":
        return _auto_session(ort, obj, options)
    names = [providers] if isinstance(providers, str) else list(providers)
    available = ort.get_available_providers()
    unknown = [name for name in names if name not in available]
    if not names or unknown:
        raise FreqrexError(
            f"unknown execution provider {', '.join(unknown) or '(none given)'}; available: "
            f"{', '.join(available)}"
        )
    session = _quiet_session(ort, obj, options, names)
    if session.get_providers()[0] != names[0]:
        warnings.warn(
            f"{names[0]} could not be initialised; running on {session.get_providers()[0]}",
            FreqrexWarning,
            stacklevel=4,
        )
    return session


# Whether CUDA really initialised, learnt once per process: a failed attempt costs time and, in
# ORT, a burst of log lines, so it is not repeated for every model.
_cuda_works: bool | None = None


def _auto_session(ort: Any, obj: Any, options: Any) -> Any:
    global _cuda_works
    if _cuda_works is not False and "CUDAExecutionProvider" in ort.get_available_providers():
        try:
            session = _quiet_session(
                ort, obj, options, ["CUDAExecutionProvider", "CPUExecutionProvider"]
            )
        except FreqrexError:
            session = None  # CUDA can fail at creation; the CPU-only attempt below reports
        if session is not None and session.get_providers()[0] == "CUDAExecutionProvider":
            _cuda_works = True
            return session
        if session is not None:
            # CUDA was requested but not registered: it cannot initialise in this process. (A
            # failure to create the session says nothing: it could be the model's fault.)
            _cuda_works = False
            return session
    return _new_session(ort, obj, options, ["CPUExecutionProvider"])


def _quiet_session(ort: Any, obj: Any, options: Any, providers: list[str]) -> Any:
    # A GPU provider whose libraries are missing logs a burst of lines at error level (3), and
    # freqrex then runs on the CPU anyway; only the fatal level (4) silences them.
    ort.set_default_logger_severity(4)
    try:
        return _new_session(ort, obj, options, providers)
    finally:
        ort.set_default_logger_severity(3)


def _new_session(ort: Any, obj: Any, options: Any, providers: list[str]) -> Any:
    where = obj if isinstance(obj, str) else "the ONNX model"
    try:
        return ort.InferenceSession(obj, sess_options=options, providers=providers)
    except Exception as exc:  # ORT raises Fail, InvalidProtobuf, ValueError, ...
        raise FreqrexError(f"{where} is not a valid ONNX model ({_first_line(exc)})") from exc


def _meta_rate(meta: dict[str, str], source: str) -> int | None:
    text = meta.get("sample_rate")
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0 or value != int(value):
        raise FreqrexError(
            f"{source} metadata sample_rate {text!r} is not a positive integer; pass "
            "sample_rate explicitly"
        )
    return int(value)


def _meta_labels(meta: dict[str, str], source: str) -> list[str] | None:
    text = meta.get("labels")
    if text is None or not text.strip():
        return None
    text = text.strip()
    if text.startswith("["):
        try:
            labels = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FreqrexError(
                f"{source} metadata labels is not a valid JSON list ({exc}); pass labels explicitly"
            ) from exc
    else:
        labels = text.split(",")
    return _check_labels(labels, f"{source} metadata labels")


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
