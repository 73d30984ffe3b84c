"""freqrex.TorchModel: an nn.Module as a model, with no lambda; runs when torch is installed.

The module computes the band-energy oracle of ``oracles.py`` in torch, so its scores have an
independent reference (the numpy oracle) and its explanation a known answer (the band).
"""

import subprocess
import sys

import numpy as np
import pytest
from oracles import BANDS, SR, callable_band_oracle, make_clip

import freqrex
from freqrex.errors import FreqrexError

torch = pytest.importorskip("torch", reason="torch is not installed (pip install freqrex[torch])")


class BandEnergy(torch.nn.Module):
    """Log energy per band; records how it was called (mode, grad, device, shape)."""

    def __init__(self, bands):
        super().__init__()
        self.register_buffer("edges", torch.tensor(bands, dtype=torch.float64))
        self.dropout = torch.nn.Dropout(0.5)  # would change the scores in train mode
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled(), x.device.type, x.dtype,
                           tuple(x.shape)))
        power = torch.fft.rfft(x.double(), dim=-1).abs() ** 2
        hz = torch.arange(power.shape[-1], dtype=torch.float64) * SR / x.shape[-1]
        mask = (hz[:, None] >= self.edges[:, 0]) & (hz[:, None] < self.edges[:, 1])
        return self.dropout(torch.log(power @ mask.double() + 1e-12).float())


def test_scores_match_the_numpy_oracle_in_eval_mode_without_grad():
    module = BandEnergy(BANDS).train()
    model = freqrex.TorchModel(module, sample_rate=SR, labels=["low", "mid", "high"],
                               batch_size=4)
    batch = np.stack([make_clip(seed=s) for s in range(6)])
    got = model.scores(batch)
    want = callable_band_oracle(BANDS, SR)(batch)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert module.calls == [(False, False, "cpu", torch.float32, (4, batch.shape[1])),
                            (False, False, "cpu", torch.float32, (2, batch.shape[1]))]
    assert model.stats.calls == 2 and model.provider == "torch:cpu"


def test_explains_the_band_that_decides():
    model = freqrex.TorchModel(BandEnergy(BANDS), sample_rate=SR, labels=["low", "mid", "high"])
    result = freqrex.explain(model, make_clip(), sample_rate=SR, iterations=3,
                             search_limit=300, seed=1)
    assert result.target_label == "low" and result.sufficient.found
    hz = np.array(result.sufficient.hz_ranges)
    assert hz.min() >= BANDS[0][0] and hz.max() < BANDS[0][1]


def test_channel_dim_and_a_device_that_cannot_start():
    module = BandEnergy(BANDS)
    model = freqrex.TorchModel(module, sample_rate=SR, channel_dim=True)
    with pytest.raises(FreqrexError, match="shape"):  # [B, 1, 3] scores: fed [B, 1, N]
        model.scores(make_clip()[None])
    assert module.calls[-1][-1] == (1, 1, make_clip().shape[0])
    if not torch.cuda.is_available():
        with pytest.raises(FreqrexError, match="CUDA is not available"):
            freqrex.TorchModel(BandEnergy(BANDS), sample_rate=SR, device="cuda")
    with pytest.raises(FreqrexError, match="nn.Module"):
        freqrex.TorchModel(lambda x: x, sample_rate=SR)


def test_import_freqrex_does_not_import_torch():
    code = ("import sys, freqrex, freqrex.model; freqrex.Config; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_the_bundled_model_rebuilt_in_torch_scores_as_onnx_runtime():
    """bench/reference_torch.py (what bench/gpu_check.sh runs on a CUDA device, where no
    onnxruntime-gpu is) rebuilds the bundled model from the ONNX file's weights: its logits
    match ONNX Runtime's on every bundled clip, and freqrex.TorchModel explains a clip with
    it to the same class."""
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from reference_torch import check_against_onnx, reference_torch

    from freqrex.examples import example_clips, reference_model

    module = reference_torch()
    assert check_against_onnx(module) < 1e-4
    onnx_model = freqrex.OnnxModel(reference_model())
    model = freqrex.TorchModel(module, sample_rate=16000, labels=onnx_model.labels)
    clip = example_clips()[0]
    settings = {"iterations": 1, "search_limit": 60, "minimal_budget": 0}
    ours, theirs = freqrex.explain(model, clip, **settings), freqrex.explain(onnx_model, clip,
                                                                             **settings)
    assert ours.target_label == theirs.target_label
    assert ours.prediction.confidence == pytest.approx(theirs.prediction.confidence, abs=1e-5)


def test_an_accelerator_loads_its_libraries_before_the_memory_is_measured(monkeypatch):
    """The first forward on a GPU loads cuDNN and cuBLAS into host memory; measured as the
    first batch's activations, it would shrink every later pass. Here the first forward
    keeps 200 MB alive (as a loaded library does) on a module marked as on an accelerator:
    the measurement must not see it, and the extra forward is no counted call."""
    held = []
    model = freqrex.TorchModel(BandEnergy(BANDS), sample_rate=SR)
    forward = model._forward

    def loading(chunk):
        if not held:
            held.append(np.ones(200 * 2**20, dtype=np.uint8))   # touched: resident
        return forward(chunk)

    monkeypatch.setattr(model, "_forward", loading)
    model._accelerator = True
    clip = make_clip()
    model.scores(clip[None])
    assert held and model.stats.calls == 1 and model.stats.samples == 1
    # 200 MB over one clip's samples would be ~13 000 bytes per sample
    assert model.memory_per_sample < 1000
    assert model.waveforms_per_batch(clip.shape[0]) == model.batch_size
