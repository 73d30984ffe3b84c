"""Oracle models whose right answer is known: the class is the frequency band with most energy.

Built in code with ``onnx.helper`` (nothing downloaded, nothing unpickled). The ONNX graph and
the numpy function compute the same thing, in float64 by default so they agree to ~1e-9:

    E_c = sum of |rfft(w * x)_k|^2 over bins k with k * sr / N in [lo_c, hi_c)
    scores_c = log(E_c + 1e-12)          (output="logits": softmax = share of band energy)
    scores_c = E_c / sum_c E_c           (output="probs")

where ``w`` is 1 everywhere, or 1 only for samples ``n`` with ``t0 <= n / sr < t1`` when
``time_span_s=(t0, t1)`` is given. ``N`` is read from the input at run time, so one model takes
any length. The ONNX ``DFT`` op in ONNX Runtime is fastest for power-of-two lengths (16384
samples: ~1.5 ms per waveform in float64, ~0.6 ms in float32; 16000: ~5 ms / ~3 ms).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # DFT arrived in opset 17 (its axis became an input in 20)
IR_VERSION = 8  # old enough for every onnxruntime that runs opset 17
EPS = 1e-12

Band = tuple[float, float]

_INPUT_TYPES = {
    "float32": TensorProto.FLOAT,
    "float16": TensorProto.FLOAT16,
    "float64": TensorProto.DOUBLE,
}

__all__ = ["band_energy_model", "bad_model", "callable_band_oracle", "band_labels", "BAD_KINDS"]


def band_labels(bands_hz: Sequence[Band]) -> list[str]:
    """Default labels: ``"<lo>-<hi>Hz"`` per band."""
    return [f"{lo:g}-{hi:g}Hz" for lo, hi in bands_hz]


def band_energy_model(
    path: str | Path,
    bands_hz: Sequence[Band],
    sample_rate: int = 16000,
    labels: Sequence[str] | None = None,
    input_rank: int = 2,
    fixed_length: int | None = None,
    fixed_batch: int | None = None,
    output: str = "logits",
    time_span_s: tuple[float, float] | None = None,
    compute_dtype: str = "float64",
    metadata: bool = True,
    input_dtype: str = "float32",
) -> Path:
    """Write the band-energy oracle as an ONNX model.

    Parameters
    ----------
    path : str or Path
        Where to write the ``.onnx`` file.
    bands_hz : list of (lo, hi)
        One half-open band ``[lo, hi)`` in Hz per class.
    sample_rate : int
        Rate used to map bins to Hz (and stored in the metadata).
    labels : list of str, optional
        Class labels for the metadata; ``band_labels(bands_hz)`` when omitted.
    input_rank : int
        1 (``[N]``), 2 (``[B, N]``) or 3 (``[B, 1, N]``).
    fixed_length, fixed_batch : int, optional
        Make ``N`` or ``B`` a fixed dimension instead of a dynamic one.
    output : str
        ``"logits"`` (log band energy) or ``"probs"`` (band energy share).
    time_span_s : (float, float), optional
        Count only samples in this time span (seconds).
    compute_dtype : str
        ``"float64"`` (agrees with numpy to ~1e-9) or ``"float32"`` (faster, ~1e-3 off for
        lengths that are not powers of two).
    metadata : bool
        Store ``sample_rate`` and ``labels`` in ``metadata_props``.
    input_dtype : str
        Element type of the input: ``"float32"``, ``"float16"`` or ``"float64"``.

    Returns
    -------
    Path
        ``path``.
    """
    if input_rank not in (1, 2, 3):
        raise ValueError("input_rank must be 1, 2 or 3")
    if output not in ("logits", "probs"):
        raise ValueError("output must be 'logits' or 'probs'")
    ftype = {"float64": TensorProto.DOUBLE, "float32": TensorProto.FLOAT}[compute_dtype]
    b = _Graph(ftype)
    x = _to_batch(b, "waveform", input_rank)  # [B, N] in compute_dtype
    n_samples = b.node("Gather", [b.node("Shape", [x]), b.const_i64([1])], axis=0)  # [1]
    if time_span_s is not None:
        x = b.node("Mul", [x, _time_window(b, n_samples, sample_rate, time_span_s)])
    power = _power_spectrum(b, x)  # [B, K]
    band_mask = _band_mask(b, n_samples, sample_rate, bands_hz)  # [K, C]
    energy = b.node("MatMul", [power, band_mask])  # [B, C]
    if output == "logits":
        scores = b.node("Log", [b.node("Add", [energy, b.const_f([EPS])])])
    else:
        total = b.node("ReduceSum", [energy, b.const_i64([1])], keepdims=1)
        scores = b.node("Div", [energy, total])
    if input_rank == 1:
        scores = b.node("Squeeze", [scores, b.const_i64([0])])
    b.node("Cast", [scores], out="scores", to=TensorProto.FLOAT)

    batch_dim = fixed_batch if fixed_batch is not None else "batch"
    length_dim = fixed_length if fixed_length is not None else "samples"
    in_shape = {1: [length_dim], 2: [batch_dim, length_dim], 3: [batch_dim, 1, length_dim]}
    out_shape = [len(bands_hz)] if input_rank == 1 else [batch_dim, len(bands_hz)]
    graph = helper.make_graph(
        b.nodes,
        "band_energy_oracle",
        [
            helper.make_tensor_value_info(
                "waveform", _INPUT_TYPES[input_dtype], in_shape[input_rank]
            )
        ],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, out_shape)],
        initializer=b.initializers,
    )
    props = {}
    if metadata:
        names = list(labels) if labels is not None else band_labels(bands_hz)
        props = {"sample_rate": str(sample_rate), "labels": json.dumps(names)}
    return _save(graph, path, props)


def callable_band_oracle(
    bands_hz: Sequence[Band],
    sample_rate: int = 16000,
    output: str = "logits",
    time_span_s: tuple[float, float] | None = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """The same oracle as a numpy function ``[B, N] -> [B, C]`` (float32 scores)."""
    lows = np.array([lo for lo, _ in bands_hz], dtype=np.float64)
    highs = np.array([hi for _, hi in bands_hz], dtype=np.float64)

    def oracle(batch: np.ndarray) -> np.ndarray:
        x = np.asarray(batch, dtype=np.float64)
        n = x.shape[-1]
        if time_span_s is not None:
            t = np.arange(n, dtype=np.float64) / sample_rate
            x = x * ((t >= time_span_s[0]) & (t < time_span_s[1]))
        power = np.abs(np.fft.rfft(x, axis=-1)) ** 2
        freqs = np.arange(power.shape[-1], dtype=np.float64) * sample_rate / n
        mask = (freqs[:, None] >= lows) & (freqs[:, None] < highs)
        energy = power @ mask.astype(np.float64)
        if output == "logits":
            return np.log(energy + EPS).astype(np.float32)
        return (energy / energy.sum(axis=-1, keepdims=True)).astype(np.float32)

    return oracle


BAD_KINDS = (
    "rank4_input",
    "two_inputs",
    "output_rank3",
    "int_input",
    "two_channel_input",
    "runtime_bad_output",
    "nan_output",
)


def bad_model(path: str | Path, kind: str) -> Path:
    """Write a small valid ONNX model that freqrex must reject.

    Kinds: ``rank4_input`` ([B, 1, 1, N]), ``two_inputs``, ``output_rank3`` (declared
    [B, N, 1]), ``int_input`` (int16 [B, N]), ``two_channel_input`` ([B, 2, N]),
    ``runtime_bad_output`` (no declared output shape; ``[B]`` at run time for B > 1) and
    ``nan_output`` (valid shapes, NaN scores).
    """
    f = TensorProto.FLOAT
    b = _Graph(f)
    inputs = [helper.make_tensor_value_info("waveform", f, ["batch", "samples"])]
    out_shape: list | None = ["batch", 1]
    if kind == "rank4_input":
        inputs = [helper.make_tensor_value_info("waveform", f, ["batch", 1, 1, "samples"])]
        b.node("ReduceSum", ["waveform", b.const_i64([2, 3])], out="scores", keepdims=0)
    elif kind == "two_inputs":
        inputs.append(helper.make_tensor_value_info("gain", f, ["batch", "samples"]))
        mixed = b.node("Mul", ["waveform", "gain"])
        b.node("ReduceSum", [mixed, b.const_i64([1])], out="scores", keepdims=1)
    elif kind == "output_rank3":
        b.node("Unsqueeze", ["waveform", b.const_i64([2])], out="scores")
        out_shape = ["batch", "samples", 1]
    elif kind == "runtime_bad_output":
        # Squeeze without axes on [batch, 1]: the rank depends on the batch size, so nothing
        # can be declared; a batch of 2 gives [2] at run time.
        total = b.node("ReduceSum", ["waveform", b.const_i64([1])], keepdims=1)
        b.node("Squeeze", [total], out="scores")
        out_shape = None
    elif kind == "int_input":
        inputs = [helper.make_tensor_value_info("waveform", TensorProto.INT16, ["batch", "n"])]
        as_float = b.node("Cast", ["waveform"], to=f)
        b.node("ReduceSum", [as_float, b.const_i64([1])], out="scores", keepdims=1)
    elif kind == "two_channel_input":
        inputs = [helper.make_tensor_value_info("waveform", f, ["batch", 2, "samples"])]
        b.node("ReduceSum", ["waveform", b.const_i64([1, 2])], out="scores", keepdims=0)
        out_shape = ["batch"]
    elif kind == "nan_output":
        # sqrt(-(1 + x^2)) is NaN for every input
        square = b.node("Mul", ["waveform", "waveform"])
        negative = b.node("Neg", [b.node("Add", [square, b.const_f([1.0])])])
        b.node("Sqrt", [negative], out="scores")
        out_shape = ["batch", "samples"]
    else:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(BAD_KINDS)}")
    output = helper.make_tensor_value_info("scores", f, out_shape)
    graph = helper.make_graph(b.nodes, f"bad_{kind}", inputs, [output], b.initializers)
    # the checker refuses a graph output without a shape, which is the point of this one
    return _save(graph, path, {}, full_check=kind != "runtime_bad_output")


# -- graph building ----------------------------------------------------------------------------


class _Graph:
    """Collects nodes and constants, naming every intermediate tensor uniquely."""

    def __init__(self, ftype: int) -> None:
        self.ftype = ftype
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def _name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def node(self, op: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        out = out or self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def const_i64(self, values: list[int]) -> str:
        return self._const(np.array(values, dtype=np.int64))

    def const_i64_scalar(self, value: int) -> str:
        return self._const(np.array(value, dtype=np.int64))

    def const_f(self, values: list[float]) -> str:
        dtype = np.float64 if self.ftype == TensorProto.DOUBLE else np.float32
        return self._const(np.array(values, dtype=dtype))

    def _const(self, array: np.ndarray) -> str:
        name = self._name("const")
        self.initializers.append(numpy_helper.from_array(array, name))
        return name


def _to_batch(b: _Graph, name: str, rank: int) -> str:
    """The input as ``[B, N]`` in the compute dtype."""
    if rank == 1:
        name = b.node("Unsqueeze", [name, b.const_i64([0])])
    elif rank == 3:
        name = b.node("Squeeze", [name, b.const_i64([1])])
    return b.node("Cast", [name], to=b.ftype)


def _power_spectrum(b: _Graph, x: str) -> str:
    """``|rfft(x)|^2`` over the last axis: ``[B, N] -> [B, N // 2 + 1]``."""
    signal = b.node("Unsqueeze", [x, b.const_i64([2])])  # [B, N, 1]: real signal for DFT
    spectrum = b.node("DFT", [signal], onesided=1, axis=1)  # [B, K, 2]: real, imaginary
    squared = b.node("Mul", [spectrum, spectrum])
    return b.node("ReduceSum", [squared, b.const_i64([2])], keepdims=0)


def _band_mask(b: _Graph, n_samples: str, sample_rate: int, bands_hz: Sequence[Band]) -> str:
    """0/1 matrix ``[K, C]``: bin k belongs to band c when ``k * sr / N`` is in ``[lo, hi)``."""
    half = b.node("Div", [n_samples, b.const_i64([2])])
    n_bins = b.node("Add", [half, b.const_i64([1])])
    k = b.node("Range", [b.const_i64_scalar(0), _scalar(b, n_bins), b.const_i64_scalar(1)])
    # float64 always: k * sr is exact there, so bins on a band edge fall as they do in numpy
    k_sr = b.node("Mul", [b.node("Cast", [k], to=TensorProto.DOUBLE), _double(b, sample_rate)])
    freqs = b.node("Div", [k_sr, b.node("Cast", [n_samples], to=TensorProto.DOUBLE)])
    column = b.node("Unsqueeze", [freqs, b.const_i64([1])])  # [K, 1]
    lows = b._const(np.array([[lo for lo, _ in bands_hz]], dtype=np.float64))  # [1, C]
    highs = b._const(np.array([[hi for _, hi in bands_hz]], dtype=np.float64))
    inside = b.node(
        "And",
        [b.node("GreaterOrEqual", [column, lows]), b.node("Less", [column, highs])],
    )
    return b.node("Cast", [inside], to=b.ftype)


def _time_window(b: _Graph, n_samples: str, sample_rate: int, span: tuple[float, float]) -> str:
    """0/1 row ``[N]``: sample n counts when ``n / sr`` is in ``[t0, t1)``."""
    n = b.node("Range", [b.const_i64_scalar(0), _scalar(b, n_samples), b.const_i64_scalar(1)])
    t = b.node("Div", [b.node("Cast", [n], to=TensorProto.DOUBLE), _double(b, sample_rate)])
    inside = b.node(
        "And",
        [
            b.node("GreaterOrEqual", [t, _double(b, span[0])]),
            b.node("Less", [t, _double(b, span[1])]),
        ],
    )
    return b.node("Cast", [inside], to=b.ftype)


def _scalar(b: _Graph, one_element: str) -> str:
    return b.node("Squeeze", [one_element, b.const_i64([0])])


def _double(b: _Graph, value: float) -> str:
    return b._const(np.array(value, dtype=np.float64))


def _save(
    graph: onnx.GraphProto, path: str | Path, props: dict[str, str], full_check: bool = True
) -> Path:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="freqrex-tests",
    )
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    if full_check:
        onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    onnx.save(model, str(path))
    return path


