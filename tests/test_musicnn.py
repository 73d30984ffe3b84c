"""The bundled musicnn tagger (scripts/export_musicnn.py) against musicnn's own pipeline.

``tests/data/musicnn_reference.json`` holds, for a synthetic 6.5 s clip (two 3 s patches
and a dropped tail), what musicnn 0.1.0's own ``extractor`` (TensorFlow, librosa,
reflect padding, numpy 1.26) says, and what the exported graph said at export time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from freqrex import examples
from freqrex.errors import InputError

REFERENCE = Path(__file__).parent / "data" / "musicnn_reference.json"
SR = 16000
PATH = Path(str(examples._DATA / examples.BUNDLED_MODELS["musicnn-mtt"]))

pytestmark = pytest.mark.skipif(
    not PATH.is_file(), reason=f"{PATH.name} not bundled: build it with "
    "scripts/export_musicnn.py (scripts/README.md)")


def synthetic_clip(seconds: float) -> np.ndarray:
    """Same formula as ``scripts/export_musicnn.py``'s: a chord, vibrato and clicks."""
    t = np.arange(int(round(seconds * SR))) / SR
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 330 * t)
         + 0.1 * np.sin(2 * np.pi * 440 * t + 0.5 * np.sin(2 * np.pi * 5 * t))
         + 0.4 * np.exp(-40 * (t % 0.5)) * np.sin(2 * np.pi * 1000 * t))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def session():
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(PATH), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(REFERENCE.read_text())


def _run(session, batch: np.ndarray) -> np.ndarray:
    return session.run(["probabilities"], {"waveform": batch})[0]


def test_synthetic_clip_is_the_one_the_reference_was_made_on(reference):
    clip = synthetic_clip(6.5).astype(np.float64)
    assert clip.sum() == pytest.approx(reference["clip_sum"], abs=1e-3)
    assert np.abs(clip).sum() == pytest.approx(reference["clip_abs_sum"], rel=1e-7)


def test_matches_musicnn_own_pipeline(session, reference):
    got = _run(session, synthetic_clip(6.5)[None])[0]
    musicnn = np.array(reference["musicnn"])
    assert got.shape == (50,)
    # float16 rounding of the mel spectrogram can land on the other side of a tie when
    # the STFT is a conv rather than librosa's FFT; 1e-4 is ~40x what was measured
    np.testing.assert_allclose(got, musicnn, atol=1e-4, rtol=0)
    assert list(np.argsort(-got)[:3]) == list(np.argsort(-musicnn)[:3])
    # and the graph has not changed since export (onnxruntime versions differ by ~1e-7)
    np.testing.assert_allclose(got, reference["exported"], atol=1e-5, rtol=0)


def test_batch_rows_are_independent_and_patches_averaged(session):
    clip = synthetic_clip(6.5)
    quiet = 0.25 * clip
    both = _run(session, np.stack([clip, quiet]))
    np.testing.assert_allclose(both[0], _run(session, clip[None])[0], atol=1e-6)
    np.testing.assert_allclose(both[1], _run(session, quiet[None])[0], atol=1e-6)
    # the dropped tail (frames after 2 x 187) does not reach the output
    tail = clip.copy()
    tail[374 * 256 + 256:] = 0.0
    np.testing.assert_allclose(_run(session, tail[None])[0], both[0], atol=1e-6)


def test_short_clip_gets_one_padded_patch(session):
    out = _run(session, synthetic_clip(1.0)[None])
    assert out.shape == (1, 50) and np.all(np.isfinite(out))
    assert np.all((out >= 0) & (out <= 1))


def test_loads_by_name_with_metadata():
    from freqrex.config import Config, ModelConfig
    from freqrex.model import load_model

    path = examples.bundled_model("musicnn-mtt")
    assert path == PATH
    model = load_model(path, ModelConfig(), activation=Config().output_activation)
    assert model.sample_rate == SR
    assert model.labels[:4] == ["guitar", "classical", "slow", "techno"]
    assert len(model.labels) == 50
    probs = model(synthetic_clip(3.5)[None])
    assert probs.shape == (1, 50) and model.activation == "none"  # already sigmoid


def test_unknown_name_is_not_a_bundled_model(tmp_path, monkeypatch):
    assert examples.bundled_model("no-such-model") is None
    monkeypatch.setattr(examples, "_DATA", tmp_path)
    with pytest.raises(InputError, match="export_musicnn"):
        examples.bundled_model("musicnn-mtt")


def test_cli_resolves_the_bundled_name():
    from typer.testing import CliRunner

    from freqrex.cli import app

    result = CliRunner().invoke(app, ["info", "--onnx", "musicnn-mtt"])
    assert result.exit_code == 0, result.output
    assert "musicnn_mtt.onnx" in result.output and "techno" in result.output


def test_the_bundled_real_clip_is_techno_to_the_tagger(session):
    # The excerpt README's one-command example explains; the values are the exported
    # graph's (it matches musicnn's own pipeline to ~4e-6 on real clips, scripts/README.md).
    import onnx
    import soundfile as sf

    x, rate = sf.read(examples.real_clip(), dtype="float32")
    assert rate == SR and x.shape == (10 * SR,)
    p = _run(session, x[None])[0]
    meta = {m.key: m.value for m in onnx.load(str(PATH)).metadata_props}
    labels = json.loads(meta["labels"])
    assert [labels[i] for i in np.argsort(-p)[:3]] == ["techno", "fast", "electronic"]
    assert np.sort(p)[::-1][:3] == pytest.approx([0.65915, 0.45204, 0.38595], abs=1e-4)
