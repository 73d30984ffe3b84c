"""The adapter base: batching, call statistics, activation, label lookup and output checks.

freqrex evaluates a model thousands of times per clip, so the adapter does three things once
and for all: it finds out how to feed the model (input rank, fixed batch or length, dtype),
turns its outputs into probabilities the same way for every call (the activation is decided
from the first batch, the original clip), and counts every call in :class:`ModelStats`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from freqrex.audio import check_sample_rate
from freqrex.config import ACTIVATIONS, positive_int
from freqrex.errors import InputError, ModelError
from freqrex.model.activation import apply_activation, sigmoid, softmax
from freqrex.model.labels import check_labels
from freqrex.model.memory import PeakMeter, default_budget

__all__ = [
    "PROB_TOLERANCE",
    "Model",
    "ModelStats",
    "apply_activation",
    "optional_positive_int",
    "sigmoid",
    "softmax",
]

# Outputs this far outside [0, 1] still count as probabilities (float32 rounding of a softmax).
PROB_TOLERANCE = 1e-5

_MEASURED: dict[str, float] = {}  # model file -> the largest bytes/sample measured for it


def pass_rows(left: int, step: int) -> int:
    """Rows of the next pass over ``left`` rows in passes of ``step``: ``step``, unless
    that would leave one row alone (..., ``step - 1``, 2; or 3 once where ``step`` is 2).

    ONNX Runtime scores a one-row batch with other kernels (GEMV for GEMM) whose last bit
    can differ, so a memory budget or ``batch_size`` that cut off one row would change a
    score. A ``step`` of one is kept (the caller asked for one-row passes).
    """
    size = min(step, left)
    if left - size == 1 and size >= 2:
        size += -1 if size >= 3 else 1
    return size


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
    source : str or None
        The file the model was loaded from; None for models made in memory.
    max_memory : int
        Budget in bytes of one forward pass: its float32 input rows plus the activations
        the model allocates (see :meth:`waveforms_per_batch`). Default min(2 GiB, 25% RAM).
    memory_per_sample : float or None
        Bytes the model allocated per input sample of one waveform, measured on the first
        call (after :meth:`_warm_up`); None before it.
    held_factor : float
        How many passes' activations the runtime may hold at once, as counted in the
        budget: 1 where a pass frees what it allocated; more where the runtime keeps a
        warm pool between passes (ONNX Runtime's CPU arena, :class:`OnnxModel`).
    """

    def __init__(self, *, sample_rate: int | None = None,
                 labels: Sequence[str] | str | os.PathLike | None = None,
                 activation: str = "auto", batch_size: int = 32, input_length: int | None = None,
                 provider: str = "python", source: str | None = None,
                 max_memory: int | None = None) -> None:
        self.sample_rate = (None if sample_rate is None
                            else check_sample_rate(sample_rate, "sample_rate"))
        self.labels = check_labels(labels)
        self.activation = _check_activation(activation)
        self.requested_activation = self.activation  # what new_clip() goes back to
        self.batch_size = positive_int(batch_size, "batch_size")
        self.input_length = optional_positive_int(input_length, "input_length")
        self.provider = provider
        self.source = source
        self.stats = ModelStats()
        self.max_memory = (default_budget() if max_memory is None
                           else positive_int(max_memory, "max_memory"))
        self.memory_per_sample: float | None = None
        self.held_factor = 1.0
        self._n_classes: int | None = None
        self._labels_source = "labels argument"

    # -- to implement ------------------------------------------------------------------------

    def _forward(self, chunk: np.ndarray) -> Any:
        """Raw outputs ``[b, C]`` (array-like) for a float32 C-contiguous chunk ``[b, N]``."""
        raise NotImplementedError

    # -- public API --------------------------------------------------------------------------

    @property
    def n_classes(self) -> int | None:
        """Number of classes ``C``, when known (from the labels, the model or a first call)."""
        if self._n_classes is not None:
            return self._n_classes
        return len(self.labels) if self.labels is not None else None

    def waveforms_per_batch(self, n_samples: int, extra_bytes_per_waveform: int = 0) -> int:
        """How many waveforms of ``n_samples`` one model call may take within the budget.

        The contract for callers that build batches (the mutant synthesis): build at most
        this many waveforms at a time; :meth:`scores` splits every call the same way, so
        ``rows * (4 * n_samples + activations + extra) <= max_memory``, the activations
        per waveform measured on the first call (before it, a prior of 64 bytes per
        sample), times :attr:`held_factor`. Batching never changes a score (see
        :meth:`_forward_all`).

        Parameters
        ----------
        n_samples : int
            Samples per waveform.
        extra_bytes_per_waveform : int
            What the caller itself holds per waveform of the batch (e.g. ``8 * n_samples``
            for a float64 mutant row), counted against the same budget.

        Returns
        -------
        int
            Between 1 and :attr:`batch_size` (1 even when one waveform alone exceeds the
            budget: it must still be scored).
        """
        n = positive_int(n_samples, "n_samples")
        per_sample = self.memory_per_sample if self.memory_per_sample is not None else 64.0
        per_waveform = (4 * n + self.held_factor * per_sample * n
                        + max(0, int(extra_bytes_per_waveform)))
        return int(max(1, min(self.batch_size, self.max_memory // max(1.0, per_waveform))))

    def scores(self, batch: np.ndarray, finite: bool = True) -> np.ndarray:
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
        InputError
            For a batch of the wrong shape.
        ModelError
            For outputs of the wrong shape or not finite.

        Examples
        --------
        >>> model = CallableModel(lambda x: x[:, :3], sample_rate=16000)  # doctest: +SKIP
        >>> model.scores(np.ones((2, 8))).shape  # doctest: +SKIP
        (2, 3)
        """
        x = self._check_batch(batch)
        if x.shape[0] == 0:
            if self.n_classes is None:
                raise InputError("cannot score an empty batch before the classes are known")
            return np.empty((0, self.n_classes), dtype=np.float64)
        parts = self._forward_all(x)
        raw = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
        if not np.isfinite(raw).all():
            bad = ~np.all(np.isfinite(raw), axis=1)
            if finite:
                raise ModelError("the model returned NaN or infinite outputs; check the model "
                                 "and the input audio")
            raw = raw.copy()
            raw[bad] = np.nan   # the caller asked to see them: a whole row says "no answer"
        self._learn_classes(raw.shape[1])
        if self.activation == "auto":
            # Decided once, from the first batch (the original clip), so every later batch is
            # turned into probabilities the same way.
            self.activation = self.resolve_activation(raw)
        return raw

    def __call__(self, batch: np.ndarray, finite: bool = True) -> np.ndarray:
        """Class probabilities float64 ``[B, C]`` (raw outputs after :attr:`activation`).

        ``finite=False``: a waveform on which the model's output is not finite gets a row
        of NaN instead of a :class:`ModelError` (attacks that boost coefficients can drive
        a model there; the explanation's own mutants never should).
        """
        return apply_activation(self.scores(batch, finite=finite), self.activation)

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

    def new_clip(self) -> None:
        """Forget what the previous clip decided: an ``"auto"`` activation is resolved again
        from the next batch, so a reused model treats every clip alike (as a fresh one would).
        """
        self.activation = self.requested_activation

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
        InputError
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
            raise InputError(f"unknown class {target!r}; {self._known_classes()}")
        raise InputError(f"class must be an index or a label, got {target!r}")

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
            x = np.asarray(batch)
            if x.dtype.kind not in "fiub":
                x = x.astype(np.float32)
            # numbers are cast to float32 per pass (_forward_all): one pass's copy at a time
        except (TypeError, ValueError) as exc:
            raise InputError(f"a batch of waveforms must hold numbers ({exc})") from exc
        if x.ndim != 2:
            raise InputError(
                f"a batch of waveforms must be 2-D [B, N], got shape {x.shape}; "
                "use x[None, :] for one waveform"
            )
        if x.shape[1] == 0:
            raise InputError("the waveforms in the batch have no samples")
        if self.input_length is not None and x.shape[1] != self.input_length:
            raise InputError(
                f"the model takes {self.input_length} samples per waveform, got {x.shape[1]}; "
                "pad or crop the audio to that length (freqrex.audio.fit_length)"
            )
        return x

    def _forward_all(self, x: np.ndarray) -> list[np.ndarray]:
        """Raw outputs of ``x`` in passes of at most :meth:`waveforms_per_batch` rows (the
        first pass, sized by the prior, measures the activations for the rest).

        Where ``batch_size`` allows, no pass takes one row out of a larger call
        (:func:`pass_rows`); a pass then exceeds the budget by one waveform at most.
        """
        parts, start, rows = [], 0, x.shape[0]
        while start < rows:
            left = rows - start
            step = self._chunk_rows(x.shape[1])
            if not self._fixed_rows():
                step = pass_rows(left, max(step, min(2, self.batch_size)))
            rows32 = np.ascontiguousarray(x[start : start + step], dtype=np.float32)
            parts.append(self._timed_forward(rows32))
            start += step
        return parts

    def _fixed_rows(self) -> bool:
        """Whether the model takes one batch size only (its passes cannot be resized)."""
        return False

    def _chunk_rows(self, n_samples: int) -> int:
        return self.waveforms_per_batch(n_samples)

    def _warm_up(self, chunk: np.ndarray) -> None:
        """Run ``chunk`` once, uncounted, before the call that measures memory (no-op here):
        a GPU's first forward loads cuDNN and cuBLAS into host memory, not activations."""

    def _timed_forward(self, chunk: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        if self.memory_per_sample is None:
            self._warm_up(chunk)   # its time is the model's; it is no call
            with PeakMeter() as meter:
                out = self._forward(chunk)
            if meter.peak is not None:
                # memory freed earlier in this process is reused without growing the RSS:
                # a model file opened again keeps the largest measurement of it
                measured = meter.peak / (chunk.shape[0] * chunk.shape[1])
                key = self.source or ""
                self.memory_per_sample = max(measured, _MEASURED.get(key, 0.0))
                if key:
                    _MEASURED[key] = self.memory_per_sample
        else:
            out = self._forward(chunk)
        self.stats.seconds += time.perf_counter() - start
        self.stats.calls += 1
        self.stats.samples += chunk.shape[0]
        return _check_output(out, chunk.shape[0])

    def _learn_classes(self, n: int) -> None:
        if self.labels is not None and len(self.labels) != n:
            raise ModelError(
                f"the model has {n} classes but {len(self.labels)} labels were given "
                f"({self._labels_source}); give exactly one label per class"
            )
        if self._n_classes is not None and self._n_classes != n:
            raise ModelError(f"the model returned {n} classes, earlier {self._n_classes}")
        self._n_classes = n

    def _check_index(self, index: int) -> int:
        n = self.n_classes
        if index < 0 or (n is not None and index >= n):
            limit = f"0-{n - 1}" if n is not None else "0 or more"
            raise InputError(f"class {index} is out of range; give an index in {limit}")
        return index

    def _known_classes(self) -> str:
        if not self.labels:
            n = self.n_classes
            hint = f" (0-{n - 1})" if n else ""
            return f"the model has no labels, give a class index{hint}"
        shown = ", ".join(self.labels[:20])
        more = f", ... ({len(self.labels)} in all)" if len(self.labels) > 20 else ""
        return f"known: {shown}{more}"


def _check_output(out: Any, rows: int) -> np.ndarray:
    try:
        arr = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"the model returned {type(out).__name__}, not an array of scores ({exc})"
        ) from exc
    if arr.ndim != 2 or arr.shape[0] != rows or arr.shape[1] == 0:
        raise ModelError(
            f"the model returned shape {arr.shape} for {rows} waveforms; "
            f"freqrex needs scores of shape [B, C] = [{rows}, C]"
        )
    return arr


# -- validation helpers ------------------------------------------------------------------------


def optional_positive_int(value: Any, name: str) -> int | None:
    """None, or ``value`` checked by :func:`freqrex.config.positive_int`."""
    return None if value is None else positive_int(value, name)


def _check_activation(activation: str) -> str:
    if activation not in ACTIVATIONS:
        raise InputError(
            f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}"
        )
    return activation