# -- clips whose energy sits in known bands (shared by the end-to-end tests) ---------------

SR = 16_000
N = 16_384  # a power of two keeps the ONNX DFT of the oracle fast
BANDS = [(200, 600), (1000, 2000), (3000, 5000)]


def band_noise(rng, lo, hi, amplitude, n=N):
    """White noise band-limited to [lo, hi) Hz, then scaled to ``amplitude`` RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    hz = np.fft.rfftfreq(n, 1 / SR)
    spectrum[(hz < lo) | (hz >= hi)] = 0
    x = np.fft.irfft(spectrum, n)
    return amplitude * x / np.sqrt(np.mean(x**2))


def tone_clip(bins=(410, 1536), amplitudes=(1.0, 0.9)):
    """Two tones exactly on rfft bins of ``N`` samples: with the default amplitudes the
    first band (200-600 Hz) beats the second (1000-2000 Hz) by a hair, a close call."""
    t = np.arange(N)
    x = sum(a * np.cos(2 * np.pi * b * t / N) for b, a in zip(bins, amplitudes))
    return (0.3 * x).astype(np.float32)


def make_clip(seed=0, amplitudes=(1.0, 0.8, 0.5), n=N):
    """Energy in all three bands, most in ``amplitudes``' largest, plus faint broadband noise."""
    rng = np.random.default_rng(seed)
    x = sum(band_noise(rng, lo, hi, a, n) for (lo, hi), a in zip(BANDS, amplitudes))
    x = x + 0.01 * rng.standard_normal(n)
    return (0.2 * x).astype(np.float32)


