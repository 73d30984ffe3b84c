"""ONNX Runtime models: sessions, execution providers, thread options, input/output binding.

onnxruntime is imported only when a model is opened, so ``import freqrex.model`` stays light.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from freqrex.config import ModelConfig
from freqrex.errors import ModelError, first_line
from freqrex.model.base import Model, optional_positive_int
from freqrex.model.labels import labels_from_metadata, load_labels, rate_from_metadata
from freqrex.model.memory import device_memory, rss_bytes
from freqrex.model.opening import (
    ORT_LOG_SEVERITY,
    describe_source,
    is_model_proto,
    is_session,
    narrow_session,
    open_session,
    providers_for,
)
from freqrex.model.sessions import SessionRunner
from freqrex.model.shapes import arg_info, channels_last, fixed, shape_text, supported_input_shape

__all__ = ["OnnxModel", "is_onnx", "load_model", "providers_for"]

# ONNX element types a waveform input may have; other float widths are cast to these.
_FLOAT_INPUTS: dict[str, type[np.floating]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
}

_SUPPORTED_INPUTS = "[N], [B, N], [B, 1, N] or [B, N, 1] (float32, float16 or float64)"

# ORT's run option that returns the CPU arena's free memory to the system after a run.
ARENA_SHRINKAGE = "memory.enable_memory_arena_shrinkage"
ARENA_HOLDS = 2.0
"""Passes' peaks a warm CPU arena may hold (power-of-two extensions, one memory pattern
per batch shape: 1.6-2.0x one pass's peak measured on the bundled tagger and model)."""


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
                     providers=options.provider, threads=options.threads,
                     sessions=options.sessions, max_memory=options.max_memory)


def is_onnx(obj: Any) -> bool:
    """Whether ``obj`` is something :class:`OnnxModel` opens (path, bytes, proto, session)."""
    return isinstance(obj, (str, os.PathLike, bytes)) or is_session(obj) or is_model_proto(obj)


