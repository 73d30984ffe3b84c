"""The model adapter, against band-energy oracles whose outputs are known exactly."""

import json
import subprocess
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from oracles import (
    BAD_KINDS,
    FakeTensor,
    bad_model,
    band_energy_model,
    band_labels,
    callable_band_oracle,
)

from freqrex.config import PROVIDERS, ModelConfig
from freqrex.errors import FreqrexError, FreqrexWarning, InputError, ModelError
from freqrex.model import (
    CallableModel,
    Model,
    OnnxModel,
    apply_activation,
    as_model,
    load_labels,
    load_model,
    providers_for,
    sigmoid,
    softmax,
)

SR = 16000
BANDS = [(0.0, 500.0), (500.0, 2000.0), (2000.0, 8001.0)]
LABELS = ["low", "mid", "high"]
N = 1024  # a power of two keeps the ONNX DFT fast


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Oracle variants, built once for the module."""
    d = tmp_path_factory.mktemp("oracles")
    specs = {
        "logits": {},
        "probs": {"output": "probs"},
        "batch1": {"fixed_batch": 1},
        "batch2": {"fixed_batch": 2},
        "fixed_len": {"fixed_length": N},
        "rank1": {"input_rank": 1},
        "rank3": {"input_rank": 3},
        "rank3_batch1_len": {"input_rank": 3, "fixed_batch": 1, "fixed_length": N},
        "no_meta": {"metadata": False},
        "f16": {"input_dtype": "float16"},
        "f64": {"input_dtype": "float64"},
        "span": {"time_span_s": (0.01, 0.03)},
    }
    return {
        name: band_energy_model(d / f"{name}.onnx", BANDS, SR, labels=LABELS, **kw)
        for name, kw in specs.items()
    }


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(0).standard_normal((5, N)).astype(np.float32)


def reference(x, output="logits", time_span_s=None):
    return callable_band_oracle(BANDS, SR, output=output, time_span_s=time_span_s)(x).astype(
        np.float64
    )


def tone_batch(freqs, n=N):
    t = np.arange(n) / SR
    return np.stack([np.sin(2 * np.pi * f * t) for f in freqs]).astype(np.float32)


# -- the oracles themselves ------------------------------------------------------------------


@pytest.mark.parametrize("n", [N, 999, 1600])
@pytest.mark.parametrize(
    "kw", [{}, {"output": "probs"}, {"time_span_s": (0.01, 0.04)}], ids=["logits", "probs", "span"]
)
def test_onnx_oracle_agrees_with_numpy_oracle(tmp_path, n, kw):
    path = band_energy_model(tmp_path / "o.onnx", BANDS, SR, **kw)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(n).standard_normal((3, n)).astype(np.float32)
    got = session.run(None, {"waveform": x})[0]
    np.testing.assert_allclose(got, reference(x, **kw), rtol=1e-5, atol=1e-6)


def test_oracle_picks_the_band_holding_the_tone(models):
    model = OnnxModel(models["logits"])
    probs = model(tone_batch([200, 1000, 4000]))
    assert list(probs.argmax(axis=1)) == [0, 1, 2]
    assert probs.max(axis=1).min() > 0.99


def test_time_span_oracle_ignores_signal_outside_the_span(models):
    x = np.zeros((1, N), dtype=np.float32)
    x[0, 500:] = tone_batch([4000])[0, 500:]  # 4 kHz after 31 ms, outside [10, 30) ms
    x[0, 160:480] = tone_batch([200])[0, 160:480]  # 200 Hz inside the span
    scores = OnnxModel(models["span"]).scores(x)
    np.testing.assert_allclose(scores, reference(x, time_span_s=(0.01, 0.03)), rtol=1e-5)
    assert scores.argmax() == 0


# -- activations -----------------------------------------------------------------------------


def test_logits_resolve_to_softmax(models, batch):
    model = OnnxModel(models["logits"])
    assert model.activation == "auto"
    probs = model(batch)
    assert model.activation == "softmax"
    assert probs.dtype == np.float64 and probs.shape == (5, 3)
    np.testing.assert_allclose(probs, softmax(reference(batch)), rtol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_probabilities_resolve_to_none_and_are_kept(models, batch):
    model = OnnxModel(models["probs"])
    probs = model(batch)
    assert model.activation == "none"
    np.testing.assert_allclose(probs, reference(batch, output="probs"), rtol=1e-6)


def test_explicit_sigmoid_and_none(models, batch):
    raw = reference(batch)
    sig = OnnxModel(models["logits"], activation="sigmoid")(batch)
    np.testing.assert_allclose(sig, 1 / (1 + np.exp(-raw)), rtol=1e-6)
    kept = OnnxModel(models["logits"], activation="none")(batch)
    np.testing.assert_allclose(kept, raw, rtol=1e-6)


def test_activation_is_decided_once_from_the_first_batch():
    outputs = iter([np.array([[2.0, -1.0]]), np.array([[0.2, 0.3]])])
    model = CallableModel(lambda x: next(outputs))
    first = model(np.ones((1, 8)))
    second = model(np.ones((1, 8)))  # looks like probabilities, still logits
    assert model.activation == "softmax"
    np.testing.assert_allclose(first, softmax(np.array([[2.0, -1.0]])))
    np.testing.assert_allclose(second, softmax(np.array([[0.2, 0.3]])))


@pytest.mark.parametrize(
    "raw, expected",
    [
        ([[0.2, 0.8], [0.5, 0.5]], "none"),  # a distribution
        ([[0.9, 0.8], [0.1, 0.0]], "none"),  # independent sigmoid probabilities
        ([[1.0000001, 0.0]], "none"),  # float32 rounding of a softmax
        ([[2.0, -1.0]], "softmax"),
        ([[0.5, 1.5]], "softmax"),
        ([[3.0], [-2.0]], "sigmoid"),  # one logit column: softmax would always be 1
    ],
)
def test_resolve_activation(raw, expected):
    assert Model().resolve_activation(np.array(raw)) == expected


def test_softmax_and_sigmoid_are_stable_for_extreme_scores():
    raw = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4 + 1, -1e4 + 2]])
    p = softmax(raw)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], [1, 0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings
        s = sigmoid(np.array([-1e4, 0.0, 1e4]))
    np.testing.assert_allclose(s, [0, 0.5, 1])
    with pytest.raises(FreqrexError, match="not resolved"):
        apply_activation(raw, "auto")


def test_unknown_activation_is_rejected(models):
    with pytest.raises(FreqrexError, match="unknown activation 'relu'"):
        OnnxModel(models["logits"], activation="relu")


def test_nan_outputs_are_a_freqrex_error(tmp_path, batch):
    with pytest.raises(FreqrexError, match="NaN or infinite"):
        OnnxModel(bad_model(tmp_path / "nan.onnx", "nan_output"))(batch)
    with pytest.raises(FreqrexError, match="NaN or infinite"):
        CallableModel(lambda x: np.full((len(x), 2), np.inf))(batch)


# -- batching and stats ----------------------------------------------------------------------


def test_fixed_batch_one_matches_dynamic_batch_and_counts_calls(models, batch):
    dynamic = OnnxModel(models["logits"])
    fixed = OnnxModel(models["batch1"])
    assert fixed.batch_size == 1 and fixed.fixed_batch == 1
    np.testing.assert_allclose(fixed(batch), dynamic(batch), rtol=1e-6)
    assert fixed.stats.calls == 5 and fixed.stats.samples == 5
    assert dynamic.stats.calls == 1 and dynamic.stats.samples == 5
    assert fixed.stats.seconds > 0


def test_batch_size_chunks_calls(models, batch):
    model = OnnxModel(models["logits"], batch_size=2)
    np.testing.assert_allclose(model.scores(batch), reference(batch), rtol=1e-5)
    # 5 rows in passes of 2 and 3: a one-row tail would be scored by other kernels
    assert (model.stats.calls, model.stats.samples) == (2, 5)
    model.scores(batch[:1])
    assert (model.stats.calls, model.stats.samples) == (3, 6)
    model.scores(batch[:4])
    assert (model.stats.calls, model.stats.samples) == (5, 10)


def test_fixed_batch_two_pads_the_last_chunk(models, batch):
    model = OnnxModel(models["batch2"], batch_size=32)
    assert model.batch_size == 2
    np.testing.assert_allclose(model.scores(batch[:3]), reference(batch[:3]), rtol=1e-5)
    assert (model.stats.calls, model.stats.samples) == (2, 3)


def test_stats_count_callable_calls_and_time():
    model = CallableModel(callable_band_oracle(BANDS, SR), batch_size=4)
    model(np.ones((10, 64), dtype=np.float32))
    assert (model.stats.calls, model.stats.samples) == (3, 10)
    assert model.stats.seconds > 0
    model.stats.reset()
    assert (model.stats.calls, model.stats.samples, model.stats.seconds) == (0, 0, 0.0)


def test_empty_batch_gives_empty_scores_once_classes_are_known(models):
    model = OnnxModel(models["logits"])
    assert model(np.zeros((0, N), dtype=np.float32)).shape == (0, 3)
    assert model.stats.calls == 0


# -- input layouts ---------------------------------------------------------------------------


def test_fixed_length_model_exposes_input_length_and_checks_it(models, batch):
    model = OnnxModel(models["fixed_len"])
    assert model.input_length == N
    np.testing.assert_allclose(model.scores(batch), reference(batch), rtol=1e-5)
    with pytest.raises(FreqrexError, match=f"takes {N} samples per waveform, got 1000"):
        model.scores(batch[:, :1000])


@pytest.mark.parametrize("name", ["rank1", "rank3", "rank3_batch1_len", "f16", "f64"])
def test_input_ranks_and_dtypes_give_the_same_scores(models, batch, name):
    model = OnnxModel(models[name])
    want = reference(batch.astype(np.float16).astype(np.float32)) if name == "f16" else None
    got = model.scores(batch)
    np.testing.assert_allclose(got, reference(batch) if want is None else want, rtol=1e-4)
    if name in ("rank1", "rank3_batch1_len"):
        assert model.batch_size == 1 and model.stats.calls == 5


def test_batches_must_be_two_dimensional(models):
    model = OnnxModel(models["logits"])
    with pytest.raises(FreqrexError, match=r"2-D \[B, N\]"):
        model(np.ones(N, dtype=np.float32))
    with pytest.raises(FreqrexError, match="no samples"):
        model(np.ones((2, 0), dtype=np.float32))
    with pytest.raises(FreqrexError, match="must hold numbers"):
        model([["a", "b"]])


# -- metadata, labels and classes ------------------------------------------------------------


def test_metadata_gives_sample_rate_and_labels(models):
    model = OnnxModel(models["logits"])
    assert model.path == models["logits"]
    assert model.sample_rate == SR and model.labels == LABELS and model.n_classes == 3


def test_constructor_arguments_override_metadata(models, tmp_path):
    model = OnnxModel(models["logits"], sample_rate=8000, labels=["a", "b", "c"])
    assert model.sample_rate == 8000 and model.labels == ["a", "b", "c"]
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("x\ny\nz\n")
    assert OnnxModel(models["logits"], labels=labels_file).labels == ["x", "y", "z"]


def test_default_oracle_labels_name_the_bands(tmp_path):
    model = OnnxModel(band_energy_model(tmp_path / "d.onnx", BANDS, SR))
    assert model.labels == band_labels(BANDS) == ["0-500Hz", "500-2000Hz", "2000-8001Hz"]


def test_comma_separated_metadata_labels(tmp_path, models):
    proto = onnx.load(str(models["no_meta"]))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "labels", "dog, cat ,bird"
    model = OnnxModel(proto)
    assert model.labels == ["dog", "cat", "bird"] and model.sample_rate is None


def test_without_metadata_classes_are_numbered(models, batch):
    model = OnnxModel(models["no_meta"])
    assert model.labels is None and model.sample_rate is None
    assert model.label(2) == "class_2"
    assert model.class_index("1") == 1
    with pytest.raises(FreqrexError, match="has no labels, give a class index"):
        model.class_index("dog")


def test_label_count_must_match_the_classes(models, batch):
    with pytest.raises(FreqrexError, match="3 classes but 2 labels"):
        OnnxModel(models["logits"], labels=["a", "b"])  # static output shape: caught at load
    fn_model = CallableModel(callable_band_oracle(BANDS, SR), labels=["a", "b"])
    with pytest.raises(FreqrexError, match="3 classes but 2 labels"):
        fn_model(batch)  # unknown until the first call


def test_class_index_by_label_index_and_digits(models):
    model = OnnxModel(models["logits"])
    assert model.class_index("mid") == 1
    assert model.class_index(2) == 2
    assert model.class_index(np.int64(0)) == 0
    assert model.class_index("2") == 2
    assert model.label(1) == "mid"


@pytest.mark.parametrize(
    "target, fragment",
    [
        ("dog", "unknown class 'dog'; known: low, mid, high"),
        (3, "class 3 is out of range; give an index in 0-2"),
        (-1, "out of range"),
        ("7", "out of range"),
        (1.5, "index or a label"),
        (True, "index or a label"),
    ],
)
def test_unknown_classes_are_freqrex_errors(models, target, fragment):
    with pytest.raises(FreqrexError) as info:
        OnnxModel(models["logits"]).class_index(target)
    assert fragment in str(info.value)


def test_bad_metadata_sample_rate_is_reported(models):
    proto = onnx.load(str(models["no_meta"]))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "sample_rate", "fast"
    with pytest.raises(FreqrexError, match="sample_rate 'fast'"):
        OnnxModel(proto)
    assert OnnxModel(proto, sample_rate=22050).sample_rate == 22050  # an override wins


# -- rejected models -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, fragment",
    [
        ("rank4_input", "shape [batch, 1, 1, samples]"),
        ("two_inputs", "has 2 inputs"),
        ("output_rank3", "output 'scores' has shape [batch, samples, 1]"),
        ("int_input", "type tensor(int16)"),
        ("two_channel_input", "shape [batch, 2, samples]"),
    ],
)
def test_unsupported_models_fail_at_load(tmp_path, kind, fragment):
    with pytest.raises(FreqrexError) as info:
        OnnxModel(bad_model(tmp_path / f"{kind}.onnx", kind))
    message = str(info.value)
    assert fragment in message and "\n" not in message
    if "input" in kind:
        assert "[N], [B, N], [B, 1, N] or [B, N, 1]" in message


def test_bad_output_rank_at_run_time(tmp_path, batch):
    model = OnnxModel(bad_model(tmp_path / "r.onnx", "runtime_bad_output"))
    with pytest.raises(FreqrexError, match=r"returned shape \(5,\)"):
        model(batch)


def test_every_bad_kind_is_built(tmp_path):
    for kind in BAD_KINDS:
        onnx.load(str(bad_model(tmp_path / f"{kind}.onnx", kind)))


def write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: d / "missing.onnx", "file not found"),
        (lambda d: d, "it is a directory"),
        (lambda d: write(d / "empty.onnx", b""), "ONNX"),
        (lambda d: write(d / "text.onnx", b"not a model\n"), "ONNX"),
        (lambda d: write(d / "clip.wav", b"RIFF" + bytes(100)), "ONNX"),
    ],
    ids=["missing", "directory", "empty", "text", "wav"],
)
def test_not_onnx_is_a_freqrex_error(tmp_path, make, fragment):
    path = make(tmp_path)
    with pytest.raises(FreqrexError) as info:
        OnnxModel(path)
    message = str(info.value)
    assert message.startswith(f"{path} is not a valid ONNX model (")
    assert fragment in message and "\n" not in message


# -- providers -------------------------------------------------------------------------------


def test_provider_is_cpu_here(models):
    model = OnnxModel(models["logits"])
    assert model.provider == "CPUExecutionProvider"
    assert model.describe()["provider"] == "CPUExecutionProvider"


def test_explicit_providers_are_honoured(models):
    model = OnnxModel(models["logits"], providers=["CPUExecutionProvider"])
    assert model.provider == "CPUExecutionProvider"
    with pytest.raises(FreqrexError, match="unknown execution provider NopeExecutionProvider"):
        OnnxModel(models["logits"], providers=["NopeExecutionProvider"])


def test_explicit_cuda_that_cannot_start_warns(models):
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = OnnxModel(models["logits"], providers=["CUDAExecutionProvider"])
    if model.provider == "CUDAExecutionProvider":
        pytest.skip("CUDA works here")
    assert any(issubclass(w.category, FreqrexWarning) for w in caught)


# -- callables, sessions and as_model --------------------------------------------------------


def test_callable_model_with_a_numpy_function(batch):
    model = CallableModel(callable_band_oracle(BANDS, SR), sample_rate=SR, labels=LABELS)
    assert model.provider == "python"
    np.testing.assert_allclose(model(batch), softmax(reference(batch)), rtol=1e-6)
    assert model.activation == "softmax" and model.n_classes == 3


def test_callable_gets_float32_contiguous_input_and_tensor_outputs_are_converted():
    seen = {}

    def fn(x):
        seen["dtype"], seen["contiguous"] = x.dtype, x.flags.c_contiguous
        return FakeTensor(np.tile([0.25, 0.75], (len(x), 1)))

    model = CallableModel(fn)
    probs = model(np.asfortranarray(np.ones((3, 16))))
    assert seen == {"dtype": np.float32, "contiguous": True}
    np.testing.assert_allclose(probs, [[0.25, 0.75]] * 3)


def test_callable_with_fixed_input_length():
    model = CallableModel(lambda x: np.ones((len(x), 2)) * 0.5, input_length=100)
    assert model.input_length == 100
    with pytest.raises(FreqrexError, match="takes 100 samples"):
        model(np.ones((1, 99)))


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (lambda x: np.ones(len(x)), "returned shape (2,)"),
        (lambda x: np.ones((len(x) + 1, 3)), "returned shape (3, 3)"),
        (lambda x: "nope", "not an array of scores"),
    ],
)
def test_callable_with_bad_output_shape(fn, fragment):
    with pytest.raises(FreqrexError) as info:
        CallableModel(fn)(np.ones((2, 8)))
    assert fragment in str(info.value)


def test_as_model_dispatches(models):
    path = models["logits"]
    model = OnnxModel(path)
    assert as_model(model) is model
    assert isinstance(as_model(path), OnnxModel)
    assert isinstance(as_model(str(path), labels=["a", "b", "c"]), OnnxModel)
    assert isinstance(as_model(path.read_bytes()), OnnxModel)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    from_session = as_model(session, sample_rate=8000)
    assert isinstance(from_session, OnnxModel) and from_session.session is session
    assert from_session.sample_rate == 8000 and from_session.labels == LABELS
    fn_model = as_model(callable_band_oracle(BANDS, SR), providers="auto", input_length=None)
    assert isinstance(fn_model, CallableModel)


def test_as_model_rejects_other_objects_and_options(models):
    with pytest.raises(FreqrexError, match="cannot use a int as a model"):
        as_model(42)
    with pytest.raises(FreqrexError, match="cannot load a int as an ONNX model"):
        OnnxModel(42)
    with pytest.raises(FreqrexError, match="'input_length' does not apply"):
        as_model(models["logits"], input_length=100)
    with pytest.raises(FreqrexError, match="must be callable"):
        CallableModel(3)


def test_describe_lists_inputs_outputs_and_settings(models):
    info = OnnxModel(models["fixed_len"]).describe()
    assert info["inputs"] == [{"name": "waveform", "shape": ["batch", N], "dtype": "float32"}]
    assert info["outputs"] == [{"name": "scores", "shape": ["batch", 3], "dtype": "float32"}]
    assert info["sample_rate"] == SR and info["labels"] == LABELS
    assert info["activation"] == "auto" and info["input_length"] == N
    json.dumps(info)  # printable as JSON
    fn_info = CallableModel(lambda x: x[:, :2], input_length=64).describe()
    assert fn_info["provider"] == "python" and fn_info["inputs"][0]["shape"] == ["B", 64]


@pytest.mark.parametrize(
    "batch_size, rate", [(0, None), (-1, None), (2.5, None), (True, None), (4, 0), (4, "16k")]
)
def test_bad_settings_are_freqrex_errors(batch_size, rate):
    with pytest.raises(FreqrexError, match="positive integer"):
        CallableModel(lambda x: x, batch_size=batch_size, sample_rate=rate)


# -- load_labels -----------------------------------------------------------------------------


def test_load_labels_text_and_json(tmp_path):
    text = tmp_path / "l.txt"
    text.write_text("\ufeffdog\r\ncat\n  bird  \n\n")
    assert load_labels(text) == ["dog", "cat", "bird"]
    js = tmp_path / "l.json"
    js.write_text(json.dumps(["a", "b", 3]))
    assert load_labels(js) == ["a", "b", "3"]


@pytest.mark.parametrize(
    "content, fragment",
    [
        (None, "does not exist"),
        ("", "non-empty list"),
        ("a\nb\na\n", "'a' appears twice"),
        ("a\n\nb\n", "label 1 is empty"),
        ("[1, 2", "not a valid JSON list"),
        ('[["a"]]', "as strings"),
        (b"\xff\xfe\x00bad", "UTF-8"),
    ],
)
def test_load_labels_rejects_bad_files(tmp_path, content, fragment):
    path = tmp_path / "labels.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(FreqrexError) as info:
        load_labels(path)
    assert fragment in str(info.value) and "\n" not in str(info.value)


# -- provider names, load_model, source and error kinds --------------------------------------


def test_provider_names_map_to_onnx_runtime_providers():
    assert providers_for("auto") == "auto"
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    assert providers_for("cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    for name in PROVIDERS:
        providers_for(name)  # every configurable name has a mapping
    providers_for("cpu").append("changed")
    assert providers_for("cpu") == ["CPUExecutionProvider"]  # callers get their own list


@pytest.mark.parametrize("name", ["gpu", "CPU", ""])
def test_unknown_provider_names_are_input_errors_naming_provider(name):
    with pytest.raises(InputError, match="provider must be one of auto, cpu, cuda") as info:
        providers_for(name)
    assert "--provider" not in str(info.value)


def test_onnx_model_takes_provider_names(models):
    assert OnnxModel(models["logits"], providers="cpu").provider == "CPUExecutionProvider"
    assert OnnxModel(models["logits"], providers="auto").provider in ort.get_available_providers()


def test_load_model_applies_the_model_config(models, tmp_path):
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("x\ny\nz\n")
    options = ModelConfig(sample_rate=8000, labels=labels_file, provider="cpu", threads=1)
    model = load_model(models["no_meta"], options, activation="softmax", batch_size=2)
    assert isinstance(model, OnnxModel) and model.provider == "CPUExecutionProvider"
    assert model.sample_rate == 8000 and model.labels == ["x", "y", "z"]
    assert model.activation == "softmax" and model.batch_size == 2
    assert model.path == models["no_meta"] and model.source == str(models["no_meta"])
    plain = load_model(models["logits"], ModelConfig())
    assert plain.sample_rate == SR and plain.labels == LABELS and plain.batch_size == 32
    np.testing.assert_allclose(plain.scores(tone_batch([300.0])),
                               reference(tone_batch([300.0])), rtol=1e-4, atol=1e-4)


def test_load_model_reports_a_bad_labels_file_or_model(models, tmp_path):
    with pytest.raises(InputError, match="labels file .* does not exist"):
        load_model(models["logits"], ModelConfig(labels=tmp_path / "missing.txt"))
    with pytest.raises(ModelError, match="is not a valid ONNX model"):
        load_model(tmp_path / "missing.onnx", ModelConfig())


def test_source_is_the_model_file_or_none(models):
    path = models["logits"]
    assert OnnxModel(path).source == str(path) and OnnxModel(str(path)).source == str(path)
    assert OnnxModel(path.read_bytes()).source is None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    from_session = OnnxModel(session)
    assert from_session.source is None and from_session.path is None
    assert CallableModel(lambda x: x[:, :2]).source is None
    assert Model().source is None


def test_errors_say_where_they_came_from(models, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="is not a valid ONNX model"):
        OnnxModel(bad)
    with pytest.raises(ModelError, match="NaN or infinite"):
        CallableModel(lambda x: np.full((len(x), 2), np.nan))(np.ones((1, 8)))
    with pytest.raises(InputError, match=r"2-D \[B, N\]"):
        OnnxModel(models["logits"])(np.ones(N, dtype=np.float32))
    with pytest.raises(InputError, match="unknown activation"):
        CallableModel(lambda x: x, activation="relu")
    with pytest.raises(InputError, match="unknown execution provider NopeExecutionProvider"):
        OnnxModel(models["logits"], providers="NopeExecutionProvider")


def test_importing_the_package_imports_no_runtime_or_heavy_library():
    # The parent package is stubbed so that only freqrex.model and what it imports load.
    code = """
import importlib.util, sys, types
spec = importlib.util.find_spec("freqrex")
stub = types.ModuleType("freqrex")
stub.__path__ = list(spec.submodule_search_locations)
sys.modules["freqrex"] = stub
import freqrex.model
heavy = ("onnxruntime", "onnx", "numba", "pyfftw", "matplotlib", "dask", "torch", "scipy")
print(",".join(m for m in heavy if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