# -- two bands that each decide alone (either) or only together (both) --------------------

BAND_A, BAND_B = (200.0, 600.0), (1000.0, 2000.0)
TWO_BAND_N = 4096
LEVEL = 0.6   # a sufficient set holds more than this share of a band's energy


def two_band_clip() -> np.ndarray:
    """Equal energy in bands A and B, less in 3-5 kHz, faint broadband noise."""
    n = TWO_BAND_N
    rng = np.random.default_rng(0)
    x = (band_noise(rng, *BAND_A, 1.0, n) + band_noise(rng, *BAND_B, 1.0, n)
         + band_noise(rng, 3000, 5000, 0.5, n) + 0.01 * rng.standard_normal(n))
    return (0.2 * x).astype(np.float32)


def two_band_model(rule: str, x: np.ndarray):
    """Logits ``[log r, log LEVEL]`` with ``r`` the kept share of band A's and B's energy
    in ``x``, combined by ``max`` ("either": one band suffices, one sufficient set per
    band) or ``min`` ("both")."""
    energy = callable_band_oracle([BAND_A, BAND_B], SR, output="logits")
    full = np.exp(energy(x[None]).astype(np.float64))[0]
    combine = np.max if rule == "either" else np.min

    def model(batch: np.ndarray) -> np.ndarray:
        shares = np.exp(energy(batch).astype(np.float64)) / full
        kept = np.log(combine(shares, axis=1) + 1e-12)
        return np.stack([kept, np.full_like(kept, np.log(LEVEL))], 1).astype(np.float32)

    return model