class OnnxModel(Model):
    """An ONNX classifier run with ONNX Runtime.

    Parameters
    ----------
    path_or_session : str, path-like, bytes, onnx.ModelProto or onnxruntime.InferenceSession
        The model. Its single input must be a waveform of shape ``[N]``, ``[B, N]``,
        ``[B, 1, N]`` or ``[B, N, 1]`` (float32, float16 or float64; each dimension fixed
        or dynamic) and its first output ``[B, C]`` (``[C]`` for a ``[N]`` input).
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
    sessions : int, optional
        Concurrent single-threaded runs on parts of each batch (1: one session with
        ``threads``); measured at the first calls when omitted (see
        :mod:`freqrex.model.sessions`; :attr:`throughput` records the choice). The scores
        never depend on it.
    max_memory : int, optional
        Budget in bytes of one forward pass (see :meth:`Model.waveforms_per_batch`). On
        CUDA, passes are also sized to half the device memory free at opening.

    Attributes
    ----------
    path : pathlib.Path or None
        The file the model came from; None for bytes, protos and sessions.
    name : str
        How messages name the model: its path, or "the ONNX model" / "the ONNX session".
    throughput : freqrex.model.sessions.Throughput
        How forward passes run (one session or concurrent runs) and the rates measured.

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
        sessions: int | None = None,
        max_memory: int | None = None,
    ) -> None:
        self.name = describe_source(path_or_session)
        self.path = (
            Path(path_or_session) if isinstance(path_or_session, (str, os.PathLike)) else None
        )
        self.session = open_session(
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
            max_memory=max_memory,
        )
        if labels is None:
            self.labels = labels_from_metadata(meta, self.name)
            self._labels_source = f"metadata of {self.name}"
        self._bind_input()
        self._bind_output()
        ort = sys.modules["onnxruntime"]  # imported by the session
        self._run_options = ort.RunOptions()
        self._run_options.log_severity_level = ORT_LOG_SEVERITY
        self._shrink_options = ort.RunOptions()
        self._shrink_options.log_severity_level = ORT_LOG_SEVERITY
        self._shrink_options.add_run_config_entry(ARENA_SHRINKAGE, "cpu:0")
        # a session given without a CPU arena has none to shrink (ORT then refuses the run)
        self._arena = (self.provider == "CPUExecutionProvider"
                       and bool(self.session.get_session_options().enable_cpu_mem_arena))
        if self._arena:
            self.held_factor = ARENA_HOLDS
        self._resident: tuple[int, int | None] = (0, None)   # (clip length, bytes held)
        threads = optional_positive_int(threads, "threads")
        sessions = optional_positive_int(sessions, "sessions")
        # IO binding on a GPU: each pass's rows are uploaded once, only the scores come back
        self._bind = self.provider != "CPUExecutionProvider"
        self._device_budget = _device_budget() if self.provider.startswith("CUDA") else None
        self._device_per_sample: float | None = None
        self._runner = SessionRunner(self._run_on, self.session,
                                     lambda: narrow_session(path_or_session), sessions,
                                     _no_pool(self, path_or_session, sessions, threads))
        self.throughput = self._runner.throughput

    def _bind_input(self) -> None:
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            listed = ", ".join(f"{i.name} {shape_text(i.shape)}" for i in inputs)
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
        if not supported_input_shape(shape):
            raise ModelError(
                f"{self.name} input {inp.name!r} has shape {shape_text(shape)}; freqrex "
                f"supports {_SUPPORTED_INPUTS}"
            )
        self.input_name: str = inp.name
        self.input_dtype: type[np.floating] = _FLOAT_INPUTS[inp.type]
        self.input_rank = len(shape)
        # [B, N, 1] (channels last) puts the samples in the middle; every other layout last
        self.channels_last = channels_last(shape)
        self.input_length = fixed(shape[1] if self.channels_last else shape[-1])
        if self.input_length == 1:
            raise ModelError(
                f"{self.name} input {inp.name!r} has shape {shape_text(shape)}: one sample "
                f"per waveform; freqrex supports {_SUPPORTED_INPUTS}")
        self.fixed_batch = 1 if self.input_rank == 1 else fixed(shape[0])
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
                f"{self.name} output {out.name!r} has shape {shape_text(shape)}; freqrex "
                f"needs class scores of shape {wanted}"
            )
        classes = fixed(shape[-1])
        if classes is not None:
            self._learn_classes(classes)

    def _warm_up(self, chunk: np.ndarray) -> None:
        # a GPU provider's first run sets up the device (Model._warm_up); the device's own
        # memory is measured on it (_forward), arena growth included, to err on the safe side
        if self._bind:
            self._forward(chunk)

    def _forward(self, chunk: np.ndarray) -> np.ndarray:
        if self._device_budget is not None and self._device_per_sample is None:
            return self._measure_device(chunk)
        return self._runner(chunk)

    def _fixed_rows(self) -> bool:
        return self.fixed_batch is not None

    def _chunk_rows(self, n_samples: int) -> int:
        if self.fixed_batch is not None:
            return self.fixed_batch  # the model takes no other size
        rows = self.waveforms_per_batch(n_samples)
        if self._device_budget is not None:
            per = (self._device_per_sample or 64.0) * n_samples + 4 * n_samples
            rows = max(1, min(rows, int(self._device_budget // per)))
        return rows

    def _measure_device(self, chunk: np.ndarray) -> np.ndarray:
        before = device_memory()
        out = self._runner(chunk)
        after = device_memory()
        if before is not None and after is not None:
            used = max(0, before[0] - after[0])  # the device arena's growth for this pass
            self._device_per_sample = used / (chunk.shape[0] * chunk.shape[1])
        else:
            self._device_budget = None  # cannot be measured: batch_size and max_memory rule
        return out

    def _run_on(self, session: Any, chunk: np.ndarray) -> np.ndarray:
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
            feed = feed[:, :, None] if self.channels_last else feed[:, None, :]
        try:
            if self._bind:
                binding = session.io_binding()
                binding.bind_cpu_input(self.input_name, np.ascontiguousarray(feed))
                binding.bind_output(self.output_name, "cpu")
                session.run_with_iobinding(binding, self._run_options)
                out = binding.copy_outputs_to_cpu()[0]
            else:
                out = session.run([self.output_name], {self.input_name: feed},
                                  self._options_for(chunk.shape[1]))[0]
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

    def _options_for(self, n_samples: int) -> Any:
        """The run options of a CPU pass: arena shrinkage only where the arena would
        otherwise outgrow the budget.

        ONNX Runtime's CPU arena keeps the largest memory it ever held and grows past what
        a pass needs (power-of-two extensions, a new memory pattern per batch shape): on
        a 2-minute clip of the bundled model it held 2.2 GB after passes whose peak was
        0.9-1.2 GB. A shrunk arena faults its pages in again on the next pass, which costs
        more than the pass's arithmetic on a model with large activations (the bundled
        tagger, 10 s, 23 rows: 7-10 waveforms/s shrunk against 15-17 warm). So passes
        the budget limits are sized for an arena holding :data:`ARENA_HOLDS` of them
        (:attr:`held_factor`) and keep it warm; they shrink it while the two ways of
        running are measured (each has its own arena, and one is then dropped) and
        whenever the process has grown more than the budget above what it held before
        the first such pass of this clip length (the clip, its spectrum and the model are
        there by then). Short clips (rows capped by ``batch_size``) keep the warm arena.
        Which options a pass runs with never changes its scores.
        """
        rows = self.waveforms_per_batch(n_samples)
        if not self._arena or rows >= self.batch_size:
            return self._run_options
        if self._resident[0] != n_samples:
            self._resident = (n_samples, rss_bytes())
        if self._runner.measures(rows) or self._over_budget():
            return self._shrink_options
        return self._run_options

    def _over_budget(self) -> bool:
        before, now = self._resident[1], rss_bytes()
        return before is not None and now is not None and now - before > self.max_memory

    def describe(self) -> dict[str, Any]:
        """What ``freqrex info`` shows, with the ONNX inputs and outputs as declared."""
        info = super().describe()
        info["inputs"] = [arg_info(a) for a in self.session.get_inputs()]
        info["outputs"] = [arg_info(a) for a in self.session.get_outputs()]
        info["source"] = self.name
        info["throughput"] = self.throughput.to_dict()
        info["max_memory"] = self.max_memory
        return info


def _no_pool(model: OnnxModel, obj: Any, sessions: int | None,
             threads: int | None) -> str | None:
    """Why forward passes cannot or should not be split over concurrent runs, if so."""
    if model.provider != "CPUExecutionProvider":
        return "provider"
    if model.fixed_batch is not None:
        return "fixed batch"
    if is_session(obj):
        return "given a session"  # nothing to open a single-threaded copy from
    if sessions is None and threads == 1:
        return "one thread per call"  # e.g. one process per core: the cores are taken
    return None


def _device_budget() -> int | None:
    memory = device_memory()
    return None if memory is None else memory[0] // 2