# ----------------------------------------------------------------- evaluate's data set

EVALUATE_FAST = {"iterations": 2, "search_limit": 150, "seed": 1}
"""A small search for the data-set tests: enough to explain the band oracle's clips."""
EVALUATE_N = 8192   # samples per data-set clip
# Per clip: amplitudes of the three bands. Close pairs make the 1- to 5-bin attacks flip.
AMPLITUDES = [(1.0, 0.8, 0.5), (0.5, 1.0, 0.995), (0.3, 0.5, 1.0), (1.0, 0.995, 0.4),
              (0.5, 1.0, 0.9), (1.0, 0.2, 0.99), (0.9, 1.0, 0.1), (0.4, 0.3, 1.0)]


def write_clips(folder: Path, indices) -> Path:
    """Clips ``clip<i>.wav`` of the band oracle (``AMPLITUDES[i]``) in two subfolders."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    for i in indices:
        sub = folder / ("a" if i % 2 else "b")
        sub.mkdir(exist_ok=True)
        clip = make_clip(seed=i, amplitudes=AMPLITUDES[i], n=EVALUATE_N)
        sf.write(sub / f"clip{i}.wav", clip, SR, subtype="FLOAT")
    return folder


def invoke_cli(*args) -> tuple[int, str, str]:
    """``freqrex ARGS`` in process: exit code, stdout, stderr."""
    from typer.testing import CliRunner

    from freqrex.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


class FakeTensor:
    """A stand-in for a torch tensor: only what freqrex calls to get its numpy array."""

    def __init__(self, a):
        self.a = a

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.a
